package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// outboxTestKDF is a cheap cost for tests; one test uses the default.
var outboxTestKDF = crypto.CodenameKDF{MemoryKiB: 64, Time: 1}

const (
	outboxTestCodename = "copper truck mountain harbor velvet quarry nutmeg"
	outboxOtherName    = "copper truck mountain harbor velvet quarry walnut"
)

// outboxTestItem returns a valid item whose ids, secret and ciphertext
// start with marker, so a test can look for them in the file.
func outboxTestItem(marker string, frameSize, frames int) *OutboxItem {
	it := &OutboxItem{
		BundleVersion: 3,
		FrameSize:     frameSize,
		PoWEpoch:      2785,
		Started:       frames%2 == 0,
		Day:           20454 + frames,
		Ciphertext:    bytes.Repeat([]byte(marker+" ciphertext "), frames*frameSize)[:frames*frameSize],
	}
	if frames%3 == 0 {
		it.Refused = protocol.CodeTooLarge
	}
	copy(it.UploadID[:], marker+"-upload-id-filler")
	copy(it.ResumeSecret[:], marker+"-resume-secret-filler-to-32-bytes")
	for i := range protocol.Proofs(int64(len(it.Ciphertext))) {
		it.PoW = append(it.PoW, uint64(i)<<32|0xbeef)
	}
	return it
}

// outboxSealedItem returns an item whose ciphertext is a real sealed tip.
func outboxSealedItem(t *testing.T, marker string) *OutboxItem {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ct, err := crypto.Seal(&crypto.Tip{Text: marker + ": the mine ships copper at night"}, []age.Recipient{id.Recipient()}, protocol.FrameSize)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ct, []byte("age-encryption.org/")) {
		t.Fatalf("sealed tip does not start with the age header")
	}
	it := outboxTestItem(marker, protocol.FrameSize, 1)
	it.Ciphertext = ct
	it.PoW = make([]uint64, protocol.Proofs(int64(len(ct))))
	return it
}

