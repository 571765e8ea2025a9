package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type deleteCmd struct{ serverFlags }

func (*deleteCmd) Name() string  { return "delete" }
func (*deleteCmd) Usage() string { return "TIP --server URL --key FILE" }
func (*deleteCmd) Summary() string {
	return "Delete a tip triaged rejected or spam: log the deletion, remove its ciphertext from the server and the cache; prints the event's index."
}
func (c *deleteCmd) Flags(fs *pflag.FlagSet) { c.serverFlags.declare(fs) }

func (c *deleteCmd) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 1 {
		return cli.Usagef("want one TIP")
	}
	cache, key, opts, err := c.openRemote(env)
	if err != nil {
		return err
	}
	i, pending, err := cache.Delete(ctx, c.server, key, args[0], opts)
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
