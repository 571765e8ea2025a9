package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"
)

// table writes the lines of a listing: on a terminal, aligned columns
// under a header line; otherwise one tab-separated line per row and no
// header, for scripts (DESIGN.md §7: one item a line, its id first).
type table struct {
	w  io.Writer
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: w}
	if isTerminal(w) {
		t.tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(t.tw, strings.Join(header, "\t"))
	}
	return t
}

// row writes one row, every cell through cli.TerminalSafe: cells hold
// what editors, sources and the server wrote.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cli.TerminalSafe(c)
	}
	if t.tw != nil {
		fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
		return
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	if t.tw != nil {
		return t.tw.Flush()
	}
	return nil
}

// writeJSON writes v as one line of JSON. JSON escapes every control
// character, so nothing a source wrote can reach a terminal raw; HTML
// characters are left as they are, for reading.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// joinTags joins tags with commas.
func joinTags(tags []string) string { return strings.Join(tags, ",") }

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// The --json forms (README, "Editorial work"). Lists are never null.

// inboxJSON is one tip of inbox --json.
type inboxJSON struct {
	ID          string                    `json:"id"`
	Day         string                    `json:"day"`
	Size        int64                     `json:"size"`
	Status      string                    `json:"status"`
	Tags        []string                  `json:"tags"`
	Notes       int                       `json:"notes"`
	Attachments []newsdesk.AttachmentInfo `json:"attachments"`
	FirstLine   string                    `json:"first_line"`
	Unreadable  string                    `json:"unreadable,omitempty"`
	// Source is the mailbox id of the tip's source (docs/replies.md) and
	// SourceTips how many tips it sent; absent for a tip without one.
	Source     string `json:"source,omitempty"`
	SourceTips int    `json:"source_tips,omitempty"`
}

// eventJSON is one event of log --json.
type eventJSON struct {
	Index  int64  `json:"index"`
	Day    string `json:"day"`
	Editor string `json:"editor"`
	// Kind is "" for an event this editor cannot read (Unreadable set).
	Kind       string   `json:"kind"`
	Tip        string   `json:"tip,omitempty"`
	Status     string   `json:"status,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Text       string   `json:"text,omitempty"`
	To         string   `json:"to,omitempty"`
	Bodies     []int64  `json:"bodies,omitempty"`
	Refused    string   `json:"refused,omitempty"`
	Unreadable bool     `json:"unreadable,omitempty"`
}

// readJSON is read --json.
type readJSON struct {
	ID          string           `json:"id"`
	Day         string           `json:"day"`
	Size        int64            `json:"size"`
	SHA256      string           `json:"sha256"`
	Status      string           `json:"status"`
	Tags        []string         `json:"tags"`
	Notes       []noteJSON       `json:"notes"`
	Text        string           `json:"text"`
	Attachments []attachmentJSON `json:"attachments"`
}

type noteJSON struct {
	Index  int64  `json:"index"`
	Editor string `json:"editor"`
	Day    string `json:"day"`
	Text   string `json:"text"`
}

type attachmentJSON struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
	// Path is where --out wrote it.
	Path string `json:"path,omitempty"`
}
