package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func testPublication(claim string, index int64, pending bool) *Publication {
	p := &Publication{Claim: claim, Index: index, Day: "2026-11-28", Revealed: []byte(`{"publish":` + fmt.Sprint(index) + `}`)}
	if pending {
		p.Pending, p.NeedSize, p.NeedCosigners = true, index, 2
	} else {
		p.Head, p.Trail = index+1, []byte("trail at "+fmt.Sprint(index+1))
		p.Text, p.Scope, p.Clusters, p.Approvals = "claim "+claim, "scope", 2, 2
	}
	return p
}

// TestPublications: a claim has one publication by one publish event; a
// pending one is replaced or accepted by the same event only; an
// accepted one is never replaced; refusals store nothing.
func TestPublications(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	a, b := "AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"
	if _, err := s.Publication(ctx, a); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Publication(none) = %v, want ErrNotFound", err)
	}
	if err := s.PutPublication(ctx, testPublication(a, 10, true)); err != nil {
		t.Fatalf("PutPublication(pending) = %v", err)
	}
	if n, err := s.CountPendingPublications(ctx); err != nil || n != 1 {
		t.Fatalf("CountPendingPublications() = %d, %v, want 1", n, err)
	}
	// Another publish event of the claim, or another claim at the same
	// event: refused.
	for _, p := range []*Publication{testPublication(a, 11, true), testPublication(b, 10, true), testPublication(a, 11, false)} {
		if err := s.PutPublication(ctx, p); !errors.Is(err, ErrDuplicate) {
			t.Errorf("PutPublication(%s at %d) = %v, want ErrDuplicate", p.Claim, p.Index, err)
		}
	}
	// The same event again, pending: replaced; then accepted.
	again := testPublication(a, 10, true)
	again.NeedSize = 12
	if err := s.PutPublication(ctx, again); err != nil {
		t.Fatalf("PutPublication(pending again) = %v", err)
	}
	if got, err := s.Publication(ctx, a); err != nil || !reflect.DeepEqual(got, again) {
		t.Fatalf("Publication() = %+v, %v, want %+v", got, err, again)
	}
	pend, err := s.PendingPublications(ctx, 10)
	if err != nil || len(pend) != 1 || pend[0].NeedSize != 12 {
		t.Fatalf("PendingPublications() = %v, %v", pend, err)
	}
	acc := testPublication(a, 10, false)
	if err := s.PutPublication(ctx, acc); err != nil {
		t.Fatalf("PutPublication(accepted) = %v", err)
	}
	if got, err := s.Publication(ctx, a); err != nil || !reflect.DeepEqual(got, acc) {
		t.Fatalf("Publication() = %+v, %v, want %+v", got, err, acc)
	}
	for _, p := range []*Publication{testPublication(a, 10, true), testPublication(a, 10, false)} {
		if err := s.PutPublication(ctx, p); !errors.Is(err, ErrDuplicate) {
			t.Errorf("PutPublication(over an accepted one, pending %v) = %v, want ErrDuplicate", p.Pending, err)
		}
	}
	if pend, err := s.PendingPublications(ctx, 10); err != nil || len(pend) != 0 {
		t.Fatalf("PendingPublications() after acceptance = %v, %v", pend, err)
	}

	// Malformed rows never reach the database.
	for name, edit := range map[string]func(*Publication){
		"short claim id":         func(p *Publication) { p.Claim = "AAAA" },
		"index 0":                func(p *Publication) { p.Index = 0 },
		"a time in the day":      func(p *Publication) { p.Day = "2026-11-28T10:00:00Z" },
		"no revealed parts":      func(p *Publication) { p.Revealed = nil },
		"accepted, no trail":     func(p *Publication) { p.Trail = nil },
		"head not after":         func(p *Publication) { p.Head = p.Index },
		"pending with a trail":   func(p *Publication) { p.Pending = true },
		"negative cluster count": func(p *Publication) { p.Clusters = -1 },
	} {
		p := testPublication(b, 20, false)
		edit(p)
		if err := s.PutPublication(ctx, p); err == nil || errors.Is(err, ErrDuplicate) {
			t.Errorf("PutPublication(%s) = %v, want a refusal", name, err)
		}
	}
	if _, err := s.Publication(ctx, b); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused publication was stored: %v", err)
	}
}

