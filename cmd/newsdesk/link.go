package main

import (
	"context"
	"fmt"
	"strings"

	"fieldtip/audit"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type link struct {
	sessionFlags
	stance, cluster, reliability, access, why string
	credibility                               int
	privateWhy                                bool
}

func (*link) Name() string { return "link" }
func (*link) Usage() string {
	return "CLAIM TIP --stance supports|contradicts|context --cluster NAME --reliability A..F --credibility 1..6 " +
		"--access first-hand|second-hand|hearsay|document --why TEXT [--private-why] --server URL --key FILE"
}
func (*link) Summary() string {
	return "Log a tip as evidence for a claim, graded (Admiralty) and in an independence cluster; only the tip's blinded handle is public. Prints the event's index."
}
func (c *link) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.stance, "stance", "", "supports, contradicts or context (required)")
	fs.StringVar(&c.cluster, "cluster", "", "independence cluster: evidence that may share a source shares a name (required)")
	fs.StringVar(&c.reliability, "reliability", "", "the source's reliability, A (reliable) to E (unreliable), F (cannot be judged) (required)")
	fs.IntVar(&c.credibility, "credibility", 0, "the information's credibility, 1 (confirmed) to 5 (improbable), 6 (cannot be judged) (required)")
	fs.StringVar(&c.access, "access", "", "how the source knows: first-hand, second-hand, hearsay or document (required)")
	fs.StringVar(&c.why, "why", "", "why these grades and this cluster (required; published unless --private-why)")
	fs.BoolVar(&c.privateWhy, "private-why", false, "keep the why among the editors: never published")
}

func (c *link) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 2 {
		return cli.Usagef("want CLAIM and TIP")
	}
	spec := newsdesk.LinkSpec{Stance: audit.Stance(c.stance), Cluster: c.cluster, Reliability: strings.ToUpper(c.reliability),
		Credibility: c.credibility, Access: audit.Access(c.access), Why: c.why, PrivateWhy: c.privateWhy}
	if err := spec.Check(); err != nil {
		return cli.Usagef("%v", err)
	}
	d, err := c.openDesk(ctx, env)
	if err != nil {
		return err
	}
	defer closeDesk(d, &err)
	res, err := d.Link(ctx, args[0], args[1], spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: linked tip %s to claim %s as event %d: %s, cluster %q, %s%d %s; public handle %s (receipts of %s)\n",
		args[1], res.Claim, res.Index, spec.Stance, spec.Cluster, spec.Reliability, spec.Credibility, spec.Access, res.Handle.Leaf, periodText(res.Handle.Period))
	fmt.Fprintln(env.Stdout, res.Index)
	return nil
}

// periodText writes a receipts period: one day, or first to last.
func periodText(p audit.Period) string {
	if p.First == p.Last {
		return p.First
	}
	return p.First + " to " + p.Last
}
