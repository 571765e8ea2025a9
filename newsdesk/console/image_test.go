package console

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"fieldtip/internal/testkit/fieldtiptest"
)

func testPNG(t testing.TB, w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withTextChunk inserts a tEXt chunk (metadata) after a PNG's IHDR.
func withTextChunk(p []byte, text string) []byte {
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(text)))
	chunk = append(chunk, "tEXt"+text...)
	chunk = append(chunk, 0, 0, 0, 0) // a wrong CRC: decoders that skip it
	out := append([]byte{}, p[:33]...)
	return append(append(out, chunk...), p[33:]...)
}

// TestReencode: photos come out as new pixels in a new file: the same
// size, none of the source's bytes, metadata or trailing data; what is
// not an image, or too large, is refused before it is decoded.
func TestReencode(t *testing.T) {
	photo := fieldtiptest.PhoneJPEG(80, 60) // with EXIF (GPS, camera)
	trailing := append(append([]byte{}, photo...), []byte("TRAILING-SECRET")...)
	var g bytes.Buffer
	if err := gif.Encode(&g, image.NewPaletted(image.Rect(0, 0, 5, 4), []color.Color{color.Black, color.White}), nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		in    []byte
		ctype string
		w, h  int
	}{
		{"jpeg with exif", photo, "image/jpeg", 80, 60},
		{"jpeg with trailing data", trailing, "image/jpeg", 80, 60},
		{"png", testPNG(t, 7, 3), "image/png", 7, 3},
		{"gif", g.Bytes(), "image/png", 5, 4},
	} {
		out, ctype, err := Reencode(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if ctype != c.ctype || bytes.Equal(out, c.in) || bytes.Contains(out, []byte("Exif")) || bytes.Contains(out, []byte("TRAILING")) {
			t.Errorf("%s: %s, %d bytes, carrying the source's bytes", c.name, ctype, len(out))
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || cfg.Width != c.w || cfg.Height != c.h || "image/"+format != ctype {
			t.Errorf("%s: the output is %+v %s, %v", c.name, cfg, format, err)
		}
	}
	huge := testPNG(t, 1, 1)
	binary.BigEndian.PutUint32(huge[16:], 100000) // IHDR width
	binary.BigEndian.PutUint32(huge[20:], 100000) // and height
	for name, in := range map[string][]byte{"pdf": pdf("x"), "empty": nil, "text": []byte("<svg onload=alert(1)>"), "huge": huge, "truncated jpeg": photo[:len(photo)/2]} {
		if out, _, err := Reencode(in); !errors.Is(err, ErrNotImage) && err == nil {
			t.Errorf("%s: Reencode = %d bytes, %v; want ErrNotImage", name, len(out), err)
		}
		if name != "truncated jpeg" && IsImage(in) {
			t.Errorf("%s: IsImage", name)
		}
	}
}

// FuzzReencode: whatever the bytes, Reencode fails with ErrNotImage or
// an error, or returns a PNG or JPEG of the size the input's header says.
func FuzzReencode(f *testing.F) {
	f.Add(fieldtiptest.PhoneJPEG(16, 8))
	f.Add(testPNG(f, 3, 2))
	f.Add(withTextChunk(testPNG(f, 2, 2), "Comment\x00secret"))
	var j bytes.Buffer
	jpeg.Encode(&j, image.NewGray(image.Rect(0, 0, 4, 4)), nil)
	f.Add(j.Bytes())
	f.Add([]byte("%PDF-1.4"))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, want, err := sniffImage(in)
		out, ctype, rerr := Reencode(in)
		if rerr != nil {
			return
		}
		if err != nil {
			t.Fatalf("Reencode accepted what sniffImage refused: %v", err)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || "image/"+format != ctype || cfg.Width != want.Width || cfg.Height != want.Height {
			t.Fatalf("Reencode = %s %+v, %v; the input says %+v", ctype, cfg, err, want)
		}
	})
}
