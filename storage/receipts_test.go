package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"slices"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// dayTip is newTip on another day.
func dayTip(n uint64, size int, day string) *Tip {
	t := newTip(n, size)
	t.Day = day
	return t
}

func putTips(t *testing.T, s *Store, tips ...*Tip) {
	t.Helper()
	for _, tip := range tips {
		if err := s.PutTip(context.Background(), tip); err != nil {
			t.Fatalf("PutTip(%x) = %v", tip.ID, err)
		}
	}
}

// fakeLeaves returns n sorted distinct 32-byte leaves.
func fakeLeaves(n int) []byte {
	out := make([]byte, 0, 32*n)
	for i := range n {
		var l [32]byte
		l[31] = byte(i + 1)
		out = append(out, l[:]...)
	}
	return out
}

// storePeriod stores a pending period whose build records the tips it got.
func storePeriod(t *testing.T, s *Store, first, last string, logFrom int64) ([][32]byte, error) {
	t.Helper()
	var got [][32]byte
	err := s.PutReceiptsPeriod(context.Background(), first, last, logFrom, func(tips [][32]byte) ([]byte, []byte, []byte, error) {
		got = tips
		return []byte("root of " + first), []byte("sealed " + first), fakeLeaves(4), nil
	})
	return got, err
}

func hashesOf(tips ...*Tip) [][32]byte {
	var out [][32]byte
	for _, t := range tips {
		if !slices.Contains(out, t.SHA256) {
			out = append(out, t.SHA256)
		}
	}
	slices.SortFunc(out, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// TestReceiptsPeriods stores periods in order: each is built over the
// tips of its days still stored (one hash per distinct ciphertext), is
// pending until its index is set, and no period may overlap or follow a
// pending one.
func TestReceiptsPeriods(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if _, err := s.LastReceiptsPeriod(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("LastReceiptsPeriod(empty) = %v, want ErrNotFound", err)
	}
	if _, err := s.EarliestTipDay(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("EarliestTipDay(empty) = %v, want ErrNotFound", err)
	}
	a, b := dayTip(1, 100, "2026-03-14"), dayTip(2, 200, "2026-03-14")
	same := dayTip(3, 200, "2026-03-14") // the same bytes as b, sent twice
	same.Ciphertext, same.SHA256 = b.Ciphertext, b.SHA256
	c := dayTip(4, 300, "2026-03-15")
	gone := dayTip(5, 400, "2026-03-14")
	putTips(t, s, c, a, b, same, gone)
	if day, err := s.EarliestTipDay(ctx); err != nil || day != "2026-03-14" {
		t.Errorf("EarliestTipDay() = %q, %v, want 2026-03-14", day, err)
	}
	if err := s.DeleteTip(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReceiptTipHashes(ctx, "2026-03-14", "2026-03-14"); err != nil || !slices.Equal(got, hashesOf(a, b)) {
		t.Errorf("ReceiptTipHashes(14th) = %x, %v, want %x", got, err, hashesOf(a, b))
	}

	got, err := storePeriod(t, s, "2026-03-14", "2026-03-14", 5)
	if err != nil {
		t.Fatalf("PutReceiptsPeriod(14th) = %v", err)
	}
	if !slices.Equal(got, hashesOf(a, b)) {
		t.Errorf("the 14th was built over %x, want %x (a, b once; not the 15th, not the deleted tip)", got, hashesOf(a, b))
	}
	p, err := s.PendingReceiptsPeriod(ctx)
	if err != nil || p.First != "2026-03-14" || p.Last != "2026-03-14" || p.LogFrom != 5 || p.LogIndex != -1 ||
		string(p.Entry) != "root of 2026-03-14" || string(p.SealedKey) != "sealed 2026-03-14" || !bytes.Equal(p.Leaves, fakeLeaves(4)) {
		t.Errorf("PendingReceiptsPeriod() = %+v, %v", p, err)
	}
	if _, err := storePeriod(t, s, "2026-03-15", "2026-03-15", 6); !errors.Is(err, ErrDuplicate) {
		t.Errorf("PutReceiptsPeriod(15th) while the 14th is pending = %v, want ErrDuplicate", err)
	}
	for _, bad := range []struct {
		first string
		index int64
	}{{"2026-03-15", 7}, {"2026-03-14", 4}} {
		if err := s.SetReceiptsIndex(ctx, bad.first, bad.index); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetReceiptsIndex(%s, %d) = %v, want ErrNotFound", bad.first, bad.index, err)
		}
	}
	if _, err := s.ReceiptsPeriodAt(ctx, 7); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReceiptsPeriodAt(7) before it is set = %v, want ErrNotFound", err)
	}
	if err := s.SetReceiptsIndex(ctx, "2026-03-14", 7); err != nil {
		t.Fatalf("SetReceiptsIndex() = %v", err)
	}
	if err := s.SetReceiptsIndex(ctx, "2026-03-14", 8); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetReceiptsIndex() again = %v, want ErrNotFound", err)
	}
	if _, err := s.PendingReceiptsPeriod(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("PendingReceiptsPeriod() after set = %v, want ErrNotFound", err)
	}
	if p, err := s.ReceiptsPeriodAt(ctx, 7); err != nil || p.First != "2026-03-14" || p.LogIndex != 7 {
		t.Errorf("ReceiptsPeriodAt(7) = %+v, %v", p, err)
	}

	for _, bad := range [][2]string{{"2026-03-14", "2026-03-14"}, {"2026-03-13", "2026-03-13"}, {"2026-03-15", "2026-03-14"},
		{"2026-3-15", "2026-03-15"}, {"2026-03-15", "2026-03-15T00:00"}, {"2026-02-30", "2026-03-01"}} {
		if _, err := storePeriod(t, s, bad[0], bad[1], 8); err == nil {
			t.Errorf("PutReceiptsPeriod(%s, %s) = nil error", bad[0], bad[1])
		}
	}
	failing := errors.New("no tree")
	if err := s.PutReceiptsPeriod(ctx, "2026-03-15", "2026-03-21", 8, func([][32]byte) ([]byte, []byte, []byte, error) {
		return nil, nil, nil, failing
	}); !errors.Is(err, failing) {
		t.Errorf("PutReceiptsPeriod(build fails) = %v, want its error", err)
	}
	for name, leaves := range map[string][]byte{
		"unsorted": slices.Concat(fakeLeaves(2)[32:], fakeLeaves(1)),
		"twice":    slices.Concat(fakeLeaves(1), fakeLeaves(1)),
		"ragged":   fakeLeaves(2)[:40],
		"none":     nil,
	} {
		if err := s.PutReceiptsPeriod(ctx, "2026-03-15", "2026-03-21", 8, func([][32]byte) ([]byte, []byte, []byte, error) {
			return []byte("root"), []byte("sealed"), leaves, nil
		}); err == nil {
			t.Errorf("PutReceiptsPeriod(%s leaves) = nil error", name)
		}
	}
	if _, err := s.PendingReceiptsPeriod(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused period was stored: PendingReceiptsPeriod() = %v", err)
	}
	// A week, after the day.
	got, err = storePeriod(t, s, "2026-03-15", "2026-03-21", 8)
	if err != nil || !slices.Equal(got, hashesOf(c)) {
		t.Errorf("PutReceiptsPeriod(week) = %v, built over %x, want %x", err, got, hashesOf(c))
	}
	if p, err := s.LastReceiptsPeriod(ctx); err != nil || p.First != "2026-03-15" || p.Last != "2026-03-21" || p.LogIndex != -1 {
		t.Errorf("LastReceiptsPeriod() = %+v, %v, want the pending week", p, err)
	}
}

