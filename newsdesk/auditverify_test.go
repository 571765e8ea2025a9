package newsdesk

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/protocol"
	"fieldtip/server"
	"fieldtip/storage"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// wantEntryError checks that err names entry index.
func wantEntryError(t *testing.T, who string, err error, index int64) {
	t.Helper()
	if err == nil {
		t.Errorf("%s = nil, want an error naming entry %d", who, index)
		return
	}
	if !regexp.MustCompile(`\bentry ` + strconv.FormatInt(index, 10) + `\b`).MatchString(err.Error()) {
		t.Errorf("%s = %v; want it to name entry %d", who, err, index)
	}
}

// tamperEntry changes one byte of a stored entry in the server's SQLite
// file, behind its back, and returns a function that puts it back.
func (d *logDesk) tamperEntry(t *testing.T, index int64) (restore func()) {
	t.Helper()
	db := d.openDB(t)
	var data []byte
	if err := db.QueryRow(`SELECT data FROM log_entries WHERE idx = ?`, index).Scan(&data); err != nil {
		t.Fatal(err)
	}
	changed := append([]byte(nil), data...)
	changed[len(changed)/2] ^= 0x01
	d.execDB(t, `UPDATE log_entries SET data = ? WHERE idx = ?`, changed, index)
	return func() { d.execDB(t, `UPDATE log_entries SET data = ? WHERE idx = ?`, data, index) }
}

// TestAuditVerifyTamperedEntry: a byte of a stored entry changed in the
// server's database is caught, naming the entry, by an auditor with state
// from before (an entry it verified before, served again with the tile of
// new ones, and an entry it has not seen), by a fresh auditor, and by an
// editor's sync. The auditor's state does not move; with the byte put
// back, the log verifies again.
func TestAuditVerifyTamperedEntry(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	opts := SyncOptions{Newsroom: nk.key.Verifier}
	tip := d.send(t, &crypto.Tip{Text: "a tip"}).TipIDString()
	seen, err := d.cache.Note(ctx, d.url, nk.editor, tip, "seen by the auditor", opts)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "audit")
	rep, err := AuditVerify(ctx, d.url, state, AuditOptions{Newsroom: nk.key.Verifier})
	if err != nil {
		t.Fatal(err)
	}
	before := replicaFiles(t, state)
	unseen, err := d.cache.Note(ctx, d.url, nk.editor, tip, "not seen by the auditor", opts)
	if err != nil {
		t.Fatal(err)
	}
	if seen >= rep.Tree.N || unseen < rep.Tree.N {
		t.Fatalf("events at %d and %d, auditor's state at %d", seen, unseen, rep.Tree.N)
	}
	for _, index := range []int64{seen, unseen, 0} {
		t.Run(fmt.Sprintf("entry_%d", index), func(t *testing.T) {
			restore := d.tamperEntry(t, index)
			_, err := AuditVerify(ctx, d.url, state, AuditOptions{Newsroom: nk.key.Verifier})
			wantEntryError(t, "AuditVerify with state", err, index)
			_, err = AuditVerify(ctx, d.url, filepath.Join(t.TempDir(), "fresh"), AuditOptions{Newsroom: nk.key.Verifier})
			wantEntryError(t, "AuditVerify fresh", err, index)
			fresh := &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
			_, err = fresh.SyncLog(ctx, d.url, nk.editor, opts)
			wantEntryError(t, "SyncLog of a fresh cache", err, index)
			restore()
			if got := replicaFiles(t, state); len(got) != len(before) || got[filepath.Join(state, replicaCheckpoint)] != before[filepath.Join(state, replicaCheckpoint)] {
				t.Error("a failed audit changed the auditor's state")
			}
		})
	}
	if _, err := AuditVerify(ctx, d.url, state, AuditOptions{Newsroom: nk.key.Verifier}); err != nil {
		t.Errorf("AuditVerify with the entries put back: %v", err)
	}
}

