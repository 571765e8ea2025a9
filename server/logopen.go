package server

// Opening the editorial log at start, and pinning its checkpoints
// (log.go says what the log promises).

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
	"fieldtip/storage"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Reasons openLog refuses to start; a *LogCheckError wraps one.
var (
	// ErrLogBehind: the database holds fewer entries than the pinned
	// checkpoint (a database restored from an older copy).
	ErrLogBehind = errors.New("the log in the database is behind the pinned checkpoint")
	// ErrLogDiffers: the database's tree at the pinned size is not the
	// pinned one.
	ErrLogDiffers = errors.New("the log in the database differs from the pinned checkpoint")
	// ErrLogCorrupt: the database's log does not agree with itself (an
	// entry whose bytes do not hash to its stored hashes, a missing row, a
	// stored checkpoint that does not verify or does not match).
	ErrLogCorrupt = errors.New("the log in the database is corrupt")
	// ErrNoPin: the database holds a log but the data directory has no
	// pinned checkpoint (a database copied without it).
	ErrNoPin = errors.New("the database holds a log but there is no pinned checkpoint")
	// ErrBadPin: the pinned checkpoint does not verify with the log key.
	ErrBadPin = errors.New("the pinned checkpoint does not verify")
	// ErrLogIntact: RecoverLog found nothing to recover.
	ErrLogIntact = errors.New("the log in the database is intact and not behind the replica")
)

// LogCheckError is why the server will not run on its log, or why a
// recovery failed. Err is one of ErrLogBehind, ErrLogDiffers,
// ErrLogCorrupt, ErrNoPin, ErrBadPin.
type LogCheckError struct {
	DataDir string
	// Database is the number of entries in the database, or -1 if it was
	// not read; Pinned the size of the pinned checkpoint, or -1 without
	// one.
	Database, Pinned int64
	Err              error
	// Detail says what exactly was found.
	Detail string
}

func (e *LogCheckError) Error() string {
	db, pinned := "not read", "none"
	if e.Database >= 0 {
		db = fmt.Sprintf("%d entries", e.Database)
	}
	if e.Pinned >= 0 {
		pinned = fmt.Sprintf("%d entries", e.Pinned)
	}
	return fmt.Sprintf("server: %s (database: %s; pinned checkpoint %s: %s): %s; refusing to start so that the log cannot fork; recover it with: "+recoverHint+" (docs/log.md, \"Recovery\")",
		e.Err, db, filepath.Join(e.DataDir, CheckpointFile), pinned, e.Detail, e.DataDir)
}

func (e *LogCheckError) Unwrap() error { return e.Err }

// logVerifier returns the verifier of a log key. The key's name is the
// origin line of the checkpoints it signs (torchwood.ParsePolicy expects
// the two equal).
func logVerifier(verifierKey string) (note.Verifier, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	return v, nil
}

// signCheckpoint signs the C2SP tlog-checkpoint of tree with the log key,
// whose name is the origin line.
func signCheckpoint(key note.Signer, tree tlog.Tree) ([]byte, error) {
	c := torchwood.Checkpoint{Origin: key.Name(), Tree: tree}
	msg, err := note.Sign(&note.Note{Text: c.String()}, key)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return msg, nil
}

// openCheckpoint verifies a signed checkpoint of this log: exactly one
// signature, by the log key, over a checkpoint whose origin is the key's
// name, without extension lines, in its one encoding.
func openCheckpoint(msg []byte, v note.Verifier) (tlog.Tree, error) {
	if len(msg) > audit.MaxCheckpointSize {
		return tlog.Tree{}, fmt.Errorf("checkpoint of %d bytes, more than %d", len(msg), audit.MaxCheckpointSize)
	}
	policy := torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(v.Name()), torchwood.SingleVerifierPolicy(v))
	c, n, err := torchwood.VerifyCheckpoint(msg, policy)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint: %w", err)
	}
	if c.Extension != "" || len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		return tlog.Tree{}, errors.New("checkpoint: extension lines or other signatures than the log key's")
	}
	sig := n.Sigs[0]
	if _, err := base64.StdEncoding.Strict().DecodeString(sig.Base64); err != nil ||
		c.String() != n.Text || string(msg) != n.Text+"\n— "+sig.Name+" "+sig.Base64+"\n" {
		return tlog.Tree{}, errors.New("checkpoint: not in its one encoding")
	}
	return c.Tree, nil
}

// readPin reads and verifies the pinned checkpoint; nil if there is none.
func readPin(path string, v note.Verifier) (*logHead, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pinned checkpoint: %w", err)
	}
	defer f.Close()
	msg, err := io.ReadAll(io.LimitReader(f, audit.MaxCheckpointSize+1))
	if err != nil {
		return nil, fmt.Errorf("pinned checkpoint: %w", err)
	}
	tree, err := openCheckpoint(msg, v)
	if err != nil {
		return nil, err
	}
	return &logHead{tree: tree, signed: msg}, nil
}

