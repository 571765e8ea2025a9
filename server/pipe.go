package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"
)

// One durable write per tip (issue 11). A session reads an upload's
// messages and hands what it checked (the open, frames, the commit) to the
// upload's pipe, which stores it in the background: whatever arrived while
// the previous write waited for its fsync goes in the next one, as one
// storage.UploadWrite, so the frames in flight are appended in one
// transaction (and the group-commit writer adds other sessions' writes to
// it). What the session holds back until the next piece arrives (the open
// until the first frame, the last frame until the commit) goes with it, so
// a one-frame tip whose upload message, frame and commit arrive together
// is opened, written and committed in one transaction. The pipe answers
// only what is durable: an ack once frames are stored, the receipt once
// the tip is.
//
// Memory is bounded: the session waits while maxPipeBytes of frames wait
// to be stored, so an upload costs the server at most two batches of
// frames, whatever its size.

// maxPipeBytes bounds the frames that wait in a pipe: eight 16 KiB frames,
// twice the window of FIELD.md's clients.
const maxPipeBytes = 8 * protocol.FrameSize

// piece is what a session hands its pipe; pieces merge until the pipe's
// writer takes them, in one write.
type piece struct {
	// open, with epoch and evict, opens the upload (openUpload).
	open  *storage.Upload
	epoch int64
	evict [][16]byte
	// frames are consecutive frames of bytes bytes; hashState is the
	// SHA-256 state after them.
	frames    [][]byte
	bytes     int64
	hashState []byte
	// commit, if set, commits the upload as this tip, whose receipt is
	// commit.Receipt.
	commit *storage.Tip
}

func (p *piece) empty() bool { return p.open == nil && len(p.frames) == 0 && p.commit == nil }

// merge appends q, which comes after p.
func (p *piece) merge(q piece) {
	if q.open != nil {
		p.open, p.epoch, p.evict = q.open, q.epoch, q.evict
	}
	p.frames = append(p.frames, q.frames...)
	p.bytes += q.bytes
	if q.hashState != nil {
		p.hashState = q.hashState
	}
	if q.commit != nil {
		p.commit = q.commit
	}
}

// pipe stores one upload's pieces in order, one write at a time, from a
// goroutine of its own that lives while the upload is open on a session.
type pipe struct {
	s  *Server
	ss *sourceSession
	id protocol.UploadID

	mu   sync.Mutex
	cond *sync.Cond
	// next is what waits to be written; ready is set once it may be
	// (nothing in it waits for a later piece).
	next  piece
	ready bool
	// writing is set while a write is in flight; closing once the session
	// let go (what waits is then written, ready or not).
	writing, closing bool
	// received is the durable offset; err the refusal that stopped the
	// pipe.
	received int64
	err      *protocol.Error
	done     chan struct{}
}

// newPipe starts the pipe of up, whose durable offset is received.
func (ss *sourceSession) newPipe(up *upload, received int64) *pipe {
	p := &pipe{s: ss.s, ss: ss, id: up.id, received: received, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go p.run()
	return p
}

// add hands q to the pipe; ready false holds it (and what waits with it)
// until the next add with ready true, or close. It waits while
// maxPipeBytes of frames wait, and returns the refusal that stopped the
// pipe, if any.
func (p *pipe) add(q piece, ready bool) *protocol.Error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.err == nil && p.next.bytes >= maxPipeBytes {
		p.cond.Wait()
	}
	if p.err != nil {
		return p.err
	}
	p.next.merge(q)
	p.ready = p.ready || ready
	p.cond.Broadcast()
	return nil
}

// wait waits until everything handed to the pipe and ready is written and
// answered, and returns the refusal that stopped the pipe, if any. What is
// held (not ready) is written first.
func (p *pipe) wait() *protocol.Error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.next.empty() {
		p.ready = true
		p.cond.Broadcast()
	}
	for p.err == nil && (p.writing || !p.next.empty()) {
		p.cond.Wait()
	}
	return p.err
}

