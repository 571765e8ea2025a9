package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"
)

// The tests of this file provoke each refusal of a resumable upload on a
// real server, over real WebSockets on loopback and a real SQLite file,
// and check its typed error; each runs it while another source's upload is
// open on another connection (whileOthers), which must still get its
// receipt, with every acknowledged tip intact.

// whileOthers runs refuse, which provokes refusals on connections of its
// own and checks them, while another source's upload is open on another
// connection: that upload must then complete with a receipt, and every tip
// the server acknowledged must be intact.
func (ts *testServer) whileOthers(t *testing.T, refuse func()) {
	t.Helper()
	other := ts.startOther(t)
	refuse()
	other.finish(t, fs16)
	ts.intact(t)
}

// wantRefusal checks that e is a typed refusal with code.
func wantRefusal(t *testing.T, what string, e *protocol.Error, code protocol.Code) {
	t.Helper()
	if !protocol.IsError(e, code) {
		t.Errorf("%s: %v, want code %s", what, e, code)
	}
}

// framesText is a tip text that seals to frames 16 KiB frames.
func framesText(frames int) string {
	if frames == 1 {
		return "a tip of one frame"
	}
	return strings.Repeat("copper concentrate, trucks at night. ", (frames*fs16-2000)/37)
}

// resumeOffset resumes p on a new connection and returns the server's
// offset, which must be a whole number of frames within the upload.
func (p *partial) resumeOffset(tb testing.TB) int64 {
	tb.Helper()
	p.c = p.c.ts.dial(tb)
	p.c.text(p.c.ts.resumeMsg(tb, p.up.UploadID))
	o := expect[*protocol.Offset](p.c)
	p.c.ts.checkOffsetSeed(tb, o.Seed)
	if o.Offset < 0 || o.Offset > int64(len(p.ct)) || o.Offset%int64(p.frameSize) != 0 {
		tb.Fatalf("resumed at offset %d of an upload of %d bytes in %d-byte frames", o.Offset, len(p.ct), p.frameSize)
	}
	return o.Offset
}

// resumeRefused sends a resume of id with secret on a new connection and
// returns its refusal.
func (ts *testServer) resumeRefused(tb testing.TB, id protocol.UploadID, secret [32]byte) *protocol.Error {
	tb.Helper()
	c := ts.dial(tb)
	c.text(&protocol.Resume{Version: protocol.Version, UploadID: id, ResumeSecret: secret})
	return c.refusal()
}

// checkStored checks that the tip of r holds exactly ct.
func (ts *testServer) checkStored(tb testing.TB, r *crypto.Receipt, ct []byte) {
	tb.Helper()
	stored, err := ts.store.TipCiphertext(context.Background(), r.TipID)
	if err != nil {
		tb.Fatalf("TipCiphertext(%s) = %v", r.TipIDString(), err)
	}
	if !bytes.Equal(stored, ct) {
		tb.Errorf("tip %s stores %d bytes that differ from the %d sent", r.TipIDString(), len(stored), len(ct))
	}
}

// TestConflictingOffset: a frame at another offset than the server's is
// refused with conflict carrying the server's offset, which stays where
// it was: ahead of it, or behind it after a resume.
func TestConflictingOffset(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ct := sealFor(t, ts, framesText(3), fs16, 3)
	p := ts.startUpload(t, ct, fs16, 1)
	ts.whileOthers(t, func() {
		p.c.frame(ct, 2*fs16, fs16)
		e := p.c.refusal()
		wantRefusal(t, "frame ahead of the offset", e, protocol.CodeConflict)
		if e.Offset != fs16 {
			t.Errorf("conflict carries offset %d, want %d", e.Offset, fs16)
		}
		p.resumeOn(t, fs16)
		p.c.frame(ct, 0, fs16)
		e = p.c.refusal()
		wantRefusal(t, "frame behind the offset after a resume", e, protocol.CodeConflict)
		if e.Offset != fs16 {
			t.Errorf("conflict carries offset %d, want %d", e.Offset, fs16)
		}
	})
	p.resumeOn(t, fs16)
	ts.checkStored(t, p.finish(t, fs16), ct)
	ts.intact(t)
}

