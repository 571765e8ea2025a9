package newsdesk

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
)

// Desk is one editor's claim work over a Session: the verified view of
// the log, the state replayed from it, and the writes.
type Desk struct {
	cache *Cache
	key   *crypto.EditorKey
	s     *Session
	// now dates days in messages (default time.Now).
	now func() time.Time
}

// NewDesk returns the claim work of a session.
func NewDesk(s *Session) *Desk {
	return &Desk{cache: s.Cache(), key: s.Key(), s: s, now: time.Now}
}

// OpenDesk opens a session on the cache and syncs it (Session.Sync: tips,
// entries, bodies, receipts trees, cosignature). Close closes it.
func (c *Cache) OpenDesk(ctx context.Context, server string, key *crypto.EditorKey, opts SyncOptions) (*Desk, error) {
	s, err := OpenSession(ctx, SessionConfig{Cache: c.Dir, Server: server, Key: key, Newsroom: opts.Newsroom, NoCosign: opts.NoCosign, Pulled: opts.Pulled})
	if err != nil {
		return nil, err
	}
	if _, err := s.Sync(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return NewDesk(s), nil
}

// Close closes the desk's session.
func (d *Desk) Close() error { return d.s.Close() }

// Editorial returns the state replayed from the desk's view of the log.
func (d *Desk) Editorial() *Editorial { return d.s.Editorial() }

// View returns the desk's verified view of the log.
func (d *Desk) View() *LogView { return d.s.View() }

// state returns the replayed state, up to the desk's last write.
func (d *Desk) state() *audit.State { return d.s.State() }

// NewClaim logs a new claim (version 1) and returns its id and the index
// of its claim event.
func (d *Desk) NewClaim(ctx context.Context, text, scope string) (audit.ClaimID, int64, error) {
	b, err := NewClaimBody(text, scope)
	if err != nil {
		return audit.ClaimID{}, 0, err
	}
	i, err := d.s.Write(ctx, b)
	return b.Claim, i, err
}

// EditClaim logs a new version of a claim, with text and scope (the
// version in force's scope when scope is nil), and returns its index,
// which names the version. The approvals of earlier versions stop
// counting.
func (d *Desk) EditClaim(ctx context.Context, claim, text string, scope *string) (int64, error) {
	b, err := EditClaimBody(d.state(), claim, text, scope)
	if err != nil {
		return 0, err
	}
	return d.s.Write(ctx, b)
}

// LinkResult is a link logged.
type LinkResult struct {
	Index  int64
	Claim  audit.ClaimID
	Handle *TipHandle
}

// Link logs a link of a tip to a claim: the tip's blinded handle, which
// it computes from the tip's period key and checks against the logged
// receipts root, goes in the public part with the spec (the why in the
// private part with spec.PrivateWhy); the tip id and its ciphertext hash
// go in the private part only. A tip whose period has no logged root yet
// is a *NoRootError.
func (d *Desk) Link(ctx context.Context, claim, tip string, spec LinkSpec) (*LinkResult, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	st := d.state()
	c, err := unpublished(st, claim)
	if err != nil {
		return nil, err
	}
	id, e, err := d.tip(tip)
	if err != nil {
		return nil, err
	}
	h, err := d.handle(ctx, e)
	if err != nil {
		return nil, err
	}
	b, err := linkBody(st, claim, id, e.Receipt.SHA256, h, spec)
	if err != nil {
		return nil, err
	}
	// The link's private part carries the tip's source (its mailbox id),
	// and a source is never split across clusters (docs/claims.md).
	if t, _, err := d.s.OpenTip(tip); err == nil && t.Reply != nil {
		b.Mailbox = t.Reply.Mailbox
		if err := checkSourceCluster(st.Claim(c.ID), tip, b.Cluster, b.Mailbox); err != nil {
			return nil, err
		}
	}
	i, err := d.s.Write(ctx, b)
	if err != nil {
		return nil, err
	}
	return &LinkResult{Index: i, Claim: c.ID, Handle: h}, nil
}

// tip returns a tip of the cache (which the desk's sync brought up to
// the server's list), refusing one the log deletes.
func (d *Desk) tip(tip string) ([crypto.TipIDSize]byte, *Entry, error) {
	id, err := crypto.ParseTipID(tip)
	if err != nil {
		return id, nil, err
	}
	if ts := d.state().Tip(id); ts != nil && ts.Deleted {
		return id, nil, fmt.Errorf("tip %s: %w: deleted tips cannot be cited", tip, ErrTipDeleted)
	}
	e, err := d.s.FindTip(tip)
	if err != nil {
		return id, nil, fmt.Errorf("tip %s is neither on the server nor in %s: check the id (newsdesk inbox lists the tips)", tip, d.cache.Dir)
	}
	return id, e, nil
}

// NoRootError is a tip that cannot be linked yet: no receipts root in the
// log covers the day it arrived, so its handle has no proof.
type NoRootError struct {
	Tip string
	// Day is the tip's receipt day; Today the editor's.
	Day, Today string
}

func (e *NoRootError) Error() string {
	when := fmt.Sprintf("once the server logs the root of its period, at the period's end (with the default one-day periods, shortly after 00:00 UTC on %s)", addDay(e.Day, 1))
	if e.Day < e.Today {
		when = "once the server logs the root of its period, at its next hourly purge after the period ends"
	}
	return fmt.Sprintf("tip %s arrived on %s, and no receipts root in the log covers that day yet, so its handle has no proof to cite: it can be linked %s, "+
		"or at once after an editor runs newsdesk period close, which has the server close the current period now", e.Tip, e.Day, when)
}

// addDay returns the day n days after a YYYY-MM-DD day.
func addDay(day string, n int) string {
	t, err := time.Parse(crypto.DateLayout, day)
	if err != nil {
		return day
	}
	return crypto.Day(t.AddDate(0, 0, n))
}

// handle computes a cached tip's blinded handle: the receipts root of the
// log whose period holds the tip's day, the period key sealed to this
// editor, the leaf HMAC(k, "tip" ‖ ciphertext hash) and its proof in the
// tree, checked against the logged root.
func (d *Desk) handle(ctx context.Context, e *Entry) (*TipHandle, error) {
	v := d.s.View()
	for i, entry := range v.Entries {
		if !strings.HasPrefix(string(entry), audit.ReceiptsHeader+"\n") {
			continue
		}
		root, err := audit.OpenReceiptsRoot(entry, v.BundleAt(int64(i)).Log)
		if err != nil {
			return nil, fmt.Errorf("receipts root at entry %d: %w", i, err)
		}
		if !root.Period.Contains(e.Receipt.Day) {
			continue
		}
		return d.handleIn(ctx, e, int64(i), root)
	}
	return nil, &NoRootError{Tip: e.ID, Day: e.Receipt.Day, Today: crypto.Day(d.now())}
}

func (d *Desk) handleIn(ctx context.Context, e *Entry, i int64, root *audit.ReceiptsRoot) (*TipHandle, error) {
	v := d.s.View()
	if !d.s.Online() {
		return nil, ErrOffline
	}
	sealed, tree, err := d.cache.receiptsPeriod(ctx, d.s.hc, d.s.url.Origin, v, i, root)
	if err != nil {
		return nil, err
	}
	k, err := audit.OpenPeriodKey(sealed, root, d.key.Identity)
	if err != nil {
		return nil, fmt.Errorf("tip %s: the key of its receipts period (%s to %s, entry %d) does not open with your key (sealed before you were added?): another editor must link it: %w",
			e.ID, root.Period.First, root.Period.Last, i, err)
	}
	leaf := audit.TipLeaf(k, e.Receipt.SHA256)
	li, proof, err := tree.Prove(leaf)
	if err != nil {
		return nil, fmt.Errorf("tip %s is not a leaf of its period's receipts tree (%s to %s, entry %d): the server gave a receipt and left the tip out; keep the receipt as evidence: %w",
			e.ID, root.Period.First, root.Period.Last, i, err)
	}
	if err := audit.CheckLeaf(root, li, leaf, proof); err != nil {
		return nil, fmt.Errorf("tip %s: its handle's proof does not verify against the receipts root at entry %d: %w", e.ID, i, err)
	}
	return &TipHandle{Leaf: leaf, Receipts: i, Period: root.Period, LeafIndex: li}, nil
}

// Unlink logs the withdrawal of a tip's active link to a claim (an
// evidence change: earlier approvals stop counting) and returns its index.
func (d *Desk) Unlink(ctx context.Context, claim, tip string) (int64, error) {
	b, err := UnlinkBody(d.state(), claim, tip)
	if err != nil {
		return 0, err
	}
	return d.s.Write(ctx, b)
}

// SignoffResult is a sign-off logged, and the policy right after it.
type SignoffResult struct {
	Index int64
	Body  *audit.EventBody
	// Notes say what the editor should know about the sign-off
	// (SignoffBody).
	Notes []string
	// Policy is the policy evaluated with the sign-off counted.
	Policy *audit.PolicyResult
}

// Signoff logs the editor's sign-off of a claim over the version and
// evidence the replay shows (SignoffBody), then evaluates the policy with
// it.
func (d *Desk) Signoff(ctx context.Context, claim string, decision audit.Decision, note string) (*SignoffResult, error) {
	v := d.s.View()
	b, notes, err := SignoffBody(d.state(), v.Bundle, d.key.Label, claim, decision, note)
	if err != nil {
		return nil, err
	}
	before := d.state().ClaimEvents(b.Claim)
	i, err := d.s.Write(ctx, b)
	if err != nil {
		return nil, err
	}
	res := &SignoffResult{Index: i, Body: b, Notes: notes}
	// The policy with the sign-off: this editor's view of the claim's
	// events, the sign-off appended (anything another editor logged in
	// between shows at the next run).
	events := append(before, audit.ClaimEvent{Index: i, Editor: d.key.Label, Day: crypto.Day(d.now()), Body: b.Public()})
	if res.Policy, err = audit.EvaluatePolicy(d.s.View().Bundle, events, i+1); err != nil {
		return nil, err
	}
	return res, nil
}

// Claims summarizes every claim of the replayed log (SummarizeClaims).
func (d *Desk) Claims() ([]ClaimSummary, error) {
	v := d.s.View()
	return SummarizeClaims(d.state(), v.BundleAt, v.Tree.N)
}
