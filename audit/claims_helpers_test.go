package audit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"

	"fieldtip/crypto"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// claimLog is a log of claim events built by a test with real keys: a
// bundle, receipts roots over tips' ciphertext hashes, events sealed with
// age and signed, checkpoints signed by the log key and cosigned by
// editors. It replays as it goes (state), keeps the parts of every body
// (to reveal them) and serves as the server's TrailLog.
type claimLog struct {
	*testLog
	editors  map[string]*crypto.EditorKey
	state    *State
	parts    map[int64]*Parts
	leaves   map[int64][]Leaf
	keys     map[int64]PeriodKey
	cosigned [][]byte
	day      string
}

func newClaimLog(t testing.TB, policy crypto.Policy, editors ...*crypto.EditorKey) *claimLog {
	t.Helper()
	c := &claimLog{testLog: newTestLog(t), editors: map[string]*crypto.EditorKey{}, state: NewState(),
		parts: map[int64]*Parts{}, leaves: map[int64][]Leaf{}, keys: map[int64]PeriodKey{}, day: "2026-03-14"}
	c.bundle(1, policy, editors)
	return c
}

// bundle signs and appends a bundle of the test newsroom.
func (c *claimLog) bundle(version int64, policy crypto.Policy, editors []*crypto.EditorKey, revoked ...string) *crypto.Bundle {
	c.t.Helper()
	b := &crypto.Bundle{Newsroom: testNewsroom.Verifier, Version: version, Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Log: testLogKey.Verifier, Policy: policy, Revoked: revoked}
	for _, e := range editors {
		b.Editors = append(b.Editors, e.Public)
		c.editors[e.Label] = e
	}
	msg, err := crypto.SignBundle(b, testNewsroom.Signer)
	if err != nil {
		c.t.Fatal(err)
	}
	opened, err := crypto.OpenBundle(msg, testNewsroom.Verifier)
	if err != nil {
		c.t.Fatal(err)
	}
	c.append(msg)
	c.testLog.bundle = opened
	c.state.AddBundle(opened)
	return opened
}

// event seals body to the bundle in force, signs it as editor, appends
// it and applies it to the state.
func (c *claimLog) event(editor string, body *EventBody) int64 {
	c.t.Helper()
	k := c.editors[editor]
	sb, err := SealEventBody(body, c.testLog.bundle)
	if err != nil {
		c.t.Fatal(err)
	}
	ev, err := sb.Event(c.day, c.tree())
	if err != nil {
		c.t.Fatal(err)
	}
	msg, err := SignEvent(ev, signer(c.t, k))
	if err != nil {
		c.t.Fatal(err)
	}
	i := c.append(msg)
	opened, err := OpenEvent(msg, c.testLog.bundle)
	if err != nil {
		c.t.Fatal(err)
	}
	c.bodies[i], c.events[i], c.parts[i] = sb.Ciphertext, opened, &sb.Parts
	got, _, err := OpenEventBody(sb.Ciphertext, opened, k.Identity)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.state.Apply(i, opened, got); err != nil {
		c.t.Fatal(err)
	}
	return i
}

// tip returns the ciphertext hash of a made-up tip n.
func tipHash(n int) [32]byte { return sha256.Sum256(fmt.Appendf(nil, "tip %d", n)) }

// receipts logs the receipts root of a period of one day over the tips
// (their ciphertext hashes), as the server does.
func (c *claimLog) receipts(day string, tips ...[32]byte) int64 {
	c.t.Helper()
	k, err := GeneratePeriodKey()
	if err != nil {
		c.t.Fatal(err)
	}
	tree, err := BuildReceiptsTree(k, tips, 16)
	if err != nil {
		c.t.Fatal(err)
	}
	sealed, err := SealPeriodKey(k, OneDay(day), c.testLog.bundle)
	if err != nil {
		c.t.Fatal(err)
	}
	root := &ReceiptsRoot{Period: OneDay(day), Size: tree.Size(), Root: tree.Root(), Key: sha256.Sum256(sealed)}
	msg, err := SignReceiptsRoot(root, testLogKey.Signer)
	if err != nil {
		c.t.Fatal(err)
	}
	i := c.append(msg)
	c.leaves[i], c.keys[i] = slices.Clone(tree.Leaves()), k
	return i
}

// handle is a tip's handle in the receipts tree logged at index.
func (c *claimLog) handle(receipts int64, tip [32]byte) Leaf { return TipLeaf(c.keys[receipts], tip) }

func (c *claimLog) claim(editor string, id ClaimID, text string) int64 {
	return c.event(editor, &EventBody{Kind: KindClaim, Claim: id, Text: text, Scope: "Hyesan, March 2026"})
}

// link links tip n, receipted in the root at receipts, as support in a
// cluster.
func (c *claimLog) link(editor string, id ClaimID, receipts int64, n int, stance Stance, cluster string) int64 {
	return c.event(editor, &EventBody{Kind: KindLink, Claim: id, Stance: stance, Cluster: cluster, Reliability: "B",
		Credibility: 2, Access: AccessFirstHand, Why: "Saw the trucks.", Handle: c.handle(receipts, tipHash(n)), Receipts: receipts,
		Tip: tipID(byte(n)), Ciphertext: tipHash(n)})
}

func (c *claimLog) unlink(editor string, id ClaimID, link int64) int64 {
	return c.event(editor, &EventBody{Kind: KindUnlink, Claim: id, Link: link, Tip: tipID(1)})
}

