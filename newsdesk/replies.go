package newsdesk

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
)

// Replies to sources (docs/replies.md): an editor answers a tip's source
// at the reply address the tip carries; tips that carry the same mailbox
// id come from one source, which editors (and only editors: the id is
// inside the tips' encryption) see grouped.

// ErrNoReplyAddress: the tip carries no reply address (format v1, from a
// client older than replies): its source cannot be answered.
var ErrNoReplyAddress = errors.New("the tip carries no reply address (sent by an older fieldtip): its source cannot be answered")

// SourceMismatchError: a link would put a tip in another cluster than a
// tip of the same source already linked to the claim (AUDIT.md: tips
// that share a source reply key must share a cluster).
type SourceMismatchError struct {
	Tip     string
	Cluster string
	// Link is the log index of the active link of the same source, in
	// Other's cluster.
	Link  int64
	Other string
}

func (e *SourceMismatchError) Error() string {
	return fmt.Sprintf("tip %s comes from the same source as the tip of link %d, in cluster %q: tips that share a source reply key must share a cluster, so link it in %q, or unlink the other first",
		e.Tip, e.Link, clipUntrusted(e.Other), clipUntrusted(e.Other))
}

// checkSourceCluster refuses a link of a tip of mailbox in cluster when an
// active link of the claim in another cluster has a tip of the same
// source. It is the rule editors' replay applies (audit.ReasonSourceCluster),
// checked before the event is logged.
func checkSourceCluster(c *audit.ClaimState, tip, cluster string, mailbox crypto.MailboxID) error {
	if mailbox == (crypto.MailboxID{}) {
		return nil
	}
	for _, l := range c.Links {
		if l.Withdrawn == 0 && l.Mailbox == mailbox && l.Cluster != cluster {
			return &SourceMismatchError{Tip: tip, Cluster: cluster, Link: l.Index, Other: l.Cluster}
		}
	}
	return nil
}

// ReplyResult is a reply sent.
type ReplyResult struct {
	// Index is the reply event's log index; ID the reply's id on the
	// server; Mailbox where it waits.
	Index   int64
	ID      protocol.ReplyID
	Mailbox crypto.MailboxID
	// Size is the sealed reply's size in bytes.
	Size int
}

// Reply answers the source of a cached tip: it seals text to the tip's
// reply recipient (padded to 4 KiB steps), logs a reply event (private
// part only: the tip, the mailbox, the reply id and the text), and then
// stores the sealed reply on the server under the tip's mailbox id. The
// event comes first, so that nothing reaches a source that the log does
// not record; if the server then refuses (the mailbox is full: the source
// has not read what waits), the error says so and names the event.
func (s *Session) Reply(ctx context.Context, tip, text string) (*ReplyResult, error) {
	if err := crypto.CheckReplyText(text); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(ctx, ""); err != nil {
		return nil, err
	}
	id, _, err := s.knownTip(ctx, tip)
	if err != nil {
		return nil, err
	}
	e, err := s.findTip(tip)
	if err != nil {
		return nil, err
	}
	t, err := e.open(s.ident)
	if err != nil {
		return nil, err
	}
	if t.Reply == nil {
		return nil, fmt.Errorf("tip %s: %w", tip, ErrNoReplyAddress)
	}
	to, err := t.Reply.AgeRecipient()
	if err != nil {
		return nil, fmt.Errorf("tip %s: %w", tip, err)
	}
	sealed, err := crypto.SealReply(&crypto.Reply{Text: text}, to)
	if err != nil {
		return nil, err
	}
	var rid protocol.ReplyID
	if _, err := rand.Read(rid[:]); err != nil {
		return nil, err
	}
	res := &ReplyResult{ID: rid, Mailbox: t.Reply.Mailbox, Size: len(sealed)}
	res.Index, err = s.write(ctx, &audit.EventBody{Kind: audit.KindReply, Tip: id, Mailbox: t.Reply.Mailbox, Reply: rid, Text: text})
	if err != nil {
		return nil, err
	}
	if err := s.call(ctx, func(r *Remote) error {
		return r.PutReply(ctx, protocol.MailboxID(t.Reply.Mailbox), rid, sealed)
	}); err != nil {
		return res, fmt.Errorf("the reply is logged as event %d, but the server did not take it (run newsdesk reply again to send it anew): %w", res.Index, err)
	}
	return res, nil
}

// SourceCounts returns, for each tip of tips whose summary names a source
// (a mailbox id), how many of tips that source sent: the inbox shows "3
// tips from this source".
func SourceCounts(tips []TipSummary) map[string]int {
	n := map[string]int{}
	for _, t := range tips {
		if t.Mailbox != "" {
			n[t.Mailbox]++
		}
	}
	out := map[string]int{}
	for _, t := range tips {
		if t.Mailbox != "" {
			out[t.ID] = n[t.Mailbox]
		}
	}
	return out
}

// ThreadItem is one entry of a source's thread: a tip it sent, or a reply
// an editor sent it.
type ThreadItem struct {
	// Day is the tip's receipt day or the reply event's day.
	Day string
	// Tip is set for a tip (Text its text); Reply for a reply.
	Tip   *TipSummary
	Text  string
	Reply *audit.ReplyRecord
}

// Thread returns the tips and replies of the source of tip, in order: by
// day, tips in arrival order and replies in log order, a day's tips
// before its replies. The source is the tip's mailbox id; a tip without a
// reply address is its own thread.
func (s *Session) Thread(tip string) ([]ThreadItem, error) {
	tips, err := s.Tips()
	if err != nil {
		return nil, err
	}
	var mailbox string
	found := false
	for _, t := range tips {
		if t.ID == tip {
			mailbox, found = t.Mailbox, true
		}
	}
	if !found {
		if _, err := s.FindTip(tip); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("tip %s does not open with this key", tip)
	}
	var items []ThreadItem
	for i := range tips {
		t := &tips[i]
		if t.ID != tip && (mailbox == "" || t.Mailbox != mailbox) {
			continue
		}
		opened, _, err := s.OpenTip(t.ID)
		if err != nil {
			continue // deleted since, or not sealed to this key
		}
		items = append(items, ThreadItem{Day: t.Day, Tip: t, Text: opened.Text})
	}
	if mailbox != "" {
		for _, r := range s.State().Replies() {
			if r.Mailbox.String() == mailbox {
				items = append(items, ThreadItem{Day: r.Day, Reply: &r, Text: r.Text})
			}
		}
	}
	slices.SortStableFunc(items, func(a, b ThreadItem) int {
		switch {
		case a.Day < b.Day:
			return -1
		case a.Day > b.Day:
			return 1
		case a.Tip != nil && b.Tip == nil:
			return -1
		case a.Tip == nil && b.Tip != nil:
			return 1
		}
		return 0
	})
	return items, nil
}
