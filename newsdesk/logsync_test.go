package newsdesk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	"sync"
	"testing"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/server"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// requests records the paths of the GET requests a handler sees.
type requests struct {
	mu    sync.Mutex
	paths []string
}

func (r *requests) add(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths = append(r.paths, path)
}

// take returns the paths recorded since the last take.
func (r *requests) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.paths
	r.paths = nil
	return out
}

// fetched splits recorded paths into the entry bundles (as tiles) and
// the event bodies (as indexes) they asked for.
func fetched(t *testing.T, paths []string) (bundles []tlog.Tile, bodies []int64) {
	t.Helper()
	for _, p := range paths {
		if s, ok := strings.CutPrefix(p, protocol.PathEventBodies); ok {
			i, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("body request %q", p)
			}
			bodies = append(bodies, i)
			continue
		}
		if tile, err := torchwood.ParseTilePath(strings.TrimPrefix(p, "/")); err == nil && tile.L == -1 {
			bundles = append(bundles, tile)
		}
	}
	slices.Sort(bodies)
	return bundles, bodies
}

// record makes the proxy note the path of every GET it relays.
func (d *logDesk) record() *requests {
	r := &requests{}
	f := func(_ http.ResponseWriter, req *http.Request) bool {
		if req.Method == http.MethodGet {
			r.add(req.URL.Path)
		}
		return false
	}
	d.intercept.Store(&f)
	return r
}

// eventsIn returns the indexes of the events among entries start to end−1.
func eventsIn(v *LogView, start, end int64) []int64 {
	var out []int64
	for i := start; i < end; i++ {
		if bytes.HasPrefix(v.Entries[i], []byte(audit.EventHeader+"\n")) {
			out = append(out, i)
		}
	}
	return out
}

// checkReplica checks that the replica of v is what the server serves at
// the same paths (docs/log.md), byte for byte: the checkpoint, the entry
// bundles, the event bodies and nothing else; that it keeps one partial
// entry bundle, of the checkpoint's width; and that fieldtipd's reader
// (server.OpenReplica) reads the checkpoint's entries from it.
func checkReplica(t *testing.T, d *logDesk, v *LogView, dir string) {
	t.Helper()
	if v.Replica != dir {
		t.Errorf("Replica = %s, want %s", v.Replica, dir)
	}
	if cp := d.get(t, protocol.PathCheckpoint); !bytes.Equal(cp, v.Signed) {
		t.Errorf("view's checkpoint:\n%s\nserver's:\n%s", v.Signed, cp)
	}
	events := eventsIn(v, 0, v.Tree.N)
	var bodies []int64
	partials := 0
	for path, data := range replicaFiles(t, dir) {
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			t.Fatal(err)
		}
		rel = filepath.ToSlash(rel)
		switch {
		case rel == replicaCheckpoint:
			if data != string(v.Signed) {
				t.Errorf("stored checkpoint:\n%s\nwant the view's:\n%s", data, v.Signed)
			}
			continue
		case strings.HasPrefix(rel, replicaBodies+"/"):
			i, err := strconv.ParseInt(strings.TrimPrefix(rel, replicaBodies+"/"), 10, 64)
			if err != nil {
				t.Errorf("replica file %s", rel)
				continue
			}
			bodies = append(bodies, i)
			if b, err := v.Body(i); err != nil || string(b) != data {
				t.Errorf("Body(%d) = %d bytes, %v; want the stored %d bytes", i, len(b), err, len(data))
			}
		case strings.HasPrefix(rel, "tile/entries/"):
			if strings.Contains(rel, ".p/") {
				partials++
			}
		default:
			t.Errorf("unexpected replica file %s", rel)
			continue
		}
		if got := d.get(t, "/"+rel); string(got) != data {
			t.Errorf("replica's %s differs from the server's", rel)
		}
	}
	slices.Sort(bodies)
	if !slices.Equal(bodies, events) {
		t.Errorf("bodies stored for %v, want the events %v", bodies, events)
	}
	if want := min(v.Tree.N%torchwood.TileWidth, 1); int64(partials) != want {
		t.Errorf("%d partial entry bundles kept, want %d", partials, want)
	}
	if _, err := v.Body(0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Body(0) of the bundle entry = %v, want fs.ErrNotExist", err)
	}
	tr, err := server.OpenReplica(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := v.Tree.N
	last := tlog.Tile{H: torchwood.TileHeight, L: -1, N: (n - 1) / torchwood.TileWidth, W: int((n-1)%torchwood.TileWidth + 1)}
	data, err := tr.ReadTiles(context.Background(), []tlog.Tile{last})
	if err != nil {
		t.Fatalf("fieldtipd's replica reader: %v", err)
	}
	for i := last.N * torchwood.TileWidth; i < n; i++ {
		var e []byte
		if e, data[0], err = torchwood.ReadTileEntry(data[0]); err != nil || !bytes.Equal(e, v.Entries[i]) {
			t.Fatalf("fieldtipd's replica reader: entry %d differs (%v)", i, err)
		}
	}
}

