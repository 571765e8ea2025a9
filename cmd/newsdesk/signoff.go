package main

import (
	"context"
	"fmt"
	"strings"

	"fieldtip/audit"
	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type signoff struct {
	sessionFlags
	decision, note string
}

func (*signoff) Name() string { return "signoff" }
func (*signoff) Usage() string {
	return "CLAIM --decision approve|reject|needs-work [--note TEXT] --server URL --key FILE"
}
func (*signoff) Summary() string {
	return "Log your sign-off of a claim over exactly the version and evidence your replay shows, then what the policy still lacks; prints the event's index."
}
func (c *signoff) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.decision, "decision", "", "approve, reject or needs-work (required)")
	fs.StringVar(&c.note, "note", "", "a note to the other editors (never published)")
}

func (c *signoff) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if err := claimArg(args, " and --decision"); err != nil {
		return err
	}
	switch d := audit.Decision(c.decision); d {
	case audit.DecisionApprove, audit.DecisionReject, audit.DecisionNeedsWork:
	case "":
		return cli.Usagef("want one CLAIM and --decision")
	default:
		return cli.Usagef("--decision %q is not one of approve, reject, needs-work", c.decision)
	}
	d, err := c.openDesk(ctx, env)
	if err != nil {
		return err
	}
	defer closeDesk(d, &err)
	res, err := d.Signoff(ctx, args[0], audit.Decision(c.decision), c.note)
	if err != nil {
		return err
	}
	b := res.Body
	fmt.Fprintf(env.Stderr, "newsdesk: logged your %s of claim %s as event %d, over version %d, evidence %x…, %d changes\n",
		b.Decision, b.Claim, res.Index, b.Version, b.Evidence[:6], b.Changes)
	for _, n := range res.Notes {
		fmt.Fprintf(env.Stderr, "newsdesk: note: %s\n", n)
	}
	if res.Policy.Met {
		fmt.Fprintf(env.Stderr, "newsdesk: the policy is met: newsdesk publish %s publishes it\n", b.Claim)
	} else {
		fmt.Fprintf(env.Stderr, "newsdesk: the policy still lacks: %s\n", strings.Join(res.Policy.Lacking, "; "))
	}
	fmt.Fprintln(env.Stdout, res.Index)
	return nil
}
