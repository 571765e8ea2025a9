package newsdesk

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"fieldtip/protocol"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// The parsers of what a server (or a replica on disk) hands newsdesk's log
// code: malformed inputs in tables, and fuzz targets that check they never
// panic and accept only what they can give back byte for byte.

const goodTlogProof = "c2sp.org/tlog-proof@v1\nindex 7\nRV0t0ckqRnjr/DjOJLzYesRxevxtpGY8/cggtt+gebY=\n\nlog.example\n8\nz+Rq2NM9ZlsvTflZoBLeXtXvIjvC9/nWo78XR0ddrds=\n\n— log.example l0tKX+c3\n"

func TestProofIndexMalformed(t *testing.T) {
	if i, err := proofIndex([]byte(goodTlogProof)); i != 7 || err != nil {
		t.Fatalf("proofIndex(a good proof) = %d, %v", i, err)
	}
	for _, in := range []string{
		"",
		"c2sp.org/tlog-proof@v1",
		"c2sp.org/tlog-proof@v1\n",
		"c2sp.org/tlog-proof@v1\nindex 7",                       // no line after the index
		"c2sp.org/tlog-proof@v1\n\nindex 7\n",                   // blank line first
		"c2sp.org/tlog-proof@v1\nindex\n\n",                     // no value
		"c2sp.org/tlog-proof@v1\nindex \n\n",                    // empty value
		"c2sp.org/tlog-proof@v1\nindex  7\n\n",                  // two spaces
		"c2sp.org/tlog-proof@v1\nindex 7 \n\n",                  // trailing space
		"c2sp.org/tlog-proof@v1\nindex 0x7\n\n",                 // hex
		"c2sp.org/tlog-proof@v1\nindex seven\n\n",               // not a number
		"c2sp.org/tlog-proof@v1\nindex 9223372036854775808\n\n", // 2^63
		"c2sp.org/tlog-proof@v1\nIndex 7\n\n",                   // capital
		"c2sp.org/tlog-proof@v1\r\nindex 7\r\n\r\n",             // CRLF
	} {
		if i, err := proofIndex([]byte(in)); err == nil {
			t.Errorf("proofIndex(%q) = %d, want an error", in, i)
		}
	}
}

// FuzzProofIndex: proofIndex never panics, and an index it returns is the
// number written on the second line.
func FuzzProofIndex(f *testing.F) {
	f.Add([]byte(goodTlogProof))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex -1\n\n"))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nextra AAAA\nindex 3\n\n"))
	f.Add([]byte("x\nindex 01\ny"))
	f.Fuzz(func(t *testing.T, in []byte) {
		i, err := proofIndex(in)
		if err != nil {
			return
		}
		lines := strings.SplitN(string(in), "\n", 3)
		if len(lines) < 3 {
			t.Fatalf("proofIndex(%q) = %d from fewer than three lines", in, i)
		}
		n, perr := strconv.ParseInt(strings.TrimPrefix(lines[1], "index "), 10, 64)
		if perr != nil || n != i || !strings.HasPrefix(lines[1], "index ") {
			t.Fatalf("proofIndex(%q) = %d, but the index line is %q", in, i, lines[1])
		}
	})
}

