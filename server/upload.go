package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"github.com/gorilla/websocket"
)

// upload is an upload open on a connection. Its bytes are on disk
// (storage.Upload); this is the session's view of it.
type upload struct {
	id        protocol.UploadID
	bundle    *crypto.Bundle
	length    int64
	frameSize int
	received  int64
	// conn is the connection the upload is open on, closed by a resume
	// that takes the upload over; released is closed once the session has
	// let go of the upload.
	conn     *websocket.Conn
	released chan struct{}
}

// Refusals of uploads.
var (
	errReplayed      = protocol.Errorf(protocol.CodeReplayed, "upload id already used: its proofs of work are spent; pick a new id")
	errUploadExpired = protocol.Errorf(protocol.CodeExpired, "the upload expired and was deleted; send it anew with a new upload id")
	// errCommitUnknown is the internal refusal of a commit whose durable
	// write failed: it may have happened.
	errCommitUnknown = protocol.Errorf(protocol.CodeInternal, "the tip may or may not be stored; resume to find out")
)

// takeOverTimeout bounds how long a resume waits for the dead connection
// that held its upload to let go.
const takeOverTimeout = 5 * time.Second

func (ss *sourceSession) seed() (*epochSeed, *protocol.Error) {
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommitTimeout)
	defer cancel()
	es, err := ss.s.currentSeed(ctx)
	if err != nil {
		return nil, ss.s.failed("pow seed", err)
	}
	return es, nil
}

// beginUpload runs the checks a new and a resumed upload share.
func (ss *sourceSession) beginUpload() *protocol.Error {
	if ss.up != nil {
		return protocol.Errorf(protocol.CodeUnexpected, "an upload is already open on this connection")
	}
	if ss.uploads >= ss.s.cfg.MaxUploadsPerConn {
		return protocol.Errorf(protocol.CodeTooManyUploads, "at most %d uploads per connection", ss.s.cfg.MaxUploadsPerConn)
	}
	ss.uploads++
	return nil
}

func (ss *sourceSession) openUpload(m *protocol.Upload) *protocol.Error {
	if perr := ss.beginUpload(); perr != nil {
		return perr
	}
	if m.Length > ss.s.cfg.MaxUploadSize {
		return protocol.Errorf(protocol.CodeTooLarge, "upload of %d bytes; this server takes at most %d", m.Length, ss.s.cfg.MaxUploadSize)
	}
	b, perr := ss.s.acceptedBundle(m.BundleVersion)
	if perr != nil {
		return perr
	}
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommitTimeout)
	defer cancel()
	// A replayed upload message is refused before its proofs cost anything:
	// a read, where checking them costs an Argon2id each.
	if spent, err := ss.s.store.UploadIDSpent(ctx, m.UploadID); err != nil {
		return ss.s.failed("upload id spent", err)
	} else if spent {
		return errReplayed
	}
	// Proof of work is checked before anything is written: it is what an
	// anonymous endpoint has instead of identities to rate-limit.
	if perr := ss.checkPoW(m); perr != nil {
		return perr
	}
	if ss.s.unfinished.Add(1) > int64(ss.s.cfg.MaxUnfinishedUploads) {
		ss.s.unfinished.Add(-1)
		return protocol.Errorf(protocol.CodeBusy, "the server holds too many unfinished uploads; try again later")
	}
	u := &storage.Upload{ID: m.UploadID, ResumeHash: m.ResumeHash, BundleVersion: b.Version,
		Length: m.Length, FrameSize: m.FrameSize, Expires: ss.s.uploadExpiry()}
	if err := ss.s.store.OpenUpload(ctx, u, m.PoWEpoch); err != nil {
		ss.s.unfinished.Add(-1)
		if errors.Is(err, storage.ErrDuplicate) {
			return errReplayed
		}
		return ss.s.failed("open upload", err)
	}
	seed, perr := ss.seed()
	if perr != nil {
		return perr
	}
	ss.hold(&upload{id: m.UploadID, bundle: b, length: m.Length, frameSize: m.FrameSize})
	return ss.send(&protocol.Offset{Offset: 0, Seed: seed.signed})
}

