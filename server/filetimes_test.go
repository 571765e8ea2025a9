//go:build linux

package server

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// reset sets the times of the server's files, and of the data directory,
// to the start of the UTC day, touches only those that moved off it, and
// leaves out files that do not exist.
func TestFileTimesReset(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{dbFile, dbFile + "-wal", CheckpointFile, LogKeyFile, "not-ours"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("KST", 9*3600))
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	var errs []error
	ft := newFileTimes(dir, func() time.Time { return now }, func(_ string, err error) { errs = append(errs, err) })
	ft.reset(false)
	for _, name := range []string{dbFile, dbFile + "-wal", CheckpointFile, LogKeyFile, "."} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(day) || !accessTime(fi).Equal(day) {
			t.Errorf("%s: mtime %v, atime %v; want %v", name, fi.ModTime().UTC(), accessTime(fi).UTC(), day)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "not-ours")); fi.ModTime().Equal(day) {
		t.Errorf("a file that is not the server's was touched")
	}
	if _, err := os.Stat(filepath.Join(dir, dbFile+"-shm")); !os.IsNotExist(err) {
		t.Errorf("reset created the missing shm: %v", err)
	}
	if len(errs) != 0 {
		t.Errorf("reset reported %v", errs)
	}

	// Nothing moved: no file is touched (its ctime stays).
	before := ctimes(t, ft.paths)
	ft.reset(false)
	if after := ctimes(t, ft.paths); after != before {
		t.Errorf("reset touched files whose times had not moved: ctimes %v, then %v", before, after)
	}
	// The WAL moved: it alone is reset.
	wal := filepath.Join(dir, dbFile+"-wal")
	if err := os.WriteFile(wal, []byte("xy"), 0o600); err != nil {
		t.Fatal(err)
	}
	before = ctimes(t, ft.paths)
	ft.reset(false)
	after := ctimes(t, ft.paths)
	for i, p := range ft.paths {
		// (The WAL's own ctime may or may not show its reset: ctime ticks
		// coarsely.)
		if p != wal && after[i] != before[i] {
			t.Errorf("%s: touched, though only the WAL moved", filepath.Base(p))
		}
	}
	if fi, _ := os.Stat(wal); !fi.ModTime().Equal(day) {
		t.Errorf("the WAL's mtime is %v after a write and a reset, want %v", fi.ModTime().UTC(), day)
	}
}

// ctimes returns the change times of paths (zero for a missing one).
func ctimes(t *testing.T, paths []string) [8]syscall.Timespec {
	t.Helper()
	var out [8]syscall.Timespec
	for i, p := range paths {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err == nil {
			out[i] = st.Ctim
		}
	}
	return out
}
