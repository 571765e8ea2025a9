package newsdesk

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"

	"filippo.io/age"
)

// The editorial acts of the CLI (and the console), as Session methods:
// each refreshes the log, checks the act against the replayed state, and
// writes one event (Write). The Cache methods of the same names open a
// session for one act, for tests and one-off programs.

// ErrDeletePolicy: only a tip triaged rejected or spam can be deleted.
var ErrDeletePolicy = errors.New("only a tip whose status is rejected or spam can be deleted (triage it first)")

// ErrTipDeleted: the events delete the tip; nothing more can be logged
// about it (docs/audit.md, "Replay").
var ErrTipDeleted = errors.New("the tip is deleted")

// ErrNoTriageChange: a triage that changes nothing.
var ErrNoTriageChange = errors.New("the triage changes nothing: give a status, a tag change or a note")

// TriageChange is what a triage changes; what it leaves out stays as
// the replayed state says.
type TriageChange struct {
	// Status, if set, is the new status (otherwise the current one, or
	// new for a tip never triaged).
	Status audit.Status
	// SetTags, when ReplaceTags is set, replaces the whole tag set.
	SetTags     []string
	ReplaceTags bool
	// AddTags and RemoveTags change the tag set (after SetTags).
	AddTags, RemoveTags []string
	// Note, if set, is a note added to the tip.
	Note string
}

// knownTip refuses a tip the log deletes, and one that is neither in the
// cache nor named by an event. It returns the replayed state of the tip
// (nil if none).
func (s *Session) knownTip(ctx context.Context, tip string) ([crypto.TipIDSize]byte, *audit.TipState, error) {
	id, err := crypto.ParseTipID(tip)
	if err != nil {
		return id, nil, err
	}
	if err := s.deleted(id); err != nil {
		return id, nil, err
	}
	ts := s.replay.state.Tip(id)
	if ts != nil {
		return id, ts, nil
	}
	if _, err := s.findTip(tip); err == nil {
		return id, nil, nil
	}
	// It may have arrived since the last pull.
	s.tips.loaded = false
	if _, err := s.pull(ctx, s.currentBundle()); err != nil {
		return id, nil, err
	}
	_, err = s.findTip(tip)
	return id, nil, err
}

// currentBundle returns the newest bundle the session knows.
func (s *Session) currentBundle() *crypto.Bundle {
	if s.view != nil && s.view.Bundle != nil && (s.bundle == nil || s.view.Bundle.Version > s.bundle.Version) {
		return s.view.Bundle
	}
	return s.bundle
}

// Triage logs a triage of a tip, changing only what ch says, and returns
// the event's index. It then tells the server whether the tip is now
// rejected (status rejected or spam) or not, for the operator's retention
// purge (POST /editor/tips/<id>/mark). The tip must be in the cache or
// named by an event, and not deleted.
func (s *Session) Triage(ctx context.Context, tip string, ch TriageChange) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch.Status != "" && !audit.ValidStatus(ch.Status) {
		return 0, fmt.Errorf("status %q is not one of new, reviewing, useful, spam, rejected", clipUntrusted(string(ch.Status)))
	}
	if ch.Status == "" && !ch.ReplaceTags && len(ch.AddTags) == 0 && len(ch.RemoveTags) == 0 && ch.Note == "" {
		return 0, ErrNoTriageChange
	}
	if err := s.refresh(ctx, ""); err != nil {
		return 0, err
	}
	id, ts, err := s.knownTip(ctx, tip)
	if err != nil {
		return 0, err
	}
	body := &audit.EventBody{Kind: audit.KindTriage, Tip: id, Status: ch.Status, Text: ch.Note}
	var tags []string
	if ts != nil {
		if body.Status == "" {
			body.Status = ts.Status
		}
		tags = ts.Tags
	}
	if body.Status == "" {
		body.Status = audit.StatusNew
	}
	if ch.ReplaceTags {
		tags = ch.SetTags
	}
	tags = slices.Clone(tags)
	for _, t := range ch.AddTags {
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	tags = slices.DeleteFunc(tags, func(t string) bool { return slices.Contains(ch.RemoveTags, t) })
	slices.Sort(tags)
	body.Tags = slices.Compact(tags)
	index, err := s.write(ctx, body)
	if err != nil {
		return 0, err
	}
	mark := protocol.TipMark{Event: index, Rejected: body.Status == audit.StatusRejected || body.Status == audit.StatusSpam}
	if err := s.call(ctx, func(r *Remote) error { return r.tipAction(ctx, tip, protocol.PathTipMarkSuffix, mark, nil) }); err != nil {
		return index, fmt.Errorf("triage logged as event %d, but the server's mark: %w", index, err)
	}
	return index, nil
}

// Note logs a note on a tip (private part only). The tip must be in the
// cache or named by an event, and not deleted.
func (s *Session) Note(ctx context.Context, tip, text string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(ctx, ""); err != nil {
		return 0, err
	}
	id, _, err := s.knownTip(ctx, tip)
	if err != nil {
		return 0, err
	}
	return s.write(ctx, &audit.EventBody{Kind: audit.KindNote, Tip: id, Text: text})
}

