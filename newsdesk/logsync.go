package newsdesk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
	"fieldtip/protocol"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The replica is an editor's (or an auditor's) verified copy of the log,
// laid out as the log's own read endpoints are (docs/log.md), so that
// `fieldtipd --recover-log DIR` can rebuild a server from it:
//
//	DIR/checkpoint                  the last signed checkpoint verified
//	DIR/tile/entries/<N>[.p/<W>]    the entries up to it, as entry bundles
//	DIR/event-body/<index>          each event's body (its SHA-256 checked)
//	DIR/receipts/<index>            each receipts root's sealed key and leaves
//
// Everything in it is public or ciphertext.
const (
	replicaCheckpoint = "checkpoint"
	replicaBodies     = "event-body"
	replicaReceipts   = "receipts"
)

// Limits on what a sync reads from the server.
const (
	// maxEventBody is the largest event body (docs/audit.md).
	maxEventBody = 16<<20 + 256<<10
	// maxReceiptsAnswer bounds GET /receipts/<index>: 2^20 leaves of 32
	// bytes in base64, and a sealed key.
	maxReceiptsAnswer = 48<<20 + 256<<10
)

// ErrLogRollback is a checkpoint smaller than one the replica verified
// before: the server went back in time.
var ErrLogRollback = errors.New("the server's log is smaller than one it signed before")

// ForkError is a server that signed two checkpoints no single append-only
// log can have: a second root for a size, or a tree that does not extend
// the one verified before. Stored and Served are both signed by the log
// key, and together prove it.
type ForkError struct {
	Reason         string
	Stored, Served []byte
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("the log forked: %s; keep both signed checkpoints below as evidence and tell the newsroom\n"+
		"--- checkpoint verified before\n%s--- checkpoint served now\n%s---", e.Reason, e.Stored, e.Served)
}

// SyncOptions tune SyncLog and AuditVerify.
type SyncOptions struct {
	// Newsroom, if set, is the newsroom verifier key to pin; otherwise the
	// key the first bundle names is pinned (trust on first use).
	Newsroom string
	// NoCosign skips sending the editor's cosignature.
	NoCosign bool
	// Pulled, if set, is called with each new tip id pulled.
	Pulled func(id string)
}

// LogView is the editor's verified copy of the log after a sync.
type LogView struct {
	// Tree is the verified size and root hash.
	Tree tlog.Tree
	// Signed is the log-signed checkpoint of Tree, as served.
	Signed []byte
	// Bundle is the bundle in force at index Tree.N.
	Bundle *crypto.Bundle
	// Entries are the entries 0 to Tree.N−1, audited by audit.Verifier.
	Entries [][]byte
	// Replica is the replica directory.
	Replica string

	verifier *audit.Verifier
	newsroom string
}

// Body returns the stored age file of the event at index, fetched and
// checked against the event's SHA-256 at sync; an error wrapping
// fs.ErrNotExist if there is none.
func (v *LogView) Body(index int64) ([]byte, error) {
	return os.ReadFile(filepath.Join(v.Replica, replicaBodies, strconv.FormatInt(index, 10)))
}

// BundleAt returns the bundle in force at index (the last bundle entry
// before it).
func (v *LogView) BundleAt(index int64) *crypto.Bundle { return v.verifier.BundleAt(index) }

// syncReplica brings the replica in dir up to the server's log and
// returns the verified view: AuditVerify's work (SyncLog's is a Session's
// Sync). logKey verifies checkpoints; newsroom, bundles. The served
// bundle's log key must be the one the log's own bundle in force names.
func syncReplica(ctx context.Context, server, dir, newsroom, logKey string) (*LogView, error) {
	u, err := protocol.ParseServerURL(server)
	if err != nil {
		return nil, err
	}
	v, err := openReplica(ctx, dir, newsroom, logKey, nil)
	if err != nil {
		return nil, err
	}
	hc := bodyClient()
	defer hc.CloseIdleConnections()
	if err := v.sync(ctx, hc, u.Origin, logKey); err != nil {
		return nil, err
	}
	return v, nil
}

