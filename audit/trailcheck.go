package audit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"fieldtip/crypto"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// trailBundles are a trail's bundles, verified, by index.
type trailBundles struct {
	index  []int64
	bundle []*crypto.Bundle
	used   []bool
}

// at returns the bundle in force at index among the trail's (the last
// one before it), marking it used, or nil.
func (tb *trailBundles) at(index int64) *crypto.Bundle {
	i, _ := slices.BinarySearch(tb.index, index)
	if i == 0 {
		return nil
	}
	tb.used[i-1] = true
	return tb.bundle[i-1]
}

// openTrailBundles verifies a trail's bundles with the pinned newsroom
// key, in order of increasing versions.
func openTrailBundles(entries []TrailEntry, newsroom string) (*trailBundles, error) {
	tb := &trailBundles{used: make([]bool, len(entries))}
	for _, e := range entries {
		b, err := crypto.OpenBundle(e.Entry, newsroom)
		if err != nil {
			return nil, &TrailError{Rule: ErrTrailBundle, Index: e.Index, Err: err}
		}
		if n := len(tb.bundle); n > 0 && b.Version <= tb.bundle[n-1].Version {
			return nil, trailErr(ErrTrailBundle, e.Index, "version %d after version %d", b.Version, tb.bundle[n-1].Version)
		}
		tb.index, tb.bundle = append(tb.index, e.Index), append(tb.bundle, b)
	}
	return tb, nil
}

// trailEvent is a trail's event, opened.
type trailEvent struct {
	index  int64
	event  *Event
	bundle *crypto.Bundle
	body   *EventBody
	// keep: replay applied it.
	keep bool
}

// openTrailEvent opens one revealed event: its signature by an editor of
// the bundle in force (which must be the one it names), its public
// commitment, and its public part, which must be of the claim.
func openTrailEvent(index int64, entry, public []byte, salt [SaltSize]byte, b *crypto.Bundle, claim ClaimID) (*trailEvent, error) {
	if b == nil {
		return nil, trailErr(ErrTrailBundle, index, "no bundle in force at the event")
	}
	ev, err := OpenEvent(entry, b)
	if errors.Is(err, ErrWrongBundle) {
		return nil, &TrailError{Rule: ErrTrailBundle, Index: index, Err: err}
	}
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailSignature, Index: index, Err: err}
	}
	if !CheckPublic(ev, public, salt) {
		return nil, trailErr(ErrTrailCommitment, index, "the public part and salt do not hash to the event's public commitment")
	}
	body, err := ParsePublicPart(public)
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailPart, Index: index, Err: err}
	}
	if _, ok := publicFields[body.Kind]; !ok {
		return nil, trailErr(ErrTrailPart, index, "a %s event is not an event of a claim", body.Kind)
	}
	if body.Claim != claim {
		return nil, trailErr(ErrTrailPart, index, "an event of claim %s, not %s", body.Claim, claim)
	}
	return &trailEvent{index: index, event: ev, bundle: b, body: body}, nil
}

// replayTrail replays a trail's events: they must start with the claim's
// creation, reach a publication, and after it hold only corrections that
// apply. It returns the replay and the position of the publication. With
// drop (BuildTrail), events after the publication that are not
// corrections that apply are dropped from events instead (the editor
// reveals all of the claim's events; refused ones after the publication
// are not part of its trail).
func replayTrail(events []*trailEvent, drop bool) (*claimReplay, []*trailEvent, int, error) {
	r, pub, err := replayTrailKeep(events, drop)
	if err != nil {
		return nil, nil, 0, err
	}
	if !drop {
		return r, events, pub, nil
	}
	// Replay the kept events again, so that the replay is the trail's.
	var kept []*trailEvent
	for i, te := range events {
		if i <= pub || te.body.Kind == KindCorrect && te.keep {
			kept = append(kept, te)
		}
	}
	r, pub, err = replayTrailKeep(kept, false)
	return r, kept, pub, err
}