// Delete deletes a tip the editors rejected or marked as spam (the
// replayed log's status; ErrDeletePolicy otherwise): it logs a delete
// event naming the tip and the SHA-256 of its ciphertext (from the
// cache, so the editor must have pulled it), asks the server to delete
// the ciphertext (POST /editor/tips/<id>/delete with the event's index),
// and removes the tip from this cache. The log keeps the event's
// commitments; nothing else of the tip remains. pending is true when the
// server keeps the ciphertext until the tip's receipts root is logged (the
// end of its period), and deletes it at its first purge after that.
func (s *Session) Delete(ctx context.Context, tip string) (index int64, pending bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(ctx, ""); err != nil {
		return 0, false, err
	}
	id, ts, err := s.knownTip(ctx, tip)
	if err != nil {
		return 0, false, err
	}
	if ts == nil || (ts.Status != audit.StatusRejected && ts.Status != audit.StatusSpam) {
		return 0, false, ErrDeletePolicy
	}
	cached, err := s.findTip(tip)
	if err != nil {
		return 0, false, err
	}
	index, err = s.write(ctx, &audit.EventBody{Kind: audit.KindDelete, Tip: id, Ciphertext: cached.Receipt.SHA256})
	if err != nil {
		return 0, false, err
	}
	var answer protocol.TipDeleted
	if err := s.call(ctx, func(r *Remote) error {
		return r.tipAction(ctx, tip, protocol.PathTipDeleteSuffix, protocol.TipDelete{Event: index}, &answer)
	}); err != nil {
		return index, false, fmt.Errorf("deletion logged as event %d, but the server: %w", index, err)
	}
	if _, err := s.dropDeleted(); err != nil {
		return index, answer.Pending, err
	}
	return index, answer.Pending, nil
}