// startServerAt runs a server over an existing data directory (its
// database, log key, pinned checkpoint and bundle.txt), as fieldtipd
// --data DIR would, and returns its URL.
func startServerAt(t *testing.T, dir string) (string, error) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(fieldtiptest.LogWriter{T: t}, nil))
	store, err := storage.Open(filepath.Join(dir, "fieldtip.db"), storage.Options{Logger: logger})
	if err != nil {
		return "", err
	}
	logKey, err := server.LoadOrCreateLogKey(dir)
	if err != nil {
		store.Close()
		return "", err
	}
	cfg := server.Config{DataDir: dir, Listen: "127.0.0.1:0", BundleFile: filepath.Join(dir, "bundle.txt"), Logger: logger, PoWParams: fieldtiptest.CheapPoW}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg, store, logKey)
	if err == nil {
		var l *server.Listeners
		if l, err = s.Bind(); err == nil {
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx, l) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
				store.Close()
			})
			return "http://" + l.Main.Addr().String(), nil
		}
	}
	cancel()
	store.Close()
	return "", err
}

// TestRecoverFromReplica: a server whose database was restored from an
// older copy refuses to start; server.RecoverLog rebuilds it from the
// editor's replica (the directory SyncLog keeps), bodies included; the
// editor's replica and the recovered log are one log, which grows on.
func TestRecoverFromReplica(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	opts := SyncOptions{Newsroom: nk.key.Verifier}
	rc := d.send(t, &crypto.Tip{Text: "a tip"})
	tip := rc.TipIDString()
	for i := range 2 {
		if _, err := d.cache.Note(ctx, d.url, nk.editor, tip, fmt.Sprintf("before the backup %d", i), opts); err != nil {
			t.Fatal(err)
		}
	}
	backup := filepath.Join(t.TempDir(), "fieldtip.db")
	if _, err := d.openDB(t).Exec(`VACUUM INTO ?`, backup); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := d.cache.Note(ctx, d.url, nk.editor, tip, fmt.Sprintf("after the backup %d", i), opts); err != nil {
			t.Fatal(err)
		}
	}
	v, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}

	// The data directory restored: the old database beside the current
	// log key, pin and bundle.
	restored := t.TempDir()
	for _, name := range []string{server.LogKeyFile, server.CheckpointFile, "bundle.txt"} {
		copyDataFile(t, filepath.Join(d.dataDir, name), filepath.Join(restored, name))
	}
	copyDataFile(t, backup, filepath.Join(restored, "fieldtip.db"))
	if _, err := startServerAt(t, restored); !errors.Is(err, server.ErrLogBehind) {
		t.Fatalf("server over the restored copy: %v, want ErrLogBehind", err)
	}

	replica, err := server.OpenReplica(d.replica())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := server.RecoverLog(ctx, restored, replica)
	if err != nil {
		t.Fatalf("RecoverLog from the editor's replica: %v", err)
	}
	events := 0
	for _, e := range v.Entries {
		if strings.HasPrefix(string(e), audit.EventHeader+"\n") {
			events++
		}
	}
	if rec.Recovered != v.Tree.N || rec.Database >= v.Tree.N || rec.Bodies != int64(events) || len(rec.MissingBodies) != 0 {
		t.Errorf("RecoverLog = %+v; want %d entries recovered from fewer, %d bodies, none missing", rec, v.Tree.N, events)
	}
	url, err := startServerAt(t, restored)
	if err != nil {
		t.Fatalf("server over the recovered log: %v", err)
	}

	// The editor goes on with the recovered server: no fork, and the log
	// grows from where the replica was.
	if _, err := d.cache.SyncLog(ctx, url, nk.editor, opts); err != nil {
		t.Fatalf("SyncLog with the recovered server: %v", err)
	}
	index, err := d.cache.Note(ctx, url, nk.editor, tip, "after the recovery", opts)
	if err != nil {
		t.Fatal(err)
	}
	if index < v.Tree.N {
		t.Errorf("first event after the recovery at %d, inside the recovered log of %d", index, v.Tree.N)
	}
	// A new editor's cache gets every body from the recovered server.
	fresh := &Cache{Dir: filepath.Join(t.TempDir(), "fresh")}
	fv, err := fresh.SyncLog(ctx, url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := Replay(fv, nk.editor)
	if err != nil {
		t.Fatal(err)
	}
	if ts := ed.State.Tip(rc.TipID); ts == nil || len(ts.Notes) != 6 || len(ed.Unreadable) != 0 {
		t.Errorf("replayed from the recovered server: %+v, %d unreadable; want 6 notes", ts, len(ed.Unreadable))
	}
	if _, err := AuditVerify(ctx, url, filepath.Join(t.TempDir(), "audit"), AuditOptions{Newsroom: nk.key.Verifier}); err != nil {
		t.Errorf("AuditVerify of the recovered server: %v", err)
	}
}

func copyDataFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// benchLog is a log of signed events over made-up bodies, built once per
// process for BenchmarkAuditVerify.
type benchLog struct {
	newsroom string
	bundle   []byte
	logKey   *crypto.SignerKey
	mem      memTileLog
}

var benchLogCache = map[int]*benchLog{}

// benchBody is the body of event i: the log needs only its SHA-256.
func benchBody(i int64) []byte { return []byte("body of event " + strconv.FormatInt(i, 10)) }

func newBenchLog(b testing.TB, n int) *benchLog {
	if l := benchLogCache[n]; l != nil {
		return l
	}
	nk := newTestNewsroom(b, true)
	logKey, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "bench-log")
	if err != nil {
		b.Fatal(err)
	}
	l := &benchLog{newsroom: nk.key.Verifier, bundle: nk.bundle(b, 1, logKey.Verifier), logKey: logKey}
	l.mem.append(b, l.bundle)
	signer, err := nk.editor.Signer()
	if err != nil {
		b.Fatal(err)
	}
	ev := &audit.Event{Bundle: 1, Day: "2026-03-14"}
	for i := int64(1); i < int64(n); i++ {
		rand.Read(ev.ID[:])
		ev.Base = l.mem.tree(b)
		ev.Ciphertext = sha256.Sum256(benchBody(i))
		ev.Public[0], ev.Private[0] = byte(i), byte(i>>8)
		msg, err := audit.SignEvent(ev, signer)
		if err != nil {
			b.Fatal(err)
		}
		l.mem.append(b, msg)
	}
	benchLogCache[n] = l
	return l
}

// serve writes the checkpoint and tiles of the log's first size entries
// into dir, and serves them with /bundle and the made-up bodies.
func (l *benchLog) serve(b testing.TB, dir string, size int64) *httptest.Server {
	part := &memTileLog{entries: l.mem.entries[:size], hashes: l.mem.hashes[:tlog.StoredHashCount(size)]}
	tree := part.tree(b)
	files := map[string][]byte{replicaCheckpoint: signLogCheckpoint(b, l.logKey, tree)}
	for _, tile := range tlog.NewTiles(torchwood.TileHeight, 0, tree.N) {
		data, err := tlog.ReadTileData(tile, part)
		if err != nil {
			b.Fatal(err)
		}
		files[torchwood.TilePath(tile)] = data
		if tile.L == 0 {
			var bundle []byte
			for _, e := range l.mem.entries[tile.N*torchwood.TileWidth : tile.N*torchwood.TileWidth+int64(tile.W)] {
				bundle, _ = torchwood.AppendTileEntry(bundle, e)
			}
			tile.L = -1
			files[torchwood.TilePath(tile)] = bundle
		}
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(dir)))
	mux.HandleFunc("GET "+protocol.PathBundle, func(w http.ResponseWriter, r *http.Request) { w.Write(l.bundle) })
	mux.HandleFunc("GET "+protocol.PathEventBodies+"{index}", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
		if err != nil || i < 1 || i >= tree.N {
			http.NotFound(w, r)
			return
		}
		w.Write(benchBody(i))
	})
	hs := httptest.NewServer(mux)
	b.Cleanup(hs.Close)
	return hs
}

