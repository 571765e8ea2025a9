package server

// The editorial log's server side (docs/log.md; AUDIT.md, "Promises").
//
//   - Every append (editorial events, the bundles put in force, and the
//     entries the server signs itself) goes through one committer at a
//     time, which gathers what is waiting into one storage transaction:
//     entries, stored hashes and the checkpoint the log key signs over the
//     new tree (storage.AppendEntries). Then the checkpoint is pinned in
//     DataDir/checkpoint (temporary file, fsync, rename, fsync; pins only
//     grow), and only then is anything it covers acknowledged or served.
//     The next batch is written while one is pinned.
//   - At start, openLog recomputes every entry's stored hashes and the tree
//     hash, and refuses to run when the database is corrupt, behind the
//     pinned checkpoint or differs from it (*LogCheckError): a restored old
//     backup must not fork the log. RecoverLog re-imports the log from an
//     editor's replica, verified against the pinned checkpoint.
//   - The bundle in force is logged before any entry that follows it, so
//     the bundle in force at an event's index is the one the server checked
//     the event against.
//
// The tests in editorial_log_test.go prove these on real files, keys and
// sockets.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
	"fieldtip/protocol"
	"fieldtip/storage"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// CheckpointFile is the name, in the data directory, of the pinned copy of
// the latest signed checkpoint.
const CheckpointFile = "checkpoint"

// dbFile is the store's name in the data directory (as Run opens it).
const dbFile = "fieldtip.db"

// newsroomSetting is the setting loadBundle pins the newsroom key in.
const newsroomSetting = "newsroom"

// Log limits.
const (
	// maxLogBatch caps the requests one commit takes.
	maxLogBatch = 256
	// maxEventWrites caps event requests in flight: each holds up to
	// maxEventRequest bytes in memory. More wait for a slot.
	maxEventWrites = 16
	// maxEventRequest caps a POST /event body: the length prefix, the
	// signed event and the body's age file.
	maxEventRequest = 2 + audit.MaxEventSize + audit.MaxSealedBodySize
	// maxCheckpointSize caps a signed checkpoint read back: ours are about
	// 200 bytes.
	maxCheckpointSize = 4096
	// scanBatch is how many entries openLog reads at once.
	scanBatch = 1024
)

// immutable is the Cache-Control of tiles and event bodies: the bytes at
// such a path never change (C2SP tlog-tiles).
const immutable = "public, max-age=31536000, immutable"

// Log attribute keys.
const (
	attrSize   = "size"
	attrPinned = "pinned"
	attrBatch  = "batch"
)

// recoverHint is the recovery command a refusal to start names (fieldtipd
// --recover-log calls RecoverLog).
const recoverHint = "fieldtipd --data %s --recover-log <an editor's replica: directory or URL>"

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

// logHead is a committed checkpoint: its tree and signed note.
type logHead struct {
	tree   tlog.Tree
	signed []byte
}

// editorialLog is a server's log state (Server.elogState).
type editorialLog struct {
	key      note.Signer
	verifier note.Verifier
	pinPath  string

	// head is the published checkpoint: tiles, entries and bodies are
	// served up to its size.
	head atomic.Pointer[logHead]
	// sem bounds event requests in flight.
	sem chan struct{}

	qmu     sync.Mutex
	pending []*logRequest

	// commitMu is held by the one committer; it guards what follows.
	commitMu sync.Mutex
	// size is the number of entries committed (at least head's), and
	// committed their checkpoint.
	size      int64
	committed *logHead
	// logged is the last bundle in the log.
	logged *crypto.Bundle
	// broken, once set, stops every append: an append's outcome is
	// unknown, and only a restart (openLog) learns the log's state.
	broken error

	// pinMu guards pinned, the size of the pinned checkpoint.
	pinMu  sync.Mutex
	pinned int64

	// testOnlyBeforeCommit, when set, runs in the committer with each
	// batch's size before it is checked and written.
	testOnlyBeforeCommit func(n int)
}