func replayTrailKeep(events []*trailEvent, drop bool) (*claimReplay, int, error) {
	if len(events) == 0 {
		return nil, 0, trailErr(ErrTrailReplay, -1, "no events")
	}
	if k := events[0].body.Kind; k != KindClaim {
		return nil, 0, trailErr(ErrTrailChanges, events[0].index, "the first event is a %s, not the claim event that created the claim", k)
	}
	r := newClaimReplay(events[0].body.Claim)
	pub := -1
	lastRefused := ""
	lastRefusedAt := int64(-1)
	for i, te := range events {
		ev := ClaimEvent{Index: te.index, Editor: te.event.Editor, Day: te.event.Day, Body: te.body}
		if pub >= 0 && drop && te.body.Kind != KindCorrect {
			continue
		}
		reason := r.apply(ev, te.bundle)
		te.keep = reason == ""
		switch {
		case pub >= 0 && drop:
		case pub >= 0 && te.body.Kind != KindCorrect:
			return nil, 0, trailErr(ErrTrailReplay, te.index, "a %s after the publication (only corrections follow it)", te.body.Kind)
		case pub >= 0 && reason != "":
			return nil, 0, trailErr(ErrTrailReplay, te.index, "the correction is refused: %s", reason)
		case te.body.Kind == KindPublish && reason == "":
			pub = i
		case te.body.Kind == KindPublish:
			lastRefused, lastRefusedAt = reason, te.index
		}
	}
	if pub < 0 {
		switch {
		case lastRefused == "":
			return nil, 0, trailErr(ErrTrailReplay, -1, "no publication")
		case strings.HasPrefix(lastRefused, ReasonPublishMismatch):
			return nil, 0, trailErr(ErrTrailChanges, lastRefusedAt, "%s", lastRefused)
		case strings.HasPrefix(lastRefused, ReasonPolicy):
			return nil, 0, trailErr(ErrTrailPolicy, lastRefusedAt, "%s", strings.TrimPrefix(strings.TrimPrefix(lastRefused, ReasonPolicy), ": "))
		default:
			return nil, 0, trailErr(ErrTrailReplay, lastRefusedAt, "the publication is refused: %s", lastRefused)
		}
	}
	return r, pub, nil
}

// openTrailCheckpoint opens a checkpoint of a trail: a C2SP checkpoint in
// its one form, without extension lines, signed by the log key first,
// then by cosigners (verifiers; nil for the head, which carries the log's
// signature alone), each once, sorted by key name, and nothing else. It
// returns the checkpoint and the signatures after the log's.
func openTrailCheckpoint(what string, msg []byte, log note.Verifier, cosigners []note.Verifier) (torchwood.Checkpoint, []note.Signature, error) {
	var c torchwood.Checkpoint
	text, _, ok := strings.Cut(string(msg), "\n\n")
	if !ok {
		return c, nil, fmt.Errorf("%s checkpoint is not a signed note", what)
	}
	text += "\n"
	c, err := torchwood.ParseCheckpoint(text)
	if err != nil || c.String() != text || c.Extension != "" {
		return c, nil, fmt.Errorf("%s checkpoint is not a checkpoint in its one form without extension lines", what)
	}
	if c.Origin != log.Name() {
		return c, nil, fmt.Errorf("%s checkpoint of origin %q, not the log's %q", what, clip(c.Origin), log.Name())
	}
	n, err := note.Open(msg, note.VerifierList(append([]note.Verifier{log}, cosigners...)...))
	if err != nil {
		return c, nil, fmt.Errorf("%s checkpoint: %w", what, err)
	}
	if len(n.UnverifiedSigs) != 0 {
		return c, nil, fmt.Errorf("%s checkpoint: a signature by %q, neither the log's nor a cosigner's", what, clip(n.UnverifiedSigs[0].Name))
	}
	var want strings.Builder
	want.WriteString(text + "\n")
	for i, s := range n.Sigs {
		isLog := s.Name == log.Name() && s.Hash == log.KeyHash()
		if isLog != (i == 0) {
			return c, nil, fmt.Errorf("%s checkpoint: the log's signature is not the first, alone", what)
		}
		if i > 1 && s.Name <= n.Sigs[i-1].Name {
			return c, nil, fmt.Errorf("%s checkpoint: cosignatures not sorted by key name, each once", what)
		}
		fmt.Fprintf(&want, "— %s %s\n", s.Name, s.Base64)
	}
	if len(n.Sigs) == 0 || want.String() != string(msg) {
		return c, nil, fmt.Errorf("%s checkpoint: signature lines not in their one form", what)
	}
	return c, n.Sigs[1:], nil
}