// pin replaces the pinned checkpoint durably.
func pin(path string, signed []byte) error {
	if err := atomicfile.Replace(path, signed, 0o600); err != nil {
		return fmt.Errorf("pin checkpoint: %w", err)
	}
	return nil
}

// logScan is what scanLog found in the database.
type logScan struct {
	size int64
	// hashes are the stored hashes recomputed from the entries.
	hashes []tlog.Hash
	tree   tlog.Tree
	// head is the stored checkpoint, nil for a log that never had one.
	head *logHead
	// lastBundle is the last bundle entry, nil if none; bundles the
	// indexes of every bundle entry, in order.
	lastBundle []byte
	bundles    []int64
	// seeds are the proof-of-work seed entries, in log order.
	seeds [][]byte
}

func (sc *logScan) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(sc.hashes)) {
			return nil, fmt.Errorf("stored hash %d not computed", x)
		}
		out[i] = sc.hashes[x]
	}
	return out, nil
}

// scanLog recomputes the stored hashes of every entry from its bytes,
// compares them with the stored ones, and checks that the stored
// checkpoint verifies and covers exactly the recomputed tree. A log that
// does not agree with itself is a *LogCheckError with ErrLogCorrupt (its
// DataDir and Pinned are the caller's to fill).
func scanLog(ctx context.Context, st *storage.Store, v note.Verifier) (*logScan, error) {
	size, err := st.LogSize(ctx)
	if err != nil {
		return nil, err
	}
	corrupt := func(format string, args ...any) error {
		return &LogCheckError{Database: size, Pinned: -1, Err: ErrLogCorrupt, Detail: fmt.Sprintf(format, args...)}
	}
	nh, err := st.CountStoredHashes(ctx)
	if err != nil {
		return nil, err
	}
	if want := tlog.StoredHashCount(size); nh != want {
		return nil, corrupt("%d stored hashes for %d entries, want %d", nh, size, want)
	}
	sc := &logScan{size: size, hashes: make([]tlog.Hash, 0, tlog.StoredHashCount(size))}
	for start := int64(0); start < size; start += scanBatch {
		end := min(size, start+scanBatch)
		entries, err := st.ReadEntries(ctx, start, end)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, corrupt("%v", err)
		}
		if err != nil {
			return nil, err
		}
		stored, err := st.ReadStoredHashes(ctx, tlog.StoredHashIndex(0, start), tlog.StoredHashIndex(0, end))
		if errors.Is(err, storage.ErrNotFound) {
			return nil, corrupt("%v", err)
		}
		if err != nil {
			return nil, err
		}
		for j, e := range entries {
			i := start + int64(j)
			hs, err := tlog.StoredHashes(i, e, sc)
			if err != nil {
				return nil, fmt.Errorf("hash entry %d: %w", i, err)
			}
			off := tlog.StoredHashIndex(0, i) - tlog.StoredHashIndex(0, start)
			for k, h := range hs {
				if stored[off+int64(k)] != h {
					return nil, corrupt("entry %d does not hash to its stored hashes (stored hash %d)", i, tlog.StoredHashIndex(0, i)+int64(k))
				}
			}
			sc.hashes = append(sc.hashes, hs...)
			switch {
			case bytes.HasPrefix(e, []byte(crypto.BundleHeader+"\n")):
				sc.lastBundle = e
				sc.bundles = append(sc.bundles, i)
			case bytes.HasPrefix(e, []byte(crypto.PoWSeedHeader+"\n")):
				sc.seeds = append(sc.seeds, e)
			}
		}
	}
	h, err := tlog.TreeHash(size, sc)
	if err != nil {
		return nil, fmt.Errorf("tree hash: %w", err)
	}
	sc.tree = tlog.Tree{N: size, Hash: h}
	n, signed, err := st.LogCheckpoint(ctx)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if size > 0 {
			return nil, corrupt("no stored checkpoint")
		}
		return sc, nil
	case err != nil:
		return nil, err
	}
	tree, err := openCheckpoint(signed, v)
	if err != nil {
		return nil, corrupt("stored checkpoint: %v", err)
	}
	if n != size || tree != sc.tree {
		return nil, corrupt("the stored checkpoint (%d entries) is not the tree of the entries", tree.N)
	}
	sc.head = &logHead{tree: tree, signed: signed}
	return sc, nil
}

