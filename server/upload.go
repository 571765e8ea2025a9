package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"github.com/gorilla/websocket"
)

// upload is an upload open on a connection. Its bytes are on disk
// (storage.Upload) or on their way there through its pipe; this is the
// session's view of it.
type upload struct {
	id         protocol.UploadID
	resumeHash [32]byte
	bundle     *crypto.Bundle
	length     int64
	frameSize  int
	// next is where the next frame goes: the bytes stored, and those read
	// and handed to the pipe. Frames are checked against it as they
	// arrive; what is durable is the pipe's to say (pipe.received).
	next int64
	// hash is the SHA-256 of the bytes up to next, computed as frames
	// arrive: the commit is checked against it, never by reading the
	// upload back.
	hash hash.Hash
	// prefix holds the upload's first bytes until its age header parses
	// (header, or headerErr if it never will): the commit's ciphertext
	// check needs only the header and the length.
	prefix    []byte
	header    *crypto.CiphertextHeader
	headerErr error
	// pipe stores what the session reads, in the background.
	pipe *pipe
	// conn is the connection the upload is open on, closed by a resume
	// that takes the upload over; released is closed once the session has
	// let go of the upload.
	conn     *websocket.Conn
	released chan struct{}
}

// maxHeaderPrefix bounds the bytes kept in memory until an upload's age
// header parses: a header of a bundle's size (65,535 bytes) and more.
const maxHeaderPrefix = 256 << 10

// Refusals of uploads.
var (
	errReplayed      = protocol.Errorf(protocol.CodeReplayed, "upload id already used: its proofs of work are spent; pick a new id")
	errUploadExpired = protocol.Errorf(protocol.CodeExpired, "the upload expired and was deleted; send it anew with a new upload id")
	errUploadGone    = protocol.Errorf(protocol.CodeNotFound, "no unfinished upload with this id: never opened, finished, expired or evicted")
	errSlotsFull     = protocol.Errorf(protocol.CodeBusy, "the server holds too many unfinished uploads; try again later")
	errStagingFull   = protocol.Errorf(protocol.CodeBusy, "the server's staging space is full; try again later")
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

// openUpload checks a new upload's first message, cheapest first, takes a
// slot for it and answers its offset, 0. Nothing is written yet: the open
// goes to the store with the first frame (with the commit too, for a
// one-frame upload). A session that ends before a frame arrives still
// stores the open (release), so its proofs are spent.
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
	// Only one session at a time checks an id's proofs: the same message
	// sent on many connections at once costs one Argon2id check, not one
	// each.
	if !ss.s.slots.claim(m.UploadID) {
		return errReplayed
	}
	defer ss.s.slots.unclaim(m.UploadID)
	// Proof of work is checked before anything is written: it is what an
	// anonymous endpoint has instead of identities to rate-limit.
	if perr := ss.checkPoW(m); perr != nil {
		return perr
	}
	evict, ok := ss.s.slots.reserve(m.UploadID, ss.s.cfg.MaxUnfinishedUploads, ss.s.now())
	if !ok {
		return errSlotsFull
	}
	seed, perr := ss.seed()
	if perr != nil {
		ss.s.slots.remove(m.UploadID)
		return perr
	}
	today := crypto.Day(ss.s.now())
	first := piece{
		open: &storage.Upload{ID: m.UploadID, ResumeHash: m.ResumeHash, BundleVersion: b.Version,
			Length: m.Length, FrameSize: m.FrameSize, Expires: ss.s.uploadExpiry(), ProgressDay: today},
		epoch: m.PoWEpoch,
	}
	if evict != nil {
		first.evict = [][16]byte{*evict}
	}
	up := &upload{id: m.UploadID, resumeHash: m.ResumeHash, bundle: b, length: m.Length, frameSize: m.FrameSize, hash: sha256.New()}
	up.pipe = ss.newPipe(up, 0)
	up.pipe.add(first, false)
	ss.hold(up)
	return ss.send(&protocol.Offset{Offset: 0, Seed: seed.signed})
}

