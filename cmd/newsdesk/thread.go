package main

import (
	"context"
	"fmt"
	"strings"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type threadCmd struct{ sessionFlags }

func (*threadCmd) Name() string  { return "thread" }
func (*threadCmd) Usage() string { return "TIP [--server URL] --key FILE [--cache DIR]" }
func (*threadCmd) Summary() string {
	return "Show the tips and replies of a tip's source in order: a line for each (a tip's id, or reply@ and the event's index; the day; source or the editor), then its text indented (syncs first with --server)."
}
func (c *threadCmd) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "sync with this server first (default: offline, from the cache)")
}

func (c *threadCmd) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 1 {
		return cli.Usagef("want one TIP")
	}
	s, err := c.openReader(ctx, env)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	items, err := s.Thread(args[0])
	if err != nil {
		return err
	}
	tips := 0
	for _, it := range items {
		if it.Tip != nil {
			tips++
			fmt.Fprintf(env.Stdout, "%s\t%s\tsource\n", it.Tip.ID, it.Day)
		} else {
			fmt.Fprintf(env.Stdout, "reply@%d\t%s\t%s\n", it.Reply.Index, it.Day, it.Reply.Editor)
		}
		for _, line := range strings.Split(cli.TerminalSafe(it.Text), "\n") {
			fmt.Fprintf(env.Stdout, "  %s\n", line)
		}
	}
	fmt.Fprintf(env.Stderr, "newsdesk: %d tips from this source, %d replies\n", tips, len(items)-tips)
	return nil
}
