package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type syncCmd struct{ serverFlags }

func (*syncCmd) Name() string  { return "sync" }
func (*syncCmd) Usage() string { return "--server URL --key FILE [--cache DIR]" }
func (*syncCmd) Summary() string {
	return "Pull new tips, verify the log (consistency, every entry, receipts trees) and cosign its checkpoint; prints new tip ids, then the log's size and root."
}
func (c *syncCmd) Flags(fs *pflag.FlagSet) { c.serverFlags.declare(fs) }

func (c *syncCmd) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	cache, key, opts, err := c.openRemote(env)
	if err != nil {
		return err
	}
	opts.Pulled = func(id string) { fmt.Fprintln(env.Stdout, id) }
	v, err := cache.SyncLog(ctx, c.server, key, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "log %d %s\n", v.Tree.N, v.Tree.Hash)
	fmt.Fprintf(env.Stderr, "newsdesk: verified and cosigned the log at %d entries (bundle version %d)\n", v.Tree.N, v.Bundle.Version)
	return nil
}
