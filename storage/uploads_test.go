package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	smallFrame = 8 << 10  // the low-bandwidth frame size (FIELD.md)
	largeFrame = 16 << 10 // the usual frame size
	// testExpires is the expiry day of the uploads these tests open,
	// testDay the day they open.
	testExpires = "2026-12-01"
	testDay     = "2026-11-20"
)

// uploadID returns an upload id that encodes n (in the first half, where
// newTip's ids are zero, so the two never look alike in a failure).
func uploadID(n uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], n)
	return id
}

// newUpload returns a valid upload whose id encodes n, of frames frames of
// frameSize bytes.
func newUpload(n uint64, frames, frameSize int) *Upload {
	return &Upload{
		ID:            uploadID(n),
		ResumeHash:    sha256.Sum256(fmt.Appendf(nil, "resume secret %d", n)),
		BundleVersion: 1,
		Length:        int64(frames) * int64(frameSize),
		FrameSize:     frameSize,
		Expires:       testExpires,
		ProgressDay:   testDay,
	}
}

// frameData returns frame i of upload n: size bytes, different for every
// upload and frame, so that a frame stored in the wrong place shows.
func frameData(n uint64, i, size int) []byte {
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:8], n)
	binary.BigEndian.PutUint64(seed[8:16], uint64(i))
	b := make([]byte, size)
	rand.NewChaCha8(seed).Read(b)
	return b
}

// tipOf returns a valid tip whose id encodes n and whose ciphertext is ct.
func tipOf(n uint64, ct []byte) *Tip {
	t := newTip(n, 1)
	t.Ciphertext = ct
	t.SHA256 = sha256.Sum256(ct)
	t.Length = int64(len(ct))
	return t
}

// commitOf returns the tip of an upload of the bytes ct, for CommitUpload:
// tipOf without the ciphertext, which is the upload's frames.
func commitOf(n uint64, ct []byte) *Tip {
	t := tipOf(n, ct)
	t.Ciphertext = nil
	return t
}

// uploadEqual compares uploads, an empty hash state and none alike.
func uploadEqual(a, b Upload) bool {
	if !bytes.Equal(a.HashState, b.HashState) {
		return false
	}
	return a.ID == b.ID && a.ResumeHash == b.ResumeHash && a.BundleVersion == b.BundleVersion && a.Length == b.Length &&
		a.FrameSize == b.FrameSize && a.Received == b.Received && a.Expires == b.Expires && a.ProgressDay == b.ProgressDay
}

func mustOpenUpload(t testing.TB, s *Store, u *Upload, epoch int64) {
	t.Helper()
	if err := s.OpenUpload(context.Background(), u, epoch); err != nil {
		t.Fatalf("OpenUpload(%x, epoch %d) = %v", u.ID, epoch, err)
	}
}

// appendFrames appends frames [from, to) of upload n (frameData) in order,
// checks each returned offset, and returns the bytes appended.
func appendFrames(t testing.TB, s *Store, u *Upload, n uint64, from, to int) []byte {
	t.Helper()
	var out []byte
	for i := from; i < to; i++ {
		f := frameData(n, i, u.FrameSize)
		off := int64(i) * int64(u.FrameSize)
		got, err := s.AppendFrame(context.Background(), u.ID, off, f)
		if err != nil || got != off+int64(len(f)) {
			t.Fatalf("AppendFrame(%x, %d, frame %d) = %d, %v, want %d, nil", u.ID, off, i, got, err, off+int64(len(f)))
		}
		out = append(out, f...)
	}
	return out
}

