package newsdesk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/sourcekit"
	"fieldtip/protocol"
	"fieldtip/server"

	"filippo.io/torchwood"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The tests of this file, receipts_test.go and auditverify_test.go run a
// real server (SQLite file, log key, loopback TCP) behind logDesk's proxy,
// which relays faithfully unless a test makes it lie.

// logClock is a server clock a test moves: real time plus an offset.
type logClock struct{ offset atomic.Int64 }

// newNoonClock returns a clock at noon UTC today, so that moving it by
// whole days never lands near midnight, and never crosses a proof-of-work
// epoch within the day (epochs are whole days since 1970).
func newNoonClock() *logClock {
	now := time.Now().UTC()
	c := &logClock{}
	c.offset.Store(int64(time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, time.UTC).Sub(now)))
	return c
}

func (c *logClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *logClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// logDesk is a desk whose server runs on a clock the test moves, in a data
// directory the test knows, behind a proxy (url, the server's origin) that
// relays faithfully unless intercept answers a request itself.
type logDesk struct {
	*desk
	url     string
	dataDir string
	clock   *logClock
	// intercept, if set, answers requests instead of the server when it
	// returns true.
	intercept atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
	// relayed, if set, sees every relayed answer's request and body, and
	// returns the body to pass on.
	relayed atomic.Pointer[func(r *http.Request, body []byte) []byte]
}

// newLogDesk starts a server with the bundle bundleFor returns (nil: nk's
// bundle of version 1), configured by config (may be nil), behind a proxy.
func newLogDesk(t *testing.T, nk *testNewsroom, bundleFor func(logKey string) []byte, config func(*server.Config)) *logDesk {
	t.Helper()
	if bundleFor == nil {
		bundleFor = func(log string) []byte { return nk.bundle(t, 1, log) }
	}
	d := &logDesk{clock: newNoonClock()}
	var target atomic.Pointer[url.URL]
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target.Load()) },
		ModifyResponse: func(resp *http.Response) error {
			f := d.relayed.Load()
			if f == nil {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			b = (*f)(resp.Request, b)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := d.intercept.Load(); f != nil && (*f)(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	d.url = proxy.URL
	srv := startServer(t, bundleFor, serverOptions{Config: func(c *server.Config) {
		c.Origin = proxy.URL
		c.Now = d.clock.now
		d.dataDir = c.DataDir
		if config != nil {
			config(c)
		}
	}})
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	target.Store(u)
	src := sourcekit.New(t, srv.URL, nk.key.Verifier, sourcekit.Options{})
	d.desk = &desk{nk: nk, srv: srv, src: src, cache: &Cache{Dir: filepath.Join(t.TempDir(), "cache")}}
	return d
}

// answer makes the proxy answer GET path with body; nil relays again.
func (d *logDesk) answer(path string, body []byte) {
	if body == nil {
		d.intercept.Store(nil)
		return
	}
	f := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != path {
			return false
		}
		w.Write(body)
		return true
	}
	d.intercept.Store(&f)
}

// replica is the editor's replica directory.
func (d *logDesk) replica() string { return filepath.Join(d.cache.Dir, "log") }

// get fetches a path from the server itself, and fails t unless it
// answers 200.
func (d *logDesk) get(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Get(d.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v %s", path, resp.Status, err, b)
	}
	return b
}

// execDB runs one statement on the server's SQLite file, behind the
// server's back, and fails t unless it changed exactly one row.
func (d *logDesk) execDB(t *testing.T, q string, args ...any) {
	t.Helper()
	db := d.openDB(t)
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s: %d rows changed, want 1", q, n)
	}
}

func (d *logDesk) openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(d.dataDir, "fieldtip.db")+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// replicaFiles returns every file under dir and its bytes.
func replicaFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signLogCheckpoint signs a checkpoint of tree with the log key, exactly as the
// server does (server/log.go, signCheckpoint).
func signLogCheckpoint(t testing.TB, key *crypto.SignerKey, tree tlog.Tree) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: torchwood.Checkpoint{Origin: key.Signer.Name(), Tree: tree}.String()}, key.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// memTileLog is a log held in memory: entries and their stored hashes.
type memTileLog struct {
	entries [][]byte
	hashes  []tlog.Hash
}

func (l *memTileLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, errors.New("no such stored hash")
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *memTileLog) append(t testing.TB, e []byte) {
	t.Helper()
	h, err := tlog.StoredHashes(int64(len(l.entries)), e, l)
	if err != nil {
		t.Fatal(err)
	}
	l.entries, l.hashes = append(l.entries, e), append(l.hashes, h...)
}

