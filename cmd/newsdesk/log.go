package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type logCmd struct{ serverFlags }

func (*logCmd) Name() string  { return "log" }
func (*logCmd) Usage() string { return "[--server URL] --key FILE [--cache DIR]" }
func (*logCmd) Summary() string {
	return "List the editorial events, decrypted in memory, one a line: index, day, editor, kind, tip, what (syncs first with --server)."
}
func (c *logCmd) Flags(fs *pflag.FlagSet) { c.serverFlags.declare(fs) }

func (c *logCmd) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	v, key, err := c.view(ctx, env)
	if err != nil {
		return err
	}
	if v == nil {
		return fmt.Errorf("the cache holds no log yet: run with --server")
	}
	ed, err := newsdesk.Replay(v, key)
	if err != nil {
		return err
	}
	refused := map[int64]string{}
	for _, r := range ed.State.Refused() {
		refused[r.Index] = r.Reason
	}
	for _, o := range ed.Events {
		fmt.Fprintln(env.Stdout, eventLine(o, refused[o.Index]))
	}
	for _, i := range ed.Unreadable {
		fmt.Fprintf(env.Stdout, "%d\t-\t-\t-\t-\t(not readable by %s: sealed before this editor was added; ask for a handover)\n", i, key.Label)
	}
	return nil
}

// eventLine is one line of newsdesk log: index, day, editor, kind, tip,
// and what the event says, safe for a terminal.
func eventLine(o newsdesk.OpenedEvent, refused string) string {
	b := o.Body
	tip, what := "-", ""
	if b.Kind != audit.KindHandover {
		tip = crypto.FormatTipID(b.Tip)
	}
	switch b.Kind {
	case audit.KindTriage:
		what = "status " + string(b.Status)
		if len(b.Tags) > 0 {
			what += ", tags " + strings.Join(b.Tags, ",")
		}
		if b.Text != "" {
			what += ": " + newsdesk.FirstLine(b.Text, 60)
		}
	case audit.KindNote:
		what = newsdesk.FirstLine(b.Text, 72)
	case audit.KindDelete:
		what = "deleted"
	case audit.KindHandover:
		what = "to " + b.To + ", " + strconv.Itoa(len(b.Bodies)) + " bodies"
	}
	if refused != "" {
		what += " (refused: " + refused + ")"
	}
	return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", o.Index, o.Event.Day, o.Event.Editor, b.Kind, tip, newsdesk.TerminalSafe(what))
}