// checkPoW checks an upload's proofs of work against the seed of the epoch
// they name, which must be the current or the previous one.
func (ss *sourceSession) checkPoW(m *protocol.Upload) *protocol.Error {
	cur := crypto.EpochAt(ss.s.now(), ss.s.epochSeconds())
	if m.PoWEpoch != cur && m.PoWEpoch != cur-1 {
		return protocol.Errorf(protocol.CodeStalePoW, "proof of work for epoch %d; this server accepts epochs %d and %d", m.PoWEpoch, cur-1, cur)
	}
	if want := protocol.Proofs(m.Length); len(m.PoW) != want {
		return protocol.Errorf(protocol.CodeBadPoW, "%d proofs of work for an upload that needs %d (one per started %d bytes)", len(m.PoW), want, protocol.PoWChunkSize)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommitTimeout)
	defer cancel()
	var es *epochSeed
	var err error
	if m.PoWEpoch == cur {
		es, err = ss.s.currentSeed(ctx)
	} else {
		es, err = ss.s.seedOf(ctx, m.PoWEpoch)
	}
	if errors.Is(err, storage.ErrNotFound) {
		// The server handed out no seed for that epoch: nobody can hold
		// proofs for it.
		return protocol.Errorf(protocol.CodeStalePoW, "this server issued no seed for epoch %d", m.PoWEpoch)
	}
	if err != nil {
		return ss.s.failed("pow seed", err)
	}
	// Each check holds MemoryKiB and a core: bound how many run at once.
	select {
	case ss.s.powSem <- struct{}{}:
		defer func() { <-ss.s.powSem }()
	case <-ctx.Done():
		return errBusy
	}
	if err := crypto.CheckPoWs(es.seed.Params, es.seed.Seed, m.UploadID, m.Length, m.PoW, m.PrePoW); err != nil {
		return protocol.Errorf(protocol.CodeBadPoW, "%v", err)
	}
	return nil
}

func (ss *sourceSession) resume(m *protocol.Resume) *protocol.Error {
	if perr := ss.beginUpload(); perr != nil {
		return perr
	}
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommitTimeout)
	defer cancel()
	u, err := ss.s.store.GetUpload(ctx, m.UploadID)
	if errors.Is(err, storage.ErrNotFound) {
		return protocol.Errorf(protocol.CodeNotFound, "no unfinished upload with this id: never opened, finished, or expired")
	}
	if err != nil {
		return ss.s.failed("get upload", err)
	}
	sum := sha256.Sum256(m.ResumeSecret[:])
	if subtle.ConstantTimeCompare(sum[:], u.ResumeHash[:]) != 1 {
		return protocol.Errorf(protocol.CodeUnauthorized, "wrong resume secret for this upload")
	}
	if u.Expires <= crypto.Day(ss.s.now()) {
		return protocol.Errorf(protocol.CodeExpired, "the upload expired and is being deleted; send it anew with a new upload id")
	}
	b, perr := ss.s.acceptedBundle(u.BundleVersion)
	if perr != nil {
		return perr
	}
	up := &upload{id: m.UploadID, bundle: b, length: u.Length, frameSize: u.FrameSize}
	if !ss.takeOver(up) {
		return protocol.Errorf(protocol.CodeBusy, "the upload is still open on another connection; try again")
	}
	// Read the offset again: the connection taken over may have stored a
	// frame, or committed the upload, since.
	u, err = ss.s.store.GetUpload(ctx, m.UploadID)
	if errors.Is(err, storage.ErrNotFound) {
		return protocol.Errorf(protocol.CodeNotFound, "no unfinished upload with this id: never opened, finished, or expired")
	}
	if err != nil {
		return ss.s.failed("get upload", err)
	}
	up.received = u.Received
	seed, perr := ss.seed()
	if perr != nil {
		return perr
	}
	return ss.send(&protocol.Offset{Offset: up.received, Seed: seed.signed})
}

// hold makes up this session's open upload.
func (ss *sourceSession) hold(up *upload) {
	up.conn = ss.conn
	up.released = make(chan struct{})
	ss.up = up
	ss.s.activeMu.Lock()
	ss.s.active[up.id] = up
	ss.s.activeMu.Unlock()
}

