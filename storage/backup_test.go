package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// A backup taken while tips are being written holds every tip committed
// before it began, opens as a store, and holds nothing half-written; the
// writes carry on during it.
func TestBackupUnderWrites(t *testing.T) {
	s, path := openTest(t, Options{})
	ctx := context.Background()
	for i := range 50 {
		if err := s.PutTip(ctx, newTip(uint64(i), 1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	var written atomic.Int64
	written.Store(50)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := uint64(50); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.PutTip(ctx, newTip(i, 16384)); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	})
	before := written.Load()
	out := filepath.Join(t.TempDir(), "backup.db")
	c, err := Backup(ctx, path, out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup() = %v", err)
	}
	if c.Tips < before || c.Tips > written.Load() {
		t.Errorf("backup holds %d tips; %d were committed before it began, %d in all", c.Tips, before, written.Load())
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	b := openAt(t, out, Options{})
	n, err := b.CountTips(ctx)
	if err != nil || n != c.Tips {
		t.Fatalf("the backup opened as a store holds %d tips (%v), Backup said %d", n, err, c.Tips)
	}
	for i := range uint64(n) {
		size := 16384
		if i < 50 {
			size = 1000 + int(i)
		}
		want := newTip(i, size)
		if ct, err := b.TipCiphertext(ctx, want.ID); err != nil || !bytes.Equal(ct, want.Ciphertext) {
			t.Errorf("tip %d in the backup: %v, or its ciphertext differs", i, err)
		}
	}
}

func TestBackupRefusals(t *testing.T) {
	_, path := openTest(t, Options{})
	ctx := context.Background()
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists.db")
	if err := os.WriteFile(exists, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(ctx, path, exists); err == nil {
		t.Errorf("Backup over an existing file succeeded")
	}
	if b, _ := os.ReadFile(exists); string(b) != "keep me" {
		t.Errorf("Backup changed the existing file: %q", b)
	}
	if _, err := Backup(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "out1.db")); err == nil {
		t.Errorf("Backup of a missing database succeeded")
	}
	notDB := filepath.Join(dir, "not.db")
	os.WriteFile(notDB, bytes.Repeat([]byte("not sqlite"), 100), 0o600)
	out := filepath.Join(dir, "out2.db")
	if _, err := Backup(ctx, notDB, out); err == nil {
		t.Errorf("Backup of a file that is not a database succeeded")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed backup left %s: %v", out, err)
	}
}

// asFull marks SQLite's failures for lack of room ErrFull, and nothing
// else.
func TestAsFull(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		full bool
	}{
		{"nil", nil, false},
		{"full", sqlite3.Error{Code: sqlite3.ErrFull}, true},
		{"write refused, no space", sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: syscall.ENOSPC}, true},
		{"write refused, file size limit", fmt.Errorf("put tip: %w", sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: syscall.EFBIG}), true},
		{"write failed otherwise", sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: syscall.EIO}, false},
		{"fsync failed", sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrFsync}, false},
		{"busy", sqlite3.Error{Code: sqlite3.ErrBusy}, false},
		{"not sqlite", errors.New("x"), false},
	} {
		got := asFull(tt.err)
		if errors.Is(got, ErrFull) != tt.full || !errors.Is(got, tt.err) {
			t.Errorf("asFull(%s) = %v; want ErrFull %t, wrapping the error", tt.name, got, tt.full)
		}
	}
}
