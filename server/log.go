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
//
// The log is in four files by job: logopen.go opens the log at start and
// pins checkpoints, logseq.go is the commit sequencer, loghttp.go serves
// the log's endpoints and logrecover.go rebuilds a log from a replica.

import (
	"slices"
	"sync"
	"sync/atomic"

	"fieldtip/audit"
	"fieldtip/crypto"

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

	// bundleMu guards bundles, the log indexes of the bundle entries, in
	// order (the trail's bundle in force at an index: claims.go).
	bundleMu sync.Mutex
	bundles  []int64

	// pinMu guards pinned, the size of the pinned checkpoint.
	pinMu  sync.Mutex
	pinned int64

	// testOnlyBeforeCommit, when set, runs in the committer with each
	// batch's size before it is checked and written.
	testOnlyBeforeCommit func(n int)
}

func (s *Server) elog() *editorialLog { return s.elogState }

// addBundleIndex records that the bundle entry at index is committed.
func (l *editorialLog) addBundleIndex(index int64) {
	l.bundleMu.Lock()
	defer l.bundleMu.Unlock()
	l.bundles = append(l.bundles, index)
}

// bundleBefore returns the log index of the bundle in force at index: the
// last bundle entry before it, or -1 if none.
func (l *editorialLog) bundleBefore(index int64) int64 {
	l.bundleMu.Lock()
	defer l.bundleMu.Unlock()
	i, _ := slices.BinarySearch(l.bundles, index)
	if i == 0 {
		return -1
	}
	return l.bundles[i-1]
}
