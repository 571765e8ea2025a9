package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func newReply(mailbox [32]byte, size int) *Reply {
	r := &Reply{Mailbox: mailbox, Day: "2026-03-14", Ciphertext: make([]byte, size)}
	rand.Read(r.ID[:])
	rand.Read(r.Ciphertext)
	return r
}

func TestPutReplyCaps(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{Logger: testLogger(t)})
	a, b := [32]byte{1}, [32]byte{2}
	// A mailbox cap of 3 frames.
	for i := range 3 {
		if err := s.PutReply(ctx, newReply(a, 4096), 3*4096, 10); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
	}
	var full *MailboxFullError
	if err := s.PutReply(ctx, newReply(a, 4096), 3*4096, 10); !errors.As(err, &full) || full.Held != 3*4096 || full.Max != 3*4096 {
		t.Fatalf("fourth reply = %v, want *MailboxFullError{12288, 12288}", err)
	}
	// Another mailbox is not held back by a full one.
	if err := s.PutReply(ctx, newReply(b, 8192), 3*4096, 10); err != nil {
		t.Fatal(err)
	}
	// The store's cap.
	if err := s.PutReply(ctx, newReply([32]byte{3}, 4096), 3*4096, 4); !errors.Is(err, ErrRepliesFull) {
		t.Fatalf("reply over the store's cap = %v, want ErrRepliesFull", err)
	}
	r := newReply([32]byte{4}, 4096)
	if err := s.PutReply(ctx, r, 3*4096, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.PutReply(ctx, r, 3*4096, 10); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same id again = %v, want ErrDuplicate", err)
	}
	if n, err := s.CountReplies(ctx); err != nil || n != 5 {
		t.Fatalf("CountReplies = %d, %v, want 5", n, err)
	}
	// The schema refuses what is not a reply's size or a day.
	for _, bad := range []*Reply{newReply(a, 4095), newReply(a, 4097), newReply(a, 36864), newReply(a, 0)} {
		if err := s.PutReply(ctx, bad, 1<<20, 100); err == nil {
			t.Errorf("a reply of %d bytes was stored", len(bad.Ciphertext))
		}
	}
	bad := newReply(a, 4096)
	bad.Day = "2026-03-14T12:00:00Z"
	if err := s.PutReply(ctx, bad, 1<<20, 100); err == nil {
		t.Error("a reply with a time for a day was stored")
	}
}

// Every reply is in exactly one bucket of each length, the one its
// mailbox id starts with.
func TestReplyBucket(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{Logger: testLogger(t)})
	var stored []*Reply
	for _, first := range []byte{0x00, 0x07, 0x08, 0x7f, 0x80, 0x81, 0xf7, 0xf8, 0xff} {
		var mb [32]byte
		rand.Read(mb[:])
		mb[0] = first
		r := newReply(mb, 4096)
		if err := s.PutReply(ctx, r, 1<<20, 100); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, r)
	}
	for bits := 0; bits <= 8; bits++ {
		seen := map[[16]byte]int{}
		for p := 0; p < 1<<bits; p++ {
			got, err := s.ReplyBucket(ctx, bits, byte(p), 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got {
				if bits > 0 && int(r.Mailbox[0]>>(8-bits)) != p {
					t.Errorf("bucket %d/%d holds mailbox %x…", p, bits, r.Mailbox[:1])
				}
				seen[r.ID]++
			}
		}
		for _, r := range stored {
			if seen[r.ID] != 1 {
				t.Errorf("%d bits: reply of mailbox %x… is in %d buckets", bits, r.Mailbox[:1], seen[r.ID])
			}
		}
	}
	if got, _ := s.ReplyBucket(ctx, 0, 0, 3); len(got) != 3 {
		t.Errorf("limit 3 gave %d replies", len(got))
	}
	got, _ := s.ReplyBucket(ctx, 8, 0xff, 10)
	if len(got) != 1 || !bytes.Equal(got[0].Ciphertext, stored[len(stored)-1].Ciphertext) {
		t.Errorf("bucket ff/8 = %d replies", len(got))
	}
	for _, c := range []struct {
		bits   int
		prefix byte
		limit  int
	}{{-1, 0, 1}, {9, 0, 1}, {1, 2, 1}, {5, 32, 1}, {0, 1, 1}, {3, 0, 0}} {
		if _, err := s.ReplyBucket(ctx, c.bits, c.prefix, c.limit); err == nil {
			t.Errorf("ReplyBucket(%d, %d, %d): no error", c.bits, c.prefix, c.limit)
		}
	}
}

// A deleted or expired reply leaves no copy of its ciphertext in the
// database file or its WAL (secure_delete, then a checkpoint).
func TestDeleteRepliesLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{Logger: testLogger(t)})
	read, gone, old := newReply([32]byte{1}, 8192), newReply([32]byte{1}, 4096), newReply([32]byte{2}, 4096)
	old.Day = "2025-12-01"
	for _, r := range []*Reply{read, gone, old} {
		if err := s.PutReply(ctx, r, 1<<20, 100); err != nil {
			t.Fatal(err)
		}
	}
	if mb, err := s.ReplyMailbox(ctx, read.ID); err != nil || mb != read.Mailbox {
		t.Fatalf("ReplyMailbox = %x, %v", mb, err)
	}
	if n, err := s.DeleteReplies(ctx, [][16]byte{read.ID, {9}}); err != nil || n != 1 {
		t.Fatalf("DeleteReplies = %d, %v, want 1", n, err)
	}
	if _, err := s.ReplyMailbox(ctx, read.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReplyMailbox after delete = %v, want ErrNotFound", err)
	}
	if n, err := s.DeleteRepliesBefore(ctx, "2026-01-01"); err != nil || n != 1 {
		t.Fatalf("DeleteRepliesBefore = %d, %v, want 1", n, err)
	}
	if n, _ := s.CountReplies(ctx); n != 1 {
		t.Fatalf("%d replies left, want 1", n)
	}
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, r := range []*Reply{read, old} {
			for i := 0; i+64 <= len(r.Ciphertext); i += 1024 {
				if bytes.Contains(b, r.Ciphertext[i:i+64]) {
					t.Fatalf("%s still holds bytes of a deleted reply", filepath.Base(f))
				}
			}
		}
	}
	if _, err := s.DeleteReplies(ctx, nil); err == nil {
		t.Error("DeleteReplies(nil): no error")
	}
	if _, err := s.DeleteRepliesBefore(ctx, "yesterday"); err == nil {
		t.Error("DeleteRepliesBefore(yesterday): no error")
	}
}