func newTestOutbox(t *testing.T, size int) (*Outbox, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outbox")
	o, err := CreateOutbox(path, outboxTestCodename, size, outboxTestKDF)
	if err != nil {
		t.Fatalf("CreateOutbox: %v", err)
	}
	return o, path
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOutboxRoundTrip(t *testing.T) {
	items := []*OutboxItem{
		outboxSealedItem(t, "first"),
		outboxTestItem("second", protocol.LowBandwidthFrameSz, 9), // two proofs
		outboxTestItem("third", protocol.FrameSize, 4),            // 64 KiB: one proof
	}
	for _, n := range []int{0, 1, 3} {
		t.Run(fmt.Sprint(n, " items"), func(t *testing.T) {
			o, path := newTestOutbox(t, 0)
			for _, it := range items[:n] {
				if err := o.Add(it); err != nil {
					t.Fatalf("Add: %v", err)
				}
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() != DefaultOutboxSize || o.Size() != DefaultOutboxSize {
				t.Errorf("file is %d bytes, Size() = %d; want %d", st.Size(), o.Size(), DefaultOutboxSize)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("file mode %v, want 0600", st.Mode().Perm())
			}
			// The codename is normalised as a person types it.
			got, err := OpenOutbox(path, "  COPPER truck  mountain harbor velvet quarry nutmeg\n", outboxTestKDF)
			if err != nil {
				t.Fatalf("OpenOutbox: %v", err)
			}
			if len(got.Items) != n {
				t.Fatalf("opened %d items, want %d", len(got.Items), n)
			}
			for i, it := range got.Items {
				if !reflect.DeepEqual(it, items[i]) {
					t.Errorf("item %d differs after the round trip", i+1)
				}
			}
			if got.Size() != o.Size() || got.Free() != o.Free() {
				t.Errorf("reopened: Size %d Free %d, want %d %d", got.Size(), got.Free(), o.Size(), o.Free())
			}
			used := outboxBodyPrefix
			for _, it := range items[:n] {
				used += 80 + 8*len(it.PoW) + len(it.Refused) + len(it.Ciphertext)
			}
			if want := DefaultOutboxSize - 72 - used; o.Free() != want {
				t.Errorf("Free() = %d, want %d", o.Free(), want)
			}
		})
	}
}

// The file shows nothing of what it holds: its size is the container's
// whatever the count, no age header, no item's bytes in the clear.
func TestOutboxShowsNothing(t *testing.T) {
	o1, path1 := newTestOutbox(t, 0)
	o3, path3 := newTestOutbox(t, 0)
	if err := o1.Add(outboxSealedItem(t, "MARKER-A")); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"MARKER-B", "MARKER-C", "MARKER-D"} {
		if err := o3.Add(outboxSealedItem(t, m)); err != nil {
			t.Fatal(err)
		}
	}
	f1, f3 := readFile(t, path1), readFile(t, path3)
	if len(f1) != DefaultOutboxSize || len(f3) != DefaultOutboxSize {
		t.Fatalf("files of 1 and 3 items are %d and %d bytes, want both %d", len(f1), len(f3), DefaultOutboxSize)
	}
	for _, f := range [][]byte{f1, f3} {
		for _, s := range []string{"age-encryption.org", "MARKER", "-upload-id-", "-resume-secret-", "X25519", "fieldtip"} {
			if bytes.Contains(f, []byte(s)) {
				t.Errorf("the outbox file contains %q", s)
			}
		}
		// And the salt is not a recognisable header: it differs between files.
	}
	if bytes.Equal(f1[:outboxSaltSize], f3[:outboxSaltSize]) {
		t.Errorf("two outboxes share a salt")
	}
}

func TestOutboxFreshNonce(t *testing.T) {
	o, path := newTestOutbox(t, 0)
	if err := o.Add(outboxTestItem("x", protocol.FrameSize, 1)); err != nil {
		t.Fatal(err)
	}
	a := readFile(t, path)
	if err := o.Save(); err != nil {
		t.Fatal(err)
	}
	b := readFile(t, path)
	if bytes.Equal(a, b) {
		t.Fatal("two saves of the same content are identical")
	}
	if !bytes.Equal(a[:outboxSaltSize], b[:outboxSaltSize]) {
		t.Error("the salt changed between saves")
	}
	if bytes.Equal(a[outboxSaltSize:outboxSaltSize+outboxNonceSize], b[outboxSaltSize:outboxSaltSize+outboxNonceSize]) {
		t.Error("the nonce did not change between saves")
	}
}

func TestOutboxWrongCodename(t *testing.T) {
	o, path := newTestOutbox(t, 0)
	if err := o.Add(outboxTestItem("x", protocol.FrameSize, 1)); err != nil {
		t.Fatal(err)
	}
	_, err := OpenOutbox(path, outboxOtherName, outboxTestKDF)
	if !errors.Is(err, ErrOutboxKey) {
		t.Fatalf("OpenOutbox with another codename: %v, want ErrOutboxKey", err)
	}
	if strings.Contains(err.Error(), "walnut") || strings.Contains(err.Error(), "copper") {
		t.Errorf("error %q quotes the codename", err)
	}
	// Another cost is another key.
	if _, err := OpenOutbox(path, outboxTestCodename, crypto.CodenameKDF{MemoryKiB: 64, Time: 2}); !errors.Is(err, ErrOutboxKey) {
		t.Fatalf("OpenOutbox with another cost: %v, want ErrOutboxKey", err)
	}
	// Not a codename at all: refused before any work, without quoting it.
	_, err = OpenOutbox(path, "copper truck mountain harbor velvet quarry nutmge", outboxTestKDF)
	if !errors.Is(err, crypto.ErrBadCodename) || strings.Contains(err.Error(), "nutmge") {
		t.Fatalf("OpenOutbox with a misspelt codename: %v, want ErrBadCodename without the word", err)
	}
}

// Changing any byte (salt, nonce, body or tag) makes the file not open,
// with the same error as a wrong codename.
func TestOutboxTamper(t *testing.T) {
	o, path := newTestOutbox(t, 0)
	if err := o.Add(outboxTestItem("x", protocol.FrameSize, 1)); err != nil {
		t.Fatal(err)
	}
	orig := readFile(t, path)
	// Every byte of the salt, the nonce, the first and last 64 bytes of
	// the sealed body and the tag, and 200 positions spread over the rest.
	var positions []int
	for i := range outboxSaltSize + outboxNonceSize + 64 {
		positions = append(positions, i)
	}
	for i := len(orig) - 80; i < len(orig); i++ {
		positions = append(positions, i)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		positions = append(positions, r.IntN(len(orig)))
	}
	bad := filepath.Join(t.TempDir(), "outbox")
	for _, i := range positions {
		b := bytes.Clone(orig)
		b[i] ^= 1 << (i % 8)
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenOutbox(bad, outboxTestCodename, outboxTestKDF); !errors.Is(err, ErrOutboxKey) {
			t.Fatalf("byte %d flipped: OpenOutbox = %v, want ErrOutboxKey", i, err)
		}
	}
}

func TestOutboxBadSize(t *testing.T) {
	_, path := newTestOutbox(t, 0)
	orig := readFile(t, path)
	big, bigPath := newTestOutbox(t, DefaultOutboxSize+outboxSizeStep)
	if big.Size() != DefaultOutboxSize+outboxSizeStep || len(readFile(t, bigPath)) != big.Size() {
		t.Fatalf("an outbox asked to be %d bytes is %d", DefaultOutboxSize+outboxSizeStep, big.Size())
	}
	bad := filepath.Join(t.TempDir(), "outbox")
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, crypto.ErrMalformed},
		{"one byte short", orig[:len(orig)-1], crypto.ErrMalformed},
		{"one byte more", append(bytes.Clone(orig), 0), crypto.ErrMalformed},
		{"one step short", orig[:len(orig)-outboxSizeStep], crypto.ErrMalformed},
		// A valid size: the tag no longer matches.
		{"one step more", append(bytes.Clone(orig), make([]byte, outboxSizeStep)...), ErrOutboxKey},
		{"too big", make([]byte, maxOutboxSize+outboxSizeStep), crypto.ErrMalformed},
	} {
		if err := os.WriteFile(bad, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := OpenOutbox(bad, outboxTestCodename, outboxTestKDF)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: OpenOutbox = %v, want %v", c.name, err, c.want)
		}
		if c.want == crypto.ErrMalformed && !strings.Contains(err.Error(), "truncated or extended") {
			t.Errorf("%s: error %q does not suggest truncation", c.name, err)
		}
	}
	if _, err := OpenOutbox(filepath.Join(t.TempDir(), "none"), outboxTestCodename, outboxTestKDF); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenOutbox of no file = %v, want fs.ErrNotExist", err)
	}
	if _, err := OpenOutbox(t.TempDir(), outboxTestCodename, outboxTestKDF); !errors.Is(err, crypto.ErrMalformed) {
		t.Errorf("OpenOutbox of a directory = %v, want crypto.ErrMalformed", err)
	}
}

func TestCreateOutboxRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox")
	for _, c := range []struct {
		name     string
		codename string
		size     int
		kdf      crypto.CodenameKDF
	}{
		{"size below the default", outboxTestCodename, DefaultOutboxSize - outboxSizeStep, outboxTestKDF},
		{"size not a step", outboxTestCodename, DefaultOutboxSize + 1, outboxTestKDF},
		{"size over 64 MiB", outboxTestCodename, maxOutboxSize + outboxSizeStep, outboxTestKDF},
		{"negative size", outboxTestCodename, -DefaultOutboxSize, outboxTestKDF},
		{"six words", "copper truck mountain harbor velvet quarry", 0, outboxTestKDF},
		{"no cost", outboxTestCodename, 0, crypto.CodenameKDF{}},
	} {
		if _, err := CreateOutbox(path, c.codename, c.size, c.kdf); err == nil {
			t.Errorf("%s: CreateOutbox succeeded", c.name)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: a file was left behind (%v)", c.name, err)
		}
	}
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateOutbox(path, outboxTestCodename, 0, outboxTestKDF); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateOutbox over a file = %v, want fs.ErrExist", err)
	}
	if got := readFile(t, path); string(got) != "keep me" {
		t.Errorf("CreateOutbox replaced an existing file")
	}
}

func TestOutboxFull(t *testing.T) {
	o, path := newTestOutbox(t, 0)
	// 16 KiB items take 16,384 + 75 + 8 bytes: 127 fit in 2 MiB.
	for o.Free() >= outboxItemLen(outboxTestItem("x", protocol.FrameSize, 1)) {
		it := outboxTestItem("x", protocol.FrameSize, 1)
		binary.BigEndian.PutUint64(it.UploadID[8:], uint64(len(o.Items)))
		if err := o.Add(it); err != nil {
			t.Fatalf("Add with %d bytes free: %v", o.Free(), err)
		}
	}
	if len(o.Items) != 127 {
		t.Errorf("%d items of one 16 KiB frame fit in 2 MiB, want 127", len(o.Items))
	}
	before := readFile(t, path)
	n := len(o.Items)
	it := outboxTestItem("y", protocol.FrameSize, 1)
	err := o.Add(it)
	if !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("Add to a full outbox = %v, want ErrOutboxFull", err)
	}
	for _, want := range []string{fmt.Sprint(outboxItemLen(it)), fmt.Sprint(DefaultOutboxSize - outboxOverhead - o.Free()), fmt.Sprint(DefaultOutboxSize)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}
	if len(o.Items) != n {
		t.Errorf("the refused item is in Items")
	}
	if !bytes.Equal(readFile(t, path), before) {
		t.Errorf("the file changed after a refused Add")
	}
	// Growing an item past the space left fails the same way.
	big := *o.Items[0]
	big.Ciphertext = make([]byte, 5*protocol.FrameSize)
	big.PoW = make([]uint64, 2)
	if err := o.Update(&big); !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("Update past the space = %v, want ErrOutboxFull", err)
	}
	if o.Items[0] == &big || !bytes.Equal(readFile(t, path), before) {
		t.Errorf("a refused Update changed the outbox")
	}
	// Free space comes back with Remove.
	if err := o.Remove(o.Items[0].UploadID); err != nil {
		t.Fatal(err)
	}
	if err := o.Add(it); err != nil {
		t.Fatalf("Add after Remove: %v", err)
	}
}