func (s *Server) elog() *editorialLog { return s.elogState }

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
	if len(msg) > maxCheckpointSize {
		return tlog.Tree{}, fmt.Errorf("checkpoint of %d bytes, more than %d", len(msg), maxCheckpointSize)
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
	msg, err := io.ReadAll(io.LimitReader(f, maxCheckpointSize+1))
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
	// lastBundle is the last bundle entry, nil if none.
	lastBundle []byte
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

// logRequest is one append waiting for the committer: an editorial event
// (event set), entries the server signed, or nothing (only the bundle in
// force, if the log lacks it).
type logRequest struct {
	entries [][]byte
	event   *audit.Event
	body    []byte
	done    chan logAnswer
	// taken is set, under qmu, when a committer takes r.
	taken bool
}

// logAnswer is the committer's answer: the index of the request's first
// entry (-1 if it appended none) and the checkpoint of its commit, which
// is pinned or extended by the pinned one; or err, a *protocol.Error for a
// refusal.
type logAnswer struct {
	index int64
	head  *logHead
	err   error
}

// sequence queues r and returns once a committer answered it: the answer
// comes after the entries are committed and a checkpoint covering them is
// pinned. It does not give up on a cancelled request: the commit is
// bounded by CommitTimeout.
//
// Whoever finds requests waiting becomes the committer of a batch of them:
// it checks and appends the batch under commitMu, then pins and answers
// under pinMu, so the next batch is written while this one is pinned.
func (s *Server) sequence(r *logRequest) logAnswer {
	l := s.elog()
	r.done = make(chan logAnswer, 1)
	l.qmu.Lock()
	l.pending = append(l.pending, r)
	l.qmu.Unlock()
	for {
		l.commitMu.Lock()
		l.qmu.Lock()
		var batch []*logRequest
		if !r.taken {
			n := min(len(l.pending), maxLogBatch)
			batch = append(batch, l.pending[:n]...)
			l.pending = append(l.pending[:0:0], l.pending[n:]...)
			for _, b := range batch {
				b.taken = true
			}
		}
		l.qmu.Unlock()
		if len(batch) == 0 {
			// Another committer took r.
			l.commitMu.Unlock()
			return <-r.done
		}
		c := s.commitLog(l, batch)
		l.commitMu.Unlock()
		s.publishLog(l, c)
		if slices.Contains(batch, r) {
			return <-r.done
		}
		// r was behind a full batch.
	}
}

// Refusals of editorial events (docs/log.md, "POST /event"). The text is
// fixed per reason and never echoes what the client sent.
var (
	errEventMalformed = protocol.Errorf(protocol.CodeMalformed, "event request malformed")
	errEventTooLarge  = protocol.Errorf(protocol.CodeTooLarge, "event request larger than %d bytes", maxEventRequest)
	errEventSigner    = protocol.Errorf(protocol.CodeUnauthorized, "event not signed by an editor of the bundle in force")
	errEventRevoked   = protocol.Errorf(protocol.CodeUnauthorized, "event signed by an editor the bundle in force revokes")
	errEventNotYours  = protocol.Errorf(protocol.CodeUnauthorized, "event signed by another editor than the one logged in")
	errEventBodyHash  = protocol.Errorf(protocol.CodeBadHash, "body does not hash to the event's ciphertext hash")
	errLogBusy        = protocol.Errorf(protocol.CodeBusy, "log busy, try again")
	errLogStopping    = protocol.Errorf(protocol.CodeShuttingDown, "server shutting down")
	errLogInternal    = protocol.Errorf(protocol.CodeInternal, "internal error")
)

func errEventStale(inForce int64) *protocol.Error {
	return protocol.Errorf(protocol.CodeStaleBundle, "event names another bundle than version %d, the one in force", inForce)
}

func errEventReplayed(index int64) *protocol.Error {
	if index < 0 {
		return protocol.Errorf(protocol.CodeReplayed, "event id sent twice")
	}
	return protocol.Errorf(protocol.CodeReplayed, "event id already logged at index %d", index)
}

// errEventNotPrefix carries the log's size as the offset: fetch the
// checkpoint, check it is consistent with the one you saw, sign again.
func errEventNotPrefix(size int64) *protocol.Error {
	e := protocol.Errorf(protocol.CodeConflict, "base checkpoint is not a prefix of the log")
	e.Offset = size
	return e
}

// logCommit is a batch appended and not yet published: its requests and
// the checkpoint that covers them.
type logCommit struct {
	// owners asked for entries from first[i] on; waiters appended none.
	owners, waiters []*logRequest
	first           []int64
	head            *logHead
	// err, if set, is every request's answer.
	err error
}

// commitLog checks a batch in order, answers the refused requests, and
// appends the others in one transaction. The caller holds l.commitMu, and
// then publishes the result (publishLog).
func (s *Server) commitLog(l *editorialLog, batch []*logRequest) *logCommit {
	c := &logCommit{head: l.committed}
	if l.broken != nil {
		c.waiters, c.err = batch, errLogInternal
		return c
	}
	if l.testOnlyBeforeCommit != nil {
		l.testOnlyBeforeCommit(len(batch))
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CommitTimeout)
	defer cancel()

	at := l.size
	var entries []storage.LogEntry
	bundle := l.logged
	if cur := s.bundle.Load(); bundle == nil || cur.Version > bundle.Version {
		entries = append(entries, storage.LogEntry{Data: cur.Signed()})
		bundle = cur
	}
	hashes := s.store.LogHashes(ctx)
	roots := map[int64]tlog.Hash{}
	seen := map[[audit.EventIDSize]byte]bool{}
	for _, r := range batch {
		switch {
		case r.event != nil:
			if err := s.checkEvent(ctx, r.event, bundle, at, seen, roots, hashes); err != nil {
				r.done <- logAnswer{index: -1, err: err}
				continue
			}
			seen[r.event.ID] = true
			c.owners, c.first = append(c.owners, r), append(c.first, at+int64(len(entries)))
			entries = append(entries, storage.LogEntry{Data: r.entries[0], EventID: r.event.ID[:], Body: r.body})
		case len(r.entries) > 0:
			c.owners, c.first = append(c.owners, r), append(c.first, at+int64(len(entries)))
			for _, e := range r.entries {
				entries = append(entries, storage.LogEntry{Data: e})
			}
		default:
			c.waiters = append(c.waiters, r)
		}
	}
	if len(entries) == 0 {
		return c
	}
	tree, signed, err := s.store.AppendEntries(ctx, at, entries, func(tree tlog.Tree) ([]byte, error) {
		return signCheckpoint(l.key, tree)
	})
	if err != nil {
		var se *storage.LogSizeError
		switch {
		case errors.Is(err, storage.ErrBusy):
			c.err = errLogBusy
		case errors.Is(err, storage.ErrClosed):
			c.err = errLogStopping
		case errors.As(err, &se), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			// The outcome of this append, or of an earlier one, is
			// unknown: nothing more is appended until a restart.
			l.broken = err
			s.log.Error("editorial log stopped: an append's outcome is unknown; restart fieldtipd", attrErr, err)
			c.err = errLogInternal
		default:
			s.log.Error("append to the editorial log", attrErr, err)
			c.err = errLogInternal
		}
		return c
	}
	l.size, l.logged = tree.N, bundle
	l.committed = &logHead{tree: tree, signed: signed}
	c.head = l.committed
	s.log.Debug("editorial log appended", attrSize, tree.N, attrBatch, len(entries))
	return c
}

// publishLog pins the checkpoint of a commit, unless a later one is pinned
// already, publishes it, and answers the commit's requests: each with the
// commit's own checkpoint, which the pinned one extends. Pins only grow,
// under pinMu.
func (s *Server) publishLog(l *editorialLog, c *logCommit) {
	err := c.err
	if err == nil && c.head != nil {
		l.pinMu.Lock()
		if c.head.tree.N > l.pinned {
			if perr := pin(l.pinPath, c.head.signed); perr != nil {
				// Committed but not pinned: nothing is acknowledged or
				// served beyond the pinned checkpoint; the next commit,
				// or a restart, pins a later one.
				s.log.Error("editorial log committed but not pinned", attrSize, c.head.tree.N, attrErr, perr)
				err = errLogInternal
			} else {
				l.pinned = c.head.tree.N
				l.head.Store(c.head)
			}
		}
		l.pinMu.Unlock()
	}
	for i, r := range c.owners {
		a := logAnswer{index: c.first[i], head: c.head, err: err}
		if err != nil {
			a.index = -1
		}
		r.done <- a
	}
	for _, r := range c.waiters {
		r.done <- logAnswer{index: -1, head: c.head, err: err}
	}
}

// checkEvent checks an event (whose signature verified against the bundle
// in force when it arrived) against the log it would be appended to: at
// is the committed size, bundle the bundle in force at its index, seen
// the ids earlier in the batch, roots a cache of the log's tree hashes.
func (s *Server) checkEvent(ctx context.Context, ev *audit.Event, bundle *crypto.Bundle, at int64,
	seen map[[audit.EventIDSize]byte]bool, roots map[int64]tlog.Hash, hashes tlog.HashReader) error {
	if ev.Bundle != bundle.Version {
		return errEventStale(bundle.Version)
	}
	if seen[ev.ID] {
		return errEventReplayed(-1)
	}
	idx, err := s.store.EventIndex(ctx, ev.ID[:])
	if err == nil {
		return errEventReplayed(idx)
	}
	if !errors.Is(err, storage.ErrNotFound) {
		s.log.Error("check event id", attrErr, err)
		return errLogInternal
	}
	// A base is a checkpoint the author verified: a prefix of the
	// committed log (docs/audit.md, "Event entry").
	if ev.Base.N < 1 || ev.Base.N > at {
		return errEventNotPrefix(at)
	}
	root, ok := roots[ev.Base.N]
	if !ok {
		if root, err = tlog.TreeHash(ev.Base.N, hashes); err != nil {
			s.log.Error("tree hash of an event's base", attrErr, err)
			return errLogInternal
		}
		roots[ev.Base.N] = root
	}
	if root != ev.Base.Hash {
		return errEventNotPrefix(at)
	}
	return nil
}

// logBundleInForce appends the bundle in force to the log if the log does
// not hold it yet, and returns the published tree. It returns after the
// bundle is committed and pinned. servePublishBundle calls it after
// putting a bundle in force; without that call the bundle is logged before
// the next entry, or at the next start.
func (s *Server) logBundleInForce(ctx context.Context) (tlog.Tree, error) {
	a := s.sequence(&logRequest{})
	if a.err != nil {
		return tlog.Tree{}, a.err
	}
	return a.head.tree, nil
}

// appendLog appends entries the server signed with its log key (the
// proof-of-work seed of each epoch, the receipts root of each period), in
// this order and next to each other, and returns the index of the first
// and the published tree that covers them. It returns after they are
// committed and pinned; a refusal leaves the log unchanged. An entry
// appended twice is logged twice: callers append each seed or root once,
// when they store it.
func (s *Server) appendLog(ctx context.Context, entries ...[]byte) (int64, tlog.Tree, error) {
	l := s.elog()
	if len(entries) == 0 || len(entries) > storage.MaxAppend-1 {
		return 0, tlog.Tree{}, fmt.Errorf("server: append to the log: %d entries, want 1 to %d", len(entries), storage.MaxAppend-1)
	}
	for i, e := range entries {
		if len(e) > audit.MaxEntrySize {
			return 0, tlog.Tree{}, fmt.Errorf("server: append to the log: entry %d: %d bytes, more than %d", i, len(e), audit.MaxEntrySize)
		}
		switch kind, _, _ := strings.Cut(string(e[:min(len(e), 64)]), "\n"); kind {
		case audit.PoWSeedHeader, audit.ReceiptsHeader:
		default:
			return 0, tlog.Tree{}, fmt.Errorf("server: append to the log: entry %d: first line %q is not a kind the server signs", i, kind)
		}
		if _, err := note.Open(e, note.VerifierList(l.verifier)); err != nil {
			return 0, tlog.Tree{}, fmt.Errorf("server: append to the log: entry %d is not signed by the log key: %w", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, tlog.Tree{}, fmt.Errorf("server: append to the log: %w", err)
	}
	a := s.sequence(&logRequest{entries: entries})
	if a.err != nil {
		return 0, tlog.Tree{}, fmt.Errorf("server: append to the log: %w", a.err)
	}
	return a.index, a.head.tree, nil
}

// registerLogRoutes serves the editorial log's endpoints (protocol/log.go).
func (s *Server) registerLogRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+protocol.PathCheckpoint, s.serveCheckpoint)
	mux.HandleFunc("GET "+protocol.PathTiles, s.serveTile)
	mux.HandleFunc("GET "+protocol.PathEventBodies+"{index}", s.serveEventBody)
	mux.HandleFunc("POST "+protocol.PathEvent, s.servePostEvent)
}

var errNoSuchTile = protocol.Errorf(protocol.CodeNotFound, "no such tile in the log")

func (s *Server) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	head := s.elog().head.Load()
	if head == nil {
		writeHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "the log is empty"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(head.signed)))
	w.Write(head.signed)
}