// TestBadChecksumKeepsOffset: a frame whose checksum does not match is
// refused with bad_checksum carrying the server's offset, unchanged: a
// resume finds it there, and the upload completes.
func TestBadChecksumKeepsOffset(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ct := sealFor(t, ts, framesText(3), fs16, 3)
	p := ts.startUpload(t, ct, fs16, 1)
	ts.whileOthers(t, func() {
		p.c.binary(badCRC(fs16, fs16))
		e := p.c.refusal()
		wantRefusal(t, "frame with a bad checksum", e, protocol.CodeBadChecksum)
		if e.Offset != fs16 {
			t.Errorf("bad_checksum carries offset %d, want %d", e.Offset, fs16)
		}
	})
	p.resumeOn(t, fs16)
	ts.checkStored(t, p.finish(t, fs16), ct)
	ts.intact(t)
}

// TestResume drops a connection mid-upload and resumes on a new one: the
// server's offset is what it acknowledged (or, for frames in flight at the
// drop, at most those), the upload completes from there, and the stored
// tip is the ciphertext sent.
func TestResume(t *testing.T) {
	ts := newTestServer(t, serverOptions{})

	t.Run("after_acks", func(t *testing.T) {
		ct := sealFor(t, ts, framesText(5), fs16, 5)
		p := ts.startUpload(t, ct, fs16, 2)
		p.c.drop()
		p.resumeOn(t, 2*fs16)
		ts.checkStored(t, p.finish(t, 2*fs16), ct)
	})

	t.Run("frames_in_flight", func(t *testing.T) {
		ct := sealFor(t, ts, framesText(6), fs16, 6)
		p := ts.startUpload(t, ct, fs16, 2)
		// Two more frames go out, and the link drops before their acks:
		// a window of four frames, two in flight.
		p.c.frame(ct, 2*fs16, fs16)
		p.c.frame(ct, 3*fs16, fs16)
		p.c.drop()
		const acked, sent = 2 * fs16, 4 * fs16
		off := p.resumeOffset(t)
		if off < acked || off > sent {
			t.Fatalf("resumed at offset %d; %d were acknowledged and %d sent", off, acked, sent)
		}
		if again := (sent - off) / fs16; again > 2 {
			t.Errorf("%d frames to send again, more than the 2 in flight", again)
		}
		ts.checkStored(t, p.finish(t, off), ct)
	})
	ts.intact(t)
}

// TestResumeTakesOverHalfDeadConnection: a source whose link died
// reconnects while the server still holds its upload open on the old
// connection (ReadTimeout is an hour here). The resume closes the old
// connection and continues at once, not after ReadTimeout (which would
// fail at failAfter) nor after giving up on the old one (busy).
func TestResumeTakesOverHalfDeadConnection(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.ReadTimeout = time.Hour }})
	ct := sealFor(t, ts, framesText(3), fs16, 3)
	p := ts.startUpload(t, ct, fs16, 2)
	old := p.c
	p.resumeOn(t, 2*fs16)
	if m, err := old.next(); err == nil {
		t.Errorf("the connection taken over sent %T %+v, want it closed", m, m)
	}
	ts.checkStored(t, p.finish(t, 2*fs16), ct)
	ts.intact(t)
}

// TestResumeRefused: a resume with the wrong secret is unauthorized and
// leaves the upload to its source, on its connection still open; a resume
// of an upload never opened, or already committed, is not_found.
func TestResumeRefused(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ct := sealFor(t, ts, framesText(2), fs16, 2)
	p := ts.startUpload(t, ct, fs16, 1)
	secret := ts.resumeMsg(t, p.up.UploadID).ResumeSecret
	ts.whileOthers(t, func() {
		wrong := secret
		wrong[31] ^= 1
		wantRefusal(t, "resume with the wrong secret", ts.resumeRefused(t, p.up.UploadID, wrong), protocol.CodeUnauthorized)
		var unknown protocol.UploadID
		rand.Read(unknown[:])
		wantRefusal(t, "resume of an unknown upload", ts.resumeRefused(t, unknown, secret), protocol.CodeNotFound)
	})
	// The source's own connection was not disturbed.
	ts.checkStored(t, p.finish(t, fs16), ct)
	ts.whileOthers(t, func() {
		wantRefusal(t, "resume after the commit", ts.resumeRefused(t, p.up.UploadID, secret), protocol.CodeNotFound)
	})
}

