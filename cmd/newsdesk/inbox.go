package main

import (
	"context"
	"fmt"

	"fieldtip/audit"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type inbox struct{ serverFlags }

func (*inbox) Name() string  { return "inbox" }
func (*inbox) Usage() string { return "[--server URL] --key FILE [--cache DIR]" }
func (*inbox) Summary() string {
	return "List cached tips, one a line: id, day, size, triage status, tags, first line of text (decrypted in memory; syncs first with --server)."
}
func (c *inbox) Flags(fs *pflag.FlagSet) { c.serverFlags.declare(fs) }

func (c *inbox) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	v, key, err := c.view(ctx, env)
	if err != nil {
		return err
	}
	cache, err := c.open(env)
	if err != nil {
		return err
	}
	var st *audit.State
	if v != nil {
		ed, err := newsdesk.Replay(v, key)
		if err != nil {
			return err
		}
		st = ed.State
		// Tips another editor deleted leave this cache too.
		dropped, err := cache.DropDeleted(st)
		for _, id := range dropped {
			fmt.Fprintf(env.Stderr, "newsdesk: removed tip %s from the cache: the log deletes it\n", id)
		}
		if err != nil {
			return err
		}
	}
	return cache.Inbox(env.Stdout, key, st)
}
