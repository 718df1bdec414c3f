// Package redis is the platform's Redis adapter: the connection and, as the
// engine arrives, the Lua scripts for limits, the count-min sketch and hot
// aggregates. Keys use Redis Cluster hash tags so each script touches one
// slot. It is the only package that imports go-redis.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Client is a connection pool to Redis, safe for concurrent use.
type Client struct {
	rdb *goredis.Client
}

// Open connects to the Redis at url (redis://host:port/db) and checks that it answers.
func Open(ctx context.Context, url string) (*Client, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	rdb := goredis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to redis at %s: %w", opts.Addr, err)
	}
	return &Client{rdb: rdb}, nil
}

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error { return c.rdb.Ping(ctx).Err() }

// ServerVersion returns the version Redis reports (INFO server), for
// reports such as the benchmarks'.
func (c *Client) ServerVersion(ctx context.Context) (string, error) {
	info, err := c.rdb.Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("redis info: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "", errors.New("redis info: no redis_version")
}

// Close closes the pool.
func (c *Client) Close() error { return c.rdb.Close() }
