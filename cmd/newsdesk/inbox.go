package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type inbox struct {
	sessionFlags
	json bool
}

func (*inbox) Name() string  { return "inbox" }
func (*inbox) Usage() string { return "[--server URL] --key FILE [--cache DIR] [--json]" }
func (*inbox) Summary() string {
	return "List cached tips, one a line: id, day, size, triage status, tags, attachments, first line of text (decrypted in memory; syncs first with --server)."
}
func (c *inbox) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "sync with this server first (default: offline, from the cache)")
	fs.BoolVar(&c.json, "json", false, "print a JSON array of the tips instead")
}

func (c *inbox) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	s, err := c.openReader(ctx, env)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	tips, err := s.Tips()
	if err != nil {
		return err
	}
	reportNotSealed(env, s, tips)
	st := s.State()
	// Tips from one codename carry one mailbox id (docs/replies.md).
	counts := newsdesk.SourceCounts(tips)
	if c.json {
		out := make([]inboxJSON, 0, len(tips))
		for _, t := range tips {
			j := inboxJSON{ID: t.ID, Day: t.Day, Size: t.Length, Tags: []string{}, Attachments: t.Attachments, FirstLine: t.FirstLine, Unreadable: t.Unreadable,
				Source: t.Mailbox, SourceTips: counts[t.ID]}
			if id, err := crypto.ParseTipID(t.ID); err == nil {
				if ts := st.Tip(id); ts != nil {
					j.Status, j.Tags, j.Notes = string(ts.Status), append(j.Tags, ts.Tags...), len(ts.Notes)
				}
			}
			out = append(out, j)
		}
		return writeJSON(env.Stdout, out)
	}
	tb := newTable(env.Stdout, "ID", "DAY", "SIZE", "STATUS", "TAGS", "ATTACHED", "TEXT")
	for _, t := range tips {
		status, tags := "", ""
		if id, err := crypto.ParseTipID(t.ID); err == nil {
			if ts := st.Tip(id); ts != nil {
				status, tags = string(ts.Status), strings.Join(ts.Tags, ",")
			}
		}
		text, attached := t.FirstLine, strconv.Itoa(len(t.Attachments))
		switch {
		case t.Unreadable == newsdesk.UnreadableNotSealed:
			text, attached = "(not sealed to this key)", "-"
		case t.Unreadable != "":
			text, attached = "(does not open: "+t.Unreadable+")", "-"
		}
		if n := counts[t.ID]; n > 1 {
			text += fmt.Sprintf(" (%d tips from this source %.6s)", n, t.Mailbox)
		}
		tb.row(t.ID, t.Day, strconv.FormatInt(t.Length, 10), orDash(status), orDash(tags), attached, cli.TerminalSafe(text))
	}
	return tb.flush()
}
