package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"filippo.io/torchwood"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// logHarness is a server's data directory, keys and bundle, which tests
// start, stop, tamper with and start again.
type logHarness struct {
	tb       testing.TB
	dir      string
	newsroom *crypto.SignerKey
	logKey   *crypto.SignerKey
	editors  []*crypto.EditorKey
	bundle   *crypto.Bundle
	logger   *slog.Logger
}

func newLogHarness(tb testing.TB, editors int) *logHarness {
	tb.Helper()
	h := &logHarness{tb: tb, dir: tb.TempDir(), logger: testLogger(tb)}
	h.newsroom = newSignerKey(tb, crypto.NewsroomKeyHeader, "test-newsroom")
	h.logKey = newSignerKey(tb, crypto.LogKeyHeader, DefaultLogName)
	if err := os.WriteFile(filepath.Join(h.dir, LogKeyFile), h.logKey.Marshal(), 0o600); err != nil {
		tb.Fatal(err)
	}
	for i := range editors {
		h.editors = append(h.editors, newEditorKey(tb, fmt.Sprintf("editor-%d", i), true))
	}
	h.bundle = h.makeBundle(1, nil)
	if err := os.WriteFile(filepath.Join(h.dir, "bundle.txt"), h.bundle.Signed(), 0o644); err != nil {
		tb.Fatal(err)
	}
	return h
}

// makeBundle signs a bundle of every editor, changed by edit if set.
func (h *logHarness) makeBundle(version int64, edit func(*crypto.Bundle)) *crypto.Bundle {
	h.tb.Helper()
	b := &crypto.Bundle{
		Newsroom: h.newsroom.Verifier,
		Version:  version,
		Expires:  time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second),
		Log:      h.logKey.Verifier,
		Policy:   crypto.DefaultPolicy,
	}
	for _, k := range h.editors {
		b.Editors = append(b.Editors, k.Public)
	}
	if edit != nil {
		edit(b)
	}
	if _, err := crypto.SignBundle(b, h.newsroom.Signer); err != nil {
		h.tb.Fatalf("SignBundle() = %v", err)
	}
	return b
}

func (h *logHarness) config() Config {
	return Config{
		DataDir:    h.dir,
		Listen:     "127.0.0.1:0",
		BundleFile: filepath.Join(h.dir, "bundle.txt"),
		Logger:     h.logger,
	}
}

// newServer opens the store and builds a server over it; on an error the
// store is closed again.
func (h *logHarness) newServer() (*Server, *storage.Store, error) {
	st, err := storage.Open(filepath.Join(h.dir, dbFile), storage.Options{Logger: h.logger})
	if err != nil {
		h.tb.Fatal(err)
	}
	s, err := New(context.Background(), h.config(), st, h.logKey)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return s, st, nil
}

// logRun is a running server of a harness.
type logRun struct {
	h      *logHarness
	s      *Server
	store  *storage.Store
	origin string
	stop   func()
}

// start builds and serves a server, which must start; stop (also run at
// cleanup) shuts it down and closes its store.
func (h *logHarness) start(beforeServe func(*Server)) *logRun {
	h.tb.Helper()
	s, st, err := h.newServer()
	if err != nil {
		h.tb.Fatalf("New() = %v", err)
	}
	if beforeServe != nil {
		beforeServe(s)
	}
	ls, err := s.Bind()
	if err != nil {
		h.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ls) }()
	var once sync.Once
	r := &logRun{h: h, s: s, store: st, origin: "http://" + ls.Main.Addr().String()}
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.tb.Errorf("Serve() = %v", err)
			}
			if err := st.Close(); err != nil {
				h.tb.Errorf("store.Close() = %v", err)
			}
		})
	}
	h.tb.Cleanup(r.stop)
	return r
}

// policy verifies this log's checkpoints the way a client does.
func (h *logHarness) policy() torchwood.Policy {
	v, err := note.NewVerifier(h.logKey.Verifier)
	if err != nil {
		h.tb.Fatal(err)
	}
	return torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(v.Name()), torchwood.SingleVerifierPolicy(v))
}

var testHTTP = &http.Client{Timeout: failAfter}

// get fetches a path and returns the response and its body.
func get(tb testing.TB, url string) (*http.Response, []byte) {
	tb.Helper()
	resp, err := testHTTP.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, b
}

// checkpoint fetches and verifies the log's checkpoint.
func (r *logRun) checkpoint(tb testing.TB) (tlog.Tree, []byte) {
	tb.Helper()
	resp, b := get(tb, r.origin+protocol.PathCheckpoint)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /checkpoint: %s %s", resp.Status, b)
	}
	c, _, err := torchwood.VerifyCheckpoint(b, r.h.policy())
	if err != nil {
		tb.Fatalf("GET /checkpoint: %v", err)
	}
	return c.Tree, b
}

// login logs an editor in and returns the bearer token.
func (r *logRun) login(tb testing.TB, k *crypto.EditorKey) string {
	tb.Helper()
	resp, err := testHTTP.Post(r.origin+protocol.PathChallenge, "", nil)
	if err != nil {
		tb.Fatal(err)
	}
	var c protocol.Challenge
	err = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if err != nil {
		tb.Fatal(err)
	}
	l := &crypto.Login{Origin: c.Origin}
	nonce, _ := base64.RawURLEncoding.DecodeString(c.Nonce)
	copy(l.Nonce[:], nonce)
	if l.Expires, err = time.Parse(time.RFC3339, c.Expires); err != nil {
		tb.Fatal(err)
	}
	signer, err := k.Signer()
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := crypto.SignLogin(l, signer)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err = testHTTP.Post(r.origin+protocol.PathLogin, "", bytes.NewReader(msg))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var s protocol.Session
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.Token == "" {
		tb.Fatalf("login as %s: %s, %v", k.Label, resp.Status, err)
	}
	return s.Token
}

// testEvent is an editorial event ready to send.
type testEvent struct {
	entry, body []byte
	ev          *audit.Event
}

func (e *testEvent) request() []byte {
	b, err := torchwood.AppendTileEntry(nil, e.entry)
	if err != nil {
		panic(err)
	}
	return append(b, e.body...)
}

// newEvent seals a note to b's editors and signs its event with k over
// base; edit, if set, changes the event before it is signed.
func newEvent(tb testing.TB, k *crypto.EditorKey, b *crypto.Bundle, base tlog.Tree, edit func(*audit.Event)) *testEvent {
	tb.Helper()
	var tip [crypto.TipIDSize]byte
	rand.Read(tip[:])
	sealed, err := audit.SealEventBody(&audit.EventBody{Kind: audit.KindNote, Tip: tip, Text: "seen at the depot"}, b)
	if err != nil {
		tb.Fatal(err)
	}
	ev, err := sealed.Event(crypto.Day(time.Now()), base)
	if err != nil {
		tb.Fatal(err)
	}
	if edit != nil {
		edit(ev)
	}
	signer, err := k.Signer()
	if err != nil {
		tb.Fatal(err)
	}
	entry, err := audit.SignEvent(ev, signer)
	if err != nil {
		tb.Fatal(err)
	}
	return &testEvent{entry: entry, body: sealed.Ciphertext, ev: ev}
}

