package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"iter"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testSigner is a real signed-note key; testSign signs a tree with it the
// way a log signs its checkpoints (storage does not care which text).
type testSigner struct {
	signer   note.Signer
	verifier note.Verifier
	trees    []tlog.Tree // every tree signed, in order
}

func newTestSigner(t testing.TB) *testSigner {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "storage.test/log")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{signer: s, verifier: v}
}

func (ts *testSigner) sign(tree tlog.Tree) ([]byte, error) {
	ts.trees = append(ts.trees, tree)
	return note.Sign(&note.Note{Text: string(tlog.FormatTree(tree))}, ts.signer)
}

// open checks a stored checkpoint and returns its tree.
func (ts *testSigner) open(t testing.TB, signed []byte) tlog.Tree {
	t.Helper()
	n, err := note.Open(signed, note.VerifierList(ts.verifier))
	if err != nil {
		t.Fatalf("stored checkpoint: %v", err)
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		t.Fatalf("stored checkpoint: %v", err)
	}
	return tree
}

// entry returns a distinct entry of size bytes (at least 8).
func entry(n int, size int) []byte {
	b := bytes.Repeat([]byte{byte(n)}, size)
	copy(b, fmt.Sprintf("e%07d", n))
	return b
}

// merkleRoot computes the RFC 6962 root of entries with
// transparency-dev/merkle: an implementation independent of tlog.
func merkleRoot(t testing.TB, entries [][]byte) []byte {
	t.Helper()
	h := rfc6962.DefaultHasher
	cr := (&compact.RangeFactory{Hash: h.HashChildren}).NewEmptyRange(0)
	for _, e := range entries {
		if err := cr.Append(h.HashLeaf(e), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := cr.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func proofBytes(p tlog.RecordProof) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// TestAppendEntries appends batches of several sizes and checks, after
// each: the tree against transparency-dev/merkle, the checkpoint signed
// once over exactly that tree and stored with it, every entry's inclusion
// proof from the stored hashes (tlog.CheckRecord and merkle's
// VerifyInclusion), the entries read back and the stored hash count. The
// log then survives a reopen.
func TestAppendEntries(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{})
	signer := newTestSigner(t)
	var all [][]byte
	for round, n := range []int{1, 1, 2, 5, 255, 1, 256, 300} {
		var batch []LogEntry
		for range n {
			e := entry(len(all), 8+len(all)%97)
			all = append(all, e)
			batch = append(batch, LogEntry{Data: e})
		}
		at := int64(len(all) - n)
		tree, signed, err := s.AppendEntries(ctx, at, batch, signer.sign)
		if err != nil {
			t.Fatalf("round %d: AppendEntries(at %d, %d entries) = %v", round, at, n, err)
		}
		if tree.N != int64(len(all)) {
			t.Fatalf("round %d: tree size %d, want %d", round, tree.N, len(all))
		}
		if root := merkleRoot(t, all); !bytes.Equal(root, tree.Hash[:]) {
			t.Fatalf("round %d: tree hash %x, merkle computes %x", round, tree.Hash, root)
		}
		if len(signer.trees) != round+1 || signer.trees[round] != tree {
			t.Fatalf("round %d: signed trees %v, want one more, %v", round, signer.trees, tree)
		}
		size, stored, err := s.LogCheckpoint(ctx)
		if err != nil || size != tree.N || !bytes.Equal(stored, signed) || signer.open(t, stored) != tree {
			t.Fatalf("round %d: LogCheckpoint() = %d, %q, %v; want the checkpoint of %v", round, size, stored, err, tree)
		}
		hr := s.LogHashes(ctx)
		for i := range all {
			p, err := tlog.ProveRecord(tree.N, int64(i), hr)
			if err != nil {
				t.Fatalf("round %d: ProveRecord(%d, %d) = %v", round, tree.N, i, err)
			}
			rh := tlog.RecordHash(all[i])
			if err := tlog.CheckRecord(p, tree.N, tree.Hash, int64(i), rh); err != nil {
				t.Errorf("round %d: CheckRecord(entry %d) = %v", round, i, err)
			}
			h := rfc6962.DefaultHasher
			if err := proof.VerifyInclusion(h, uint64(i), uint64(tree.N), h.HashLeaf(all[i]), proofBytes(p), tree.Hash[:]); err != nil {
				t.Errorf("round %d: merkle refuses the proof of entry %d: %v", round, i, err)
			}
		}
	}
	got, err := s.ReadEntries(ctx, 0, int64(len(all)))
	if err != nil || len(got) != len(all) {
		t.Fatalf("ReadEntries(all) = %d entries, %v", len(got), err)
	}
	for i := range all {
		if !bytes.Equal(got[i], all[i]) {
			t.Errorf("entry %d read back %q, want %q", i, got[i], all[i])
		}
	}
	if n, err := s.CountStoredHashes(ctx); err != nil || n != tlog.StoredHashCount(int64(len(all))) {
		t.Errorf("CountStoredHashes() = %d, %v; want %d", n, err, tlog.StoredHashCount(int64(len(all))))
	}

	// Durable: another store on the same file sees the same log.
	tree := signer.trees[len(signer.trees)-1]
	s.Close()
	s2 := openAt(t, path, Options{})
	if n, err := s2.LogSize(ctx); err != nil || n != tree.N {
		t.Fatalf("after reopen LogSize() = %d, %v; want %d", n, err, tree.N)
	}
	if h, err := tlog.TreeHash(tree.N, s2.LogHashes(ctx)); err != nil || h != tree.Hash {
		t.Errorf("after reopen TreeHash() = %v, %v; want %v", h, err, tree.Hash)
	}
}

// TestAppendEntriesRefused: each refusal leaves the log, its checkpoint,
// event ids and bodies as they were, and signs nothing.
func TestAppendEntriesRefused(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	signer := newTestSigner(t)
	if _, _, err := s.AppendEntries(ctx, 0, []LogEntry{{Data: entry(0, 10)}, {Data: entry(1, 10), EventID: []byte("id-1"), Body: []byte("body")}}, signer.sign); err != nil {
		t.Fatal(err)
	}
	_, before, _ := s.LogCheckpoint(ctx)
	signed := len(signer.trees)
	errSign := errors.New("no signing today")
	many := make([]LogEntry, MaxAppend+1)
	for i := range many {
		many[i] = LogEntry{Data: entry(i, 8)}
	}
	for _, tc := range []struct {
		name    string
		at      int64
		entries []LogEntry
		sign    SignFunc
		check   func(error) bool
	}{
		{"size_behind", 1, []LogEntry{{Data: entry(2, 8)}}, signer.sign, func(err error) bool {
			var se *LogSizeError
			return errors.As(err, &se) && se.Want == 1 && se.Have == 2
		}},
		{"size_ahead", 3, []LogEntry{{Data: entry(2, 8)}}, signer.sign, func(err error) bool {
			var se *LogSizeError
			return errors.As(err, &se) && se.Want == 3 && se.Have == 2
		}},
		{"no_entries", 2, nil, signer.sign, isErr},
		{"too_many_entries", 2, many, signer.sign, isErr},
		{"empty_entry", 2, []LogEntry{{Data: []byte{}}}, signer.sign, isErr},
		{"entry_65536", 2, []LogEntry{{Data: make([]byte, MaxLogEntrySize+1)}}, signer.sign, isErr},
		{"empty_event_id", 2, []LogEntry{{Data: entry(2, 8), EventID: []byte{}}}, signer.sign, isErr},
		{"event_id_65", 2, []LogEntry{{Data: entry(2, 8), EventID: make([]byte, MaxEventIDSize+1)}}, signer.sign, isErr},
		{"empty_body", 2, []LogEntry{{Data: entry(2, 8), EventID: []byte("id-2"), Body: []byte{}}}, signer.sign, isErr},
		{"event_id_logged", 2, []LogEntry{{Data: entry(2, 8)}, {Data: entry(3, 8), EventID: []byte("id-1")}}, signer.sign, func(err error) bool {
			return errors.Is(err, ErrDuplicate)
		}},
		{"event_id_twice", 2, []LogEntry{{Data: entry(2, 8), EventID: []byte("id-2")}, {Data: entry(3, 8), EventID: []byte("id-2")}}, signer.sign, func(err error) bool {
			return errors.Is(err, ErrDuplicate)
		}},
		{"sign_fails", 2, []LogEntry{{Data: entry(2, 8), EventID: []byte("id-2"), Body: []byte("b")}}, func(tlog.Tree) ([]byte, error) { return nil, errSign }, func(err error) bool {
			return errors.Is(err, errSign)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.AppendEntries(ctx, tc.at, tc.entries, tc.sign)
			if !tc.check(err) {
				t.Errorf("AppendEntries() = %v, not the expected refusal", err)
			}
			if n, _ := s.LogSize(ctx); n != 2 {
				t.Errorf("log size %d after a refusal, want 2", n)
			}
			if n, _ := s.CountStoredHashes(ctx); n != tlog.StoredHashCount(2) {
				t.Errorf("%d stored hashes after a refusal, want %d", n, tlog.StoredHashCount(2))
			}
			if _, after, _ := s.LogCheckpoint(ctx); !bytes.Equal(after, before) {
				t.Errorf("checkpoint changed by a refusal")
			}
			if _, err := s.EventIndex(ctx, []byte("id-2")); !errors.Is(err, ErrNotFound) {
				t.Errorf("EventIndex(id-2) = %v after a refusal, want ErrNotFound", err)
			}
			if _, err := s.EventBody(ctx, 2); !errors.Is(err, ErrNotFound) {
				t.Errorf("EventBody(2) = %v after a refusal, want ErrNotFound", err)
			}
		})
	}
	if len(signer.trees) != signed {
		t.Errorf("%d trees signed by refused appends", len(signer.trees)-signed)
	}
	// The store still appends.
	if tree, _, err := s.AppendEntries(ctx, 2, []LogEntry{{Data: entry(2, 8)}}, signer.sign); err != nil || tree.N != 3 {
		t.Errorf("AppendEntries() after refusals = %v, %v", tree, err)
	}
}

func isErr(err error) bool { return err != nil }

// TestEventIDsAndBodies: ids and bodies are stored by index.
func TestEventIDsAndBodies(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	signer := newTestSigner(t)
	_, _, err := s.AppendEntries(ctx, 0, []LogEntry{
		{Data: entry(0, 9)},
		{Data: entry(1, 9), EventID: []byte("first"), Body: []byte("ciphertext one")},
		{Data: entry(2, 9), EventID: []byte("second")},
	}, signer.sign)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want int64
	}{{"first", 1}, {"second", 2}} {
		if i, err := s.EventIndex(ctx, []byte(tc.id)); err != nil || i != tc.want {
			t.Errorf("EventIndex(%q) = %d, %v; want %d", tc.id, i, err, tc.want)
		}
	}
	if _, err := s.EventIndex(ctx, []byte("third")); !errors.Is(err, ErrNotFound) {
		t.Errorf("EventIndex(unknown) = %v, want ErrNotFound", err)
	}
	if b, err := s.EventBody(ctx, 1); err != nil || string(b) != "ciphertext one" {
		t.Errorf("EventBody(1) = %q, %v", b, err)
	}
	for _, i := range []int64{0, 2, 3} {
		if _, err := s.EventBody(ctx, i); !errors.Is(err, ErrNotFound) {
			t.Errorf("EventBody(%d) = %v, want ErrNotFound", i, err)
		}
	}
}

// TestAppendEntryMaxSize: an entry of exactly MaxLogEntrySize bytes is
// stored and read back whole (one byte more is refused in
// TestAppendEntriesRefused).
func TestAppendEntryMaxSize(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	e := entry(7, MaxLogEntrySize)
	if _, _, err := s.AppendEntries(ctx, 0, []LogEntry{{Data: e}}, newTestSigner(t).sign); err != nil {
		t.Fatalf("AppendEntries(%d bytes) = %v", len(e), err)
	}
	if got, err := s.ReadEntries(ctx, 0, 1); err != nil || !bytes.Equal(got[0], e) {
		t.Errorf("ReadEntries() = %v; want the entry back", err)
	}
}

// TestLogReadersRefuse: reads past the log or of a missing hash say so.
func TestLogReadersRefuse(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	if _, _, err := s.LogCheckpoint(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("LogCheckpoint(empty log) = %v, want ErrNotFound", err)
	}
	signer := newTestSigner(t)
	if _, _, err := s.AppendEntries(ctx, 0, []LogEntry{{Data: entry(0, 9)}, {Data: entry(1, 9)}}, signer.sign); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadEntries(ctx, 1, 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadEntries(1, 3) of 2 = %v, want ErrNotFound", err)
	}
	if _, err := s.ReadEntries(ctx, 2, 1); err == nil {
		t.Errorf("ReadEntries(2, 1) = nil error")
	}
	if e, err := s.ReadEntries(ctx, 2, 2); err != nil || len(e) != 0 {
		t.Errorf("ReadEntries(2, 2) = %d entries, %v; want none", len(e), err)
	}
	if _, err := s.ReadStoredHashes(ctx, 0, tlog.StoredHashCount(2)+1); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadStoredHashes past the end = %v, want ErrNotFound", err)
	}
	if _, err := s.LogHashes(ctx).ReadHashes([]int64{0, 99}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadHashes(missing) = %v, want ErrNotFound", err)
	}
	// Many indexes at once: more than one query's worth.
	idx := make([]int64, 3*hashQueryBatch)
	for i := range idx {
		idx[i] = int64(i % 3)
	}
	if hs, err := s.LogHashes(ctx).ReadHashes(idx); err != nil || len(hs) != len(idx) {
		t.Errorf("ReadHashes(%d indexes) = %d, %v", len(idx), len(hs), err)
	}
}

