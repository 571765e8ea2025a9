package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type read struct {
	editorFlags
	out  string
	json bool
}

func (*read) Name() string  { return "read" }
func (*read) Usage() string { return "TIP-ID --key FILE [--cache DIR] [--out DIR] [--json]" }
func (*read) Summary() string {
	return "Check a cached tip against its receipt, decrypt it in memory, print its text; --out writes its attachments."
}
func (c *read) Flags(fs *pflag.FlagSet) {
	c.editorFlags.declare(fs)
	fs.StringVar(&c.out, "out", "", "write the tip's attachments into this directory (plaintext on disk: choose where); a name taken gets a number")
	fs.BoolVar(&c.json, "json", false, "print the tip as JSON: its text, status, tags, notes and attachments (not their bytes)")
}

func (c *read) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 1 {
		return cli.Usagef("want one tip id")
	}
	tid, err := crypto.ParseTipID(args[0])
	if err != nil {
		return err
	}
	s, err := c.openSession(ctx, env, "", "")
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	t, e, err := s.OpenTip(args[0])
	if err != nil {
		return err
	}
	var paths []string
	var werr error
	if c.out != "" {
		paths, werr = newsdesk.WriteAttachments(c.out, t)
	}
	ts := s.State().Tip(tid)
	if c.json {
		j := readJSON{ID: e.ID, Day: e.Receipt.Day, Size: e.Receipt.Length, SHA256: hex.EncodeToString(e.Receipt.SHA256[:]),
			Tags: []string{}, Notes: []noteJSON{}, Text: t.Text, Attachments: []attachmentJSON{}}
		if ts != nil {
			j.Status, j.Tags = string(ts.Status), append(j.Tags, ts.Tags...)
			for _, n := range ts.Notes {
				j.Notes = append(j.Notes, noteJSON{Index: n.Index, Editor: n.Editor, Day: n.Day, Text: n.Text})
			}
		}
		for i, a := range t.Attachments {
			h := sha256.Sum256(a.Data)
			aj := attachmentJSON{Name: a.Name, Type: a.Type, Size: len(a.Data), SHA256: hex.EncodeToString(h[:])}
			if i < len(paths) {
				aj.Path = paths[i]
			}
			j.Attachments = append(j.Attachments, aj)
		}
		if err := writeJSON(env.Stdout, j); err != nil {
			return err
		}
		return werr
	}
	fmt.Fprintf(env.Stdout, "tip %s, received %s, %d bytes sealed\n", e.ID, e.Receipt.Day, e.Receipt.Length)
	if ts != nil && ts.Status != "" {
		fmt.Fprintf(env.Stdout, "status %s, tags %s, %d note(s)\n", cli.TerminalSafe(string(ts.Status)), cli.TerminalSafe(orDash(joinTags(ts.Tags))), len(ts.Notes))
	}
	fmt.Fprintf(env.Stdout, "\n%s\n", cli.TerminalSafe(t.Text))
	if len(t.Attachments) == 0 {
		return nil
	}
	if c.out != "" {
		for _, p := range paths {
			fmt.Fprintf(env.Stdout, "wrote %s\n", cli.TerminalSafe(p))
		}
		return werr
	}
	fmt.Fprintln(env.Stdout)
	for _, a := range t.Attachments {
		fmt.Fprintf(env.Stdout, "attachment: %s (%s, %d bytes)\n", cli.TerminalSafe(a.Name), cli.TerminalSafe(a.Type), len(a.Data))
	}
	fmt.Fprintln(env.Stdout, "(use --out DIR to write the attachments)")
	return nil
}