func TestParseCosignedList(t *testing.T) {
	got, err := parseCosignedList([]byte("12 2\n9 1\n1 3\n"))
	want := []cosignedSize{{12, 2}, {9, 1}, {1, 3}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("parseCosignedList = %v, %v; want %v", got, err, want)
	}
	if got, err := parseCosignedList(nil); err != nil || len(got) != 0 {
		t.Errorf("parseCosignedList(empty) = %v, %v; want nothing", got, err)
	}
	var full strings.Builder
	for i := protocol.MaxCosignatures; i > 0; i-- {
		fmt.Fprintf(&full, "%d 1\n", 1<<40+i)
	}
	if got, err := parseCosignedList([]byte(full.String())); err != nil || len(got) != protocol.MaxCosignatures {
		t.Errorf("parseCosignedList(%d lines) = %d lines, %v", protocol.MaxCosignatures, len(got), err)
	}
	for _, in := range []string{
		"5 1",                                  // no newline
		"\n",                                   // empty line
		"5\n",                                  // one field
		"5 1 2\n",                              // three fields
		"5  1\n",                               // two spaces
		" 5 1\n",                               // leading space
		"5 1 \n",                               // trailing space
		"5\t1\n",                               // tab
		"5 1\r\n",                              // CRLF
		"+5 1\n",                               // sign
		"05 1\n",                               // leading zero
		"5 01\n",                               // leading zero
		"0 1\n",                                // no tree of size 0 is cosigned
		"5 0\n",                                // nobody
		"-5 1\n",                               // negative
		"5 -1\n",                               // negative
		"9223372036854775808 1\n",              // 2^63
		"5 x\n",                                // not a number
		"5 1\n5 1\n",                           // a size twice
		"4 1\n5 1\n",                           // not largest first
		full.String() + "1 1\n",                // too many lines
		strings.Repeat("9", maxCosignedList+1), // too large
	} {
		if got, err := parseCosignedList([]byte(in)); err == nil {
			t.Errorf("parseCosignedList(%q) = %v, want an error", clipCase(in), got)
		}
	}
}

func clipCase(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// FuzzParseCosignedList: the parser never panics, and what it accepts is
// exactly what the server writes for the sizes it returns.
func FuzzParseCosignedList(f *testing.F) {
	f.Add([]byte("12 2\n9 1\n"))
	f.Add([]byte(""))
	f.Add([]byte("5 1"))
	f.Add([]byte("05 1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := parseCosignedList(in)
		if err != nil {
			return
		}
		var out []byte
		for i, c := range got {
			if c.Size < 1 || c.Cosigners < 1 || (i > 0 && c.Size >= got[i-1].Size) {
				t.Fatalf("parseCosignedList(%q) = %v", in, got)
			}
			out = fmt.Appendf(out, "%d %d\n", c.Size, c.Cosigners)
		}
		if !bytes.Equal(out, in) || len(got) > protocol.MaxCosignatures {
			t.Fatalf("parseCosignedList(%q) = %v, which the server writes as %q", in, got, out)
		}
	})
}

// writeBundleFile writes an entry bundle file of the given width into a
// replica directory.
func writeBundleFile(t testing.TB, dir string, n int64, width int, data []byte) {
	t.Helper()
	p := filepath.Join(dir, torchwood.TilePath(tlog.Tile{H: torchwood.TileHeight, L: -1, N: n, W: width}))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// entryBundleOf encodes entries as an entry bundle.
func entryBundleOf(entries ...[]byte) []byte {
	var b []byte
	for _, e := range entries {
		b, _ = torchwood.AppendTileEntry(b, e)
	}
	return b
}

// fullEntryBundle is a valid bundle of 256 entries "e0", "e1", ….
func fullEntryBundle() []byte {
	var es [][]byte
	for i := range torchwood.TileWidth {
		es = append(es, []byte("e"+strconv.Itoa(i)))
	}
	return entryBundleOf(es...)
}

func TestReadReplicaEntries(t *testing.T) {
	dir := t.TempDir()
	writeBundleFile(t, dir, 0, torchwood.TileWidth, fullEntryBundle())
	writeBundleFile(t, dir, 1, 3, entryBundleOf([]byte("a"), []byte("b"), []byte("c")))
	// A wider bundle stands in for a partial one.
	got, err := readReplicaEntries(dir, 258)
	if err != nil || len(got) != 258 || string(got[255]) != "e255" || string(got[257]) != "b" {
		t.Fatalf("readReplicaEntries(258) = %d entries, %v", len(got), err)
	}
	if got, err := readReplicaEntries(dir, 0); err != nil || len(got) != 0 {
		t.Errorf("readReplicaEntries(0) = %d entries, %v", len(got), err)
	}
	// The cap on what it reserves: a huge size costs nothing before the
	// first missing bundle.
	if _, err := readReplicaEntries(t.TempDir(), 1<<50); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readReplicaEntries(2^50) over an empty replica = %v, want fs.ErrNotExist", err)
	}

	for _, tc := range []struct {
		name  string
		width int
		data  []byte
		n     int64
	}{
		{"empty_file", 2, nil, 2},
		{"one_byte", 1, []byte{0}, 1},
		{"length_beyond_data", 1, []byte{0, 5, 'a', 'b'}, 1},
		{"fewer_entries_than_width", 3, entryBundleOf([]byte("a"), []byte("b")), 2},
		{"trailing_bytes", 2, append(entryBundleOf([]byte("a"), []byte("b")), 0), 2},
		{"an_extra_entry", 2, entryBundleOf([]byte("a"), []byte("b"), []byte("c")), 2},
		{"max_length_missing", 1, []byte{0xff, 0xff, 'x'}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeBundleFile(t, dir, 0, tc.width, tc.data)
			if got, err := readReplicaEntries(dir, tc.n); err == nil {
				t.Errorf("readReplicaEntries = %q, want an error", got)
			}
		})
	}
	t.Run("negative_size", func(t *testing.T) {
		if _, err := readReplicaEntries(t.TempDir(), -1); err == nil {
			t.Error("readReplicaEntries(-1) = nil error")
		}
	})
	t.Run("missing_second_bundle", func(t *testing.T) {
		dir := t.TempDir()
		writeBundleFile(t, dir, 0, torchwood.TileWidth, fullEntryBundle())
		if _, err := readReplicaEntries(dir, 300); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("readReplicaEntries(300) with one bundle = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("bundle_too_large", func(t *testing.T) {
		dir := t.TempDir()
		writeBundleFile(t, dir, 0, 1, nil)
		p := filepath.Join(dir, torchwood.TilePath(tlog.Tile{H: torchwood.TileHeight, L: -1, N: 0, W: 1}))
		if err := os.Truncate(p, maxEntryBundle+1); err != nil { // sparse: no disk used
			t.Fatal(err)
		}
		if _, err := readReplicaEntries(dir, 1); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("readReplicaEntries over a bundle of %d bytes = %v", maxEntryBundle+1, err)
		}
	})
}

