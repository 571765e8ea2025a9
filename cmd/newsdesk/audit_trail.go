package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type auditTrail struct{ newsroom string }

func (*auditTrail) Name() string  { return "audit trail" }
func (*auditTrail) Usage() string { return "URL-or-FILE [--newsroom VERIFIER]" }
func (*auditTrail) Summary() string {
	return "Check one published claim's trail offline, with no key: prints what it establishes (clusters, approving editors, receipt periods, checkpoint and cosigners); exits 1 naming what fails."
}
func (c *auditTrail) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.newsroom, "newsroom", "", "the newsroom's verifier key, as it publishes it (default: the key the trail's first bundle names, which shows the trail consistent, not the newsroom's)")
}

func (c *auditTrail) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 1 {
		return cli.Usagef("want one URL or FILE: a claim's page or trail URL, or a trail file")
	}
	data, err := newsdesk.ReadTrail(ctx, args[0])
	if err != nil {
		return err
	}
	a, err := newsdesk.CheckTrail(data, c.newsroom)
	if err != nil {
		return err
	}
	if err := newsdesk.WriteTrailReport(env.Stdout, a); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: the trail of claim %s verifies\n", a.Report.Claim)
	return nil
}