// signoff signs off the claim as the state has it now.
func (c *claimLog) signoff(editor string, id ClaimID, d Decision) int64 {
	c.t.Helper()
	cs := c.state.Claim(id)
	return c.event(editor, &EventBody{Kind: KindSignoff, Claim: id, Version: cs.Version().Index, Evidence: cs.Evidence(),
		Changes: cs.Changes, Decision: d, Note: "private note of " + editor})
}

// publish publishes the claim as the state has it now.
func (c *claimLog) publish(editor string, id ClaimID) int64 {
	c.t.Helper()
	cs := c.state.Claim(id)
	return c.event(editor, &EventBody{Kind: KindPublish, Claim: id, Version: cs.Version().Index, Evidence: cs.Evidence(),
		Changes: cs.Changes, Events: cs.Events})
}

// checkpoint returns the log key's signed checkpoint of the log now.
func (c *claimLog) checkpoint() []byte {
	c.t.Helper()
	text := torchwood.Checkpoint{Origin: "log.example", Tree: c.tree()}.String()
	msg, err := note.Sign(&note.Note{Text: text}, testLogKey.Signer)
	if err != nil {
		c.t.Fatal(err)
	}
	return msg
}

// cosign has editors cosign the checkpoint of the log now, which the
// server then holds.
func (c *claimLog) cosign(editors ...string) []byte {
	c.t.Helper()
	msg := cosignNote(c.t, c.checkpoint(), editors, c.editors)
	c.cosigned = append(c.cosigned, msg)
	return msg
}

func cosignNote(t testing.TB, signed []byte, editors []string, keys map[string]*crypto.EditorKey) []byte {
	t.Helper()
	lv, err := note.NewVerifier(testLogKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(lv))
	if err != nil {
		t.Fatal(err)
	}
	var ss []note.Signer
	for _, e := range editors {
		s, err := keys[e].CosignatureSigner()
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	out, err := note.Sign(n, ss...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// revealed returns the public parts and salts of the claim's events, as
// the publishing editor reveals them.
func (c *claimLog) revealed(id ClaimID) []Revealed {
	var out []Revealed
	for _, ev := range c.state.ClaimEvents(id) {
		p := c.parts[ev.Index]
		out = append(out, Revealed{Index: ev.Index, Public: p.Public, Salt: p.PublicSalt})
	}
	return out
}

// trail builds and marshals the claim's trail against the log now.
func (c *claimLog) trail(id ClaimID) []byte {
	c.t.Helper()
	t, err := BuildTrail(context.Background(), c, testNewsroom.Verifier, c.checkpoint(), id, c.revealed(id))
	if err != nil {
		c.t.Fatalf("BuildTrail: %v", err)
	}
	b, err := MarshalTrail(t)
	if err != nil {
		c.t.Fatalf("MarshalTrail: %v", err)
	}
	return b
}

// The TrailLog of the server, over the log in memory.

func (c *claimLog) Entries(_ context.Context, indexes []int64) ([][]byte, error) {
	out := make([][]byte, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(c.entries)) {
			return nil, fmt.Errorf("no entry %d", x)
		}
		out[i] = c.entries[x]
	}
	return out, nil
}

func (c *claimLog) BundleBefore(_ context.Context, index int64) (int64, error) {
	for i := min(index, int64(len(c.entries))) - 1; i >= 0; i-- {
		if firstLine(c.entries[i]) == crypto.BundleHeader {
			return i, nil
		}
	}
	return 0, fmt.Errorf("no bundle before %d", index)
}

func (c *claimLog) ReceiptsLeaves(_ context.Context, index int64) ([]Leaf, error) {
	ls, ok := c.leaves[index]
	if !ok {
		return nil, fmt.Errorf("no receipts root at %d", index)
	}
	return ls, nil
}

func (c *claimLog) Cosigned(_ context.Context, lo, hi int64) ([][]byte, error) {
	var out [][]byte
	for _, m := range c.cosigned {
		tree, err := parseTrailTree(m)
		if err != nil {
			return nil, err
		}
		if tree.N >= lo && tree.N <= hi {
			out = append(out, m)
		}
	}
	return out, nil
}

// publishedClaim builds the standard published claim of the tests: three
// editors, tips 1 to 3 receipted on one day, alice's claim with two
// supporting clusters and one contradicting link, approved by bob and
// carol, witnessed by them, published by alice. It returns the log and
// the claim id.
func publishedClaim(t testing.TB) (*claimLog, ClaimID) {
	t.Helper()
	c := newClaimLog(t, crypto.DefaultPolicy, testAlice, newEditor(t, "bob"), newEditor(t, "carol"))
	r := c.receipts("2026-03-13", tipHash(1), tipHash(2), tipHash(3))
	id := ClaimID{1, 2, 3}
	c.claim("alice", id, "Copper concentrate leaves the Hyesan mine by truck at night.")
	c.link("alice", id, r, 1, StanceSupports, "mine workers")
	c.link("bob", id, r, 2, StanceSupports, "customs papers")
	c.link("bob", id, r, 3, StanceContradicts, "a driver")
	c.signoff("bob", id, DecisionApprove)
	c.signoff("carol", id, DecisionApprove)
	c.cosign("bob", "carol")
	c.publish("alice", id)
	return c, id
}