func (l *memTileLog) tree(t testing.TB) tlog.Tree { return l.treeAt(t, int64(len(l.entries))) }

// treeAt returns the tree of the first n entries.
func (l *memTileLog) treeAt(t testing.TB, n int64) tlog.Tree {
	t.Helper()
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		t.Fatal(err)
	}
	return tlog.Tree{N: n, Hash: h}
}

// serveTiles answers a tile path of the tree of l's size: hash tiles and
// entry bundles.
func (l *memTileLog) serveTiles(w http.ResponseWriter, r *http.Request) bool {
	tile, err := torchwood.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil {
		return false
	}
	var data []byte
	if tile.L == -1 {
		for i := tile.N * torchwood.TileWidth; i < tile.N*torchwood.TileWidth+int64(tile.W); i++ {
			if i >= int64(len(l.entries)) {
				http.NotFound(w, r)
				return true
			}
			data, _ = torchwood.AppendTileEntry(data, l.entries[i])
		}
	} else if data, err = tlog.ReadTileData(tile, l); err != nil {
		http.NotFound(w, r)
		return true
	}
	w.Write(data)
	return true
}

// TestSyncLogFork: a server showing a second checkpoint no append-only log
// can have is caught by SyncLog and AuditVerify with a *ForkError carrying
// both signed checkpoints verbatim (each verifies with the log key); a
// smaller checkpoint is ErrLogRollback. None of them changes the replica
// or gets cosigned, and the honest server syncs again afterwards.
func TestSyncLogFork(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	opts := SyncOptions{Newsroom: nk.key.Verifier}
	tip := d.send(t, &crypto.Tip{Text: "convoy at the border"}).TipIDString()
	if _, err := d.cache.Note(ctx, d.url, nk.editor, tip, "first", opts); err != nil {
		t.Fatal(err)
	}
	v1, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.cache.Note(ctx, d.url, nk.editor, tip, "second", opts); err != nil {
		t.Fatal(err)
	}
	v, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}
	if v.Tree.N <= v1.Tree.N {
		t.Fatalf("log did not grow: %d then %d", v1.Tree.N, v.Tree.N)
	}
	audit := filepath.Join(t.TempDir(), "audit")
	if _, err := AuditVerify(ctx, d.url, audit, AuditOptions{Newsroom: nk.key.Verifier}); err != nil {
		t.Fatal(err)
	}
	replicaBefore, auditBefore := replicaFiles(t, d.replica()), replicaFiles(t, audit)
	cosignedBefore := d.get(t, protocol.PathCosigned)
	logV, err := note.NewVerifier(d.srv.LogKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	policy := torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(logV.Name()), torchwood.SingleVerifierPolicy(logV))

	// A fork: the first N−1 entries, another entry N−1, and three more.
	forked := &memTileLog{}
	for _, e := range v.Entries[:v.Tree.N-1] {
		forked.append(t, e)
	}
	for _, e := range []string{"another history", "more", "and more", "and more still"} {
		forked.append(t, []byte(e))
	}
	forkedTree := forked.tree(t)
	forkedSigned := signLogCheckpoint(t, d.srv.LogKey, forkedTree)

	otherRoot := tlog.Hash(sha256.Sum256([]byte("another root")))
	sameSize := signLogCheckpoint(t, d.srv.LogKey, tlog.Tree{N: v.Tree.N, Hash: otherRoot})
	for _, tc := range []struct {
		name      string
		intercept func(w http.ResponseWriter, r *http.Request) bool
		served    []byte
		fork      string // the ForkError's reason; "" for ErrLogRollback
	}{
		{"second_root_same_size", nil, sameSize, "two different roots for size " + strconv.FormatInt(v.Tree.N, 10)},
		{"bigger_tree_not_extending", forked.serveTiles, forkedSigned,
			"the tree of size " + strconv.FormatInt(forkedTree.N, 10) + " does not extend the tree of size " + strconv.FormatInt(v.Tree.N, 10) + " verified before"},
		{"rollback_to_older_checkpoint", nil, v1.Signed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodGet && r.URL.Path == protocol.PathCheckpoint {
					w.Write(tc.served)
					return true
				}
				return tc.intercept != nil && tc.intercept(w, r)
			}
			d.intercept.Store(&f)
			defer d.intercept.Store(nil)
			_, errSync := d.cache.SyncLog(ctx, d.url, nk.editor, opts)
			_, errAudit := AuditVerify(ctx, d.url, audit, AuditOptions{Newsroom: nk.key.Verifier})
			for who, err := range map[string]error{"SyncLog": errSync, "AuditVerify": errAudit} {
				if tc.fork == "" {
					if !errors.Is(err, ErrLogRollback) {
						t.Errorf("%s = %v, want ErrLogRollback", who, err)
					}
					continue
				}
				var fe *ForkError
				if !errors.As(err, &fe) {
					t.Errorf("%s = %v, want a *ForkError", who, err)
					continue
				}
				if fe.Reason != tc.fork {
					t.Errorf("%s: reason %q, want %q", who, fe.Reason, tc.fork)
				}
				if !bytes.Equal(fe.Stored, v.Signed) || !bytes.Equal(fe.Served, tc.served) {
					t.Errorf("%s: evidence is not the stored and the served checkpoints:\n%s\n%s", who, fe.Stored, fe.Served)
				}
				for _, cp := range [][]byte{fe.Stored, fe.Served} {
					if _, _, err := torchwood.VerifyCheckpoint(cp, policy); err != nil {
						t.Errorf("%s: evidence does not verify with the log key: %v", who, err)
					}
					if !strings.Contains(err.Error(), string(cp)) {
						t.Errorf("%s: message lacks the checkpoint verbatim:\n%s", who, err)
					}
				}
			}
			if got := replicaFiles(t, d.replica()); !maps.Equal(got, replicaBefore) {
				t.Error("the editor's replica changed")
			}
			if got := replicaFiles(t, audit); !maps.Equal(got, auditBefore) {
				t.Error("the auditor's state changed")
			}
			if got := d.get(t, protocol.PathCosigned); !bytes.Equal(got, cosignedBefore) {
				t.Errorf("cosigned list changed to %q", got)
			}
		})
	}

	// A bigger checkpoint whose root no tile of the server matches: not
	// proven a fork (the server may have lost its tiles), but refused,
	// and nothing is stored.
	t.Run("bigger_tree_without_tiles", func(t *testing.T) {
		d.answer(protocol.PathCheckpoint, signLogCheckpoint(t, d.srv.LogKey, tlog.Tree{N: v.Tree.N + 1, Hash: otherRoot}))
		defer d.answer("", nil)
		if _, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts); err == nil {
			t.Error("SyncLog accepted a checkpoint its tiles do not prove")
		}
		if got := replicaFiles(t, d.replica()); !maps.Equal(got, replicaBefore) {
			t.Error("the editor's replica changed")
		}
	})

	if _, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts); err != nil {
		t.Errorf("SyncLog with the honest server again: %v", err)
	}
	if _, err := AuditVerify(ctx, d.url, audit, AuditOptions{Newsroom: nk.key.Verifier}); err != nil {
		t.Errorf("AuditVerify with the honest server again: %v", err)
	}
}

