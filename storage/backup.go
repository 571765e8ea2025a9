package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
)

// BackupCounts is what a backup holds.
type BackupCounts struct {
	// Tips is the number of tips, LogSize the number of log entries, and
	// Uploads the number of unfinished uploads.
	Tips, LogSize, Uploads int64
}

// Backup writes a consistent copy of the database at dbPath to out while
// a server may be writing it (SQLite's VACUUM INTO: one read transaction,
// so writers carry on, and no page a deletion freed is copied), syncs it
// to disk, checks it (PRAGMA integrity_check) and returns what it holds.
// out must not exist; it is created with mode 0600, and removed if the
// backup fails. The copy holds what was committed when the backup began.
func Backup(ctx context.Context, dbPath, out string) (*BackupCounts, error) {
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("storage: backup: %w", err)
	}
	// VACUUM INTO takes an empty file: creating it first fixes its mode
	// and refuses to overwrite anything.
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: backup: %w", err)
	}
	f.Close()
	counts, err := backup(ctx, dbPath, out)
	if err != nil {
		os.Remove(out)
		return nil, fmt.Errorf("storage: backup: %w", err)
	}
	return counts, nil
}

func backup(ctx context.Context, dbPath, out string) (*BackupCounts, error) {
	params := url.Values{}
	params.Set("_busy_timeout", "10000")
	src, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: dbPath}).EscapedPath()+"?"+params.Encode())
	if err != nil {
		return nil, err
	}
	defer src.Close()
	src.SetMaxOpenConns(1)
	var mode string
	if err := src.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("open %s: %w", dbPath, err)
	}
	if mode != "wal" {
		return nil, fmt.Errorf("%s is not a fieldtip database (journal mode %q, want wal)", dbPath, mode)
	}
	if _, err := src.ExecContext(ctx, "VACUUM INTO ?", out); err != nil {
		return nil, fmt.Errorf("vacuum into %s: %w", out, err)
	}
	// SQLite does not sync what VACUUM INTO wrote.
	if err := syncFile(out); err != nil {
		return nil, err
	}
	if err := syncFile(filepath.Dir(out)); err != nil {
		return nil, err
	}
	dst, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: out}).EscapedPath()+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	var check string
	if err := dst.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil {
		return nil, fmt.Errorf("check %s: %w", out, err)
	}
	if check != "ok" {
		return nil, fmt.Errorf("check %s: %s", out, check)
	}
	c := &BackupCounts{}
	for _, q := range []struct {
		dst *int64
		sql string
	}{{&c.Tips, "SELECT COUNT(*) FROM tips"}, {&c.LogSize, "SELECT COUNT(*) FROM log_entries"}, {&c.Uploads, "SELECT COUNT(*) FROM uploads"}} {
		if err := dst.QueryRowContext(ctx, q.sql).Scan(q.dst); err != nil {
			return nil, fmt.Errorf("count in %s: %w", out, err)
		}
	}
	return c, nil
}

// syncFile fsyncs the file or directory at path.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