// post sends an event request with the session token (none if empty).
func (r *logRun) post(tb testing.TB, token string, req []byte) (int, []byte) {
	tb.Helper()
	hr, err := http.NewRequest(http.MethodPost, r.origin+protocol.PathEvent, bytes.NewReader(req))
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := testHTTP.Do(hr)
	if err != nil {
		tb.Fatalf("POST /event: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

// logged posts an event that must be logged, checks its acknowledgement
// (a tlog-proof the log key signed, for the event's record hash, checked
// with torchwood, tlog and transparency-dev/merkle) and returns its index.
func (r *logRun) logged(tb testing.TB, token string, e *testEvent) int64 {
	tb.Helper()
	status, ack := r.post(tb, token, e.request())
	if status != http.StatusOK {
		tb.Fatalf("POST /event: %d %s", status, ack)
	}
	return r.checkAck(tb, e.entry, ack)
}

func (r *logRun) checkAck(tb testing.TB, entry, ack []byte) int64 {
	tb.Helper()
	if err := torchwood.VerifyProof(r.h.policy(), tlog.RecordHash(entry), ack); err != nil {
		tb.Fatalf("acknowledgement does not prove the event: %v\n%s", err, ack)
	}
	lines := strings.Split(string(ack), "\n")
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "index "), 10, 64)
	if err != nil {
		tb.Fatalf("acknowledgement index line %q", lines[1])
	}
	var p tlog.RecordProof
	i := 2
	for ; lines[i] != ""; i++ {
		h, err := tlog.ParseHash(lines[i])
		if err != nil {
			tb.Fatal(err)
		}
		p = append(p, h)
	}
	c, _, err := torchwood.VerifyCheckpoint([]byte(strings.Join(lines[i+1:], "\n")), r.h.policy())
	if err != nil {
		tb.Fatal(err)
	}
	if err := tlog.CheckRecord(p, c.N, c.Hash, index, tlog.RecordHash(entry)); err != nil {
		tb.Errorf("tlog.CheckRecord(ack of %d) = %v", index, err)
	}
	mh := rfc6962.DefaultHasher
	pb := make([][]byte, len(p))
	for j := range p {
		pb[j] = p[j][:]
	}
	if err := proof.VerifyInclusion(mh, uint64(index), uint64(c.N), mh.HashLeaf(entry), pb, c.Hash[:]); err != nil {
		tb.Errorf("merkle refuses the ack of %d: %v", index, err)
	}
	return index
}

// verifyLog reads the whole log with torchwood's verifying tile client
// over the HTTP endpoints, audits it with package audit, checks that its
// tree is the checkpoint's, and returns the entries.
func (r *logRun) verifyLog(tb testing.TB) [][]byte {
	tb.Helper()
	ctx := context.Background()
	tree, _ := r.checkpoint(tb)
	f, err := torchwood.NewTileFetcher(r.origin, torchwood.WithHTTPClient(testHTTP))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := torchwood.NewClient(f)
	if err != nil {
		tb.Fatal(err)
	}
	var entries [][]byte
	for i, e := range c.AllEntries(ctx, tree, 0) {
		if i != int64(len(entries)) {
			tb.Fatalf("tile client yielded entry %d after %d", i, len(entries))
		}
		entries = append(entries, e)
	}
	if err := c.Err(); err != nil || int64(len(entries)) != tree.N {
		tb.Fatalf("tile client read %d of %d entries: %v", len(entries), tree.N, err)
	}
	v, err := audit.NewVerifier(r.h.newsroom.Verifier)
	if err != nil {
		tb.Fatal(err)
	}
	if err := v.Verify(ctx, audit.SliceReader(entries), tree.N); err != nil {
		tb.Fatalf("audit of the served log: %v", err)
	}
	if v.Tree() != tree {
		tb.Fatalf("audited tree %v, checkpoint %v", v.Tree(), tree)
	}
	return entries
}

// TestLogEndpoints logs events from two editors, concurrently, and reads
// the log back through every endpoint: torchwood's tile client verifies it
// against the signed checkpoint, package audit audits it, each
// acknowledgement proves its event, and each body is served by index.
func TestLogEndpoints(t *testing.T) {
	h := newLogHarness(t, 2)
	r := h.start(nil)
	tree, _ := r.checkpoint(t)
	if tree.N != 1 {
		t.Fatalf("a new log has %d entries, want 1 (the bundle)", tree.N)
	}
	tokens := []string{r.login(t, h.editors[0]), r.login(t, h.editors[1])}

	const n = 300 // more than one entry bundle
	events := make([]*testEvent, n)
	for i := range events {
		events[i] = newEvent(t, h.editors[i%2], h.bundle, tree, nil)
	}
	indexes := make([]int64, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				indexes[i] = r.logged(t, tokens[i%2], events[i])
			}
		})
	}
	wg.Wait()

	entries := r.verifyLog(t)
	if len(entries) != n+1 || !bytes.Equal(entries[0], h.bundle.Signed()) {
		t.Fatalf("log of %d entries, want the bundle and %d events", len(entries), n)
	}
	seen := map[int64]bool{}
	for i, e := range events {
		if seen[indexes[i]] || !bytes.Equal(entries[indexes[i]], e.entry) {
			t.Errorf("event %d acknowledged at index %d, which holds another entry", i, indexes[i])
		}
		seen[indexes[i]] = true
	}

	// Torchwood's client proves single entries too.
	f, _ := torchwood.NewTileFetcher(r.origin, torchwood.WithHTTPClient(testHTTP))
	c, _ := torchwood.NewClient(f)
	final, _ := r.checkpoint(t)
	for _, i := range []int64{0, 1, 255, 256, n} {
		e, _, err := c.Entry(context.Background(), final, i)
		if err != nil || !bytes.Equal(e, entries[i]) {
			t.Errorf("torchwood Client.Entry(%d) = %v", i, err)
		}
	}

	// Bodies by index, immutable; none for the bundle or past the end.
	for i, e := range events[:20] {
		resp, b := get(t, r.origin+protocol.PathEventBodies+strconv.FormatInt(indexes[i], 10))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(b, e.body) {
			t.Errorf("GET body of %d: %s, %d bytes", indexes[i], resp.Status, len(b))
		}
		if cc := resp.Header.Get("Cache-Control"); cc != immutable {
			t.Errorf("body Cache-Control %q, want %q", cc, immutable)
		}
	}
	for _, path := range []string{"0", strconv.Itoa(n + 1), "99999999999", "-1", "01", "1x", "+1", ""} {
		resp, b := get(t, r.origin+protocol.PathEventBodies+path)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /event-body/%s: %s %s, want 404 or 400", path, resp.Status, b)
		}
	}

	// Headers and refusals of the tile endpoints.
	resp, _ := get(t, r.origin+protocol.PathCheckpoint)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("checkpoint Cache-Control %q, want no-store", cc)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"tile/0/000", http.StatusOK},
		{"tile/0/001.p/45", http.StatusOK},
		{"tile/0/001.p/44", http.StatusOK}, // an older partial tile
		{"tile/entries/000", http.StatusOK},
		{"tile/entries/001.p/45", http.StatusOK},
		{"tile/1/000.p/1", http.StatusOK},
		{"tile/0/001.p/46", http.StatusNotFound},
		{"tile/0/001", http.StatusNotFound},
		{"tile/entries/002.p/1", http.StatusNotFound},
		{"tile/1/000.p/2", http.StatusNotFound},
		{"tile/7/000.p/1", http.StatusNotFound},
		{"tile/0/1", http.StatusBadRequest},
		{"tile/0/000.p/256", http.StatusBadRequest},
		{"tile/0/000.p/0", http.StatusBadRequest},
		{"tile/8/0/000", http.StatusBadRequest},
		{"tile/data/000", http.StatusBadRequest},
		{"tile/", http.StatusBadRequest},
	} {
		resp, b := get(t, r.origin+"/"+tc.path)
		if resp.StatusCode != tc.status {
			t.Errorf("GET /%s: %s %q, want %d", tc.path, resp.Status, b, tc.status)
			continue
		}
		if tc.status == http.StatusOK && resp.Header.Get("Cache-Control") != immutable {
			t.Errorf("GET /%s: Cache-Control %q, want %q", tc.path, resp.Header.Get("Cache-Control"), immutable)
		}
	}
}