// TestAppendGroupCommit: a log append shares a transaction with other
// writes; a refused append in that transaction fails alone.
func TestAppendGroupCommit(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	signer := newTestSigner(t)
	if _, _, err := s.AppendEntries(ctx, 0, []LogEntry{{Data: entry(0, 9), EventID: []byte("taken")}}, signer.sign); err != nil {
		t.Fatal(err)
	}
	h := holdWriter(t, s)
	first := goPut(ctx, s, newTip(1, 16))
	<-h.held
	results := make(chan error, 3)
	go func() {
		_, _, err := s.AppendEntries(ctx, 1, []LogEntry{{Data: entry(1, 9), EventID: []byte("taken")}}, signer.sign)
		results <- err
	}()
	waitQueued(s, 1)
	tip := goPut(ctx, s, newTip(2, 16))
	waitQueued(s, 2)
	go func() {
		_, _, err := s.AppendEntries(ctx, 1, []LogEntry{{Data: entry(1, 9), EventID: []byte("fresh")}}, signer.sign)
		results <- err
	}()
	waitQueued(s, 3)
	h.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-tip; err != nil {
		t.Errorf("tip in the batch of a refused append: %v", err)
	}
	var dup, ok int
	for range 2 {
		switch err := <-results; {
		case errors.Is(err, ErrDuplicate):
			dup++
		case err == nil:
			ok++
		default:
			t.Errorf("AppendEntries() = %v", err)
		}
	}
	if dup != 1 || ok != 1 {
		t.Errorf("%d refused and %d accepted, want 1 and 1", dup, ok)
	}
	if sizes := h.batchSizes(); len(sizes) != 2 || sizes[1] != 3 {
		t.Errorf("batch sizes %v, want [1 3]", sizes)
	}
	if n, _ := s.LogSize(ctx); n != 2 {
		t.Errorf("log size %d, want 2", n)
	}
	if i, err := s.EventIndex(ctx, []byte("fresh")); err != nil || i != 1 {
		t.Errorf("EventIndex(fresh) = %d, %v; want 1", i, err)
	}
}

