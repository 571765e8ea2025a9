package audit

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/tlog"
)

// benchLogSize is the size of the benchmark's log.
const benchLogSize = 100_000

type benchTrail struct {
	c     *claimLog
	trail []byte
	rep   *TrailReport
}

var (
	benchOnce sync.Once
	benchData *benchTrail
)

// benchClaimLog builds, once, a log of benchLogSize entries: bundle,
// two receipts roots of 1,024 leaves, then events signed by alice (the
// body of a real editorial log, which the trail never carries) among
// which a claim with 10 supporting tips in 10 clusters, approved by bob
// and carol, cosigned, published near the end.
func benchClaimLog(b *testing.B) *benchTrail {
	benchOnce.Do(func() {
		bob, carol := newEditor(b, "bob"), newEditor(b, "carol")
		c := newClaimLog(b, crypto.DefaultPolicy, testAlice, bob, carol)
		var tips [][32]byte
		for n := range 10 {
			tips = append(tips, tipHash(n))
		}
		leavesDefault := func(day string, ts [][32]byte) int64 {
			k, err := GeneratePeriodKey()
			if err != nil {
				b.Fatal(err)
			}
			tree, err := BuildReceiptsTree(k, ts, 0)
			if err != nil {
				b.Fatal(err)
			}
			root := &ReceiptsRoot{Period: OneDay(day), Size: tree.Size(), Root: tree.Root(), Key: [32]byte{1}}
			msg, err := SignReceiptsRoot(root, testLogKey.Signer)
			if err != nil {
				b.Fatal(err)
			}
			i := c.append(msg)
			c.leaves[i], c.keys[i] = tree.Leaves(), k
			return i
		}
		r1 := leavesDefault("2026-03-12", tips[:5])
		r2 := leavesDefault("2026-03-13", tips[5:])
		alice := signer(b, testAlice)
		base := tlog.Tree{N: 1, Hash: c.tree().Hash}
		if len(c.entries) != 3 {
			b.Fatalf("%d entries", len(c.entries))
		}
		h0, err := tlog.TreeHash(1, c)
		if err != nil {
			b.Fatal(err)
		}
		base.Hash = h0
		filler := func(upTo int) {
			for len(c.entries) < upTo {
				e := &Event{Bundle: 1, Day: "2026-03-14", Base: base}
				rand.Read(e.ID[:])
				rand.Read(e.Ciphertext[:])
				rand.Read(e.Public[:])
				rand.Read(e.Private[:])
				msg, err := SignEvent(e, alice)
				if err != nil {
					b.Fatal(err)
				}
				c.append(msg)
			}
		}
		id := ClaimID{0xbe, 0x7c}
		filler(10_000)
		c.claim("alice", id, "Copper concentrate leaves the Hyesan mine by truck at night.")
		for n := range 10 {
			filler(20_000 + 6_000*n)
			r := r1
			if n >= 5 {
				r = r2
			}
			c.link("alice", id, r, n, StanceSupports, fmt.Sprintf("cluster %d", n))
		}
		filler(90_000)
		c.signoff("bob", id, DecisionApprove)
		filler(95_000)
		c.signoff("carol", id, DecisionApprove)
		filler(99_000)
		c.cosign("bob", "carol")
		filler(benchLogSize - 1)
		c.publish("alice", id)
		if n := len(c.entries); n != benchLogSize {
			b.Fatalf("log of %d entries", n)
		}
		data := c.trail(id)
		rep, err := CheckTrail(data, testNewsroom.Verifier)
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Policy.Clusters) != 10 {
			b.Fatalf("%d clusters", len(rep.Policy.Clusters))
		}
		benchData = &benchTrail{c: c, trail: data, rep: rep}
	})
	if benchData == nil {
		b.Fatal("the benchmark log failed to build")
	}
	return benchData
}

// BenchmarkCheckTrail checks the trail of a claim with 10 supporting tips
// over a log of 100,000 entries (check_trail), against two baselines
// measured in the same run: the inclusion proofs alone, the part of the
// work any proof of the same entries costs (inclusion_proofs), and what
// an auditor without a trail would do, a keyless Verifier over the whole
// log (verify_log; its per-entry cost is ns/op ÷ 100,000).
//
//	go test ./audit -run X -bench CheckTrail -benchtime 20x
func BenchmarkCheckTrail(b *testing.B) {
	bt := benchClaimLog(b)
	b.Run("check_trail", func(b *testing.B) {
		b.SetBytes(int64(len(bt.trail)))
		for b.Loop() {
			if _, err := CheckTrail(bt.trail, testNewsroom.Verifier); err != nil {
				b.Fatal(err)
			}
		}
	})
	tr, err := ParseTrail(bt.trail)
	if err != nil {
		b.Fatal(err)
	}
	head := bt.rep.Head
	roots := map[int64]*ReceiptsRoot{}
	for _, e := range tr.Receipts {
		if roots[e.Index], err = OpenReceiptsRoot(e.Entry, testLogKey.Verifier); err != nil {
			b.Fatal(err)
		}
	}
	var links []*EventBody
	for _, ev := range bt.c.state.ClaimEvents(bt.rep.Claim) {
		if ev.Body.Kind == KindLink {
			links = append(links, ev.Body)
		}
	}
	b.Run("inclusion_proofs", func(b *testing.B) {
		for b.Loop() {
			for _, e := range allEntries(tr) {
				if err := tlog.CheckRecord(e.Proof, head.N, head.Hash, e.Index, tlog.RecordHash(e.Entry)); err != nil {
					b.Fatal(err)
				}
			}
			for i, h := range tr.Handles {
				if err := CheckLeaf(roots[links[i].Receipts], h.Leaf, links[i].Handle, h.Proof); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("verify_log", func(b *testing.B) {
		for b.Loop() {
			v, err := NewVerifier(testNewsroom.Verifier)
			if err != nil {
				b.Fatal(err)
			}
			if err := v.Verify(context.Background(), SliceReader(bt.c.entries), benchLogSize); err != nil {
				b.Fatal(err)
			}
		}
	})
}
