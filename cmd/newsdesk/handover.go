package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type handover struct {
	serverFlags
	to string
}

func (*handover) Name() string  { return "handover" }
func (*handover) Usage() string { return "--to LABEL --server URL --key FILE" }
func (*handover) Summary() string {
	return "Re-encrypt the earlier event bodies to an editor added since, as handover events; prints their indexes."
}
func (c *handover) Flags(fs *pflag.FlagSet) {
	c.serverFlags.declare(fs)
	fs.StringVar(&c.to, "to", "", "the new editor's label (required)")
}

func (c *handover) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 || c.to == "" {
		return cli.Usagef("want --to LABEL and no arguments")
	}
	cache, key, opts, err := c.openRemote(env)
	if err != nil {
		return err
	}
	is, err := cache.Handover(ctx, c.server, key, c.to, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: %d handover event(s) to %s\n", len(is), c.to)
	for _, i := range is {
		fmt.Fprintln(env.Stdout, i)
	}
	return nil
}
