package newsdesk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
)

// A pack holds a batch of pulled tips in one file (docs/newsdesk.md,
// "Tip packs"): one write and one sync for up to a thousand tips, where a
// file a tip cost three atomic replaces each (60,004 syncs for 10,000
// tips). A pack is written whole to a temporary file, synced and renamed,
// so after a crash it is there whole or not at all; the cursor is written
// after it.
//
//	fieldtip/newsdesk-pack/v1\n
//	tip <seq> <tip id> <receipt bytes> <ciphertext bytes>\n
//	<the signed receipt><the ciphertext>
//	tip …
//
// Numbers are canonical decimals; seq strictly increases within a pack.
const (
	packHeader = "fieldtip/newsdesk-pack/v1"
	packExt    = ".pack"
	// maxPackBytes bounds the ciphertext a pull gathers into one pack
	// (and holds in memory) before writing it; one tip may exceed it.
	maxPackBytes = 32 << 20
	// maxPackLine bounds a record's header line.
	maxPackLine = 128
)

// packRecord is one tip of a pack, with its bytes.
type packRecord struct {
	Seq        int64
	ID         string
	Receipt    []byte
	Ciphertext []byte
}

// packEntry is one tip of a pack, as read: where its bytes are.
type packEntry struct {
	Seq     int64
	ID      string
	Receipt []byte
	// Off is the offset of the ciphertext in the file, N its length.
	Off, N int64
}

// ErrBadPack: a pack file that is not one.
var ErrBadPack = errors.New("not a newsdesk tip pack")

// packPath returns the path of the pack whose first tip is seq.
func packPath(dir string, seq int64) string {
	return filepath.Join(dir, "tips", fmt.Sprintf("%012d%s", seq, packExt))
}

// formatPack returns the bytes of a pack of recs, and where each
// ciphertext starts in them.
func formatPack(recs []packRecord) ([]byte, []int64, error) {
	n := len(packHeader) + 1
	for _, r := range recs {
		n += maxPackLine + len(r.Receipt) + len(r.Ciphertext)
	}
	out := make([]byte, 0, n)
	out = append(out, packHeader+"\n"...)
	last := int64(0)
	offs := make([]int64, len(recs))
	for k, r := range recs {
		if r.Seq <= last {
			return nil, nil, fmt.Errorf("pack: tip %d after %d", r.Seq, last)
		}
		if _, err := crypto.ParseTipID(r.ID); err != nil {
			return nil, nil, fmt.Errorf("pack: %w", err)
		}
		last = r.Seq
		out = fmt.Appendf(out, "tip %d %s %d %d\n", r.Seq, r.ID, len(r.Receipt), len(r.Ciphertext))
		out = append(out, r.Receipt...)
		offs[k] = int64(len(out))
		out = append(out, r.Ciphertext...)
	}
	return out, offs, nil
}

// writePack writes recs as one pack, durably, and returns its path and
// where each ciphertext starts in it.
func writePack(dir string, recs []packRecord) (string, []int64, error) {
	b, offs, err := formatPack(recs)
	if err != nil {
		return "", nil, err
	}
	p := packPath(dir, recs[0].Seq)
	if err := atomicfile.Replace(p, b, 0o600); err != nil {
		return "", nil, err
	}
	return p, offs, nil
}

// readPack reads the records of a pack from r (size bytes): their
// receipts, and where their ciphertexts are. It refuses anything but the
// form above (ErrBadPack), within the limits of receipts and tips.
func readPack(r io.ReaderAt, size int64) ([]packEntry, error) {
	head := make([]byte, len(packHeader)+1)
	if _, err := r.ReadAt(head, 0); err != nil || string(head) != packHeader+"\n" {
		return nil, fmt.Errorf("%w: no %s line", ErrBadPack, packHeader)
	}
	var out []packEntry
	off := int64(len(head))
	last := int64(0)
	buf := make([]byte, maxPackLine)
	for off < size {
		n, err := r.ReadAt(buf[:min(int64(maxPackLine), size-off)], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		line, _, ok := bytes.Cut(buf[:n], []byte("\n"))
		if !ok {
			return nil, fmt.Errorf("%w: record at offset %d: no header line of at most %d bytes", ErrBadPack, off, maxPackLine)
		}
		e, rl, err := parsePackLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("%w: record at offset %d: %w", ErrBadPack, off, err)
		}
		if e.Seq <= last {
			return nil, fmt.Errorf("%w: tip %d after tip %d", ErrBadPack, e.Seq, last)
		}
		last = e.Seq
		off += int64(len(line)) + 1
		if off+rl+e.N > size {
			return nil, fmt.Errorf("%w: tip %d: its %d + %d bytes run past the end", ErrBadPack, e.Seq, rl, e.N)
		}
		e.Receipt = make([]byte, rl)
		if _, err := r.ReadAt(e.Receipt, off); err != nil && rl > 0 {
			return nil, err
		}
		e.Off = off + rl
		off = e.Off + e.N
		out = append(out, e)
	}
	return out, nil
}

// parsePackLine parses "tip <seq> <id> <receipt bytes> <ciphertext
// bytes>" and returns the entry and the receipt's length.
func parsePackLine(line string) (packEntry, int64, error) {
	f := strings.Split(line, " ")
	if len(f) != 5 || f[0] != "tip" {
		return packEntry{}, 0, fmt.Errorf("header %q is not tip SEQ ID RECEIPT-BYTES CIPHERTEXT-BYTES", clipUntrusted(line))
	}
	seq, err1 := parsePositive(f[1])
	rl, err2 := parseEventIndex(f[3])
	n, err3 := parseEventIndex(f[4])
	if err := errors.Join(err1, err2, err3); err != nil {
		return packEntry{}, 0, err
	}
	if _, err := crypto.ParseTipID(f[2]); err != nil {
		return packEntry{}, 0, err
	}
	if rl > crypto.MaxReceiptSize || n > crypto.MaxTipSize {
		return packEntry{}, 0, fmt.Errorf("tip %d: a receipt of %d bytes or a tip of %d, over the limits", seq, rl, n)
	}
	return packEntry{Seq: seq, ID: f[2], N: n}, rl, nil
}

// openPack lists the records of the pack file at path.
func openPack(path string) ([]packEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	es, err := readPack(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return es, nil
}

// readAt reads n bytes at off of the file at path.
func readAt(path string, off, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// removeFromPack rewrites the pack at path without the tips of drop (by
// seq), or removes it if none is left.
func removeFromPack(path string, drop map[int64]bool) error {
	es, err := openPack(path)
	if err != nil {
		return err
	}
	var keep []packRecord
	for _, e := range es {
		if drop[e.Seq] {
			continue
		}
		ct, err := readAt(path, e.Off, e.N)
		if err != nil {
			return err
		}
		keep = append(keep, packRecord{Seq: e.Seq, ID: e.ID, Receipt: e.Receipt, Ciphertext: ct})
	}
	if len(keep) == 0 {
		return os.Remove(path)
	}
	b, _, err := formatPack(keep)
	if err != nil {
		return err
	}
	return atomicfile.Replace(path, b, 0o600)
}

// packSeq returns the first seq a pack's file name says, if it is one.
func packSeq(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, packExt)
	if !ok || len(s) != 12 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}