func TestOutboxUpdateRemove(t *testing.T) {
	o, path := newTestOutbox(t, 0)
	a, b, c := outboxTestItem("a", protocol.FrameSize, 1), outboxTestItem("b", protocol.FrameSize, 1), outboxTestItem("c", protocol.FrameSize, 1)
	for _, it := range []*OutboxItem{a, b, c} {
		if err := o.Add(it); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Add(outboxTestItem("a", protocol.FrameSize, 1)); err == nil {
		t.Errorf("Add of an upload id already in the outbox succeeded")
	}
	b2 := *b
	b2.Started = !b.Started
	b2.PoWEpoch = 9
	if err := o.Update(&b2); err != nil {
		t.Fatal(err)
	}
	if err := o.Remove(a.UploadID); err != nil {
		t.Fatal(err)
	}
	if err := o.Remove(a.UploadID); err == nil {
		t.Errorf("Remove of an absent id succeeded")
	}
	if err := o.Update(a); err == nil {
		t.Errorf("Update of an absent id succeeded")
	}
	bad := *c
	bad.FrameSize = 4096
	if err := o.Update(&bad); !errors.Is(err, crypto.ErrMalformed) {
		t.Errorf("Update with a bad frame size = %v, want crypto.ErrMalformed", err)
	}
	got, err := OpenOutbox(path, outboxTestCodename, outboxTestKDF)
	if err != nil {
		t.Fatal(err)
	}
	if want := []*OutboxItem{&b2, c}; !reflect.DeepEqual(got.Items, want) {
		t.Errorf("after Update and Remove the file holds %d items, not [b2 c] in order", len(got.Items))
	}
	// Save checks items changed behind its back.
	o.Items = append(o.Items, o.Items[0])
	if err := o.Save(); err == nil {
		t.Errorf("Save of two items with one id succeeded")
	}
}

func TestAddRefusesMalformedItems(t *testing.T) {
	o, path := newTestOutbox(t, 0)
	before := readFile(t, path)
	for _, c := range []struct {
		name string
		f    func(it *OutboxItem)
	}{
		{"bundle version 0", func(it *OutboxItem) { it.BundleVersion = 0 }},
		{"negative epoch", func(it *OutboxItem) { it.PoWEpoch = -1 }},
		{"frame size 0", func(it *OutboxItem) { it.FrameSize = 0 }},
		{"frame size 32 KiB", func(it *OutboxItem) { it.FrameSize = 32 << 10 }},
		{"no ciphertext", func(it *OutboxItem) { it.Ciphertext = nil; it.PoW = nil }},
		{"partial frame", func(it *OutboxItem) { it.Ciphertext = it.Ciphertext[:len(it.Ciphertext)-1] }},
		{"a proof too many", func(it *OutboxItem) { it.PoW = append(it.PoW, 1) }},
		{"a proof too few", func(it *OutboxItem) { it.PoW = it.PoW[:0] }},
	} {
		it := outboxTestItem("x", protocol.FrameSize, 1)
		c.f(it)
		if err := o.Add(it); !errors.Is(err, crypto.ErrMalformed) {
			t.Errorf("%s: Add = %v, want crypto.ErrMalformed", c.name, err)
		}
	}
	if err := o.Add(nil); !errors.Is(err, crypto.ErrMalformed) {
		t.Errorf("Add(nil) = %v, want crypto.ErrMalformed", err)
	}
	if len(o.Items) != 0 || !bytes.Equal(readFile(t, path), before) {
		t.Errorf("refused items changed the outbox")
	}
}

// outboxBodyFields cuts the encoding of one item into its fields, as
// docs/outbox.md lists them.
var outboxBodyFields = []struct {
	name string
	size int
}{
	{"upload id", 16}, {"resume secret", 32}, {"bundle version", 8}, {"frame size", 4},
	{"PoW epoch", 8}, {"flags", 1}, {"composed day", 4}, {"refusal length", 1},
	{"ciphertext length", 4}, {"proof count", 2},
}

// setField overwrites a field of the first item of an encoded body.
func setField(body []byte, name string, v uint64) []byte {
	b := bytes.Clone(body)
	off := outboxBodyPrefix
	for _, f := range outboxBodyFields {
		if f.name == name {
			var buf [8]byte
			binary.BigEndian.PutUint64(buf[:], v)
			copy(b[off:off+f.size], buf[8-f.size:])
			return b
		}
		off += f.size
	}
	panic("no field " + name)
}

func encodeOutboxBody(padding int, items ...*OutboxItem) []byte {
	return append(appendOutboxBody(nil, items), make([]byte, padding)...)
}

// encodeOutboxBodyV1 encodes items as body version 1 did (docs/outbox.md,
// "Version 1"): no composed day, no refusal.
func encodeOutboxBodyV1(padding int, items ...*OutboxItem) []byte {
	dst := []byte{outboxBodyV1}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(items)))
	for _, it := range items {
		dst = append(dst, it.UploadID[:]...)
		dst = append(dst, it.ResumeSecret[:]...)
		dst = binary.BigEndian.AppendUint64(dst, uint64(it.BundleVersion))
		dst = binary.BigEndian.AppendUint32(dst, uint32(it.FrameSize))
		dst = binary.BigEndian.AppendUint64(dst, uint64(it.PoWEpoch))
		var flags byte
		if it.Started {
			flags = outboxFlagStarted
		}
		dst = append(dst, flags)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(it.Ciphertext)))
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(it.PoW)))
		for _, p := range it.PoW {
			dst = binary.BigEndian.AppendUint64(dst, p)
		}
		dst = append(dst, it.Ciphertext...)
	}
	return append(dst, make([]byte, padding)...)
}