// rawOpenReadOnly opens path read-only with a plain connection that shares
// nothing with the store: what it reads was committed to the file.
func rawOpenReadOnly(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatalf("sql.Open(%q, read-only) = %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func countRows(t testing.TB, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// framesOf counts the chunks of the unfinished upload id (none if it is
// not stored).
func framesOf(t testing.TB, db *sql.DB, id [16]byte) int64 {
	t.Helper()
	return countRows(t, db, `SELECT count(*) FROM chunks c JOIN uploads u ON c.owner = u.owner WHERE u.id = ?`, id[:])
}

// checkNoOrphanChunks checks that every chunk belongs to an unfinished
// upload or a tip: deleting either deletes its chunks.
func checkNoOrphanChunks(t testing.TB, db *sql.DB) {
	t.Helper()
	if n := countRows(t, db, `SELECT count(*) FROM chunks WHERE owner NOT IN (SELECT owner FROM uploads)
		AND owner NOT IN (SELECT chunks FROM tips WHERE chunks IS NOT NULL)`); n != 0 {
		t.Errorf("%d chunks belong to no upload and no tip", n)
	}
}

// checkStaged checks that the upload u is staged with want received:
// GetUpload's offset, UploadData's bytes and the frame rows in the file.
func checkStaged(t testing.TB, s *Store, raw *sql.DB, u *Upload, want []byte) {
	t.Helper()
	ctx := context.Background()
	got, err := s.GetUpload(ctx, u.ID)
	if err != nil {
		t.Fatalf("GetUpload(%x) = %v", u.ID, err)
	}
	wantU := *u
	wantU.Received = int64(len(want))
	wantU.HashState = got.HashState // the caller's, opaque to the store
	if !uploadEqual(*got, wantU) {
		t.Errorf("GetUpload(%x) = %+v, want %+v", u.ID, *got, wantU)
	}
	data, err := s.UploadData(ctx, u.ID)
	if err != nil || !bytes.Equal(data, want) {
		t.Errorf("UploadData(%x) = %d bytes, %v, want %d bytes (the frames appended), nil", u.ID, len(data), err, len(want))
	}
	if n, frames := framesOf(t, raw, u.ID), int64(len(want)/u.FrameSize); n != frames {
		t.Errorf("chunks of %x = %d, want %d", u.ID, n, frames)
	}
	checkNoOrphanChunks(t, raw)
}

func TestUploadRoundTrip(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	for i, frameSize := range []int{smallFrame, largeFrame} {
		u := newUpload(uint64(i+1), 3, frameSize)
		u.BundleVersion = 1<<40 + 7
		if _, err := s.GetUpload(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetUpload(before open) = %v, want ErrNotFound", err)
		}
		if spent, err := s.UploadIDSpent(ctx, u.ID); err != nil || spent {
			t.Errorf("UploadIDSpent(before open) = %v, %v, want false, nil", spent, err)
		}
		mustOpenUpload(t, s, u, 7)
		got, err := s.GetUpload(ctx, u.ID)
		if err != nil || !uploadEqual(*got, *u) {
			t.Errorf("GetUpload(%x) = %+v, %v, want %+v", u.ID, got, err, *u)
		}
		if spent, err := s.UploadIDSpent(ctx, u.ID); err != nil || !spent {
			t.Errorf("UploadIDSpent(after open) = %v, %v, want true, nil", spent, err)
		}
		if data, err := s.UploadData(ctx, u.ID); err != nil || len(data) != 0 {
			t.Errorf("UploadData(nothing appended) = %d bytes, %v, want 0, nil", len(data), err)
		}
	}
	if _, err := s.GetUpload(ctx, uploadID(99)); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUpload(unknown) = %v, want ErrNotFound", err)
	}
}

func TestOpenUploadRefused(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	tests := []struct {
		name   string
		mangle func(u *Upload)
	}{
		{"length zero", func(u *Upload) { u.Length = 0 }},
		{"length negative", func(u *Upload) { u.Length = -largeFrame }},
		{"length one past whole frames", func(u *Upload) { u.Length = 2*largeFrame + 1 }},
		{"length one short of whole frames", func(u *Upload) { u.Length = 2*largeFrame - 1 }},
		{"frame size zero", func(u *Upload) { u.FrameSize = 0 }},
		{"frame size negative", func(u *Upload) { u.FrameSize = -largeFrame }},
		{"received already", func(u *Upload) { u.Received = largeFrame }},
		// These pass the method's checks and are refused by the schema,
		// after OpenUpload spent the id: the spend must be undone.
		{"frame size 4 KiB", func(u *Upload) { u.FrameSize = 4 << 10 }},
		{"frame size 32 KiB", func(u *Upload) { u.FrameSize = 32 << 10; u.Length = 32 << 10 }},
		{"expires with a time", func(u *Upload) { u.Expires = "2026-12-01T00:00" }},
		{"expires empty", func(u *Upload) { u.Expires = "" }},
	}
	for i, tt := range tests {
		u := newUpload(uint64(i+1), 2, largeFrame)
		tt.mangle(u)
		err := s.OpenUpload(ctx, u, 1)
		if err == nil || errors.Is(err, ErrDuplicate) {
			t.Errorf("%s: OpenUpload(%+v) = %v, want an error other than ErrDuplicate", tt.name, *u, err)
		}
		if _, err := s.GetUpload(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: GetUpload(refused) = %v, want ErrNotFound", tt.name, err)
		}
		if spent, err := s.UploadIDSpent(ctx, u.ID); err != nil || spent {
			t.Errorf("%s: UploadIDSpent(refused) = %v, %v, want false, nil", tt.name, spent, err)
		}
		// The id was not burnt: a valid upload may still use it.
		if err := s.OpenUpload(ctx, newUpload(uint64(i+1), 2, largeFrame), 1); err != nil {
			t.Errorf("%s: OpenUpload(valid, same id) = %v, want nil", tt.name, err)
		}
	}
}

func TestOpenUploadReplay(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()

	// While the upload is staged: the replay changes nothing.
	u := newUpload(1, 2, smallFrame)
	mustOpenUpload(t, s, u, 5)
	data := appendFrames(t, s, u, 1, 0, 1)
	for _, epoch := range []int64{5, 6} {
		replay := newUpload(1, 4, largeFrame)
		replay.ResumeHash = sha256.Sum256([]byte("another secret"))
		if err := s.OpenUpload(ctx, replay, epoch); !errors.Is(err, ErrDuplicate) {
			t.Errorf("OpenUpload(staged id, epoch %d) = %v, want ErrDuplicate", epoch, err)
		}
	}
	checkStaged(t, s, raw, u, data)

	// Once the upload is gone, by any way, its id stays spent.
	ends := []struct {
		name string
		end  func(u *Upload, n uint64) error
	}{
		{"committed", func(u *Upload, n uint64) error {
			return s.CommitUpload(ctx, u.ID, commitOf(n, appendFrames(t, s, u, n, 0, 2)))
		}},
		{"expired", func(u *Upload, n uint64) error {
			appendFrames(t, s, u, n, 0, 1)
			_, err := s.DeleteExpiredUploads(ctx, u.Expires)
			return err
		}},
		{"deleted", func(u *Upload, n uint64) error {
			appendFrames(t, s, u, n, 0, 1)
			return s.DeleteUpload(ctx, u.ID)
		}},
	}
	for i, e := range ends {
		n := uint64(10 + i)
		u := newUpload(n, 2, smallFrame)
		mustOpenUpload(t, s, u, 5)
		if err := e.end(u, n); err != nil {
			t.Fatalf("%s: ending the upload = %v", e.name, err)
		}
		if _, err := s.GetUpload(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: GetUpload(ended) = %v, want ErrNotFound", e.name, err)
		}
		if err := s.OpenUpload(ctx, newUpload(n, 2, smallFrame), 5); !errors.Is(err, ErrDuplicate) {
			t.Errorf("%s: OpenUpload(spent id) = %v, want ErrDuplicate", e.name, err)
		}
		if spent, err := s.UploadIDSpent(ctx, u.ID); err != nil || !spent {
			t.Errorf("%s: UploadIDSpent() = %v, %v, want true, nil", e.name, spent, err)
		}
		// The refused replay did not bring the upload back.
		if _, err := s.GetUpload(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: GetUpload(after replay) = %v, want ErrNotFound", e.name, err)
		}
		if n := framesOf(t, raw, u.ID); n != 0 {
			t.Errorf("%s: chunks = %d, want 0", e.name, n)
		}
		checkNoOrphanChunks(t, raw)
	}
}

func TestForgetSpentBefore(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()
	// Two ids of each epoch 4, 5 and 6, whose uploads are gone.
	epochOf := map[uint64]int64{}
	for n := uint64(1); n <= 6; n++ {
		epochOf[n] = 3 + int64(n+1)/2
		mustOpenUpload(t, s, newUpload(n, 1, smallFrame), epochOf[n])
		if err := s.DeleteUpload(ctx, uploadID(n)); err != nil {
			t.Fatalf("DeleteUpload() = %v", err)
		}
	}
	if n, err := s.ForgetSpentBefore(ctx, 5); err != nil || n != 2 {
		t.Fatalf("ForgetSpentBefore(5) = %d, %v, want 2 (the ids of epoch 4), nil", n, err)
	}
	for n := uint64(1); n <= 6; n++ {
		forgotten := epochOf[n] < 5
		spent, err := s.UploadIDSpent(ctx, uploadID(n))
		if err != nil || spent == forgotten {
			t.Errorf("epoch %d: UploadIDSpent() = %v, %v, want %v, nil", epochOf[n], spent, err, !forgotten)
		}
		err = s.OpenUpload(ctx, newUpload(n, 1, smallFrame), 6)
		if forgotten && err != nil {
			t.Errorf("epoch %d, forgotten: OpenUpload() = %v, want nil", epochOf[n], err)
		}
		if !forgotten && !errors.Is(err, ErrDuplicate) {
			t.Errorf("epoch %d, kept: OpenUpload() = %v, want ErrDuplicate", epochOf[n], err)
		}
	}
	// The reopened ids were spent again, under their new epoch.
	if n, err := s.ForgetSpentBefore(ctx, 5); err != nil || n != 0 {
		t.Errorf("ForgetSpentBefore(5) again = %d, %v, want 0, nil", n, err)
	}
	if got := countRows(t, raw, `SELECT count(*) FROM spent_uploads`); got != 6 {
		t.Errorf("rows in spent_uploads = %d, want 6", got)
	}

	// An upload staged under an epoch since forgotten cannot be opened
	// over. (Today ForgetSpentBefore forgets its id too, and OpenUpload
	// then fails on the uploads key, not with ErrDuplicate.)
	u := newUpload(100, 2, smallFrame)
	mustOpenUpload(t, s, u, 6)
	data := appendFrames(t, s, u, 100, 0, 1)
	if _, err := s.ForgetSpentBefore(ctx, 7); err != nil {
		t.Fatalf("ForgetSpentBefore(7) = %v", err)
	}
	if err := s.OpenUpload(ctx, newUpload(100, 4, largeFrame), 7); err == nil {
		t.Errorf("OpenUpload(id of a staged upload, epoch forgotten) = nil, want an error")
	}
	checkStaged(t, s, raw, u, data)
}

func TestAppendFrame(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()
	const fs = smallFrame
	u := newUpload(1, 3, fs)
	mustOpenUpload(t, s, u, 1)
	want := appendFrames(t, s, u, 1, 0, 2)
	checkStaged(t, s, raw, u, want)

	next := frameData(1, 2, fs)
	tests := []struct {
		name     string
		offset   int64
		data     []byte
		conflict bool // else another error
	}{
		{"offset of the last frame (a resend)", fs, next, true},
		{"offset zero", 0, next, true},
		{"offset one short", 2*fs - 1, next, true},
		{"offset one past", 2*fs + 1, next, true},
		{"offset a frame ahead", 3 * fs, next, true},
		{"offset negative", -1, next, true},
		{"frame one byte short", 2 * fs, next[:fs-1], false},
		{"frame one byte long", 2 * fs, append(bytes.Clone(next), 0), false},
		{"frame empty", 2 * fs, nil, false},
		{"frame of the other size", 2 * fs, frameData(1, 2, largeFrame), false},
	}
	for _, tt := range tests {
		_, err := s.AppendFrame(ctx, u.ID, tt.offset, tt.data)
		var ce *ConflictError
		switch {
		case tt.conflict && (!errors.As(err, &ce) || ce.Offset != 2*fs):
			t.Errorf("%s: AppendFrame(%d, %d bytes) = %v, want *ConflictError{Offset: %d}", tt.name, tt.offset, len(tt.data), err, 2*fs)
		case !tt.conflict && (err == nil || errors.As(err, &ce) || errors.Is(err, ErrNotFound)):
			t.Errorf("%s: AppendFrame(%d, %d bytes) = %v, want a frame size error", tt.name, tt.offset, len(tt.data), err)
		}
		checkStaged(t, s, raw, u, want)
	}

	want = append(want, appendFrames(t, s, u, 1, 2, 3)...)
	checkStaged(t, s, raw, u, want)
	// Past the end, at the right offset and with the right size.
	_, err := s.AppendFrame(ctx, u.ID, 3*fs, frameData(1, 3, fs))
	var ce *ConflictError
	if err == nil || errors.As(err, &ce) || errors.Is(err, ErrNotFound) {
		t.Errorf("AppendFrame(past the end) = %v, want a length error", err)
	}
	checkStaged(t, s, raw, u, want)

	unknown := uploadID(99)
	if _, err := s.AppendFrame(ctx, unknown, 0, frameData(99, 0, fs)); !errors.Is(err, ErrNotFound) {
		t.Errorf("AppendFrame(unknown upload) = %v, want ErrNotFound", err)
	}
	if n := framesOf(t, raw, unknown); n != 0 {
		t.Errorf("chunks of the unknown upload = %d, want 0", n)
	}
}

type appendResult struct {
	offset int64
	err    error
}

func goAppend(ctx context.Context, s *Store, id [16]byte, offset int64, data []byte) <-chan appendResult {
	c := make(chan appendResult, 1)
	go func() {
		off, err := s.AppendFrame(ctx, id, offset, data)
		c <- appendResult{off, err}
	}()
	return c
}

// TestAppendFrameSameOffsetInOneBatch forces two appends at the same offset
// of one upload into one transaction (a client resending a frame on a
// second connection): the first queued is stored, the second sees its
// write and gets the new offset.
func TestAppendFrameSameOffsetInOneBatch(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()
	u := newUpload(1, 2, smallFrame)
	mustOpenUpload(t, s, u, 1)

	h := holdWriter(t, s)
	heldErr := goPut(ctx, s, newTip(1, 8))
	<-h.held
	first, second := frameData(1, 0, smallFrame), frameData(2, 0, smallFrame)
	firstRes := goAppend(ctx, s, u.ID, 0, first)
	waitQueued(s, 1)
	secondRes := goAppend(ctx, s, u.ID, 0, second)
	waitQueued(s, 2)
	h.release()

	if err := <-heldErr; err != nil {
		t.Errorf("PutTip(held) = %v", err)
	}
	if r := <-firstRes; r.err != nil || r.offset != smallFrame {
		t.Errorf("AppendFrame(0, first) = %d, %v, want %d, nil", r.offset, r.err, smallFrame)
	}
	r := <-secondRes
	var ce *ConflictError
	if !errors.As(r.err, &ce) || ce.Offset != smallFrame {
		t.Errorf("AppendFrame(0, second in the same batch) = %v, want *ConflictError{Offset: %d}", r.err, smallFrame)
	}
	if sizes := h.batchSizes(); len(sizes) != 2 || sizes[1] != 2 {
		t.Errorf("batch sizes = %v, want [1 2]", sizes)
	}
	checkStaged(t, s, raw, u, first)
}

// TestAppendFrameGroupCommit appends from 8 goroutines, each to its own
// upload; their first frames are forced into one transaction.
func TestAppendFrameGroupCommit(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()
	const writers, frames = 8, 6
	uploads := make([]*Upload, writers)
	for w := range writers {
		uploads[w] = newUpload(uint64(w+1), frames, smallFrame)
		mustOpenUpload(t, s, uploads[w], 1)
	}

	h := holdWriter(t, s)
	heldErr := goPut(ctx, s, newTip(1, 8))
	<-h.held
	var wg sync.WaitGroup
	for w, u := range uploads {
		wg.Go(func() {
			for i := range frames {
				off := int64(i) * smallFrame
				got, err := s.AppendFrame(ctx, u.ID, off, frameData(uint64(w+1), i, smallFrame))
				if err != nil || got != off+smallFrame {
					t.Errorf("writer %d: AppendFrame(%d) = %d, %v, want %d, nil", w, off, got, err, off+smallFrame)
					return
				}
			}
		})
	}
	// Each writer waits for its first frame: exactly these are queued.
	waitQueued(s, writers)
	h.release()
	wg.Wait()
	if err := <-heldErr; err != nil {
		t.Errorf("PutTip(held) = %v", err)
	}
	if sizes := h.batchSizes(); len(sizes) < 2 || sizes[1] != writers {
		t.Errorf("batch sizes = %v, want the second to be %d (every writer's first frame)", sizes, writers)
	}

	for w, u := range uploads {
		var want []byte
		for i := range frames {
			want = append(want, frameData(uint64(w+1), i, smallFrame)...)
		}
		checkStaged(t, s, raw, u, want)
	}
	if n := countRows(t, raw, `SELECT count(*) FROM chunks`); n != writers*frames {
		t.Errorf("rows in chunks = %d, want %d", n, writers*frames)
	}
}

func TestUploadDurable(t *testing.T) {
	s, path := openTest(t, Options{})
	ctx := context.Background()
	u := newUpload(1, 4, largeFrame)
	mustOpenUpload(t, s, u, 1)
	want := appendFrames(t, s, u, 1, 0, 2)

	// Acknowledged means in the file: a connection outside the store's
	// pools sees the frames and the offset.
	raw := rawOpenReadOnly(t, path)
	var received int64
	if err := raw.QueryRow(`SELECT received FROM uploads WHERE id = ?`, u.ID[:]).Scan(&received); err != nil || received != 2*largeFrame {
		t.Errorf("raw SELECT received = %d, %v, want %d", received, err, 2*largeFrame)
	}
	if n := framesOf(t, raw, u.ID); n != 2 {
		t.Errorf("raw chunks = %d, want 2", n)
	}
	raw.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	s = openAt(t, path, Options{})
	raw = rawOpenReadOnly(t, path)
	checkStaged(t, s, raw, u, want)
	// The upload resumes at its offset, not before.
	var ce *ConflictError
	if _, err := s.AppendFrame(ctx, u.ID, 0, frameData(1, 0, largeFrame)); !errors.As(err, &ce) || ce.Offset != 2*largeFrame {
		t.Errorf("AppendFrame(0) after reopen = %v, want *ConflictError{Offset: %d}", err, 2*largeFrame)
	}
	want = append(want, appendFrames(t, s, u, 1, 2, 4)...)
	tip := commitOf(1, want)
	if err := s.CommitUpload(ctx, u.ID, tip); err != nil {
		t.Fatalf("CommitUpload() after reopen = %v", err)
	}
	if ct, err := s.TipCiphertext(ctx, tip.ID); err != nil || !bytes.Equal(ct, want) {
		t.Errorf("TipCiphertext() = %d bytes, %v, want the %d bytes uploaded", len(ct), err, len(want))
	}
}

func TestCommitUpload(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()

	// Another upload in progress, which no commit may touch.
	bystander := newUpload(50, 3, smallFrame)
	mustOpenUpload(t, s, bystander, 1)
	bystanderData := appendFrames(t, s, bystander, 50, 0, 2)

	u := newUpload(1, 3, smallFrame)
	mustOpenUpload(t, s, u, 1)
	data := appendFrames(t, s, u, 1, 0, 3)
	tip := commitOf(1, data)
	if err := s.CommitUpload(ctx, u.ID, tip); err != nil {
		t.Fatalf("CommitUpload() = %v", err)
	}
	if tip.Seq == 0 {
		t.Errorf("CommitUpload(): tip Seq = 0, want it assigned")
	}
	list, err := s.ListTips(ctx, 0, 10)
	if err != nil || len(list) != 1 || !tipMetaEqual(list[0], tip.TipMeta) {
		t.Errorf("ListTips() = %+v, %v, want [%+v]", list, err, tip.TipMeta)
	}
	if ct, err := s.TipCiphertext(ctx, tip.ID); err != nil || !bytes.Equal(ct, data) {
		t.Errorf("TipCiphertext() = %d bytes, %v, want the %d bytes uploaded", len(ct), err, len(data))
	}
	if _, err := s.GetUpload(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUpload(committed) = %v, want ErrNotFound", err)
	}
	if n := countRows(t, raw, `SELECT count(*) FROM uploads WHERE id = ?`, u.ID[:]); n != 0 {
		t.Errorf("rows in uploads for the committed upload = %d, want 0", n)
	}
	// The tip is the upload's chunks, written once: the same rows, now the
	// tip's.
	if n := countRows(t, raw, `SELECT count(*) FROM chunks c JOIN tips t ON c.owner = t.chunks WHERE t.id = ?`, tip.ID[:]); n != 3 {
		t.Errorf("chunks of the committed tip = %d, want its 3 frames", n)
	}
	if n := countRows(t, raw, `SELECT count(*) FROM tips WHERE id = ? AND ciphertext IS NULL`, tip.ID[:]); n != 1 {
		t.Errorf("the committed tip's row holds a copy of its ciphertext")
	}
	checkNoOrphanChunks(t, raw)
	// A second commit of the same upload finds nothing.
	if err := s.CommitUpload(ctx, u.ID, commitOf(2, data)); !errors.Is(err, ErrNotFound) {
		t.Errorf("CommitUpload(committed) = %v, want ErrNotFound", err)
	}
	if err := s.CommitUpload(ctx, uploadID(99), commitOf(3, data)); !errors.Is(err, ErrNotFound) {
		t.Errorf("CommitUpload(unknown) = %v, want ErrNotFound", err)
	}

	// Unfinished, by one frame: nothing stored, the upload stays.
	v := newUpload(2, 3, smallFrame)
	mustOpenUpload(t, s, v, 1)
	vData := appendFrames(t, s, v, 2, 0, 2)
	early := commitOf(4, append(bytes.Clone(vData), make([]byte, smallFrame)...))
	if err := s.CommitUpload(ctx, v.ID, early); !errors.Is(err, ErrNotFound) {
		t.Errorf("CommitUpload(unfinished) = %v, want ErrNotFound", err)
	}
	if _, err := s.TipCiphertext(ctx, early.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("TipCiphertext(refused commit) = %v, want ErrNotFound", err)
	}
	checkStaged(t, s, raw, v, vData)

	// A tip id that exists: ErrDuplicate, the stored tip and the upload stay.
	vData = append(vData, appendFrames(t, s, v, 2, 2, 3)...)
	dup := commitOf(1, vData) // the id of the tip committed above
	if err := s.CommitUpload(ctx, v.ID, dup); !errors.Is(err, ErrDuplicate) {
		t.Errorf("CommitUpload(existing tip id) = %v, want ErrDuplicate", err)
	}
	if ct, err := s.TipCiphertext(ctx, tip.ID); err != nil || !bytes.Equal(ct, data) {
		t.Errorf("TipCiphertext(existing) = %d bytes, %v, want the first tip's %d bytes", len(ct), err, len(data))
	}
	checkStaged(t, s, raw, v, vData)

	// A tip whose length is not its ciphertext's: refused, the upload stays.
	bad := commitOf(5, vData)
	bad.Length--
	if err := s.CommitUpload(ctx, v.ID, bad); err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrDuplicate) {
		t.Errorf("CommitUpload(length %d, ciphertext %d bytes) = %v, want a length error", bad.Length, len(vData), err)
	}
	checkStaged(t, s, raw, v, vData)

	// With a fresh tip id the same upload commits.
	good := commitOf(6, vData)
	if err := s.CommitUpload(ctx, v.ID, good); err != nil {
		t.Errorf("CommitUpload(fresh tip id) = %v, want nil", err)
	}
	if n, err := s.CountTips(ctx); err != nil || n != 2 {
		t.Errorf("CountTips() = %d, %v, want 2", n, err)
	}
	checkStaged(t, s, raw, bystander, bystanderData)
}

