package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"fieldtip/internal/testkit/fieldtiptest"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// phoneMarkers are the strings fieldtiptest.PhoneJPEG hides in metadata.
var phoneMarkers = []string{
	fieldtiptest.MakerNoteMarker, fieldtiptest.CommentMarker, fieldtiptest.MakeMarker,
	fieldtiptest.ModelMarker, fieldtiptest.DateTimeMarker,
}

// checkScrubbed returns the picture of a ScrubPhoto output, or what is
// wrong with it: it must be a baseline JPEG whose segments before the scan
// are only DQT, SOF0 and DHT (no APPn, no COM), that decodes, with its
// long side at most MaxPhotoSide.
func checkScrubbed(out []byte) (image.Image, error) {
	markers, err := fieldtiptest.JPEGMarkers(out)
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(markers, []byte{0xC0}) {
		return nil, fmt.Errorf("segments % X hold no baseline SOF0", markers)
	}
	for _, m := range markers {
		if m != 0xDB && m != 0xC0 && m != 0xC4 {
			return nil, fmt.Errorf("segments % X hold 0x%02X", markers, m)
		}
	}
	if !bytes.HasSuffix(out, []byte{0xFF, 0xD9}) {
		return nil, errors.New("bytes after EOI")
	}
	img, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	if b := img.Bounds(); max(b.Dx(), b.Dy()) > MaxPhotoSide || b.Dx() < 1 || b.Dy() < 1 {
		return nil, fmt.Errorf("%d×%d px", b.Dx(), b.Dy())
	}
	return img, nil
}

func mustScrub(t *testing.T, in []byte) image.Image {
	t.Helper()
	out, err := ScrubPhoto(in)
	if err != nil {
		t.Fatalf("ScrubPhoto = %v", err)
	}
	img, err := checkScrubbed(out)
	if err != nil {
		t.Fatalf("ScrubPhoto output: %v", err)
	}
	return img
}

// checkCorners fails t unless img's corners show want, within tol.
func checkCorners(t *testing.T, img image.Image, want [4]color.RGBA, tol int) {
	t.Helper()
	got := fieldtiptest.CornerColors(img)
	for c := range want {
		if !fieldtiptest.ColorNear(got[c], want[c], tol) {
			t.Errorf("corner %d (TL, TR, BL, BR) = %v, want %v ±%d", c, got[c], want[c], tol)
		}
	}
}

func TestScrubPhoneJPEG(t *testing.T) {
	in := fieldtiptest.PhoneJPEG(4000, 3000)
	markers, err := fieldtiptest.JPEGMarkers(in)
	if err != nil || !bytes.Contains(markers, []byte{0xE1}) || !bytes.Contains(markers, []byte{0xFE}) {
		t.Fatalf("JPEGMarkers(PhoneJPEG) = % X, %v; want APP1 and COM", markers, err)
	}
	for _, m := range phoneMarkers {
		if !bytes.Contains(in, []byte(m)) {
			t.Fatalf("PhoneJPEG lacks %q", m)
		}
	}
	// FIELD.md "Bad links": a phone photo is some MB; it must end near
	// 150 KiB. PhoneJPEG's texture is tuned to a phone's 3 MB or so.
	if len(in) < 2<<20 || len(in) > 5<<20 {
		t.Fatalf("PhoneJPEG(4000, 3000) is %d bytes, want a phone's 2 to 5 MiB", len(in))
	}

	out, err := ScrubPhoto(in)
	if err != nil {
		t.Fatal(err)
	}
	img, err := checkScrubbed(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range phoneMarkers {
		if bytes.Contains(out, []byte(m)) {
			t.Errorf("scrubbed photo holds %q", m)
		}
	}
	// Orientation 6: turned 90° clockwise, so portrait, red top right.
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 1600 {
		t.Errorf("scrubbed 4000×3000 orientation 6 to %d×%d px, want 1200×1600", b.Dx(), b.Dy())
	}
	checkCorners(t, img, fieldtiptest.OrientedCorners(6), 40)
	if c := fieldtiptest.CornerColors(img)[fieldtiptest.TopRight]; !fieldtiptest.ColorNear(c, fieldtiptest.QuadrantRed, 40) {
		t.Errorf("top right = %v, want red", c)
	}
	t.Logf("4000×3000 phone JPEG of %d bytes scrubbed to %d bytes (%.1f KiB)", len(in), len(out), float64(len(out))/1024)
	if len(out) < 100<<10 || len(out) > 200<<10 {
		t.Errorf("scrubbed photo is %d bytes, want about 150 KiB (100 to 200 KiB)", len(out))
	}
}

func TestScrubOrientations(t *testing.T) {
	// 0 is no tag's value and 9 is out of range: both leave the picture as
	// stored.
	for o := 0; o <= 9; o++ {
		t.Run(fmt.Sprint(o), func(t *testing.T) {
			img := mustScrub(t, fieldtiptest.PhoneJPEGOrientation(320, 240, o))
			w, h := 320, 240
			if o >= 5 && o <= 8 {
				w, h = h, w
			}
			if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
				t.Errorf("orientation %d gave %d×%d px, want %d×%d", o, b.Dx(), b.Dy(), w, h)
			}
			checkCorners(t, img, fieldtiptest.OrientedCorners(o), 40)
		})
	}
}