func TestParseOutboxBody(t *testing.T) {
	small := outboxTestItem("s", protocol.LowBandwidthFrameSz, 1)
	one := encodeOutboxBody(10, small)
	empty := encodeOutboxBody(0)
	refused := outboxTestItem("r", protocol.LowBandwidthFrameSz, 3)
	withRefusal := func(code string) *OutboxItem {
		it := outboxTestItem("w", protocol.LowBandwidthFrameSz, 1)
		it.Refused = protocol.Code(code)
		return it
	}
	for _, c := range []struct {
		name string
		body []byte
		n    int // items, or -1 for crypto.ErrMalformed
	}{
		{"empty outbox", empty, 0},
		{"empty outbox, padded", encodeOutboxBody(100), 0},
		{"one item, no padding", encodeOutboxBody(0, small), 1},
		{"one item, padded", one, 1},
		{"three items", encodeOutboxBody(7, small, outboxTestItem("t", protocol.FrameSize, 4), outboxTestItem("u", protocol.FrameSize, 5)), 3},
		{"item of exactly 64 KiB", encodeOutboxBody(0, outboxTestItem("t", protocol.LowBandwidthFrameSz, 8)), 1},
		{"item of 64 KiB and one frame", encodeOutboxBody(0, outboxTestItem("t", protocol.LowBandwidthFrameSz, 9)), 1},

		{"nothing", nil, -1},
		{"version only", []byte{1}, -1},
		{"version and half a count", []byte{1, 0}, -1},
		{"version 0", append([]byte{0}, empty[1:]...), -1},
		{"version 3", append([]byte{3}, empty[1:]...), -1},
		{"version 1 (upgraded on the next save)", []byte{1, 0, 0}, -2},
		{"version 1, one item", encodeOutboxBodyV1(5, small), -2},
		{"version 2 fields read as version 1", append([]byte{1}, one[1:]...), -1},
		{"count 1, no item", []byte{2, 0, 1}, -1},
		{"count 1, item padded away", append([]byte{2, 0, 1}, make([]byte, outboxMinItem)...), -1},
		{"count 2, one item", append([]byte{2, 0, 2}, one[3:]...), -1},
		{"count 65535", append([]byte{2, 0xff, 0xff}, one[3:]...), -1},
		{"count 0, one item", append([]byte{2, 0, 0}, one[3:]...), -1},
		{"item cut short", one[:len(one)-10-1], -1},
		{"fixed fields cut short", one[:outboxBodyPrefix+outboxItemFixed-1], -1},
		{"nonzero padding", append(bytes.Clone(one[:len(one)-1]), 1), -1},
		{"nonzero byte right after the item", func() []byte { b := bytes.Clone(one); b[len(b)-10] = 0x80; return b }(), -1},
		{"duplicate upload id", encodeOutboxBody(0, small, small), -1},
		{"bundle version 0", setField(one, "bundle version", 0), -1},
		{"bundle version negative", setField(one, "bundle version", 1<<63), -1},
		{"bundle version max", setField(one, "bundle version", 1<<63-1), 1},
		{"epoch negative", setField(one, "PoW epoch", 1<<63), -1},
		{"epoch 0", setField(one, "PoW epoch", 0), 1},
		{"frame size 0", setField(one, "frame size", 0), -1},
		{"frame size 4096", setField(one, "frame size", 4096), -1},
		{"frame size 16 KiB with 8 KiB of ciphertext", setField(one, "frame size", protocol.FrameSize), -1},
		{"flags 2", setField(one, "flags", 2), -1},
		{"flags 0x81", setField(one, "flags", 0x81), -1},
		{"flags 0", setField(one, "flags", 0), 1},
		{"flags 1", setField(one, "flags", 1), 1},
		{"ciphertext length 0", setField(setField(one, "ciphertext length", 0), "proof count", 0), -1},
		{"ciphertext length frame−1", setField(one, "ciphertext length", protocol.LowBandwidthFrameSz-1), -1},
		{"ciphertext length frame+1", setField(one, "ciphertext length", protocol.LowBandwidthFrameSz+1), -1},
		{"ciphertext length two frames", setField(one, "ciphertext length", 2*protocol.LowBandwidthFrameSz), -1},
		{"ciphertext length 4 GiB−8 KiB", setField(one, "ciphertext length", 1<<32-protocol.LowBandwidthFrameSz), -1},
		{"ciphertext length over 64 MiB", setField(setField(one, "ciphertext length", 64<<20+protocol.LowBandwidthFrameSz), "proof count", 1025), -1},
		{"proof count 0", setField(one, "proof count", 0), -1},
		{"proof count 2", setField(one, "proof count", 2), -1},
		{"proof count 65535", setField(one, "proof count", 65535), -1},
		{"composed day 0 (unknown)", setField(one, "composed day", 0), 1},
		{"composed day max", setField(one, "composed day", 1<<32-1), 1},
		{"refused too_large", encodeOutboxBody(3, refused), 1},
		{"refusal of 32 letters", encodeOutboxBody(3, withRefusal(strings.Repeat("a", 32))), 1},
		{"refusal of 33 letters", encodeOutboxBody(3, withRefusal(strings.Repeat("a", 33))), -1},
		{"refusal in capitals", encodeOutboxBody(3, withRefusal("TOO_LARGE")), -1},
		{"refusal with a space", encodeOutboxBody(3, withRefusal("too large")), -1},
		{"refusal with a control byte", encodeOutboxBody(3, withRefusal("too\x1blarge")), -1},
		{"refusal length past the item", setField(one, "refusal length", 255), -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			items, err := parseOutboxBody(c.body)
			if c.n == -2 {
				// A version 1 body reads, and re-encodes as version 2
				// with the items unchanged and no day.
				if err != nil {
					t.Fatalf("parseOutboxBody(version 1) = %v", err)
				}
				v2, err := parseOutboxBody(encodeOutboxBody(0, items...))
				if err != nil || !reflect.DeepEqual(v2, items) {
					t.Fatalf("version 1 items re-encoded as version 2 = %v, %v", v2, err)
				}
				for _, it := range items {
					if it.Day != 0 || it.Refused != "" {
						t.Errorf("version 1 item read with day %d, refusal %q; want 0 and none", it.Day, it.Refused)
					}
				}
				return
			}
			if c.n < 0 {
				if !errors.Is(err, crypto.ErrMalformed) || items != nil {
					t.Fatalf("parseOutboxBody = %d items, %v; want crypto.ErrMalformed", len(items), err)
				}
				return
			}
			if err != nil || len(items) != c.n {
				t.Fatalf("parseOutboxBody = %d items, %v; want %d", len(items), err, c.n)
			}
			if again := encodeOutboxBody(len(c.body)-outboxBodyLen(items), items...); !bytes.Equal(again, c.body) {
				t.Errorf("re-encoding differs")
			}
		})
	}
}