func TestDeleteExpiredUploads(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()
	const today = "2026-11-28"
	uploads := []struct {
		expires string
		frames  int // appended, of 3
		deleted bool
	}{
		{"2025-12-31", 1, true},
		{"2026-11-27", 2, true},
		{today, 3, true},
		{"2026-11-29", 0, false},
		{"2026-11-29", 2, false},
		{"2026-12-01", 1, false}, // after today only as a date, not as a number
		{"2027-01-01", 3, false},
	}
	var wantBytes, wantKept, wantFrames int64
	data := map[int][]byte{}
	for i, st := range uploads {
		u := newUpload(uint64(i+1), 3, smallFrame)
		u.Expires = st.expires
		mustOpenUpload(t, s, u, 1)
		data[i] = appendFrames(t, s, u, uint64(i+1), 0, st.frames)
		if !st.deleted {
			wantKept++
			wantBytes += int64(len(data[i]))
			wantFrames += int64(st.frames)
		}
	}
	if n, err := s.DeleteExpiredUploads(ctx, today); err != nil || n != 3 {
		t.Fatalf("DeleteExpiredUploads(%s) = %d, %v, want 3, nil", today, n, err)
	}
	for i, st := range uploads {
		u := newUpload(uint64(i+1), 3, smallFrame)
		u.Expires = st.expires
		if st.deleted {
			if _, err := s.GetUpload(ctx, u.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("expires %s: GetUpload() = %v, want ErrNotFound", st.expires, err)
			}
			if n := framesOf(t, raw, u.ID); n != 0 {
				t.Errorf("expires %s: chunks = %d, want 0", st.expires, n)
			}
			continue
		}
		checkStaged(t, s, raw, u, data[i])
	}
	if n := countRows(t, raw, `SELECT count(*) FROM chunks`); n != wantFrames {
		t.Errorf("rows in chunks = %d, want %d", n, wantFrames)
	}
	checkNoOrphanChunks(t, raw)
	// Staged counts received bytes: the never-started upload costs none.
	if n, b, err := s.Staged(ctx); err != nil || n != wantKept || b != wantBytes {
		t.Errorf("Staged() = %d, %d, %v, want %d, %d, nil", n, b, err, wantKept, wantBytes)
	}
	if n, err := s.DeleteExpiredUploads(ctx, today); err != nil || n != 0 {
		t.Errorf("DeleteExpiredUploads(%s) again = %d, %v, want 0, nil", today, n, err)
	}
}