// TestTipMarks marks, re-marks and clears tips, and lists those past a
// day whose period is rooted below a size.
func TestTipMarks(t *testing.T) {
	s, path := openTest(t, Options{})
	ctx := context.Background()
	old, young, unrooted := dayTip(1, 10, "2026-03-14"), dayTip(2, 10, "2026-03-14"), dayTip(3, 10, "2026-03-16")
	unmarked := dayTip(4, 10, "2026-03-14")
	putTips(t, s, old, young, unrooted, unmarked)
	var unknown [16]byte
	unknown[0] = 0xff
	if _, err := s.TipPeriodOf(ctx, unknown); !errors.Is(err, ErrNotFound) {
		t.Errorf("TipPeriodOf(unknown) = %v, want ErrNotFound", err)
	}
	if tp, err := s.TipPeriodOf(ctx, old.ID); err != nil || *tp != (TipPeriod{Day: "2026-03-14", LogIndex: -1}) {
		t.Errorf("TipPeriodOf(before any period) = %+v, %v", tp, err)
	}
	if _, err := storePeriod(t, s, "2026-03-14", "2026-03-15", 2); err != nil {
		t.Fatal(err)
	}
	if tp, err := s.TipPeriodOf(ctx, old.ID); err != nil || tp.LogIndex != -1 {
		t.Errorf("TipPeriodOf(pending period) = %+v, %v, want index -1", tp, err)
	}
	if err := s.SetReceiptsIndex(ctx, "2026-03-14", 3); err != nil {
		t.Fatal(err)
	}
	if tp, err := s.TipPeriodOf(ctx, old.ID); err != nil || tp.LogIndex != 3 {
		t.Errorf("TipPeriodOf(rooted) = %+v, %v, want index 3", tp, err)
	}

	mark := func(tip *Tip, day string) {
		t.Helper()
		if err := s.MarkTip(ctx, tip.ID, day); err != nil {
			t.Fatalf("MarkTip(%x, %q) = %v", tip.ID[15], day, err)
		}
	}
	mark(old, "2026-03-20")
	mark(old, "2026-04-20") // still rejected: the first mark's day stays
	mark(young, "2026-04-01")
	mark(unrooted, "2026-03-20")
	mark(unmarked, "2026-03-20")
	mark(unmarked, "") // a later triage made it useful
	if tp, err := s.TipPeriodOf(ctx, old.ID); err != nil || tp.RejectedDay != "2026-03-20" {
		t.Errorf("TipPeriodOf(re-marked) = %+v, %v, want the first mark's day", tp, err)
	}
	if tp, err := s.TipPeriodOf(ctx, unmarked.ID); err != nil || tp.RejectedDay != "" {
		t.Errorf("TipPeriodOf(cleared) = %+v, %v, want no mark", tp, err)
	}
	if err := s.MarkTip(ctx, unknown, "2026-03-20"); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkTip(unknown) = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"2026-03-20T10:00", "20260320", "2026-13-01"} {
		if err := s.MarkTip(ctx, old.ID, bad); err == nil {
			t.Errorf("MarkTip(day %q) = nil error", bad)
		}
	}

	for _, tt := range []struct {
		before      string
		rootedBelow int64
		want        []*Tip
	}{
		{"2026-03-20", 100, nil},         // the mark's own day is not before it
		{"2026-03-21", 100, []*Tip{old}}, // unrooted waits; young is too young
		{"2026-04-02", 100, []*Tip{old, young}},
		{"2026-04-02", 3, nil}, // the root is not published yet
		{"2030-01-01", 4, []*Tip{old, young}},
	} {
		got, err := s.RejectedTipsBefore(ctx, tt.before, tt.rootedBelow, 10)
		var want [][16]byte
		for _, tip := range tt.want {
			want = append(want, tip.ID)
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("RejectedTipsBefore(%s, %d) = %x, %v, want %x", tt.before, tt.rootedBelow, got, err, want)
		}
	}
	if got, _ := s.RejectedTipsBefore(ctx, "2030-01-01", 100, 1); len(got) != 1 {
		t.Errorf("RejectedTipsBefore(limit 1) = %d tips", len(got))
	}
	// Deleting a tip deletes its mark.
	if err := s.DeleteTip(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, rawOpenReadOnly(t, path), `SELECT count(*) FROM tip_marks`); n != 2 {
		t.Errorf("marks after deleting a marked tip = %d, want 2 (young, unrooted)", n)
	}
}