// checkPoW checks an upload's proofs of work against the seed of the epoch
// they name, which must be the current or the previous one: the epoch, the
// count and the pre-proof first (memory and a microsecond of SHA-256),
// then whether the id was spent (a read), and only then the Argon2id
// proofs, each a millisecond and a MiB: random nonces cost their sender a
// pre-proof (2^16 SHA-256 evaluations) for every Argon2id check they cost
// the server, and a random pre-proof costs the server a microsecond.
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
	if !crypto.CheckPrePoW(es.seed.Seed, m.UploadID, m.Length, m.PoW, m.PrePoW) {
		return errBadPrePoW
	}
	// A replayed upload message is refused before its proofs cost anything
	// more: a read, where checking them costs an Argon2id each.
	if spent, err := ss.s.store.UploadIDSpent(ctx, m.UploadID); err != nil {
		return ss.s.failed("upload id spent", err)
	} else if spent {
		return errReplayed
	}
	// Each check holds MemoryKiB and a core: bound how many run at once.
	select {
	case ss.s.powSem <- struct{}{}:
		defer func() { <-ss.s.powSem }()
	case <-ctx.Done():
		return errBusy
	}
	ss.s.powChecks.Add(1)
	if err := crypto.CheckPoWs(es.seed.Params, es.seed.Seed, m.UploadID, m.Length, m.PoW, m.PrePoW); err != nil {
		return protocol.Errorf(protocol.CodeBadPoW, "%v", err)
	}
	return nil
}

var errBadPrePoW = protocol.Errorf(protocol.CodeBadPoW, "the pre-proof of work does not verify")

func (ss *sourceSession) resume(m *protocol.Resume) *protocol.Error {
	if perr := ss.beginUpload(); perr != nil {
		return perr
	}
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommitTimeout)
	defer cancel()
	// An upload open on a connection may not be stored yet (its open waits
	// for its first frame, its frames in flight for their write): its
	// session holds it, and stores what it read before it lets go
	// (release). So the sessions are looked at first, and the store only
	// for an upload no session holds: the other way round, a source that
	// hangs up right after a frame and resumes at once could miss its
	// upload in the store while its old session writes it, then in the
	// sessions once that session let go, and be told not_found for an
	// upload the server stored.
	ss.s.activeMu.Lock()
	old := ss.s.active[m.UploadID]
	ss.s.activeMu.Unlock()
	var resumeHash [32]byte
	if old != nil {
		resumeHash = old.resumeHash
	} else {
		u, err := ss.s.store.GetUpload(ctx, m.UploadID)
		if errors.Is(err, storage.ErrNotFound) {
			return errUploadGone
		}
		if err != nil {
			return ss.s.failed("get upload", err)
		}
		resumeHash = u.ResumeHash
	}
	if ss.s.testOnlyResumeFound != nil {
		ss.s.testOnlyResumeFound()
	}
	sum := sha256.Sum256(m.ResumeSecret[:])
	if subtle.ConstantTimeCompare(sum[:], resumeHash[:]) != 1 {
		return protocol.Errorf(protocol.CodeUnauthorized, "wrong resume secret for this upload")
	}
	up := &upload{id: m.UploadID, resumeHash: resumeHash}
	if !ss.takeOver(up) {
		return protocol.Errorf(protocol.CodeBusy, "the upload is still open on another connection; try again")
	}
	// An upload whose slot is gone was evicted or stalled past its
	// lifetime, and is being deleted.
	if !ss.s.slots.hold(m.UploadID) {
		return errUploadGone
	}
	// Read it from the store: the connection taken over stored what it
	// had read (its open, frames) as it let go, or committed the upload.
	u, err := ss.s.store.GetUpload(ctx, m.UploadID)
	if errors.Is(err, storage.ErrNotFound) {
		return errUploadGone
	}
	if err != nil {
		return ss.s.failed("get upload", err)
	}
	if u.Expires <= crypto.Day(ss.s.now()) {
		return protocol.Errorf(protocol.CodeExpired, "the upload expired and is being deleted; send it anew with a new upload id")
	}
	b, perr := ss.s.acceptedBundle(u.BundleVersion)
	if perr != nil {
		return perr
	}
	up.bundle, up.length, up.frameSize = b, u.Length, u.FrameSize
	if err := up.restore(ctx, ss.s.store, u); err != nil {
		return ss.s.failed("resume upload", err)
	}
	seed, perr := ss.seed()
	if perr != nil {
		return perr
	}
	up.pipe = ss.newPipe(up, u.Received)
	return ss.send(&protocol.Offset{Offset: u.Received, Seed: seed.signed})
}

