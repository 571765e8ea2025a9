package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"fieldtip/crypto"
	"fieldtip/storage"
)

// `fieldtipd uploads` shows an operator what the unfinished uploads hold
// and clears the stalled ones, with the server stopped or running: it
// reads (and, with --drop-stalled, writes) the database beside the server,
// whose WAL mode allows it. It shows counts only, by state and by age:
// nothing about any one upload, nothing that could single out a source.
//
// The database holds no time finer than a day (DESIGN.md §2), so this is
// day-precision: an upload's age is whole days since its progress day
// (the day it opened or last had frames acknowledged), and it is stalled
// when it had no byte acknowledged (whatever its age: an upload's first
// frames are stored with its open, so a stored empty upload is one whose
// source went away after its first message), or when its lifetime by
// bytes acknowledged (slots.go) has run out since the end of its progress
// day. The running server sweeps stalled uploads to the minute, from its
// memory; this is the operator's view and hand.

// UploadStates are the states `fieldtipd uploads` counts, in order.
var UploadStates = []string{"empty", "partial", "complete"}

// UploadAges are its age buckets: days since the last progress.
var UploadAges = []string{"today", "1 day", "2-6 days", "7+ days"}

// UploadsReport counts the unfinished uploads of a data directory.
type UploadsReport struct {
	// Day is the day it was made, YYYY-MM-DD, UTC.
	Day string
	// Count[state][age] counts uploads by UploadStates and UploadAges;
	// Bytes[state] sums their bytes acknowledged.
	Count [3][4]int64
	Bytes [3]int64
	// Stalled counts the stalled ones; Dropped those deleted, if
	// DropStalled was asked.
	Stalled, Dropped int64
	DropStalled      bool
}

// UploadsOptions tune Uploads. Zero fields take the server's defaults.
type UploadsOptions struct {
	// StallTimeout and UploadExpiry are the server's (Config): they set
	// how long an upload lives after its last progress.
	StallTimeout, UploadExpiry time.Duration
	// DropStalled deletes the stalled uploads.
	DropStalled bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Uploads counts the unfinished uploads in the database of dataDir, and
// with opts.DropStalled deletes the stalled ones (their ids stay spent, so
// their proofs of work cannot be used again). The database must exist.
func Uploads(ctx context.Context, dataDir string, opts UploadsOptions) (*UploadsReport, error) {
	cfg := Config{StallTimeout: opts.StallTimeout, UploadExpiry: opts.UploadExpiry}
	d := DefaultConfig()
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = d.StallTimeout
	}
	if cfg.UploadExpiry <= 0 {
		cfg.UploadExpiry = d.UploadExpiry
	}
	if cfg.StallTimeout > cfg.UploadExpiry {
		return nil, fmt.Errorf("server: uploads: stall timeout %s is more than the upload expiry %s", cfg.StallTimeout, cfg.UploadExpiry)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	path := filepath.Join(dataDir, "fieldtip.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("server: no database in %s (is --data the server's?)", dataDir)
	}
	store, err := storage.Open(path, storage.Options{})
	if err != nil {
		return nil, fmt.Errorf("server: uploads: %w", err)
	}
	defer store.Close()
	ps, err := store.ListUploadProgress(ctx)
	if err != nil {
		return nil, fmt.Errorf("server: uploads: %w", err)
	}
	s := &Server{cfg: cfg}
	now := opts.Now().UTC()
	today, err := time.Parse(time.DateOnly, crypto.Day(now))
	if err != nil {
		return nil, err
	}
	r := &UploadsReport{Day: crypto.Day(now), DropStalled: opts.DropStalled}
	var stalled [][16]byte
	for _, p := range ps {
		day, err := time.Parse(time.DateOnly, p.ProgressDay)
		if err != nil {
			return nil, fmt.Errorf("server: uploads: progress day %q: %w", p.ProgressDay, err)
		}
		state := 1
		switch p.Received {
		case 0:
			state = 0
		case p.Length:
			state = 2
		}
		age := 0
		switch days := int(today.Sub(day) / (24 * time.Hour)); {
		case days >= 7:
			age = 3
		case days >= 2:
			age = 2
		case days == 1:
			age = 1
		}
		r.Count[state][age]++
		r.Bytes[state] += p.Received
		// The upload progressed at the latest at the end of its day.
		if p.Received == 0 || !now.Before(day.Add(24*time.Hour+s.uploadLifetime(p.Received))) {
			r.Stalled++
			stalled = append(stalled, p.ID)
		}
	}
	if opts.DropStalled && len(stalled) > 0 {
		if r.Dropped, err = store.DeleteUploads(ctx, stalled); err != nil {
			return r, fmt.Errorf("server: uploads: drop stalled: %w", err)
		}
	}
	return r, nil
}

// Print writes the report as a table, one state a line.
func (r *UploadsReport) Print(w io.Writer) {
	fmt.Fprintf(w, "unfinished uploads on %s, by days since their last progress\n", r.Day)
	fmt.Fprintf(w, "%-9s", "state")
	for _, a := range UploadAges {
		fmt.Fprintf(w, " %9s", a)
	}
	fmt.Fprintf(w, " %9s %12s\n", "total", "bytes")
	var all [4]int64
	var allBytes int64
	for i, st := range UploadStates {
		fmt.Fprintf(w, "%-9s", st)
		var total int64
		for a := range UploadAges {
			fmt.Fprintf(w, " %9d", r.Count[i][a])
			total += r.Count[i][a]
			all[a] += r.Count[i][a]
		}
		allBytes += r.Bytes[i]
		fmt.Fprintf(w, " %9d %12d\n", total, r.Bytes[i])
	}
	fmt.Fprintf(w, "%-9s", "total")
	var total int64
	for a := range UploadAges {
		fmt.Fprintf(w, " %9d", all[a])
		total += all[a]
	}
	fmt.Fprintf(w, " %9d %12d\n", total, allBytes)
	fmt.Fprintf(w, "stalled: %d\n", r.Stalled)
	if r.DropStalled {
		fmt.Fprintf(w, "dropped: %d\n", r.Dropped)
	}
}
