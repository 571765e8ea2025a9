package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"fieldtip/crypto"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

func tipHashes(n int) [][32]byte {
	hs := make([][32]byte, n)
	for i := range hs {
		hs[i] = sha256.Sum256([]byte{byte(i), byte(i >> 8), 't'})
	}
	return hs
}

func mustPeriodKey(t *testing.T) PeriodKey {
	t.Helper()
	k, err := GeneratePeriodKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signedRoot returns the signed root of tree, as an editor opens it.
func signedRoot(t *testing.T, p Period, tree *ReceiptsTree, sealedKey []byte) *ReceiptsRoot {
	t.Helper()
	msg, err := SignReceiptsRoot(&ReceiptsRoot{Period: p, Size: tree.Size(), Root: tree.Root(), Key: sha256.Sum256(sealedKey)}, testLogKey.Signer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenReceiptsRoot(msg, testLogKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReceiptsTree(t *testing.T) {
	k := mustPeriodKey(t)
	tips := tipHashes(5)
	tree, err := BuildReceiptsTree(k, tips, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tree.Size() != DefaultReceiptsTreeSize {
		t.Fatalf("Size() = %d, want %d", tree.Size(), DefaultReceiptsTreeSize)
	}
	root := signedRoot(t, OneDay("2026-03-14"), tree, nil)
	for _, h := range tips {
		leaf := TipLeaf(k, h)
		i, p, err := tree.Prove(leaf)
		if err != nil {
			t.Fatal(err)
		}
		if tree.Leaves()[i] != leaf {
			t.Fatalf("Prove gave index %d, which holds another leaf", i)
		}
		if err := CheckLeaf(root, i, leaf, p); err != nil {
			t.Errorf("CheckLeaf: %v", err)
		}
		if err := CheckLeaf(root, (i+1)%tree.Size(), leaf, p); err == nil {
			t.Error("CheckLeaf accepted a proof at another index")
		}
		p[0][0] ^= 1
		if err := CheckLeaf(root, i, leaf, p); err == nil {
			t.Error("CheckLeaf accepted a changed proof")
		}
	}
	if _, _, err := tree.Prove(TipLeaf(k, sha256.Sum256([]byte("absent")))); err == nil {
		t.Error("Prove of an absent leaf succeeded")
	}
	// Without the key, a tip's hash gives no leaf.
	if _, _, err := tree.Prove(TipLeaf(mustPeriodKey(t), tips[0])); err == nil {
		t.Error("a leaf made with another key is in the tree")
	}
	// A second tree of the same tips with another key shares no leaf.
	other, err := BuildReceiptsTree(mustPeriodKey(t), tips, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range other.Leaves() {
		if _, _, err := tree.Prove(l); err == nil {
			t.Fatal("two keys' trees share a leaf")
		}
	}
}

func TestReceiptsTreeSize(t *testing.T) {
	k := mustPeriodKey(t)
	for _, c := range []struct {
		tips    int
		minSize int64
		want    int64
	}{
		{0, 0, 1024}, {1024, 0, 1024}, {1025, 0, 2048}, {3, 4, 4}, {4, 4, 4}, {5, 4, 8}, {0, 1, 1}, {2, 1, 2},
	} {
		tree, err := BuildReceiptsTree(k, tipHashes(c.tips), c.minSize)
		if err != nil {
			t.Fatalf("%d tips, min %d: %v", c.tips, c.minSize, err)
		}
		if tree.Size() != c.want {
			t.Errorf("%d tips, min %d: size %d, want %d", c.tips, c.minSize, tree.Size(), c.want)
		}
		for i := 1; i < len(tree.Leaves()); i++ {
			if bytes.Compare(tree.Leaves()[i-1][:], tree.Leaves()[i][:]) >= 0 {
				t.Fatalf("%d tips: leaves not sorted", c.tips)
			}
		}
	}
	for _, minSize := range []int64{-1, 3, 1000, MaxReceiptsTreeSize * 2} {
		if _, err := BuildReceiptsTree(k, nil, minSize); err == nil {
			t.Errorf("BuildReceiptsTree with size %d succeeded", minSize)
		}
	}
	if _, err := BuildReceiptsTree(k, [][32]byte{{1}, {1}}, 4); err == nil {
		t.Error("BuildReceiptsTree with a tip twice succeeded")
	}
	leaves := func(bs ...byte) []Leaf {
		var ls []Leaf
		for _, b := range bs {
			ls = append(ls, Leaf{b})
		}
		return ls
	}
	for _, c := range [][]Leaf{nil, leaves(1, 2, 3), leaves(2, 1), leaves(1, 1), leaves(1, 2, 4, 3)} {
		if _, err := NewReceiptsTree(c); !errors.Is(err, crypto.ErrMalformed) {
			t.Errorf("NewReceiptsTree(%d leaves) = %v, want ErrMalformed", len(c), err)
		}
	}
}

func TestCheckReceipts(t *testing.T) {
	k := mustPeriodKey(t)
	tips := tipHashes(6)
	p := OneDay("2026-03-14")
	// The server issued receipts for tips 0-5. It dropped tip 2 and, to
	// keep the size, added a leaf of a tip nobody pulled (tip 6).
	honest, err := BuildReceiptsTree(k, tips, 8)
	if err != nil {
		t.Fatal(err)
	}
	withForeign := append(append([][32]byte{}, tips[:2]...), tips[3:]...)
	foreign := sha256.Sum256([]byte("foreign"))
	cheat, err := BuildReceiptsTree(k, append(withForeign, foreign), 8)
	if err != nil {
		t.Fatal(err)
	}
	foreignIndex, _, err := cheat.Prove(TipLeaf(k, foreign))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckReceipts(k, signedRoot(t, p, honest, nil), honest, tips); err != nil {
		t.Fatalf("CheckReceipts of an honest tree: %v", err)
	}
	// Pulled in another order: the same.
	rev := append([][32]byte{}, tips...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if err := CheckReceipts(k, signedRoot(t, p, honest, nil), honest, rev); err != nil {
		t.Fatalf("CheckReceipts, tips in another order: %v", err)
	}
	// Two pulled tips with the same ciphertext are one leaf, and both found.
	if err := CheckReceipts(k, signedRoot(t, p, honest, nil), honest, append(rev, tips[4])); err != nil {
		t.Fatalf("CheckReceipts, a ciphertext pulled twice: %v", err)
	}

	err = CheckReceipts(k, signedRoot(t, p, cheat, nil), cheat, tips)
	var me *ReceiptsMismatchError
	if !errors.As(err, &me) {
		t.Fatalf("CheckReceipts of a cheating tree = %v, want a *ReceiptsMismatchError", err)
	}
	if want := [][32]byte{tips[2]}; !reflect.DeepEqual(me.Missing, want) {
		t.Errorf("Missing = %x, want %x", me.Missing, want)
	}
	if want := []int64{foreignIndex}; !reflect.DeepEqual(me.Foreign, want) {
		t.Errorf("Foreign = %v, want %v", me.Foreign, want)
	}
	if me.Period != p || !strings.Contains(me.Error(), "1 pulled tips not in the tree, 1 leaves") {
		t.Errorf("error = %q", me.Error())
	}
	// A dummy beyond the size is foreign too: a tree of 8 whose leaves are
	// dummies 0-1 and 8-13 hides 6 tips behind dummy-looking leaves.
	var ls []Leaf
	for _, i := range []uint64{0, 1, 8, 9, 10, 11, 12, 13} {
		ls = append(ls, DummyLeaf(k, i))
	}
	slicesSortLeaves(ls)
	high, err := NewReceiptsTree(ls)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckReceipts(k, signedRoot(t, p, high, nil), high, nil); !errors.As(err, &me) || len(me.Foreign) != 6 {
		t.Errorf("CheckReceipts of high dummies = %v, want 6 foreign leaves", err)
	}
	// Leaves that are not the signed tree.
	if err := CheckReceipts(k, signedRoot(t, p, honest, nil), cheat, tips); !errors.Is(err, ErrRootMismatch) {
		t.Errorf("CheckReceipts against another tree's root = %v, want ErrRootMismatch", err)
	}
}

func slicesSortLeaves(ls []Leaf) {
	for i := range ls {
		for j := i + 1; j < len(ls); j++ {
			if bytes.Compare(ls[j][:], ls[i][:]) < 0 {
				ls[i], ls[j] = ls[j], ls[i]
			}
		}
	}
}

func TestPeriodKey(t *testing.T) {
	bob, eve := newEditor(t, "bob"), newEditor(t, "eve")
	b := testBundle(t, testAlice, bob)
	k := mustPeriodKey(t)
	p := Period{"2026-03-09", "2026-03-15"}
	sealed, err := SealPeriodKey(k, p, b)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := BuildReceiptsTree(k, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	root := signedRoot(t, p, tree, sealed)
	for _, ed := range []*crypto.EditorKey{testAlice, bob} {
		got, err := OpenPeriodKey(sealed, root, ed.Identity)
		if err != nil || got != k {
			t.Errorf("%s: OpenPeriodKey = %v", ed.Label, err)
		}
	}
	if _, err := OpenPeriodKey(sealed, root, eve.Identity); err == nil {
		t.Error("eve opened the period key")
	}
	var ce *CommitmentError
	other, err := SealPeriodKey(k, p, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPeriodKey(other, root, testAlice.Identity); !errors.As(err, &ce) {
		t.Errorf("OpenPeriodKey of a key the root does not name = %v, want *CommitmentError", err)
	}
	// A key sealed for another period, named by this period's root.
	wrong, err := SealPeriodKey(k, OneDay("2026-03-16"), b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPeriodKey(wrong, signedRoot(t, p, tree, wrong), testAlice.Identity); !errors.Is(err, crypto.ErrMalformed) {
		t.Errorf("OpenPeriodKey of another period's key = %v, want ErrMalformed", err)
	}
	if _, err := SealPeriodKey(k, Period{"2026-03-15", "2026-03-09"}, b); err == nil {
		t.Error("SealPeriodKey of a reversed period succeeded")
	}
}

func TestReceiptsRoot(t *testing.T) {
	r := &ReceiptsRoot{Period: Period{"2026-03-09", "2026-03-15"}, Size: 2048, Root: tlog.RecordHash([]byte("x")), Key: [32]byte{1, 2}}
	msg, err := SignReceiptsRoot(r, testLogKey.Signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenReceiptsRoot(msg, testLogKey.Verifier)
	if err != nil || *got != *r {
		t.Fatalf("OpenReceiptsRoot(SignReceiptsRoot(r)) = %+v, %v; want %+v", got, err, r)
	}
	if _, err := OpenReceiptsRoot(msg, testNewsroom.Verifier); !errors.Is(err, crypto.ErrUnknownSigner) {
		t.Errorf("OpenReceiptsRoot with the newsroom key = %v, want ErrUnknownSigner", err)
	}
	valid, err := r.text()
	if err != nil {
		t.Fatal(err)
	}
	repl := func(old, new string) string {
		if strings.Count(valid, old) != 1 {
			panic(old)
		}
		return strings.Replace(valid, old, new, 1)
	}
	for _, c := range []struct{ name, text string }{
		{"event header", repl(ReceiptsHeader, EventHeader)},
		{"period one day", repl("period 2026-03-09 2026-03-15", "period 2026-03-09")},
		{"period reversed", repl("period 2026-03-09 2026-03-15", "period 2026-03-15 2026-03-09")},
		{"period 32 days", repl("period 2026-03-09 2026-03-15", "period 2026-03-09 2026-04-09")},
		{"period bad day", repl("period 2026-03-09", "period 2026-02-29")},
		{"size not a power of two", repl("size 2048", "size 2047")},
		{"size zero", repl("size 2048", "size 0")},
		{"size too big", repl("size 2048", "size 2097152")},
		{"size leading zero", repl("size 2048", "size 02048")},
		{"root unpadded", repl("=\nkey", "\nkey")},
		{"key uppercase", repl("key 0102", "key 0A02")},
		{"key short", repl("key 0102", "key 01")},
		{"line missing", repl("size 2048\n", "")},
		{"extra line", valid + "extra 1\n"},
	} {
		_, err := OpenReceiptsRoot(signText(t, c.text, testLogKey.Signer), testLogKey.Verifier)
		if !errors.Is(err, crypto.ErrMalformed) {
			t.Errorf("%s: OpenReceiptsRoot = %v, want ErrMalformed", c.name, err)
		}
	}
	if _, err := OpenReceiptsRoot(append(bytes.Repeat([]byte{'x'}, MaxReceiptsSize), msg...), testLogKey.Verifier); !errors.Is(err, crypto.ErrMalformed) {
		t.Errorf("OpenReceiptsRoot over the cap = %v, want ErrMalformed", err)
	}
	for _, bad := range []*ReceiptsRoot{
		{Period: OneDay("2026-3-9"), Size: 1}, {Period: OneDay("2026-03-09"), Size: 3},
	} {
		if _, err := SignReceiptsRoot(bad, testLogKey.Signer); err == nil {
			t.Errorf("SignReceiptsRoot(%+v) succeeded", bad)
		}
	}
}

func toBytes(hs []tlog.Hash) [][]byte {
	var out [][]byte
	for _, h := range hs {
		out = append(out, h[:])
	}
	return out
}

// The trees and proofs of tlog, as this package uses them, agree with an
// independent implementation: transparency-dev/merkle's RFC 6962 hasher,
// compact ranges and proof verifiers.
func TestProofsCrossCheck(t *testing.T) {
	h := rfc6962.DefaultHasher
	rf := compact.RangeFactory{Hash: h.HashChildren}

	// The receipts tree: root from a compact range over the leaf hashes,
	// and every leaf's inclusion proof.
	k := mustPeriodKey(t)
	tree, err := BuildReceiptsTree(k, tipHashes(37), 64)
	if err != nil {
		t.Fatal(err)
	}
	cr := rf.NewEmptyRange(0)
	for _, l := range tree.Leaves() {
		if err := cr.Append(h.HashLeaf(l[:]), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := cr.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr := tree.Root(); !bytes.Equal(root, tr[:]) {
		t.Fatalf("receipts root %x, merkle computes %x", tr, root)
	}
	for i, l := range tree.Leaves() {
		_, p, err := tree.Prove(l)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(h, uint64(i), uint64(tree.Size()), h.HashLeaf(l[:]), toBytes(p), root); err != nil {
			t.Errorf("leaf %d: merkle refuses the tlog proof: %v", i, err)
		}
	}

	// The log: roots at every size, inclusion and consistency proofs from
	// the verifier's stored hashes.
	l, _ := buildLog(t)
	for len(l.entries) < 40 {
		l.addCheapEvent(testAlice)
	}
	v, err := l.verify()
	if err != nil {
		t.Fatal(err)
	}
	cr = rf.NewEmptyRange(0)
	roots := [][]byte{h.EmptyRoot()}
	for _, e := range l.entries {
		if err := cr.Append(h.HashLeaf(e), nil); err != nil {
			t.Fatal(err)
		}
		r, err := cr.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, r)
	}
	n := v.Size()
	for size := int64(1); size <= n; size++ {
		th, err := tlog.TreeHash(size, v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(th[:], roots[size]) {
			t.Fatalf("tree hash at %d: tlog %x, merkle %x", size, th, roots[size])
		}
		for _, i := range []int64{0, size / 2, size - 1} {
			p, err := tlog.ProveRecord(size, i, v)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(h, uint64(i), uint64(size), h.HashLeaf(l.entries[i]), toBytes(p), roots[size]); err != nil {
				t.Errorf("entry %d in %d: %v", i, size, err)
			}
		}
		p, err := tlog.ProveTree(n, size, v)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(h, uint64(size), uint64(n), toBytes(p), roots[size], roots[n]); err != nil {
			t.Errorf("consistency %d to %d: %v", size, n, err)
		}
	}
}

// The server builds a period's receipts tree and logs its root; an editor
// who pulled the period's tips checks that the tree holds exactly them.
func ExampleCheckReceipts() {
	// The server, at the end of the day.
	k, _ := GeneratePeriodKey()
	issued := [][32]byte{sha256.Sum256([]byte("tip 1")), sha256.Sum256([]byte("tip 2"))}
	tree, _ := BuildReceiptsTree(k, issued[:1], 0) // tip 2 was dropped
	root := &ReceiptsRoot{Period: OneDay("2026-03-14"), Size: tree.Size(), Root: tree.Root()}

	// The editor pulled both tips; the server says it holds one.
	err := CheckReceipts(k, root, tree, issued)
	var me *ReceiptsMismatchError
	if errors.As(err, &me) {
		fmt.Printf("%d missing, %d foreign of %d leaves\n", len(me.Missing), len(me.Foreign), tree.Size())
	}
	// Output: 1 missing, 0 foreign of 1024 leaves
}