// Every single-byte change of a small body is refused or re-encodes to
// the changed bytes: no field has a second encoding.
func TestParseOutboxBodyMangled(t *testing.T) {
	body := encodeOutboxBody(16, outboxTestItem("m", protocol.LowBandwidthFrameSz, 1))
	for i := range outboxBodyPrefix + outboxItemFixed + 8 + 16 {
		if i >= outboxBodyPrefix+outboxItemFixed+8 {
			i = len(body) - (i - (outboxBodyPrefix + outboxItemFixed + 8)) - 1 // the padding's end
		}
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(body)
			b[i] ^= x
			items, err := parseOutboxBody(b)
			if err != nil {
				if !errors.Is(err, crypto.ErrMalformed) {
					t.Fatalf("byte %d ^ %#x: error %v is not crypto.ErrMalformed", i, x, err)
				}
				continue
			}
			if again := encodeOutboxBody(len(b)-outboxBodyLen(items), items...); !bytes.Equal(again, b) {
				t.Fatalf("byte %d ^ %#x: accepted, but re-encodes differently", i, x)
			}
		}
	}
}

func FuzzOutboxBody(f *testing.F) {
	seeds := [][]byte{
		encodeOutboxBody(0),
		encodeOutboxBody(5),
		encodeOutboxBody(0, outboxTestItem("f", protocol.LowBandwidthFrameSz, 1)),
		encodeOutboxBody(3, outboxTestItem("f", protocol.LowBandwidthFrameSz, 1), outboxTestItem("g", protocol.LowBandwidthFrameSz, 2)),
		encodeOutboxBody(1, outboxTestItem("h", protocol.FrameSize, 5)),
		setField(encodeOutboxBody(1, outboxTestItem("f", protocol.LowBandwidthFrameSz, 1)), "flags", 2),
	}
	loaded := 0
	for _, s := range seeds {
		if _, err := parseOutboxBody(s); err == nil {
			loaded++
		}
		f.Add(s)
	}
	if loaded < 5 {
		f.Fatalf("only %d seed bodies parse", loaded)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := parseOutboxBody(body)
		if err != nil {
			if !errors.Is(err, crypto.ErrMalformed) || items != nil {
				t.Fatalf("refused with %d items and error %v, want nil and crypto.ErrMalformed", len(items), err)
			}
			return
		}
		for i, it := range items {
			if err := checkOutboxItem(it); err != nil {
				t.Fatalf("accepted item %d fails checkOutboxItem: %v", i+1, err)
			}
		}
		if again := encodeOutboxBody(len(body)-outboxBodyLen(items), items...); !bytes.Equal(again, body) {
			t.Fatalf("accepted body re-encodes differently")
		}
	})
}

