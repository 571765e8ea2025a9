package server

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"fieldtip/protocol"
	"fieldtip/storage"
)

// pipeWrite is what one durable write of an upload's pipe held.
type pipeWrite struct {
	frames       int
	open, commit bool
}

// writeLog records the pipes' writes (testOnlyBeforeWrite), and can park
// the first one.
type writeLog struct {
	mu     sync.Mutex
	writes []pipeWrite
	park   *gate
}

func (l *writeLog) hook(frames int, open, commit bool) {
	l.mu.Lock()
	first := len(l.writes) == 0
	l.writes = append(l.writes, pipeWrite{frames, open, commit})
	l.mu.Unlock()
	if first && l.park != nil {
		l.park.park()
	}
}

func (l *writeLog) get() []pipeWrite {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pipeWrite(nil), l.writes...)
}

// rawDB opens the server's SQLite file read-only, apart from the store.
func (ts *testServer) rawDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: filepath.Join(ts.dir, "fieldtip.db")}).EscapedPath()+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func count(tb testing.TB, db *sql.DB, query string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestOneFrameTipOneWrite: a one-frame tip whose upload message, frame and
// commit arrive together is opened, written and committed in one durable
// write (one transaction: storage's TestWriteUploadWholeOneFrame), and
// stored as one row: no upload row, no chunk, the ciphertext in the tip's
// row, the id spent.
func TestOneFrameTipOneWrite(t *testing.T) {
	var log writeLog
	ts := newTestServer(t, serverOptions{beforeServe: func(s *Server) { s.testOnlyBeforeWrite = log.hook }})
	ct := sealFor(t, ts, framesText(1), fs16, 1)
	c := ts.dial(t)
	up := c.sendUpload(1, ct, fs16)
	c.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
	r := ts.openReceipt(t, c.readUpload(int64(len(ct)), fs16))
	ts.checkStored(t, r, ct)
	if got := log.get(); len(got) != 1 || got[0] != (pipeWrite{1, true, true}) {
		t.Errorf("durable writes %+v, want one holding the open, the frame and the commit", got)
	}
	db := ts.rawDB(t)
	if n := count(t, db, `SELECT count(*) FROM tips WHERE id = ? AND ciphertext IS NOT NULL AND chunks IS NULL`, r.TipID[:]); n != 1 {
		t.Errorf("the tip's row does not hold its ciphertext")
	}
	if n := count(t, db, `SELECT count(*) FROM uploads`) + count(t, db, `SELECT count(*) FROM chunks`); n != 0 {
		t.Errorf("%d upload rows and chunks left, want none", n)
	}
	if spent, err := ts.store.UploadIDSpent(t.Context(), up.UploadID); err != nil || !spent {
		t.Errorf("UploadIDSpent() = %v, %v, want true", spent, err)
	}
}

// TestFramesInFlightOneWrite: the frames that arrive while a write waits
// for its fsync are stored together in the next write, and the tip is the
// chunks they were stored in, never copied. The first write is parked
// until the whole upload (six frames and the commit, sent together) was
// read and handed over: then exactly two writes store it, and one ack
// acknowledges the frames of each.
func TestFramesInFlightOneWrite(t *testing.T) {
	log := writeLog{park: newGate(t)}
	commitRead := newGate(t)
	ts := newTestServer(t, serverOptions{beforeServe: func(s *Server) {
		s.testOnlyBeforeWrite = log.hook
		s.testOnlyBeforeStore = commitRead.park
	}})
	const frames = 6
	ct := sealFor(t, ts, framesText(frames), fs16, frames)
	c := ts.dial(t)
	up := c.sendUpload(1, ct, fs16)
	c.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
	log.park.waitEntered(t)
	commitRead.waitEntered(t)
	commitRead.release()
	// The commit joins what waits in the pipe; then the first write goes.
	waitFor(t, "the commit in the pipe", func() bool {
		ts.s.activeMu.Lock()
		defer ts.s.activeMu.Unlock()
		p := ts.s.active[up.UploadID].pipe
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.next.commit != nil
	})
	log.park.release()
	c.readOffset(0)
	var acks []int64
	for {
		m, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := m.(*protocol.Ack); ok {
			acks = append(acks, a.Offset)
			continue
		}
		r := ts.openReceipt(t, m.(*protocol.ReceiptReply).Receipt)
		ts.checkStored(t, r, ct)
		db := ts.rawDB(t)
		if n := count(t, db, `SELECT count(*) FROM chunks c JOIN tips t ON t.chunks = c.owner WHERE t.id = ? AND t.ciphertext IS NULL`, r.TipID[:]); n != frames {
			t.Errorf("the tip is %d chunks, want its %d frames, not a copy", n, frames)
		}
		break
	}
	// How the frames split between the two writes depends on how many the
	// session handed over before the pipe took the first batch.
	got := log.get()
	if len(got) != 2 || !got[0].open || got[0].commit || got[0].frames < 1 || !got[1].commit || got[1].open || got[0].frames+got[1].frames != frames {
		t.Errorf("durable writes %+v, want two: the open with the first frames, then the rest with the commit", got)
	}
	wantAcks := 1
	if len(got) == 2 && got[1].frames > 0 {
		wantAcks = 2
	}
	if len(acks) != wantAcks || acks[len(acks)-1] != int64(len(ct)) {
		t.Errorf("acks %v, want one per write of frames (writes %+v), the last at %d", acks, got, len(ct))
	}
}

// waitFor waits until cond holds, failing after failAfter: a wait for a
// state another goroutine reaches (as storage's waitQueued), never a sleep
// to force an order.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(failAfter)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not reached after %v", what, failAfter)
		}
		runtime.Gosched()
	}
}

// TestResumeUpgradedUpload resumes an upload staged before the store kept
// hash states (schema version 6): its hash is computed from the stored
// chunks, a frame at a time, and the commit goes through.
func TestResumeUpgradedUpload(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ct := sealFor(t, ts, framesText(3), fs16, 3)
	up := ts.newUpload(t, 1, int64(len(ct)), fs16)
	ctx := context.Background()
	// What migration 6 leaves of a staged upload: its frames in chunks, no
	// hash state.
	if err := ts.store.OpenUpload(ctx, &storage.Upload{ID: up.UploadID, ResumeHash: up.ResumeHash, BundleVersion: 1,
		Length: up.Length, FrameSize: fs16, Expires: ts.s.uploadExpiry(), ProgressDay: "2026-03-14"}, up.PoWEpoch); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := ts.store.AppendFrame(ctx, up.UploadID, int64(i*fs16), ct[i*fs16:(i+1)*fs16]); err != nil {
			t.Fatal(err)
		}
	}
	if u, err := ts.store.GetUpload(ctx, up.UploadID); err != nil || len(u.HashState) != 0 {
		t.Fatalf("staged upload %+v, %v: want no hash state", u, err)
	}
	ts.s.purge(ctx) // the slots catch up with the store
	p := &partial{up: up, ct: ct, frameSize: fs16, c: ts.dial(t)}
	p.resumeOn(t, 2*fs16)
	ts.checkStored(t, p.finish(t, 2*fs16), ct)
	ts.intact(t)
}
