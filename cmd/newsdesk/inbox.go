package main

import (
	"context"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type inbox struct{ editorFlags }

func (*inbox) Name() string  { return "inbox" }
func (*inbox) Usage() string { return "--key FILE [--cache DIR]" }
func (*inbox) Summary() string {
	return "List cached tips, one a line: id, day, size, first line of text (decrypted in memory)."
}
func (c *inbox) Flags(fs *pflag.FlagSet) { c.editorFlags.declare(fs) }

func (c *inbox) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	cache, err := c.open(env)
	if err != nil {
		return err
	}
	key, err := loadKey(env, &c.editorFlags)
	if err != nil {
		return err
	}
	return cache.Inbox(env.Stdout, key)
}