// TestLogEventRefusals: each refusal is its typed error, and leaves the
// log as it was.
func TestLogEventRefusals(t *testing.T) {
	h := newLogHarness(t, 2)
	r := h.start(nil)
	token := r.login(t, h.editors[0])
	tree, _ := r.checkpoint(t)
	stranger := newEditorKey(t, "stranger", true)
	ok := newEvent(t, h.editors[0], h.bundle, tree, nil)
	replayed := newEvent(t, h.editors[0], h.bundle, tree, nil)
	r.logged(t, token, replayed)
	tree, _ = r.checkpoint(t)

	withBody := func(e *testEvent, body []byte) []byte { e2 := *e; e2.body = body; return e2.request() }
	tooLong := newEvent(t, h.editors[0], h.bundle, tree, nil)
	var longEntry []byte
	longEntry, _ = torchwood.AppendTileEntry(nil, make([]byte, audit.MaxEventSize+1))
	signer0, _ := h.editors[0].Signer()
	notEvent := must(note.Sign(&note.Note{Text: audit.EventHeader + "\nid x\n"}, signer0))
	for _, tc := range []struct {
		name   string
		token  string
		req    []byte
		status int
		code   protocol.Code
	}{
		{"no_session", "", ok.request(), http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"bad_session", base64.RawURLEncoding.EncodeToString(make([]byte, 32)), ok.request(), http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"empty", token, nil, http.StatusBadRequest, protocol.CodeMalformed},
		{"one_byte", token, []byte{0}, http.StatusBadRequest, protocol.CodeMalformed},
		{"length_past_end", token, ok.request()[:len(ok.entry)+1], http.StatusBadRequest, protocol.CodeMalformed},
		{"no_body", token, ok.request()[:len(ok.entry)+2], http.StatusBadRequest, protocol.CodeMalformed},
		{"empty_entry", token, append([]byte{0, 0}, ok.body...), http.StatusBadRequest, protocol.CodeMalformed},
		{"entry_over_1024", token, append(longEntry, ok.body...), http.StatusBadRequest, protocol.CodeMalformed},
		{"too_large", token, make([]byte, maxEventRequest+1), http.StatusRequestEntityTooLarge, protocol.CodeTooLarge},
		{"not_an_event", token, withBody(&testEvent{entry: notEvent}, ok.body), http.StatusBadRequest, protocol.CodeMalformed},
		{"stranger", token, newEvent(t, stranger, h.bundle, tree, nil).request(), http.StatusForbidden, protocol.CodeUnauthorized},
		{"other_editor", token, newEvent(t, h.editors[1], h.bundle, tree, nil).request(), http.StatusForbidden, protocol.CodeUnauthorized},
		{"body_hash", token, withBody(ok, append(bytes.Clone(ok.body), 0)), http.StatusBadRequest, protocol.CodeBadHash},
		{"wrong_bundle", token, newEvent(t, h.editors[0], h.bundle, tree, func(e *audit.Event) { e.Bundle = 2 }).request(), http.StatusConflict, protocol.CodeStaleBundle},
		{"replayed", token, replayed.request(), http.StatusConflict, protocol.CodeReplayed},
		{"base_beyond_log", token, newEvent(t, h.editors[0], h.bundle, tree, func(e *audit.Event) { e.Base.N = tree.N + 1 }).request(), http.StatusConflict, protocol.CodeConflict},
		{"base_other_root", token, newEvent(t, h.editors[0], h.bundle, tree, func(e *audit.Event) { e.Base.Hash[0] ^= 1 }).request(), http.StatusConflict, protocol.CodeConflict},
		{"base_prefix_other_root", token, newEvent(t, h.editors[0], h.bundle, tree, func(e *audit.Event) { e.Base = tlog.Tree{N: 1, Hash: tree.Hash} }).request(), http.StatusConflict, protocol.CodeConflict},
		{"signature_changed", token, func() []byte {
			e := *tooLong
			e.entry = bytes.Clone(e.entry)
			e.entry[len(e.entry)-5] ^= 1
			return e.request()
		}(), http.StatusForbidden, protocol.CodeUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := r.post(t, tc.token, tc.req)
			e := httpError(t, body)
			if status != tc.status || e.Code != tc.code {
				t.Errorf("POST /event = %d %v, want %d %s", status, e, tc.status, tc.code)
			}
			if tc.code == protocol.CodeConflict && e.Offset != tree.N {
				t.Errorf("conflict offset %d, want the log's size %d", e.Offset, tree.N)
			}
			if after, _ := r.checkpoint(t); after != tree {
				t.Errorf("log changed from %v to %v", tree, after)
			}
		})
	}
	// An old base that is a prefix is fine.
	r.logged(t, token, ok)
}

