package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type noteCmd struct {
	sessionFlags
	text string
}

func (*noteCmd) Name() string  { return "note" }
func (*noteCmd) Usage() string { return "TIP --text TEXT --server URL --key FILE" }
func (*noteCmd) Summary() string {
	return "Log a note on a tip (encrypted to the editors); prints the event's index."
}
func (c *noteCmd) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.text, "text", "", "the note (required)")
}

func (c *noteCmd) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 1 || c.text == "" {
		return cli.Usagef("want one TIP and --text")
	}
	s, err := c.openSession(ctx, env, true)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	i, err := s.Note(ctx, args[0], c.text)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: logged a note on %s as event %d\n", args[0], i)
	fmt.Fprintln(env.Stdout, i)
	return nil
}
