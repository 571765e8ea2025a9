package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
)

// normalTip makes tips comparable: ParseTip returns nil Attachments for
// none, and empty (non-nil) Data for an empty attachment.
func normalTip(t *Tip) Tip {
	n := Tip{Text: t.Text}
	for _, a := range t.Attachments {
		if len(a.Data) == 0 {
			a.Data = nil
		}
		n.Attachments = append(n.Attachments, a)
	}
	return n
}

var testTips = []*Tip{
	{},
	{Text: "Copper concentrate leaves the Hyesan mine by truck at 2am."},
	{Text: "혜산 광산 <b>&</b> \"quotes\"\n\ttab \u2028 \x00 end"},
	{Text: "with attachments", Attachments: []Attachment{
		{Name: "truck.jpg", Type: "image/jpeg", Data: bytes.Repeat([]byte{0xff, 0xd8, 0}, 1000)},
		{Name: "empty.bin", Type: "application/octet-stream"},
		{Name: "notes 2.txt", Type: "text/plain; charset=utf-8", Data: []byte("zero at the end\x00")},
		{Name: "트럭.png", Type: "image/png", Data: []byte{0}},
	}},
}

func TestMarshalParseTip(t *testing.T) {
	for i, tip := range testTips {
		plain, err := MarshalTip(tip)
		if err != nil {
			t.Fatalf("MarshalTip(tip %d) error = %v", i, err)
		}
		for _, pad := range []int{0, 1, 1000} {
			got, err := ParseTip(append(bytes.Clone(plain), make([]byte, pad)...))
			if err != nil {
				t.Fatalf("ParseTip(MarshalTip(tip %d) + %d zeros) error = %v", i, pad, err)
			}
			if !reflect.DeepEqual(normalTip(got), normalTip(tip)) {
				t.Errorf("ParseTip(MarshalTip(tip %d) + %d zeros) = %+v, want %+v", i, pad, got, tip)
			}
		}
	}
}

func TestMarshalTipRefuses(t *testing.T) {
	att := func(name, typ string) *Tip {
		return &Tip{Attachments: []Attachment{{Name: name, Type: typ, Data: []byte("x")}}}
	}
	for _, tt := range []struct {
		name string
		tip  *Tip
	}{
		{"text_invalid_utf8", &Tip{Text: "a\xffb"}},
		{"too_many_attachments", &Tip{Attachments: make([]Attachment, MaxAttachments+1)}},
		{"name_empty", att("", "text/plain")},
		{"name_slash", att("a/b", "text/plain")},
		{"name_backslash", att(`a\b`, "text/plain")},
		{"name_nul", att("a\x00", "text/plain")},
		{"name_dot", att(".", "text/plain")},
		{"name_dotdot", att("..", "text/plain")},
		{"name_escape_sequence", att("a\x1b[2Jb.jpg", "text/plain")},
		{"name_newline", att("a\nb", "text/plain")},
		{"name_leading_dash", att("-rf", "text/plain")},
		{"type_control", att("a", "text/plain\r")},
		{"name_invalid_utf8", att("a\xff", "text/plain")},
		{"name_too_long", att(strings.Repeat("a", MaxNameLength+1), "text/plain")},
		{"type_empty", att("a", "")},
		{"type_too_long", att("a", strings.Repeat("t", MaxNameLength+1))},
		{"type_invalid_utf8", att("a", "\xff")},
		{"manifest_too_large", &Tip{Text: strings.Repeat("a", MaxManifestSize)}},
	} {
		if b, err := MarshalTip(tt.tip); err == nil {
			t.Errorf("MarshalTip(%s) = %.40q, want an error", tt.name, b)
		}
	}
	// The limits themselves are allowed.
	ok := &Tip{Attachments: make([]Attachment, MaxAttachments)}
	for i := range ok.Attachments {
		ok.Attachments[i] = Attachment{Name: strings.Repeat("n", MaxNameLength), Type: strings.Repeat("t", MaxNameLength)}
	}
	plain, err := MarshalTip(ok)
	if err != nil {
		t.Fatalf("MarshalTip(%d attachments with %d-byte names) error = %v", MaxAttachments, MaxNameLength, err)
	}
	if _, err := ParseTip(plain); err != nil {
		t.Errorf("ParseTip of the largest names and count error = %v", err)
	}
}

