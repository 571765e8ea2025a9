package newsdesk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"fieldtip/crypto"
)

// testRecords are three records of a pack.
func testRecords() []packRecord {
	return []packRecord{
		{Seq: 1, ID: "AAAAAAAAAAAAAAAAAAAAAA", Receipt: []byte("receipt one\n"), Ciphertext: []byte("first ciphertext")},
		{Seq: 2, ID: "AQAAAAAAAAAAAAAAAAAAAA", Receipt: []byte("r2"), Ciphertext: []byte("2")},
		{Seq: 10, ID: "AgAAAAAAAAAAAAAAAAAAAA", Receipt: []byte("receipt ten"), Ciphertext: bytes.Repeat([]byte{0, '\n'}, 100)},
	}
}

// TestPackRoundTrip: what formatPack writes, readPack reads back, with
// the offsets formatPack said.
func TestPackRoundTrip(t *testing.T) {
	recs := testRecords()
	b, offs, err := formatPack(recs)
	if err != nil {
		t.Fatal(err)
	}
	es, err := readPack(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(recs) {
		t.Fatalf("readPack = %d records, want %d", len(es), len(recs))
	}
	for k, e := range es {
		r := recs[k]
		if e.Seq != r.Seq || e.ID != r.ID || !bytes.Equal(e.Receipt, r.Receipt) || e.Off != offs[k] || !bytes.Equal(b[e.Off:e.Off+e.N], r.Ciphertext) {
			t.Errorf("record %d = %+v, want %+v at %d", k, e, r, offs[k])
		}
	}
}

// TestReadPackMalformed: anything but the one form is ErrBadPack.
func TestReadPackMalformed(t *testing.T) {
	good, _, err := formatPack(testRecords())
	if err != nil {
		t.Fatal(err)
	}
	id := "AAAAAAAAAAAAAAAAAAAAAA"
	h := packHeader + "\n"
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"no header", "tip 1 " + id + " 1 1\nrc"},
		{"other version", "fieldtip/newsdesk-pack/v2\n"},
		{"header without newline", packHeader},
		{"cut in a record", string(good[:len(good)-1])},
		{"byte appended", string(good) + "x"},
		{"no record line end", h + "tip 1 " + id + " 1 1"},
		{"long line", h + "tip 1 " + id + " 1 1" + strings.Repeat(" ", maxPackLine) + "\nrc"},
		{"not tip", h + "tap 1 " + id + " 1 1\nrc"},
		{"four fields", h + "tip 1 " + id + " 1\nr"},
		{"six fields", h + "tip 1 " + id + " 1 1 1\nrc"},
		{"double space", h + "tip  1 " + id + " 1 1\nrc"},
		{"seq zero", h + "tip 0 " + id + " 1 1\nrc"},
		{"seq leading zero", h + "tip 01 " + id + " 1 1\nrc"},
		{"seq negative", h + "tip -1 " + id + " 1 1\nrc"},
		{"seq plus", h + "tip +1 " + id + " 1 1\nrc"},
		{"length leading zero", h + "tip 1 " + id + " 01 1\nrc"},
		{"bad tip id", h + "tip 1 AAAA 1 1\nrc"},
		{"padded tip id", h + "tip 1 " + id + "= 1 1\nrc"},
		{"receipt too long", h + "tip 1 " + id + " " + strconv.Itoa(crypto.MaxReceiptSize+1) + " 1\n"},
		{"tip too long", h + "tip 1 " + id + " 1 " + strconv.Itoa(crypto.MaxTipSize+1) + "\n"},
		{"past the end", h + "tip 1 " + id + " 1 5\nrc"},
		{"seq not increasing", h + "tip 2 " + id + " 1 1\nrctip 2 " + id + " 1 1\nrc"},
		{"seq going back", h + "tip 2 " + id + " 1 1\nrctip 1 " + id + " 1 1\nrc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readPack(strings.NewReader(tc.in), int64(len(tc.in))); !errors.Is(err, ErrBadPack) {
				t.Errorf("readPack(%q) = %v, want ErrBadPack", clipCase(tc.in), err)
			}
		})
	}
}