// TestResumeDuringCommit forces the race between a commit and a resume
// that takes its upload over: the commit, parked before its durable write
// (of the whole one-frame upload: not even its open is stored yet),
// finishes; the resume then finds the upload gone (not_found: the source
// sends it again, and editors see a duplicate, which costs less than a
// loss).
func TestResumeDuringCommit(t *testing.T) {
	g := newGate(t)
	ts := newTestServer(t, serverOptions{beforeServe: func(s *Server) { s.testOnlyBeforeStore = g.park }})
	ct := sealFor(t, ts, framesText(1), fs16, 1)
	p := ts.startUpload(t, ct, fs16, 0)
	old := p.c
	old.frame(ct, 0, fs16)
	old.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
	g.waitEntered(t)
	c := ts.dial(t)
	c.text(ts.resumeMsg(t, p.up.UploadID))
	// The resume closes the committing connection, then waits for its
	// session to let go of the upload.
	if m, err := old.next(); err == nil {
		t.Fatalf("the committing connection sent %T %+v, want it closed by the resume", m, m)
	}
	g.release()
	wantRefusal(t, "resume of an upload committed meanwhile", c.refusal(), protocol.CodeNotFound)
	metas, err := ts.store.ListTips(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 1 || metas[0].SHA256 != sha256.Sum256(ct) {
		t.Errorf("store holds %d tips, want the one committed", len(metas))
	}
}

// TestResumeWhileReleasing: a source hangs up right after a frame, without
// waiting for its ack, and resumes at once on a new connection, while the
// old session still stores the frame (its write parked) and lets go of the
// upload only after the resume found it (testOnlyResumeFound). The resume
// gets the offset of what the old session stored, not not_found for an
// upload the server holds (session vector resume_receipt hit this once
// under load).
func TestResumeWhileReleasing(t *testing.T) {
	write, found := newGate(t), newGate(t)
	ts := newTestServer(t, serverOptions{beforeServe: func(s *Server) {
		s.testOnlyBeforeWrite = func(_ int, open, _ bool) {
			if open {
				write.park()
			}
		}
		s.testOnlyResumeFound = found.park
	}})
	ct := sealFor(t, ts, framesText(2), fs16, 2)
	p := &partial{c: ts.dial(t), ct: ct, frameSize: fs16}
	p.up = ts.newUpload(t, ts.s.Bundle().Version, int64(len(ct)), fs16)
	p.c.text(p.up)
	p.c.frame(ct, 0, fs16)
	write.waitEntered(t)
	p.c.hangUp()
	ts.s.activeMu.Lock()
	old := ts.s.active[p.up.UploadID]
	ts.s.activeMu.Unlock()
	if old == nil {
		t.Fatal("no session holds the upload while its first write is parked")
	}
	c := ts.dial(t)
	c.text(ts.resumeMsg(t, p.up.UploadID))
	found.waitEntered(t)
	// The old session stores the frame and lets go before the resume goes
	// on.
	write.release()
	select {
	case <-old.released:
	case <-time.After(failAfter):
		t.Fatalf("the old session did not let go of the upload after %v", failAfter)
	}
	found.release()
	p.c = c
	p.c.readOffset(fs16)
	ts.checkStored(t, p.finish(t, fs16), ct)
	ts.intact(t)
}

// uploadFrameCount counts the frames stored for an upload, through a
// connection of its own to the SQLite file.
func uploadFrameCount(tb testing.TB, dbPath string, id protocol.UploadID) int {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: dbPath}).EscapedPath()+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM chunks c JOIN uploads u ON c.owner = u.owner WHERE u.id = ?`, id[:]).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// filesHolding returns the files under dir that contain needle.
func filesHolding(tb testing.TB, dir string, needle []byte) []string {
	tb.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, needle) {
			found = append(found, path)
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return found
}

// TestUploadExpiry: past its expiry an unfinished upload cannot be resumed
// (expired) nor continued on a connection still open; after the purge it
// is not_found and its frames are gone from the SQLite file.
func TestUploadExpiry(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ct := sealFor(t, ts, framesText(2), fs16, 2)
	dropped := ts.startUpload(t, ct, fs16, 1)
	dropped.c.drop()
	ct2 := sealFor(t, ts, framesText(2)+" again", fs16, 2)
	open := ts.startUpload(t, ct2, fs16, 1)
	ts.resyncCounts(t)
	// The expiry is UploadExpiry plus up to a quarter of it.
	expiry := ts.s.cfg.UploadExpiry
	ts.clock.advance(expiry + expiry/4 + 48*time.Hour)
	secret := ts.resumeMsg(t, dropped.up.UploadID).ResumeSecret
	dbPath := filepath.Join(ts.dir, "fieldtip.db")

	ts.whileOthers(t, func() {
		wantRefusal(t, "resume past the expiry", ts.resumeRefused(t, dropped.up.UploadID, secret), protocol.CodeExpired)
		if n := uploadFrameCount(t, dbPath, dropped.up.UploadID); n != 1 {
			t.Errorf("%d frames stored before the purge, want 1", n)
		}
		// The scan below finds frames that are there.
		if files := filesHolding(t, ts.dir, ct[fs16/2:fs16/2+64]); len(files) == 0 {
			t.Errorf("the stored frame's bytes are in no file under %s: the scan proves nothing", ts.dir)
		}
		ts.s.purge(t.Context())
		wantRefusal(t, "resume after the purge", ts.resumeRefused(t, dropped.up.UploadID, secret), protocol.CodeNotFound)
		// Its last frame and commit, stored together, find it gone.
		open.c.frame(ct2, fs16, fs16)
		open.c.text(&protocol.Commit{SHA256: sha256.Sum256(ct2)})
		wantRefusal(t, "frame of an upload purged while open", open.c.refusal(), protocol.CodeExpired)
	})
	for _, up := range []*protocol.Upload{dropped.up, open.up} {
		if _, err := ts.store.GetUpload(t.Context(), up.UploadID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetUpload() after the purge = %v, want %v", err, storage.ErrNotFound)
		}
		if n := uploadFrameCount(t, dbPath, up.UploadID); n != 0 {
			t.Errorf("%d frames stored after the purge, want 0", n)
		}
	}
	if got := ts.s.staging.Load(); got != 0 {
		t.Errorf("staging after the purge = %d, want 0", got)
	}
	if got := ts.s.slots.count(); got != 0 {
		t.Errorf("unfinished uploads after the purge = %d, want 0", got)
	}
	// Once the store is closed (its WAL checkpointed into the database
	// and removed), no file holds the purged frames' bytes: secure_delete
	// overwrote them.
	ts.stop()
	if err := ts.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, needle := range [][]byte{ct[fs16/2 : fs16/2+64], ct2[fs16/2 : fs16/2+64]} {
		if files := filesHolding(t, ts.dir, needle); len(files) > 0 {
			t.Errorf("purged frame bytes found in %v", files)
		}
	}
}

// solveFor gives up fresh proofs for its id and length under the current
// seed.
func (ts *testServer) solveFor(tb testing.TB, up *protocol.Upload) {
	tb.Helper()
	seed := ts.seed(tb)
	up.PoWEpoch, up.PoW = seed.Epoch, solve(tb, seed, up.UploadID, up.Length)
	up.PrePoW = prePoWOf(tb, seed, up)
}

// failsFor reports whether nonce is not a proof for chunk of an upload
// under the current seed.
func (ts *testServer) failsFor(tb testing.TB, id protocol.UploadID, length int64, chunk int, nonce uint64) bool {
	seed := ts.seed(tb)
	return !crypto.CheckPoW(seed.Params, crypto.PoWInput{Seed: seed.Seed, UploadID: id, Length: length, Chunk: chunk}, nonce)
}

// TestProofOfWorkRefused sends uploads whose proofs of work are missing,
// too few, too many, wrong or for an epoch the server does not accept, or
// whose pre-proof is wrong: each is refused with bad_pow or stale_pow
// before anything is stored, so the same upload id with good proofs is
// then accepted. Unless the case is about the pre-proof, the pre-proof
// sent is the right one for the proofs sent, so that their own check is
// what refuses them.
func TestProofOfWorkRefused(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	const twoProofs = 5 * fs16 // 80 KiB: one proof per started 64 KiB
	for _, tc := range []struct {
		name string
		mk   func(t *testing.T) *protocol.Upload
		want protocol.Code
		// pre is set when mk chose the pre-proof.
		pre bool
	}{
		{"pre_proof_fails", func(t *testing.T) *protocol.Upload {
			up := ts.newUpload(t, 1, twoProofs, fs16)
			up.PrePoW = failingPrePoW(ts.seed(t), up)
			return up
		}, protocol.CodeBadPoW, true},
		{"pre_proof_of_other_proofs", func(t *testing.T) *protocol.Upload {
			up := ts.newUpload(t, 1, twoProofs, fs16)
			other := *up
			other.PoW = []uint64{up.PoW[1], up.PoW[0]}
			up.PrePoW = prePoWOf(t, ts.seed(t), &other)
			for crypto.CheckPrePoW(ts.seed(t).Seed, up.UploadID, up.Length, up.PoW, up.PrePoW) {
				up.PrePoW = failingPrePoW(ts.seed(t), up)
			}
			return up
		}, protocol.CodeBadPoW, true},
		{"missing", func(t *testing.T) *protocol.Upload {
			up := ts.newUpload(t, 1, fs16, fs16)
			up.PoW = nil
			return up
		}, protocol.CodeBadPoW, false},
		{"too_few", func(t *testing.T) *protocol.Upload {
			up := ts.newUpload(t, 1, twoProofs, fs16)
			up.PoW = up.PoW[:1]
			return up
		}, protocol.CodeBadPoW, false},
		{"too_many", func(t *testing.T) *protocol.Upload {
			up := ts.newUpload(t, 1, 4*fs16, fs16)
			up.PoW = append(up.PoW, up.PoW[0])
			return up
		}, protocol.CodeBadPoW, false},
		{"one_invalid_nonce", func(t *testing.T) *protocol.Upload {
			up := ts.newUpload(t, 1, twoProofs, fs16)
			up.PoW[1] = failingNonce(ts.seed(t), up.UploadID, up.Length, 1)
			return up
		}, protocol.CodeBadPoW, false},
		{"proofs_of_another_upload_id", func(t *testing.T) *protocol.Upload {
			up := ts.newUpload(t, 1, fs16, fs16)
			for !ts.failsFor(t, up.UploadID, up.Length, 0, up.PoW[0]) {
				rand.Read(up.UploadID[:])
			}
			return up
		}, protocol.CodeBadPoW, false},
		{"proofs_of_another_length", func(t *testing.T) *protocol.Upload {
			for {
				up := ts.newUpload(t, 1, fs16, fs16)
				if ts.failsFor(t, up.UploadID, 2*fs16, 0, up.PoW[0]) {
					up.Length = 2 * fs16
					return up
				}
			}
		}, protocol.CodeBadPoW, false},
		{"epoch_ahead", func(t *testing.T) *protocol.Upload {
			up := ts.newUpload(t, 1, fs16, fs16)
			up.PoWEpoch++
			return up
		}, protocol.CodeStalePoW, false},
		{"epoch_two_back", func(t *testing.T) *protocol.Upload {
			up := ts.newUpload(t, 1, fs16, fs16)
			up.PoWEpoch -= 2
			return up
		}, protocol.CodeStalePoW, false},
		// The previous epoch is accepted, but this server issued no seed
		// for it: nobody can hold proofs for it.
		{"previous_epoch_never_issued", func(t *testing.T) *protocol.Upload {
			up := ts.newUpload(t, 1, fs16, fs16)
			up.PoWEpoch--
			return up
		}, protocol.CodeStalePoW, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := tc.mk(t)
			if !tc.pre {
				up.PrePoW = prePoWOf(t, ts.seed(t), up)
			}
			ts.whileOthers(t, func() {
				c := ts.dial(t)
				c.text(up)
				c.binary(frameAt(0, fs16))
				wantRefusal(t, "upload", c.refusal(), tc.want)
			})
			if _, err := ts.store.GetUpload(t.Context(), up.UploadID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetUpload() after the refusal = %v, want %v", err, storage.ErrNotFound)
			}
			// The refused message spent nothing: the same id with good
			// proofs opens.
			ts.solveFor(t, up)
			c := ts.dial(t)
			c.text(up)
			c.readOffset(0)
		})
	}
}

// TestProofOfWorkEpochs moves the clock: proofs made with the seed of the
// previous epoch are accepted (a source computes them offline, days before
// sending), those of the epoch before it are stale.
func TestProofOfWorkEpochs(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ct := sealFor(t, ts, framesText(1), fs16, 1)
	first := ts.seed(t)
	previous := ts.newUpload(t, 1, int64(len(ct)), fs16)
	twoBack := ts.newUpload(t, 1, int64(len(ct)), fs16)

	ts.clock.advance(ts.s.cfg.PoWEpoch)
	if ts.seed(t).Epoch != first.Epoch+1 {
		t.Fatalf("seed of epoch %d after one epoch, want %d", ts.seed(t).Epoch, first.Epoch+1)
	}
	c := ts.dial(t)
	c.text(previous)
	c.frame(ct, 0, fs16)
	c.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
	ts.openReceipt(t, c.readUpload(int64(len(ct)), fs16))

	ts.clock.advance(ts.s.cfg.PoWEpoch)
	ts.whileOthers(t, func() {
		c := ts.dial(t)
		c.text(twoBack)
		c.frame(ct, 0, fs16)
		wantRefusal(t, "proofs of two epochs back", c.refusal(), protocol.CodeStalePoW)
	})
}

// TestReplayedUpload sends the same upload message (same id, same proofs)
// on a new connection, while the first upload is open and after it
// committed: replayed both times, and the first upload is undisturbed.
func TestReplayedUpload(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ct := sealFor(t, ts, framesText(2), fs16, 2)
	p := ts.startUpload(t, ct, fs16, 1)
	replay := func(what string) {
		c := ts.dial(t)
		c.text(p.up)
		c.frame(ct, 0, fs16)
		wantRefusal(t, what, c.refusal(), protocol.CodeReplayed)
	}
	ts.whileOthers(t, func() { replay("replayed while the upload is open") })
	ts.checkStored(t, p.finish(t, fs16), ct)
	ts.whileOthers(t, func() { replay("replayed after the upload committed") })
}

// TestReplayAfterSpentIDForgotten: spent upload ids are forgotten once
// their epoch is no longer accepted, but an upload opened then may still
// wait to be resumed (epochs of a day, uploads kept a week). A new upload
// message with that id and fresh proofs must be refused as replayed, and
// the waiting upload stay its source's.
func TestReplayAfterSpentIDForgotten(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.PoWEpoch = 24 * time.Hour }})
	// 64 KiB acknowledged: kept the whole upload expiry (slots.go), past
	// the two epochs.
	ct := sealFor(t, ts, framesText(5), fs16, 5)
	p := ts.startUpload(t, ct, fs16, 4)
	p.c.drop()
	ts.clock.advance(2 * ts.s.cfg.PoWEpoch)
	ts.s.purge(t.Context())
	again := *p.up
	ts.solveFor(t, &again)
	c := ts.dial(t)
	c.text(&again)
	e := c.refusal()
	wantRefusal(t, "new upload message with the id of a waiting upload", e, protocol.CodeReplayed)
	p.resumeOn(t, 4*fs16)
	ts.checkStored(t, p.finish(t, 4*fs16), ct)
}

// TestFrameTooLarge: a message over the protocol's limit is too_large, a
// data frame whose chunk is not the upload's frame size is bad_frame_size
// (sizes n-1 and n+1 of both frame sizes); either way the acknowledged
// frames stay, and a resume continues from them.
func TestFrameTooLarge(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	for _, tc := range []struct {
		name      string
		frameSize int
		msg       []byte
		text      bool
		want      protocol.Code
	}{
		{"chunk_16k_plus_1", fs16, frameAt(fs16, fs16+1), false, protocol.CodeTooLarge},
		{"binary_20k", fs16, make([]byte, 20<<10), false, protocol.CodeTooLarge},
		{"text_over_limit", fs16, []byte(`{"type":"commit"}` + strings.Repeat(" ", protocol.MaxClientMessage)), true, protocol.CodeTooLarge},
		{"chunk_16k_minus_1", fs16, frameAt(fs16, fs16-1), false, protocol.CodeBadFrameSize},
		{"chunk_8k_plus_1", fs8, frameAt(fs8, fs8+1), false, protocol.CodeBadFrameSize},
		{"chunk_8k_minus_1", fs8, frameAt(fs8, fs8-1), false, protocol.CodeBadFrameSize},
		{"chunk_16k_in_8k_upload", fs8, frameAt(fs8, fs16), false, protocol.CodeBadFrameSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames := 2 * fs16 / tc.frameSize
			ct := sealFor(t, ts, framesText(2), tc.frameSize, frames)
			p := ts.startUpload(t, ct, tc.frameSize, 1)
			ts.whileOthers(t, func() {
				if tc.text {
					p.c.text(tc.msg)
				} else {
					p.c.binary(tc.msg)
				}
				wantRefusal(t, "frame", p.c.refusal(), tc.want)
			})
			p.resumeOn(t, int64(tc.frameSize))
			ts.checkStored(t, p.finish(t, int64(tc.frameSize)), ct)
		})
	}
}

// TestSeedOnePerEpoch: every session of an epoch gets the same signed seed,
// byte for byte (a seed per session would be a tracking cookie, FIELD.md),
// in the bundle reply and in every offset; it verifies against the log
// key, names the current epoch and carries the configured cost; the next
// epoch has another; and a restart hands out the stored one.
func TestSeedOnePerEpoch(t *testing.T) {
	params := crypto.PoWParams{MemoryKiB: 32, Time: 2, Bits: 1}
	ts := newTestServer(t, serverOptions{config: func(c *Config) {
		c.PoWParams = params
		c.PoWEpoch = 48 * time.Hour
	}})
	// fetch reads the seed from a bundle reply on a new connection.
	fetch := func() []byte {
		c := ts.dial(t)
		defer c.hangUp()
		c.text(&protocol.BundleRequest{Version: protocol.Version})
		return expect[*protocol.BundleReply](c).Seed
	}
	// offsetSeed reads the seed from the offset of a new upload.
	offsetSeed := func() []byte {
		c := ts.dial(t)
		defer c.hangUp()
		c.text(ts.newUpload(t, 1, fs16, fs16))
		return expect[*protocol.Offset](c).Seed
	}
	check := func(signed []byte) *crypto.PoWSeed {
		t.Helper()
		seed, err := crypto.OpenPoWSeed(signed, ts.logKey.Verifier)
		if err != nil {
			t.Fatalf("OpenPoWSeed() = %v", err)
		}
		if want := crypto.EpochAt(ts.clock.now(), 2*86400); seed.Epoch != want {
			t.Errorf("seed of epoch %d, want the current %d", seed.Epoch, want)
		}
		if seed.EpochSeconds != 2*86400 || seed.Params != params {
			t.Errorf("seed says epochs of %d s and cost %+v, want %d s and %+v", seed.EpochSeconds, seed.Params, 2*86400, params)
		}
		return seed
	}

	first := fetch()
	s1 := check(first)
	for what, got := range map[string][]byte{"second bundle reply": fetch(), "offset": offsetSeed()} {
		if !bytes.Equal(got, first) {
			t.Errorf("%s carries seed %q, want %q", what, got, first)
		}
	}
	other := newSignerKey(t, crypto.LogKeyHeader, "other-log")
	if _, err := crypto.OpenPoWSeed(first, other.Verifier); err == nil {
		t.Errorf("the seed verifies against another log key")
	}

	ts.clock.advance(ts.s.cfg.PoWEpoch)
	next := fetch()
	s2 := check(next)
	if s2.Epoch != s1.Epoch+1 || s2.Seed == s1.Seed {
		t.Errorf("next epoch's seed is epoch %d (want %d), same seed bytes: %v", s2.Epoch, s1.Epoch+1, s2.Seed == s1.Seed)
	}
	if got := offsetSeed(); !bytes.Equal(got, next) {
		t.Errorf("offset in the next epoch carries seed %q, want %q", got, next)
	}
	ts.restart(t)
	if got := fetch(); !bytes.Equal(got, next) {
		t.Errorf("after a restart the seed is %q, want the stored %q", got, next)
	}
	ts.send(t, "sent with the epoch's seed")
	ts.intact(t)
}

// TestRestartKeepsAcked: frames acknowledged before a shutdown survive it
// (they were durable before their ack): on a new server over the same data
// directory, a resume finds the same offset and the upload completes.
func TestRestartKeepsAcked(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ct := sealFor(t, ts, framesText(4), fs16, 4)
	p := ts.startUpload(t, ct, fs16, 2)
	ts.cancel() // begin the shutdown; restart waits for its end
	wantRefusal(t, "upload open at shutdown", p.c.refusal(), protocol.CodeShuttingDown)
	ts.restart(t)
	// Nothing is in flight yet: the new server's counts are the store's.
	if got := ts.s.staging.Load(); got != 2*fs16 {
		t.Errorf("staging after the restart = %d, want the %d acknowledged", got, 2*fs16)
	}
	p.resumeOn(t, 2*fs16)
	ts.checkStored(t, p.finish(t, 2*fs16), ct)
	if n, staged := ts.storedCounts(t); n != 0 || staged != 0 {
		t.Errorf("after the commit the store holds %d unfinished uploads of %d bytes, want none", n, staged)
	}
	ts.intact(t)
}

// TestOldClientRefused: a client of protocol version 1 or 2 (and one of a
// version after ours) gets unsupported_version naming the version the
// server speaks and saying what to do, not malformed, for its bundle
// request, its upload and its resume (the upgrade path of
// docs/protocol.md, "Versions"), while a current source sends.
func TestOldClientRefused(t *testing.T) {
	if protocol.Version != 3 {
		t.Fatalf("protocol.Version = %d: update this test's messages", protocol.Version)
	}
	ts := newTestServer(t, serverOptions{})
	names := regexp.MustCompile(`(^|\D)3(\D|$)`)
	for _, tc := range []struct {
		name   string
		msg    string
		update bool // an older client: told to update
	}{
		{"bundle_request_v1", `{"type":"bundle","version":1}`, true},
		// Exactly what a version 1 client sent: no proof of work.
		{"upload_v1", `{"type":"upload","version":1,"bundle_version":1,"upload_id":"AAECAwQFBgcICQoLDA0ODw","resume_hash":"pCJs-YJmZf52yXO0b5doG_kBTjU_Us2M7KVCsZ8QCII","length":16384,"frame_size":16384}`, true},
		{"bundle_request_v2", `{"type":"bundle","version":2}`, true},
		// Exactly what a version 2 client sends: proofs, no pre-proof.
		{"upload_v2", `{"type":"upload","version":2,"bundle_version":1,"upload_id":"AAECAwQFBgcICQoLDA0ODw","resume_hash":"pCJs-YJmZf52yXO0b5doG_kBTjU_Us2M7KVCsZ8QCII","length":16384,"frame_size":16384,"pow_epoch":0,"pow":"AAAAAAAAAAA"}`, true},
		{"resume_v2", `{"type":"resume","version":2,"upload_id":"AAECAwQFBgcICQoLDA0ODw","resume_secret":"pCJs-YJmZf52yXO0b5doG_kBTjU_Us2M7KVCsZ8QCII"}`, true},
		{"bundle_request_v4", `{"type":"bundle","version":4}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.whileOthers(t, func() {
				c := ts.dial(t)
				c.text([]byte(tc.msg))
				c.binary(frameAt(0, fs16))
				e := c.refusal()
				wantRefusal(t, "message", e, protocol.CodeUnsupportedVersion)
				if !names.MatchString(e.Message) {
					t.Errorf("refusal %q does not name version %d", e.Message, protocol.Version)
				}
				if got := strings.Contains(e.Message, "update fieldtip"); got != tc.update {
					t.Errorf("refusal %q: says to update the client = %v, want %v", e.Message, got, tc.update)
				}
			})
		})
	}
}

// TestDefaultPoWCost runs the default proof-of-work cost once, end to end:
// the seed carries it, the real client's proofs pass, and proofs at the
// cheap cost do not (the server checks with the seed's cost, not the
// client's idea of it).
func TestDefaultPoWCost(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.PoWParams = crypto.PoWParams{} }})
	seed := ts.seed(t)
	if seed.Params != crypto.DefaultPoWParams {
		t.Fatalf("seed cost %+v, want the default %+v", seed.Params, crypto.DefaultPoWParams)
	}
	ts.whileOthers(t, func() {
		cheap := *seed
		cheap.Params = cheapPoW
		up := ts.bareUpload(1, fs16, fs16)
		up.PoWEpoch = seed.Epoch
		for {
			up.PoW = solve(t, &cheap, up.UploadID, up.Length)
			if ts.failsFor(t, up.UploadID, up.Length, 0, up.PoW[0]) {
				break
			}
			rand.Read(up.UploadID[:])
		}
		up.PrePoW = prePoWOf(t, seed, up)
		c := ts.dial(t)
		c.text(up)
		wantRefusal(t, "proofs at the cheap cost", c.refusal(), protocol.CodeBadPoW)
	})
	ts.send(t, "proofs at the default cost")
	ts.intact(t)
}