// checkAgainstPin checks a scanned database against the pinned checkpoint
// (nil if none).
func checkAgainstPin(dataDir string, sc *logScan, pinned *logHead) error {
	e := &LogCheckError{DataDir: dataDir, Database: sc.size, Pinned: -1}
	if pinned != nil {
		e.Pinned = pinned.tree.N
	}
	switch {
	case pinned == nil && sc.size > 0:
		e.Err, e.Detail = ErrNoPin, "was the database copied without its data directory's checkpoint file?"
		return e
	case pinned == nil:
		return nil
	case sc.size < pinned.tree.N:
		e.Err, e.Detail = ErrLogBehind, "was the database restored from an older copy?"
		return e
	}
	h, err := tlog.TreeHash(pinned.tree.N, sc)
	if err != nil {
		return fmt.Errorf("server: tree hash at size %d: %w", pinned.tree.N, err)
	}
	if h != pinned.tree.Hash {
		e.Err, e.Detail = ErrLogDiffers, fmt.Sprintf("its tree of size %d has root %s, the pinned one %s", pinned.tree.N, h, pinned.tree.Hash)
		return e
	}
	return nil
}

// openLog opens the editorial log at start: it checks the database's log
// against itself and against the pinned checkpoint, pins the database's
// checkpoint if it is ahead (a crash between commit and pin), logs the
// bundle in force if the log does not hold it yet (a new log's entry 0, or
// a bundle published just before a crash) or puts the log's last bundle
// in force if it is newer than the stored ones (a recovered log), and logs
// the stored seeds of the current and previous proof-of-work epochs that
// the log lacks (logStoredSeeds).
func (s *Server) openLog(ctx context.Context) error {
	v, err := logVerifier(s.logKey.Verifier)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	l := &editorialLog{
		key:      s.logKey.Signer,
		verifier: v,
		pinPath:  filepath.Join(s.cfg.DataDir, CheckpointFile),
		sem:      make(chan struct{}, maxEventWrites),
	}
	pinned, err := readPin(l.pinPath, v)
	if err != nil {
		return &LogCheckError{DataDir: s.cfg.DataDir, Database: -1, Pinned: -1, Err: ErrBadPin,
			Detail: fmt.Sprintf("was the file replaced? (%v) Put back the one this server wrote; if it is lost, move it aside before recovering", err)}
	}
	sc, err := scanLog(ctx, s.store, v)
	var lce *LogCheckError
	if errors.As(err, &lce) {
		lce.DataDir = s.cfg.DataDir
		if pinned != nil {
			lce.Pinned = pinned.tree.N
		}
		return lce
	}
	if err != nil {
		return fmt.Errorf("server: open log: %w", err)
	}
	if err := checkAgainstPin(s.cfg.DataDir, sc, pinned); err != nil {
		return err
	}
	if pinned != nil && sc.size > pinned.tree.N {
		// Committed, then the server stopped before pinning: the pinned
		// checkpoint is a prefix, so the database's may be pinned.
		s.log.Warn("the log in the database is ahead of the pinned checkpoint; pinning the database's", attrSize, sc.size, attrPinned, pinned.tree.N)
		if err := pin(l.pinPath, sc.head.signed); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	l.size, l.committed = sc.size, sc.head
	l.bundles = sc.bundles
	if sc.head != nil {
		l.head.Store(sc.head)
		l.pinned = sc.size
	}
	if sc.lastBundle != nil {
		b, err := crypto.OpenBundle(sc.lastBundle, s.newsroom)
		if err != nil {
			return &LogCheckError{DataDir: s.cfg.DataDir, Database: sc.size, Pinned: l.size, Err: ErrLogCorrupt,
				Detail: fmt.Sprintf("its last bundle does not verify against the pinned newsroom key: %v", err)}
		}
		l.logged = b
		if cur := s.bundle.Load(); b.Version > cur.Version {
			// The log holds a newer bundle than the store: a database
			// restored from an older copy, whose log RecoverLog rebuilt
			// from a replica. The newsroom signed it and the server once
			// put it in force: it is in force again.
			if err := s.store.PutBundle(ctx, b.Version, b.Signed(), crypto.Day(s.now())); err != nil && !errors.Is(err, storage.ErrDuplicate) {
				return fmt.Errorf("server: store the log's bundle: %w", err)
			}
			s.bundle.Store(b)
			s.log.Warn("the log holds a newer bundle than the store; it is in force", attrVersion, b.Version)
		}
	}
	s.loadLoggedSeeds(sc.seeds)
	s.elogState = l
	// A bundle put in force and then not logged (the server stopped
	// between servePublishBundle's store and its log append, or the
	// append failed) is logged here, before anything else.
	if _, err := s.logBundleInForce(ctx); err != nil {
		return fmt.Errorf("server: log the bundle in force: %w", err)
	}
	// Likewise a proof-of-work seed stored and then not logged (seeds.go).
	if err := s.logStoredSeeds(ctx); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.log.Info("editorial log opened", attrSize, l.head.Load().tree.N)
	return nil
}
