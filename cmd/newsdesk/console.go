package main

import (
	"context"
	"fmt"
	"time"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk/console"

	"github.com/spf13/pflag"
)

type consoleCmd struct {
	sessionFlags
	listen    string
	syncEvery time.Duration
}

func (*consoleCmd) Name() string  { return "console" }
func (*consoleCmd) Usage() string { return "--server URL --key FILE" }
func (*consoleCmd) Summary() string {
	return "Sync, then serve the editors' console on 127.0.0.1 until Ctrl-C; prints the one URL to open (once)."
}
func (c *consoleCmd) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:0", "loopback address to serve on (port 0: a random one)")
	fs.DurationVar(&c.syncEvery, "sync-every", console.DefaultSyncEvery, "how often to sync in the background")
}

func (c *consoleCmd) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 0 {
		return cli.Usagef("console takes no arguments")
	}
	s, err := c.openSession(ctx, env, true)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	rep, err := s.Sync(ctx)
	if err != nil {
		return err
	}
	reportSync(env, s, rep)
	con, err := console.New(ctx, console.Config{Session: s, Server: c.server, Listen: c.listen, SyncEvery: c.syncEvery, Out: env.Stdout})
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stderr, "newsdesk: console: open the URL below in a browser on this machine; Ctrl-C stops it")
	return con.Run(ctx)
}
