package main

import (
	"context"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"
)

// openDesk checks the flags, opens the session and syncs it: what every
// claim command acts on.
func (f *sessionFlags) openDesk(ctx context.Context, env *cli.Env) (*newsdesk.Desk, error) {
	s, err := f.openSession(ctx, env, true)
	if err != nil {
		return nil, err
	}
	rep, err := s.Sync(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	reportSync(env, s, rep)
	return newsdesk.NewDesk(s), nil
}

// closeDesk closes the desk's session, keeping the first error.
func closeDesk(d *newsdesk.Desk, err *error) {
	if cerr := d.Close(); *err == nil {
		*err = cerr
	}
}

// claimArg checks that args is one claim id.
func claimArg(args []string, more string) error {
	if len(args) != 1 {
		return cli.Usagef("want one CLAIM%s", more)
	}
	return nil
}