// quadrants is fieldtiptest's stored quadrant pattern without texture.
func quadrants(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	c := fieldtiptest.OrientedCorners(1)
	for y := range h {
		for x := range w {
			i := 0
			if x >= w/2 {
				i++
			}
			if y >= h/2 {
				i += 2
			}
			img.SetRGBA(x, y, c[i])
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pngChunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
}

// pngHeader is a PNG signature and an IHDR of w×h px, 8-bit RGB, and
// nothing else: DecodeConfig reads it, Decode fails.
func pngHeader(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	return append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
}

// withPNGChunks inserts chunks right after p's IHDR.
func withPNGChunks(p []byte, chunks ...[]byte) []byte {
	const afterIHDR = 8 + 8 + 13 + 4
	out := append([]byte{}, p[:afterIHDR]...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, p[afterIHDR:]...)
}

// withGIFComment inserts a comment extension holding text before g's
// first block after its global colour table.
func withGIFComment(g []byte, text string) []byte {
	at := 13
	if g[10]&0x80 != 0 {
		at += 3 << (g[10]&7 + 1)
	}
	ext := []byte{0x21, 0xFE, byte(len(text))}
	ext = append(append(ext, text...), 0)
	return append(append(append([]byte{}, g[:at]...), ext...), g[at:]...)
}

// gifHeader is a GIF with a logical screen of w×h px, no colour table and
// no frame: DecodeConfig reads it, Decode fails.
func gifHeader(w, h uint16) []byte {
	b := append([]byte("GIF89a"), byte(w), byte(w>>8), byte(h), byte(h>>8), 0, 0, 0)
	return append(b, 0x3B)
}

// webpSolid is a lossless WebP (VP8L) of w×h px (1 to 16384) of one
// colour: five single-symbol prefix codes, so no bit per pixel (WebP
// lossless bitstream spec, RFC 9649 §3 and §5).
func webpSolid(w, h int, c color.RGBA) []byte {
	var bits []bool
	put := func(v uint32, n int) {
		for i := range n {
			bits = append(bits, v>>i&1 == 1)
		}
	}
	put(uint32(w-1), 14)
	put(uint32(h-1), 14)
	put(0, 1) // alpha_is_used
	put(0, 3) // version
	put(0, 1) // no transform
	put(0, 1) // no colour cache
	put(0, 1) // no meta prefix codes
	// The prefix codes of green, red, blue, alpha and distance.
	for _, sym := range []uint8{c.G, c.R, c.B, 255, 0} {
		put(1, 1) // simple code
		put(0, 1) // one symbol
		put(1, 1) // of 8 bits
		put(uint32(sym), 8)
	}
	data := []byte{0x2F}
	for i := 0; i < len(bits); i += 8 {
		var b byte
		for j := 0; j < 8 && i+j < len(bits); j++ {
			if bits[i+j] {
				b |= 1 << j
			}
		}
		data = append(data, b)
	}
	if len(data)%2 == 1 {
		data = append(data, 0)
	}
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(4+8+len(data)))
	out = append(out, "WEBPVP8L"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	return append(out, data...)
}

// jpegClaiming is a small JPEG whose SOF0 is changed to claim w×h px.
func jpegClaiming(t testing.TB, w, h uint16) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	i := bytes.Index(out, []byte{0xFF, 0xC0})
	binary.BigEndian.PutUint16(out[i+5:], h)
	binary.BigEndian.PutUint16(out[i+7:], w)
	return out
}

func TestScrubOtherFormats(t *testing.T) {
	stored := fieldtiptest.OrientedCorners(1)
	red, blue := fieldtiptest.QuadrantRed, fieldtiptest.QuadrantBlue
	white, black := color.RGBA{255, 255, 255, 255}, color.RGBA{0, 0, 0, 255}

	pal := color.Palette{stored[0], stored[1], stored[2], stored[3]}
	paletted := image.NewPaletted(image.Rect(0, 0, 200, 100), pal)
	for y := range 100 {
		for x := range 200 {
			paletted.SetColorIndex(x, y, uint8(2*(y/50)+x/100))
		}
	}
	var g bytes.Buffer
	if err := gif.Encode(&g, paletted, nil); err != nil {
		t.Fatal(err)
	}
	anim := &gif.GIF{Delay: []int{10, 10}}
	for _, c := range []color.Color{red, blue} {
		frame := image.NewPaletted(image.Rect(0, 0, 64, 64), color.Palette(palette.Plan9))
		for i := range frame.Pix {
			frame.Pix[i] = uint8(color.Palette(palette.Plan9).Index(c))
		}
		anim.Image = append(anim.Image, frame)
	}
	var a bytes.Buffer
	if err := gif.EncodeAll(&a, anim); err != nil {
		t.Fatal(err)
	}
	// Left half transparent, right half opaque black.
	half := image.NewNRGBA(image.Rect(0, 0, 100, 100))
	for y := range 100 {
		for x := 50; x < 100; x++ {
			half.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 255})
		}
	}

	for _, tc := range []struct {
		name  string
		in    []byte
		w, h  int
		want  [4]color.RGBA
		stamp []string // strings in the input's metadata
	}{
		{"PNG", encodePNG(t, quadrants(300, 200)), 300, 200, stored, nil},
		{"PNG with text and eXIf chunks", withPNGChunks(encodePNG(t, quadrants(300, 200)),
			pngChunk("tEXt", []byte("Comment\x00"+fieldtiptest.CommentMarker)),
			pngChunk("eXIf", []byte("MM\x00\x2a"+fieldtiptest.MakerNoteMarker))),
			300, 200, stored, []string{fieldtiptest.CommentMarker, fieldtiptest.MakerNoteMarker}},
		{"large PNG", encodePNG(t, quadrants(2400, 1800)), 1600, 1200, stored, nil},
		{"transparent PNG", encodePNG(t, half), 100, 100, [4]color.RGBA{white, black, white, black}, nil},
		{"GIF with comment", withGIFComment(g.Bytes(), fieldtiptest.CommentMarker), 200, 100, stored, []string{fieldtiptest.CommentMarker}},
		{"animated GIF: first frame", a.Bytes(), 64, 64, [4]color.RGBA{red, red, red, red}, nil},
		{"WebP", webpSolid(40, 30, blue), 40, 30, [4]color.RGBA{blue, blue, blue, blue}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.stamp {
				if !bytes.Contains(tc.in, []byte(s)) {
					t.Fatalf("input lacks %q", s)
				}
			}
			out, err := ScrubPhoto(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			img, err := checkScrubbed(out)
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Errorf("scrubbed to %d×%d px, want %d×%d", b.Dx(), b.Dy(), tc.w, tc.h)
			}
			checkCorners(t, img, tc.want, 30)
			for _, s := range tc.stamp {
				if bytes.Contains(out, []byte(s)) {
					t.Errorf("scrubbed photo holds %q", s)
				}
			}
		})
	}
}