// parseTilePath parses the path of a tile or entry bundle (C2SP
// tlog-tiles), without its leading slash, in its one spelling.
func parseTilePath(path string) (tlog.Tile, error) {
	t, err := torchwood.ParseTilePath(path)
	if err != nil || t.H != torchwood.TileHeight || torchwood.TilePath(t) != path {
		return tlog.Tile{}, fmt.Errorf("not a tile path: %q", clipString(path))
	}
	return t, nil
}

// tileAvailable reports whether tile t of a tree of size n can be served:
// every hash (or entry) it holds is in the tree.
func tileAvailable(t tlog.Tile, n int64) bool {
	level := t.L
	if level == -1 {
		level = 0
	}
	if level < 0 || level > 7 || t.N < 0 || t.W < 1 || t.W > torchwood.TileWidth {
		return false
	}
	// Level L holds the hashes of complete subtrees of 256^L entries.
	avail := n >> (torchwood.TileHeight * level)
	return t.N <= avail/torchwood.TileWidth && t.N*torchwood.TileWidth+int64(t.W) <= avail
}

func (s *Server) serveTile(w http.ResponseWriter, r *http.Request) {
	t, err := parseTilePath(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil {
		writeHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeMalformed, "not a tile path"))
		return
	}
	head := s.elog().head.Load()
	if head == nil || !tileAvailable(t, head.tree.N) {
		writeHTTPError(w, http.StatusNotFound, errNoSuchTile)
		return
	}
	var data []byte
	if t.L == -1 {
		start := t.N * torchwood.TileWidth
		entries, err := s.store.ReadEntries(r.Context(), start, start+int64(t.W))
		if err == nil {
			for _, e := range entries {
				if data, err = torchwood.AppendTileEntry(data, e); err != nil {
					break
				}
			}
		}
		if err != nil {
			s.log.Error("read entry bundle", attrErr, err)
			writeHTTPError(w, http.StatusInternalServerError, errLogInternal)
			return
		}
	} else if data, err = tlog.ReadTileData(t, s.store.LogHashes(r.Context())); err != nil {
		s.log.Error("read tile", attrErr, err)
		writeHTTPError(w, http.StatusInternalServerError, errLogInternal)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", immutable)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

// parseIndex parses an entry index: a canonical decimal integer ≥ 0.
func parseIndex(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("not an entry index: %q", clipString(s))
	}
	return n, nil
}

