package storage

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
)

// A tip handed over is stored per tip and editor, replaced by a second
// handover to the same editor, served only to that editor, hidden while
// the tip's deletion waits, and deleted with the tip, in the same
// transaction, its bytes gone from the file (secure_delete).
func TestTipHandover(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{})
	tip, other := newTip(1, 100), newTip(2, 100)
	for _, x := range []*Tip{tip, other} {
		if err := s.PutTip(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutTipHandover(ctx, newTip(3, 1).ID, "carol", []byte("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutTipHandover of a tip not stored = %v, want ErrNotFound", err)
	}
	for _, c := range []struct {
		editor string
		ct     []byte
	}{{"", []byte("x")}, {"carol", nil}, {"c234567890123456789012345678901234", []byte("x")}} {
		if err := s.PutTipHandover(ctx, tip.ID, c.editor, c.ct); err == nil {
			t.Errorf("PutTipHandover(%q, %d bytes) succeeded", c.editor, len(c.ct))
		}
	}
	first := bytes.Repeat([]byte("handed-over-to-carol "), 20)
	if err := s.PutTipHandover(ctx, tip.ID, "carol", first); err != nil {
		t.Fatal(err)
	}
	second := []byte("handed over again, to carol's new key")
	if err := s.PutTipHandover(ctx, tip.ID, "carol", second); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTipHandover(ctx, tip.ID, "dave", []byte("for dave")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TipHandover(ctx, tip.ID, "carol"); err != nil || !bytes.Equal(got, second) {
		t.Errorf("TipHandover(carol) = %q, %v, want %q", got, err, second)
	}
	for _, c := range []struct {
		id     [16]byte
		editor string
	}{{tip.ID, "bob"}, {other.ID, "carol"}, {newTip(3, 1).ID, "carol"}} {
		if got, err := s.TipHandover(ctx, c.id, c.editor); !errors.Is(err, ErrNotFound) {
			t.Errorf("TipHandover(%x, %s) = %q, %v, want ErrNotFound", c.id, c.editor, got, err)
		}
	}
	if err := s.MarkTipDeleted(ctx, tip.ID, "2026-11-28"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TipHandover(ctx, tip.ID, "carol"); !errors.Is(err, ErrNotFound) {
		t.Errorf("TipHandover of a tip waiting for its deletion = %v, want ErrNotFound", err)
	}
	if err := s.PutTipHandover(ctx, tip.ID, "carol", first); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutTipHandover of a tip waiting for its deletion = %v, want ErrNotFound", err)
	}
	if err := s.DeleteTip(ctx, tip.ID); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rawOpen(t, path).QueryRow(`SELECT count(*) FROM tip_handovers`).Scan(&n); err != nil || n != 0 {
		t.Errorf("after the tip's deletion, %d handovers (%v), want 0", n, err)
	}
	// DeleteTip checkpointed and truncated the WAL.
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("handed-over-to-carol")) || bytes.Contains(b, second) {
			t.Errorf("%s still holds a deleted tip's handover", f)
		}
	}
}