// TestScrubSizes checks the size rule at MaxPhotoSide−1, MaxPhotoSide and
// MaxPhotoSide+1 on either side: never upscaled, the long side brought to
// MaxPhotoSide, the short side rounded and at least 1 px.
func TestScrubSizes(t *testing.T) {
	for _, tc := range []struct{ w, h, wantW, wantH int }{
		{1, 1, 1, 1},
		{800, 600, 800, 600},
		{1599, 10, 1599, 10},
		{1600, 10, 1600, 10},
		{1601, 10, 1600, 10},
		{10, 1601, 10, 1600},
		{1600, 1200, 1600, 1200},
		{1601, 1000, 1600, 999}, // 999.38
		{3203, 2, 1600, 1},      // 0.999
		{6400, 1, 1600, 1},      // 0.25, at least 1
		{4032, 3024, 1600, 1200},
	} {
		img := image.NewGray(image.Rect(0, 0, tc.w, tc.h))
		out, err := ScrubPhoto(encodePNG(t, img))
		if err != nil {
			t.Errorf("ScrubPhoto(%d×%d PNG) = %v", tc.w, tc.h, err)
			continue
		}
		got, err := checkScrubbed(out)
		if err != nil {
			t.Errorf("ScrubPhoto(%d×%d PNG): %v", tc.w, tc.h, err)
			continue
		}
		if b := got.Bounds(); b.Dx() != tc.wantW || b.Dy() != tc.wantH {
			t.Errorf("ScrubPhoto(%d×%d PNG) is %d×%d px, want %d×%d", tc.w, tc.h, b.Dx(), b.Dy(), tc.wantW, tc.wantH)
		}
	}
}