// restore sets a resumed upload's offset, hash state and header from the
// store: the hash state stored with its last frames (or, for an upload
// staged before schema version 6, the hash of the bytes read back, a
// chunk at a time), and the header from its first bytes.
func (up *upload) restore(ctx context.Context, store *storage.Store, u *storage.Upload) error {
	up.next = u.Received
	up.hash = sha256.New()
	needHash := u.Received > 0
	if len(u.HashState) > 0 {
		if err := up.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.HashState); err != nil {
			return fmt.Errorf("hash state: %w", err)
		}
		needHash = false
	}
	if u.Received == 0 {
		return nil
	}
	r, err := store.UploadReader(ctx, u.ID)
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, u.FrameSize)
	var read int64
	for read < u.Received && (needHash || up.header == nil && up.headerErr == nil) {
		n, err := io.ReadFull(r, buf)
		if err != nil {
			return fmt.Errorf("read upload at %d of %d: %w", read, u.Received, err)
		}
		if needHash {
			up.hash.Write(buf[:n])
		}
		up.parseHeader(buf[:n])
		read += int64(n)
	}
	return nil
}

// parseHeader adds the next bytes of the upload to its prefix until the
// age header parses, or never will.
func (up *upload) parseHeader(b []byte) {
	if up.header != nil || up.headerErr != nil {
		return
	}
	up.prefix = append(up.prefix, b...)
	h, err := crypto.ParseCiphertextHeader(up.prefix, up.length)
	switch {
	case errors.Is(err, crypto.ErrHeaderIncomplete) && len(up.prefix) < maxHeaderPrefix:
		return
	case errors.Is(err, crypto.ErrHeaderIncomplete):
		up.headerErr = fmt.Errorf("%w: no header in the first %d bytes", crypto.ErrBadCiphertext, len(up.prefix))
	case err != nil:
		up.headerErr = err
	default:
		up.header = h
	}
	up.prefix = nil
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
// connection that held it, if any, and waiting for it to let go (and
// store what it had read). A source whose link dropped reconnects long
// before the server notices the old connection is dead (ReadTimeout), and
// must not wait for that.
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

// release lets go of the open upload: what was read and not yet stored is
// stored (the open of an upload that sent no frame, so its proofs are
// spent; frames read before a drop or a refusal, and the last frame held
// for a commit that never came), and the bytes stay on disk for a resume.
func (ss *sourceSession) release() {
	up := ss.up
	if up == nil {
		return
	}
	ss.up = nil
	if up.pipe != nil {
		up.pipe.close()
	}
	ss.s.slots.release(up.id)
	ss.s.activeMu.Lock()
	if ss.s.active[up.id] == up {
		delete(ss.s.active, up.id)
	}
	ss.s.activeMu.Unlock()
	close(up.released)
}

// upFailed returns the refusal that stopped the open upload's pipe, if
// any: the session reports it in place of the read the pipe cut short.
func (ss *sourceSession) upFailed() *protocol.Error {
	if ss.up == nil || ss.up.pipe == nil {
		return nil
	}
	return ss.up.pipe.failure()
}

// handleFrame checks a data frame and hands it to the upload's pipe, which
// stores it with whatever else arrived meanwhile and acknowledges them
// once durable. The last frame waits for the commit, which a client sends
// right behind it (docs/protocol.md), so the two are stored together.
func (ss *sourceSession) handleFrame(data []byte) *protocol.Error {
	up := ss.up
	if up == nil {
		return protocol.Errorf(protocol.CodeUnexpected, "data frame with no open upload")
	}
	f, err := protocol.ParseDataFrame(data, up.frameSize)
	if err != nil {
		perr := asProtocolError(err)
		if perr.Code == protocol.CodeBadChecksum {
			perr.Offset = up.next
		}
		return perr
	}
	if f.Offset != up.next {
		return &protocol.Error{Code: protocol.CodeConflict, Message: "data frame is not at the server's offset", Offset: up.next}
	}
	if up.next >= up.length {
		return protocol.Errorf(protocol.CodeUnexpected, "upload is complete; send the commit")
	}
	// Staging space is taken as bytes arrive, not when an upload opens: an
	// upload that never sends a byte holds none.
	frame := int64(len(f.Chunk))
	if ss.s.staging.Add(frame) > ss.s.cfg.MaxStagingBytes {
		ss.s.staging.Add(-frame)
		ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommitTimeout)
		room := ss.s.makeStagingRoom(ctx, frame, up.id)
		cancel()
		if !room || ss.s.staging.Add(frame) > ss.s.cfg.MaxStagingBytes {
			if room {
				ss.s.staging.Add(-frame)
			}
			return errStagingFull
		}
	}
	up.hash.Write(f.Chunk)
	up.parseHeader(f.Chunk)
	state, err := up.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		ss.s.staging.Add(-frame)
		return ss.s.failed("hash state", err)
	}
	up.next += frame
	last := up.next == up.length
	return up.pipe.add(piece{frames: [][]byte{f.Chunk}, bytes: frame, hashState: state}, !last)
}