// close writes what waits, ready or not, and stops the pipe.
func (p *pipe) close() {
	p.mu.Lock()
	p.closing = true
	p.cond.Broadcast()
	p.mu.Unlock()
	<-p.done
}

// failure returns the refusal that stopped the pipe, or nil.
func (p *pipe) failure() *protocol.Error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *pipe) run() {
	defer close(p.done)
	for {
		p.mu.Lock()
		for !p.closing && !(p.ready && !p.next.empty()) {
			p.cond.Wait()
		}
		if p.next.empty() || p.err != nil {
			p.mu.Unlock()
			return
		}
		w := p.next
		p.next, p.ready, p.writing = piece{}, false, true
		offset := p.received
		closing := p.closing
		p.cond.Broadcast()
		p.mu.Unlock()

		received, perr := p.write(w, offset)

		p.mu.Lock()
		p.writing = false
		if perr != nil {
			p.err = perr
			p.cond.Broadcast()
			p.mu.Unlock()
			// Wake the session if it waits for a message: the read it
			// cuts short reports this refusal (upFailed).
			if !closing {
				p.ss.conn.SetReadDeadline(time.Now())
			}
			return
		}
		p.writing = true // until answered: a waiting commit's session must not write (or read) before the receipt is out
		p.received = received
		p.mu.Unlock()
		if !closing {
			p.answer(w, received)
		}
		p.mu.Lock()
		p.writing = false
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

// write stores w at offset and returns the new durable offset.
func (p *pipe) write(w piece, offset int64) (int64, *protocol.Error) {
	if p.s.testOnlyBeforeWrite != nil {
		p.s.testOnlyBeforeWrite(len(w.frames), w.open != nil, w.commit != nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.s.cfg.CommitTimeout)
	defer cancel()
	uw := &storage.UploadWrite{ID: p.id, Open: w.open, Epoch: w.epoch, Evict: w.evict, Offset: offset,
		Frames: w.frames, HashState: w.hashState, Day: crypto.Day(p.s.now()), Commit: w.commit}
	received, err := p.s.store.WriteUpload(ctx, uw)
	switch {
	case err == nil && w.commit != nil:
		// A tip, no longer an unfinished upload: its slot and its staging
		// space are free before its source reads the receipt.
		p.s.slots.remove(p.id)
		p.s.staging.Add(-received)
		return received, nil
	case err == nil:
		p.s.slots.progressed(p.id, received, p.s.now())
		return received, nil
	}
	p.s.staging.Add(-w.bytes)
	if w.open != nil || errors.Is(err, storage.ErrNotFound) {
		// Nothing of the open is stored, or the upload is gone: its slot
		// is free.
		p.s.slots.remove(p.id)
	}
	var conflict *storage.ConflictError
	switch {
	case errors.As(err, &conflict):
		return 0, &protocol.Error{Code: protocol.CodeConflict, Message: "data frame is not at the server's offset", Offset: conflict.Offset}
	case errors.Is(err, storage.ErrDuplicate) && w.open != nil:
		return 0, errReplayed
	case errors.Is(err, storage.ErrNotFound):
		return 0, errUploadExpired
	case w.commit != nil:
		if perr := p.s.failed("store tip", err); perr != errInternal {
			return 0, perr
		}
		return 0, errCommitUnknown
	}
	return 0, p.s.failed("store upload", err)
}

// answer sends what a write made durable: the ack of its frames, the
// receipt of its commit. A link that fails here fails the session's next
// read, which ends it.
func (p *pipe) answer(w piece, received int64) {
	if len(w.frames) > 0 && p.ss.send(&protocol.Ack{Offset: received}) != nil {
		return
	}
	if w.commit != nil {
		p.ss.send(&protocol.ReceiptReply{Receipt: w.commit.Receipt})
	}
}