func TestScrubRefuses(t *testing.T) {
	small := fieldtiptest.PhoneJPEGOrientation(64, 48, 6)
	var bmpFile, tiffFile bytes.Buffer
	if err := bmp.Encode(&bmpFile, quadrants(16, 16)); err != nil {
		t.Fatal(err)
	}
	if err := tiff.Encode(&tiffFile, quadrants(16, 16), nil); err != nil {
		t.Fatal(err)
	}
	atLimit := make([]byte, MaxPhotoInput)
	copy(atLimit, "\xff\xd8\xff")
	overLimit := append(atLimit, 0)

	for _, tc := range []struct {
		name  string
		in    []byte
		cause error // besides ErrNotScrubbable; nil: any
	}{
		{"empty", nil, nil},
		{"PDF", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"), nil},
		{"HEIC", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic\x00\x00\x01\x00meta"), nil},
		{"MP4", []byte("\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41\x00\x00\x00\x08free"), nil},
		{"QuickTime", []byte("\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  "), nil},
		{"text", []byte("Trucks leave the mine at 2am.\n"), nil},
		{"BMP, which imaging registers", bmpFile.Bytes(), nil},
		{"TIFF, which imaging registers", tiffFile.Bytes(), nil},
		{"JPEG cut in its header", small[:200], nil},
		{"JPEG cut in its scan", small[:len(small)-200], nil},
		{"JPEG SOI only", []byte("\xff\xd8\xff"), nil},
		{"PNG signature only", []byte("\x89PNG\r\n\x1a\n"), nil},
		{"PNG with bad IHDR checksum", append(pngHeader(10, 10)[:32], 0), nil},
		{"PNG of 100000×100000 px, no data", pngHeader(100000, 100000), errTooManyPixels},
		{"PNG of 80000001×1 px", pngHeader(80_000_001, 1), errTooManyPixels},
		{"PNG of 80000000×1 px, no data", pngHeader(80_000_000, 1), errTooMuchMemory}, // passes the pixel check
		{"PNG of 8000×8000 px, no data (issue 12: 512 MB)", pngHeader(8000, 8000), errTooMuchMemory},
		{"PNG of 20000×1 px, no data", pngHeader(20000, 1), nil}, // passes both checks, fails decoding
		{"JPEG of 65535×65535 px", jpegClaiming(t, 65535, 65535), errTooManyPixels},
		{"JPEG of 0 px wide", jpegClaiming(t, 0, 8), nil},
		{"GIF of 65535×65535 px", gifHeader(65535, 65535), errTooManyPixels},
		{"GIF of 0×0 px", gifHeader(0, 0), errEmptyPicture},
		{"GIF with no frame", gifHeader(16, 16), nil},
		{"WebP of 16384×16384 px", webpSolid(16384, 16384, color.RGBA{}), errTooManyPixels},
		{"WebP cut short", webpSolid(4, 4, color.RGBA{})[:22], nil},
		{"MaxPhotoInput bytes", atLimit, nil}, // passes the size check, fails decoding
		{"MaxPhotoInput+1 bytes", overLimit, errPhotoTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ScrubPhoto(tc.in)
			if err == nil {
				t.Fatalf("ScrubPhoto = %d bytes, want an error", len(out))
			}
			if !errors.Is(err, ErrNotScrubbable) {
				t.Errorf("ScrubPhoto = %v, want ErrNotScrubbable", err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("ScrubPhoto = %v, want %v", err, tc.cause)
			}
			if tc.cause == nil && (errors.Is(err, errTooManyPixels) || errors.Is(err, errPhotoTooLarge)) {
				t.Errorf("ScrubPhoto = %v, want no size refusal", err)
			}
			t.Log(err)
		})
	}
}

func TestSniffPhoto(t *testing.T) {
	for _, tc := range []struct {
		in     string
		kind   string
		format photoFormat
	}{
		{"\xff\xd8\xff\xe1", "JPEG", formatJPEG},
		{"\x89PNG\r\n\x1a\n", "PNG", formatPNG},
		{"GIF87a", "GIF", formatGIF},
		{"GIF89a", "GIF", formatGIF},
		{"RIFF\x00\x00\x00\x00WEBPVP8 ", "WebP", formatWebP},
		{"", "empty file", formatNone},
		{"\xff\xd8", "file of unknown type", formatNone},
		{"\x89PNG\r\n\x1a", "file of unknown type", formatNone},
		{"GIF88a", "text", formatNone},
		{"RIFF\x00\x00\x00\x00AVI LIST", "AVI video", formatNone},
		{"\x00\x00\x00\x18ftypheic", "HEIC photo", formatNone},
		{"\x00\x00\x00\x18ftypmif1", "HEIF image", formatNone},
		{"\x00\x00\x00\x18ftypavif", "AVIF image", formatNone},
		{"\x00\x00\x00\x18ftypmp42", "MP4 video", formatNone},
		{"\x00\x00\x00\x18ftypqt  ", "QuickTime video", formatNone},
		{"\x00\x00\x00\x18ftypzzzz", `ISO media file of brand "zzzz"`, formatNone},
		{"%PDF-1.4", "PDF document", formatNone},
		{"II*\x00", "TIFF or camera raw image", formatNone},
		{"MM\x00*", "TIFF or camera raw image", formatNone},
		{"BM", "BMP image", formatNone},
		{"\x1a\x45\xdf\xa3", "Matroska or WebM video", formatNone},
		{"PK\x03\x04", "ZIP archive or office document", formatNone},
		{"hello\r\n\tworld ünïcode", "text", formatNone},
		{"cut rune \xe4\xb8", "text", formatNone},
		{"bad \xff byte", "file of unknown type", formatNone},
		{"nul \x00 byte", "file of unknown type", formatNone},
	} {
		kind, format := sniffPhoto([]byte(tc.in))
		if kind != tc.kind || format != tc.format {
			t.Errorf("sniffPhoto(%q) = %q, %d, want %q, %d", tc.in, kind, format, tc.kind, tc.format)
		}
	}
}

func TestJPEGMarkers(t *testing.T) {
	seg := func(m byte, payload string) string {
		return string([]byte{0xFF, m, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}) + payload
	}
	const soi, sos = "\xff\xd8", "\xff\xda"
	for _, tc := range []struct {
		name string
		in   string
		want []byte // nil: an error
	}{
		{"no segments", soi + sos, []byte{}},
		{"APP1 and COM", soi + seg(0xE1, "Exif\x00\x00") + seg(0xFE, "hi") + sos, []byte{0xE1, 0xFE}},
		{"fill bytes and TEM", soi + "\xff\xff" + seg(0xDB, "") + "\xff\x01" + sos, []byte{0xDB, 0x01}},
		{"empty", "", nil},
		{"no SOI", seg(0xE1, "x") + sos, nil},
		{"no SOS", soi + seg(0xE1, "x"), nil},
		{"EOI before SOS", soi + "\xff\xd9", nil},
		{"RST before SOS", soi + "\xff\xd0" + sos, nil},
		{"junk between segments", soi + "\x00" + sos, nil},
		{"length under 2", soi + "\xff\xe1\x00\x01" + sos, nil},
		{"length past the end", soi + "\xff\xe1\x00\x09abc", nil},
		{"cut in the length", soi + "\xff\xe1\x00", nil},
		{"only fill bytes", soi + "\xff\xff\xff", nil},
	} {
		got, err := fieldtiptest.JPEGMarkers([]byte(tc.in))
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s: JPEGMarkers = % X, want an error", tc.name, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: JPEGMarkers = % X, %v; want % X", tc.name, got, err, tc.want)
		}
	}
}