func (ss *sourceSession) commit(m *protocol.Commit) *protocol.Error {
	up := ss.up
	if up == nil {
		return protocol.Errorf(protocol.CodeUnexpected, "commit with no open upload")
	}
	if up.next != up.length {
		return protocol.Errorf(protocol.CodeUnexpected, "commit at offset %d of %d", up.next, up.length)
	}
	// The commit runs to completion even if the source drops or the server
	// begins shutting down, so a shutdown never loses a tip it was about to
	// acknowledge. A tip can still be stored and not answered (the link
	// drops before the receipt arrives, or the commit outlives
	// CommitTimeout): the source then resumes, learns the upload is gone
	// (not_found) and sends it again under a new id, and editors see a
	// duplicate, which costs less than a loss.
	var sum [32]byte
	up.hash.Sum(sum[:0])
	if sum != m.SHA256 {
		return ss.badHash(up)
	}
	// A bundle published while the upload ran (one revoking an editor,
	// say) wins: the tip may be sealed to a key no longer trusted.
	b, perr := ss.s.acceptedBundle(up.bundle.Version)
	if perr != nil {
		return perr
	}
	if up.header == nil && up.headerErr == nil {
		up.parseHeader(nil) // the whole file is here: the prefix is final
	}
	if up.headerErr != nil || up.header.Check(b.StanzaType(), len(b.Editors)) != nil {
		return protocol.Errorf(protocol.CodeBadCiphertext, "not an age file encrypted to the %d editors of bundle version %d", len(b.Editors), b.Version)
	}
	t := &storage.Tip{}
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
	if perr := up.pipe.add(piece{commit: t}, true); perr != nil {
		return perr
	}
	// The pipe stores the commit with the frames before it that are not
	// stored yet (for a one-frame tip: the open, the frame and the tip in
	// one transaction) and then sends the acks and the receipt.
	perr = up.pipe.wait()
	releaseDay()
	if perr != nil {
		return perr
	}
	ss.release()
	return nil
}

// badHash refuses a commit whose SHA-256 is not the bytes'. The bytes can
// never become right (every frame was checksummed and acknowledged):
// they are deleted rather than left for a resume and another bad commit.
// What the pipe holds is stored first, so the upload's id is spent.
func (ss *sourceSession) badHash(up *upload) *protocol.Error {
	up.pipe.wait()
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommitTimeout)
	defer cancel()
	if err := ss.s.store.DeleteUpload(ctx, up.id); err != nil {
		ss.s.log.Error("delete upload", attrErr, err)
	} else {
		ss.s.staging.Add(-up.next)
		ss.s.slots.remove(up.id)
	}
	return protocol.Errorf(protocol.CodeBadHash, "SHA-256 of the bytes received does not match the commit; the upload is deleted, send it anew")
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
// epochs no longer accepted, at start and every PurgeInterval, and deletes
// stalled uploads every stallSweepInterval.
func (s *Server) purgeLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	stall := time.NewTicker(stallSweepInterval)
	defer stall.Stop()
	sweep := stall.C
	if s.testOnlyStallSweeps != nil {
		sweep = s.testOnlyStallSweeps
	}
	s.purge(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.purge(ctx)
		case <-sweep:
			s.sweepStalled(ctx)
		}
	}
}

// Purge runs now what the purge loop runs: it deletes expired and stalled
// uploads, logs the receipts roots of finished periods and deletes the
// tips due for deletion.
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
	s.resyncStaging(ctx)
	s.purgeTips(ctx)
	s.purgeReplies(ctx)
	// The slots catch up with what expired, or was deleted by `fieldtipd
	// uploads --drop-stalled`; then the stalled ones go.
	if ctx.Err() != nil {
		return
	}
	if ps, err := s.store.ListUploadProgress(ctx); err == nil {
		s.slots.sync(ps, s.now())
	} else {
		s.log.Error("list uploads", attrErr, err)
	}
	s.sweepStalled(ctx)
}