// TestSyncLogStoresReplica: a sync stores a replica that is the server's
// log as served, checkpoint, entry bundles and bodies; the next sync asks
// only for the entry bundles that hold new entries and the bodies of new
// events, and a sync with nothing new asks for neither.
func TestSyncLogStoresReplica(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	opts := SyncOptions{Newsroom: nk.key.Verifier}
	tip := d.send(t, &crypto.Tip{Text: "a tip"}).TipIDString()
	for i := range 2 {
		if _, err := d.cache.Note(ctx, d.url, nk.editor, tip, fmt.Sprintf("note %d", i), opts); err != nil {
			t.Fatal(err)
		}
	}
	// A second cache of the same editor, which syncs only when told.
	other := &Cache{Dir: filepath.Join(t.TempDir(), "other")}
	dir := filepath.Join(other.Dir, "log")
	rec := d.record()
	v1, err := other.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, bodies := fetched(t, rec.take()); !slices.Equal(bodies, eventsIn(v1, 0, v1.Tree.N)) || len(bodies) != 2 {
		t.Errorf("first sync fetched the bodies of %v, want the two events %v", bodies, eventsIn(v1, 0, v1.Tree.N))
	}
	checkReplica(t, d, v1, dir)

	for i := range 3 {
		if _, err := d.cache.Note(ctx, d.url, nk.editor, tip, fmt.Sprintf("more %d", i), opts); err != nil {
			t.Fatal(err)
		}
	}
	rec.take()
	v2, err := other.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Tree.N <= v1.Tree.N || !slices.EqualFunc(v2.Entries[:v1.Tree.N], v1.Entries, bytes.Equal) {
		t.Fatalf("second sync: %d entries after %d, not extending them", v2.Tree.N, v1.Tree.N)
	}
	bundles, bodies := fetched(t, rec.take())
	if want := eventsIn(v2, v1.Tree.N, v2.Tree.N); !slices.Equal(bodies, want) || len(want) != 3 {
		t.Errorf("second sync fetched the bodies of %v, want only the new events %v", bodies, want)
	}
	if len(bundles) == 0 {
		t.Error("second sync fetched no entry bundle")
	}
	for _, b := range bundles {
		if b.N*torchwood.TileWidth+int64(b.W) <= v1.Tree.N {
			t.Errorf("second sync fetched entry bundle %s, which holds no new entry", torchwood.TilePath(b))
		}
	}
	checkReplica(t, d, v2, dir)

	rec.take()
	v3, err := other.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil || v3.Tree != v2.Tree {
		t.Fatalf("third sync = %v; want the same tree", err)
	}
	if bundles, bodies := fetched(t, rec.take()); len(bundles)+len(bodies) != 0 {
		t.Errorf("a sync with nothing new fetched entry bundles %v and bodies %v", bundles, bodies)
	}
	d.intercept.Store(nil)

	// Offline, the replica loads as it was synced.
	lv, err := other.LoadLog(ctx)
	if err != nil || lv.Tree != v2.Tree || !bytes.Equal(lv.Signed, v2.Signed) || len(lv.Entries) != len(v2.Entries) {
		t.Errorf("LoadLog = %v; want the synced tree", err)
	}
}

