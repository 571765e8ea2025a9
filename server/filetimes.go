package server

// Day-precision file times (DESIGN.md §2; issue 11). A file's times would
// tell a seized disk when the server last wrote it: the WAL's mtime, to the
// nanosecond, when the last tip arrived. So after each write batch of the
// store (storage.Options.AfterWrite), after each pin of the checkpoint and
// once a minute, the server sets the access and modification times of its
// files, and of the data directory, to the start of the current UTC day,
// for each file whose times moved off it: a stat per file per batch, a
// utimensat only for those that moved.
//
// What remains (SECURITY.md, "What a seizure yields"): a file's change
// time (ctime) cannot be set by any process (POSIX sets it to now on every
// change of the inode, the reset of its times included), so the ctime of
// the WAL, the shm and the data directory tells when the server last wrote
// or reset them. The minute's reset is done whether or not anything moved,
// so that a ctime older than a minute is the last reset's, not the last
// write's: a disk seized more than a minute after the last write shows
// only that the server ran. On a filesystem mounted with atime updates
// (relatime, Linux's default), a read after a reset moves a file's access
// time to that read, until the next reset; mount the data directory with
// noatime. TestFileTimesDayPrecision (internal/e2e) checks the data
// directory after a run.

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// fileTimesInterval is how often the times are reset whatever moved.
const fileTimesInterval = time.Minute

// fileTimes resets the times of the server's files in its data directory.
type fileTimes struct {
	paths []string
	now   func() time.Time
	// onError is told of a failure, once per path until it succeeds.
	onError func(path string, err error)

	mu     sync.Mutex
	failed map[string]bool
}

// newFileTimes covers dataDir itself and the server's files in it: the
// database, its WAL and shm, the pinned checkpoint and the log key.
func newFileTimes(dataDir string, now func() time.Time, onError func(string, error)) *fileTimes {
	db := filepath.Join(dataDir, dbFile)
	return &fileTimes{
		paths:   []string{db, db + "-wal", db + "-shm", filepath.Join(dataDir, CheckpointFile), filepath.Join(dataDir, LogKeyFile), dataDir},
		now:     now,
		onError: onError,
		failed:  map[string]bool{},
	}
}

// startOfDay is the start of t's UTC day.
func startOfDay(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// reset sets the times of every file whose times are not the start of
// today to it; with all, every file's (so that its ctime is now's).
func (ft *fileTimes) reset(all bool) {
	if ft == nil {
		return
	}
	day := startOfDay(ft.now())
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, p := range ft.paths {
		if !all {
			fi, err := os.Stat(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err == nil && fi.ModTime().Equal(day) && accessTime(fi).Equal(day) {
				continue
			}
		}
		err := os.Chtimes(p, day, day)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil && !ft.failed[p] && ft.onError != nil {
			ft.onError(p, err)
		}
		ft.failed[p] = err != nil
	}
}
