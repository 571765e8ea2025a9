package audit

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"fieldtip/crypto"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TrailLog is what BuildTrail reads from the server's log. The server
// implements it over its store; tests over a log in memory.
type TrailLog interface {
	// ReadHashes returns the log's stored hashes (tlog.HashReader), at
	// least those of the head's tree.
	tlog.HashReader
	// Entries returns the entries at these log indexes, in the order
	// asked: exactly len(indexes) of them, or an error.
	Entries(ctx context.Context, indexes []int64) ([][]byte, error)
	// BundleBefore returns the log index of the bundle in force at index:
	// the last bundle entry before it.
	BundleBefore(ctx context.Context, index int64) (int64, error)
	// ReceiptsLeaves returns the leaves of the receipts tree whose root is
	// the entry at index, sorted, as the server stores them.
	ReceiptsLeaves(ctx context.Context, index int64) ([]Leaf, error)
	// Cosigned returns the cosigned checkpoints the server holds with a
	// size from min to max: each the log's signed checkpoint followed by
	// every cosignature line it keeps for that size.
	Cosigned(ctx context.Context, min, max int64) ([][]byte, error)
}

// Revealed is an event's public part and salt, as the publishing editor
// reveals it (Parts.Public, Parts.PublicSalt).
type Revealed struct {
	Index  int64
	Public []byte
	Salt   [SaltSize]byte
}

// BuildTrail builds the trail of a claim from the server's log: the
// revealed public parts of the claim's events (from the claim event that
// created it through the publication, then the corrections), head (the
// log's signed checkpoint, which must cover them all), and what log
// holds (docs/claims.md, "Building a trail"). It picks the largest
// cosigned checkpoint up to the head that includes every entry logged
// before the publication and carries enough day-precision cosignatures
// by editors of the publication's bundle, keeping only those.
//
// It checks as it builds, so that a bad request fails early with the same
// *TrailError rules as CheckTrail (ErrTrailCommitment for a public part
// that does not open its event, ErrTrailCosigners when no checkpoint is
// cosigned enough yet, which passes once editors have synced); the
// caller still runs CheckTrail on MarshalTrail's bytes, which is the
// check that counts.
func BuildTrail(ctx context.Context, log TrailLog, newsroom string, head []byte, claim ClaimID, revealed []Revealed) (*Trail, error) {
	return buildTrail(ctx, log, newsroom, head, claim, revealed)
}