func TestOutboxUpgradeFromV1(t *testing.T) {
	// An outbox written by a program of body version 1 opens, its items
	// with no composed day and no refusal, and is rewritten as version 2
	// at its next save, at the same size, with the same items.
	o, path := newTestOutbox(t, 0)
	items := []*OutboxItem{outboxTestItem("a", protocol.FrameSize, 1), outboxTestItem("b", protocol.LowBandwidthFrameSz, 2)}
	for _, it := range items {
		it.Day, it.Refused = 0, ""
	}
	body := encodeOutboxBodyV1(0, items...)
	body = append(body, make([]byte, o.bodySize()-len(body))...)
	file, err := o.sealBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	v1, err := OpenOutbox(path, outboxTestCodename, outboxTestKDF)
	if err != nil {
		t.Fatalf("OpenOutbox(version 1 file) = %v", err)
	}
	if !reflect.DeepEqual(v1.Items, items) {
		t.Fatalf("version 1 items = %+v, want %+v", v1.Items, items)
	}
	if got := v1.Items[0].AgeDays(time.Now()); got != -1 {
		t.Errorf("AgeDays of a version 1 item = %d, want -1 (unknown)", got)
	}
	if err := v1.Remove(items[1].UploadID); err != nil {
		t.Fatal(err)
	}
	// The saved file decrypts to a version 2 body.
	file = readFile(t, path)
	if len(file) != DefaultOutboxSize {
		t.Errorf("the upgraded file has %d bytes, want %d", len(file), DefaultOutboxSize)
	}
	aead, err := chacha20poly1305.NewX(v1.key[:])
	if err != nil {
		t.Fatal(err)
	}
	plain, err := aead.Open(nil, file[outboxSaltSize:outboxSaltSize+outboxNonceSize], file[outboxSaltSize+outboxNonceSize:], file[:outboxSaltSize])
	if err != nil {
		t.Fatal(err)
	}
	if plain[0] != outboxBodyVersion {
		t.Errorf("the saved body has version %d, want %d", plain[0], outboxBodyVersion)
	}
	again, err := OpenOutbox(path, outboxTestCodename, outboxTestKDF)
	if err != nil || !reflect.DeepEqual(again.Items, items[:1]) {
		t.Fatalf("the upgraded outbox = %+v, %v; want the first item", again.Items, err)
	}
}

// seqReader yields 0, 1, 2, … as the "random" bytes of the worked example.
type seqReader struct{ n byte }

