package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type syncCmd struct{ sessionFlags }

func (*syncCmd) Name() string  { return "sync" }
func (*syncCmd) Usage() string { return "--server URL --key FILE [--cache DIR]" }
func (*syncCmd) Summary() string {
	return "Pull new tips, verify the log (consistency, every entry, receipts trees) and cosign its checkpoint; prints new tip ids, then the log's size and root."
}
func (c *syncCmd) Flags(fs *pflag.FlagSet) { c.sessionFlags.declare(fs, "the server's URL (required)") }

func (c *syncCmd) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	s, err := c.openSession(ctx, env, true)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	rep, err := s.Sync(ctx)
	if rep != nil {
		for _, id := range rep.Pulled {
			fmt.Fprintln(env.Stdout, cli.TerminalSafe(id))
		}
	}
	if err != nil {
		return err
	}
	reportSync(env, s, rep)
	tips, err := s.Tips()
	if err != nil {
		return err
	}
	reportNotSealed(env, s, tips)
	fmt.Fprintf(env.Stdout, "log %d %s\n", rep.Tree.N, rep.Tree.Hash)
	fmt.Fprintf(env.Stderr, "newsdesk: verified and cosigned the log at %d entries (bundle version %d)\n", rep.Tree.N, rep.Bundle.Version)
	return nil
}