// An attachment may claim exactly the bytes that follow, never one more;
// whatever it leaves must be zero padding.
func TestParseTipSizes(t *testing.T) {
	data := []byte("abcdef")
	for _, tt := range []struct {
		size int
		rest []byte // bytes after the attachment's data
		ok   bool
	}{
		{len(data) - 1, []byte{0}, false}, // 'f' left over as padding
		{len(data), nil, true},
		{len(data) + 1, nil, false},
		{len(data), []byte{0, 0, 0}, true},
		{len(data), []byte{0, 0, 1}, false},
		{len(data), []byte{1, 0, 0}, false},
		{len(data), []byte{' '}, false},
	} {
		plain := fmt.Appendf(nil, "%s\n{\"text\":\"\",\"attachments\":[{\"name\":\"a\",\"type\":\"b\",\"size\":%d}]}\n%s%s", TipHeader, tt.size, data, tt.rest)
		tip, err := ParseTip(plain)
		switch {
		case tt.ok && err != nil:
			t.Errorf("ParseTip(size %d of %d, then %q) error = %v", tt.size, len(data), tt.rest, err)
		case tt.ok && !bytes.Equal(tip.Attachments[0].Data, data[:tt.size]):
			t.Errorf("ParseTip(size %d) data = %q, want %q", tt.size, tip.Attachments[0].Data, data[:tt.size])
		case !tt.ok && (!errors.Is(err, ErrMalformed) || tip != nil):
			t.Errorf("ParseTip(size %d of %d, then %q) = %v, %v, want an error wrapping %q", tt.size, len(data), tt.rest, tip, err, ErrMalformed)
		}
	}
	// Every nonzero byte anywhere in the padding is refused.
	plain := mustMarshalTip(testTips[1])
	padded := append(bytes.Clone(plain), make([]byte, 64)...)
	for i := len(plain); i < len(padded); i++ {
		p := bytes.Clone(padded)
		p[i] = 0x80
		if tip, err := ParseTip(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseTip(nonzero padding byte at %d) = %v, %v, want an error wrapping %q", i, tip, err, ErrMalformed)
		}
	}
	// A manifest line longer than the limit is refused without looking
	// further.
	long := append([]byte(TipHeader+"\n"), bytes.Repeat([]byte(" "), MaxManifestSize+1)...)
	if _, err := ParseTip(append(long, '\n')); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseTip(manifest of %d bytes) error = %v, want one wrapping %q", MaxManifestSize+1, err, ErrMalformed)
	}
}

// padmeFloat is PADMÉ written from the paper with floating point, an
// independent check of the bit-twiddling padme.
func padmeFloat(n int64) int64 {
	if n < 2 {
		return n
	}
	e := math.Floor(math.Log2(float64(n)))
	s := math.Floor(math.Log2(e)) + 1
	unit := int64(math.Pow(2, e-s))
	return (n + unit - 1) / unit * unit
}

