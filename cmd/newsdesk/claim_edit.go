package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type claimEdit struct {
	sessionFlags
	text, scope string
	fs          *pflag.FlagSet
}

func (*claimEdit) Name() string { return "claim edit" }
func (*claimEdit) Usage() string {
	return "CLAIM --text TEXT [--scope TEXT] --server URL --key FILE"
}
func (*claimEdit) Summary() string {
	return "Log a new version of an unpublished claim (approvals of earlier versions stop counting); prints the version's event index."
}
func (c *claimEdit) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.text, "text", "", "the claim's new text (required)")
	fs.StringVar(&c.scope, "scope", "", "the new scope (default: the version in force's; --scope '' clears it)")
	c.fs = fs
}

func (c *claimEdit) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if err := claimArg(args, " and --text"); err != nil {
		return err
	}
	if c.text == "" {
		return cli.Usagef("want one CLAIM and --text")
	}
	var scope *string
	if c.fs.Changed("scope") {
		scope = &c.scope
	}
	d, err := c.openDesk(ctx, env)
	if err != nil {
		return err
	}
	defer closeDesk(d, &err)
	i, err := d.EditClaim(ctx, args[0], c.text, scope)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: logged version %d of claim %s; earlier approvals no longer count\n", i, args[0])
	fmt.Fprintln(env.Stdout, i)
	return nil
}