// FuzzScrubPhoto: ScrubPhoto never panics; it returns either an error
// wrapping ErrNotScrubbable or a baseline JPEG without APPn or COM
// segments that decodes, with its long side at most MaxPhotoSide.
func FuzzScrubPhoto(f *testing.F) {
	stored := fieldtiptest.OrientedCorners(1)
	pal := color.Palette{stored[0], stored[1], stored[2], stored[3]}
	var g bytes.Buffer
	if err := gif.Encode(&g, image.NewPaletted(image.Rect(0, 0, 8, 8), pal), nil); err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{
		fieldtiptest.PhoneJPEGOrientation(24, 16, 6),
		fieldtiptest.PhoneJPEGOrientation(17, 9, 8),
		encodePNG(f, quadrants(12, 8)),
		encodePNG(f, image.NewNRGBA(image.Rect(0, 0, 3, 5))),
		g.Bytes(),
		webpSolid(5, 3, stored[0]),
		pngHeader(100000, 100000),
		jpegClaiming(f, 65535, 65535),
		[]byte("%PDF-1.7\n"),
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := ScrubPhoto(in)
		if err != nil {
			if out != nil || !errors.Is(err, ErrNotScrubbable) {
				t.Fatalf("ScrubPhoto = %d bytes, %v; want nil and ErrNotScrubbable", len(out), err)
			}
			return
		}
		if _, err := checkScrubbed(out); err != nil {
			t.Fatalf("ScrubPhoto output: %v", err)
		}
	})
}
