package crypto

import (
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestCosignatureKeys(t *testing.T) {
	k, err := GenerateEditorKey("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.CosignatureSigner()
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != CosignName("alice") {
		t.Fatalf("signer name %q", s.Name())
	}
	v, err := CosignatureVerifier(k.Public.Cosign)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyHash() != s.KeyHash() || v.Name() != s.Name() {
		t.Fatalf("verifier %s+%08x, signer %s+%08x", v.Name(), v.KeyHash(), s.Name(), s.KeyHash())
	}
	// A checkpoint cosigned with the signer verifies with the verifier
	// derived from the bundle's key, and with no other key.
	msg := torchwood.Checkpoint{Origin: "log.example", Tree: tlog.Tree{N: 5, Hash: tlog.Hash{1, 2, 3}}}.String()
	signed, err := note.Sign(&note.Note{Text: msg}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
		t.Fatalf("cosignature does not verify: %v", err)
	}
	other, _ := GenerateEditorKey("bob", true)
	ov, err := CosignatureVerifier(other.Public.Cosign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(ov)); err == nil {
		t.Fatal("cosignature verified with bob's key")
	}
	// The cosignature is not an Ed25519 signed-note signature by the same key.
	ev, err := note.NewVerifier(k.Public.Cosign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(ev)); err == nil {
		t.Fatal("a cosignature verified as a plain note signature")
	}
	for _, bad := range []string{"", "alice.cosign", strings.Replace(k.Public.Cosign, "+", "+0", 1), k.Public.Sign + "x"} {
		if _, err := CosignatureVerifier(bad); err == nil {
			t.Errorf("CosignatureVerifier(%q) accepted", bad)
		}
	}
}
