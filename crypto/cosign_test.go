package crypto

import (
	"errors"
	"strings"
	"testing"
	"time"

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

// Cosignatures carry the start of the day, not the second, and still
// verify as C2SP tlog-cosignature/v1 with torchwood's verifier.
func TestCosignatureDayPrecision(t *testing.T) {
	k, err := GenerateEditorKey("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.CosignatureSigner()
	if err != nil {
		t.Fatal(err)
	}
	s.testOnlyNow = func() time.Time { return time.Date(2026, 3, 14, 23, 59, 59, 999, time.FixedZone("x", -3600)) }
	msg := torchwood.Checkpoint{Origin: "log.example", Tree: tlog.Tree{N: 5, Hash: tlog.Hash{1, 2, 3}}}.String()
	signed, err := note.Sign(&note.Note{Text: msg}, s)
	if err != nil {
		t.Fatal(err)
	}
	v, err := CosignatureVerifier(k.Public.Cosign)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		t.Fatalf("day-precision cosignature does not verify: %v", err)
	}
	// 23:59:59 an hour west of UTC is the 15th in UTC.
	if day, err := CosignatureDay(n.Sigs[0]); err != nil || day != "2026-03-15" {
		t.Errorf("CosignatureDay = %q, %v; want 2026-03-15", day, err)
	}
	ts, err := torchwood.CosignatureTimestamp(n.Sigs[0])
	if err != nil || ts != time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("timestamp %d, %v", ts, err)
	}
	if _, err := note.Sign(&note.Note{Text: "not a checkpoint\n"}, s); err == nil {
		t.Error("signed something that is not a checkpoint")
	}
	// torchwood's own signer writes the second: refused.
	tw, err := torchwood.NewCosignatureSigner(s.Name(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	fine, err := note.Sign(&note.Note{Text: msg}, tw)
	if err != nil {
		t.Fatal(err)
	}
	fn, err := note.Open(fine, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	if ts, _ := torchwood.CosignatureTimestamp(fn.Sigs[0]); ts%86400 != 0 {
		if _, err := CosignatureDay(fn.Sigs[0]); !errors.Is(err, ErrCosignatureTime) {
			t.Errorf("CosignatureDay of a second-precision cosignature = %v, want ErrCosignatureTime", err)
		}
	}
}
