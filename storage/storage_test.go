package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// testLogWriter routes the store's log to t.Log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
}

// openTest opens a store on a new file in t.TempDir and closes it when the
// test ends.
func openTest(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fieldtip.db")
	return openAt(t, path, opts), path
}

func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s
}

// rawOpen opens path with a plain connection that shares nothing with the
// store: what it reads was committed to the file.
func rawOpen(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatalf("sql.Open(%q) = %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newTip returns a valid tip whose id encodes n and whose ciphertext has
// size bytes (at least 1).
func newTip(n uint64, size int) *Tip {
	t := &Tip{Ciphertext: bytes.Repeat([]byte{byte(n)}, size)}
	binary.BigEndian.PutUint64(t.ID[8:], n)
	t.Day = "2026-11-28"
	t.BundleVersion = 1
	t.SHA256 = sha256.Sum256(t.Ciphertext)
	t.Length = int64(size)
	t.Receipt = fmt.Appendf(nil, "fieldtip/receipt/v1\n%d\n", n)
	return t
}

func goPut(ctx context.Context, s *Store, t *Tip) <-chan error {
	c := make(chan error, 1)
	go func() { c <- s.PutTip(ctx, t) }()
	return c
}

// writerHold stops the writer in its first batch, before the commit, until
// release is called; it records every batch size the writer commits.
type writerHold struct {
	held        chan struct{} // closed when the first batch reached the hook
	releaseCh   chan struct{}
	releaseOnce sync.Once

	mu    sync.Mutex
	sizes []int
}

// holdWriter installs the hook. It must be called before the store's first
// write (the hook field is not synchronised with the writer otherwise), or
// after a write that returned.
func holdWriter(t testing.TB, s *Store) *writerHold {
	h := &writerHold{held: make(chan struct{}), releaseCh: make(chan struct{})}
	first := true
	s.testOnlyBeforeCommit = func(n int) {
		h.mu.Lock()
		h.sizes = append(h.sizes, n)
		f := first
		first = false
		h.mu.Unlock()
		if f {
			close(h.held)
			<-h.releaseCh
		}
	}
	// Cleanups run last-in first-out: this one runs before the store's
	// Close, which would otherwise wait for a held writer forever.
	t.Cleanup(h.release)
	return h
}

func (h *writerHold) release() { h.releaseOnce.Do(func() { close(h.releaseCh) }) }

func (h *writerHold) batchSizes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sizes)
}

// waitQueued waits, without a clock, until n writes wait in the queue.
func waitQueued(s *Store, n int) {
	for len(s.queue) < n {
		runtime.Gosched()
	}
}