// openReplica returns the log as the replica in dir holds it, checked
// again: the stored checkpoint must verify with logKey, and the stored
// entries must pass audit.Verifier for the newsroom and make its tree. A
// directory without a checkpoint is an empty log (Tree.N == 0).
//
// known, if set, is a tree an earlier run of this editor verified in full
// (the sealed index's): when the replica's first entries make it, their
// events' signatures are not checked again (audit.VerifyKnownPrefix), so
// that opening a session costs the log's hashes, not a signature check
// per entry; on any mismatch every entry is checked.
func openReplica(ctx context.Context, dir, newsroom, logKey string, known *tlog.Tree) (*LogView, error) {
	vr, err := audit.NewVerifier(newsroom)
	if err != nil {
		return nil, err
	}
	v := &LogView{Replica: dir, verifier: vr, newsroom: newsroom}
	stored, err := os.ReadFile(filepath.Join(dir, replicaCheckpoint))
	if errors.Is(err, fs.ErrNotExist) {
		return v, nil
	}
	if err != nil {
		return nil, err
	}
	_, policy, err := logPolicy(logKey)
	if err != nil {
		return nil, err
	}
	cp, _, err := torchwood.VerifyCheckpoint(stored, policy)
	if err != nil {
		return nil, fmt.Errorf("log: the replica's checkpoint %s does not verify: %w", filepath.Join(dir, replicaCheckpoint), err)
	}
	entries, err := readReplicaEntries(dir, cp.N)
	if err != nil {
		return nil, fmt.Errorf("log: replica: %w", err)
	}
	if known != nil && known.N <= cp.N {
		if err := vr.VerifyKnownPrefix(ctx, audit.SliceReader(entries), *known); err != nil && !errors.Is(err, audit.ErrPrefixMismatch) {
			return nil, fmt.Errorf("log: replica: %w", err)
		}
	}
	if err := vr.Verify(ctx, audit.SliceReader(entries), cp.N); err != nil {
		return nil, fmt.Errorf("log: replica: %w", err)
	}
	if vr.Tree() != cp.Tree {
		return nil, fmt.Errorf("log: the replica's entries do not hash to its checkpoint (%s changed?)", dir)
	}
	v.Tree, v.Signed, v.Entries, v.Bundle = cp.Tree, stored, entries, vr.BundleAt(cp.N)
	return v, nil
}

// sync brings v up to the checkpoint the server serves now, which must
// verify with logKey (extend).
func (v *LogView) sync(ctx context.Context, hc *http.Client, origin, logKey string) error {
	signed, err := get(ctx, hc, origin+protocol.PathCheckpoint, audit.MaxCheckpointSize)
	if err != nil {
		return fmt.Errorf("log: fetch checkpoint: %w", err)
	}
	return v.extend(ctx, hc, origin, logKey, signed)
}