// FuzzReadPack: a pack readPack accepts is exactly what formatPack writes
// of its records; anything else is ErrBadPack.
func FuzzReadPack(f *testing.F) {
	good, _, err := formatPack(testRecords())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(packHeader + "\n"))
	f.Add([]byte(packHeader + "\ntip 1 AAAAAAAAAAAAAAAAAAAAAA 0 0\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		es, err := readPack(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			if !errors.Is(err, ErrBadPack) {
				t.Fatalf("readPack = %v, want ErrBadPack", err)
			}
			return
		}
		var recs []packRecord
		for _, e := range es {
			recs = append(recs, packRecord{Seq: e.Seq, ID: e.ID, Receipt: e.Receipt, Ciphertext: in[e.Off : e.Off+e.N]})
		}
		if len(recs) == 0 {
			if string(in) != packHeader+"\n" {
				t.Fatalf("readPack(%q) = no records", in)
			}
			return
		}
		out, _, err := formatPack(recs)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("readPack(%q) accepted what formatPack writes as %q (%v)", in, out, err)
		}
	})
}

// TestCacheOfFilesUpgrades: a cache from before packs (a file a tip and a
// file its receipt) reads as it did; new tips go into a pack beside; a
// deletion removes the old files; nothing is pulled twice.
func TestCacheOfFilesUpgrades(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	old1 := d.send(t, &crypto.Tip{Text: "old one"})
	old2 := d.send(t, &crypto.Tip{Text: "old two"})
	d.pull(t, PullOptions{Newsroom: nk.key.Verifier})
	// Rewrite the cache as newsdesk wrote it before packs.
	es, err := d.cache.List()
	if err != nil {
		t.Fatal(err)
	}
	tips := filepath.Join(d.cache.Dir, "tips")
	var packs []string
	for _, e := range es {
		ct, err := e.ciphertext()
		if err != nil {
			t.Fatal(err)
		}
		pe, err := openPack(e.pack)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(tips, fmt.Sprintf("%012d-%s", e.Seq, e.ID))
		for _, p := range pe {
			if p.Seq == e.Seq {
				if err := os.WriteFile(base+".receipt", p.Receipt, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(base+".age", ct, 0o600); err != nil {
			t.Fatal(err)
		}
		packs = append(packs, e.pack)
	}
	for _, p := range slices.Compact(packs) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(d.cache.Dir, snapshotFile))

	if sums := tipsOf(t, d.cache.Dir, nk.editor); len(sums) != 2 || sums[0].FirstLine != "old one" || sums[1].FirstLine != "old two" {
		t.Fatalf("a cache of files lists %+v, want the two old tips", sums)
	}
	new1 := d.send(t, &crypto.Tip{Text: "new one"})
	if ids := d.pull(t, PullOptions{Newsroom: nk.key.Verifier}); !slices.Equal(ids, []string{new1.TipIDString()}) {
		t.Fatalf("pull after the upgrade = %q, want only the new tip", ids)
	}
	sums := tipsOf(t, d.cache.Dir, nk.editor)
	if got := []string{sums[0].ID, sums[1].ID, sums[2].ID}; len(sums) != 3 || !slices.Equal(got, []string{old1.TipIDString(), old2.TipIDString(), new1.TipIDString()}) {
		t.Fatalf("tips after the upgrade %+v", sums)
	}
	s := d.open(t, d.url)
	defer closeOK(t, s)
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Triage(ctx, old1.TipIDString(), TriageChange{Status: "spam"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Delete(ctx, old1.TipIDString()); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(tips, "*-"+old1.TipIDString()+".*")); len(m) != 0 {
		t.Errorf("the deleted old tip's files remain: %q", m)
	}
}

// TestPullAfterLostCursor: a crash after a pack and before the cursor
// leaves the cursor behind; the next pull neither pulls the pack's tips
// again nor lists them twice.
func TestPullAfterLostCursor(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	a := d.send(t, &crypto.Tip{Text: "a"})
	d.pull(t, PullOptions{Newsroom: nk.key.Verifier})
	if err := os.Remove(filepath.Join(d.cache.Dir, "cursor")); err != nil {
		t.Fatal(err)
	}
	b := d.send(t, &crypto.Tip{Text: "b"})
	if ids := d.pull(t, PullOptions{Newsroom: nk.key.Verifier}); !slices.Equal(ids, []string{b.TipIDString()}) {
		t.Errorf("pull with the cursor lost = %q, want only the new tip", ids)
	}
	es, err := d.cache.List()
	if err != nil || len(es) != 2 || es[0].ID != a.TipIDString() || es[1].ID != b.TipIDString() {
		t.Errorf("List = %d entries, %v; want a then b", len(es), err)
	}
}
