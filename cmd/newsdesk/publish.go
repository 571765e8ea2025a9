package main

import (
	"context"
	"fmt"
	"strings"

	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

// exitPending is publish's exit status when the publication is logged and
// the server keeps it until enough editors have cosigned (documented in
// the command's summary, as fieldtip send's 3).
const exitPending = 3

type publish struct{ sessionFlags }

func (*publish) Name() string  { return "publish" }
func (*publish) Usage() string { return "CLAIM --server URL --key FILE" }
func (*publish) Summary() string {
	return "Publish a claim the policy allows (else says what is lacking): log the publication, reveal the public parts to the server; prints the public URL on the last line. " +
		"Exits 3 when the server waits for editors' cosignatures, saying whose; run it again to post a publication or correction again."
}
func (c *publish) Flags(fs *pflag.FlagSet) { c.sessionFlags.declare(fs, "the server's URL (required)") }

func (c *publish) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if err := claimArg(args, ""); err != nil {
		return err
	}
	d, err := c.openDesk(ctx, env)
	if err != nil {
		return err
	}
	defer closeDesk(d, &err)
	res, err := d.Publish(ctx, args[0])
	if err != nil {
		return err
	}
	switch {
	case res.Logged:
		fmt.Fprintf(env.Stderr, "newsdesk: logged the publication of claim %s as event %d (%d supporting clusters, approved by %s)\n",
			res.Claim, res.Index, len(res.Policy.Clusters), strings.Join(res.Policy.Approvers, ", "))
	case res.Posted:
		fmt.Fprintf(env.Stderr, "newsdesk: the log publishes claim %s already (event %d); posted it to the server again\n", res.Claim, res.Index)
	default:
		fmt.Fprintf(env.Stderr, "newsdesk: %s published claim %s on %s (event %d); the server shows it\n", res.Publisher, res.Claim, res.Day, res.Index)
		fmt.Fprintln(env.Stdout, res.URL)
		return nil
	}
	if res.Pending() {
		w := res.Reply.Waiting
		return &cli.ExitError{Code: exitPending, Msg: fmt.Sprintf(
			"the server keeps the publication pending: it needs one checkpoint of at least %d entries cosigned by %d editors of bundle %d, and the most any such checkpoint has is %d; "+
				"each editor's newsdesk sync cosigns the log's latest checkpoint, so have %d more of %s run newsdesk sync, one after another with nothing logged in between "+
				"(then sync yourself if needed); the server publishes the claim as soon as one checkpoint has them all, and newsdesk publish %s prints its URL",
			w.Size, w.Cosigners, w.Bundle, w.Have, max(w.Cosigners-w.Have, 1), strings.Join(res.Others, ", "), res.Claim)}
	}
	fmt.Fprintf(env.Stderr, "newsdesk: the server checked the trail and publishes claim %s: witnessed at %d entries, cosigned by %s\n",
		res.Claim, res.Reply.Witnessed, strings.Join(res.Reply.Cosigners, ", "))
	if len(res.Corrections) > 0 {
		fmt.Fprintf(env.Stderr, "newsdesk: posted %d correction(s) again\n", len(res.Corrections))
	}
	fmt.Fprintln(env.Stdout, res.URL)
	return nil
}
