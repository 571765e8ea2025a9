package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type pull struct {
	editorFlags
	server, newsroom string
}

func (*pull) Name() string  { return "pull" }
func (*pull) Usage() string { return "--server URL --key FILE [--cache DIR] [--newsroom VERIFIER]" }
func (*pull) Summary() string {
	return "Fetch new tips into the local cache, as ciphertext, checking every receipt; prints each new tip id."
}
func (c *pull) Flags(fs *pflag.FlagSet) {
	c.editorFlags.declare(fs)
	fs.StringVar(&c.server, "server", "", "the server's URL (required)")
	fs.StringVar(&c.newsroom, "newsroom", "", "newsroom verifier key to pin (default: trust the first bundle seen)")
}

func (c *pull) Run(ctx context.Context, env *cli.Env, args []string) error {
	if c.server == "" || len(args) != 0 {
		return cli.Usagef("want --server URL and no arguments")
	}
	cache, err := c.open(env)
	if err != nil {
		return err
	}
	key, err := loadKey(env, &c.editorFlags)
	if err != nil {
		return err
	}
	n, err := cache.Pull(ctx, c.server, key, newsdesk.PullOptions{
		Newsroom: c.newsroom,
		Pulled:   func(id string) { fmt.Fprintln(env.Stdout, id) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: pulled %d new tip(s)\n", n)
	return nil
}