// FuzzReadReplicaEntries: a replica whose entry bundle holds any bytes is
// read without a panic or a hang; what is accepted is a bundle of exactly
// its width's entries, the first n of which come back.
func FuzzReadReplicaEntries(f *testing.F) {
	f.Add(entryBundleOf([]byte("a"), []byte("bc")), uint16(2), uint8(0))
	f.Add(entryBundleOf([]byte("a"), []byte("bc"), []byte("")), uint16(2), uint8(1))
	f.Add([]byte{0, 3, 'a'}, uint16(1), uint8(0))
	f.Add([]byte{0xff, 0xff}, uint16(257), uint8(0))
	full := fullEntryBundle()
	// One directory per fuzzing process, emptied before each input.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, n uint16, wider uint8) {
		// n entries, 1 to 512: the first bundle is valid and full when n
		// is over 256, and the last one holds the fuzzed bytes.
		size := 1 + int64(n)%512
		if err := os.RemoveAll(filepath.Join(dir, "tile")); err != nil {
			t.Fatal(err)
		}
		last := (size - 1) / torchwood.TileWidth
		if last > 0 {
			writeBundleFile(t, dir, 0, torchwood.TileWidth, full)
		}
		w := min(size-last*torchwood.TileWidth+int64(wider)%4, torchwood.TileWidth)
		writeBundleFile(t, dir, last, int(w), data)
		got, err := readReplicaEntries(dir, size)
		if err != nil {
			return
		}
		if int64(len(got)) != size {
			t.Fatalf("readReplicaEntries(%d) = %d entries", size, len(got))
		}
		var es [][]byte
		rest := data
		for range w {
			e, r, err := torchwood.ReadTileEntry(rest)
			if err != nil {
				t.Fatalf("accepted a bundle that does not hold %d entries: %v", w, err)
			}
			es, rest = append(es, e), r
		}
		if len(rest) != 0 {
			t.Fatalf("accepted a bundle with %d bytes after its %d entries", len(rest), w)
		}
		for i, e := range got[last*torchwood.TileWidth:] {
			if !bytes.Equal(e, es[i]) {
				t.Fatalf("entry %d = %q, want %q", last*torchwood.TileWidth+int64(i), e, es[i])
			}
		}
	})
}
