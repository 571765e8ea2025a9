package main

import (
	"context"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"
)

// openDesk checks the flags, syncs the cache with the server's log, logs
// in and replays the log: what every claim command acts on.
func (f *serverFlags) openDesk(ctx context.Context, env *cli.Env) (*newsdesk.Desk, error) {
	cache, key, opts, err := f.openRemote(env)
	if err != nil {
		return nil, err
	}
	return cache.OpenDesk(ctx, f.server, key, opts)
}

// claimArg checks that args is one claim id.
func claimArg(args []string, more string) error {
	if len(args) != 1 {
		return cli.Usagef("want one CLAIM%s", more)
	}
	return nil
}