func (s *Server) serveEventBody(w http.ResponseWriter, r *http.Request) {
	index, err := parseIndex(r.PathValue("index"))
	if err != nil {
		writeHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeMalformed, "not an entry index"))
		return
	}
	head := s.elog().head.Load()
	var body []byte
	if head != nil && index < head.tree.N {
		body, err = s.store.EventBody(r.Context(), index)
	} else {
		err = storage.ErrNotFound
	}
	if errors.Is(err, storage.ErrNotFound) {
		writeHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "no event body at that index"))
		return
	}
	if err != nil {
		s.log.Error("read event body", attrErr, err)
		writeHTTPError(w, http.StatusInternalServerError, errLogInternal)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", immutable)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// splitEventRequest splits a POST /event body: a 2-byte big-endian length,
// the signed event entry (1 to audit.MaxEventSize bytes), then the body's
// age file (1 to audit.MaxSealedBodySize bytes) to the end.
func splitEventRequest(b []byte) (entry, body []byte, err error) {
	if len(b) > maxEventRequest {
		return nil, nil, fmt.Errorf("event request of %d bytes, more than %d", len(b), maxEventRequest)
	}
	entry, body, err = torchwood.ReadTileEntry(b)
	if err != nil {
		return nil, nil, fmt.Errorf("event request: %w", err)
	}
	if len(entry) == 0 || len(entry) > audit.MaxEventSize {
		return nil, nil, fmt.Errorf("event request: event of %d bytes, want 1 to %d", len(entry), audit.MaxEventSize)
	}
	if len(body) == 0 || len(body) > audit.MaxSealedBodySize {
		return nil, nil, fmt.Errorf("event request: body of %d bytes, want 1 to %d", len(body), audit.MaxSealedBodySize)
	}
	return entry, body, nil
}

// servePostEvent logs an editorial event (docs/log.md, "POST /event") and
// answers, once it is committed and pinned, with its inclusion proof in
// the new checkpoint (C2SP tlog-proof).
func (s *Server) servePostEvent(w http.ResponseWriter, r *http.Request) {
	editor, ok := s.editor(w, r)
	if !ok {
		return
	}
	if s.shuttingDown() {
		writeHTTPError(w, http.StatusServiceUnavailable, errLogStopping)
		return
	}
	l := s.elog()
	select {
	case l.sem <- struct{}{}:
		defer func() { <-l.sem }()
	case <-r.Context().Done():
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventRequest))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeHTTPError(w, http.StatusRequestEntityTooLarge, errEventTooLarge)
		return
	}
	if err != nil {
		return // the client went away
	}
	entry, body, err := splitEventRequest(b)
	if err != nil {
		writeHTTPError(w, http.StatusBadRequest, errEventMalformed)
		return
	}
	inForce := s.bundle.Load()
	ev, err := audit.OpenEvent(entry, inForce)
	switch {
	case errors.Is(err, audit.ErrRevokedEditor):
		writeHTTPError(w, http.StatusForbidden, errEventRevoked)
		return
	case errors.Is(err, crypto.ErrUnknownSigner), errors.Is(err, crypto.ErrBadSignature):
		writeHTTPError(w, http.StatusForbidden, errEventSigner)
		return
	case errors.Is(err, audit.ErrWrongBundle):
		writeHTTPError(w, http.StatusConflict, errEventStale(inForce.Version))
		return
	case err != nil:
		writeHTTPError(w, http.StatusBadRequest, errEventMalformed)
		return
	}
	if ev.Editor != editor {
		writeHTTPError(w, http.StatusForbidden, errEventNotYours)
		return
	}
	if sha256.Sum256(body) != ev.Ciphertext {
		writeHTTPError(w, http.StatusBadRequest, errEventBodyHash)
		return
	}
	a := s.sequence(&logRequest{entries: [][]byte{entry}, event: ev, body: body})
	if a.err != nil {
		var pe *protocol.Error
		if !errors.As(a.err, &pe) {
			pe = errLogInternal
		}
		writeHTTPError(w, statusFor(pe.Code), pe)
		return
	}
	proof, err := tlog.ProveRecord(a.head.tree.N, a.index, s.store.LogHashes(r.Context()))
	if err != nil {
		// Logged, but the proof could not be read: the client finds its
		// event in the log by its id.
		s.log.Error("prove a logged event", attrErr, err)
		writeHTTPError(w, http.StatusInternalServerError, errLogInternal)
		return
	}
	s.log.Debug("event logged", attrEditor, editor, attrSize, a.head.tree.N)
	out := torchwood.FormatProof(a.index, proof, a.head.signed)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