func TestStagedEmpty(t *testing.T) {
	s, _ := openTest(t, Options{})
	if n, b, err := s.Staged(context.Background()); err != nil || n != 0 || b != 0 {
		t.Errorf("Staged(empty store) = %d, %d, %v, want 0, 0, nil", n, b, err)
	}
}

func TestPoWSeed(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	seed := func(epoch int64, which string) []byte {
		return fmt.Appendf(nil, "fieldtip/pow-seed/v1\n%d\n%s\n", epoch, which)
	}
	if got, err := s.PoWSeed(ctx, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("PoWSeed(1) before any = %q, %v, want ErrNotFound", got, err)
	}
	steps := []struct {
		epoch   int64
		which   string
		wantErr error
		want    string // the seed PoWSeed(epoch) returns afterwards
	}{
		{1, "a", nil, "a"},
		{1, "b", ErrDuplicate, "a"},
		{1, "a", ErrDuplicate, "a"}, // even the same seed: once
		{2, "b", nil, "b"},
		{0, "c", nil, "c"},
		{2, "a", ErrDuplicate, "b"},
	}
	for _, st := range steps {
		err := s.PutPoWSeed(ctx, st.epoch, seed(st.epoch, st.which))
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("PutPoWSeed(%d, %s) = %v, want %v", st.epoch, st.which, err, st.wantErr)
		}
		if got, err := s.PoWSeed(ctx, st.epoch); err != nil || !bytes.Equal(got, seed(st.epoch, st.want)) {
			t.Errorf("after PutPoWSeed(%d, %s): PoWSeed(%d) = %q, %v, want %q", st.epoch, st.which, st.epoch, got, err, seed(st.epoch, st.want))
		}
	}
	if got, err := s.PoWSeed(ctx, 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("PoWSeed(3) = %q, %v, want ErrNotFound", got, err)
	}
}

