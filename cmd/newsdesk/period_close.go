package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type periodClose struct{ sessionFlags }

func (*periodClose) Name() string  { return "period close" }
func (*periodClose) Usage() string { return "--server URL --key FILE" }
func (*periodClose) Summary() string {
	return "Have the server close the current receipts period today and log its root, so that today's tips can be linked now (logged as your act; the period's anonymity set is then only the tips so far); prints the root's index."
}
func (c *periodClose) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
}

func (c *periodClose) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	d, err := c.openDesk(ctx, env)
	if err != nil {
		return err
	}
	defer closeDesk(d, &err)
	res, err := d.ClosePeriod(ctx)
	if err != nil {
		return err
	}
	p := res.Closed
	fmt.Fprintf(env.Stderr, "newsdesk: logged the close as event %d; the server closed the receipts period %s to %s and logged its root at %d: its tips can be linked now; tips from now on are in the period from %s\n",
		res.Index, p.First, p.Last, p.Receipts, p.Next)
	fmt.Fprintln(env.Stdout, p.Receipts)
	return nil
}