// cosigners returns the tlog-cosignature verifiers of a bundle's editors
// (revoked editors are not listed), and their labels by key name.
func cosigners(b *crypto.Bundle) ([]note.Verifier, map[string]string, error) {
	var vs []note.Verifier
	labels := map[string]string{}
	for _, e := range b.Editors {
		v, err := crypto.CosignatureVerifier(e.Cosign)
		if err != nil {
			return nil, nil, err
		}
		vs = append(vs, v)
		labels[v.Name()] = e.Label
	}
	return vs, labels, nil
}

// checkTrail checks a parsed trail (docs/claims.md, "Checking a trail").
// The order of the checks is: bundles, events (signatures, commitments,
// public parts), checkpoints and proofs, receipts and handles, then the
// claim's replay and the policy.
func checkTrail(t *Trail, newsroom string) (*TrailReport, error) {
	if _, err := note.NewVerifier(newsroom); err != nil {
		return nil, fmt.Errorf("audit: pinned newsroom key: %w", err)
	}
	tb, err := openTrailBundles(t.Bundles, newsroom)
	if err != nil {
		return nil, err
	}
	events := make([]*trailEvent, len(t.Events))
	for i, e := range t.Events {
		if events[i], err = openTrailEvent(e.Index, e.Entry, e.Public, e.Salt, tb.at(e.Index), t.Claim); err != nil {
			return nil, err
		}
	}
	r, _, pub, err := replayTrail(events, false)
	// Replay decides on public parts alone; report its verdict only once
	// the parts are known to be the log's.
	publication := int64(-1)
	var pb *crypto.Bundle
	if err == nil {
		publication, pb = events[pub].index, events[pub].bundle
	} else if len(events) > 0 {
		pb = events[len(events)-1].bundle
	}
	replayErr := err

	// The head: the log's checkpoint, signed by the log key in force at
	// its size, which every proof is against.
	headTree, err := parseTrailTree(t.Head)
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailCheckpoint, Index: -1, Err: err}
	}
	hb := tb.at(headTree.N)
	if hb == nil {
		return nil, trailErr(ErrTrailBundle, -1, "no bundle in force at the head")
	}
	headLog, err := hb.LogVerifier()
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailBundle, Index: -1, Err: err}
	}
	head, _, err := openTrailCheckpoint("head", t.Head, headLog, nil)
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailCheckpoint, Index: -1, Err: err}
	}
	for _, e := range allEntries(t) {
		if err := tlog.CheckRecord(e.Proof, head.N, head.Hash, e.Index, tlog.RecordHash(e.Entry)); err != nil {
			return nil, trailErr(ErrTrailInclusion, e.Index, "not in the head's tree of %d entries: %w", head.N, err)
		}
	}

	// The witnessed checkpoint: the same log, cosigned by enough editors
	// of the publication's bundle, a prefix of the head, including every
	// entry logged before the publication.
	if pb == nil {
		return nil, replayErr
	}
	wTree, err := parseTrailTree(t.Witnessed)
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailCheckpoint, Index: -1, Err: err}
	}
	wb := tb.at(wTree.N)
	if wb == nil {
		return nil, trailErr(ErrTrailBundle, -1, "no bundle in force at the witnessed checkpoint")
	}
	wLog, err := wb.LogVerifier()
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailBundle, Index: -1, Err: err}
	}
	cvs, labels, err := cosigners(pb)
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailBundle, Index: -1, Err: err}
	}
	w, cosigs, err := openTrailCheckpoint("witnessed", t.Witnessed, wLog, cvs)
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailCosigners, Index: -1, Err: err}
	}
	if w.Origin != head.Origin {
		return nil, trailErr(ErrTrailCheckpoint, -1, "the witnessed checkpoint's origin %q is not the head's %q", clip(w.Origin), head.Origin)
	}
	var who []string
	for _, s := range cosigs {
		if _, err := crypto.CosignatureDay(s); err != nil {
			return nil, &TrailError{Rule: ErrTrailDay, Index: -1, Err: err}
		}
		who = append(who, labels[s.Name])
	}
	slices.Sort(who)
	if int64(len(who)) < pb.Policy.Approvals {
		return nil, trailErr(ErrTrailCosigners, -1, "%d cosigners, bundle %d asks for %d", len(who), pb.Version, pb.Policy.Approvals)
	}
	if w.N > head.N {
		return nil, trailErr(ErrTrailConsistency, -1, "witnessed size %d above the head's %d", w.N, head.N)
	}
	if err := tlog.CheckTree(t.Consistency, head.N, head.Hash, w.N, w.Hash); err != nil {
		return nil, &TrailError{Rule: ErrTrailConsistency, Index: -1, Err: err}
	}
	if publication >= 0 {
		for _, e := range allEntries(t) {
			if e.Index < publication && e.Index >= w.N {
				return nil, trailErr(ErrTrailWitnessed, e.Index, "logged before the publication at %d, not in the witnessed tree of %d entries", publication, w.N)
			}
		}
	}

	// Receipts roots and handles: one root per cited index, one handle
	// per link, each leaf in its root's tree.
	roots := map[int64]*ReceiptsRoot{}
	for _, e := range t.Receipts {
		b := tb.at(e.Index)
		if b == nil {
			return nil, trailErr(ErrTrailBundle, e.Index, "no bundle in force at the receipts root")
		}
		root, err := OpenReceiptsRoot(e.Entry, b.Log)
		if err != nil {
			return nil, &TrailError{Rule: ErrTrailReceipts, Index: e.Index, Err: err}
		}
		roots[e.Index] = root
	}
	cited := map[int64]bool{}
	var links []*trailEvent
	for _, te := range events {
		if te.body.Kind == KindLink {
			links = append(links, te)
			cited[te.body.Receipts] = true
			if roots[te.body.Receipts] == nil {
				return nil, trailErr(ErrTrailReceipts, te.index, "the link's receipts root %d is not in the trail", te.body.Receipts)
			}
		}
	}
	for _, e := range t.Receipts {
		if !cited[e.Index] {
			return nil, trailErr(ErrTrailReceipts, e.Index, "a receipts root no link names")
		}
	}
	if len(t.Handles) != len(links) {
		return nil, trailErr(ErrTrailHandle, -1, "%d handles for %d links", len(t.Handles), len(links))
	}
	for i, h := range t.Handles {
		l := links[i]
		if h.Link != l.index {
			return nil, trailErr(ErrTrailHandle, h.Link, "handle %d is of entry %d, not of link %d", i, h.Link, l.index)
		}
		if err := CheckLeaf(roots[l.body.Receipts], h.Leaf, l.body.Handle, h.Proof); err != nil {
			return nil, trailErr(ErrTrailHandle, l.index, "handle %s is not leaf %d of receipts root %d: %w", l.body.Handle, h.Leaf, l.body.Receipts, err)
		}
	}
	for i, used := range tb.used {
		if !used {
			return nil, trailErr(ErrTrailBundle, t.Bundles[i].Index, "a bundle in force at nothing the trail holds")
		}
	}

	if replayErr != nil {
		return nil, replayErr
	}
	res := r.atPublication
	c := r.c
	rep := &TrailReport{Claim: t.Claim, Text: c.Version().Text, Scope: c.Version().Scope,
		Versions: slices.Clone(c.Versions), Published: *c.Published, Bundle: pb.Version, Policy: res,
		Corrections: slices.Clone(c.Corrections), Origin: head.Origin, Witnessed: w.Tree, Cosigners: who, Head: head.Tree}
	for _, cl := range res.Clusters {
		for _, l := range cl.Links {
			if p := roots[l.Receipts].Period; !slices.Contains(rep.Periods, p) {
				rep.Periods = append(rep.Periods, p)
			}
		}
	}
	slices.SortFunc(rep.Periods, func(a, b Period) int { return strings.Compare(a.First, b.First) })
	return rep, nil
}

// parseTrailTree reads the tree of a checkpoint note before its
// signatures are checked, to know which bundle's log key signs it.
func parseTrailTree(msg []byte) (tlog.Tree, error) {
	text, _, ok := strings.Cut(string(msg), "\n\n")
	if !ok {
		return tlog.Tree{}, errors.New("checkpoint is not a signed note")
	}
	c, err := torchwood.ParseCheckpoint(text + "\n")
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint: %w", err)
	}
	return c.Tree, nil
}

// allEntries returns every entry of a trail with its proof.
func allEntries(t *Trail) []TrailEntry {
	out := slices.Clone(t.Bundles)
	out = append(out, t.Receipts...)
	for _, e := range t.Events {
		out = append(out, e.TrailEntry)
	}
	return out
}