// BenchmarkAppendFrame measures AppendFrame under load: 16 KiB frames,
// each goroutine of b.RunParallel (16 per CPU) appending to its own
// uploads of 64 frames (opening the next when one is full), committed by
// the writer in groups; writes/commit counts the opens too. Then, outside
// the timer, it puts as many 16 KiB tips with PutTip the same way and
// reports frames/tip: appends per PutTip in the same run, the price of
// staging a frame against storing a whole tip of the same size.
func BenchmarkAppendFrame(b *testing.B) {
	const framesPerUpload = 64
	s, _ := openTest(b, Options{})
	ctx := context.Background()
	frame := bytes.Repeat([]byte{0xa5}, largeFrame)
	var nextUpload atomic.Uint64
	// Read after the appends returned: each answer, sent after the hook
	// ran, orders the hook's writes before the read.
	var batches, jobs int
	s.testOnlyBeforeCommit = func(n int) { batches++; jobs += n }
	b.SetParallelism(16)
	b.SetBytes(largeFrame)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var u *Upload
		var off int64
		for pb.Next() {
			if u == nil || off == u.Length {
				u = newUpload(nextUpload.Add(1), framesPerUpload, largeFrame)
				if err := s.OpenUpload(ctx, u, 1); err != nil {
					b.Errorf("OpenUpload() = %v", err)
					return
				}
				off = 0
			}
			next, err := s.AppendFrame(ctx, u.ID, off, frame)
			if err != nil {
				b.Errorf("AppendFrame(%d) = %v", off, err)
				return
			}
			off = next
		}
	})
	b.StopTimer()
	appendRate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(appendRate, "frames/s")
	if batches > 0 {
		b.ReportMetric(float64(jobs)/float64(batches), "writes/commit")
	}
	s.testOnlyBeforeCommit = nil

	var nextTip atomic.Uint64
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.PutTip(ctx, newTip(nextTip.Add(1), largeFrame)); err != nil {
				b.Errorf("PutTip() = %v", err)
				return
			}
		}
	})
	putRate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(appendRate/putRate, "frames/tip")
}

