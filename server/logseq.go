package server

// The editorial log's commit sequencer: every append goes through it
// (log.go says what the log promises).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/storage"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

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
		c.waiters, c.err = batch, errInternal
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
	newBundle := false
	if cur := s.bundle.Load(); bundle == nil || cur.Version > bundle.Version {
		entries = append(entries, storage.LogEntry{Data: cur.Signed()})
		bundle, newBundle = cur, true
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
		if errors.As(err, &se) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			// The outcome of this append, or of an earlier one, is
			// unknown: nothing more is appended until a restart.
			l.broken = err
			s.log.Error("editorial log stopped: an append's outcome is unknown; restart fieldtipd", attrErr, err)
			c.err = errInternal
			return c
		}
		c.err = s.failed("append to the editorial log", err)
		return c
	}
	l.size, l.logged = tree.N, bundle
	if newBundle {
		l.addBundleIndex(at)
	}
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
				err = errInternal
			} else {
				l.pinned = c.head.tree.N
				l.head.Store(c.head)
				s.fileTimes.reset(false)
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
		return s.failed("check event id", err)
	}
	// A base is a checkpoint the author verified: a prefix of the
	// committed log (docs/audit.md, "Event entry").
	if ev.Base.N < 1 || ev.Base.N > at {
		return errEventNotPrefix(at)
	}
	root, ok := roots[ev.Base.N]
	if !ok {
		if root, err = tlog.TreeHash(ev.Base.N, hashes); err != nil {
			return s.failed("tree hash of an event's base", err)
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
