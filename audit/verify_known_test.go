package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"testing"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/tlog"
)

// treeOf returns the tree of the first n entries.
func treeOf(t *testing.T, entries [][]byte, n int64) tlog.Tree {
	t.Helper()
	var hs hashSlice
	for i, e := range entries[:n] {
		s, err := tlog.StoredHashes(int64(i), e, hs)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, s...)
	}
	h, err := tlog.TreeHash(n, hs)
	if err != nil {
		t.Fatal(err)
	}
	return tlog.Tree{N: n, Hash: h}
}

// badSignature returns the signed note msg with its signature changed in
// one bit, still canonical base64: only checking it finds it.
func badSignature(t *testing.T, msg []byte) []byte {
	t.Helper()
	i := bytes.LastIndexByte(msg[:len(msg)-1], ' ')
	sig, err := base64.StdEncoding.Strict().DecodeString(string(msg[i+1 : len(msg)-1]))
	if err != nil {
		t.Fatal(err)
	}
	sig[10] ^= 1
	return append(append(bytes.Clone(msg[:i+1]), base64.StdEncoding.EncodeToString(sig)...), '\n')
}

// TestVerifyKnownPrefix: a prefix verified before (its tree given) is
// verified again to the same state without its events' signatures; any
// byte that does not hash to the tree given makes it verify nothing
// (ErrPrefixMismatch), and Verify then checks everything; a signer the
// bundle in force does not list is refused all the same.
func TestVerifyKnownPrefix(t *testing.T) {
	ctx := context.Background()
	l, _ := buildLog(t)
	full, err := l.verify()
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(l.entries))
	for _, k := range []int64{1, 3, n / 2, n} {
		v, _ := NewVerifier(testNewsroom.Verifier)
		if err := v.VerifyKnownPrefix(ctx, SliceReader(l.entries), treeOf(t, l.entries, k)); err != nil {
			t.Fatalf("VerifyKnownPrefix(%d): %v", k, err)
		}
		if v.Size() != k {
			t.Errorf("VerifyKnownPrefix(%d): Size %d", k, v.Size())
		}
		if err := v.Verify(ctx, SliceReader(l.entries), n); err != nil {
			t.Fatalf("Verify after VerifyKnownPrefix(%d): %v", k, err)
		}
		if v.Tree() != full.Tree() {
			t.Errorf("prefix %d: tree %v, want %v", k, v.Tree(), full.Tree())
		}
		for i := range n {
			a, b := v.Event(i), full.Event(i)
			if (a == nil) != (b == nil) || a != nil && (a.ID != b.ID || a.Editor != b.Editor || a.Base != b.Base) {
				t.Errorf("prefix %d: event %d is %+v, want %+v", k, i, a, b)
			}
		}
	}

	// The last entry (alice's event, which no later base names) with a
	// bad signature.
	bad := append([][]byte{}, l.entries...)
	bad[n-1] = badSignature(t, bad[n-1])
	v, _ := NewVerifier(testNewsroom.Verifier)
	if err := v.VerifyKnownPrefix(ctx, SliceReader(bad), treeOf(t, l.entries, n)); !errors.Is(err, ErrPrefixMismatch) || v.Size() != 0 {
		t.Fatalf("VerifyKnownPrefix of a changed entry = %v (Size %d), want ErrPrefixMismatch and nothing verified", err, v.Size())
	}
	if ee := entryError(t, v.Verify(ctx, SliceReader(bad), n)); ee.Index != n-1 || !errors.Is(ee, crypto.ErrBadSignature) {
		t.Errorf("Verify after the mismatch = %v, want ErrBadSignature at %d", ee, n-1)
	}
	// The skip is real: given the tree of those very bytes (which only a
	// tree verified before may be), the bad signature is not checked.
	v, _ = NewVerifier(testNewsroom.Verifier)
	if err := v.VerifyKnownPrefix(ctx, SliceReader(bad), treeOf(t, bad, n)); err != nil {
		t.Errorf("VerifyKnownPrefix given the tree of the changed entries: %v", err)
	}
	if err := v.VerifyKnownPrefix(ctx, SliceReader(bad), treeOf(t, bad, n)); err == nil {
		t.Error("VerifyKnownPrefix on a used verifier succeeded")
	}
	v, _ = NewVerifier(testNewsroom.Verifier)
	if err := v.VerifyKnownPrefix(ctx, SliceReader(l.entries), tlog.Tree{N: 0}); !errors.Is(err, ErrPrefixMismatch) {
		t.Errorf("VerifyKnownPrefix of an empty tree = %v, want ErrPrefixMismatch", err)
	}

	// bob is not in bundle 1 of this log: his event is refused inside a
	// known prefix too.
	bob := newEditor(t, "bob")
	l2 := newTestLog(t)
	l2.addBundle(1, []*crypto.EditorKey{testAlice})
	l2.addCheapEvent(testAlice)
	l2.addCheapEvent(bob)
	v, _ = NewVerifier(testNewsroom.Verifier)
	err = v.VerifyKnownPrefix(ctx, SliceReader(l2.entries), l2.tree())
	if ee := entryError(t, err); ee.Index != 2 || !errors.Is(err, crypto.ErrUnknownSigner) {
		t.Errorf("VerifyKnownPrefix with an unknown signer = %v, want ErrUnknownSigner at 2", err)
	}
}