// bundleAliceBob returns a bundle function for nk's editor (alice) and bob.
func bundleAliceBob(t *testing.T, nk *testNewsroom, bob *crypto.EditorKey) func(string) []byte {
	return func(log string) []byte {
		b := &crypto.Bundle{
			Newsroom: nk.key.Verifier, Version: 1, Expires: time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second),
			Log: log, Policy: crypto.DefaultPolicy, Editors: []crypto.Editor{nk.editor.Public, bob.Public},
		}
		msg, err := crypto.SignBundle(b, nk.key.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
}

// TestCosignatures: each editor's sync leaves its cosignature on the
// server, which lists it; AuditVerify requires as many cosigners as asked,
// and refuses cosignatures of a checkpoint that is not of the log it
// verified, and a malformed list.
func TestCosignatures(t *testing.T) {
	nk := newTestNewsroom(t, true)
	bob, err := crypto.GenerateEditorKey("bob", true)
	if err != nil {
		t.Fatal(err)
	}
	d := newLogDesk(t, nk, bundleAliceBob(t, nk, bob), nil)
	ctx := context.Background()
	opts := SyncOptions{Newsroom: nk.key.Verifier}
	tip := d.send(t, &crypto.Tip{Text: "a tip"}).TipIDString()
	if _, err := d.cache.Note(ctx, d.url, nk.editor, tip, "a note", SyncOptions{Newsroom: nk.key.Verifier, NoCosign: true}); err != nil {
		t.Fatal(err)
	}
	// With NoCosign, a sync (and a write) verifies and does not cosign.
	quiet, err := d.cache.SyncLog(ctx, d.url, nk.editor, SyncOptions{Newsroom: nk.key.Verifier, NoCosign: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(d.get(t, protocol.PathCosigned)); strings.HasPrefix(got, strconv.FormatInt(quiet.Tree.N, 10)+" ") {
		t.Fatalf("GET /cosigned = %q after a sync with NoCosign of size %d", got, quiet.Tree.N)
	}
	v, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}
	size := strconv.FormatInt(v.Tree.N, 10)
	if got := string(d.get(t, protocol.PathCosigned)); !strings.HasPrefix(got, size+" 1\n") {
		t.Fatalf("GET /cosigned = %q, want %s cosigned by one editor first", got, size)
	}
	// The served checkpoint carries alice's cosignature, over the very
	// checkpoint she verified.
	cosigned := d.get(t, protocol.PathCosigned+"/"+size)
	logV, err := note.NewVerifier(d.srv.LogKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	aliceV, err := crypto.CosignatureVerifier(nk.editor.Public.Cosign)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(cosigned, note.VerifierList(logV, aliceV))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("GET /cosigned/%s does not verify with the log key and alice's cosigning key: %v\n%s", size, err, cosigned)
	}
	if text, _, _ := bytes.Cut(v.Signed, []byte("\n\n")); n.Text != string(text)+"\n" {
		t.Errorf("cosigned text %q, want the checkpoint alice verified", n.Text)
	}

	auditor := func(n int) (*AuditReport, error) {
		return AuditVerify(ctx, d.url, filepath.Join(t.TempDir(), "audit"), AuditOptions{Newsroom: nk.key.Verifier, Cosigners: n})
	}
	rep, err := auditor(1)
	if err != nil || rep.Cosigned != v.Tree || !slices.Equal(rep.Cosigners, []string{"alice"}) {
		t.Errorf("AuditVerify(--cosigners 1) = %+v, %v; want alice over %d", rep, err, v.Tree.N)
	}
	if _, err := auditor(2); !errors.Is(err, ErrTooFewCosigners) {
		t.Errorf("AuditVerify(--cosigners 2) with only alice = %v, want ErrTooFewCosigners", err)
	}

	bobCache := &Cache{Dir: filepath.Join(t.TempDir(), "bob")}
	if vb, err := bobCache.SyncLog(ctx, d.url, bob, opts); err != nil || vb.Tree != v.Tree {
		t.Fatalf("bob's SyncLog = %v; want the tree alice cosigned", err)
	}
	if got := string(d.get(t, protocol.PathCosigned)); !strings.HasPrefix(got, size+" 2\n") {
		t.Errorf("GET /cosigned = %q, want %s cosigned by two", got, size)
	}
	rep, err = auditor(2)
	if err != nil || rep.Cosigned != v.Tree || !slices.Equal(rep.Cosigners, []string{"alice", "bob"}) {
		t.Errorf("AuditVerify(--cosigners 2) = %+v, %v; want alice and bob", rep, err)
	}
	if _, err := auditor(3); !errors.Is(err, ErrTooFewCosigners) {
		t.Errorf("AuditVerify(--cosigners 3) = %v, want ErrTooFewCosigners", err)
	}

	// A server that lies about the cosignatures.
	forged := signLogCheckpoint(t, d.srv.LogKey, tlog.Tree{N: v.Tree.N, Hash: tlog.Hash(sha256.Sum256([]byte("fork")))})
	aliceLine, err := cosignatureLine(forged, nk.editor)
	if err != nil {
		t.Fatal(err)
	}
	onlyAlice := append(bytes.Clone(v.Signed), mustCosignLine(t, v.Signed, nk.editor)...)
	for _, tc := range []struct {
		name, path string
		body       []byte
		want       error // nil: any error
	}{
		// alice really cosigned that checkpoint, but of another tree.
		{"cosigned_fork", protocol.PathCosigned + "/" + size, append(bytes.Clone(forged), aliceLine...), nil},
		{"count_inflated", protocol.PathCosigned + "/" + size, onlyAlice, ErrTooFewCosigners},
		{"list_malformed", protocol.PathCosigned, []byte(size + "  2\n"), nil},
		{"list_not_largest_first", protocol.PathCosigned, []byte("1 2\n" + size + " 2\n"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.answer(tc.path, tc.body)
			defer d.answer("", nil)
			_, err := auditor(2)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("AuditVerify(--cosigners 2) = %v, want an error (%v)", err, tc.want)
			}
		})
	}
}

func mustCosignLine(t *testing.T, signed []byte, key *crypto.EditorKey) []byte {
	t.Helper()
	line, err := cosignatureLine(signed, key)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// TestProofsCrossCheck: the log's proofs, as an editor gets them, verify
// with an independent RFC 6962 implementation (transparency-dev/merkle):
// a consistency proof between two checkpoints the editor verified, made
// by tlog.ProveTree over the server's tiles; the inclusion proof of the
// server's answer to POST /event; an inclusion proof by tlog.ProveRecord.
// Each fails once a byte changes.
func TestProofsCrossCheck(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	opts := SyncOptions{Newsroom: nk.key.Verifier}
	tip := d.send(t, &crypto.Tip{Text: "a tip"}).TipIDString()
	v1, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}
	var ack atomic.Pointer[[]byte]
	capture := func(r *http.Request, b []byte) []byte {
		if r.Method == http.MethodPost && r.URL.Path == protocol.PathEvent {
			ack.Store(&b)
		}
		return b
	}
	d.relayed.Store(&capture)
	index, err := d.cache.Note(ctx, d.url, nk.editor, tip, "a note", opts)
	d.relayed.Store(nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := d.cache.Note(ctx, d.url, nk.editor, tip, "more", opts); err != nil {
			t.Fatal(err)
		}
	}
	v2, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}
	mh := rfc6962.DefaultHasher
	tf, err := torchwood.NewTileFetcher(d.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	hr := torchwood.TileHashReaderWithContext(ctx, v2.Tree, tf)

	cp, err := tlog.ProveTree(v2.Tree.N, v1.Tree.N, hr)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(mh, uint64(v1.Tree.N), uint64(v2.Tree.N), merkleHashes(cp), v1.Tree.Hash[:], v2.Tree.Hash[:]); err != nil {
		t.Errorf("merkle refuses the consistency proof from %d to %d: %v", v1.Tree.N, v2.Tree.N, err)
	}
	bad := merkleHashes(cp)
	bad[0][0] ^= 1
	if proof.VerifyConsistency(mh, uint64(v1.Tree.N), uint64(v2.Tree.N), bad, v1.Tree.Hash[:], v2.Tree.Hash[:]) == nil {
		t.Error("merkle accepts a changed consistency proof")
	}

	// The acknowledgement of the note: a tlog-proof of its entry.
	if ack.Load() == nil {
		t.Fatal("no answer to POST /event seen")
	}
	ackIndex, path, ackTree := parseEventAck(t, *ack.Load())
	if ackIndex != index {
		t.Fatalf("acknowledgement names index %d, Note returned %d", ackIndex, index)
	}
	entry := v2.Entries[index]
	if err := proof.VerifyInclusion(mh, uint64(index), uint64(ackTree.N), mh.HashLeaf(entry), path, ackTree.Hash[:]); err != nil {
		t.Errorf("merkle refuses the acknowledgement of entry %d: %v", index, err)
	}
	if proof.VerifyInclusion(mh, uint64(index), uint64(ackTree.N), mh.HashLeaf(v2.Entries[0]), path, ackTree.Hash[:]) == nil {
		t.Error("merkle accepts the acknowledgement's proof for another entry")
	}

	// Every entry, proved by tlog.ProveRecord over the tiles.
	for i, e := range v2.Entries {
		rp, err := tlog.ProveRecord(v2.Tree.N, int64(i), hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(mh, uint64(i), uint64(v2.Tree.N), mh.HashLeaf(e), merkleHashes(rp), v2.Tree.Hash[:]); err != nil {
			t.Errorf("merkle refuses tlog's inclusion proof of entry %d: %v", i, err)
		}
		if i > 0 && proof.VerifyInclusion(mh, uint64(i-1), uint64(v2.Tree.N), mh.HashLeaf(e), merkleHashes(rp), v2.Tree.Hash[:]) == nil {
			t.Errorf("merkle accepts entry %d's proof at index %d", i, i-1)
		}
	}
}

func merkleHashes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = bytes.Clone(hs[i][:])
	}
	return out
}

// parseEventAck splits a tlog-proof (c2sp.org/tlog-proof@v1) as the server
// writes it: the index, the proof hashes, and the checkpoint's tree.
func parseEventAck(t *testing.T, ack []byte) (int64, [][]byte, tlog.Tree) {
	t.Helper()
	lines := strings.Split(string(ack), "\n")
	if len(lines) < 4 || lines[0] != "c2sp.org/tlog-proof@v1" || !strings.HasPrefix(lines[1], "index ") {
		t.Fatalf("acknowledgement is not a tlog-proof:\n%s", ack)
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "index "), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var path [][]byte
	i := 2
	for ; i < len(lines) && lines[i] != ""; i++ {
		h, err := tlog.ParseHash(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		path = append(path, h[:])
	}
	// The checkpoint's text, then a blank line and its signature.
	text, _, _ := strings.Cut(strings.Join(lines[i+1:], "\n"), "\n\n")
	c, err := torchwood.ParseCheckpoint(text + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return index, path, c.Tree
}