// TestLogRevokedEditor: after a bundle revoking an editor is put in force,
// that editor's session ends, and an event signed by them is refused even
// through another editor's session; events under the old bundle are stale;
// the new bundle is logged before the next event, which audits.
func TestLogRevokedEditor(t *testing.T) {
	h := newLogHarness(t, 2)
	r := h.start(nil)
	t0, t1 := r.login(t, h.editors[0]), r.login(t, h.editors[1])
	tree, _ := r.checkpoint(t)
	r.logged(t, t1, newEvent(t, h.editors[1], h.bundle, tree, nil))

	v2 := h.makeBundle(2, func(b *crypto.Bundle) {
		b.Editors = b.Editors[:1]
		b.Revoked = []string{h.editors[1].Label}
	})
	resp, err := testHTTP.Post(r.origin+protocol.PathBundle, "", bytes.NewReader(v2.Signed()))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /bundle: %v %v", resp, err)
	}
	resp.Body.Close()
	tree, _ = r.checkpoint(t)
	for _, tc := range []struct {
		name   string
		token  string
		e      *testEvent
		status int
		code   protocol.Code
	}{
		{"revoked_session", t1, newEvent(t, h.editors[1], v2, tree, func(e *audit.Event) { e.Bundle = 2 }), http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"revoked_signer_new_bundle", t0, newEvent(t, h.editors[1], v2, tree, nil), http.StatusForbidden, protocol.CodeUnauthorized},
		{"revoked_signer_old_bundle", t0, newEvent(t, h.editors[1], h.bundle, tree, nil), http.StatusForbidden, protocol.CodeUnauthorized},
		{"old_bundle", t0, newEvent(t, h.editors[0], h.bundle, tree, nil), http.StatusConflict, protocol.CodeStaleBundle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := r.post(t, tc.token, tc.e.request())
			e := httpError(t, body)
			if status != tc.status || e.Code != tc.code {
				t.Errorf("POST /event = %d %v, want %d %s", status, e, tc.status, tc.code)
			}
			if tc.name == "revoked_signer_new_bundle" && e.Message != errEventRevoked.Message {
				t.Errorf("refusal %q, want %q", e.Message, errEventRevoked.Message)
			}
		})
	}
	i := r.logged(t, t0, newEvent(t, h.editors[0], v2, tree, nil))
	entries := r.verifyLog(t)
	if !bytes.Equal(entries[i-1], v2.Signed()) {
		t.Errorf("entry %d before the first event under version 2 is not bundle version 2", i-1)
	}
}

// TestLogBatching holds the committer while more events arrive: they are
// committed together, under one checkpoint, and each gets its own proof.
func TestLogBatching(t *testing.T) {
	h := newLogHarness(t, 1)
	held, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	r := h.start(func(s *Server) {
		first := true
		s.elog().testOnlyBeforeCommit = func(n int) {
			mu.Lock()
			sizes = append(sizes, n)
			f := first
			first = false
			mu.Unlock()
			if f {
				close(held)
				<-release
			}
		}
	})
	token := r.login(t, h.editors[0])
	tree, _ := r.checkpoint(t)
	const n = 10
	acks := make(chan []byte, n+1)
	events := make([]*testEvent, n+1)
	for i := range events {
		events[i] = newEvent(t, h.editors[0], h.bundle, tree, nil)
	}
	post := func(e *testEvent) {
		status, ack := r.post(t, token, e.request())
		if status != http.StatusOK {
			t.Errorf("POST /event: %d %s", status, ack)
		}
		acks <- ack
	}
	go post(events[0])
	<-held
	for _, e := range events[1:] {
		go post(e)
	}
	l := r.s.elog()
	for {
		l.qmu.Lock()
		p := len(l.pending)
		l.qmu.Unlock()
		if p == n {
			break
		}
		runtime.Gosched()
	}
	close(release)
	heads := map[string]bool{}
	for range n + 1 {
		ack := <-acks
		_, cp, _ := strings.Cut(string(ack), "\n\n")
		heads[cp] = true
	}
	if len(heads) != 2 {
		t.Errorf("%d checkpoints in the acknowledgements, want 2 (one per commit)", len(heads))
	}
	mu.Lock()
	if len(sizes) != 2 || sizes[1] != n {
		t.Errorf("batch sizes %v, want [1 %d]", sizes, n)
	}
	mu.Unlock()
	r.verifyLog(t)
}