func buildTrail(ctx context.Context, log TrailLog, newsroom string, head []byte, claim ClaimID, revealed []Revealed) (*Trail, error) {
	if len(revealed) == 0 || len(revealed) > MaxClaimEvents {
		return nil, trailErr(ErrTrailFormat, -1, "%d revealed events, want 1 to %d", len(revealed), MaxClaimEvents)
	}
	revealed = slices.Clone(revealed)
	slices.SortFunc(revealed, func(a, b Revealed) int { return cmp.Compare(a.Index, b.Index) })
	for i, rv := range revealed {
		if i > 0 && rv.Index == revealed[i-1].Index {
			return nil, trailErr(ErrTrailFormat, rv.Index, "revealed twice")
		}
	}
	bundles := &buildBundles{ctx: ctx, log: log, newsroom: newsroom, byIndex: map[int64]*crypto.Bundle{}}

	// The head, signed by the log key in force at its size.
	headTree, err := parseTrailTree(head)
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailCheckpoint, Index: -1, Err: err}
	}
	hb, _, err := bundles.at(headTree.N)
	if err != nil {
		return nil, err
	}
	headLog, err := hb.LogVerifier()
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailBundle, Index: -1, Err: err}
	}
	hc, _, err := openTrailCheckpoint("head", head, headLog, nil)
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailCheckpoint, Index: -1, Err: err}
	}

	// The events, opened and checked against what the editor revealed.
	indexes := make([]int64, len(revealed))
	for i, rv := range revealed {
		if rv.Index < 0 || rv.Index >= hc.N {
			return nil, trailErr(ErrTrailInclusion, rv.Index, "not in the head's tree of %d entries", hc.N)
		}
		indexes[i] = rv.Index
	}
	entries, err := log.Entries(ctx, indexes)
	if err != nil {
		return nil, fmt.Errorf("audit: build trail: read events: %w", err)
	}
	if len(entries) != len(indexes) {
		return nil, fmt.Errorf("audit: build trail: read %d events, got %d", len(indexes), len(entries))
	}
	t := &Trail{Claim: claim, Head: head}
	events := make([]*trailEvent, len(revealed))
	byIndex := map[int64]TrailEvent{}
	for i, rv := range revealed {
		b, _, err := bundles.at(rv.Index)
		if err != nil {
			return nil, err
		}
		if events[i], err = openTrailEvent(rv.Index, entries[i], rv.Public, rv.Salt, b, claim); err != nil {
			return nil, err
		}
		byIndex[rv.Index] = TrailEvent{TrailEntry: TrailEntry{Index: rv.Index, Entry: entries[i]}, Salt: rv.Salt, Public: rv.Public}
	}
	_, events, pub, err := replayTrail(events, true)
	if err != nil {
		return nil, err
	}
	for _, te := range events {
		t.Events = append(t.Events, byIndex[te.index])
	}
	publication, pb := events[pub].index, events[pub].bundle

	// The receipts roots the links name, and each handle's proof.
	var receipts []int64
	leaves := map[int64][]Leaf{}
	for _, te := range events {
		if te.body.Kind != KindLink {
			continue
		}
		ri := te.body.Receipts
		if _, ok := leaves[ri]; !ok {
			ls, err := log.ReceiptsLeaves(ctx, ri)
			if err != nil {
				return nil, trailErr(ErrTrailReceipts, ri, "leaves of the receipts root named by link %d: %w", te.index, err)
			}
			leaves[ri] = ls
			receipts = append(receipts, ri)
		}
		leaf, proof, err := ProveLeaf(leaves[ri], te.body.Handle)
		if err != nil {
			return nil, trailErr(ErrTrailHandle, te.index, "handle %s in the receipts tree of %d: %w", te.body.Handle, ri, err)
		}
		t.Handles = append(t.Handles, TrailHandle{Link: te.index, Leaf: leaf, Proof: proof})
	}
	slices.Sort(receipts)
	if len(receipts) > 0 {
		rentries, err := log.Entries(ctx, receipts)
		if err != nil || len(rentries) != len(receipts) {
			return nil, fmt.Errorf("audit: build trail: read receipts roots: %w", err)
		}
		for i, ri := range receipts {
			t.Receipts = append(t.Receipts, TrailEntry{Index: ri, Entry: rentries[i]})
		}
	}

	// The witnessed checkpoint: the largest cosigned enough, up to the
	// head, that includes every entry logged before the publication
	// (bundles in force at them come before them).
	need := int64(0)
	for _, e := range append(slices.Clone(t.Receipts), eventEntries(t.Events)...) {
		if e.Index < publication {
			need = max(need, e.Index+1)
		}
		_, bi, err := bundles.at(e.Index)
		if err != nil {
			return nil, err
		}
		if bi < publication {
			need = max(need, bi+1)
		}
	}
	cands, err := log.Cosigned(ctx, need, hc.N)
	if err != nil {
		return nil, fmt.Errorf("audit: build trail: cosigned checkpoints: %w", err)
	}
	witnessed, err := pickWitnessed(cands, need, hc, pb, bundles)
	if err != nil {
		return nil, err
	}
	t.Witnessed = witnessed.msg
	if t.Consistency, err = tlog.ProveTree(hc.N, witnessed.tree.N, log); err != nil {
		return nil, fmt.Errorf("audit: build trail: consistency proof: %w", err)
	}

	// The bundles in force at every entry and checkpoint of the trail.
	var at []int64
	for _, e := range append(slices.Clone(t.Receipts), eventEntries(t.Events)...) {
		at = append(at, e.Index)
	}
	at = append(at, witnessed.tree.N, hc.N)
	bi := map[int64]bool{}
	for _, x := range at {
		_, idx, err := bundles.at(x)
		if err != nil {
			return nil, err
		}
		bi[idx] = true
	}
	for idx := range bi {
		t.Bundles = append(t.Bundles, TrailEntry{Index: idx, Entry: bundles.entry[idx]})
	}
	slices.SortFunc(t.Bundles, func(a, b TrailEntry) int { return cmp.Compare(a.Index, b.Index) })

	// Every entry's inclusion proof in the head.
	for _, list := range [][]TrailEntry{t.Bundles, t.Receipts} {
		for i := range list {
			if list[i].Proof, err = tlog.ProveRecord(hc.N, list[i].Index, log); err != nil {
				return nil, fmt.Errorf("audit: build trail: inclusion proof of %d: %w", list[i].Index, err)
			}
		}
	}
	for i := range t.Events {
		if t.Events[i].Proof, err = tlog.ProveRecord(hc.N, t.Events[i].Index, log); err != nil {
			return nil, fmt.Errorf("audit: build trail: inclusion proof of %d: %w", t.Events[i].Index, err)
		}
	}
	return t, nil
}

