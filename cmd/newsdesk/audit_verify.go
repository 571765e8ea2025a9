package main

import (
	"context"
	"fmt"
	"strings"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type auditVerify struct {
	server, state, newsroom string
	cosigners               int
}

func (*auditVerify) Name() string { return "audit verify" }
func (*auditVerify) Usage() string {
	return "--server URL [--state DIR] [--cosigners N] [--newsroom VERIFIER]"
}
func (*auditVerify) Summary() string {
	return "Check the log with no decryption key: consistent with the last state seen, every entry signed by whom it must be, N editors' cosignatures, and every published claim's trail (its policy re-evaluated)."
}
func (c *auditVerify) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "the server's URL (required)")
	fs.StringVar(&c.state, "state", "fieldtip-audit", "directory keeping the log verified so far")
	fs.IntVar(&c.cosigners, "cosigners", 0, "require a checkpoint cosigned by this many editors")
	fs.StringVar(&c.newsroom, "newsroom", "", "newsroom verifier key to pin (default: trust the first bundle seen)")
}

func (c *auditVerify) Run(ctx context.Context, env *cli.Env, args []string) error {
	if c.server == "" || len(args) != 0 || c.cosigners < 0 {
		return cli.Usagef("want --server URL, no arguments and --cosigners of at least 0")
	}
	rep, err := newsdesk.AuditVerify(ctx, c.server, c.state, newsdesk.AuditOptions{Newsroom: c.newsroom, Cosigners: c.cosigners})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "log %d %s\n", rep.Tree.N, rep.Tree.Hash)
	if c.cosigners > 0 {
		fmt.Fprintf(env.Stdout, "cosigned %d by %s\n", rep.Cosigned.N, cli.TerminalSafe(strings.Join(rep.Cosigners, ",")))
	}
	for _, p := range rep.Publications {
		r := p.Report
		fmt.Fprintf(env.Stdout, "published %s %d %s: %d supporting clusters, approved by %s, policy of bundle %d met\n",
			p.Claim, p.Index, r.Published.Day, len(r.Policy.Clusters), strings.Join(r.Policy.Approvers, ","), r.Bundle)
	}
	fmt.Fprintf(env.Stderr, "newsdesk: the log verifies: %d entries, consistent with %s; %d published claim(s), every trail checked\n", rep.Tree.N, c.state, len(rep.Publications))
	return nil
}
