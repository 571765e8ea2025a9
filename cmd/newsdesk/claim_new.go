package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type claimNew struct {
	sessionFlags
	text, scope string
}

func (*claimNew) Name() string { return "claim new" }
func (*claimNew) Usage() string {
	return "--text TEXT [--scope TEXT] --server URL --key FILE"
}
func (*claimNew) Summary() string {
	return "Log a new claim (its text and scope are published with it, if it is); prints the claim's id on the last line."
}
func (c *claimNew) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.text, "text", "", "the claim, as it would be published (required)")
	fs.StringVar(&c.scope, "scope", "", "what the claim covers and does not (place, period, limits)")
}

func (c *claimNew) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 0 || c.text == "" {
		return cli.Usagef("want --text and no arguments")
	}
	d, err := c.openDesk(ctx, env)
	if err != nil {
		return err
	}
	defer closeDesk(d, &err)
	id, i, err := d.NewClaim(ctx, c.text, c.scope)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: logged claim %s, version %d (event %d); next, link evidence: newsdesk link %s TIP ...\n", id, i, i, id)
	fmt.Fprintln(env.Stdout, id)
	return nil
}