// takeOver makes up this session's open upload, after closing the
// connection that held it, if any, and waiting for it to let go. A source
// whose link dropped reconnects long before the server notices the old
// connection is dead (ReadTimeout), and must not wait for that.
func (ss *sourceSession) takeOver(up *upload) bool {
	ss.s.activeMu.Lock()
	old := ss.s.active[up.id]
	ss.s.activeMu.Unlock()
	if old != nil {
		old.conn.Close()
		select {
		case <-old.released:
		case <-time.After(takeOverTimeout):
			return false
		}
	}
	ss.s.activeMu.Lock()
	defer ss.s.activeMu.Unlock()
	if ss.s.active[up.id] != nil {
		return false // another resume got there first
	}
	up.conn = ss.conn
	up.released = make(chan struct{})
	ss.up = up
	ss.s.active[up.id] = up
	return true
}

// release lets go of the open upload; its bytes stay on disk for a resume.
func (ss *sourceSession) release() {
	up := ss.up
	if up == nil {
		return
	}
	ss.up = nil
	ss.s.activeMu.Lock()
	if ss.s.active[up.id] == up {
		delete(ss.s.active, up.id)
	}
	ss.s.activeMu.Unlock()
	close(up.released)
}

func (ss *sourceSession) handleFrame(data []byte) *protocol.Error {
	up := ss.up
	if up == nil {
		return protocol.Errorf(protocol.CodeUnexpected, "data frame with no open upload")
	}
	f, err := protocol.ParseDataFrame(data, up.frameSize)
	if err != nil {
		perr := asProtocolError(err)
		if perr.Code == protocol.CodeBadChecksum {
			perr.Offset = up.received
		}
		return perr
	}
	if f.Offset != up.received {
		return &protocol.Error{Code: protocol.CodeConflict, Message: "data frame is not at the server's offset", Offset: up.received}
	}
	if up.received >= up.length {
		return protocol.Errorf(protocol.CodeUnexpected, "upload is complete; send the commit")
	}
	// Staging space is taken as bytes arrive, not when an upload opens: an
	// upload that never sends a byte holds none.
	frame := int64(len(f.Chunk))
	if ss.s.staging.Add(frame) > ss.s.cfg.MaxStagingBytes {
		ss.s.staging.Add(-frame)
		return protocol.Errorf(protocol.CodeBusy, "the server's staging space is full; try again later")
	}
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommitTimeout)
	defer cancel()
	received, err := ss.s.store.AppendFrame(ctx, up.id, f.Offset, f.Chunk)
	if err != nil {
		ss.s.staging.Add(-frame)
	}
	var conflict *storage.ConflictError
	switch {
	case errors.As(err, &conflict):
		up.received = conflict.Offset
		return &protocol.Error{Code: protocol.CodeConflict, Message: "data frame is not at the server's offset", Offset: conflict.Offset}
	case errors.Is(err, storage.ErrNotFound):
		return errUploadExpired
	case err != nil:
		return ss.s.failed("append frame", err)
	}
	up.received = received
	return ss.send(&protocol.Ack{Offset: received})
}

