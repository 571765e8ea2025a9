package main

import (
	"context"
	"errors"
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
	replace          bool
	timeout          time.Duration
}

func (*initCmd) Name() string { return "init" }
func (*initCmd) Usage() string {
	return "--server URL --newsroom VERIFIER [--replace-newsroom] [--config DIR] [--proxy socks5h://HOST:PORT | --no-proxy]"
}
func (*initCmd) Summary() string {
	return "Pin the newsroom's verifier key and the server's URL, then fetch and store the verified key bundle and proof-of-work seed, so that compose works with no network; nothing is stored unless both verify."
}
func (c *initCmd) Flags(fs *pflag.FlagSet) {
	c.configFlag.declare(fs)
	c.netFlags.declare(fs)
	fs.StringVar(&c.server, "server", "", "the server's URL: http(s)://HOST[:PORT][/PATH] or ws(s)://… (required)")
	fs.StringVar(&c.newsroom, "newsroom", "", "the newsroom's verifier key, given to you out of band (required)")
	fs.BoolVar(&c.replace, "replace-newsroom", false, "pin this newsroom key even though the config pins another (forgets the old newsroom's bundle)")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "give up after this long connected")
}

func (c *initCmd) Run(ctx context.Context, env *cli.Env, args []string) error {
	if c.server == "" || c.newsroom == "" || len(args) != 0 {
		return cli.Usagef("want --server URL --newsroom VERIFIER and no arguments")
	}
	if err := c.netFlags.check(); err != nil {
		return err
	}
	dir, err := c.path()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, b, seed, err := client.Init(ctx, dir, c.server, c.newsroom, client.InitOptions{Proxy: c.proxy, NoProxy: c.noProxy, ReplaceNewsroom: c.replace})
	if errors.Is(err, client.ErrOtherNewsroom) {
		return fmt.Errorf("%w: run init again with --replace-newsroom if the newsroom gave you this key; nothing was changed", err)
	}
	if err != nil {
		return fmt.Errorf("%w (nothing was changed)", err)
	}
	fmt.Fprintf(env.Stderr, "fieldtip: pinned the newsroom key in %s\n", dir)
	fmt.Fprintf(env.Stderr, "fieldtip: stored bundle version %d (%d editors) and the proof-of-work seed of epoch %d; compose works offline now\n", b.Version, len(b.Editors), seed.Epoch)
	return nil
}
