package console

import (
	"context"
	"slices"
	"strings"
	"unicode"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/newsdesk"
)

// Row is one tip in the inbox: what its receipt says, what the replayed
// log says, and what its text says, decrypted in memory.
type Row struct {
	ID  string
	Seq int64
	Day string
	// Length is the ciphertext's (padded) length, what the server saw;
	// Size says it for a person.
	Length int64
	Size   string
	// Status is the triage status ("new" before any triage).
	Status   audit.Status
	Tags     []string
	Assignee string
	// FirstLine is the text's first line (newsdesk.FirstLineRunes runes
	// at most, control and format characters shown as U+FFFD: visible);
	// Unreadable too.
	FirstLine   string
	Attachments int
	Notes       int
	// Unreadable says why the key cannot open the tip ("" when it can).
	Unreadable string
	// SourceTips is how many tips of the inbox come from this tip's
	// source (issue 13: tips that carry one mailbox id, inside their
	// encryption, come from one codename); 0 when the tip carries no reply
	// address.
	SourceTips int
	// source is the tip's mailbox id ("" without a reply address). It is
	// compared, never rendered: a page names a source by one of its tips.
	source string
	// search is the tip's text, tags and assignee, folded for search.
	search string
}

// Index is what the inbox renders from: a snapshot, replaced whole after
// every sync and write, never changed in place.
type Index struct {
	// Version grows whenever the snapshot differs from the one before.
	Version int64
	// Rows are the cached tips, newest first.
	Rows []Row
	// Tags are every tag in use, sorted; Editors the editors of the
	// bundle in force (not revoked), sorted; Me the session's editor.
	Tags    []string
	Editors []string
	Me      string
	// LogSize is the verified log's size.
	LogSize int64
	// Warnings are the session's sync warnings.
	Warnings []string
	// fingerprint tells whether a rebuild changed anything.
	fingerprint string
}

// fold returns s lowercased, for search.
func fold(s string) string { return strings.ToLower(s) }

// reindex rebuilds the index from the session: the cached tips'
// summaries, the replayed state, and the text of every tip not indexed
// yet, decrypted once in memory. The caller holds c.mu.
func (c *Console) reindex(ctx context.Context) error {
	tips, err := c.s.Tips()
	if err != nil {
		return err
	}
	st := c.s.State()
	for _, t := range tips {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, ok := c.texts[t.ID]; ok || t.Unreadable != "" {
			continue
		}
		tip, _, err := c.s.OpenTip(t.ID)
		if err != nil {
			// Shown as unreadable in the row; nothing to search.
			continue
		}
		c.texts[t.ID] = fold(tip.Text)
	}
	return c.publish(buildIndex(tips, st, c.texts, c.s.Bundle(), c.s.Key().Label, c.s.View(), c.s.Warnings()))
}