// extend brings v, and the replica it reads, up to the signed checkpoint
// signed: it verifies it with logKey, checks it against v's with a
// consistency proof (a fork is a *ForkError, and nothing is stored),
// fetches the new entries through the tiles (each checked against the
// checkpoint), audits them with v's audit.Verifier, fetches and checks
// each new event's body, and only then stores the new checkpoint. A
// checkpoint no larger than v's changes nothing, once checked. The log's
// bundle in force must name logKey.
func (v *LogView) extend(ctx context.Context, hc *http.Client, origin, logKey string, signed []byte) error {
	logV, policy, err := logPolicy(logKey)
	if err != nil {
		return err
	}
	cp, _, err := torchwood.VerifyCheckpoint(signed, policy)
	if err != nil {
		return fmt.Errorf("log: the server's checkpoint does not verify with the log key %s: %w", logV.Name(), err)
	}
	tf, err := torchwood.NewTileFetcher(origin+"/", torchwood.WithHTTPClient(hc), torchwood.WithUserAgent("newsdesk"))
	if err != nil {
		return err
	}
	dir := v.Replica
	old := v.Tree
	if v.Signed != nil {
		if err := checkExtends(ctx, old, cp.Tree, tf, v.Signed, signed); err != nil {
			return err
		}
		if cp.N == old.N {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, replicaBodies), 0o700); err != nil {
		return err
	}
	entries := v.Entries[:old.N:old.N]
	// torchwood's client fetches the partial entry bundle at the tree's
	// edge even for none: only when there are new entries.
	if cp.N > old.N {
		client, err := torchwood.NewClient(tf)
		if err != nil {
			return err
		}
		// AllEntries, not Entries, which stops before a partial tile at
		// the tree's edge when it has a full tile to fetch first.
		for i, e := range client.AllEntries(ctx, cp.Tree, old.N) {
			if i != int64(len(entries)) {
				return fmt.Errorf("log: entry %d came out of order", i)
			}
			entries = append(entries, bytes.Clone(e))
		}
		if err := client.Err(); err != nil {
			return fmt.Errorf("log: fetch entries: %w", err)
		}
	}
	if int64(len(entries)) != cp.N {
		return fmt.Errorf("log: got %d entries of %d", len(entries), cp.N)
	}
	vr := v.verifier
	if err := vr.Verify(ctx, audit.SliceReader(entries), cp.N); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	if vr.Tree() != cp.Tree {
		// The replica's own entries do not make the tree they were
		// stored under: it was changed on disk.
		return fmt.Errorf("log: the entries do not hash to the checkpoint's root (replica %s changed?)", dir)
	}
	b := vr.BundleAt(cp.N)
	if b == nil {
		return errors.New("log: no bundle in the log")
	}
	if b.Log != logKey {
		return fmt.Errorf("log: the bundle in force in the log (version %d) names log key %s, not %s", b.Version, b.Log, logKey)
	}
	if err := fetchBodies(ctx, hc, origin, v, entries, old.N); err != nil {
		return err
	}
	if err := writeEntryBundles(dir, entries, old.N); err != nil {
		return err
	}
	if err := atomicfile.Replace(filepath.Join(dir, replicaCheckpoint), signed, 0o600); err != nil {
		return err
	}
	v.Tree, v.Signed, v.Entries, v.Bundle = cp.Tree, signed, entries, b
	if err := pruneEntryBundles(dir, old.N, cp.N); err != nil {
		return fmt.Errorf("log: the checkpoint of size %d is stored, but: %w", cp.N, err)
	}
	return nil
}

// checkExtends checks that the served tree extends the stored one, with a
// consistency proof read through tiles that are themselves checked against
// the served tree.
func checkExtends(ctx context.Context, old, cur tlog.Tree, tr torchwood.TileReader, stored, served []byte) error {
	switch {
	case cur.N < old.N:
		return fmt.Errorf("%w (%d entries, after %d): keep %s", ErrLogRollback, cur.N, old.N, "both checkpoints")
	case cur.N == old.N:
		if cur.Hash != old.Hash {
			return &ForkError{Reason: fmt.Sprintf("two different roots for size %d", cur.N), Stored: stored, Served: served}
		}
		return nil
	case old.N == 0:
		return nil
	}
	proof, err := tlog.ProveTree(cur.N, old.N, torchwood.TileHashReaderWithContext(ctx, cur, tr))
	if err != nil {
		return fmt.Errorf("log: consistency proof from %d to %d: %w", old.N, cur.N, err)
	}
	if err := tlog.CheckTree(proof, cur.N, cur.Hash, old.N, old.Hash); err != nil {
		return &ForkError{Reason: fmt.Sprintf("the tree of size %d does not extend the tree of size %d verified before", cur.N, old.N), Stored: stored, Served: served}
	}
	return nil
}

// bodyFetchers is how many event bodies a sync fetches and stores at once:
// it overlaps the round trips and the file syncs of a first sync of a long
// log, and bounds the bodies held in memory (each at most maxEventBody,
// almost always 1 KiB).
const bodyFetchers = 16

// bodyClient returns the HTTP client of a sync, which keeps a connection
// per body fetcher open between requests.
func bodyClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(bodyFetchers, tipFetchers)
	return &http.Client{Timeout: requestTimeout, Transport: tr}
}