// TestLogAppendServerEntries: appendLog logs what the log key signed, and
// only that.
func TestLogAppendServerEntries(t *testing.T) {
	h := newLogHarness(t, 1)
	r := h.start(nil)
	ctx := context.Background()
	seed := &crypto.PoWSeed{Epoch: 2968, EpochSeconds: crypto.MinEpochSeconds, Params: crypto.DefaultPoWParams}
	signed, err := crypto.SignPoWSeed(seed, h.logKey.Signer)
	if err != nil {
		t.Fatal(err)
	}
	i, tree, err := r.s.appendLog(ctx, signed)
	if err != nil || i != 1 || tree.N != 2 {
		t.Fatalf("appendLog(seed) = %d, %v, %v; want index 1 of 2", i, tree, err)
	}
	other := newSignerKey(t, crypto.LogKeyHeader, DefaultLogName)
	foreign, _ := crypto.SignPoWSeed(seed, other.Signer)
	editor, _ := h.editors[0].Signer()
	ev := newEvent(t, h.editors[0], h.bundle, tree, nil)
	for name, e := range map[string][]byte{
		"other_key": foreign,
		"event":     ev.entry,
		"bundle":    h.bundle.Signed(),
		"editor":    must(note.Sign(&note.Note{Text: crypto.PoWSeedHeader + "\n"}, editor)),
		"too_large": append([]byte(crypto.PoWSeedHeader+"\n"), make([]byte, audit.MaxEntrySize)...),
	} {
		if _, _, err := r.s.appendLog(ctx, e); err == nil {
			t.Errorf("appendLog(%s) = nil error", name)
		}
	}
	if after, _ := r.checkpoint(t); after != tree {
		t.Errorf("refused appends changed the log")
	}
	r.verifyLog(t)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// mirror copies a running server's log into dir as an editor's replica
// would hold it: checkpoint, every entry bundle (the partial one at the
// edge too), every event body.
func (r *logRun) mirror(tb testing.TB, dir string) {
	tb.Helper()
	tree, cp := r.checkpoint(tb)
	write := func(path string, b []byte) {
		p := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	write("checkpoint", cp)
	for _, t := range tlog.NewTiles(torchwood.TileHeight, 0, tree.N) {
		if t.L != 0 {
			continue
		}
		t.L = -1
		resp, b := get(tb, r.origin+"/"+torchwood.TilePath(t))
		if resp.StatusCode != http.StatusOK {
			tb.Fatalf("GET %s: %s", torchwood.TilePath(t), resp.Status)
		}
		write(torchwood.TilePath(t), b)
	}
	for i := range tree.N {
		resp, b := get(tb, r.origin+protocol.PathEventBodies+strconv.FormatInt(i, 10))
		if resp.StatusCode == http.StatusOK {
			write("event-body/"+strconv.FormatInt(i, 10), b)
		}
	}
}

// copyDB copies the store's files (the server stopped) to dst.
func copyDB(tb testing.TB, dir, dst string) {
	tb.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(filepath.Join(dir, dbFile+suffix))
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			os.Remove(filepath.Join(dst, dbFile+suffix))
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, dbFile+suffix), b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// rawDB opens the stopped server's database directly, to tamper with it.
func rawDB(tb testing.TB, dir string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", filepath.Join(dir, dbFile))
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

func exec(tb testing.TB, dir, q string, args ...any) {
	tb.Helper()
	db := rawDB(tb, dir)
	defer db.Close()
	res, err := db.Exec(q, args...)
	if err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		tb.Fatalf("%s: %d rows changed, want 1", q, n)
	}
}

// wantCheckError checks that the server refuses to start with a
// *LogCheckError for reason, naming both sizes and the recovery command.
func (h *logHarness) wantCheckError(tb testing.TB, reason error, database, pinned int64, detail string) {
	tb.Helper()
	s, _, err := h.newServer()
	if err == nil {
		tb.Fatalf("New() started a server on a log that is %v (size %d)", reason, s.elog().size)
	}
	var ce *LogCheckError
	if !errors.As(err, &ce) || !errors.Is(err, reason) {
		tb.Fatalf("New() = %v, want a *LogCheckError for %v", err, reason)
	}
	if ce.Database != database || ce.Pinned != pinned {
		tb.Errorf("LogCheckError sizes: database %d, pinned %d; want %d, %d", ce.Database, ce.Pinned, database, pinned)
	}
	msg := err.Error()
	for _, want := range []string{"--recover-log", h.dir, detail} {
		if !strings.Contains(msg, want) {
			tb.Errorf("error %q does not say %q", msg, want)
		}
	}
	if database >= 0 && !strings.Contains(msg, fmt.Sprintf("database: %d entries", database)) {
		tb.Errorf("error %q does not name the database's size", msg)
	}
	if pinned >= 0 && !strings.Contains(msg, fmt.Sprintf("%d entries", pinned)) {
		tb.Errorf("error %q does not name the pinned size", msg)
	}
}

// recoverFrom runs RecoverLog and checks the recovered log serves and
// audits, with every body.
func (h *logHarness) recoverFrom(tb testing.TB, replica string, want int64) *logRun {
	tb.Helper()
	tr, err := OpenReplica(replica)
	if err != nil {
		tb.Fatal(err)
	}
	rc, err := RecoverLog(context.Background(), h.dir, tr)
	if err != nil {
		tb.Fatalf("RecoverLog() = %v", err)
	}
	if rc.Recovered != want || len(rc.MissingBodies) != 0 {
		tb.Errorf("RecoverLog() = %+v, want %d entries and every body", rc, want)
	}
	r := h.start(nil)
	if tree, _ := r.checkpoint(tb); tree.N != want {
		tb.Errorf("after recovery the log has %d entries, want %d", tree.N, want)
	}
	entries := r.verifyLog(tb)
	for i, e := range entries {
		if bytes.HasPrefix(e, []byte(audit.EventHeader+"\n")) {
			if resp, _ := get(tb, r.origin+protocol.PathEventBodies+strconv.Itoa(i)); resp.StatusCode != http.StatusOK {
				tb.Errorf("after recovery, body %d: %s", i, resp.Status)
			}
		}
	}
	return r
}

// TestLogRestoredOldDatabase: a database restored from an older copy
// refuses to start, naming both sizes and the recovery command; RecoverLog
// from an editor's replica (a directory) brings it back, and the log grows
// on from there.
func TestLogRestoredOldDatabase(t *testing.T) {
	h := newLogHarness(t, 1)
	r := h.start(nil)
	token := r.login(t, h.editors[0])
	tree, _ := r.checkpoint(t)
	for range 3 {
		r.logged(t, token, newEvent(t, h.editors[0], h.bundle, tree, nil))
	}
	r.stop()
	backup := t.TempDir()
	copyDB(t, h.dir, backup)

	r = h.start(nil)
	token = r.login(t, h.editors[0])
	for range 3 {
		r.logged(t, token, newEvent(t, h.editors[0], h.bundle, tree, nil))
	}
	replica := t.TempDir()
	r.mirror(t, replica)
	r.stop()

	copyDB(t, backup, h.dir)
	h.wantCheckError(t, ErrLogBehind, 4, 7, "older copy")

	r = h.recoverFrom(t, replica, 7)
	token = r.login(t, h.editors[0])
	tree, _ = r.checkpoint(t)
	if i := r.logged(t, token, newEvent(t, h.editors[0], h.bundle, tree, nil)); i != 7 {
		t.Errorf("first event after recovery at %d, want 7", i)
	}
	r.verifyLog(t)
}

// TestLogTamperedDatabase: a byte changed in a stored entry, a stored hash
// or the stored checkpoint is caught at start-up, naming the entry; a
// replica served over HTTP brings the log back.
func TestLogTamperedDatabase(t *testing.T) {
	for _, tc := range []struct {
		name, q, detail string
	}{
		{"entry", `UPDATE log_entries SET data = CAST(replace(CAST(data AS TEXT), 'bundle 1', 'bundle 7') AS BLOB) WHERE idx = 2`, "entry 2 does not hash"},
		{"hash", `UPDATE log_hashes SET hash = zeroblob(32) WHERE idx = 3`, "stored hash 3"},
		{"checkpoint", `UPDATE log_checkpoint SET signed = CAST(replace(CAST(signed AS TEXT), '4', '5') AS BLOB)`, "stored checkpoint"},
		{"missing_hash", `DELETE FROM log_hashes WHERE idx = (SELECT max(idx) FROM log_hashes)`, "stored hashes for 4 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newLogHarness(t, 1)
			r := h.start(nil)
			token := r.login(t, h.editors[0])
			tree, _ := r.checkpoint(t)
			for range 3 {
				r.logged(t, token, newEvent(t, h.editors[0], h.bundle, tree, nil))
			}
			replica := t.TempDir()
			r.mirror(t, replica)
			r.stop()

			exec(t, h.dir, tc.q)
			h.wantCheckError(t, ErrLogCorrupt, 4, 4, tc.detail)

			// The replica, served over HTTP as a mirror would.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hs := &http.Server{Handler: http.FileServer(http.Dir(replica))}
			go hs.Serve(l)
			defer hs.Close()
			h.recoverFrom(t, "http://"+l.Addr().String(), 4)
		})
	}
}

// TestLogPin: the pinned checkpoint against the database. Ahead of the
// pin (a crash between commit and pin) is pinned and served; a pin over
// another tree, a pin by another key, and a missing pin refuse to start.
func TestLogPin(t *testing.T) {
	h := newLogHarness(t, 1)
	pinPath := filepath.Join(h.dir, CheckpointFile)
	r := h.start(nil)
	token := r.login(t, h.editors[0])
	tree, _ := r.checkpoint(t)
	old, err := os.ReadFile(pinPath)
	if err != nil {
		t.Fatal(err)
	}
	r.logged(t, token, newEvent(t, h.editors[0], h.bundle, tree, nil))
	r.stop()

	// Ahead: the older pin is a prefix.
	if err := os.WriteFile(pinPath, old, 0o600); err != nil {
		t.Fatal(err)
	}
	r = h.start(nil)
	tree, cp := r.checkpoint(t)
	if pinned, _ := os.ReadFile(pinPath); tree.N != 2 || !bytes.Equal(pinned, cp) {
		t.Errorf("after start the pin is %q, want the served checkpoint of size 2", pinned)
	}
	r.stop()
	good, _ := os.ReadFile(pinPath)

	// Differs: a checkpoint the log key signed over another tree.
	forked := tree
	forked.Hash[0] ^= 1
	fork, err := signCheckpoint(h.logKey.Signer, forked)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pinPath, fork, 0o600)
	h.wantCheckError(t, ErrLogDiffers, 2, 2, "root")

	// Another key's checkpoint, and no checkpoint at all.
	other := newSignerKey(t, crypto.LogKeyHeader, DefaultLogName)
	foreign, _ := signCheckpoint(other.Signer, tree)
	os.WriteFile(pinPath, foreign, 0o600)
	h.wantCheckError(t, ErrBadPin, -1, -1, "checkpoint")
	os.Remove(pinPath)
	h.wantCheckError(t, ErrNoPin, 2, -1, "copied")

	os.WriteFile(pinPath, good, 0o600)
	h.start(nil).verifyLog(t)
}