// TestReplaceLog replaces a log, and checks that a refusing check or a
// failing sequence leaves the old log whole.
func TestReplaceLog(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	signer := newTestSigner(t)
	old := []LogEntry{{Data: entry(0, 9)}, {Data: entry(1, 9), EventID: []byte("a"), Body: []byte("body a")}, {Data: entry(2, 9)}}
	oldTree, oldSigned, err := s.AppendEntries(ctx, 0, old, signer.sign)
	if err != nil {
		t.Fatal(err)
	}
	var repl [][]byte
	seq := func(fail int) iter.Seq2[LogEntry, error] {
		return func(yield func(LogEntry, error) bool) {
			for i := range 40 {
				if i == fail {
					yield(LogEntry{}, errors.New("replica unreadable"))
					return
				}
				e := LogEntry{Data: entry(100+i, 12)}
				if i%3 == 1 {
					e.EventID, e.Body = fmt.Appendf(nil, "id-%d", i), fmt.Appendf(nil, "body-%d", i)
				}
				if !yield(e, nil) {
					return
				}
			}
		}
	}
	for i := range 40 {
		repl = append(repl, entry(100+i, 12))
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		_, signed, _ := s.LogCheckpoint(ctx)
		h, err := tlog.TreeHash(oldTree.N, s.LogHashes(ctx))
		if n, _ := s.LogSize(ctx); n != 3 || err != nil || h != oldTree.Hash || !bytes.Equal(signed, oldSigned) {
			t.Errorf("old log changed: size %d, root %v (%v)", n, h, err)
		}
		if b, err := s.EventBody(ctx, 1); err != nil || string(b) != "body a" {
			t.Errorf("old body: %q, %v", b, err)
		}
	}
	t.Run("check_refuses", func(t *testing.T) {
		errNo := errors.New("not the pinned tree")
		if _, err := s.ReplaceLog(ctx, seq(-1), func(tlog.Tree) ([]byte, error) { return nil, errNo }); !errors.Is(err, errNo) {
			t.Errorf("ReplaceLog() = %v, want the check's error", err)
		}
		unchanged(t)
	})
	t.Run("sequence_fails", func(t *testing.T) {
		if _, err := s.ReplaceLog(ctx, seq(20), signer.sign); err == nil {
			t.Errorf("ReplaceLog(failing sequence) = nil")
		}
		unchanged(t)
	})
	t.Run("replaced", func(t *testing.T) {
		tree, err := s.ReplaceLog(ctx, seq(-1), signer.sign)
		if err != nil {
			t.Fatal(err)
		}
		if root := merkleRoot(t, repl); tree.N != 40 || !bytes.Equal(root, tree.Hash[:]) {
			t.Errorf("replaced tree %v, merkle computes %x over 40", tree, root)
		}
		if _, signed, _ := s.LogCheckpoint(ctx); signer.open(t, signed) != tree {
			t.Errorf("stored checkpoint is not the replaced tree's")
		}
		if _, err := s.EventIndex(ctx, []byte("a")); !errors.Is(err, ErrNotFound) {
			t.Errorf("old event id survived: %v", err)
		}
		if i, err := s.EventIndex(ctx, []byte("id-4")); err != nil || i != 4 {
			t.Errorf("EventIndex(id-4) = %d, %v; want 4", i, err)
		}
		if b, err := s.EventBody(ctx, 1); err != nil || string(b) != "body-1" {
			t.Errorf("EventBody(1) = %q, %v; want body-1", b, err)
		}
		if n, _ := s.CountStoredHashes(ctx); n != tlog.StoredHashCount(40) {
			t.Errorf("%d stored hashes, want %d", n, tlog.StoredHashCount(40))
		}
		// And appends continue from there.
		if tree, _, err := s.AppendEntries(ctx, 40, []LogEntry{{Data: entry(140, 12)}}, signer.sign); err != nil ||
			!bytes.Equal(merkleRoot(t, append(repl, entry(140, 12))), tree.Hash[:]) {
			t.Errorf("AppendEntries() after ReplaceLog = %v, %v", tree, err)
		}
	})
}

// BenchmarkAppendEntries appends one entry per transaction, one after
// the other: each waits for its own commit.
func BenchmarkAppendEntries(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b, Options{})
	signer := newTestSigner(b)
	e := entry(1, 600)
	at := int64(0)
	for b.Loop() {
		if _, _, err := s.AppendEntries(ctx, at, []LogEntry{{Data: e}}, signer.sign); err != nil {
			b.Fatal(err)
		}
		at++
	}
	b.ReportMetric(float64(at)/b.Elapsed().Seconds(), "entries/s")
}