// dropDeleted removes from the cache every tip the state deletes, and
// their summaries, and returns their ids.
func (s *Session) dropDeleted() ([]string, error) {
	if err := s.loadTips(); err != nil {
		return nil, err
	}
	var out []string
	var gone []Entry
	for _, e := range s.tips.entries {
		if ts := s.replay.state.Tip(e.Receipt.TipID); ts != nil && ts.Deleted {
			gone, out = append(gone, e), append(out, e.ID)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	// Removing from a pack rewrites it: list the tips again after.
	s.tips.loaded = false
	if err := removeEntries(gone); err != nil {
		return nil, err
	}
	for _, e := range gone {
		delete(s.tips.sums, e.ID)
	}
	s.tips.dirty = true
	return out, s.loadTips()
}

// DropDeleted removes from the cache every tip st says is deleted (by
// this editor or another), and returns their ids.
func (c *Cache) DropDeleted(st *audit.State) ([]string, error) {
	es, err := c.List()
	if err != nil {
		return nil, err
	}
	var out []string
	var gone []Entry
	for _, e := range es {
		if ts := st.Tip(e.Receipt.TipID); ts != nil && ts.Deleted {
			gone, out = append(gone, e), append(out, e.ID)
		}
	}
	return out, removeEntries(gone)
}

// Handover re-encrypts to the editor labelled to (listed, not revoked, in
// the bundle in force) every earlier event body this editor can read and
// that to cannot: bodies sealed to bundles that did not list to, and not
// handed over to to before. Bodies this editor itself got by handover are
// passed on too. They go out as handover events, as many as it takes to
// keep each body under the size limit. It returns the indexes of the
// events logged; none when there is nothing to hand over.
func (s *Session) Handover(ctx context.Context, to string) ([]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(ctx, ""); err != nil {
		return nil, err
	}
	v := s.view
	var recipient age.Recipient
	var err error
	if e := v.Bundle.Editor(to); e != nil && to != s.key.Label && !slices.Contains(v.Bundle.Revoked, to) {
		if recipient, err = crypto.ParseRecipient(e.Recipient); err != nil {
			return nil, err
		}
	}
	if recipient == nil {
		return nil, fmt.Errorf("%q is not another editor of the bundle in force (version %d)", clipUntrusted(to), v.Bundle.Version)
	}
	// Bodies already sealed to their key in force (bundles that list them
	// with it) or handed over to it before need nothing: a handover's
	// bodies went to the key the bundle at its index lists. What went to
	// an older key of theirs (the newsroom re-keyed them) goes again, as
	// Replay waits for it (sealedTo).
	toKey := v.Bundle.Editor(to).Recipient
	sealedToThem := func(i int64) bool {
		var e *crypto.Editor
		if b := v.BundleAt(i); b != nil {
			e = b.Editor(to)
		}
		return e != nil && e.Recipient == toKey
	}
	events := s.replay.openedList
	done := map[int64]bool{}
	for _, o := range events {
		if !sealedToThem(o.Index) {
			continue
		}
		done[o.Index] = true
		if o.Body.Kind == audit.KindHandover && o.Body.To == to {
			for _, h := range o.Body.Bodies {
				done[h.Index] = true
			}
		}
	}
	var batches [][]audit.HandedOver
	var cur []audit.HandedOver
	size := 0
	for _, o := range events {
		if done[o.Index] {
			continue
		}
		var h audit.HandedOver
		if o.Via != nil {
			h, err = audit.HandOverAgain(*o.Via, o.Event, s.ident, recipient)
		} else {
			var ct []byte
			if ct, err = v.Body(o.Index); err == nil {
				h, err = audit.HandOver(ct, o.Event, o.Index, s.ident, recipient)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("hand over event %d: %w", o.Index, err)
		}
		// Its JSON: the base64 of the ciphertext and some 40 bytes.
		n := base64.StdEncoding.EncodedLen(len(h.Ciphertext)) + 64
		if n > maxHandoverBatch {
			return nil, fmt.Errorf("hand over event %d: its body alone, %d bytes re-encrypted, is too large for a handover event", o.Index, len(h.Ciphertext))
		}
		if size+n > maxHandoverBatch && len(cur) > 0 {
			batches, cur, size = append(batches, cur), nil, 0
		}
		cur, size = append(cur, h), size+n
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	// And the tips (handover_tips.go): stored with the server first, then
	// named by the last event, or by events of their own.
	tips, err := s.handOverTips(ctx, to, toKey, recipient)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, body := range handoverEvents(to, batches, size, tips) {
		i, err := s.write(ctx, body)
		if err != nil {
			return out, err
		}
		out = append(out, i)
	}
	return out, nil
}

// withSession opens a session on the cache for one act and closes it.
func (c *Cache) withSession(ctx context.Context, server string, key *crypto.EditorKey, opts SyncOptions, f func(*Session) error) error {
	s, err := OpenSession(ctx, SessionConfig{Cache: c.Dir, Server: server, Key: key, Newsroom: opts.Newsroom, NoCosign: opts.NoCosign, Pulled: opts.Pulled})
	if err != nil {
		return err
	}
	err = f(s)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncLog syncs the cache with the server (Session.Sync) and returns the
// verified view of the log.
func (c *Cache) SyncLog(ctx context.Context, server string, key *crypto.EditorKey, opts SyncOptions) (*LogView, error) {
	var v *LogView
	err := c.withSession(ctx, server, key, opts, func(s *Session) error {
		_, err := s.Sync(ctx)
		v = s.View()
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// WriteEvent syncs the cache and logs one event (Session.Write); it
// returns the event's index.
func (c *Cache) WriteEvent(ctx context.Context, server string, key *crypto.EditorKey, body *audit.EventBody, opts SyncOptions) (int64, error) {
	var i int64
	err := c.withSession(ctx, server, key, opts, func(s *Session) (err error) {
		if _, err = s.Sync(ctx); err != nil {
			return err
		}
		i, err = s.Write(ctx, body)
		return err
	})
	return i, err
}

// Triage logs a triage setting the tip's status, its whole tag set and
// a note (Session.Triage).
func (c *Cache) Triage(ctx context.Context, server string, key *crypto.EditorKey, tip string, status audit.Status, tags []string, text string, opts SyncOptions) (int64, error) {
	if !audit.ValidStatus(status) {
		return 0, fmt.Errorf("status %q is not one of new, reviewing, useful, spam, rejected", clipUntrusted(string(status)))
	}
	var i int64
	err := c.withSession(ctx, server, key, opts, func(s *Session) (err error) {
		if _, err = s.Sync(ctx); err != nil {
			return err
		}
		i, err = s.Triage(ctx, tip, TriageChange{Status: status, SetTags: tags, ReplaceTags: true, Note: text})
		return err
	})
	return i, err
}

// Note logs a note on a tip (Session.Note).
func (c *Cache) Note(ctx context.Context, server string, key *crypto.EditorKey, tip, text string, opts SyncOptions) (int64, error) {
	var i int64
	err := c.withSession(ctx, server, key, opts, func(s *Session) (err error) {
		if _, err = s.Sync(ctx); err != nil {
			return err
		}
		i, err = s.Note(ctx, tip, text)
		return err
	})
	return i, err
}

// Delete deletes a tip (Session.Delete).
func (c *Cache) Delete(ctx context.Context, server string, key *crypto.EditorKey, tip string, opts SyncOptions) (index int64, pending bool, err error) {
	err = c.withSession(ctx, server, key, opts, func(s *Session) (err error) {
		if _, err = s.Sync(ctx); err != nil {
			return err
		}
		index, pending, err = s.Delete(ctx, tip)
		return err
	})
	return index, pending, err
}

// Handover hands earlier event bodies over to an editor added since
// (Session.Handover).
func (c *Cache) Handover(ctx context.Context, server string, key *crypto.EditorKey, to string, opts SyncOptions) ([]int64, error) {
	var out []int64
	err := c.withSession(ctx, server, key, opts, func(s *Session) (err error) {
		if _, err = s.Sync(ctx); err != nil {
			return err
		}
		out, err = s.Handover(ctx, to)
		return err
	})
	return out, err
}
