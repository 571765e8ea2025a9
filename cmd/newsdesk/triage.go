package main

import (
	"context"
	"fmt"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type triage struct {
	sessionFlags
	status, note      string
	tags, add, remove []string
}

func (*triage) Name() string { return "triage" }
func (*triage) Usage() string {
	return "TIP [--status new|reviewing|useful|spam|rejected] [--add-tag T]... [--remove-tag T]... [--tag T]... [--note TEXT] --server URL --key FILE"
}
func (*triage) Summary() string {
	return "Log a triage of a tip, changing only what is given (status, tags, a note: all encrypted to the editors); prints the event's index."
}
func (c *triage) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "the server's URL (required)")
	fs.StringVar(&c.status, "status", "", "new, reviewing, useful, spam or rejected (default: keep the tip's status)")
	fs.StringArrayVar(&c.add, "add-tag", nil, "add a tag (repeatable)")
	fs.StringArrayVar(&c.remove, "remove-tag", nil, "remove a tag (repeatable)")
	fs.StringArrayVar(&c.tags, "tag", nil, "replace the tip's whole tag set with these (repeatable)")
	fs.StringVar(&c.note, "note", "", "a note to add to the tip")
}

func (c *triage) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 1 {
		return cli.Usagef("want one TIP")
	}
	if c.status != "" && !audit.ValidStatus(audit.Status(c.status)) {
		return cli.Usagef("--status %q is not one of new, reviewing, useful, spam, rejected", c.status)
	}
	ch := newsdesk.TriageChange{Status: audit.Status(c.status), SetTags: c.tags, ReplaceTags: len(c.tags) > 0,
		AddTags: c.add, RemoveTags: c.remove, Note: c.note}
	if ch.Status == "" && !ch.ReplaceTags && len(c.add) == 0 && len(c.remove) == 0 && c.note == "" {
		return cli.Usagef("give at least one of --status, --add-tag, --remove-tag, --tag, --note")
	}
	s, err := c.openSession(ctx, env, true)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	i, err := s.Triage(ctx, args[0], ch)
	if err != nil {
		return err
	}
	what := ""
	if id, err := crypto.ParseTipID(args[0]); err == nil {
		if ts := s.State().Tip(id); ts != nil {
			what = fmt.Sprintf("%s, tags %s", ts.Status, orDash(joinTags(ts.Tags)))
		}
	}
	fmt.Fprintf(env.Stderr, "newsdesk: logged the triage of %s (%s) as event %d\n", args[0], what, i)
	fmt.Fprintln(env.Stdout, i)
	return nil
}
