package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type read struct {
	editorFlags
	out string
}

func (*read) Name() string  { return "read" }
func (*read) Usage() string { return "TIP-ID --key FILE [--cache DIR] [--out DIR]" }
func (*read) Summary() string {
	return "Check a cached tip against its receipt, decrypt it in memory, print its text; --out writes its attachments."
}
func (c *read) Flags(fs *pflag.FlagSet) {
	c.editorFlags.declare(fs)
	fs.StringVar(&c.out, "out", "", "write the tip's attachments into this directory (plaintext on disk: choose where)")
}

func (c *read) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 1 {
		return cli.Usagef("want one tip id")
	}
	cache, err := c.open(env)
	if err != nil {
		return err
	}
	e, err := cache.Find(args[0])
	if err != nil {
		return err
	}
	key, err := loadKey(env, &c.editorFlags)
	if err != nil {
		return err
	}
	t, err := e.Open(key)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "tip %s, received %s, %d bytes sealed\n\n%s\n", e.ID, e.Receipt.Day, e.Receipt.Length, newsdesk.TerminalSafe(t.Text))
	if len(t.Attachments) == 0 {
		return nil
	}
	if c.out == "" {
		fmt.Fprintln(env.Stdout)
		for _, a := range t.Attachments {
			fmt.Fprintf(env.Stdout, "attachment: %s (%s, %d bytes)\n", a.Name, a.Type, len(a.Data))
		}
		fmt.Fprintln(env.Stdout, "(use --out DIR to write the attachments)")
		return nil
	}
	paths, err := newsdesk.WriteAttachments(c.out, t)
	for _, p := range paths {
		fmt.Fprintf(env.Stdout, "wrote %s\n", p)
	}
	return err
}
