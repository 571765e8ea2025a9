package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type pull struct{ sessionFlags }

func (*pull) Name() string  { return "pull" }
func (*pull) Usage() string { return "--server URL --key FILE [--cache DIR] [--newsroom VERIFIER]" }
func (*pull) Summary() string {
	return "Fetch new tips into the local cache, as ciphertext, checking every receipt; prints each new tip id."
}
func (c *pull) Flags(fs *pflag.FlagSet) { c.sessionFlags.declare(fs, "the server's URL (required)") }

func (c *pull) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if c.server == "" || len(args) != 0 {
		return cli.Usagef("want --server URL and no arguments")
	}
	s, err := c.openSession(ctx, env, true)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	ids, err := s.Pull(ctx)
	for _, id := range ids {
		fmt.Fprintln(env.Stdout, cli.TerminalSafe(id))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: pulled %d new tip(s)\n", len(ids))
	tips, err := s.Tips()
	if err != nil {
		return err
	}
	reportNotSealed(env, s, tips)
	return nil
}