// TestRecoverLogRefuses: RecoverLog leaves an intact log alone, and
// refuses a replica older than the pin, a replica of another log, and a
// replica whose entries do not hash to its checkpoint.
func TestRecoverLogRefuses(t *testing.T) {
	h := newLogHarness(t, 1)
	r := h.start(nil)
	token := r.login(t, h.editors[0])
	tree, _ := r.checkpoint(t)
	r.logged(t, token, newEvent(t, h.editors[0], h.bundle, tree, nil))
	older := t.TempDir()
	r.mirror(t, older)
	r.logged(t, token, newEvent(t, h.editors[0], h.bundle, tree, nil))
	replica := t.TempDir()
	r.mirror(t, replica)
	r.stop()

	run := func(dir string) error {
		tr, err := OpenReplica(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = RecoverLog(context.Background(), h.dir, tr)
		return err
	}
	if err := run(replica); !errors.Is(err, ErrLogIntact) {
		t.Errorf("RecoverLog(intact log) = %v, want ErrLogIntact", err)
	}
	exec(t, h.dir, `UPDATE log_hashes SET hash = zeroblob(32) WHERE idx = 0`)
	if err := run(older); err == nil || !strings.Contains(err.Error(), "newer replica") {
		t.Errorf("RecoverLog(older replica) = %v, want a refusal", err)
	}
	other := newLogHarness(t, 1)
	otherReplica := t.TempDir()
	or := other.start(nil)
	or.mirror(t, otherReplica)
	or.stop()
	if err := run(otherReplica); err == nil || !strings.Contains(err.Error(), "not this log's") {
		t.Errorf("RecoverLog(another log's replica) = %v, want a refusal", err)
	}
	bad := t.TempDir()
	os.CopyFS(bad, os.DirFS(replica))
	tile := filepath.Join(bad, "tile", "entries", "000.p", "3")
	b, _ := os.ReadFile(tile)
	b[len(b)-3] ^= 1
	os.WriteFile(tile, b, 0o600)
	if err := run(bad); err == nil {
		t.Errorf("RecoverLog(tampered replica) = nil")
	}
	// Every refusal left the database as it was: still corrupt.
	h.wantCheckError(t, ErrLogCorrupt, 3, 3, "entry 0")
	// A replica without bodies recovers the entries and lists the bodies
	// it lacks (the old database's still match and are kept).
	nobodies := t.TempDir()
	os.CopyFS(nobodies, os.DirFS(replica))
	os.RemoveAll(filepath.Join(nobodies, "event-body"))
	tr, _ := OpenReplica(nobodies)
	rc, err := RecoverLog(context.Background(), h.dir, tr)
	if err != nil || rc.Recovered != 3 || rc.Bodies != 2 || len(rc.MissingBodies) != 0 {
		t.Errorf("RecoverLog(no bodies) = %+v, %v; want 3 entries, the 2 bodies from the database", rc, err)
	}
}

// TestParseTilePath: only C2SP tlog-tiles paths of height 8, in their one
// spelling.
func TestParseTilePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want tlog.Tile
		ok   bool
	}{
		{"tile/0/000", tlog.Tile{H: 8, L: 0, N: 0, W: 256}, true},
		{"tile/0/x001/234", tlog.Tile{H: 8, L: 0, N: 1234, W: 256}, true},
		{"tile/2/000.p/7", tlog.Tile{H: 8, L: 2, N: 0, W: 7}, true},
		{"tile/entries/x001/000.p/255", tlog.Tile{H: 8, L: -1, N: 1000, W: 255}, true},
		{"tile/entries/000", tlog.Tile{H: 8, L: -1, N: 0, W: 256}, true},
		{"tile/0/0", tlog.Tile{}, false},
		{"tile/0/0000", tlog.Tile{}, false},
		{"tile/0/x000/001", tlog.Tile{}, false},
		{"tile/0/001.p/256", tlog.Tile{}, false},
		{"tile/0/001.p/0", tlog.Tile{}, false},
		{"tile/0/001.p/07", tlog.Tile{}, false},
		{"tile/0/001.p/", tlog.Tile{}, false},
		{"tile/-1/000", tlog.Tile{}, false},
		{"tile/+1/000", tlog.Tile{}, false},
		{"tile/data/000", tlog.Tile{}, false},
		{"tile/8/0/000", tlog.Tile{}, false},
		{"tile/0/000/", tlog.Tile{}, false},
		{"tile//000", tlog.Tile{}, false},
		{"tile/entries/", tlog.Tile{}, false},
		{"tile/0/1000", tlog.Tile{}, false},
		{"tiles/0/000", tlog.Tile{}, false},
		{"", tlog.Tile{}, false},
	} {
		got, err := parseTilePath(tc.path)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseTilePath(%q) = %+v, %v; want %+v, ok %v", tc.path, got, err, tc.want, tc.ok)
		}
	}
}

// TestTileAvailable at the edges of levels and widths.
func TestTileAvailable(t *testing.T) {
	for _, tc := range []struct {
		tile tlog.Tile
		n    int64
		want bool
	}{
		{tlog.Tile{H: 8, L: 0, N: 0, W: 1}, 0, false},
		{tlog.Tile{H: 8, L: 0, N: 0, W: 1}, 1, true},
		{tlog.Tile{H: 8, L: -1, N: 0, W: 256}, 255, false},
		{tlog.Tile{H: 8, L: -1, N: 0, W: 256}, 256, true},
		{tlog.Tile{H: 8, L: 0, N: 1, W: 1}, 256, false},
		{tlog.Tile{H: 8, L: 0, N: 1, W: 1}, 257, true},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 1}, 255, false},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 1}, 256, true},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 2}, 511, false},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 2}, 512, true},
		{tlog.Tile{H: 8, L: 7, N: 0, W: 1}, 1 << 56, true},
		{tlog.Tile{H: 8, L: 8, N: 0, W: 1}, 1<<63 - 1, false},
		{tlog.Tile{H: 8, L: 0, N: 1 << 60, W: 1}, 1<<63 - 1, false},
		{tlog.Tile{H: 8, L: 0, N: -1, W: 1}, 1 << 20, false},
		{tlog.Tile{H: 8, L: 0, N: 0, W: 0}, 1 << 20, false},
		{tlog.Tile{H: 8, L: 0, N: 0, W: 257}, 1 << 20, false},
	} {
		if got := tileAvailable(tc.tile, tc.n); got != tc.want {
			t.Errorf("tileAvailable(%+v, %d) = %v, want %v", tc.tile, tc.n, got, tc.want)
		}
	}
}

