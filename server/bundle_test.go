package server

import (
	"bytes"
	"context"
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
	ts := newTestServer(t, serverOptions{editors: 2})
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
	c.text(newUpload(1, fs16, fs16))
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
	s, err := New(context.Background(), Config{Listen: "127.0.0.1:0"}, ts.store, ts.logKey)
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