func eventEntries(events []TrailEvent) []TrailEntry {
	out := make([]TrailEntry, len(events))
	for i, e := range events {
		out[i] = e.TrailEntry
	}
	return out
}

// buildBundles reads and verifies the bundles in force, once each.
type buildBundles struct {
	ctx      context.Context
	log      TrailLog
	newsroom string
	byIndex  map[int64]*crypto.Bundle
	entry    map[int64][]byte
}

// at returns the bundle in force at index and its log index.
func (bb *buildBundles) at(index int64) (*crypto.Bundle, int64, error) {
	bi, err := bb.log.BundleBefore(bb.ctx, index)
	if err != nil {
		return nil, 0, trailErr(ErrTrailBundle, index, "the bundle in force: %w", err)
	}
	if b := bb.byIndex[bi]; b != nil {
		return b, bi, nil
	}
	if bi < 0 || bi >= index {
		return nil, 0, trailErr(ErrTrailBundle, index, "the bundle in force is said to be entry %d", bi)
	}
	es, err := bb.log.Entries(bb.ctx, []int64{bi})
	if err != nil || len(es) != 1 {
		return nil, 0, trailErr(ErrTrailBundle, bi, "read the bundle: %v", err)
	}
	b, err := crypto.OpenBundle(es[0], bb.newsroom)
	if err != nil {
		return nil, 0, &TrailError{Rule: ErrTrailBundle, Index: bi, Err: err}
	}
	if bb.entry == nil {
		bb.entry = map[int64][]byte{}
	}
	bb.byIndex[bi], bb.entry[bi] = b, es[0]
	return b, bi, nil
}

type witnessedCheckpoint struct {
	msg  []byte
	tree tlog.Tree
}

// pickWitnessed chooses the largest candidate of a size from need to the
// head's with enough day-precision cosignatures by editors of the
// publication's bundle, and returns it with the log's signature and
// those cosignatures only, sorted by key name.
func pickWitnessed(cands [][]byte, need int64, head torchwood.Checkpoint, pb *crypto.Bundle, bundles *buildBundles) (*witnessedCheckpoint, error) {
	cvs, _, err := cosigners(pb)
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailBundle, Index: -1, Err: err}
	}
	best, bestCount := (*witnessedCheckpoint)(nil), -1
	for _, msg := range cands {
		tree, err := parseTrailTree(msg)
		if err != nil || tree.N < need || tree.N > head.N || best != nil && tree.N <= best.tree.N {
			continue
		}
		wb, _, err := bundles.at(tree.N)
		if err != nil {
			return nil, err
		}
		lv, err := wb.LogVerifier()
		if err != nil {
			continue
		}
		n, err := note.Open(msg, note.VerifierList(append([]note.Verifier{lv}, cvs...)...))
		if err != nil {
			continue
		}
		text := n.Text
		c, err := torchwood.ParseCheckpoint(text)
		if err != nil || c.String() != text || c.Extension != "" || c.Origin != head.Origin {
			continue
		}
		var logSig *note.Signature
		var cos []note.Signature
		for _, s := range n.Sigs {
			switch {
			case s.Name == lv.Name() && s.Hash == lv.KeyHash():
				logSig = &s
			default:
				if _, err := crypto.CosignatureDay(s); err == nil && !slices.ContainsFunc(cos, func(o note.Signature) bool { return o.Name == s.Name }) {
					cos = append(cos, s)
				}
			}
		}
		if logSig == nil || int64(len(cos)) < pb.Policy.Approvals {
			bestCount = max(bestCount, len(cos))
			continue
		}
		slices.SortFunc(cos, func(a, b note.Signature) int { return strings.Compare(a.Name, b.Name) })
		var out strings.Builder
		out.WriteString(text + "\n")
		for _, s := range append([]note.Signature{*logSig}, cos...) {
			fmt.Fprintf(&out, "— %s %s\n", s.Name, s.Base64)
		}
		best = &witnessedCheckpoint{msg: []byte(out.String()), tree: c.Tree}
	}
	if best == nil {
		return nil, trailErr(ErrTrailCosigners, -1, "no checkpoint of %d to %d entries is cosigned by %d editors of bundle %d yet (at most %d): the publication waits for editors to sync",
			need, head.N, pb.Policy.Approvals, pb.Version, max(bestCount, 0))
	}
	return best, nil
}