// TestSyncLogRefusals: a server that serves a checkpoint the log key did
// not sign, a changed entry bundle, or an event body that is not the
// event's, is refused, naming what was wrong; the replica does not change,
// and nothing is cosigned. With the server honest again, the sync goes on.
func TestSyncLogRefusals(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	opts := SyncOptions{Newsroom: nk.key.Verifier}
	tip := d.send(t, &crypto.Tip{Text: "a tip"}).TipIDString()
	other := &Cache{Dir: filepath.Join(t.TempDir(), "other")}
	v, err := other.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Three new events, fetched in parallel; the tests change the second.
	var index int64
	for i := range 3 {
		j, err := d.cache.Note(ctx, d.url, nk.editor, tip, fmt.Sprintf("note %d", i), opts)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			index = j
		}
	}
	text, _, _ := bytes.Cut(d.get(t, protocol.PathCheckpoint), []byte("\n\n"))
	cur, err := torchwood.ParseCheckpoint(string(text) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	n := cur.N
	bundlePath := "/" + torchwood.TilePath(tlog.Tile{H: torchwood.TileHeight, L: -1, N: 0, W: int(n)})
	otherLog, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, d.srv.LogKey.Signer.Name())
	if err != nil {
		t.Fatal(err)
	}
	before := replicaFiles(t, filepath.Join(other.Dir, "log"))
	cosigned := d.get(t, protocol.PathCosigned)
	for _, tc := range []struct {
		name, path string
		change     func([]byte) []byte
		want       string
	}{
		{"checkpoint_of_another_key", protocol.PathCheckpoint, func([]byte) []byte { return signLogCheckpoint(t, otherLog, cur.Tree) },
			"does not verify with the log key"},
		{"checkpoint_unsigned", protocol.PathCheckpoint, func(b []byte) []byte { return []byte(cur.String()) },
			"does not verify with the log key"},
		{"entry_changed", bundlePath, func(b []byte) []byte { b = bytes.Clone(b); b[len(b)-3] ^= 1; return b },
			"fetch entries"},
		{"body_changed", protocol.PathEventBodies + strconv.FormatInt(index, 10), func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 1; return b },
			fmt.Sprintf("event %d does not match the event's SHA-256", index)},
		{"body_missing", protocol.PathEventBodies + strconv.FormatInt(index, 10), nil,
			fmt.Sprintf("fetch the body of event %d", index)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet || r.URL.Path != tc.path {
					return false
				}
				if tc.change == nil {
					http.NotFound(w, r)
					return true
				}
				w.Write(tc.change(d.get(t, tc.path)))
				return true
			}
			d.intercept.Store(&f)
			defer d.intercept.Store(nil)
			_, err := other.SyncLog(ctx, d.url, nk.editor, opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SyncLog = %v, want an error saying %q", err, tc.want)
			}
			// The checkpoint and entries stay; bodies of the new events
			// other than the bad one may have been stored, checked.
			after := replicaFiles(t, filepath.Join(other.Dir, "log"))
			for path, data := range after {
				rel, _ := filepath.Rel(filepath.Join(other.Dir, "log"), path)
				if i, ok := strings.CutPrefix(filepath.ToSlash(rel), replicaBodies+"/"); ok && before[path] == "" && i != strconv.FormatInt(index, 10) {
					if string(d.get(t, protocol.PathEventBodies+i)) != data {
						t.Errorf("stored a body of event %s that is not the server's", i)
					}
					delete(after, path)
				}
			}
			if !maps.Equal(after, before) {
				t.Error("the refused sync changed the replica's checkpoint, entries or old bodies, or stored the bad body")
			}
			if got := d.get(t, protocol.PathCosigned); !bytes.Equal(got, cosigned) {
				t.Errorf("the refused sync cosigned: %q", got)
			}
		})
	}
	v2, err := other.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil || v2.Tree != cur.Tree || v2.Tree.N <= v.Tree.N {
		t.Fatalf("SyncLog with the server honest again = %v", err)
	}
}