// buildIndex makes an index from its parts.
func buildIndex(tips []newsdesk.TipSummary, st *audit.State, texts map[string]string, b *crypto.Bundle, me string, v *newsdesk.LogView, warnings []string) *Index {
	ix := &Index{Me: me, Warnings: warnings, Rows: make([]Row, 0, len(tips))}
	if v != nil {
		ix.LogSize = v.Tree.N
	}
	tags := map[string]bool{}
	for i := len(tips) - 1; i >= 0; i-- {
		t := tips[i]
		r := Row{ID: t.ID, Seq: t.Seq, Day: t.Day, Length: t.Length, Size: kb(t.Length), Status: audit.StatusNew, FirstLine: visible(t.FirstLine),
			Attachments: len(t.Attachments), Unreadable: visible(t.Unreadable)}
		if id, err := crypto.ParseTipID(t.ID); err == nil {
			if ts := st.Tip(id); ts != nil {
				if ts.Deleted {
					continue
				}
				if ts.Status != "" {
					r.Status = ts.Status
				}
				r.Tags, r.Assignee, r.Notes = ts.Tags, ts.Assignee, len(ts.Notes)
			}
		}
		for _, tg := range r.Tags {
			tags[tg] = true
		}
		r.search = texts[t.ID] + "\n" + fold(strings.Join(r.Tags, " ")) + "\n" + fold(r.Assignee) + "\n" + t.ID
		r.source = t.Mailbox
		ix.Rows = append(ix.Rows, r)
	}
	// Sources are counted over the rows, as newsdesk.SourceCounts counts
	// over the cache, so that a deleted tip does not count.
	perSource := map[string]int{}
	for _, r := range ix.Rows {
		if r.source != "" {
			perSource[r.source]++
		}
	}
	for i := range ix.Rows {
		ix.Rows[i].SourceTips = perSource[ix.Rows[i].source]
	}
	for tg := range tags {
		ix.Tags = append(ix.Tags, tg)
	}
	slices.Sort(ix.Tags)
	if b != nil {
		for _, e := range b.Editors {
			if !slices.Contains(b.Revoked, e.Label) {
				ix.Editors = append(ix.Editors, e.Label)
			}
		}
		slices.Sort(ix.Editors)
	}
	var fp strings.Builder
	fp.WriteString(itoa(ix.LogSize))
	for _, r := range ix.Rows {
		fp.WriteString(r.ID + string(r.Status) + r.Assignee + strings.Join(r.Tags, ",") + itoa(int64(r.Notes)) + r.Unreadable + ";")
	}
	fp.WriteString(strings.Join(warnings, "\n"))
	ix.fingerprint = fp.String()
	return ix
}

// publish replaces the current index by ix, with a new version if it
// differs.
func (c *Console) publish(ix *Index) error {
	old := c.index.Load()
	switch {
	case old == nil:
		ix.Version = 1
	case old.fingerprint == ix.fingerprint:
		ix.Version = old.Version
	default:
		ix.Version = old.Version + 1
	}
	c.index.Store(ix)
	return nil
}

// Filter selects rows of the inbox.
type Filter struct {
	// Status, Tag, Day select rows with that status, tag, day; Assignee
	// those assigned to that label ("none": to nobody).
	Status, Tag, Assignee, Day string
	// Query: every word must occur in the tip's text, tags, assignee or
	// id (case folded).
	Query string
	// Source is a tip id: the rows of tips from that tip's source (the
	// tip alone when it carries no reply address; none when it is not in
	// the index).
	Source string
}

// Empty reports whether f selects every row.
func (f Filter) Empty() bool { return f == Filter{} }

// Select returns the rows f selects, in index order.
func (ix *Index) Select(f Filter) []Row {
	if f.Empty() {
		return ix.Rows
	}
	words := strings.FieldsFunc(fold(f.Query), unicode.IsSpace)
	var source string
	if f.Source != "" {
		r := ix.Row(f.Source)
		if r == nil {
			return nil
		}
		source = r.source
	}
	out := make([]Row, 0, 64)
	for _, r := range ix.Rows {
		switch {
		case f.Source != "" && r.ID != f.Source && (source == "" || r.source != source),
			f.Status != "" && string(r.Status) != f.Status,
			f.Tag != "" && !slices.Contains(r.Tags, f.Tag),
			f.Day != "" && r.Day != f.Day,
			f.Assignee == "none" && r.Assignee != "",
			f.Assignee != "" && f.Assignee != "none" && r.Assignee != f.Assignee:
			continue
		}
		match := true
		for _, w := range words {
			if !strings.Contains(r.search, w) {
				match = false
				break
			}
		}
		if match {
			out = append(out, r)
		}
	}
	return out
}

// Row returns the row of a tip, or nil.
func (ix *Index) Row(id string) *Row {
	for i := range ix.Rows {
		if ix.Rows[i].ID == id {
			return &ix.Rows[i]
		}
	}
	return nil
}

// Days returns the days of the rows, newest first, each once.
func (ix *Index) Days() []string {
	var out []string
	for _, r := range ix.Rows {
		if len(out) == 0 || out[len(out)-1] != r.Day {
			if !slices.Contains(out, r.Day) {
				out = append(out, r.Day)
			}
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}
