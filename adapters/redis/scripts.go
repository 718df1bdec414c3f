package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// runScript sends calls of script (named for errors) in one pipeline, in
// order, followed by the commands extra queues (checked by the caller).
// Redis forgets scripts on restart or SCRIPT FLUSH: calls refused with
// NOSCRIPT were not run, so they are sent again once the script is loaded,
// without extra's commands, which are never sent twice (an HINCRBY is not
// idempotent). (If another client loads the script in the middle of the
// pipeline, a resent call runs after later ones; the scripts are written to
// allow that.)
func runScript(ctx context.Context, rdb *goredis.Client, script *goredis.Script, name string, calls []scriptCall,
	extra ...func(goredis.Pipeliner)) ([]*goredis.Cmd, error) {
	cmds := make([]*goredis.Cmd, len(calls))
	pending := make([]int, len(calls))
	for i := range pending {
		pending[i] = i
	}
	for attempt := 0; ; attempt++ {
		pipe := rdb.Pipeline()
		for _, i := range pending {
			cmds[i] = script.EvalSha(ctx, pipe, calls[i].keys, calls[i].args...)
		}
		if attempt == 0 {
			for _, queue := range extra {
				queue(pipe)
			}
		}
		// Exec's error is the first command's; each command is checked below.
		_, _ = pipe.Exec(ctx)
		var missing []int
		for _, i := range pending {
			err := cmds[i].Err()
			switch {
			case err == nil:
			case goredis.HasErrorPrefix(err, "NOSCRIPT") && attempt == 0:
				missing = append(missing, i)
			default:
				return nil, fmt.Errorf("%s (%s): %w", name, calls[i].keys[0], err)
			}
		}
		if len(missing) == 0 {
			return cmds, nil
		}
		if err := script.Load(ctx, rdb).Err(); err != nil {
			return nil, fmt.Errorf("load %s: %w", name, err)
		}
		pending = missing
	}
}

// unlinkMatching deletes the keys matching pattern (a tenant's hash-tagged
// prefix, whose UUID holds no glob character) and the named ones, 500 at a
// time, and returns how many it deleted. It scans: for tests, benchmarks
// and removing a tenant, never the hot path.
func unlinkMatching(ctx context.Context, rdb *goredis.Client, pattern string, named ...string) (int64, error) {
	var deleted int64
	batch := append([]string(nil), named...)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := rdb.Unlink(ctx, batch...).Result()
		deleted += n
		batch = batch[:0]
		return err
	}
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 500 {
			if err := flush(); err != nil {
				return deleted, err
			}
		}
	}
	return deleted, errors.Join(iter.Err(), flush())
}
