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

// serverFlags are the flags of every command that talks to the log.
type serverFlags struct {
	editorFlags
	server, newsroom string
}

func (f *serverFlags) declare(fs *pflag.FlagSet) {
	f.editorFlags.declare(fs)
	fs.StringVar(&f.server, "server", "", "the server's URL (required)")
	fs.StringVar(&f.newsroom, "newsroom", "", "newsroom verifier key to pin (default: trust the first bundle seen)")
}

// openRemote checks the flags and opens the cache and the editor's key.
func (f *serverFlags) openRemote(env *cli.Env) (*newsdesk.Cache, *crypto.EditorKey, newsdesk.SyncOptions, error) {
	if f.server == "" {
		return nil, nil, newsdesk.SyncOptions{}, cli.Usagef("--server is required")
	}
	cache, err := f.open(env)
	if err != nil {
		return nil, nil, newsdesk.SyncOptions{}, err
	}
	key, err := loadKey(env, &f.editorFlags)
	if err != nil {
		return nil, nil, newsdesk.SyncOptions{}, err
	}
	return cache, key, newsdesk.SyncOptions{Newsroom: f.newsroom}, nil
}

type syncCmd struct{ serverFlags }

func (*syncCmd) Name() string  { return "sync" }
func (*syncCmd) Usage() string { return "--server URL --key FILE [--cache DIR]" }
func (*syncCmd) Summary() string {
	return "Pull new tips, verify the log (consistency, every entry, receipts trees) and cosign its checkpoint; prints new tip ids, then the log's size and root."
}
func (c *syncCmd) Flags(fs *pflag.FlagSet) { c.serverFlags.declare(fs) }

func (c *syncCmd) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	cache, key, opts, err := c.openRemote(env)
	if err != nil {
		return err
	}
	opts.Pulled = func(id string) { fmt.Fprintln(env.Stdout, id) }
	v, err := cache.SyncLog(ctx, c.server, key, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "log %d %s\n", v.Tree.N, v.Tree.Hash)
	fmt.Fprintf(env.Stderr, "newsdesk: verified and cosigned the log at %d entries (bundle version %d)\n", v.Tree.N, v.Bundle.Version)
	return nil
}

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

type noteCmd struct {
	serverFlags
	text string
}

func (*noteCmd) Name() string  { return "note" }
func (*noteCmd) Usage() string { return "TIP --text TEXT --server URL --key FILE" }
func (*noteCmd) Summary() string {
	return "Log a note on a tip (encrypted to the editors); prints the event's index."
}
func (c *noteCmd) Flags(fs *pflag.FlagSet) {
	c.serverFlags.declare(fs)
	fs.StringVar(&c.text, "text", "", "the note (required)")
}

func (c *noteCmd) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 1 || c.text == "" {
		return cli.Usagef("want one TIP and --text")
	}
	cache, key, opts, err := c.openRemote(env)
	if err != nil {
		return err
	}
	i, err := cache.Note(ctx, c.server, key, args[0], c.text, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: logged a note on %s as event %d\n", args[0], i)
	fmt.Fprintln(env.Stdout, i)
	return nil
}

type deleteCmd struct{ serverFlags }

func (*deleteCmd) Name() string  { return "delete" }
func (*deleteCmd) Usage() string { return "TIP --server URL --key FILE" }
func (*deleteCmd) Summary() string {
	return "Delete a tip triaged rejected or spam: log the deletion, remove its ciphertext from the server and the cache; prints the event's index."
}
func (c *deleteCmd) Flags(fs *pflag.FlagSet) { c.serverFlags.declare(fs) }

func (c *deleteCmd) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 1 {
		return cli.Usagef("want one TIP")
	}
	cache, key, opts, err := c.openRemote(env)
	if err != nil {
		return err
	}
	i, pending, err := cache.Delete(ctx, c.server, key, args[0], opts)
	if err != nil {
		return err
	}
	if pending {
		fmt.Fprintf(env.Stderr, "newsdesk: logged the deletion of %s as event %d; the server removes its ciphertext once the day's receipts root is logged\n", args[0], i)
	} else {
		fmt.Fprintf(env.Stderr, "newsdesk: logged the deletion of %s as event %d; the server removed its ciphertext\n", args[0], i)
	}
	fmt.Fprintln(env.Stdout, i)
	return nil
}

type handover struct {
	serverFlags
	to string
}

func (*handover) Name() string  { return "handover" }
func (*handover) Usage() string { return "--to LABEL --server URL --key FILE" }
func (*handover) Summary() string {
	return "Re-encrypt the earlier event bodies to an editor added since, as handover events; prints their indexes."
}
func (c *handover) Flags(fs *pflag.FlagSet) {
	c.serverFlags.declare(fs)
	fs.StringVar(&c.to, "to", "", "the new editor's label (required)")
}

func (c *handover) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 || c.to == "" {
		return cli.Usagef("want --to LABEL and no arguments")
	}
	cache, key, opts, err := c.openRemote(env)
	if err != nil {
		return err
	}
	is, err := cache.Handover(ctx, c.server, key, c.to, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: %d handover event(s) to %s\n", len(is), c.to)
	for _, i := range is {
		fmt.Fprintln(env.Stdout, i)
	}
	return nil
}

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

// view syncs the log with --server, or else loads the cache's replica.
func (c *serverFlags) view(ctx context.Context, env *cli.Env) (*newsdesk.LogView, *crypto.EditorKey, error) {
	if c.server != "" {
		cache, key, opts, err := c.openRemote(env)
		if err != nil {
			return nil, nil, err
		}
		v, err := cache.SyncLog(ctx, c.server, key, opts)
		return v, key, err
	}
	cache, err := c.open(env)
	if err != nil {
		return nil, nil, err
	}
	key, err := loadKey(env, &c.editorFlags)
	if err != nil {
		return nil, nil, err
	}
	v, err := cache.LoadLog(ctx)
	return v, key, err
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

type auditVerify struct {
	server, state, newsroom string
	cosigners               int
}

func (*auditVerify) Name() string { return "audit verify" }
func (*auditVerify) Usage() string {
	return "--server URL [--state DIR] [--cosigners N] [--newsroom VERIFIER]"
}
func (*auditVerify) Summary() string {
	return "Check the log with no decryption key: consistent with the last state seen, every entry signed by whom it must be, N editors' cosignatures."
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
		fmt.Fprintf(env.Stdout, "cosigned %d by %s\n", rep.Cosigned.N, strings.Join(rep.Cosigners, ","))
	}
	fmt.Fprintf(env.Stderr, "newsdesk: the log verifies: %d entries, consistent with %s\n", rep.Tree.N, c.state)
	return nil
}
