package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type replyCmd struct {
	sessionFlags
	text string
}

func (*replyCmd) Name() string  { return "reply" }
func (*replyCmd) Usage() string { return "TIP --text TEXT --server URL --key FILE" }
func (*replyCmd) Summary() string {
	return "Answer a tip's source: the text is sealed to the source's reply key (only the source can read it), logged as an event (encrypted to the editors), and left on the server under the source's mailbox until the source fetches it; prints the reply's id."
}
func (c *replyCmd) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.text, "text", "", "the reply, up to 4096 bytes (required)")
}

func (c *replyCmd) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 1 || c.text == "" {
		return cli.Usagef("want one TIP and --text")
	}
	s, err := c.openSession(ctx, env, true)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	r, err := s.Reply(ctx, args[0], c.text)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: replied to the source of %s (event %d; %d bytes sealed, waiting on the server until the source fetches it)\n", args[0], r.Index, r.Size)
	fmt.Fprintln(env.Stdout, r.ID)
	return nil
}
