package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type assignCmd struct {
	sessionFlags
	to     string
	nobody bool
}

func (*assignCmd) Name() string  { return "assign" }
func (*assignCmd) Usage() string { return "TIP --to LABEL --server URL --key FILE" }
func (*assignCmd) Summary() string {
	return "Assign a tip to an editor (a triage that keeps its status and tags); prints the event's index."
}
func (c *assignCmd) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.to, "to", "", "the editor's label (or --nobody)")
	fs.BoolVar(&c.nobody, "nobody", false, "assign the tip to nobody (instead of --to)")
}

func (c *assignCmd) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 1 || (c.to == "") == !c.nobody {
		return cli.Usagef("want one TIP and one of --to LABEL, --nobody")
	}
	s, err := c.openSession(ctx, env, true)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	i, err := s.Assign(ctx, args[0], c.to)
	if err != nil {
		return err
	}
	who := c.to
	if c.nobody {
		who = "nobody"
	}
	fmt.Fprintf(env.Stderr, "newsdesk: assigned %s to %s as event %d\n", args[0], who, i)
	fmt.Fprintln(env.Stdout, i)
	return nil
}