// TestSyncLogReplicaChangedOnDisk: a byte changed in the replica's stored
// entries is caught by the next sync and by LoadLog, and the checkpoint
// stays; without the replica's partial bundle, neither proceeds either.
func TestSyncLogReplicaChangedOnDisk(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	opts := SyncOptions{Newsroom: nk.key.Verifier}
	tip := d.send(t, &crypto.Tip{Text: "a tip"}).TipIDString()
	if _, err := d.cache.Note(ctx, d.url, nk.editor, tip, "a note", opts); err != nil {
		t.Fatal(err)
	}
	v, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d.replica(), torchwood.TilePath(tlog.Tile{H: torchwood.TileHeight, L: -1, N: 0, W: int(v.Tree.N)}))
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		file []byte // nil: removed
	}{
		{"byte_changed", func() []byte { b := bytes.Clone(good); b[len(b)/2] ^= 1; return b }()},
		{"entry_added", append(bytes.Clone(good), 0, 1, 'x')},
		{"removed", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.file == nil {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p, tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(p, good, 0o600)
			if _, err := d.cache.LoadLog(ctx); err == nil {
				t.Error("LoadLog accepted the changed replica")
			}
			if _, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts); err == nil {
				t.Error("SyncLog accepted the changed replica")
			}
			if cp, err := os.ReadFile(filepath.Join(d.replica(), replicaCheckpoint)); err != nil || !bytes.Equal(cp, v.Signed) {
				t.Errorf("the checkpoint changed: %v", err)
			}
		})
	}
	if _, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts); err != nil {
		t.Errorf("SyncLog with the replica put back: %v", err)
	}
}

// TestAuditVerifyPinsNewsroom: the first audit pins the newsroom key it
// trusted; a later one with another --newsroom, or against a server whose
// bundle another newsroom signed, is refused, and keeps the state.
func TestAuditVerifyPinsNewsroom(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "audit")
	rep, err := AuditVerify(ctx, d.url, state, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pin, err := os.ReadFile(filepath.Join(state, "newsroom")); err != nil || strings.TrimSpace(string(pin)) != nk.key.Verifier {
		t.Fatalf("pinned %q, %v; want %s", pin, err, nk.key.Verifier)
	}
	before := replicaFiles(t, state)
	other := newTestNewsroom(t, true)
	if _, err := AuditVerify(ctx, d.url, state, AuditOptions{Newsroom: other.key.Verifier}); err == nil || !strings.Contains(err.Error(), "pins newsroom key") {
		t.Errorf("AuditVerify with another --newsroom = %v, want a pin mismatch", err)
	}
	od := newLogDesk(t, other, nil, nil)
	if _, err := AuditVerify(ctx, od.url, state, AuditOptions{}); err == nil {
		t.Error("AuditVerify of another newsroom's server against the pinned state succeeded")
	}
	if got := replicaFiles(t, state); !maps.Equal(got, before) {
		t.Error("a refused audit changed the state")
	}
	if again, err := AuditVerify(ctx, d.url, state, AuditOptions{}); err != nil || again.Tree != rep.Tree {
		t.Errorf("AuditVerify again = %v", err)
	}
}

// TestAuditVerifyFetchesOnlyNew: an auditor whose state holds 300 entries
// (a full entry bundle and a partial one) asks, when the log has 520, for
// neither the full bundle it holds nor any body it has, only for the
// bundles with new entries and the new bodies.
func TestAuditVerifyFetchesOnlyNew(t *testing.T) {
	l := newBenchLog(t, 520)
	state := filepath.Join(t.TempDir(), "audit")
	if _, err := AuditVerify(context.Background(), l.serve(t, t.TempDir(), 300).URL, state, AuditOptions{Newsroom: l.newsroom}); err != nil {
		t.Fatal(err)
	}
	hs := l.serve(t, t.TempDir(), 520)
	target, err := url.Parse(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	rec := &requests{}
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r.URL.Path)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	rep, err := AuditVerify(context.Background(), proxy.URL, state, AuditOptions{Newsroom: l.newsroom})
	if err != nil || rep.Tree.N != 520 {
		t.Fatalf("AuditVerify = %+v, %v", rep, err)
	}
	bundles, bodies := fetched(t, rec.take())
	var paths []string
	for _, b := range bundles {
		paths = append(paths, torchwood.TilePath(b))
	}
	slices.Sort(paths)
	if want := []string{"tile/entries/001", "tile/entries/002.p/8"}; !slices.Equal(paths, want) {
		t.Errorf("fetched entry bundles %q, want %q", paths, want)
	}
	if len(bodies) != 220 || bodies[0] != 300 || bodies[len(bodies)-1] != 519 {
		t.Errorf("fetched %d bodies (%v…), want those of 300 to 519", len(bodies), bodies[:min(len(bodies), 3)])
	}
	if _, err := os.Stat(filepath.Join(state, "tile/entries/001.p")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the full bundle's stale partials are still there: %v", err)
	}
}