// fileHolds reports how many of the 64-byte pieces of secret (at 64-byte
// steps) the file holds. An overflowing blob is split over pages, so a
// piece straddling a page edge may be missing even when the blob is there;
// the others are not.
func fileHolds(t *testing.T, path string, secret []byte) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 0; i+64 <= len(secret); i += 64 {
		if bytes.Contains(b, secret[i:i+64]) {
			n++
		}
	}
	return n
}

func randomTip(t *testing.T, n uint64, size int) *Tip {
	t.Helper()
	tip := newTip(n, size)
	rand.Read(tip.Ciphertext)
	tip.SHA256 = sha256.Sum256(tip.Ciphertext)
	return tip
}

// TestDeleteTipWipesBytes deletes a small tip (in its page) and a large
// one (over overflow pages): afterwards no piece of either ciphertext is
// in the database file or its WAL, which is empty; a tip kept is intact.
func TestDeleteTipWipesBytes(t *testing.T) {
	s, path := openTest(t, Options{})
	ctx := context.Background()
	small, large, kept := randomTip(t, 1, 700), randomTip(t, 2, 300<<10), randomTip(t, 3, 700)
	putTips(t, s, small, large, kept)
	// An update of the page after the insert leaves two images of it in
	// the WAL; and a checkpoint puts the tips in the database file too.
	if err := s.MarkTip(ctx, small.ID, "2026-03-14"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckpointWAL(ctx); err != nil {
		t.Fatal(err)
	}
	putTips(t, s, randomTip(t, 4, 100))
	if err := s.MarkTip(ctx, large.ID, "2026-03-14"); err != nil {
		t.Fatal(err)
	}
	for _, tip := range []*Tip{small, large} {
		if fileHolds(t, path, tip.Ciphertext) == 0 {
			t.Fatalf("before the delete, the database file does not hold tip %d: the check below would prove nothing", tip.ID[15])
		}
	}

	if err := s.DeleteTip(ctx, small.ID); err != nil {
		t.Fatalf("DeleteTip(small) = %v", err)
	}
	if n, err := s.DeleteTips(ctx, [][16]byte{large.ID, small.ID}); err != nil || n != 1 {
		t.Fatalf("DeleteTips(large, small again) = %d, %v, want 1", n, err)
	}
	if err := s.DeleteTip(ctx, small.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteTip(deleted) = %v, want ErrNotFound", err)
	}
	for _, suffix := range []string{"", "-wal"} {
		for name, tip := range map[string]*Tip{"small": small, "large": large} {
			if n := fileHolds(t, path+suffix, tip.Ciphertext); n > 0 {
				t.Errorf("after DeleteTip, fieldtip.db%s holds %d pieces of the %s tip's ciphertext", suffix, n, name)
			}
		}
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("WAL after DeleteTip: %d bytes, want 0 (truncated)", fi.Size())
	}
	if ct, err := s.TipCiphertext(ctx, kept.ID); err != nil || !bytes.Equal(ct, kept.Ciphertext) {
		t.Errorf("TipCiphertext(kept) = %d bytes, %v", len(ct), err)
	}
	if n := fileHolds(t, path, kept.Ciphertext); n == 0 {
		t.Errorf("the kept tip's bytes are gone from the database file")
	}
	if n, err := s.CountTips(ctx); err != nil || n != 2 {
		t.Errorf("CountTips() = %d, %v, want 2", n, err)
	}
	for _, n := range []int{0, maxDeleteBatch + 1} {
		if _, err := s.DeleteTips(ctx, make([][16]byte, n)); err == nil {
			t.Errorf("DeleteTips(%d ids) = nil error", n)
		}
	}
}

func TestBundleOfVersion(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	for v := int64(1); v <= 3; v++ {
		if err := s.PutBundle(ctx, v, []byte{byte(v)}, "2026-03-14"); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := s.BundleOfVersion(ctx, 2); err != nil || !bytes.Equal(b, []byte{2}) {
		t.Errorf("BundleOfVersion(2) = %x, %v", b, err)
	}
	if _, err := s.BundleOfVersion(ctx, 4); !errors.Is(err, ErrNotFound) {
		t.Errorf("BundleOfVersion(4) = %v, want ErrNotFound", err)
	}
}

// TestReceiptsSchemaDays: the day columns of version 4 refuse a time of
// day, as every day column does (TestSchemaHoldsNoAddressOrTime).
func TestReceiptsSchemaDays(t *testing.T) {
	s, path := openTest(t, Options{})
	putTips(t, s, newTip(1, 8))
	raw := rawOpen(t, path)
	period := func(first, last string) error {
		_, err := raw.Exec(`INSERT INTO receipts_periods (first_day, last_day, log_from, entry, sealed_key, leaves) VALUES (?, ?, 0, x'01', x'01', ?)`,
			first, last, fakeLeaves(1))
		return err
	}
	mark := func(day string) error {
		_, err := raw.Exec(`INSERT INTO tip_marks (seq, rejected_day) VALUES (1, ?)`, day)
		return err
	}
	for _, tt := range []struct {
		name string
		do   func() error
	}{
		{"first_day", func() error { return period("2026-11-28T10:00", "2026-11-29") }},
		{"last_day", func() error { return period("2026-11-28", "2026-11-29 10:00") }},
		{"rejected_day", func() error { return mark("2026-11-28 10:00") }},
	} {
		var se sqlite3.Error
		if err := tt.do(); !errors.As(err, &se) || se.ExtendedCode != sqlite3.ErrConstraintCheck {
			t.Errorf("%s with a time of day = %v, want a CHECK constraint error", tt.name, err)
		}
	}
	if err := period("2026-11-28", "2026-11-29"); err != nil {
		t.Errorf("a period of plain days = %v", err)
	}
	if err := mark("2026-11-28"); err != nil {
		t.Errorf("a mark of a plain day = %v", err)
	}
}
