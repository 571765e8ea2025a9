package main

import (
	"context"
	"strconv"
	"strings"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type logCmd struct {
	sessionFlags
	json bool
}

func (*logCmd) Name() string  { return "log" }
func (*logCmd) Usage() string { return "[--server URL] --key FILE [--cache DIR] [--json]" }
func (*logCmd) Summary() string {
	return "List the editorial events, decrypted in memory, one a line: index, day, editor, kind, tip, what (syncs first with --server)."
}
func (c *logCmd) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "sync with this server first (default: offline, from the cache)")
	fs.BoolVar(&c.json, "json", false, "print a JSON array of the events instead")
}

func (c *logCmd) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	s, err := c.openReader(ctx, env)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	if s.View() == nil {
		return errNoLog
	}
	ed := s.Editorial()
	refused := map[int64]string{}
	for _, r := range ed.State.Refused() {
		refused[r.Index] = r.Reason
	}
	// The events opened and those this editor cannot read, in log order.
	var rows []eventJSON
	opened := ed.Events
	unreadable := ed.Unreadable
	for len(opened) > 0 || len(unreadable) > 0 {
		if len(unreadable) == 0 || (len(opened) > 0 && opened[0].Index < unreadable[0]) {
			rows = append(rows, eventRow(opened[0], refused[opened[0].Index]))
			opened = opened[1:]
			continue
		}
		i := unreadable[0]
		unreadable = unreadable[1:]
		row := eventJSON{Index: i, Unreadable: true}
		if ev, err := s.View().Event(i); err == nil {
			row.Day, row.Editor = ev.Day, ev.Editor
		}
		rows = append(rows, row)
	}
	if c.json {
		if rows == nil {
			rows = []eventJSON{}
		}
		return writeJSON(env.Stdout, rows)
	}
	label := s.Key().Label
	tb := newTable(env.Stdout, "INDEX", "DAY", "EDITOR", "KIND", "TIP", "WHAT")
	for _, r := range rows {
		if r.Unreadable {
			tb.row(strconv.FormatInt(r.Index, 10), orDash(r.Day), orDash(r.Editor), "-", "-", "(not readable by "+label+": sealed before this editor was added; ask for a handover)")
			continue
		}
		tb.row(strconv.FormatInt(r.Index, 10), r.Day, r.Editor, r.Kind, orDash(r.Tip), cli.TerminalSafe(eventWhat(r)))
	}
	return tb.flush()
}

// eventRow is the JSON of an opened event.
func eventRow(o newsdesk.OpenedEvent, refused string) eventJSON {
	b := o.Body
	r := eventJSON{Index: o.Index, Day: o.Event.Day, Editor: o.Event.Editor, Kind: string(b.Kind), Refused: refused}
	if b.Kind != audit.KindHandover {
		r.Tip = crypto.FormatTipID(b.Tip)
	}
	switch b.Kind {
	case audit.KindTriage:
		r.Status, r.Tags, r.Text = string(b.Status), b.Tags, b.Text
	case audit.KindNote:
		r.Text = b.Text
	case audit.KindHandover:
		r.To = b.To
		for _, h := range b.Bodies {
			r.Bodies = append(r.Bodies, h.Index)
		}
	}
	return r
}

// eventWhat is the last column of newsdesk log: what the event says.
func eventWhat(r eventJSON) string {
	what := ""
	switch audit.Kind(r.Kind) {
	case audit.KindTriage:
		what = "status " + r.Status
		if len(r.Tags) > 0 {
			what += ", tags " + strings.Join(r.Tags, ",")
		}
		if r.Text != "" {
			what += ": " + newsdesk.FirstLine(r.Text, 60)
		}
	case audit.KindNote:
		what = newsdesk.FirstLine(r.Text, 72)
	case audit.KindDelete:
		what = "deleted"
	case audit.KindHandover:
		what = "to " + r.To + ", " + strconv.Itoa(len(r.Bodies)) + " bodies"
	default:
		what = "(a " + r.Kind + " event)"
	}
	if r.Refused != "" {
		what += " (refused: " + r.Refused + ")"
	}
	return what
}
