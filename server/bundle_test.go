package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/newsdesk"
	"fieldtip/protocol"
	"fieldtip/storage"

	"golang.org/x/mod/sumdb/note"
)

// publish posts a bundle with newsdesk and returns its typed refusal, or
// nil.
func publish(tb testing.TB, ts *testServer, signed []byte) *protocol.Error {
	tb.Helper()
	err := newsdesk.PublishBundle(context.Background(), ts.origin(), signed)
	if err == nil {
		return nil
	}
	var e *protocol.Error
	if !errors.As(err, &e) {
		tb.Fatalf("PublishBundle() = %v, want nil or a *protocol.Error", err)
	}
	return e
}

// resign signs the text of a signed note again with another key: a bundle
// that names this server's newsroom key but was signed by another.
func resign(tb testing.TB, signed []byte, k *crypto.SignerKey) []byte {
	tb.Helper()
	text, _, ok := strings.Cut(string(signed), "\n— ")
	if !ok {
		tb.Fatalf("no signature line in %q", signed)
	}
	msg, err := note.Sign(&note.Note{Text: text + "\n"}, k.Signer)
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// TestPublishBundle refuses every bundle that is not a newer, unexpired
// one of this newsroom naming this server's log key; puts a good one in
// force for GET /bundle and for uploads; and keeps it over a restart.
func TestPublishBundle(t *testing.T) {
	// No grace for the replaced bundle here: TestBundleGrace tests it.
	ts := newTestServer(t, serverOptions{editors: 2, config: func(c *Config) { c.BundleGrace = -1 }})
	ts.send(t, "sealed to version 1")
	v2 := ts.makeBundle(t, 2, nil)
	if e := publish(t, ts, v2.Signed()); e != nil {
		t.Fatalf("PublishBundle(v2) refused: %v", e)
	}

	other := newSignerKey(t, crypto.NewsroomKeyHeader, "other-newsroom")
	otherLog := newSignerKey(t, crypto.LogKeyHeader, "other-log")
	for _, tc := range []struct {
		name   string
		signed []byte
		code   protocol.Code
	}{
		{"lower_version", ts.makeBundle(t, 1, nil).Signed(), protocol.CodeStaleBundle},
		{"equal_version", ts.makeBundle(t, 2, func(b *crypto.Bundle) { b.Policy.Approvals = 1 }).Signed(), protocol.CodeStaleBundle},
		{"other_newsroom", ts.makeBundleBy(t, other, 3, nil).Signed(), protocol.CodeUnauthorized},
		{"names_ours_signed_by_other", resign(t, ts.makeBundle(t, 3, nil).Signed(), other), protocol.CodeUnauthorized},
		{"other_log_key", ts.makeBundle(t, 3, func(b *crypto.Bundle) { b.Log = otherLog.Verifier }).Signed(), protocol.CodeMalformed},
		{"expired", ts.makeBundle(t, 3, func(b *crypto.Bundle) {
			b.Expires = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		}).Signed(), protocol.CodeStaleBundle},
		{"not_a_bundle", []byte("fieldtip/bundle/v1\n"), protocol.CodeUnauthorized},
		{"empty", nil, protocol.CodeUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if e := publish(t, ts, tc.signed); !protocol.IsError(e, tc.code) {
				t.Errorf("PublishBundle() = %v, want code %s", e, tc.code)
			}
			if v := ts.s.Bundle().Version; v != 2 {
				t.Errorf("bundle in force is version %d after a refusal, want 2", v)
			}
		})
	}

	got, err := newsdesk.FetchBundle(context.Background(), ts.origin())
	if err != nil || !bytes.Equal(got, v2.Signed()) {
		t.Errorf("GET /bundle = %q, %v; want version 2", got, err)
	}
	// An upload sealed to the old bundle is stale now.
	c := ts.dial(t)
	c.text(ts.newUpload(t, 1, fs16, fs16))
	if e := c.refusal(); !protocol.IsError(e, protocol.CodeStaleBundle) {
		t.Errorf("upload sealed to version 1: %v, want code %s", e, protocol.CodeStaleBundle)
	}
	if res := ts.send(t, "sealed to version 2"); res.BundleVersion != 2 {
		t.Errorf("client sealed to version %d, want 2", res.BundleVersion)
	}
	ts.intact(t)

	// Restart over the same store: without a bundle file, and with the
	// old version 1 file, version 2 stays in force.
	ts.stop()
	for _, file := range []string{"", ts.cfg.BundleFile} {
		cfg := ts.cfg
		cfg.BundleFile = file
		s, err := New(context.Background(), cfg, ts.store, ts.logKey)
		if err != nil {
			t.Fatalf("New(BundleFile %q) = %v", file, err)
		}
		if v := s.Bundle().Version; v != 2 || !bytes.Equal(s.Bundle().Signed(), v2.Signed()) {
			t.Errorf("after restart (BundleFile %q) version %d is in force, want 2", file, v)
		}
	}
	s, err := New(context.Background(), Config{Listen: "127.0.0.1:0", DataDir: ts.dir}, ts.store, ts.logKey)
	if err != nil {
		t.Fatal(err)
	}
	origin := serve(t, s)
	if got, err := newsdesk.FetchBundle(context.Background(), origin); err != nil || !bytes.Equal(got, v2.Signed()) {
		t.Errorf("GET /bundle after restart = %q, %v; want version 2", got, err)
	}
}

