package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type handover struct {
	sessionFlags
	to string
}

func (*handover) Name() string  { return "handover" }
func (*handover) Usage() string { return "--to LABEL --server URL --key FILE" }
func (*handover) Summary() string {
	return "Re-encrypt the earlier event bodies to an editor added since, as handover events; prints their indexes."
}
func (c *handover) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.to, "to", "", "the new editor's label (required)")
}

func (c *handover) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 0 || c.to == "" {
		return cli.Usagef("want --to LABEL and no arguments")
	}
	s, err := c.openSession(ctx, env, true)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	is, err := s.Handover(ctx, c.to)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: %d handover event(s) to %s\n", len(is), c.to)
	for _, i := range is {
		fmt.Fprintln(env.Stdout, i)
	}
	return nil
}