// fetchBodies fetches the body of every event from index start on, checks
// it against the event's SHA-256 and stores it, bodyFetchers at a time.
// On an error it returns the first one, once every fetch has stopped.
func fetchBodies(ctx context.Context, hc *http.Client, origin string, v *LogView, entries [][]byte, start int64) error {
	type job struct {
		index int64
		hash  [32]byte
	}
	var jobs []job
	for i := start; i < int64(len(entries)); i++ {
		e := entries[i]
		if !strings.HasPrefix(string(e), audit.EventHeader+"\n") {
			continue
		}
		ev := v.verifier.Event(i)
		if ev == nil {
			var err error
			if ev, err = audit.OpenEvent(e, v.BundleAt(i)); err != nil {
				return fmt.Errorf("log: entry %d: %w", i, err)
			}
		}
		jobs = append(jobs, job{i, ev.Ciphertext})
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan job)
	var wg sync.WaitGroup
	for range min(bodyFetchers, len(jobs)) {
		wg.Go(func() {
			for j := range next {
				if err := fetchBody(ctx, hc, origin, v.Replica, j.index, j.hash); err != nil {
					cancel(err) // the first error is the cause; later ones are not
				}
			}
		})
	}
feed:
	for _, j := range jobs {
		select {
		case next <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	return syncDir(filepath.Join(v.Replica, replicaBodies))
}

// fetchBody fetches the body of event index, unless the replica holds it,
// checks it against hash and stores it.
func fetchBody(ctx context.Context, hc *http.Client, origin, replica string, index int64, hash [32]byte) error {
	path := filepath.Join(replica, replicaBodies, strconv.FormatInt(index, 10))
	if b, err := os.ReadFile(path); err == nil && sha256.Sum256(b) == hash {
		return nil
	}
	body, err := get(ctx, hc, origin+protocol.PathEventBodies+strconv.FormatInt(index, 10), maxEventBody)
	if err != nil {
		return fmt.Errorf("log: fetch the body of event %d: %w", index, err)
	}
	if sha256.Sum256(body) != hash {
		return fmt.Errorf("log: the body the server serves for event %d does not match the event's SHA-256", index)
	}
	return storeBody(path, body)
}

// storeBody writes a checked body to path and syncs it to disk. It needs
// no temporary file, unlike atomicfile.Replace: until a checkpoint that
// covers the event is stored, every sync checks the file against the
// event's SHA-256 again and fetches it again if it is cut short.
// fetchBodies syncs the directory once, after every body.
func storeBody(path string, body []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir syncs a directory, making the files created in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readReplicaEntries reads the entries 0 to n−1 from the replica's entry
// bundles. Each bundle file must hold exactly the entries its width names
// (c2sp.org/tlog-tiles), nothing after them.
func readReplicaEntries(dir string, n int64) ([][]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("a log of %d entries", n)
	}
	// n comes from a signed checkpoint; the files, not n, bound the work.
	out := make([][]byte, 0, min(n, maxEntriesPrealloc))
	for t := int64(0); int64(len(out)) < n; t++ {
		w := min(n-t*torchwood.TileWidth, torchwood.TileWidth)
		data, width, err := readBundle(dir, t, w)
		if err != nil {
			return nil, err
		}
		for j := range width {
			e, rest, err := torchwood.ReadTileEntry(data)
			if err != nil {
				return nil, fmt.Errorf("entry bundle %d: entry %d: %w", t, t*torchwood.TileWidth+j, err)
			}
			if j < w {
				out = append(out, e)
			}
			data = rest
		}
		if len(data) != 0 {
			return nil, fmt.Errorf("entry bundle %d: %d bytes after its %d entries", t, len(data), width)
		}
	}
	return out, nil
}

// Limits on reading the replica.
const (
	// maxEntriesPrealloc caps the room readReplicaEntries reserves
	// before reading anything.
	maxEntriesPrealloc = 1 << 16
	// maxEntryBundle is the largest entry bundle: 256 entries of 65,535
	// bytes, each after its 2-byte length.
	maxEntryBundle = torchwood.TileWidth * (2 + 65535)
)

// readBundle reads entry bundle t holding at least w entries: the partial
// bundle of width w, or any wider one. It returns the bundle and its width.
func readBundle(dir string, t, w int64) ([]byte, int64, error) {
	for ; w <= torchwood.TileWidth; w++ {
		p := filepath.Join(dir, torchwood.TilePath(tlog.Tile{H: torchwood.TileHeight, L: -1, N: t, W: int(w)}))
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		b, err := io.ReadAll(io.LimitReader(f, maxEntryBundle+1))
		f.Close()
		if err != nil {
			return nil, 0, err
		}
		if len(b) > maxEntryBundle {
			return nil, 0, fmt.Errorf("entry bundle %d: %s is larger than %d bytes", t, p, maxEntryBundle)
		}
		return b, w, nil
	}
	return nil, 0, fmt.Errorf("entry bundle %d: %w", t, fs.ErrNotExist)
}

// writeEntryBundles writes every entry bundle that holds an entry from
// index start on, as the server serves them.
func writeEntryBundles(dir string, entries [][]byte, start int64) error {
	n := int64(len(entries))
	for t := start / torchwood.TileWidth; t*torchwood.TileWidth < n; t++ {
		end := min((t+1)*torchwood.TileWidth, n)
		var data []byte
		for _, e := range entries[t*torchwood.TileWidth : end] {
			var err error
			if data, err = torchwood.AppendTileEntry(data, e); err != nil {
				return err
			}
		}
		p := filepath.Join(dir, torchwood.TilePath(tlog.Tile{H: torchwood.TileHeight, L: -1, N: t, W: int(end - t*torchwood.TileWidth)}))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := atomicfile.Replace(p, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// pruneEntryBundles removes the partial entry bundles that the checkpoint
// of size n, now stored, no longer needs: in each bundle written since the
// checkpoint of size start, every partial bundle but the one of n's width.
// Without it each sync would leave one more partial bundle behind. It runs
// only after the new checkpoint is stored, since the old checkpoint's
// readers (fieldtipd --recover-log among them) look for its own width.
func pruneEntryBundles(dir string, start, n int64) error {
	for t := start / torchwood.TileWidth; t*torchwood.TileWidth < n; t++ {
		// The width of bundle t in the tree of size n: TileWidth or more
		// when it is full, and then no partial bundle is kept.
		keep := n - t*torchwood.TileWidth
		partials := filepath.Dir(filepath.Join(dir, torchwood.TilePath(tlog.Tile{H: torchwood.TileHeight, L: -1, N: t, W: 1})))
		names, err := os.ReadDir(partials)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range names {
			w, err := strconv.ParseInt(e.Name(), 10, 64)
			if err != nil || w < 1 || w >= torchwood.TileWidth || w == keep || strconv.FormatInt(w, 10) != e.Name() {
				continue // not a partial bundle, or the one to keep
			}
			if err := os.Remove(filepath.Join(partials, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove a stale entry bundle: %w", err)
			}
		}
		if keep >= torchwood.TileWidth {
			// Removes the directory only if nothing else is in it.
			_ = os.Remove(partials)
		}
	}
	return nil
}

// get fetches url with no session and returns a 2xx answer's body of at
// most max bytes (request).
func get(ctx context.Context, hc *http.Client, url string, max int64) ([]byte, error) {
	return request(ctx, hc, http.MethodGet, url, "", nil, max)
}

// logPolicy returns the verifier of a log key and the policy a checkpoint
// of that log must meet: signed by the key, with the key's name as origin.
func logPolicy(logKey string) (note.Verifier, torchwood.Policy, error) {
	v, err := note.NewVerifier(logKey)
	if err != nil {
		return nil, nil, fmt.Errorf("log key: %w", err)
	}
	return v, torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(v.Name()), torchwood.SingleVerifierPolicy(v)), nil
}

// Event returns the event entry at index, opened (its signature checked
// against the bundle in force there); an error if it is not an event.
func (v *LogView) Event(index int64) (*audit.Event, error) {
	if index < 0 || index >= int64(len(v.Entries)) {
		return nil, fmt.Errorf("log: no entry %d in a log of %d", index, len(v.Entries))
	}
	if ev := v.verifier.Event(index); ev != nil {
		return ev, nil
	}
	return audit.OpenEvent(v.Entries[index], v.BundleAt(index))
}