// serve binds and serves s until the test ends; it returns the origin.
func serve(tb testing.TB, s *Server) string {
	tb.Helper()
	ls, err := s.Bind()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ls) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Serve() = %v", err)
		}
	})
	return s.Origin()
}

// TestNewBundleFile: New refuses a bundle file that names another log key
// or comes from another newsroom key than the one the store pinned, and
// changes nothing in the store when it does.
func TestNewBundleFile(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t, serverOptions{})
	ts.stop()
	otherLog := newSignerKey(t, crypto.LogKeyHeader, "other-log")
	other := newSignerKey(t, crypto.NewsroomKeyHeader, "other-newsroom")

	write := func(t *testing.T, b *crypto.Bundle) string {
		path := filepath.Join(t.TempDir(), "bundle.txt")
		if err := os.WriteFile(path, b.Signed(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	freshStore := func(t *testing.T) *storage.Store {
		st, err := storage.Open(filepath.Join(t.TempDir(), "fieldtip.db"), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) *storage.Store
		file  func(t *testing.T) string
	}{
		{"fresh_store_other_log_key", freshStore, func(t *testing.T) string {
			return write(t, ts.makeBundle(t, 1, func(b *crypto.Bundle) { b.Log = otherLog.Verifier }))
		}},
		{"fresh_store_no_bundle", freshStore, func(t *testing.T) string { return "" }},
		{"fresh_store_not_a_bundle", freshStore, func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "bundle.txt")
			if err := os.WriteFile(path, []byte("fieldtip/bundle/v1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}},
		{"pinned_store_other_log_key", func(*testing.T) *storage.Store { return ts.store }, func(t *testing.T) string {
			return write(t, ts.makeBundle(t, 5, func(b *crypto.Bundle) { b.Log = otherLog.Verifier }))
		}},
		{"pinned_store_other_newsroom", func(*testing.T) *storage.Store { return ts.store }, func(t *testing.T) string {
			return write(t, ts.makeBundleBy(t, other, 5, nil))
		}},
		{"pinned_store_other_newsroom_older", func(*testing.T) *storage.Store { return ts.store }, func(t *testing.T) string {
			return write(t, ts.makeBundleBy(t, other, 1, nil))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.store(t)
			before, beforeErr := st.LatestBundle(ctx)
			pin, pinErr := st.Setting(ctx, "newsroom")
			cfg := ts.cfg
			cfg.BundleFile = tc.file(t)
			if s, err := New(ctx, cfg, st, ts.logKey); err == nil {
				t.Fatalf("New() put version %d in force, want an error", s.Bundle().Version)
			}
			after, afterErr := st.LatestBundle(ctx)
			if !bytes.Equal(before, after) || !errors.Is(afterErr, beforeErr) {
				t.Errorf("stored bundle changed by a refused New")
			}
			if pin2, err := st.Setting(ctx, "newsroom"); pin2 != pin || !errors.Is(err, pinErr) {
				t.Errorf("pinned newsroom changed from %q to %q", pin, pin2)
			}
		})
	}
}

// TestPublishBundleBodyLimit: a body over the bundle limit is refused as
// too large without being parsed.
func TestPublishBundleBodyLimit(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	status, body := httpDo(t, http.MethodPost, ts.origin()+protocol.PathBundle, "", make([]byte, crypto.MaxBundleSize+1))
	if e := httpError(t, body); status != http.StatusRequestEntityTooLarge || !protocol.IsError(e, protocol.CodeTooLarge) {
		t.Errorf("oversized bundle: status %d, %v; want 413 %s", status, e, protocol.CodeTooLarge)
	}
}

// uploadTo uploads ct, sealed to bundle version, on a new connection and
// returns its checked receipt.
func (ts *testServer) uploadTo(tb testing.TB, version int64, ct []byte) *crypto.Receipt {
	tb.Helper()
	c := ts.dial(tb)
	c.sendUpload(version, ct, fs16)
	c.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
	r := ts.openReceipt(tb, c.readUpload(int64(len(ct)), fs16))
	c.hangUp()
	ts.checkStored(tb, r, ct)
	return r
}

// refusedTo sends the first message of an upload of ct sealed to bundle
// version on a new connection and returns the refusal.
func (ts *testServer) refusedTo(tb testing.TB, version int64, ct []byte) *protocol.Error {
	tb.Helper()
	c := ts.dial(tb)
	c.sendUpload(version, ct, fs16)
	return c.refusal()
}

// tipBundleVersion returns the bundle version a stored tip is listed with.
func (ts *testServer) tipBundleVersion(tb testing.TB, id [16]byte) int64 {
	tb.Helper()
	metas, err := ts.store.ListTips(context.Background(), 0, 1<<20)
	if err != nil {
		tb.Fatal(err)
	}
	for _, m := range metas {
		if m.ID == id {
			return m.BundleVersion
		}
	}
	tb.Fatalf("tip %s is not listed", crypto.FormatTipID(id))
	return 0
}

// TestBundleGrace publishes a bundle that only adds an editor: uploads
// sealed to the bundle it replaced are accepted for the grace period
// (sources compose days before they can send), across a restart, and
// stored as sealed to that version; after it they are stale, at the first
// message or, for one opened within it, at the commit.
func TestBundleGrace(t *testing.T) {
	const grace = 3 * 24 * time.Hour
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.BundleGrace = grace }})
	v1 := ts.recipients(t)
	added := newEditorKey(t, "editor-added", true)
	v2 := ts.makeBundle(t, 2, func(b *crypto.Bundle) { b.Editors = append(b.Editors, added.Public) })
	if e := publish(t, ts, v2.Signed()); e != nil {
		t.Fatalf("publish v2: %v", e)
	}

	ts.clock.advance(24 * time.Hour)
	ts.whileOthers(t, func() {
		r := ts.uploadTo(t, 1, seal(t, "sealed to v1, a day after v2", v1, fs16))
		if v := ts.tipBundleVersion(t, r.TipID); v != 1 {
			t.Errorf("tip sealed to v1 stored as sealed to version %d", v)
		}
	})
	ts.restart(t)
	ts.clock.advance(24 * time.Hour)
	ts.uploadTo(t, 1, seal(t, "sealed to v1, after a restart", v1, fs16))

	late := seal(t, "opened within the grace, committed after", v1, fs16)
	c := ts.dial(t)
	c.sendUpload(1, late, fs16)
	c.readOffset(0)
	ts.clock.advance(2 * 24 * time.Hour)
	ts.whileOthers(t, func() {
		c.text(&protocol.Commit{SHA256: sha256.Sum256(late)})
		wantRefusal(t, "commit after the grace", c.refusal(), protocol.CodeStaleBundle)
		wantRefusal(t, "upload after the grace", ts.refusedTo(t, 1, seal(t, "too late", v1, fs16)), protocol.CodeStaleBundle)
	})
	ts.restart(t)
	wantRefusal(t, "upload after the grace and a restart", ts.refusedTo(t, 1, seal(t, "too late", v1, fs16)), protocol.CodeStaleBundle)
	if res := ts.send(t, "sealed to v2"); res.BundleVersion != 2 {
		t.Errorf("client sealed to version %d, want 2", res.BundleVersion)
	}
	ts.intact(t)
}

// TestBundleRevokedNoGrace: a bundle that revokes an editor ends uploads
// sealed to the one it replaced at once, and after a restart too: the tip
// would be readable by a key the newsroom no longer trusts.
func TestBundleRevokedNoGrace(t *testing.T) {
	ts := newTestServer(t, serverOptions{editors: 2})
	v1 := ts.recipients(t)
	v2 := ts.makeBundle(t, 2, func(b *crypto.Bundle) {
		b.Revoked = []string{b.Editors[1].Label}
		b.Editors = b.Editors[:1]
	})
	if e := publish(t, ts, v2.Signed()); e != nil {
		t.Fatalf("publish v2: %v", e)
	}
	ts.whileOthers(t, func() {
		wantRefusal(t, "upload sealed to v1", ts.refusedTo(t, 1, seal(t, "to a revoked editor", v1, fs16)), protocol.CodeStaleBundle)
	})
	ts.restart(t)
	ts.whileOthers(t, func() {
		wantRefusal(t, "upload sealed to v1 after a restart", ts.refusedTo(t, 1, seal(t, "to a revoked editor", v1, fs16)), protocol.CodeStaleBundle)
	})
}

// TestGraceFor: the bundle a new one replaced keeps a grace period only
// if the new one keeps every editor with the same recipient and stanza
// type; it lasts until the day the grace ends.
func TestGraceFor(t *testing.T) {
	key := func(label string, classic bool) crypto.Editor { return newEditorKey(t, label, classic).Public }
	e0, e1, extra := key("editor-0", true), key("editor-1", true), key("editor-2", true)
	rekeyed := key("editor-1", true)
	pq0, pq1 := key("editor-0", false), key("editor-1", false)
	mk := func(version int64, revoked []string, eds ...crypto.Editor) *crypto.Bundle {
		return &crypto.Bundle{Version: version, Editors: eds, Revoked: revoked}
	}
	prev := mk(1, nil, e0, e1)
	const day, twoWeeks = "2026-03-01", 14 * 24 * time.Hour
	for _, tc := range []struct {
		name     string
		prev     *crypto.Bundle
		cur      *crypto.Bundle
		replaced string
		grace    time.Duration
		until    string // "" for no grace
	}{
		{"same_editors", prev, mk(2, nil, e0, e1), day, twoWeeks, "2026-03-15"},
		{"editor_added", prev, mk(2, nil, e0, e1, extra), day, twoWeeks, "2026-03-15"},
		{"editors_reordered", prev, mk(2, nil, e1, e0), day, twoWeeks, "2026-03-15"},
		{"one_day", prev, mk(2, nil, e0, e1), "2026-02-28", 24 * time.Hour, "2026-03-01"},
		{"editor_removed", prev, mk(2, nil, e0), day, twoWeeks, ""},
		{"editor_revoked", prev, mk(2, []string{"editor-1"}, e0), day, twoWeeks, ""},
		{"editor_rekeyed", prev, mk(2, nil, e0, rekeyed), day, twoWeeks, ""},
		{"stanza_type_changed", prev, mk(2, nil, pq0, pq1), day, twoWeeks, ""},
		{"grace_off", prev, mk(2, nil, e0, e1), day, -1, ""},
		{"grace_zero", prev, mk(2, nil, e0, e1), day, 0, ""},
		{"no_previous", nil, mk(2, nil, e0, e1), day, twoWeeks, ""},
		{"bad_day", prev, mk(2, nil, e0, e1), "2026-3-1", twoWeeks, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := graceFor(tc.prev, tc.cur, tc.replaced, tc.grace)
			switch {
			case tc.until == "" && g != nil:
				t.Errorf("graceFor() = grace until %s, want none", g.until)
			case tc.until != "" && g == nil:
				t.Errorf("graceFor() = none, want grace until %s", tc.until)
			case g != nil && (g.until != tc.until || g.bundle != tc.prev):
				t.Errorf("graceFor() = version %d until %s, want version %d until %s", g.bundle.Version, g.until, tc.prev.Version, tc.until)
			}
		})
	}
}
