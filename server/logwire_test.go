package server

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"
)

// lastBundle returns the last bundle entry of entries and its index.
func lastBundle(tb testing.TB, entries [][]byte) (int, []byte) {
	tb.Helper()
	for i := len(entries) - 1; i >= 0; i-- {
		if bytes.HasPrefix(entries[i], []byte(crypto.BundleHeader+"\n")) {
			return i, entries[i]
		}
	}
	tb.Fatal("the log holds no bundle")
	return 0, nil
}

// seedEntries returns the proof-of-work seed entries of entries.
func seedEntries(entries [][]byte) [][]byte {
	var out [][]byte
	for _, e := range entries {
		if bytes.HasPrefix(e, []byte(crypto.PoWSeedHeader+"\n")) {
			out = append(out, e)
		}
	}
	return out
}

// TestLogPublishedBundle: POST /bundle answers only once the bundle is
// the log's last bundle entry, byte for byte, and the whole log audits;
// a restart logs nothing more.
func TestLogPublishedBundle(t *testing.T) {
	h := newLogHarness(t, 2)
	r := h.start(nil)
	v2 := h.makeBundle(2, func(b *crypto.Bundle) { b.Policy.Approvals = 1 })
	status, body := httpDo(t, http.MethodPost, r.origin+protocol.PathBundle, "", v2.Signed())
	if status != http.StatusNoContent {
		t.Fatalf("POST /bundle = %d %s", status, body)
	}
	entries := r.verifyLog(t)
	if i, b := lastBundle(t, entries); !bytes.Equal(b, v2.Signed()) || i != len(entries)-1 {
		t.Fatalf("after POST /bundle, the log's last bundle is entry %d of %d, %q; want version 2 as the last entry", i, len(entries), b)
	}
	// A refused bundle logs nothing.
	if status, _ := httpDo(t, http.MethodPost, r.origin+protocol.PathBundle, "", v2.Signed()); status != http.StatusConflict {
		t.Errorf("POST /bundle of the bundle in force = %d, want 409", status)
	}
	r.stop()

	r = h.start(nil)
	again := r.verifyLog(t)
	if len(again) != len(entries) {
		t.Errorf("after a restart the log has %d entries, want %d: something was logged twice", len(again), len(entries))
	}
}

// TestLogBundleStoredNotLogged: a bundle stored and put in force whose
// log append never happened (the server stopped in between) is logged at
// the next start, before anything else.
func TestLogBundleStoredNotLogged(t *testing.T) {
	h := newLogHarness(t, 1)
	r := h.start(nil)
	before := r.verifyLog(t)
	v2 := h.makeBundle(2, nil)
	// What servePublishBundle does before its log append.
	if err := r.store.PutBundle(context.Background(), 2, v2.Signed(), crypto.Day(time.Now())); err != nil {
		t.Fatal(err)
	}
	r.stop()

	r = h.start(nil)
	entries := r.verifyLog(t)
	if len(entries) != len(before)+1 || !bytes.Equal(entries[len(entries)-1], v2.Signed()) {
		t.Fatalf("after a restart the log has %d entries (was %d), last %q; want bundle version 2 appended", len(entries), len(before), entries[len(entries)-1])
	}
	r.stop()
	r = h.start(nil)
	if n := len(r.verifyLog(t)); n != len(entries) {
		t.Errorf("a second restart made the log %d entries, want %d", n, len(entries))
	}
}

// logEntries reads a testServer's log through its endpoints, audited.
func (ts *testServer) logEntries(tb testing.TB) [][]byte {
	tb.Helper()
	h := &logHarness{tb: tb, newsroom: ts.newsroom, logKey: ts.logKey}
	return (&logRun{h: h, origin: ts.origin()}).verifyLog(tb)
}

// TestLogSeedHandedOut: the seed a source gets is in the log, byte for
// byte, once, before the source gets it; a second source, an upload and a
// restart log nothing more; the next epoch's seed is logged once too.
func TestLogSeedHandedOut(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	if seeds := seedEntries(ts.logEntries(t)); len(seeds) != 0 {
		t.Fatalf("the log holds %d seeds before any source asked", len(seeds))
	}
	first := ts.seedNote(t).signed
	// Read as soon as the source has it: the seed is in the published log.
	if seeds := seedEntries(ts.logEntries(t)); len(seeds) != 1 || !bytes.Equal(seeds[0], first) {
		t.Fatalf("when the source got its seed, the log held seeds %q, want %q", seeds, first)
	}
	ts.send(t, "a tip under the first seed")
	entries := ts.logEntries(t)
	seeds := seedEntries(entries)
	if len(seeds) != 1 || !bytes.Equal(seeds[0], first) {
		t.Fatalf("the log holds seeds %q, want exactly the one handed out, %q", seeds, first)
	}

	ts.restart(t)
	ts.seeds = nil // ask the server again, on a new connection
	if again := ts.seedNote(t).signed; !bytes.Equal(again, first) {
		t.Fatalf("after a restart the seed is %q, want %q", again, first)
	}
	if n := len(ts.logEntries(t)); n != len(entries) {
		t.Fatalf("after a restart and a seed request the log has %d entries, want %d", n, len(entries))
	}

	ts.clock.advance(ts.s.cfg.PoWEpoch)
	next := ts.seedNote(t).signed
	seeds = seedEntries(ts.logEntries(t))
	if len(seeds) != 2 || !bytes.Equal(seeds[0], first) || !bytes.Equal(seeds[1], next) {
		t.Fatalf("after the next epoch's seed the log holds %d seeds, want the two handed out", len(seeds))
	}
}

