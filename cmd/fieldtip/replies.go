package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"fieldtip/client"
	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type repliesCmd struct {
	configFlag
	netFlags
	outboxFlags
	budget time.Duration
}

func (*repliesCmd) Name() string { return "replies" }
func (*repliesCmd) Usage() string {
	return "[--budget 30s] [--proxy socks5h://HOST:PORT | --no-proxy] [--codename-file F] [--config DIR]"
}
func (*repliesCmd) Summary() string {
	return "Fetch the newsroom's replies to you: a bucket of replies (yours and others'), opened with the key your codename derives, on a connection of its own; prints each reply's id, then its text indented, and deletes what it showed from the server."
}
func (c *repliesCmd) Flags(fs *pflag.FlagSet) {
	c.configFlag.declare(fs)
	c.netFlags.declare(fs)
	c.outboxFlags.declareCodename(fs)
	fs.DurationVar(&c.budget, "budget", client.DefaultBudget, "most time to stay connected; a hard stop (replies not deleted come again next time)")
}

func (c *repliesCmd) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	if c.budget <= 0 {
		return cli.Usagef("--budget must be positive")
	}
	if err := c.netFlags.check(); err != nil {
		return err
	}
	dir, err := c.path()
	if err != nil {
		return err
	}
	cfg, err := client.LoadConfig(dir)
	if err != nil {
		return err
	}
	warnBudget(env, c.budget)
	if err := c.netFlags.apply(cfg); err != nil {
		return err
	}
	return fetchReplies(ctx, env, cfg, &c.outboxFlags, c.budget)
}

// fetchReplies derives the reply keys (asking for the codename if this
// run has not), fetches the replies within budget and prints them: each
// reply's id on a line, then its text, each line indented by two spaces.
func fetchReplies(ctx context.Context, env *cli.Env, cfg *client.Config, of *outboxFlags, budget time.Duration) error {
	keys, err := of.replyKeys(env, cfg, newWork(env))
	if err != nil {
		return err
	}
	rep, err := client.FetchReplies(ctx, cfg, keys, client.FetchOptions{
		Budget: budget,
		Reply: func(r *client.Reply) {
			// Shown as it opens, before it is deleted from the server.
			fmt.Fprintln(env.Stdout, r.ID)
			for _, line := range strings.Split(r.Text, "\n") {
				fmt.Fprintf(env.Stdout, "  %s\n", line)
			}
		},
	})
	deleted := 0
	for _, r := range rep.Replies {
		if r.Deleted {
			deleted++
		}
	}
	fmt.Fprintf(env.Stderr, "fieldtip: %d replies for you (%d deleted from the server) in a bucket of %d (%d bits of your mailbox id); %d bytes in %.1f s connected\n",
		len(rep.Replies), deleted, rep.Bucket, rep.Bits, rep.BytesSent+rep.BytesReceived, rep.Connected.Seconds())
	if err != nil {
		if errors.Is(err, client.ErrBudgetSpent) && len(rep.Replies) > deleted {
			return fmt.Errorf("%w: the replies shown but not deleted come again next time", err)
		}
		return err
	}
	return nil
}