// TestCorrections: a correction is stored with its claim's new trail in
// one transaction, on an accepted publication only, once; lists show the
// corrections' count, retraction and latest day.
func TestCorrections(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	a, b, c := "AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB", "CCCCCCCCCCCCCCCCCCCCCC"
	for _, p := range []*Publication{testPublication(a, 10, false), testPublication(b, 20, false), testPublication(c, 30, true)} {
		if err := s.PutPublication(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	corr := func(claim string, index int64, typ, day string) *Correction {
		return &Correction{Index: index, Claim: claim, Day: day, Type: typ, Text: "fix " + fmt.Sprint(index), Revealed: []byte(`{"index":` + fmt.Sprint(index) + `}`)}
	}
	if err := s.PutCorrection(ctx, corr(c, 31, "correction", "2026-11-29"), 40, []byte("t")); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutCorrection(of a pending publication) = %v, want ErrNotFound", err)
	}
	if err := s.PutCorrection(ctx, corr("DDDDDDDDDDDDDDDDDDDDDD", 31, "correction", "2026-11-29"), 40, []byte("t")); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutCorrection(of no publication) = %v, want ErrNotFound", err)
	}
	c1 := corr(a, 12, "clarification", "2026-11-29")
	if err := s.PutCorrection(ctx, c1, 13, []byte("trail at 13")); err != nil {
		t.Fatalf("PutCorrection() = %v", err)
	}
	if err := s.PutCorrection(ctx, c1, 14, []byte("trail at 14")); !errors.Is(err, ErrDuplicate) {
		t.Errorf("PutCorrection(twice) = %v, want ErrDuplicate", err)
	}
	if err := s.PutCorrection(ctx, corr(a, 11, "correction", "2026-11-30"), 12, []byte("older head")); err == nil {
		t.Errorf("PutCorrection(with an older head) = nil, want an error")
	}
	c2 := corr(a, 25, "retraction", "2026-12-01")
	if err := s.PutCorrection(ctx, c2, 26, []byte("trail at 26")); err != nil {
		t.Fatalf("PutCorrection() = %v", err)
	}
	for name, bad := range map[string]*Correction{
		"a time":      corr(b, 21, "correction", "2026-12-01 10:00"),
		"a bad type":  corr(b, 21, "erratum", "2026-12-01"),
		"no text":     {Index: 21, Claim: b, Day: "2026-12-01", Type: "correction", Revealed: []byte("{}")},
		"no revealed": {Index: 21, Claim: b, Day: "2026-12-01", Type: "correction", Text: "x"},
	} {
		if err := s.PutCorrection(ctx, bad, 22, []byte("t")); err == nil {
			t.Errorf("PutCorrection(%s) = nil, want a refusal", name)
		}
	}
	p, err := s.Publication(ctx, a)
	if err != nil || p.Head != 26 || string(p.Trail) != "trail at 26" {
		t.Fatalf("Publication() after corrections = %+v, %v, want the trail at 26", p, err)
	}
	got, err := s.Corrections(ctx, a)
	if err != nil || !reflect.DeepEqual(got, []*Correction{c1, c2}) {
		t.Fatalf("Corrections() = %+v, %v", got, err)
	}
	recent, err := s.RecentCorrections(ctx, 1)
	if err != nil || len(recent) != 1 || recent[0].Index != 25 || len(recent[0].Revealed) != 0 {
		t.Fatalf("RecentCorrections(1) = %+v, %v", recent, err)
	}

	list, err := s.AcceptedPublications(ctx, 0, 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("AcceptedPublications() = %v, %v, want 2", list, err)
	}
	if l := list[0]; l.Claim != b || l.Corrections != 0 || l.Retracted || l.Updated != l.Day || l.Trail != nil || l.Revealed != nil {
		t.Errorf("AcceptedPublications()[0] = %+v, want %s, uncorrected, without trail", l, b)
	}
	if l := list[1]; l.Claim != a || l.Corrections != 2 || !l.Retracted || l.Updated != "2026-12-01" || l.Text != "claim "+a {
		t.Errorf("AcceptedPublications()[1] = %+v, want %s, retracted on 2026-12-01", l, a)
	}
	if list, err := s.AcceptedPublications(ctx, 20, 10); err != nil || len(list) != 1 || list[0].Claim != a {
		t.Errorf("AcceptedPublications(before 20) = %v, %v, want %s alone", list, err, a)
	}
}

// TestReadEntriesAt reads entries by index, in the order asked, and
// refuses an index the log lacks.
func TestReadEntriesAt(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	var entries []LogEntry
	for i := range 600 {
		entries = append(entries, LogEntry{Data: fmt.Appendf(nil, "entry %d", i)})
	}
	if _, _, err := s.AppendEntries(ctx, 0, entries, newTestSigner(t).sign); err != nil {
		t.Fatal(err)
	}
	want := []int64{599, 3, 3, 0, 512}
	got, err := s.ReadEntriesAt(ctx, want)
	if err != nil || len(got) != len(want) {
		t.Fatalf("ReadEntriesAt(%v) = %d entries, %v", want, len(got), err)
	}
	for i, x := range want {
		if !bytes.Equal(got[i], fmt.Appendf(nil, "entry %d", x)) {
			t.Errorf("ReadEntriesAt()[%d] = %q, want entry %d", i, got[i], x)
		}
	}
	if _, err := s.ReadEntriesAt(ctx, []int64{1, 600}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadEntriesAt(beyond the log) = %v, want ErrNotFound", err)
	}
}

// TestCosignedSizesBetween lists cosigned sizes within a range, largest
// first.
func TestCosignedSizesBetween(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	for _, c := range []struct {
		size   int64
		editor string
	}{{3, "a"}, {5, "a"}, {5, "b"}, {8, "a"}, {9, "b"}} {
		if err := s.PutCosignature(ctx, c.size, []byte("cp"), Cosignature{Editor: c.editor, Name: c.editor + ".cosign", Line: []byte("line")}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.CosignedSizesBetween(ctx, 4, 8, 10)
	if want := []CosignedSize{{8, 1}, {5, 2}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("CosignedSizesBetween(4, 8) = %v, %v, want %v", got, err, want)
	}
	if got, err := s.CosignedSizesBetween(ctx, 1, 100, 1); err != nil || len(got) != 1 || got[0].Size != 9 {
		t.Errorf("CosignedSizesBetween(1, 100, limit 1) = %v, %v", got, err)
	}
}