// countBatches counts the writer's transactions from now on.
func countBatches(s *Store) func() int {
	var mu sync.Mutex
	n := 0
	s.testOnlyBeforeCommit = func(int) { mu.Lock(); n++; mu.Unlock() }
	return func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// A one-frame upload whose upload message, frame and commit arrive
// together is one transaction: no upload row, no chunk, the tip holds its
// bytes, the id is spent.
func TestWriteUploadWholeOneFrame(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()
	u := newUpload(1, 1, largeFrame)
	f := frameData(1, 0, largeFrame)
	tip := commitOf(1, f)
	batches := countBatches(s)
	got, err := s.WriteUpload(ctx, &UploadWrite{ID: u.ID, Open: u, Epoch: 3, Frames: [][]byte{f}, HashState: []byte("h"), Day: testDay, Commit: tip})
	if err != nil || got != largeFrame {
		t.Fatalf("WriteUpload(open, frame, commit) = %d, %v, want %d, nil", got, err, largeFrame)
	}
	if n := batches(); n != 1 {
		t.Errorf("transactions = %d, want 1", n)
	}
	if tip.Seq == 0 {
		t.Errorf("tip Seq not assigned")
	}
	if ct, err := s.TipCiphertext(ctx, tip.ID); err != nil || !bytes.Equal(ct, f) {
		t.Errorf("TipCiphertext() = %d bytes, %v, want the frame", len(ct), err)
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM uploads`: 0,
		`SELECT count(*) FROM chunks`:  0,
		`SELECT count(*) FROM tips WHERE ciphertext IS NOT NULL AND chunks IS NULL`: 1,
	} {
		if n := countRows(t, raw, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	if spent, err := s.UploadIDSpent(ctx, u.ID); err != nil || !spent {
		t.Errorf("UploadIDSpent() = %v, %v, want true", spent, err)
	}
	// The same again: its id is spent, nothing more is stored.
	again := commitOf(2, f)
	if _, err := s.WriteUpload(ctx, &UploadWrite{ID: u.ID, Open: u, Epoch: 3, Frames: [][]byte{f}, Day: testDay, Commit: again}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("WriteUpload(replayed) = %v, want ErrDuplicate", err)
	}
	if n, err := s.CountTips(ctx); err != nil || n != 1 {
		t.Errorf("CountTips() = %d, %v, want 1", n, err)
	}
}

// A longer upload written whole is its chunks, under its tip, in one
// transaction.
func TestWriteUploadWholeFrames(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()
	u := newUpload(1, 3, smallFrame)
	var frames [][]byte
	var all []byte
	for i := range 3 {
		frames = append(frames, frameData(1, i, smallFrame))
		all = append(all, frames[i]...)
	}
	tip := commitOf(1, all)
	batches := countBatches(s)
	if _, err := s.WriteUpload(ctx, &UploadWrite{ID: u.ID, Open: u, Frames: frames, Day: testDay, Commit: tip}); err != nil {
		t.Fatalf("WriteUpload(whole) = %v", err)
	}
	if n := batches(); n != 1 {
		t.Errorf("transactions = %d, want 1", n)
	}
	if ct, err := s.TipCiphertext(ctx, tip.ID); err != nil || !bytes.Equal(ct, all) {
		t.Errorf("TipCiphertext() = %d bytes, %v, want %d", len(ct), err, len(all))
	}
	if n := countRows(t, raw, `SELECT count(*) FROM uploads`); n != 0 {
		t.Errorf("uploads = %d, want 0", n)
	}
	if n := countRows(t, raw, `SELECT count(*) FROM chunks c JOIN tips t ON t.chunks = c.owner`); n != 3 {
		t.Errorf("chunks of the tip = %d, want 3", n)
	}
	checkNoOrphanChunks(t, raw)
}

// Frames in flight are appended in one transaction with the upload's
// hash state and progress day; the last ones and the commit in another.
func TestWriteUploadBatches(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()
	u := newUpload(1, 5, smallFrame)
	var want []byte
	frames := func(from, to int) [][]byte {
		var fs [][]byte
		for i := from; i < to; i++ {
			f := frameData(1, i, smallFrame)
			fs = append(fs, f)
			want = append(want, f...)
		}
		return fs
	}
	batches := countBatches(s)
	got, err := s.WriteUpload(ctx, &UploadWrite{ID: u.ID, Open: u, Epoch: 1, Frames: frames(0, 3), HashState: []byte("state 3"), Day: "2026-11-21"})
	if err != nil || got != 3*smallFrame {
		t.Fatalf("WriteUpload(open, 3 frames) = %d, %v, want %d", got, err, 3*smallFrame)
	}
	staged := *u
	staged.ProgressDay = "2026-11-21"
	checkStaged(t, s, raw, &staged, want)
	if g, _ := s.GetUpload(ctx, u.ID); g == nil || string(g.HashState) != "state 3" {
		t.Errorf("GetUpload().HashState = %q, want the state written", g.HashState)
	}
	// A write at another offset changes nothing.
	var ce *ConflictError
	if _, err := s.WriteUpload(ctx, &UploadWrite{ID: u.ID, Offset: 2 * smallFrame, Frames: [][]byte{frameData(1, 2, smallFrame)}, Day: testDay}); !errors.As(err, &ce) || ce.Offset != 3*smallFrame {
		t.Errorf("WriteUpload(offset behind) = %v, want *ConflictError{%d}", err, 3*smallFrame)
	}
	// A commit before the end: ErrNotFound, nothing stored, frames of the
	// same write included.
	early := commitOf(2, append(bytes.Clone(want), make([]byte, 2*smallFrame)...))
	if _, err := s.WriteUpload(ctx, &UploadWrite{ID: u.ID, Offset: 3 * smallFrame, Frames: [][]byte{frameData(1, 3, smallFrame)}, Day: testDay, Commit: early}); !errors.Is(err, ErrNotFound) {
		t.Errorf("WriteUpload(a frame short, commit) = %v, want ErrNotFound", err)
	}
	checkStaged(t, s, raw, &staged, want)
	tip := commitOf(1, append(bytes.Clone(want), append(frameData(1, 3, smallFrame), frameData(1, 4, smallFrame)...)...))
	if got, err := s.WriteUpload(ctx, &UploadWrite{ID: u.ID, Offset: 3 * smallFrame, Frames: frames(3, 5), HashState: []byte("state 5"), Day: testDay, Commit: tip}); err != nil || got != 5*smallFrame {
		t.Fatalf("WriteUpload(last 2 frames, commit) = %d, %v", got, err)
	}
	if n := batches(); n != 4 {
		t.Errorf("transactions = %d, want 4 (one per write)", n)
	}
	if ct, err := s.TipCiphertext(ctx, tip.ID); err != nil || !bytes.Equal(ct, want) {
		t.Errorf("TipCiphertext() = %d bytes, %v, want %d", len(ct), err, len(want))
	}
	checkNoOrphanChunks(t, raw)
}

// An upload opened to replace an evicted one deletes it, and its chunks,
// in the same transaction; the evicted one's id stays spent.
func TestWriteUploadEvict(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()
	old := newUpload(1, 3, smallFrame)
	mustOpenUpload(t, s, old, 1)
	appendFrames(t, s, old, 1, 0, 1)
	keep := newUpload(2, 3, smallFrame)
	mustOpenUpload(t, s, keep, 1)
	kept := appendFrames(t, s, keep, 2, 0, 2)
	u := newUpload(3, 1, smallFrame)
	if _, err := s.WriteUpload(ctx, &UploadWrite{ID: u.ID, Open: u, Epoch: 1, Day: testDay, Evict: [][16]byte{old.ID, uploadID(99)}}); err != nil {
		t.Fatalf("WriteUpload(open, evict) = %v", err)
	}
	if _, err := s.GetUpload(ctx, old.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUpload(evicted) = %v, want ErrNotFound", err)
	}
	if spent, _ := s.UploadIDSpent(ctx, old.ID); !spent {
		t.Errorf("the evicted upload's id is no longer spent")
	}
	checkStaged(t, s, raw, keep, kept)
	checkStaged(t, s, raw, u, nil)
	checkNoOrphanChunks(t, raw)
	// An eviction in a write that fails is undone with it.
	dup := newUpload(3, 1, smallFrame)
	if _, err := s.WriteUpload(ctx, &UploadWrite{ID: dup.ID, Open: dup, Epoch: 1, Day: testDay, Evict: [][16]byte{keep.ID}}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("WriteUpload(spent id, evict) = %v, want ErrDuplicate", err)
	}
	checkStaged(t, s, raw, keep, kept)
}

func TestListAndDeleteUploads(t *testing.T) {
	s, path := openTest(t, Options{})
	raw := rawOpenReadOnly(t, path)
	ctx := context.Background()
	want := map[[16]byte]UploadProgress{}
	var ids [][16]byte
	for n := uint64(1); n <= 5; n++ {
		u := newUpload(n, 4, smallFrame)
		mustOpenUpload(t, s, u, 1)
		appendFrames(t, s, u, n, 0, int(n%4))
		want[u.ID] = UploadProgress{ID: u.ID, Received: int64(n%4) * smallFrame, Length: u.Length, ProgressDay: testDay}
		ids = append(ids, u.ID)
	}
	list, err := s.ListUploadProgress(ctx)
	if err != nil || len(list) != len(want) {
		t.Fatalf("ListUploadProgress() = %d, %v, want %d", len(list), err, len(want))
	}
	for _, p := range list {
		if p != want[p.ID] {
			t.Errorf("ListUploadProgress(): %+v, want %+v", p, want[p.ID])
		}
	}
	n, err := s.DeleteUploads(ctx, append(ids[:3:3], uploadID(99)))
	if err != nil || n != 3 {
		t.Errorf("DeleteUploads(3 and an unknown) = %d, %v, want 3, nil", n, err)
	}
	if list, _ := s.ListUploadProgress(ctx); len(list) != 2 {
		t.Errorf("uploads left = %d, want 2", len(list))
	}
	checkNoOrphanChunks(t, raw)
}

// UploadReader streams what was received, in order.
func TestUploadReader(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	u := newUpload(1, 4, smallFrame)
	mustOpenUpload(t, s, u, 1)
	want := appendFrames(t, s, u, 1, 0, 3)
	r, err := s.UploadReader(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Read a few bytes at a time: chunks are handed out across reads.
	var got []byte
	buf := make([]byte, 1000)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("UploadReader read %d bytes, want the %d received", len(got), len(want))
	}
}