func TestOpenPragmas(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	want := []struct{ pragma, value string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"secure_delete", "1"},
	}
	pools := []struct {
		name  string
		db    *sql.DB
		conns int
	}{
		{"write", s.writeDB, 1},
		// Several connections at once, so the pool must open new ones:
		// each must have the pragmas, not only the first.
		{"read", s.readDB, 3},
	}
	for _, pool := range pools {
		var conns []*sql.Conn
		for range pool.conns {
			c, err := pool.db.Conn(ctx)
			if err != nil {
				t.Fatalf("%s pool: Conn() = %v", pool.name, err)
			}
			defer c.Close()
			conns = append(conns, c)
		}
		for i, c := range conns {
			for _, p := range want {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
					t.Fatalf("%s pool conn %d: PRAGMA %s: %v", pool.name, i, p.pragma, err)
				}
				if strings.ToLower(got) != p.value {
					t.Errorf("%s pool conn %d: PRAGMA %s = %q, want %q", pool.name, i, p.pragma, got, p.value)
				}
			}
		}
	}
	// The read pool cannot write.
	if _, err := s.readDB.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('k', 'v')`); err == nil {
		t.Errorf("read pool: INSERT = nil, want an error (query_only)")
	}
}

func TestOpenPathNeedsEscaping(t *testing.T) {
	// Characters that mean something in a URI must land in the file name
	// as written, not be taken as a query, a fragment or an escape.
	dir := filepath.Join(t.TempDir(), "a dir#1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "we?ird %20name.db")
	s := openAt(t, path, Options{})
	if err := s.PutTip(context.Background(), newTip(1, 8)); err != nil {
		t.Fatalf("PutTip() = %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Stat(%q) after Open = %v", path, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "we?ird %20name.db") {
			t.Errorf("ReadDir(%q) has %q, want only the database and its -wal, -shm", dir, e.Name())
		}
	}
}

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatalf("PRAGMA user_version: %v", err)
	}
	return v
}

func TestMigrations(t *testing.T) {
	if SchemaVersion() < 1 {
		t.Fatalf("SchemaVersion() = %d, want at least 1", SchemaVersion())
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fieldtip.db")
	s, err := Open(path, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	if got := userVersion(t, s.writeDB); got != SchemaVersion() {
		t.Errorf("fresh database: user_version = %d, want %d", got, SchemaVersion())
	}
	tip := newTip(1, 16)
	if err := s.PutTip(ctx, tip); err != nil {
		t.Fatalf("PutTip() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	// Reopening applies nothing twice and keeps the data.
	for i := range 2 {
		s, err := Open(path, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("reopen %d: Open(%q) = %v", i, path, err)
		}
		if got := userVersion(t, s.writeDB); got != SchemaVersion() {
			t.Errorf("reopen %d: user_version = %d, want %d", i, got, SchemaVersion())
		}
		if n, err := s.CountTips(ctx); err != nil || n != 1 {
			t.Errorf("reopen %d: CountTips() = %d, %v, want 1, nil", i, n, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("reopen %d: Close() = %v", i, err)
		}
	}

	// A database from a newer program is refused.
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	future := SchemaVersion() + 1
	if _, err := raw.Exec(fmt.Sprintf("PRAGMA user_version = %d", future)); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	s, err = Open(path, Options{Logger: testLogger(t)})
	if err == nil {
		s.Close()
		t.Fatalf("Open(future schema) = nil error, want *FutureSchemaError")
	}
	var fe *FutureSchemaError
	if !errors.As(err, &fe) {
		t.Fatalf("Open(future schema) = %v, want *FutureSchemaError", err)
	}
	if fe.Have != future || fe.Support != SchemaVersion() || fe.Path != path {
		t.Errorf("Open(future schema) = %+v, want Have %d, Support %d, Path %q", fe, future, SchemaVersion(), path)
	}
	// Refusing did not touch the schema version.
	raw = rawOpen(t, path)
	if got := userVersion(t, raw); got != future {
		t.Errorf("after refused Open: user_version = %d, want %d", got, future)
	}
}

func TestTipRoundTrip(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	var tips []*Tip
	for i := range 3 {
		tip := newTip(uint64(i+1), 100*(i+1))
		if err := s.PutTip(ctx, tip); err != nil {
			t.Fatalf("PutTip(%d) = %v", i, err)
		}
		if i > 0 && tip.Seq <= tips[i-1].Seq {
			t.Errorf("PutTip(%d): Seq = %d, want above %d", i, tip.Seq, tips[i-1].Seq)
		}
		tips = append(tips, tip)
	}
	got, err := s.ListTips(ctx, 0, 10)
	if err != nil {
		t.Fatalf("ListTips(0, 10) = %v", err)
	}
	if len(got) != len(tips) {
		t.Fatalf("ListTips(0, 10) = %d tips, want %d", len(got), len(tips))
	}
	for i, tip := range tips {
		if !tipMetaEqual(got[i], tip.TipMeta) {
			t.Errorf("ListTips(0, 10)[%d] = %+v, want %+v", i, got[i], tip.TipMeta)
		}
		ct, err := s.TipCiphertext(ctx, tip.ID)
		if err != nil || !bytes.Equal(ct, tip.Ciphertext) {
			t.Errorf("TipCiphertext(%x) = %d bytes, %v, want %d bytes, nil", tip.ID, len(ct), err, len(tip.Ciphertext))
		}
	}
	if n, err := s.CountTips(ctx); err != nil || n != 3 {
		t.Errorf("CountTips() = %d, %v, want 3, nil", n, err)
	}
	if _, err := s.TipCiphertext(ctx, newTip(99, 1).ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("TipCiphertext(unknown) = %v, want ErrNotFound", err)
	}
}

func tipMetaEqual(a, b TipMeta) bool {
	return a.Seq == b.Seq && a.ID == b.ID && a.Day == b.Day && a.BundleVersion == b.BundleVersion &&
		a.SHA256 == b.SHA256 && a.Length == b.Length && bytes.Equal(a.Receipt, b.Receipt)
}

func TestPutTipLengthMismatch(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	for _, delta := range []int64{-1, 1} {
		tip := newTip(1, 32)
		tip.Length += delta
		if err := s.PutTip(ctx, tip); err == nil || errors.Is(err, ErrDuplicate) {
			t.Errorf("PutTip(length %d, ciphertext 32) = %v, want a length error", tip.Length, err)
		}
	}
	if n, err := s.CountTips(ctx); err != nil || n != 0 {
		t.Errorf("CountTips() = %d, %v, want 0, nil", n, err)
	}
}

func TestListTipsPaging(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	var seqs []int64
	for i := range 5 {
		tip := newTip(uint64(i+1), 8)
		if err := s.PutTip(ctx, tip); err != nil {
			t.Fatalf("PutTip(%d) = %v", i, err)
		}
		seqs = append(seqs, tip.Seq)
	}
	var after int64
	var pages [][]int64
	for {
		page, err := s.ListTips(ctx, after, 2)
		if err != nil {
			t.Fatalf("ListTips(%d, 2) = %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("ListTips(%d, 2) = %d tips, want at most 2", after, len(page))
		}
		var ps []int64
		for _, m := range page {
			ps = append(ps, m.Seq)
		}
		pages = append(pages, ps)
		after = page[len(page)-1].Seq
	}
	want := [][]int64{seqs[0:2], seqs[2:4], seqs[4:5]}
	if !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("ListTips pages of 2 = %v, want %v", pages, want)
	}
	if page, err := s.ListTips(ctx, seqs[4], 10); err != nil || len(page) != 0 {
		t.Errorf("ListTips(last seq %d, 10) = %d tips, %v, want 0, nil", seqs[4], len(page), err)
	}
	if page, err := s.ListTips(ctx, seqs[1], 1); err != nil || len(page) != 1 || page[0].Seq != seqs[2] {
		t.Errorf("ListTips(%d, 1) = %v, %v, want seq %d", seqs[1], page, err, seqs[2])
	}
}

func TestSeqNeverReused(t *testing.T) {
	s, path := openTest(t, Options{})
	ctx := context.Background()
	a, b := newTip(1, 8), newTip(2, 8)
	for _, tip := range []*Tip{a, b} {
		if err := s.PutTip(ctx, tip); err != nil {
			t.Fatalf("PutTip() = %v", err)
		}
	}
	// Remove the newest tip behind the store's back: its seq must still
	// not come back, or an editor's cursor would skip the next tip.
	raw := rawOpen(t, path)
	if _, err := raw.Exec(`DELETE FROM tips WHERE seq = ?`, b.Seq); err != nil {
		t.Fatal(err)
	}
	c := newTip(3, 8)
	if err := s.PutTip(ctx, c); err != nil {
		t.Fatalf("PutTip() = %v", err)
	}
	if c.Seq <= b.Seq {
		t.Errorf("PutTip after deleting seq %d: Seq = %d, want above %d", b.Seq, c.Seq, b.Seq)
	}
	// A refused duplicate does not disturb the order either.
	if err := s.PutTip(ctx, newTip(3, 8)); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("PutTip(duplicate) = %v, want ErrDuplicate", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path, Options{})
	d := newTip(4, 8)
	if err := s.PutTip(ctx, d); err != nil {
		t.Fatalf("PutTip() after reopen = %v", err)
	}
	if d.Seq <= c.Seq {
		t.Errorf("PutTip after reopen: Seq = %d, want above %d", d.Seq, c.Seq)
	}
}

func TestGroupCommitDuplicateFailsAlone(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	stored := newTip(100, 8)
	if err := s.PutTip(ctx, stored); err != nil {
		t.Fatalf("PutTip() = %v", err)
	}

	h := holdWriter(t, s)
	first := newTip(1, 8)
	firstErr := goPut(ctx, s, first)
	<-h.held

	// While the writer is held, queue several tips, one of which repeats
	// the stored id: they must all land in the next batch.
	const n = 8
	tips := make([]*Tip, n)
	errs := make([]<-chan error, n)
	const dup = 5
	for i := range n {
		if i == dup {
			tips[i] = newTip(100, 9) // same id as stored, other content
		} else {
			tips[i] = newTip(uint64(i+2), 8)
		}
		errs[i] = goPut(ctx, s, tips[i])
	}
	waitQueued(s, n)
	h.release()

	if err := <-firstErr; err != nil {
		t.Errorf("PutTip(held) = %v, want nil", err)
	}
	for i := range n {
		err := <-errs[i]
		if i == dup {
			if !errors.Is(err, ErrDuplicate) {
				t.Errorf("PutTip(duplicate id in batch) = %v, want ErrDuplicate", err)
			}
		} else if err != nil {
			t.Errorf("PutTip(tip %d in batch) = %v, want nil", i, err)
		}
	}
	if sizes := h.batchSizes(); len(sizes) != 2 || sizes[0] != 1 || sizes[1] != n {
		t.Errorf("batch sizes = %v, want [1 %d] (the held write, then one batch)", sizes, n)
	}

	list, err := s.ListTips(ctx, 0, 100)
	if err != nil {
		t.Fatalf("ListTips() = %v", err)
	}
	want := []*Tip{stored, first}
	for i, tip := range tips {
		if i != dup {
			want = append(want, tip)
		}
	}
	if len(list) != len(want) {
		t.Fatalf("ListTips() = %d tips, want %d", len(list), len(want))
	}
	for _, tip := range want {
		i := slices.IndexFunc(list, func(m TipMeta) bool { return m.ID == tip.ID })
		if i < 0 || !tipMetaEqual(list[i], tip.TipMeta) {
			t.Errorf("ListTips() lacks %+v", tip.TipMeta)
		}
	}
	for i := 1; i < len(list); i++ {
		if list[i].Seq <= list[i-1].Seq {
			t.Errorf("ListTips() seq %d after %d, want increasing", list[i].Seq, list[i-1].Seq)
		}
	}
	if ct, err := s.TipCiphertext(ctx, stored.ID); err != nil || !bytes.Equal(ct, stored.Ciphertext) {
		t.Errorf("TipCiphertext(duplicated id) = %x, %v, want the first stored %x", ct, err, stored.Ciphertext)
	}
}

func TestErrBusy(t *testing.T) {
	s, _ := openTest(t, Options{QueueSize: 1})
	ctx := context.Background()
	h := holdWriter(t, s)
	heldErr := goPut(ctx, s, newTip(1, 8))
	<-h.held
	queuedErr := goPut(ctx, s, newTip(2, 8))
	waitQueued(s, 1)

	busy := newTip(3, 8)
	if err := s.PutTip(ctx, busy); !errors.Is(err, ErrBusy) {
		t.Errorf("PutTip(queue full) = %v, want ErrBusy", err)
	}
	h.release()
	if err := <-heldErr; err != nil {
		t.Errorf("PutTip(held) = %v, want nil", err)
	}
	if err := <-queuedErr; err != nil {
		t.Errorf("PutTip(queued) = %v, want nil", err)
	}
	if _, err := s.TipCiphertext(ctx, busy.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("TipCiphertext(refused as busy) = %v, want ErrNotFound", err)
	}
	// The queue drained: writes are accepted again.
	if err := s.PutTip(ctx, busy); err != nil {
		t.Errorf("PutTip(after drain) = %v, want nil", err)
	}
}

func TestCloseCommitsQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldtip.db")
	s, err := Open(path, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h := holdWriter(t, s)
	tips := []*Tip{newTip(1, 8)}
	errs := []<-chan error{goPut(ctx, s, tips[0])}
	<-h.held
	for i := range 3 {
		tip := newTip(uint64(i+2), 8)
		tips = append(tips, tip)
		errs = append(errs, goPut(ctx, s, tip))
	}
	waitQueued(s, 3)

	closeErr := make(chan error, 1)
	go func() { closeErr <- s.Close() }()
	<-s.closing // Close has begun.
	late := newTip(50, 8)
	if err := s.PutTip(ctx, late); !errors.Is(err, ErrClosed) {
		t.Errorf("PutTip(while closing) = %v, want ErrClosed", err)
	}
	h.release()
	for i, c := range errs {
		if err := <-c; err != nil {
			t.Errorf("PutTip(tip %d, queued before Close) = %v, want nil", i, err)
		}
	}
	if err := <-closeErr; err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := s.PutTip(ctx, late); !errors.Is(err, ErrClosed) {
		t.Errorf("PutTip(after Close) = %v, want ErrClosed", err)
	}
	if err := s.SetSettingOnce(ctx, "k", "v"); !errors.Is(err, ErrClosed) {
		t.Errorf("SetSettingOnce(after Close) = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}

	s = openAt(t, path, Options{})
	for _, tip := range tips {
		if ct, err := s.TipCiphertext(ctx, tip.ID); err != nil || !bytes.Equal(ct, tip.Ciphertext) {
			t.Errorf("after reopen: TipCiphertext(%x) = %x, %v, want %x", tip.ID, ct, err, tip.Ciphertext)
		}
	}
	if n, err := s.CountTips(ctx); err != nil || n != int64(len(tips)) {
		t.Errorf("after reopen: CountTips() = %d, %v, want %d", n, err, len(tips))
	}
}

// TestCloseRacesWrites checks that a write racing Close never hangs and
// that its result is true: nil means committed, ErrClosed means not.
func TestCloseRacesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldtip.db")
	s, err := Open(path, Options{Logger: testLogger(t), MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background() // no deadline: a lost job would hang
	const writers = 16
	type result struct {
		tip *Tip
		err error
	}
	results := make(chan result)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := uint64(0); ; i++ {
				tip := newTip(uint64(w)<<32|i, 8)
				err := s.PutTip(ctx, tip)
				results <- result{tip, err}
				if err != nil {
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(results) }()
	close(start)
	var committed, closed []*Tip
	for r := range results {
		switch {
		case r.err == nil:
			committed = append(committed, r.tip)
			if len(committed) == 200 {
				go s.Close()
			}
		case errors.Is(r.err, ErrClosed):
			closed = append(closed, r.tip)
		default:
			t.Errorf("PutTip() racing Close = %v, want nil or ErrClosed", r.err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if len(closed) != writers {
		t.Errorf("%d writers got ErrClosed, want %d", len(closed), writers)
	}
	s = openAt(t, path, Options{})
	if n, err := s.CountTips(ctx); err != nil || n != int64(len(committed)) {
		t.Errorf("after reopen: CountTips() = %d, %v, want %d (the acknowledged writes)", n, err, len(committed))
	}
	for _, tip := range closed {
		if _, err := s.TipCiphertext(ctx, tip.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("TipCiphertext(refused with ErrClosed) = %v, want ErrNotFound", err)
		}
	}
}

// TestWriteAfterWriterStopped replays, without timing, the window a write
// racing Close can fall in: it passed the closing check just before Close
// began, and reaches the queue after the writer drained it and stopped. It
// must fail with ErrClosed, not wait forever for a writer that is gone.
func TestWriteAfterWriterStopped(t *testing.T) {
	s, _ := openTest(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	s.closing = make(chan struct{}) // as the racing write saw it
	result := goPut(context.Background(), s, newTip(1, 8))
	if err := <-result; !errors.Is(err, ErrClosed) {
		t.Errorf("PutTip(queued after the writer stopped) = %v, want ErrClosed", err)
	}
}

func TestPutTipDurable(t *testing.T) {
	s, path := openTest(t, Options{})
	ctx := context.Background()
	tip := newTip(7, 4096)
	if err := s.PutTip(ctx, tip); err != nil {
		t.Fatalf("PutTip() = %v", err)
	}
	// A separate connection, outside the store's pools, sees the row:
	// it is in the file (its WAL), not only in the store's cache.
	raw := rawOpen(t, path)
	var seq int64
	var ct, receipt []byte
	err := raw.QueryRow(`SELECT seq, ciphertext, receipt FROM tips WHERE id = ?`, tip.ID[:]).Scan(&seq, &ct, &receipt)
	if err != nil {
		t.Fatalf("raw SELECT of acknowledged tip = %v", err)
	}
	if seq != tip.Seq || !bytes.Equal(ct, tip.Ciphertext) || !bytes.Equal(receipt, tip.Receipt) {
		t.Errorf("raw SELECT = seq %d, %d bytes, receipt %q, want seq %d, %d bytes, receipt %q",
			seq, len(ct), receipt, tip.Seq, len(tip.Ciphertext), tip.Receipt)
	}
}

func TestCancelledBeforeWriterRuns(t *testing.T) {
	s, _ := openTest(t, Options{})
	h := holdWriter(t, s)
	heldErr := goPut(context.Background(), s, newTip(1, 8))
	<-h.held

	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("source went away")
	abandoned := newTip(2, 8)
	abandonedErr := goPut(ctx, s, abandoned)
	waitQueued(s, 1)
	cancel(cause)
	if err := <-abandonedErr; !errors.Is(err, cause) {
		t.Errorf("PutTip(cancelled while queued) = %v, want an error wrapping the cause", err)
	}
	h.release()
	if err := <-heldErr; err != nil {
		t.Errorf("PutTip(held) = %v, want nil", err)
	}
	// The queue is first in, first out: once this returns, the writer has
	// been through the abandoned job.
	after := newTip(3, 8)
	if err := s.PutTip(context.Background(), after); err != nil {
		t.Fatalf("PutTip(after) = %v", err)
	}
	if _, err := s.TipCiphertext(context.Background(), abandoned.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("TipCiphertext(abandoned) = %v, want ErrNotFound", err)
	}
	if n, err := s.CountTips(context.Background()); err != nil || n != 2 {
		t.Errorf("CountTips() = %d, %v, want 2", n, err)
	}
}

func TestBundles(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if b, err := s.LatestBundle(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("LatestBundle(none) = %q, %v, want ErrNotFound", b, err)
	}
	steps := []struct {
		version int64
		wantErr error
		latest  int64 // version LatestBundle returns afterwards
	}{
		{1, nil, 1},
		{1, ErrDuplicate, 1}, // equal
		{0, ErrDuplicate, 1}, // lower
		{3, nil, 3},          // gaps are allowed
		{2, ErrDuplicate, 3}, // lower than the newest, though never stored
		{3, ErrDuplicate, 3},
		{4, nil, 4},
	}
	signed := func(v int64) []byte { return fmt.Appendf(nil, "fieldtip/bundle/v1\nversion %d\n", v) }
	for _, st := range steps {
		err := s.PutBundle(ctx, st.version, signed(st.version), "2026-11-28")
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("PutBundle(%d) = %v, want %v", st.version, err, st.wantErr)
		}
		b, err := s.LatestBundle(ctx)
		if err != nil || !bytes.Equal(b, signed(st.latest)) {
			t.Errorf("after PutBundle(%d): LatestBundle() = %q, %v, want %q", st.version, b, err, signed(st.latest))
		}
	}
}

func TestSettings(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if v, err := s.Setting(ctx, "newsroom_key"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Setting(unset) = %q, %v, want ErrNotFound", v, err)
	}
	steps := []struct {
		value   string
		wantErr error
	}{
		{"key-a", nil},
		{"key-a", nil},          // same value again
		{"key-b", ErrDuplicate}, // another value
		{"", ErrDuplicate},
	}
	for _, st := range steps {
		err := s.SetSettingOnce(ctx, "newsroom_key", st.value)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("SetSettingOnce(newsroom_key, %q) = %v, want %v", st.value, err, st.wantErr)
		}
		if v, err := s.Setting(ctx, "newsroom_key"); err != nil || v != "key-a" {
			t.Errorf("Setting(newsroom_key) = %q, %v, want %q", v, err, "key-a")
		}
	}
	if v, err := s.Setting(ctx, "other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Setting(other) = %q, %v, want ErrNotFound", v, err)
	}
}

// forbiddenColumn reports why a column name suggests it holds a source's
// address, user agent or a time finer than a day (DESIGN §6), or "".
func forbiddenColumn(name string) string {
	name = strings.ToLower(name)
	words := strings.FieldsFunc(name, func(r rune) bool { return r == '_' || r == '-' || r == ' ' })
	for _, w := range words {
		switch w {
		case "ip", "ipv4", "ipv6", "addr", "address", "remote", "peer", "host", "ua", "useragent", "agent",
			"time", "timestamp", "ts", "datetime", "created", "updated", "modified", "hour", "minute", "second", "seen":
			return "word " + w
		}
	}
	if len(words) > 1 && words[len(words)-1] == "at" {
		return "ends in _at"
	}
	// Substrings long enough not to occur by chance ("receipt" holds "ip",
	// so ip is matched as a word only).
	for _, sub := range []string{"addr", "agent", "time", "created", "updated"} {
		if strings.Contains(name, sub) {
			return "contains " + sub
		}
	}
	return ""
}

func TestForbiddenColumn(t *testing.T) {
	tests := []struct {
		name string
		bad  bool
	}{
		{"ip", true}, {"ip_address", true}, {"remote_addr", true}, {"user_agent", true},
		{"created_at", true}, {"seen_at", true}, {"timestamp", true}, {"mtime", true}, {"IP", true},
		{"receipt", false}, {"day", false}, {"seq", false}, {"ciphertext", false}, {"zip", false},
		{"bundle_version", false}, {"sha256", false},
	}
	for _, tt := range tests {
		if got := forbiddenColumn(tt.name) != ""; got != tt.bad {
			t.Errorf("forbiddenColumn(%q) = %q, want forbidden %v", tt.name, forbiddenColumn(tt.name), tt.bad)
		}
	}
}

func TestSchemaHoldsNoAddressOrTime(t *testing.T) {
	s, path := openTest(t, Options{})
	rows, err := s.readDB.Query(`SELECT m.name, p.name, p.type FROM sqlite_schema AS m, pragma_table_info(m.name) AS p
		WHERE m.type = 'table' ORDER BY m.name, p.cid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	dayTables := map[string]bool{}
	ncols := 0
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			t.Fatal(err)
		}
		ncols++
		if why := forbiddenColumn(col); why != "" {
			t.Errorf("column %s.%s: name suggests an address, agent or time (%s)", table, col, why)
		}
		if col == "day" {
			dayTables[table] = true
			if typ != "TEXT" {
				t.Errorf("column %s.day has type %q, want TEXT", table, typ)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if ncols == 0 {
		t.Fatal("schema has no columns: the query found no tables")
	}

	// Every day column refuses a time of day. Each insert is tried with a
	// plain day first, so the refusal is the day's and nothing else's.
	inserts := map[string]func(db *sql.DB, day string) error{
		"tips": func(db *sql.DB, day string) error {
			tip := newTip(uint64(len(day)), 8)
			_, err := db.Exec(`INSERT INTO tips (id, day, bundle_version, sha256, length, ciphertext, receipt)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, tip.ID[:], day, 1, tip.SHA256[:], tip.Length, tip.Ciphertext, tip.Receipt)
			return err
		},
		"bundles": func(db *sql.DB, day string) error {
			_, err := db.Exec(`INSERT INTO bundles (version, signed, day) VALUES (?, ?, ?)`, len(day), []byte("b"), day)
			return err
		},
		"publications": func(db *sql.DB, day string) error {
			claim := fmt.Sprintf("%022d", len(day))
			_, err := db.Exec(`INSERT INTO publications (claim, publication, day, revealed, state, need_size, need_cosigners, text, scope, clusters, approvals)
				VALUES (?, ?, ?, x'5b5d', 'pending', 0, 0, '', '', 0, 0)`, claim, len(day), day)
			return err
		},
		"corrections": func(db *sql.DB, day string) error {
			claim := fmt.Sprintf("c%021d", len(day))
			if _, err := db.Exec(`INSERT INTO publications (claim, publication, day, revealed, state, need_size, need_cosigners, text, scope, clusters, approvals)
				VALUES (?, ?, '2026-11-28', x'5b5d', 'pending', 0, 0, '', '', 0, 0)`, claim, 1000+len(day)); err != nil {
				return fmt.Errorf("the correction's publication: %w", err)
			}
			_, err := db.Exec(`INSERT INTO corrections (idx, claim, day, type, text, revealed) VALUES (?, ?, ?, 'correction', 'x', x'7b7d')`,
				2000+len(day), claim, day)
			return err
		},
		"replies": func(db *sql.DB, day string) error {
			id := fmt.Sprintf("r%015d", len(day))
			_, err := db.Exec(`INSERT INTO replies (id, mailbox, day, ciphertext) VALUES (?, ?, ?, ?)`, []byte(id), make([]byte, 32), day, make([]byte, 4096))
			return err
		},
	}
	raw := rawOpen(t, path)
	for table := range dayTables {
		insert, ok := inserts[table]
		if !ok {
			t.Errorf("table %s has a day column this test does not check: add it", table)
			continue
		}
		if err := insert(raw, "2026-11-28"); err != nil {
			t.Errorf("INSERT INTO %s day %q = %v, want nil", table, "2026-11-28", err)
		}
		for _, day := range []string{"2026-11-28T10:00:00Z", "2026-11-28 10:00"} {
			err := insert(raw, day)
			var se sqlite3.Error
			if !errors.As(err, &se) || se.ExtendedCode != sqlite3.ErrConstraintCheck {
				t.Errorf("INSERT INTO %s day %q = %v, want a CHECK constraint error", table, day, err)
			}
		}
	}
	if len(dayTables) != len(inserts) {
		t.Errorf("tables with a day column = %v, want %d", dayTables, len(inserts))
	}
}
