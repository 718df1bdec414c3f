package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// runScript sends calls of script (named for errors) in one pipeline, in
// order. Redis forgets scripts on restart or SCRIPT FLUSH: calls refused with
// NOSCRIPT were not run, so they are sent again once the script is loaded.
// (If another client loads it in the middle of the pipeline, a resent call
// runs after later ones; both scripts are written to allow that.)
func runScript(ctx context.Context, rdb *goredis.Client, script *goredis.Script, name string, calls []scriptCall) ([]*goredis.Cmd, error) {
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
