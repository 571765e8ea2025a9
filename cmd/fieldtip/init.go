package main

import (
	"context"
	"fmt"

	"fieldtip/client"
	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type initCmd struct {
	configFlag
	server, newsroom string
}

func (*initCmd) Name() string  { return "init" }
func (*initCmd) Usage() string { return "--server URL --newsroom VERIFIER [--config DIR]" }
func (*initCmd) Summary() string {
	return "Pin the newsroom's verifier key and the server's URL."
}
func (c *initCmd) Flags(fs *pflag.FlagSet) {
	c.configFlag.declare(fs)
	fs.StringVar(&c.server, "server", "", "the server's URL: http(s)://HOST[:PORT][/PATH] or ws(s)://… (required)")
	fs.StringVar(&c.newsroom, "newsroom", "", "the newsroom's verifier key, given to you out of band (required)")
}

func (c *initCmd) Run(ctx context.Context, env *cli.Env, args []string) error {
	if c.server == "" || c.newsroom == "" || len(args) != 0 {
		return cli.Usagef("want --server URL --newsroom VERIFIER and no arguments")
	}
	dir, err := c.path()
	if err != nil {
		return err
	}
	if err := client.Init(dir, c.server, c.newsroom); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "fieldtip: pinned the newsroom key in %s\n", dir)
	return nil
}
