package main

import (
	"context"
	"fmt"

	"fieldtip/audit"
	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type correct struct {
	sessionFlags
	kind, text string
}

func (*correct) Name() string { return "correct" }
func (*correct) Usage() string {
	return "CLAIM --kind correction|clarification|retraction --text TEXT --server URL --key FILE"
}
func (*correct) Summary() string {
	return "Append a correction, clarification or retraction to a published claim (it is never rewritten) and post it; prints the event's index."
}
func (c *correct) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.kind, "kind", "", "correction, clarification or retraction (required)")
	fs.StringVar(&c.text, "text", "", "what is corrected, clarified or retracted, as published (required)")
}

func (c *correct) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if err := claimArg(args, ", --kind and --text"); err != nil {
		return err
	}
	switch audit.CorrectionType(c.kind) {
	case audit.CorrectionCorrection, audit.CorrectionClarification, audit.CorrectionRetraction:
	case "":
		return cli.Usagef("want one CLAIM, --kind and --text")
	default:
		return cli.Usagef("--kind %q is not one of correction, clarification, retraction", c.kind)
	}
	if c.text == "" {
		return cli.Usagef("want one CLAIM, --kind and --text")
	}
	d, err := c.openDesk(ctx, env)
	if err != nil {
		return err
	}
	defer closeDesk(d, &err)
	res, err := d.Correct(ctx, args[0], audit.CorrectionType(c.kind), c.text)
	if err != nil {
		return err
	}
	if res.Pending {
		fmt.Fprintf(env.Stderr, "newsdesk: logged the %s of claim %s as event %d; the server shows it once the publication's cosignatures are in: run newsdesk publish %s then\n", c.kind, res.Claim, res.Index, res.Claim)
	} else {
		fmt.Fprintf(env.Stderr, "newsdesk: logged the %s of claim %s as event %d; the server shows it at %s\n", c.kind, res.Claim, res.Index, res.URL)
	}
	fmt.Fprintln(env.Stdout, res.Index)
	return nil
}