// TestAuditVerifyAcrossTiles: an auditor follows a log served as static
// files as it grows across entry bundles: from nothing to 200 entries
// (one partial bundle), to 300 (a full one, then a partial one), to 520
// (the rest of the second, then a partial third).
func TestAuditVerifyAcrossTiles(t *testing.T) {
	l := newBenchLog(t, 520)
	state := filepath.Join(t.TempDir(), "audit")
	for _, size := range []int64{200, 300, 520} {
		hs := l.serve(t, t.TempDir(), size)
		rep, err := AuditVerify(context.Background(), hs.URL, state, AuditOptions{Newsroom: l.newsroom})
		if err != nil || rep.Tree != l.mem.treeAt(t, size) {
			t.Fatalf("AuditVerify of %d entries = %+v, %v", size, rep, err)
		}
	}
}

// BenchmarkAuditVerify measures what every audit and every editor's sync
// does with what it holds: AuditVerify of a state directory holding a
// log of 100,000 entries (a bundle and signed events) that the server, on
// loopback, has not grown since. It reads the stored entry bundles, runs
// audit.Verifier over every entry, checks that they make the stored
// checkpoint, and checks the served checkpoint against it; no entry or
// body crosses the network. As a baseline, the same run measures
// audit.Verifier over the same entries in memory; ratio is how many times
// longer AuditVerify takes.
func BenchmarkAuditVerify(b *testing.B) {
	const n = 100_000
	l := newBenchLog(b, n)
	served := b.TempDir()
	hs := l.serve(b, served, n)
	// The state an audit of these n entries leaves: the checkpoint, the
	// entry bundles and the pinned newsroom key (and the bodies, which a
	// log that has not grown does not need).
	state := b.TempDir()
	if err := os.CopyFS(filepath.Join(state, "tile", "entries"), os.DirFS(filepath.Join(served, "tile", "entries"))); err != nil {
		b.Fatal(err)
	}
	copyDataFile(b, filepath.Join(served, replicaCheckpoint), filepath.Join(state, replicaCheckpoint))
	if err := os.WriteFile(filepath.Join(state, "newsroom"), []byte(l.newsroom+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		rep, err := AuditVerify(ctx, hs.URL, state, AuditOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Tree.N != n {
			b.Fatalf("verified %d entries, want %d", rep.Tree.N, n)
		}
	}
	perSecond := float64(n*b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSecond, "entries/s")

	// The baseline, outside the loop's timing.
	start := time.Now()
	vr, err := audit.NewVerifier(l.newsroom)
	if err != nil {
		b.Fatal(err)
	}
	if err := vr.Verify(ctx, audit.SliceReader(l.mem.entries), n); err != nil {
		b.Fatal(err)
	}
	base := float64(n) / time.Since(start).Seconds()
	b.ReportMetric(base, "verifier-entries/s")
	b.ReportMetric(base/perSecond, "ratio")
}

// BenchmarkAuditVerifyFirst measures a first audit, into an empty state
// directory, of a log of 5,000 entries served over loopback HTTP:
// fetching and checking the checkpoint, tiles and entries, and fetching,
// checking and storing (synced to disk) every event's body, which costs
// most.
func BenchmarkAuditVerifyFirst(b *testing.B) {
	const n = 5_000
	l := newBenchLog(b, n)
	hs := l.serve(b, b.TempDir(), n)
	ctx := context.Background()
	states := b.TempDir()
	i := 0
	for b.Loop() {
		state := filepath.Join(states, strconv.Itoa(i))
		i++
		rep, err := AuditVerify(ctx, hs.URL, state, AuditOptions{Newsroom: l.newsroom})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Tree.N != n {
			b.Fatalf("verified %d entries, want %d", rep.Tree.N, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}
