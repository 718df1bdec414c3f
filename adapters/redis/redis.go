// Package redis is the platform's Redis adapter: the connection and, as the
// engine arrives, the Lua scripts for limits, the count-min sketch and hot
// aggregates. Keys use Redis Cluster hash tags so each script touches one
// slot. It is the only package that imports go-redis.
package redis

import (
	"context"
	"fmt"

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

// Close closes the pool.
func (c *Client) Close() error { return c.rdb.Close() }