// statusFor is the HTTP status of each refusal of the log's endpoints.
func statusFor(c protocol.Code) int {
	switch c {
	case protocol.CodeMalformed, protocol.CodeBadHash:
		return http.StatusBadRequest
	case protocol.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case protocol.CodeUnauthorized:
		return http.StatusForbidden
	case protocol.CodeNotFound:
		return http.StatusNotFound
	case protocol.CodeStaleBundle, protocol.CodeReplayed, protocol.CodeConflict:
		return http.StatusConflict
	case protocol.CodeBusy, protocol.CodeShuttingDown:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func clipString(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// LogRecovery is what RecoverLog did.
type LogRecovery struct {
	// Database is the number of entries the database held before, Pinned
	// the pinned checkpoint's size (-1 without one), Recovered the size of
	// the log now in the database and pinned.
	Database, Pinned, Recovered int64
	// Bodies is how many event bodies the log holds now; MissingBodies
	// the indexes of events whose body neither the replica nor the old
	// database had.
	Bodies        int64
	MissingBodies []int64
}

// OpenReplica opens an editor's replica of the log for RecoverLog: an
// http:// or https:// URL serving the log's read endpoints, or a directory
// laid out the same way (docs/log.md, "Recovery"): checkpoint,
// tile/entries/… and event-body/<index>.
func OpenReplica(spec string) (torchwood.TileReader, error) {
	if strings.HasPrefix(spec, "http://") || strings.HasPrefix(spec, "https://") {
		tr, err := torchwood.NewTileFetcher(spec, torchwood.WithUserAgent("fieldtipd"))
		if err != nil {
			return nil, fmt.Errorf("server: replica %s: %w", spec, err)
		}
		return tr, nil
	}
	root, err := os.OpenRoot(spec)
	if err != nil {
		return nil, fmt.Errorf("server: replica: %w", err)
	}
	tr, err := torchwood.NewTileFS(root.FS())
	if err != nil {
		return nil, fmt.Errorf("server: replica %s: %w", spec, err)
	}
	return tr, nil
}

// readReplicaEntries reads entries start to end−1 of a replica whose
// checkpoint has size entries, tile by tile; a full tile stands in for a
// missing partial one.
func readReplicaEntries(ctx context.Context, tr torchwood.TileReader, start, end, size int64) ([][]byte, error) {
	var out [][]byte
	for n := start / torchwood.TileWidth; n*torchwood.TileWidth < end; n++ {
		t := tlog.Tile{H: torchwood.TileHeight, L: -1, N: n, W: int(min(torchwood.TileWidth, size-n*torchwood.TileWidth))}
		data, err := tr.ReadTiles(ctx, []tlog.Tile{t})
		if err != nil && t.W < torchwood.TileWidth {
			full := t
			full.W = torchwood.TileWidth
			data, err = tr.ReadTiles(ctx, []tlog.Tile{full})
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", torchwood.TilePath(t), err)
		}
		rest := data[0]
		for i := n * torchwood.TileWidth; i < n*torchwood.TileWidth+int64(t.W); i++ {
			var e []byte
			if e, rest, err = torchwood.ReadTileEntry(rest); err != nil {
				return nil, fmt.Errorf("%s: entry %d: %w", torchwood.TilePath(t), i, err)
			}
			if i >= start && i < end {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// batchReader serves the entries of one batch to an audit.Verifier.
type batchReader struct {
	start   int64
	entries [][]byte
}

func (b batchReader) ReadEntries(_ context.Context, start, end int64) ([][]byte, error) {
	if start < b.start || end > b.start+int64(len(b.entries)) || end < start {
		return nil, fmt.Errorf("entries %d to %d are not in the batch", start, end-1)
	}
	return b.entries[start-b.start : end-b.start], nil
}

// RecoverLog rebuilds the log of the server whose data directory is
// dataDir from an editor's replica (OpenReplica), with the server stopped.
// It reads the replica's checkpoint, which must verify with the server's
// log key and be at least as large as the pinned checkpoint; reads every
// entry up to it and audits them (package audit, with the pinned newsroom
// key); takes each event's body from the replica, or else from the old
// database, where its hash matches; and replaces the database's log in one
// transaction that commits only if the rebuilt tree is the replica's
// checkpoint and, at the pinned size, the pinned one. Then it pins the
// replica's checkpoint. A log that needs no recovery is ErrLogIntact, and
// is left alone.
func RecoverLog(ctx context.Context, dataDir string, replica torchwood.TileReader) (*LogRecovery, error) {
	keyFile, err := os.ReadFile(filepath.Join(dataDir, LogKeyFile))
	if err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	key, err := crypto.ParseSignerKey(crypto.LogKeyHeader, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server: recover log: log key: %w", err)
	}
	v, err := logVerifier(key.Verifier)
	if err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	pinPath := filepath.Join(dataDir, CheckpointFile)
	pinned, err := readPin(pinPath, v)
	if err != nil {
		return nil, &LogCheckError{DataDir: dataDir, Database: -1, Pinned: -1, Err: ErrBadPin,
			Detail: fmt.Sprintf("was the file replaced? (%v) Put back the one this server wrote; if it is lost, move it aside before recovering", err)}
	}
	rc := &LogRecovery{Pinned: -1}
	if pinned != nil {
		rc.Pinned = pinned.tree.N
	}
	dbPath := filepath.Join(dataDir, dbFile)
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	st, err := storage.Open(dbPath, storage.Options{})
	if err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	defer st.Close()
	if rc.Database, err = st.LogSize(ctx); err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}

	signed, err := replica.ReadEndpoint(ctx, strings.TrimPrefix(protocol.PathCheckpoint, "/"))
	if err != nil {
		return nil, fmt.Errorf("server: recover log: replica checkpoint: %w", err)
	}
	target, err := openCheckpoint(signed, v)
	if err != nil {
		return nil, fmt.Errorf("server: recover log: the replica's checkpoint is not this log's: %w", err)
	}
	if pinned != nil && target.N < pinned.tree.N {
		return nil, fmt.Errorf("server: recover log: the replica's checkpoint has %d entries, fewer than the pinned checkpoint's %d: find a newer replica", target.N, pinned.tree.N)
	}
	if sc, err := scanLog(ctx, st, v); err == nil && checkAgainstPin(dataDir, sc, pinned) == nil && sc.size >= target.N {
		return nil, fmt.Errorf("server: recover log: %w (%d entries, the replica has %d)", ErrLogIntact, sc.size, target.N)
	}

	newsroom, err := st.Setting(ctx, newsroomSetting)
	if errors.Is(err, storage.ErrNotFound) {
		// A database without even its settings: entry 0, authenticated by
		// the signed tree, names the newsroom key.
		newsroom, err = replicaNewsroom(ctx, replica, target.N)
	}
	if err != nil {
		return nil, fmt.Errorf("server: recover log: newsroom key: %w", err)
	}
	av, err := audit.NewVerifier(newsroom)
	if err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	bodyPath := strings.TrimPrefix(protocol.PathEventBodies, "/")
	entries := func(yield func(storage.LogEntry, error) bool) {
		for start := int64(0); start < target.N; start += torchwood.TileWidth {
			end := min(target.N, start+torchwood.TileWidth)
			batch, err := readReplicaEntries(ctx, replica, start, end, target.N)
			if err == nil {
				err = av.Verify(ctx, batchReader{start: start, entries: batch}, end)
			}
			if err != nil {
				yield(storage.LogEntry{}, fmt.Errorf("replica: %w", err))
				return
			}
			for j, e := range batch {
				i := start + int64(j)
				le := storage.LogEntry{Data: e}
				if bytes.HasPrefix(e, []byte(audit.EventHeader+"\n")) {
					ev, err := audit.OpenEvent(e, av.BundleAt(i))
					if err != nil {
						yield(storage.LogEntry{}, fmt.Errorf("replica: entry %d: %w", i, err))
						return
					}
					le.EventID = ev.ID[:]
					if b, err := replica.ReadEndpoint(ctx, bodyPath+strconv.FormatInt(i, 10)); err == nil && sha256.Sum256(b) == ev.Ciphertext {
						le.Body = b
					} else if b, err := st.EventBody(ctx, i); err == nil && sha256.Sum256(b) == ev.Ciphertext {
						le.Body = b
					}
					if le.Body != nil {
						rc.Bodies++
					} else {
						rc.MissingBodies = append(rc.MissingBodies, i)
					}
				}
				if !yield(le, nil) {
					return
				}
			}
		}
	}
	tree, err := st.ReplaceLog(ctx, iter.Seq2[storage.LogEntry, error](entries), func(tree tlog.Tree) ([]byte, error) {
		if tree != target {
			return nil, fmt.Errorf("the rebuilt tree (%d entries, root %s) is not the replica's checkpoint's (%d, %s)", tree.N, tree.Hash, target.N, target.Hash)
		}
		if pinned != nil {
			h, err := tlog.TreeHash(pinned.tree.N, av)
			if err != nil {
				return nil, err
			}
			if h != pinned.tree.Hash {
				return nil, fmt.Errorf("the replica's tree of size %d has root %s, the pinned checkpoint's is %s", pinned.tree.N, h, pinned.tree.Hash)
			}
		}
		return signed, nil
	})
	if err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	if err := pin(pinPath, signed); err != nil {
		return nil, fmt.Errorf("server: recover log: the log is rebuilt but %w; fieldtipd pins it at its next start", err)
	}
	rc.Recovered = tree.N
	return rc, nil
}

// replicaNewsroom returns the newsroom key named by entry 0 of a replica.
func replicaNewsroom(ctx context.Context, replica torchwood.TileReader, size int64) (string, error) {
	if size < 1 {
		return "", errors.New("the replica's log is empty")
	}
	e, err := readReplicaEntries(ctx, replica, 0, 1, size)
	if err != nil {
		return "", err
	}
	b, err := crypto.OpenBundleSelfSigned(e[0])
	if err != nil {
		return "", fmt.Errorf("entry 0: %w", err)
	}
	return b.Newsroom, nil
}
