//go:build linux

package e2e

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Issue 11, DESIGN.md §2: after a run (a tip sent, pulled and read, an
// event logged, the server stopped), no file in the data directory, nor
// the directory, has an access or modification time other than the start
// of a UTC day. (Change times cannot be set: SECURITY.md says what they
// show.)
func TestFileTimesDayPrecision(t *testing.T) {
	d := newDesk(t)
	srv := d.start(t)
	run(t, d.dir, "", 0, "fieldtip", "init", "--config", "phone", "--server", srv.URL, "--newsroom", d.newsroom)
	run(t, d.dir, "", 0, "fieldtip", "compose", "--config", "phone", "--codename-file", "codename", "--text", "what time did this arrive?")
	out, _ := run(t, d.dir, "", 0, "fieldtip", "send", "--config", "phone", "--codename-file", "codename")
	id := tipID(t, out)
	// While the server runs, the write batch that stored the tip is
	// followed by the reset of its WAL and shm (not only the minute's).
	deadline := time.Now().Add(30 * time.Second)
	for {
		moved := offMidnight(t, d.data, false)
		if len(moved) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the tip was stored, these times are not the start of the day: %v", moved)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.readTip(t, srv.URL, id)
	run(t, d.dir, "", 0, "newsdesk", "note", id, "--server", srv.URL, "--key", "alice.key", "--passphrase-file", d.pass,
		"--cache", filepath.Join(d.dir, "alice-cache"), "--text", "arrived today")
	srv.stopClean(t)

	if moved := offMidnight(t, d.data, true); len(moved) != 0 {
		t.Errorf("after the run, these times are not the start of a day: %v", moved)
	}
}

// offMidnight returns the files in dir (and dir) whose modification time,
// and with atime their access time, is not the start of a UTC day.
func offMidnight(t *testing.T, dir string, atime bool) []string {
	t.Helper()
	var out []string
	n := 0
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		n++
		times := map[string]syscall.Timespec{"mtime": st.Mtim}
		if atime {
			times["atime"] = st.Atim
		}
		for what, ts := range times {
			at := time.Unix(ts.Unix()).UTC()
			if !at.Equal(at.Truncate(24 * time.Hour)) {
				out = append(out, fmt.Sprintf("%s %s %s", filepath.Base(path), what, at.Format(time.RFC3339Nano)))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The directory, the database, the checkpoint and the log key (the
	// WAL and shm too while the server runs).
	if n < 4 {
		t.Fatalf("the data directory holds %d entries, want at least 4", n)
	}
	return out
}
