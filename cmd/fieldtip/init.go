package main

import (
	"context"
	"fmt"
	"time"

	"fieldtip/client"
	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type initCmd struct {
	configFlag
	netFlags
	server, newsroom string
	timeout          time.Duration
}

func (*initCmd) Name() string { return "init" }
func (*initCmd) Usage() string {
	return "--server URL --newsroom VERIFIER [--config DIR] [--proxy socks5h://HOST:PORT]"
}
func (*initCmd) Summary() string {
	return "Pin the newsroom's verifier key and the server's URL, then fetch and store the verified key bundle and proof-of-work seed, so that compose works with no network."
}
func (c *initCmd) Flags(fs *pflag.FlagSet) {
	c.configFlag.declare(fs)
	c.netFlags.declare(fs)
	fs.StringVar(&c.server, "server", "", "the server's URL: http(s)://HOST[:PORT][/PATH] or ws(s)://… (required)")
	fs.StringVar(&c.newsroom, "newsroom", "", "the newsroom's verifier key, given to you out of band (required)")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "give up after this long connected")
}

func (c *initCmd) Run(ctx context.Context, env *cli.Env, args []string) error {
	if c.server == "" || c.newsroom == "" || len(args) != 0 {
		return cli.Usagef("want --server URL --newsroom VERIFIER and no arguments")
	}
	opts, err := c.options()
	if err != nil {
		return err
	}
	dir, err := c.path()
	if err != nil {
		return err
	}
	if err := client.Init(dir, c.server, c.newsroom); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "fieldtip: pinned the newsroom key in %s\n", dir)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	b, seed, err := client.Fetch(ctx, dir, opts)
	if err != nil {
		return fmt.Errorf("fetch the bundle: %w (the key is pinned; run init again when connected)", err)
	}
	fmt.Fprintf(env.Stderr, "fieldtip: stored bundle version %d (%d editors) and the proof-of-work seed of epoch %d; compose works offline now\n", b.Version, len(b.Editors), seed.Epoch)
	return nil
}
