package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldtip/storage"
)

// TestUploadsReport fills a store with unfinished uploads of each state and
// age and checks what `fieldtipd uploads` counts and drops, with the store
// open (as a running server's is) and with it closed.
func TestUploadsReport(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.Open(filepath.Join(dir, "fieldtip.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	now := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	day := func(daysAgo int) string { return now.AddDate(0, 0, -daysAgo).Format(time.DateOnly) }
	add := func(frames, received int, progress string) {
		t.Helper()
		u := &storage.Upload{BundleVersion: 1, Length: int64(frames * fs16), FrameSize: fs16,
			Expires: "2027-01-01", ProgressDay: progress}
		rand.Read(u.ID[:])
		w := &storage.UploadWrite{ID: u.ID, Open: u, Day: progress}
		for range received {
			w.Frames = append(w.Frames, make([]byte, fs16))
		}
		if _, err := store.WriteUpload(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	// Stalled: every empty one; a one-frame one (lifetime about 1.75
	// days) from two days ago; a 4-frame one (a week) from 8 days ago.
	add(3, 0, day(0))
	add(3, 0, day(3))
	add(3, 1, day(0)) // partial, today: kept
	add(3, 1, day(1)) // partial, yesterday: kept (1.75 days from the end of its day)
	add(3, 1, day(3)) // stalled
	add(8, 4, day(6)) // partial, 64 KiB: a week, kept
	add(8, 4, day(8)) // stalled
	add(2, 2, day(0)) // complete, today: kept
	opts := UploadsOptions{Now: func() time.Time { return now }}
	r, err := Uploads(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := [3][4]int64{
		{1, 0, 1, 0},
		{1, 1, 2, 1},
		{1, 0, 0, 0},
	}
	if r.Count != want || r.Stalled != 4 || r.Dropped != 0 || r.Day != "2026-03-20" {
		t.Errorf("Uploads() = %+v, want counts %v, 4 stalled, none dropped", r, want)
	}
	if r.Bytes != [3]int64{0, (1 + 1 + 1 + 4 + 4) * fs16, 2 * fs16} {
		t.Errorf("Uploads() bytes %v", r.Bytes)
	}
	var out bytes.Buffer
	r.Print(&out)
	lines := map[string]bool{}
	for line := range strings.Lines(out.String()) {
		lines[strings.Join(strings.Fields(line), " ")] = true
	}
	for _, line := range []string{
		"unfinished uploads on 2026-03-20, by days since their last progress",
		"state today 1 day 2-6 days 7+ days total bytes",
		"empty 1 0 1 0 2 0",
		"partial 1 1 2 1 5 180224",
		"complete 1 0 0 0 1 32768",
		"total 3 1 3 1 8 212992",
		"stalled: 4",
	} {
		if !lines[line] {
			t.Errorf("report lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "dropped") {
		t.Errorf("report without --drop-stalled says dropped:\n%s", out.String())
	}

	// --drop-stalled, beside the open store (a running server's).
	opts.DropStalled = true
	if r, err = Uploads(ctx, dir, opts); err != nil || r.Dropped != 4 {
		t.Fatalf("Uploads(drop) = %+v, %v, want 4 dropped", r, err)
	}
	if n, _, _ := store.Staged(ctx); n != 4 {
		t.Errorf("%d uploads left, want 4", n)
	}
	store.Close()
	opts.DropStalled = false
	if r, err = Uploads(ctx, dir, opts); err != nil || r.Stalled != 0 || r.Count[1][0]+r.Count[1][1]+r.Count[1][2]+r.Count[2][0] != 4 {
		t.Errorf("Uploads() after the drop, store closed = %+v, %v, want the 4 kept", r, err)
	}
	if _, err := Uploads(ctx, t.TempDir(), opts); err == nil {
		t.Errorf("Uploads(a directory without a database) = nil error")
	}
}

// TestDropStalledWhileRunning: `fieldtipd uploads --drop-stalled` run
// beside a running server deletes the stalled uploads from the database;
// the server's next purge brings its slots and staging count in line, so
// the dropped uploads hold no slot, and a source still sends.
func TestDropStalledWhileRunning(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.MaxUnfinishedUploads = 4 }})
	for range 3 {
		ts.openStalled(t, 3, 0)
	}
	ts.openStalled(t, 3, 1)
	ts.waitStalled(t, 4)
	r, err := Uploads(t.Context(), ts.dir, UploadsOptions{DropStalled: true, Now: ts.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if r.Dropped != 3 {
		t.Fatalf("dropped %d, want the 3 empty uploads (the one with a frame is not stalled yet)", r.Dropped)
	}
	ts.s.Purge(t.Context())
	if n := ts.s.slots.count(); n != 1 {
		t.Errorf("the server holds %d slots after its purge, want 1", n)
	}
	if got := ts.s.staging.Load(); got != fs16 {
		t.Errorf("staging %d after the purge, want the one frame kept (%d)", got, fs16)
	}
	ts.send(t, "sent after the stalled uploads were dropped")
	ts.intact(t)
}