func TestPadme(t *testing.T) {
	for _, tt := range []struct{ n, want int64 }{
		{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {7, 7}, {8, 8}, {9, 10},
		{15, 16}, {17, 18}, {100, 104}, {1000, 1024}, {1025, 1088}, {8193, 8704},
		{16385, 17408}, {65535, 65536}, {65537, 67584}, {100000, 100352},
		{1000000, 1015808}, {1048577, 1081344}, {10000000, 10223616}, {33554431, 33554432},
	} {
		if got := padme(tt.n); got != tt.want {
			t.Errorf("padme(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	prev := int64(0)
	for n := int64(0); n < 1<<26; n += 1 + r.Int64N(n/64+1) {
		p := padme(n)
		if f := padmeFloat(n); p != f {
			t.Fatalf("padme(%d) = %d, want %d (floating-point PADMÉ)", n, p, f)
		}
		if p < n || float64(p-n) > 0.12*float64(n) {
			t.Fatalf("padme(%d) = %d: overhead %.1f%%, want 0 to 12%%", n, p, 100*float64(p-n)/float64(n))
		}
		if p < prev {
			t.Fatalf("padme(%d) = %d < %d of a smaller size", n, p, prev)
		}
		if padme(p) != p {
			t.Fatalf("padme(padme(%d)) = %d, want %d", n, padme(p), p)
		}
		prev = p
	}
}

func TestBucket(t *testing.T) {
	for _, tt := range []struct{ n, frame, want int64 }{
		{0, 16384, 16384},
		{1, 16384, 16384},
		{16383, 16384, 16384},
		{16384, 16384, 16384},
		{16385, 16384, 32768},
		{32767, 16384, 32768},
		{32768, 16384, 32768},
		{32769, 16384, 49152},
		{8191, 8192, 8192},
		{8192, 8192, 8192},
		{8193, 8192, 16384},
		{1000000, 16384, 1015808},
		{10000000, 16384, 10223616},
		{10000000, 8192, 10223616},
	} {
		if got := Bucket(tt.n, tt.frame); got != tt.want {
			t.Errorf("Bucket(%d, %d) = %d, want %d", tt.n, tt.frame, got, tt.want)
		}
	}
	// Every bucket is whole frames, holds n, and costs at most PADMÉ's 12%
	// plus the last frame's rounding (FIELD.md: "at most 12 % overhead" is
	// PADMÉ's; the frame rounding dominates for small tips).
	r := rand.New(rand.NewPCG(3, 4))
	for _, frame := range []int64{8192, 16384} {
		for range 10000 {
			n := r.Int64N(MaxTipSize)
			b := Bucket(n, frame)
			if b%frame != 0 || b < n || b >= padme(n)+frame || (n > 0 && float64(b-n) > 0.12*float64(n)+float64(frame)) {
				t.Fatalf("Bucket(%d, %d) = %d", n, frame, b)
			}
			if n >= 100*frame && float64(b-n) > 0.12*float64(n) {
				t.Fatalf("Bucket(%d, %d) = %d: overhead %.1f%% on a large tip", n, frame, b, 100*float64(b-n)/float64(n))
			}
		}
	}
}

func TestValidPayloadSize(t *testing.T) {
	const full = ageChunkSize + ageTagSize
	for _, tt := range []struct {
		n    int64
		want bool
	}{
		{0, false},
		{ageNonceSize, false},
		{ageNonceSize + ageTagSize - 1, false},
		{ageNonceSize + ageTagSize, true}, // an empty plaintext
		{ageNonceSize + ageTagSize + 1, true},
		{ageNonceSize + full - 1, true},
		{ageNonceSize + full, true}, // one full chunk, the last
		{ageNonceSize + full + 1, false},
		{ageNonceSize + full + ageTagSize - 1, false},
		{ageNonceSize + full + ageTagSize, false}, // an empty chunk after a full one
		{ageNonceSize + full + ageTagSize + 1, true},
		{ageNonceSize + 2*full, true},
		{ageNonceSize + 2*full + ageTagSize, false},
	} {
		if got := validPayloadSize(tt.n); got != tt.want {
			t.Errorf("validPayloadSize(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
	// validPayloadSize(n) holds exactly for the sizes age produces.
	produced := map[int64]bool{}
	for p := int64(0); p < 3*ageChunkSize+100; p++ {
		produced[ageSize(0, p)] = true
	}
	for n := int64(0); n < ageSize(0, 3*ageChunkSize); n++ {
		if validPayloadSize(n) != produced[n] {
			t.Fatalf("validPayloadSize(%d) = %v, want %v", n, validPayloadSize(n), produced[n])
		}
	}
}

// A target size in the gap where one more plaintext byte starts a new
// chunk has no plaintext size; Seal then takes the next frame.
func TestPaddedPlaintextSizeGap(t *testing.T) {
	const h = 16344 // chosen so that 81920 falls in the gap after one full chunk
	target := int64(5 * 16384)
	if p := paddedPlaintextSize(h, target, 0); p != -1 {
		t.Errorf("paddedPlaintextSize(%d, %d, 0) = %d (age size %d), want -1", h, target, p, ageSize(h, p))
	}
	for _, target := range []int64{6 * 16384, 4 * 16384, 16384 + h} {
		p := paddedPlaintextSize(h, target, 0)
		if p < 0 || ageSize(h, p) != target {
			t.Errorf("paddedPlaintextSize(%d, %d, 0) = %d, want a size age encrypts to %d bytes", h, target, p, target)
		}
	}
	if p := paddedPlaintextSize(168, 16384, 16384); p != -1 {
		t.Errorf("paddedPlaintextSize with a minimum past the target = %d, want -1", p)
	}
}

type recipientSet struct {
	name    string
	stanza  string
	editors []*EditorKey
	header  int64 // FIELD.md: 70 B + 98 B per X25519 recipient, 1,557 B per hybrid one
}

var recipientSets = []recipientSet{
	{"x25519_one", StanzaX25519, []*EditorKey{testAlice}, 70 + 98},
	{"x25519_three", StanzaX25519, []*EditorKey{testAlice, testBob, testCarol}, 70 + 3*98},
	{"hybrid_two", StanzaHybrid, []*EditorKey{testHybridAlice, testHybridBob}, 70 + 2*1557},
}

// tipOfSize returns a tip whose plaintext is exactly n bytes (n >= 60).
func tipOfSize(n int) *Tip {
	base := len(mustMarshalTip(&Tip{}))
	return &Tip{Text: strings.Repeat("x", n-base)}
}

func TestSealSizes(t *testing.T) {
	for _, rs := range recipientSets {
		for _, frame := range []int64{8192, 16384} {
			h := rs.header
			// Plaintext sizes that put the unpadded file at frame n-1, n,
			// n+1, plaintext sizes at 64 KiB chunk boundaries, and a few
			// more.
			var sizes []int
			for _, target := range []int64{frame, 2 * frame, 5 * frame} {
				for d := int64(-1); d <= 1; d++ {
					if p := int(target + d - h - ageNonceSize - ageTagSize); p >= 60 {
						sizes = append(sizes, p)
					}
				}
			}
			for _, c := range []int{ageChunkSize, 2 * ageChunkSize} {
				sizes = append(sizes, c-1, c, c+1)
			}
			sizes = append(sizes, 60, 1000, 100000, 300001)
			for _, n := range sizes {
				tip := tipOfSize(n)
				ct, err := Seal(tip, recipientsOf(rs.editors...), frame)
				if err != nil {
					t.Fatalf("Seal(%s, %d-byte plaintext, frame %d) error = %v", rs.name, n, frame, err)
				}
				want := Bucket(ageSize(h, int64(n)), frame)
				if int64(len(ct)) != want {
					t.Errorf("len(Seal(%s, %d-byte plaintext, frame %d)) = %d, want Bucket(%d) = %d", rs.name, n, frame, len(ct), ageSize(h, int64(n)), want)
				}
				hdr, err := age.ExtractHeader(bytes.NewReader(ct))
				if err != nil || int64(len(hdr)) != h {
					t.Errorf("Seal(%s) header of %d bytes, %v, want %d", rs.name, len(hdr), err, h)
				}
				if err := CheckCiphertext(ct, rs.stanza, len(rs.editors)); err != nil {
					t.Errorf("CheckCiphertext(Seal(%s, %d bytes)) error = %v", rs.name, n, err)
				}
				got, err := Open(ct, rs.editors[len(rs.editors)-1].Identity)
				if err != nil || got.Text != tip.Text {
					t.Errorf("Open(Seal(%s, %d bytes)) = %v, want the tip back", rs.name, n, err)
				}
			}
		}
	}
}

// Tips of 10 and 5,000 characters look the same on the wire: one frame.
// (With 8 KiB frames, the 3,184-byte header of two post-quantum recipients
// leaves too little room for 5,000 characters.)
func TestSealSameSize(t *testing.T) {
	for _, rs := range recipientSets {
		for _, frame := range []int64{8192, 16384} {
			if frame < 5000+rs.header+200 {
				continue
			}
			short, err := Seal(&Tip{Text: strings.Repeat("a", 10)}, recipientsOf(rs.editors...), frame)
			if err != nil {
				t.Fatal(err)
			}
			long, err := Seal(&Tip{Text: strings.Repeat("b", 5000)}, recipientsOf(rs.editors...), frame)
			if err != nil {
				t.Fatal(err)
			}
			if len(short) != len(long) || int64(len(short)) != frame {
				t.Errorf("Seal(%s, frame %d): 10 characters give %d bytes, 5,000 give %d, want %d for both", rs.name, frame, len(short), len(long), frame)
			}
		}
	}
}

func TestSealRefuses(t *testing.T) {
	if ct, err := Seal(&Tip{Text: "a\xff"}, recipientsOf(testAlice), 16384); err == nil {
		t.Errorf("Seal(invalid UTF-8) = %d bytes, want an error", len(ct))
	}
	if ct, err := Seal(&Tip{}, nil, 16384); err == nil {
		t.Errorf("Seal(no recipients) = %d bytes, want an error", len(ct))
	}
	mixed := append(recipientsOf(testAlice), recipientsOf(testHybridBob)...)
	if ct, err := Seal(&Tip{}, mixed, 16384); err == nil {
		t.Errorf("Seal(classic and post-quantum recipients) = %d bytes, want an error", len(ct))
	}
	big := &Tip{Attachments: []Attachment{{Name: "big", Type: "application/octet-stream", Data: make([]byte, MaxTipSize)}}}
	if ct, err := Seal(big, recipientsOf(testAlice), 16384); err == nil {
		t.Errorf("Seal(%d-byte attachment) = %d bytes, want an error", MaxTipSize, len(ct))
	}
}

func TestOpenRefuses(t *testing.T) {
	tip := &Tip{Text: "Trucks at 2am.", Attachments: []Attachment{{Name: "a.jpg", Type: "image/jpeg", Data: make([]byte, 70000)}}}
	ct, err := Seal(tip, recipientsOf(testAlice, testBob), 16384)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := age.ExtractHeader(bytes.NewReader(ct))
	h := len(hdr)
	open := func(what string, ct []byte, ids ...age.Identity) {
		t.Helper()
		if got, err := Open(ct, ids...); err == nil || got != nil {
			t.Errorf("Open(%s) = %v, %v, want no tip and an error", what, got, err)
		}
	}
	for _, n := range []int{0, h - 1, h, h + 1, h + 16, h + 31, h + 32, h + 16 + ageChunkSize + ageTagSize, len(ct) / 2, len(ct) - 17, len(ct) - 16, len(ct) - 1} {
		open(fmt.Sprintf("first %d of %d bytes", n, len(ct)), ct[:n], testAlice.Identity)
	}
	open("with another editor's identity", ct, testCarol.Identity)
	open("with no identity", ct)
	for _, i := range []int{10, h - 5, h + 1, h + 20, len(ct) - 1} {
		m := bytes.Clone(ct)
		m[i] ^= 1
		open(fmt.Sprintf("byte %d flipped", i), m, testAlice.Identity)
	}
	open("with a byte appended", append(bytes.Clone(ct), 0), testAlice.Identity)
	open("too large", make([]byte, MaxTipSize+1), testAlice.Identity)
	// A correctly encrypted file whose plaintext is not a tip.
	var b bytes.Buffer
	if err := encrypt(&b, []byte("not a tip"), recipientsOf(testAlice)); err != nil {
		t.Fatal(err)
	}
	if got, err := Open(b.Bytes(), testAlice.Identity); !errors.Is(err, ErrMalformed) || got != nil {
		t.Errorf("Open(age file of a non-tip) = %v, %v, want an error wrapping %q", got, err, ErrMalformed)
	}
}

func TestCheckCiphertext(t *testing.T) {
	classic := recipientSets[1]
	ct, err := Seal(&Tip{Text: "x"}, recipientsOf(classic.editors...), 8192)
	if err != nil {
		t.Fatal(err)
	}
	hybrid, err := Seal(&Tip{Text: "x"}, recipientsOf(testHybridAlice, testHybridBob), 8192)
	if err != nil {
		t.Fatal(err)
	}
	refused := func(what string, ct []byte, stanza string, count int) {
		t.Helper()
		if err := CheckCiphertext(ct, stanza, count); !errors.Is(err, ErrBadCiphertext) {
			t.Errorf("CheckCiphertext(%s, %s, %d) error = %v, want one wrapping %q", what, stanza, count, err, ErrBadCiphertext)
		}
	}
	if err := CheckCiphertext(ct, StanzaX25519, 3); err != nil {
		t.Errorf("CheckCiphertext(sealed to 3 classic editors) error = %v", err)
	}
	if err := CheckCiphertext(hybrid, StanzaHybrid, 2); err != nil {
		t.Errorf("CheckCiphertext(sealed to 2 post-quantum editors) error = %v", err)
	}
	for _, n := range []int{0, 1, 2, 4} {
		refused(fmt.Sprintf("3 stanzas, count %d", n), ct, StanzaX25519, n)
	}
	refused("classic, want hybrid", ct, StanzaHybrid, 3)
	refused("hybrid, want classic", hybrid, StanzaX25519, 2)
	refused("classic, want scrypt", ct, "scrypt", 3)
	refused("nil", nil, StanzaX25519, 3)
	refused("garbage", []byte("age-encryption.org/v1\n-> X25519\n"), StanzaX25519, 3)
	refused("header with garbage MAC", []byte("age-encryption.org/v1\n--- x\n"), StanzaX25519, 0)

	// Every payload length from nothing to two tags: only those age can
	// produce pass.
	hdr, err := age.ExtractHeader(bytes.NewReader(ct))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n <= 2*ageTagSize+ageNonceSize; n++ {
		err := CheckCiphertext(ct[:len(hdr)+n], StanzaX25519, 3)
		if want := n >= ageNonceSize+ageTagSize; (err == nil) != want || (err != nil && !errors.Is(err, ErrBadCiphertext)) {
			t.Errorf("CheckCiphertext(header + %d payload bytes) error = %v, want accepted %v", n, err, want)
		}
	}
	// Around a chunk boundary, with a synthetic payload (the check does
	// not decrypt).
	full := ageNonceSize + ageChunkSize + ageTagSize
	for n := full - 2; n <= full+ageTagSize+2; n++ {
		err := CheckCiphertext(append(bytes.Clone(hdr), make([]byte, n)...), StanzaX25519, 3)
		if want := n <= full || n > full+ageTagSize; (err == nil) != want || (err != nil && !errors.Is(err, ErrBadCiphertext)) {
			t.Errorf("CheckCiphertext(header + %d payload bytes) error = %v, want accepted %v", n, err, want)
		}
	}
}

// The two padding examples of docs/formats.md.
func TestFormatsPaddingExamples(t *testing.T) {
	for _, tt := range []struct {
		set                      recipientSet
		plain                    int
		header, unpadded, bucket int64
		paddedPlain              int
	}{
		{recipientSets[0], 150, 168, 350, 16384, 16184},
		{recipientSets[2], 100000, 3184, 103232, 114688, 111456},
	} {
		if tt.set.header != tt.header || ageSize(tt.header, int64(tt.plain)) != tt.unpadded || Bucket(tt.unpadded, 16384) != tt.bucket {
			t.Errorf("%s, %d bytes: header %d, unpadded %d, bucket %d, want %d, %d, %d", tt.set.name, tt.plain,
				tt.set.header, ageSize(tt.header, int64(tt.plain)), Bucket(tt.unpadded, 16384), tt.header, tt.unpadded, tt.bucket)
		}
		ct, err := Seal(tipOfSize(tt.plain), recipientsOf(tt.set.editors...), 16384)
		if err != nil {
			t.Fatal(err)
		}
		r, err := age.Decrypt(bytes.NewReader(ct), tt.set.editors[0].Identity)
		if err != nil {
			t.Fatal(err)
		}
		padded, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(ct)) != tt.bucket || len(padded) != tt.paddedPlain {
			t.Errorf("Seal(%s, %d bytes) = %d bytes of ciphertext, %d of padded plaintext, want %d and %d", tt.set.name, tt.plain, len(ct), len(padded), tt.bucket, tt.paddedPlain)
		}
	}
}

// The manifest escapes strings as docs/formats.md says (Go's encoding/json
// since Go 1.22); a reader refuses any other spelling.
func TestManifestEscaping(t *testing.T) {
	plain := mustMarshalTip(&Tip{Text: "\"\\\n\r\t\b\f\x01\x1f\x7f<>&\u2028\u2029é혜"})
	want := `{"text":"\"\\\n\r\t\b\f\u0001\u001f` + "\x7f" + `\u003c\u003e\u0026\u2028\u2029é혜","attachments":[]}`
	if got := strings.Split(string(plain), "\n")[1]; got != want {
		t.Errorf("manifest = %s, want %s", got, want)
	}
	if _, err := ParseTip(plain); err != nil {
		t.Errorf("ParseTip(MarshalTip(…)) error = %v", err)
	}
	for _, other := range []string{`\u0022`, `\/`, `\u000a`, `\u00e9`, `\u003C`} {
		m := fmt.Appendf(nil, "%s\n{\"text\":\"%s\",\"attachments\":[]}\n", TipHeader, other)
		if tip, err := ParseTip(m); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseTip(text %s) = %v, %v, want an error wrapping %q", other, tip, err, ErrMalformed)
		}
	}
}

// ParseCiphertextHeader on the first bytes of a file: while they end
// inside the header it asks for more (ErrHeaderIncomplete); from the
// header's end on it gives what the whole file gives; a whole file that
// ends inside its header is malformed.
func TestParseCiphertextHeaderPrefix(t *testing.T) {
	for _, c := range []struct {
		name   string
		rs     []age.Recipient
		stanza string
		count  int
	}{
		{"classic", recipientsOf(recipientSets[1].editors...), StanzaX25519, 3},
		{"hybrid", recipientsOf(testHybridAlice, testHybridBob), StanzaHybrid, 2},
	} {
		ct, err := Seal(&Tip{Text: "x"}, c.rs, 8192)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := ParseCiphertextHeader(ct, int64(len(ct)))
		if err != nil || whole.Check(c.stanza, c.count) != nil {
			t.Fatalf("%s: ParseCiphertextHeader(whole) = %+v, %v", c.name, whole, err)
		}
		for n := 0; n <= int(whole.Size)+64; n++ {
			h, err := ParseCiphertextHeader(ct[:n], int64(len(ct)))
			if int64(n) < whole.Size {
				if !errors.Is(err, ErrHeaderIncomplete) || errors.Is(err, ErrBadCiphertext) {
					t.Fatalf("%s: ParseCiphertextHeader(first %d of a %d-byte header) = %v, want ErrHeaderIncomplete", c.name, n, whole.Size, err)
				}
				if _, err := ParseCiphertextHeader(ct[:n], int64(n)); !errors.Is(err, ErrBadCiphertext) {
					t.Fatalf("%s: ParseCiphertextHeader(a whole file of %d bytes, inside its header) = %v, want ErrBadCiphertext", c.name, n, err)
				}
				continue
			}
			if err != nil || !slices.Equal(h.StanzaTypes, whole.StanzaTypes) || h.Size != whole.Size {
				t.Fatalf("%s: ParseCiphertextHeader(first %d bytes) = %+v, %v, want %+v", c.name, n, h, err, whole)
			}
		}
	}
}

// A prefix that is not the start of an age file is refused at once.
func TestParseCiphertextHeaderNotAge(t *testing.T) {
	for _, p := range []string{"x", "AGE-encryption", "age-encryption.org/v2\n", "\n--- x\n"} {
		if _, err := ParseCiphertextHeader([]byte(p), 1<<20); !errors.Is(err, ErrBadCiphertext) {
			t.Errorf("ParseCiphertextHeader(%q of 1 MiB) = %v, want ErrBadCiphertext", p, err)
		}
	}
}

// Parsing the first n bytes agrees with parsing the whole: the same header
// from its end on, ErrHeaderIncomplete or a refusal before.
func FuzzParseCiphertextHeader(f *testing.F) {
	ct, err := Seal(&Tip{Text: "x"}, recipientsOf(recipientSets[1].editors...), 8192)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct[:600], 300)
	f.Add([]byte("age-encryption.org/v1\n-> X25519 abc\nAAAA\n--- AAAA\n"), 20)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > len(b) {
			return
		}
		length := int64(len(b)) + 8192
		whole, werr := ParseCiphertextHeader(b, length)
		h, err := ParseCiphertextHeader(b[:n], length)
		if werr == nil && int64(n) < whole.Size && !errors.Is(err, ErrHeaderIncomplete) {
			t.Fatalf("first %d bytes of a %d-byte header: %v, want ErrHeaderIncomplete", n, whole.Size, err)
		}
		if werr == nil && int64(n) >= whole.Size && err != nil {
			t.Fatalf("first %d bytes, with the %d-byte header: %v", n, whole.Size, err)
		}
		switch {
		case errors.Is(err, ErrHeaderIncomplete):
			if werr == nil && int64(n) >= whole.Size {
				t.Fatalf("first %d bytes: incomplete, but the header of %d bytes is in them", n, whole.Size)
			}
		case err == nil:
			if werr != nil || !slices.Equal(h.StanzaTypes, whole.StanzaTypes) || h.Size != whole.Size {
				t.Fatalf("first %d bytes: %+v, all %d: %+v, %v", n, h, len(b), whole, werr)
			}
		case !errors.Is(err, ErrBadCiphertext):
			t.Fatalf("first %d bytes: error %v wraps neither ErrHeaderIncomplete nor ErrBadCiphertext", n, err)
		}
	})
}