func (r *seqReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

// outboxExample builds the worked example of docs/outbox.md, at the
// default cost, and describes it field by field from the real bytes.
func outboxExample(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outbox")
	random := &seqReader{}
	o, err := createOutbox(path, outboxTestCodename, 0, crypto.DefaultCodenameKDF, random)
	if err != nil {
		t.Fatal(err)
	}
	it := &OutboxItem{
		BundleVersion: 3,
		FrameSize:     protocol.LowBandwidthFrameSz,
		PoWEpoch:      2785,
		PoW:           []uint64{123456},
		Started:       true,
		Day:           20454, // 2026-01-01
		Ciphertext:    append([]byte("age-encryption.org/v1\n"), make([]byte, protocol.LowBandwidthFrameSz-22)...),
	}
	copy(it.UploadID[:], "upload-id-16byte")
	copy(it.ResumeSecret[:], "resume-secret-of-32-bytes-......")
	if err := o.Add(it); err != nil {
		t.Fatal(err)
	}
	file := readFile(t, path)

	var w strings.Builder
	fmt.Fprintf(&w, "codename  %s\n", outboxTestCodename)
	fmt.Fprintf(&w, "salt      %x\n", file[:outboxSaltSize])
	fmt.Fprintf(&w, "key       %x\n", o.key)
	fmt.Fprintf(&w, "nonce     %x\n", file[outboxSaltSize:outboxSaltSize+outboxNonceSize])
	body := appendOutboxBody(nil, o.Items)
	fmt.Fprintf(&w, "body      %d bytes:\n", o.bodySize())
	fmt.Fprintf(&w, "  %-34x  version\n", body[:1])
	fmt.Fprintf(&w, "  %-34x  item count\n", body[1:3])
	off := outboxBodyPrefix
	for _, f := range outboxBodyFields {
		for i := 0; i < f.size; i += 16 { // 16 bytes a line
			name := f.name
			if i > 0 {
				name = "  (continued)"
			}
			fmt.Fprintf(&w, "  %-34x  %s\n", body[off+i:off+min(i+16, f.size)], name)
		}
		off += f.size
	}
	for i := range it.PoW {
		fmt.Fprintf(&w, "  %-34x  proof %d\n", body[off:off+8], i+1)
		off += 8
	}
	fmt.Fprintf(&w, "  %-34x  ciphertext (%d bytes): %q, then zeros\n", body[off:off+16], len(it.Ciphertext), it.Ciphertext[:22])
	off += len(it.Ciphertext)
	if off != len(body) {
		t.Fatalf("the example's fields cover %d of %d bytes", off, len(body))
	}
	fmt.Fprintf(&w, "  00 × %d%-*s  padding\n", o.bodySize()-len(body), 34-5-len(fmt.Sprint(o.bodySize()-len(body))), "")
	fmt.Fprintf(&w, "file      %d bytes: salt ‖ nonce ‖ sealed body\n", len(file))
	fmt.Fprintf(&w, "  sealed body starts  %x\n", file[outboxSaltSize+outboxNonceSize:outboxSaltSize+outboxNonceSize+16])
	fmt.Fprintf(&w, "  tag                 %x\n", file[len(file)-outboxTagSize:])
	fmt.Fprintf(&w, "  SHA-256             %x\n", sha256.Sum256(file))

	// The description matches an independent decryption of the file.
	got, err := OpenOutbox(path, outboxTestCodename, crypto.DefaultCodenameKDF)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Items, []*OutboxItem{it}) {
		t.Fatal("the example does not open to its item")
	}
	return w.String()
}

// The worked example of docs/outbox.md is, byte for byte, what the code
// writes (with the example's fixed salt and nonce).
func TestOutboxDoc(t *testing.T) {
	b, err := os.ReadFile("../docs/outbox.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- output of outboxExample in client/outbox_test.go -->"
	_, after, ok := strings.Cut(string(b), marker+"\n```text\n")
	if !ok {
		t.Fatalf("docs/outbox.md has no code block after %q", marker)
	}
	block, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("docs/outbox.md: the code block after %q does not end", marker)
	}
	if want := outboxExample(t); block != want {
		t.Errorf("docs/outbox.md after %s:\n%s\nthe code writes:\n%s", marker, block, want)
	}
}

func TestOutboxRoomAndResize(t *testing.T) {
	// Issue 12: a tip the outbox cannot hold is told apart before its
	// proofs of work (Room), with the size that would hold it (SizeFor),
	// and Resize makes that size, keeping the items.
	o, path := newTestOutbox(t, 0)
	it := outboxTestItem("a", protocol.FrameSize, 1)
	if err := o.Add(it); err != nil {
		t.Fatal(err)
	}
	const big = 3 << 20
	err := o.Room(big)
	var full *OutboxFullError
	if !errors.As(err, &full) || !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("Room(%d) = %v, want an *OutboxFullError", big, err)
	}
	want := outboxItemFixed + 8*protocol.Proofs(big) + big
	if full.Need != want || full.Size != DefaultOutboxSize || full.Used != outboxBodyLen(o.Items) {
		t.Errorf("OutboxFullError = %+v, want Need %d, Size %d", full, want, DefaultOutboxSize)
	}
	size := full.SizeFor()
	if size%outboxSizeStep != 0 || size-outboxOverhead < full.Used+full.Need || size-outboxSizeStep-outboxOverhead >= full.Used+full.Need {
		t.Fatalf("SizeFor() = %d: not the smallest multiple of 64 KiB that holds %d + %d", size, full.Used, full.Need)
	}
	if err := o.Resize(size); err != nil {
		t.Fatalf("Resize(%d) = %v", size, err)
	}
	if err := o.Room(big); err != nil {
		t.Errorf("Room(%d) after Resize(%d) = %v", big, size, err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != int64(size) {
		t.Errorf("the file after Resize: %v, %v bytes; want %d", err, st.Size(), size)
	}
	again, err := OpenOutbox(path, outboxTestCodename, outboxTestKDF)
	if err != nil || again.Size() != size || !reflect.DeepEqual(again.Items, o.Items) {
		t.Fatalf("reopened after Resize: %v, size %d", err, again.Size())
	}
	for _, bad := range []int{size + 1, maxOutboxSize + outboxSizeStep, 0} {
		if err := o.Resize(bad); err == nil {
			t.Errorf("Resize(%d) = nil, want a refusal", bad)
		}
	}
	if (&OutboxFullError{Need: maxOutboxSize}).SizeFor() != 0 {
		t.Errorf("SizeFor of more than the largest outbox is not 0")
	}
}
