package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type unlink struct{ sessionFlags }

func (*unlink) Name() string  { return "unlink" }
func (*unlink) Usage() string { return "CLAIM TIP --server URL --key FILE" }
func (*unlink) Summary() string {
	return "Withdraw a tip's link to an unpublished claim (an evidence change: approvals before it stop counting); prints the event's index."
}
func (c *unlink) Flags(fs *pflag.FlagSet) { c.sessionFlags.declare(fs, "the server's URL (required)") }

func (c *unlink) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 2 {
		return cli.Usagef("want CLAIM and TIP")
	}
	d, err := c.openDesk(ctx, env)
	if err != nil {
		return err
	}
	defer closeDesk(d, &err)
	i, err := d.Unlink(ctx, args[0], args[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: withdrew the link of tip %s to claim %s (event %d); earlier approvals no longer count\n", args[1], args[0], i)
	fmt.Fprintln(env.Stdout, i)
	return nil
}