func (ss *sourceSession) commit(m *protocol.Commit) *protocol.Error {
	up := ss.up
	if up == nil {
		return protocol.Errorf(protocol.CodeUnexpected, "commit with no open upload")
	}
	if up.received != up.length {
		return protocol.Errorf(protocol.CodeUnexpected, "commit at offset %d of %d", up.received, up.length)
	}
	// The commit runs to completion even if the source drops or the server
	// begins shutting down, so a shutdown never loses a tip it was about to
	// acknowledge. A tip can still be stored and not answered (the link
	// drops before the receipt arrives, or the commit outlives
	// CommitTimeout): the source then resumes, learns the upload is gone
	// (not_found) and sends it again under a new id, and editors see a
	// duplicate, which costs less than a loss.
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommitTimeout)
	defer cancel()
	data, err := ss.s.store.UploadData(ctx, up.id)
	if err == nil && int64(len(data)) != up.length {
		err = fmt.Errorf("%d bytes stored, want %d", len(data), up.length)
	}
	if err != nil {
		return ss.s.failed("read upload", err)
	}
	sum := sha256.Sum256(data)
	if sum != m.SHA256 {
		// The bytes can never become right (every frame was checksummed
		// and acknowledged): delete them rather than let a resume and
		// another bad commit make the server read and hash them again.
		if err := ss.s.store.DeleteUpload(ctx, up.id); err != nil {
			ss.s.log.Error("delete upload", attrErr, err)
		} else {
			ss.s.staging.Add(-up.length)
			ss.s.unfinished.Add(-1)
		}
		return protocol.Errorf(protocol.CodeBadHash, "SHA-256 of the bytes received does not match the commit; the upload is deleted, send it anew")
	}
	// A bundle published while the upload ran (one revoking an editor,
	// say) wins: the tip may be sealed to a key no longer trusted.
	b, perr := ss.s.acceptedBundle(up.bundle.Version)
	if perr != nil {
		return perr
	}
	if err := crypto.CheckCiphertext(data, b.StanzaType(), len(b.Editors)); err != nil {
		return protocol.Errorf(protocol.CodeBadCiphertext, "not an age file encrypted to the %d editors of bundle version %d", len(b.Editors), b.Version)
	}
	t := &storage.Tip{Ciphertext: data}
	t.BundleVersion = b.Version
	t.SHA256 = sum
	t.Length = up.length
	// The receipt day holds the period lock until the tip is stored, so a
	// period closed meanwhile never misses it (periodclose.go).
	day, releaseDay := ss.s.holdReceiptDay()
	defer releaseDay()
	t.Day = day
	for {
		if _, err := rand.Read(t.ID[:]); err != nil {
			return ss.s.failed("draw a tip id", err)
		}
		// Editors type the id on command lines (newsdesk read ID), where a
		// word that starts with '-' reads as flags: draw again when its
		// base64url form would (first 6 bits 62, one time in 64).
		if t.ID[0]>>2 != 62 {
			break
		}
	}
	receipt, err := crypto.SignReceipt(&crypto.Receipt{TipID: t.ID, SHA256: sum, Length: t.Length, Day: t.Day}, ss.s.logKey.Signer)
	if err != nil {
		return ss.s.failed("sign receipt", err)
	}
	t.Receipt = receipt
	if ss.s.testOnlyBeforeStore != nil {
		ss.s.testOnlyBeforeStore()
	}
	err = ss.s.store.CommitUpload(ctx, up.id, t)
	releaseDay()
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return errUploadExpired
		}
		if perr := ss.s.failed("store tip", err); perr != errInternal {
			return perr
		}
		return errCommitUnknown
	}
	ss.s.staging.Add(-up.length)
	ss.s.unfinished.Add(-1)
	ss.release()
	return ss.send(&protocol.ReceiptReply{Receipt: receipt})
}

// uploadExpiry returns the expiry day of an upload opened now:
// UploadExpiry plus a random spread of up to a quarter of it, in whole
// days, so that expiries do not line up with the day uploads began.
func (s *Server) uploadExpiry() string {
	days := int64(s.cfg.UploadExpiry / (24 * time.Hour))
	spread := days/4 + 1
	n, err := rand.Int(rand.Reader, big.NewInt(spread))
	if err == nil {
		days += n.Int64()
	}
	return crypto.Day(s.now().AddDate(0, 0, int(days)))
}

// purgeLoop deletes expired uploads and forgets spent upload ids of
// epochs no longer accepted, at start and every PurgeInterval.
func (s *Server) purgeLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	for {
		s.purge(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Purge runs now what the purge loop runs every PurgeInterval: it
// deletes expired uploads, logs the receipts roots of finished periods and
// deletes the tips due for deletion.
func (s *Server) Purge(ctx context.Context) { s.purge(ctx) }

func (s *Server) purge(ctx context.Context) {
	n, err := s.store.DeleteExpiredUploads(ctx, crypto.Day(s.now()))
	if err != nil {
		s.log.Error("delete expired uploads", attrErr, err)
		return
	}
	if n > 0 {
		s.log.Info("deleted expired uploads", attrCount, n)
	}
	if _, err := s.store.ForgetSpentBefore(ctx, crypto.EpochAt(s.now(), s.epochSeconds())-1); err != nil {
		s.log.Error("forget spent upload ids", attrErr, err)
	}
	if n, staged, err := s.store.Staged(ctx); err == nil {
		// Sessions count their own uploads and frames as they go; this
		// catches up with what expired. A session between its Add and its
		// write can make the counts low until the next purge.
		s.unfinished.Store(n)
		s.staging.Store(staged)
	}
	s.purgeTips(ctx)
	s.purgeReplies(ctx)
}
