package main

import (
	"context"
	"fmt"

	"fieldtip/audit"
	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

type triage struct {
	serverFlags
	status, note string
	tags         []string
}

func (*triage) Name() string { return "triage" }
func (*triage) Usage() string {
	return "TIP --status new|reviewing|useful|spam|rejected [--tag T]... [--note TEXT] --server URL --key FILE"
}
func (*triage) Summary() string {
	return "Log a triage of a tip (status, tags, note: all encrypted to the editors); prints the event's index."
}
func (c *triage) Flags(fs *pflag.FlagSet) {
	c.serverFlags.declare(fs)
	fs.StringVar(&c.status, "status", "", "new, reviewing, useful, spam or rejected (required)")
	fs.StringArrayVar(&c.tags, "tag", nil, "a tag (repeatable); the triage sets the tip's whole tag set")
	fs.StringVar(&c.note, "note", "", "a note to add to the tip")
}

func (c *triage) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 1 || c.status == "" {
		return cli.Usagef("want one TIP and --status")
	}
	if !audit.ValidStatus(audit.Status(c.status)) {
		return cli.Usagef("--status %q is not one of new, reviewing, useful, spam, rejected", c.status)
	}
	cache, key, opts, err := c.openRemote(env)
	if err != nil {
		return err
	}
	i, err := cache.Triage(ctx, c.server, key, args[0], audit.Status(c.status), c.tags, c.note, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: logged the triage of %s (%s) as event %d\n", args[0], c.status, i)
	fmt.Fprintln(env.Stdout, i)
	return nil
}