// TestLogSeedStoredNotLogged: a seed stored and not logged (the server
// stopped in between) is logged at the next start, before any source asks,
// and is the one sources then get.
func TestLogSeedStoredNotLogged(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ctx := context.Background()
	// The restart's start-up check runs on the wall clock (the test clock
	// is set after New); newTestServer moves its clock back a little only
	// near the end of an epoch, so both are in the same one.
	epoch := crypto.EpochAt(ts.clock.now(), ts.s.epochSeconds())
	if wall := crypto.EpochAt(time.Now(), ts.s.epochSeconds()); wall != epoch {
		t.Fatalf("test clock in epoch %d, wall clock in %d", epoch, wall)
	}
	ps := &crypto.PoWSeed{Epoch: epoch, EpochSeconds: ts.s.epochSeconds(), Params: cheapPoW}
	ps.Seed[0] = 7
	signed, err := crypto.SignPoWSeed(ps, ts.logKey.Signer)
	if err != nil {
		t.Fatal(err)
	}
	// What currentSeed does before its log append.
	if err := ts.store.PutPoWSeed(ctx, epoch, signed); err != nil {
		t.Fatal(err)
	}
	ts.restart(t)
	seeds := seedEntries(ts.logEntries(t))
	if len(seeds) != 1 || !bytes.Equal(seeds[0], signed) {
		t.Fatalf("after a restart the log holds seeds %q, want the stored one", seeds)
	}
	if got := ts.seedNote(t).signed; !bytes.Equal(got, signed) {
		t.Errorf("a source got seed %q, want the stored and logged one", got)
	}
	ts.restart(t)
	if seeds := seedEntries(ts.logEntries(t)); len(seeds) != 1 {
		t.Errorf("a second restart made %d seed entries, want 1", len(seeds))
	}
}

// TestLogSeedLoggedNotStored: a seed in the log whose row the store lost
// (an old database recovered from a replica) is stored again and handed
// out, not replaced by a new one; a stored seed that differs from the
// logged one is never handed out.
func TestLogSeedLoggedNotStored(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper string
	}{
		{"lost", `DELETE FROM pow_seeds WHERE epoch = ?`},
		{"differs", `UPDATE pow_seeds SET signed = ? WHERE epoch = ?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, serverOptions{})
			first := ts.seedNote(t)
			ts.stop()
			if err := ts.store.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.name == "lost" {
				exec(t, ts.dir, tc.tamper, first.seed.Epoch)
			} else {
				other := *first.seed
				other.Seed[0] ^= 1
				exec(t, ts.dir, tc.tamper, must(crypto.SignPoWSeed(&other, ts.logKey.Signer)), first.seed.Epoch)
			}
			var err error
			ts.store, err = storage.Open(filepath.Join(ts.dir, dbFile), storage.Options{Logger: ts.cfg.Logger})
			if err != nil {
				t.Fatal(err)
			}
			ts.start(t)
			ts.seeds = nil
			if got := ts.seedNote(t).signed; !bytes.Equal(got, first.signed) {
				t.Errorf("after the store lost its seed, a source got %q, want the logged %q", got, first.signed)
			}
			if seeds := seedEntries(ts.logEntries(t)); len(seeds) != 1 {
				t.Errorf("the log holds %d seeds, want 1", len(seeds))
			}
			if tc.name == "lost" {
				if stored, err := ts.store.PoWSeed(context.Background(), first.seed.Epoch); err != nil || !bytes.Equal(stored, first.signed) {
					t.Errorf("stored seed after the restart = %q, %v; want the logged one", stored, err)
				}
			}
		})
	}
}

// TestLogRecoveredBundle: a database restored from a copy older than a
// bundle's publication, its log recovered from a replica, starts with the
// log's last bundle in force (not the older stored one), logs nothing
// more, and takes events under it.
func TestLogRecoveredBundle(t *testing.T) {
	h := newLogHarness(t, 1)
	r := h.start(nil)
	r.stop()
	backup := t.TempDir()
	copyDB(t, h.dir, backup)

	r = h.start(nil)
	v2 := h.makeBundle(2, nil)
	if status, body := httpDo(t, http.MethodPost, r.origin+protocol.PathBundle, "", v2.Signed()); status != http.StatusNoContent {
		t.Fatalf("POST /bundle = %d %s", status, body)
	}
	replica := t.TempDir()
	r.mirror(t, replica)
	r.stop()

	copyDB(t, backup, h.dir)
	r = h.recoverFrom(t, replica, 2)
	if v := r.s.Bundle().Version; v != 2 {
		t.Fatalf("after recovery the bundle in force is version %d, want 2, the log's last", v)
	}
	if _, body := get(t, r.origin+protocol.PathBundle); !bytes.Equal(body, v2.Signed()) {
		t.Errorf("GET /bundle after recovery is not version 2")
	}
	tree, _ := r.checkpoint(t)
	if tree.N != 2 {
		t.Fatalf("after recovery and a start the log has %d entries, want 2", tree.N)
	}
	token := r.login(t, h.editors[0])
	if i := r.logged(t, token, newEvent(t, h.editors[0], v2, tree, nil)); i != 2 {
		t.Errorf("event under version 2 logged at %d, want 2", i)
	}
	r.verifyLog(t)
}