// TestSplitEventRequest at the size edges of each part.
func TestSplitEventRequest(t *testing.T) {
	req := func(entry, body int) []byte {
		b, err := torchwood.AppendTileEntry(nil, bytes.Repeat([]byte{'e'}, entry))
		if err != nil {
			b = []byte{0xff, 0xff}
		}
		return append(b, bytes.Repeat([]byte{'b'}, body)...)
	}
	for _, tc := range []struct {
		name string
		req  []byte
		ok   bool
	}{
		{"smallest", req(1, 1), true},
		{"entry_1024", req(audit.MaxEventSize, 1), true},
		{"entry_1025", req(audit.MaxEventSize+1, 1), false},
		{"entry_0", req(0, 1), false},
		{"body_0", req(10, 0), false},
		{"body_max", req(10, audit.MaxSealedBodySize), true},
		{"body_max_plus_1", req(10, audit.MaxSealedBodySize+1), false},
		{"empty", nil, false},
		{"one_byte", []byte{0}, false},
		{"length_past_end", []byte{0, 5, 'a', 'b'}, false},
	} {
		entry, body, err := splitEventRequest(tc.req)
		if (err == nil) != tc.ok {
			t.Errorf("%s: splitEventRequest() = %v, want ok %v", tc.name, err, tc.ok)
			continue
		}
		if tc.ok {
			if back, _ := torchwood.AppendTileEntry(nil, entry); !bytes.Equal(append(back, body...), tc.req) {
				t.Errorf("%s: parts do not make the request again", tc.name)
			}
		}
	}
}

// TestParseIndex: canonical decimal only.
func TestParseIndex(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "7": 7, "9223372036854775807": 1<<63 - 1} {
		if got, err := parseIndex(s); err != nil || got != want {
			t.Errorf("parseIndex(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-1", "+1", "01", "00", "1.0", "1e3", " 1", "1 ", "9223372036854775808", "0x1", "١"} {
		if _, err := parseIndex(s); err == nil {
			t.Errorf("parseIndex(%q) = nil error", s)
		}
	}
}

// TestOpenCheckpoint: the pinned and stored checkpoints are read back in
// their one encoding, signed once by the log key, with the key's name as
// origin.
func TestOpenCheckpoint(t *testing.T) {
	key := newSignerKey(t, crypto.LogKeyHeader, "log.test")
	v, _ := note.NewVerifier(key.Verifier)
	tree := tlog.Tree{N: 5, Hash: tlog.RecordHash([]byte("x"))}
	good, err := signCheckpoint(key.Signer, tree)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openCheckpoint(good, v); err != nil || got != tree {
		t.Fatalf("openCheckpoint(good) = %v, %v", got, err)
	}
	other := newSignerKey(t, crypto.LogKeyHeader, "log.test")
	sign := func(text string, ks ...*crypto.SignerKey) []byte {
		var ss []note.Signer
		for _, k := range ks {
			ss = append(ss, k.Signer)
		}
		b, err := note.Sign(&note.Note{Text: text}, ss...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	text := fmt.Sprintf("log.test\n5\n%s\n", tree.Hash)
	sig := good[len(text):]
	for name, msg := range map[string][]byte{
		"other_key":        sign(text, other),
		"two_signatures":   sign(text, key, other),
		"other_origin":     sign(fmt.Sprintf("log.other\n5\n%s\n", tree.Hash), key),
		"extension":        sign(text+"ext\n", key),
		"size_leading_0":   sign(fmt.Sprintf("log.test\n05\n%s\n", tree.Hash), key),
		"hash_unpadded":    sign(fmt.Sprintf("log.test\n5\n%s\n", strings.TrimRight(tree.Hash.String(), "=")), key),
		"signature_twice":  append(bytes.Clone(good), sig[1:]...),
		"trailing_newline": append(bytes.Clone(good), '\n'),
		"changed_byte":     append(append([]byte{}, good[:len(good)-6]...), 'A', 'A', 'A', 'A', '=', '\n'),
		"empty":            nil,
		"too_large":        append(sign(text, key), make([]byte, audit.MaxCheckpointSize)...),
	} {
		if _, err := openCheckpoint(msg, v); err == nil {
			t.Errorf("openCheckpoint(%s) = nil error", name)
		}
	}
}

// FuzzEventRequest: a request splits only into parts that make it again.
func FuzzEventRequest(f *testing.F) {
	f.Add([]byte{0, 1, 'e', 'b'})
	f.Add([]byte{0, 0, 'b'})
	f.Add([]byte{4, 1, 'e'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		entry, body, err := splitEventRequest(b)
		if err != nil {
			return
		}
		back, err := torchwood.AppendTileEntry(nil, entry)
		if err != nil || !bytes.Equal(append(back, body...), b) {
			t.Errorf("splitEventRequest(%x) parts do not make it again", b)
		}
		if len(entry) < 1 || len(entry) > audit.MaxEventSize || len(body) < 1 {
			t.Errorf("splitEventRequest(%x) accepted an entry of %d, body of %d", b, len(entry), len(body))
		}
	})
}

// FuzzTilePath: an accepted path is the one spelling of its tile.
func FuzzTilePath(f *testing.F) {
	for _, s := range []string{"tile/0/000", "tile/entries/x001/234.p/5", "tile/3/x999/x999/999", "tile/0/000.p/0", "tile/data/000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		tile, err := parseTilePath(path)
		if err != nil {
			return
		}
		if torchwood.TilePath(tile) != path || tile.H != 8 || tile.W < 1 || tile.W > 256 {
			t.Errorf("parseTilePath(%q) = %+v", path, tile)
		}
		// Available in a tree of size n exactly when tlog lists a tile of
		// that level and number at least as wide.
		for _, n := range []int64{0, 1, 255, 256, 257, 65535, 65536, 65536 + 300} {
			want := false
			for _, lt := range tlog.NewTiles(8, 0, n) {
				if lt.L == max(tile.L, 0) && lt.N == tile.N && lt.W >= tile.W {
					want = true
				}
			}
			if got := tileAvailable(tile, n); got != want {
				t.Errorf("tileAvailable(%+v, %d) = %v, want %v", tile, n, got, want)
			}
		}
	})
}

// FuzzOpenCheckpoint: an accepted checkpoint is exactly what signing its
// tree gives (Ed25519 signatures are deterministic).
func FuzzOpenCheckpoint(f *testing.F) {
	key, err := crypto.ParseSignerKey(crypto.LogKeyHeader, []byte(docLogKey))
	if err != nil {
		f.Fatal(err)
	}
	v, _ := note.NewVerifier(key.Verifier)
	for _, n := range []int64{0, 1, 1 << 40} {
		msg, err := signCheckpoint(key.Signer, tlog.Tree{N: n, Hash: tlog.RecordHash([]byte{byte(n)})})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		tree, err := openCheckpoint(msg, v)
		if err != nil {
			return
		}
		again, err := signCheckpoint(key.Signer, tree)
		if err != nil || !bytes.Equal(again, msg) {
			t.Errorf("openCheckpoint(%q) accepted another spelling of %v", msg, tree)
		}
	})
}

// docLogKey is formats.md's example log key, whose secret half is public.
const docLogKey = "fieldtip/log-key/v1\nsign PRIVATE+KEY+log.example+974b4a5f+AWppr8Ief/B0QlkqpgCPEt3hWBW7gaXNROSdz8XkyX7V\n"

// TestLogDoc regenerates the worked example of docs/log.md, "Worked
// example", and compares it with the page byte for byte.
func TestLogDoc(t *testing.T) {
	key, err := crypto.ParseSignerKey(crypto.LogKeyHeader, []byte(docLogKey))
	if err != nil {
		t.Fatal(err)
	}
	entries := [][]byte{[]byte("entry zero\n"), []byte("entry one\n"), []byte("entry two\n")}
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, hr)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	n := int64(len(entries))
	root, _ := tlog.TreeHash(n, hr)
	signed, err := signCheckpoint(key.Signer, tlog.Tree{N: n, Hash: root})
	if err != nil {
		t.Fatal(err)
	}
	var bundle []byte
	for _, e := range entries {
		bundle, _ = torchwood.AppendTileEntry(bundle, e)
	}
	hashTile, _ := tlog.ReadTileData(tlog.Tile{H: 8, L: 0, N: 0, W: 3}, hr)
	p, _ := tlog.ProveRecord(n, 2, hr)
	ack := torchwood.FormatProof(2, p, signed)

	var out strings.Builder
	fmt.Fprintf(&out, "GET /checkpoint\n%s\n", signed)
	fmt.Fprintf(&out, "GET /tile/entries/000.p/3 (%d bytes, hex)\n%x\n\n", len(bundle), bundle)
	fmt.Fprintf(&out, "GET /tile/0/000.p/3 (%d bytes: 3 record hashes, hex)\n", len(hashTile))
	for i := 0; i < len(hashTile); i += 32 {
		fmt.Fprintf(&out, "%x\n", hashTile[i:i+32])
	}
	fmt.Fprintf(&out, "\nthe answer to POST /event, for entry 2\n%s", ack)
	if got := docBlock(t, "example of TestLogDoc"); got != out.String() {
		t.Errorf("docs/log.md worked example differs; it should read:\n%s", out.String())
	}
}

