package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type deleteCmd struct{ sessionFlags }

func (*deleteCmd) Name() string  { return "delete" }
func (*deleteCmd) Usage() string { return "TIP --server URL --key FILE" }
func (*deleteCmd) Summary() string {
	return "Delete a tip triaged rejected or spam: log the deletion, remove its ciphertext from the server and the cache; prints the event's index."
}
func (c *deleteCmd) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
}

func (c *deleteCmd) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 1 {
		return cli.Usagef("want one TIP")
	}
	s, err := c.openSession(ctx, env, true)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	i, pending, err := s.Delete(ctx, args[0])
	if err != nil {
		return err
	}
	if pending {
		fmt.Fprintf(env.Stderr, "newsdesk: logged the deletion of %s as event %d; the server removes its ciphertext once the day's receipts root is logged\n", args[0], i)
	} else {
		fmt.Fprintf(env.Stderr, "newsdesk: logged the deletion of %s as event %d; the server removed its ciphertext\n", args[0], i)
	}
	fmt.Fprintln(env.Stdout, i)
	return nil
}