// docBlock returns the fenced block of docs/log.md after the marker
// comment <!-- name -->.
func docBlock(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "log.md"))
	if err != nil {
		tb.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- "+name+" -->\n```text\n")
	if !ok {
		tb.Fatalf("docs/log.md has no block %q", name)
	}
	block, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		tb.Fatalf("docs/log.md block %q is not closed", name)
	}
	return block
}

// BenchmarkEditorialWrite measures editorial writes acknowledged with
// their proof, from many editors' requests at once over HTTP on loopback
// (http_proof), against plain storage appends of one entry per
// transaction, one at a time, in the same run (storage_append).
func BenchmarkEditorialWrite(b *testing.B) {
	b.Run("http_proof", func(b *testing.B) {
		h := newLogHarness(b, 1)
		h.logger = slog.New(slog.DiscardHandler)
		var commits, requests int // written by the one committer
		r := h.start(func(s *Server) {
			s.elog().testOnlyBeforeCommit = func(n int) { commits++; requests += n }
		})
		token := r.login(b, h.editors[0])
		tree, _ := r.checkpoint(b)
		// One body for all: events differ by their id.
		base := newEvent(b, h.editors[0], h.bundle, tree, nil)
		signer, _ := h.editors[0].Signer()
		events := make(chan []byte, b.N)
		for range b.N {
			ev := *base.ev
			rand.Read(ev.ID[:])
			entry, err := audit.SignEvent(&ev, signer)
			if err != nil {
				b.Fatal(err)
			}
			events <- (&testEvent{entry: entry, body: base.body}).request()
		}
		close(events)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: failAfter}
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				hr, _ := http.NewRequest(http.MethodPost, r.origin+protocol.PathEvent, bytes.NewReader(<-events))
				hr.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(hr)
				if err != nil {
					b.Error(err)
					return
				}
				ack, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(ack, []byte("c2sp.org/tlog-proof@v1\n")) {
					b.Errorf("POST /event: %s %s", resp.Status, ack)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.StopTimer()
		r.stop()
		b.ReportMetric(float64(requests)/float64(commits), "events/commit")
	})
	b.Run("storage_append", func(b *testing.B) {
		h := newLogHarness(b, 1)
		h.logger = slog.New(slog.DiscardHandler)
		s, st, err := h.newServer()
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		l := s.elog()
		tree, _ := r0(s)
		e := newEvent(b, h.editors[0], h.bundle, tree, nil)
		var mu sync.Mutex
		at := tree.N
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mu.Lock()
				_, _, err := st.AppendEntries(context.Background(), at, []storage.LogEntry{{Data: e.entry}}, func(t tlog.Tree) ([]byte, error) {
					return signCheckpoint(l.key, t)
				})
				at++
				mu.Unlock()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		b.StopTimer()
	})
}

// r0 returns a server's published tree.
func r0(s *Server) (tlog.Tree, []byte) {
	h := s.elog().head.Load()
	return h.tree, h.signed
}

// BenchmarkOpenLog measures the start-up check (every entry's stored
// hashes and the tree hash recomputed, the stored checkpoint verified)
// over a log of 100,000 entries of 600 bytes.
func BenchmarkOpenLog(b *testing.B) {
	h := newLogHarness(b, 1)
	h.logger = slog.New(slog.DiscardHandler)
	s, st, err := h.newServer()
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	l := s.elog()
	const n = 100_000
	at := l.size
	for at < n {
		batch := make([]storage.LogEntry, min(storage.MaxAppend, n-at))
		for i := range batch {
			e := bytes.Repeat([]byte{'x'}, 600)
			copy(e, fmt.Sprintf("%s\nentry %d\n", audit.PoWSeedHeader, at+int64(i)))
			batch[i] = storage.LogEntry{Data: e}
		}
		tree, _, err := st.AppendEntries(ctx, at, batch, func(t tlog.Tree) ([]byte, error) { return signCheckpoint(l.key, t) })
		if err != nil {
			b.Fatal(err)
		}
		at = tree.N
	}
	b.ResetTimer()
	for b.Loop() {
		sc, err := scanLog(ctx, st, l.verifier)
		if err != nil || sc.size != n {
			b.Fatalf("scanLog() = %v", err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
