package fieldtiptest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// Markers that PhoneJPEG hides in a photo's metadata; a scrubbed photo must
// hold none of them.
const (
	// MakerNoteMarker is the content of the EXIF MakerNote (tag 0x927C).
	MakerNoteMarker = "FIELDTIP-MAKERNOTE-MARKER"
	// CommentMarker is the content of the JPEG COM segment.
	CommentMarker = "FIELDTIP-COMMENT-MARKER"
	// MakeMarker and ModelMarker are the EXIF Make (0x010F) and Model
	// (0x0110).
	MakeMarker  = "FIELDTIP-MAKE-MARKER"
	ModelMarker = "FIELDTIP-MODEL-MARKER"
	// DateTimeMarker is the EXIF DateTimeOriginal (0x9003).
	DateTimeMarker = "2024:05:12 15:30:12"
)

// The quadrant colours of PhoneJPEG's picture as stored, before
// orientation: red top left, green top right, blue bottom left, white
// bottom right. PhoneJPEG's texture moves a patch's mean by less than 30
// per channel; the colours are at least 130 apart in some channel.
var (
	QuadrantRed   = color.RGBA{R: 200, G: 40, B: 40, A: 255}
	QuadrantGreen = color.RGBA{R: 40, G: 170, B: 40, A: 255}
	QuadrantBlue  = color.RGBA{R: 40, G: 40, B: 200, A: 255}
	QuadrantWhite = color.RGBA{R: 230, G: 230, B: 230, A: 255}
)

// Corners of a picture, the order of the arrays below.
const (
	TopLeft = iota
	TopRight
	BottomLeft
	BottomRight
)

// storedCorners is the picture as stored, by corner.
var storedCorners = [4]color.RGBA{TopLeft: QuadrantRed, TopRight: QuadrantGreen, BottomLeft: QuadrantBlue, BottomRight: QuadrantWhite}

// OrientedCorners returns the colours that a viewer applying the EXIF
// orientation (1 to 8) shows at each corner of PhoneJPEGOrientation's
// picture, indexed by TopLeft, TopRight, BottomLeft, BottomRight. It
// follows the tag's definition (EXIF 2.32 §4.6.4, TIFF 6.0 "Orientation":
// which visual side the stored 0th row and 0th column are), not an image
// library; for example 6 (0th row on the right, 0th column at the top)
// shows red, stored top left, at the top right. Other values show the
// picture as stored.
func OrientedCorners(orientation int) [4]color.RGBA {
	var out [4]color.RGBA
	for c := range out {
		x, y := c%2, c/2 // the displayed corner, 0 or 1 on each axis
		var sx, sy int   // the stored corner shown there
		switch orientation {
		case 2: // 0th row top, 0th column right: mirrored
			sx, sy = 1-x, y
		case 3: // 0th row bottom, 0th column right: turned 180°
			sx, sy = 1-x, 1-y
		case 4: // 0th row bottom, 0th column left: flipped
			sx, sy = x, 1-y
		case 5: // 0th row left, 0th column top: transposed
			sx, sy = y, x
		case 6: // 0th row right, 0th column top: turned 90° clockwise
			sx, sy = y, 1-x
		case 7: // 0th row right, 0th column bottom: transversed
			sx, sy = 1-y, 1-x
		case 8: // 0th row left, 0th column bottom: turned 90° counter-clockwise
			sx, sy = 1-y, x
		default: // 1, or a value a viewer ignores
			sx, sy = x, y
		}
		out[c] = storedCorners[sy*2+sx]
	}
	return out
}

// CornerColors returns the mean colour of a patch near each corner of img,
// indexed by TopLeft, TopRight, BottomLeft, BottomRight: a square of a
// tenth of the short side, inset by a twentieth of the short side, so that
// JPEG's blur at the quadrant borders and the picture's edge stay out.
func CornerColors(img image.Image) [4]color.RGBA {
	b := img.Bounds()
	short := min(b.Dx(), b.Dy())
	side, inset := max(short/10, 1), short/20
	var out [4]color.RGBA
	for c := range out {
		x0, y0 := b.Min.X+inset, b.Min.Y+inset
		if c%2 == 1 {
			x0 = b.Max.X - inset - side
		}
		if c/2 == 1 {
			y0 = b.Max.Y - inset - side
		}
		var r, g, bl, n uint64
		for y := y0; y < y0+side; y++ {
			for x := x0; x < x0+side; x++ {
				cr, cg, cb, _ := img.At(x, y).RGBA()
				r, g, bl, n = r+uint64(cr>>8), g+uint64(cg>>8), bl+uint64(cb>>8), n+1
			}
		}
		out[c] = color.RGBA{R: uint8(r / n), G: uint8(g / n), B: uint8(bl / n), A: 255}
	}
	return out
}

// ColorNear reports whether a and b differ by at most tol in each of red,
// green and blue.
func ColorNear(a, b color.RGBA, tol int) bool {
	d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
	return d(a.R, b.R) <= tol && d(a.G, b.G) <= tol && d(a.B, b.B) <= tol
}

// PhoneJPEG returns a JPEG of w×h px that looks like a phone camera's: an
// APP1 Exif segment (a hand-built little-endian TIFF structure) with
// Orientation 6, Make and Model (MakeMarker, ModelMarker), an Exif IFD with
// DateTimeOriginal and a MakerNote (0x927C) holding MakerNoteMarker, and a
// GPS IFD (GPSLatitude and GPSLongitude with their refs); then a COM
// segment holding CommentMarker. The picture is a quadrant pattern as
// stored, before orientation: top left QuadrantRed, top right
// QuadrantGreen, bottom left QuadrantBlue, bottom right QuadrantWhite,
// under a deterministic texture of detail at all scales and per-pixel
// grain, so that it compresses like a photo: 4000×3000 px is about 3 MB,
// about 150 KiB once scrubbed. It panics if w or h is not 1 to 65535.
func PhoneJPEG(w, h int) []byte { return PhoneJPEGOrientation(w, h, 6) }

// PhoneJPEGOrientation is PhoneJPEG with the given EXIF Orientation value,
// written as given (EXIF defines 1 to 8).
func PhoneJPEGOrientation(w, h, orientation int) []byte {
	if w < 1 || h < 1 || w >= 1<<16 || h >= 1<<16 {
		panic(fmt.Sprintf("fieldtiptest: PhoneJPEG of %d×%d px", w, h))
	}
	var enc bytes.Buffer
	// Phones write quality 90 to 95; image/jpeg subsamples chroma 4:2:0
	// like them.
	if err := jpeg.Encode(&enc, texturedQuadrants(w, h), &jpeg.Options{Quality: 92}); err != nil {
		panic(err)
	}
	var out bytes.Buffer
	out.Write([]byte{0xFF, 0xD8}) // SOI
	writeSegment(&out, 0xE1, append([]byte("Exif\x00\x00"), phoneEXIF(uint16(orientation))...))
	writeSegment(&out, 0xFE, []byte(CommentMarker))
	out.Write(enc.Bytes()[2:]) // image/jpeg's segments after its SOI
	return out.Bytes()
}

func writeSegment(b *bytes.Buffer, marker byte, payload []byte) {
	if len(payload)+2 > math.MaxUint16 {
		panic("fieldtiptest: JPEG segment too long")
	}
	b.Write([]byte{0xFF, marker})
	b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(payload)+2)))
	b.Write(payload)
}

// TIFF 6.0 field types.
const (
	tiffByte      = 1
	tiffASCII     = 2
	tiffShort     = 3
	tiffLong      = 4
	tiffRational  = 5
	tiffUndefined = 7
)

// tiffField is one IFD entry; data is its value, already in little-endian
// byte order (count values of the type's size; a count of 0 is taken from
// len(data) for the one-byte types and SHORT).
type tiffField struct {
	tag, typ uint16
	count    uint32
	data     []byte
}

func asciiField(tag uint16, s string) tiffField {
	return tiffField{tag, tiffASCII, uint32(len(s) + 1), append([]byte(s), 0)}
}

func rationalField(tag uint16, v ...uint32) tiffField {
	var d []byte
	for _, x := range v {
		d = binary.LittleEndian.AppendUint32(d, x)
	}
	return tiffField{tag, tiffRational, uint32(len(v) / 2), d}
}

func longField(tag uint16, v uint32) tiffField {
	return tiffField{tag, tiffLong, 1, binary.LittleEndian.AppendUint32(nil, v)}
}

// ifdSize is the bytes an IFD takes with its out-of-line values.
func ifdSize(fields []tiffField) int {
	n := 2 + 12*len(fields) + 4
	for _, f := range fields {
		if len(f.data) > 4 {
			n += len(f.data) + len(f.data)%2
		}
	}
	return n
}

// appendIFD appends an IFD that starts at offset off of the TIFF
// structure, its values longer than 4 bytes right after it (at even
// offsets), and no next IFD.
func appendIFD(b []byte, off int, fields []tiffField) []byte {
	le := binary.LittleEndian
	b = le.AppendUint16(b, uint16(len(fields)))
	data := off + 2 + 12*len(fields) + 4
	var extra []byte
	for _, f := range fields {
		if f.count == 0 {
			f.count = uint32(len(f.data))
			if f.typ == tiffShort {
				f.count /= 2
			}
		}
		b = le.AppendUint16(b, f.tag)
		b = le.AppendUint16(b, f.typ)
		b = le.AppendUint32(b, f.count)
		if len(f.data) <= 4 {
			b = append(b, f.data...)
			b = append(b, make([]byte, 4-len(f.data))...)
			continue
		}
		b = le.AppendUint32(b, uint32(data+len(extra)))
		extra = append(extra, f.data...)
		if len(f.data)%2 == 1 {
			extra = append(extra, 0)
		}
	}
	b = le.AppendUint32(b, 0) // no next IFD
	return append(b, extra...)
}

// phoneEXIF returns a little-endian TIFF structure (EXIF 2.32 §4.5): IFD0,
// then the Exif IFD, then the GPS IFD; fields in ascending tag order.
func phoneEXIF(orientation uint16) []byte {
	const ifd0Off = 8
	exifFields := []tiffField{
		asciiField(0x9003, DateTimeMarker),                  // DateTimeOriginal
		{0x927C, tiffUndefined, 0, []byte(MakerNoteMarker)}, // MakerNote
	}
	gpsFields := []tiffField{
		{0x0000, tiffByte, 0, []byte{2, 3, 0, 0}},       // GPSVersionID
		asciiField(0x0001, "N"),                         // GPSLatitudeRef
		rationalField(0x0002, 41, 1, 23, 1, 2412, 100),  // GPSLatitude 41°23'24.12"
		asciiField(0x0003, "E"),                         // GPSLongitudeRef
		rationalField(0x0004, 128, 1, 10, 1, 4836, 100), // GPSLongitude 128°10'48.36"
	}
	ifd0 := func(exifOff, gpsOff int) []tiffField {
		return []tiffField{
			asciiField(0x010F, MakeMarker),  // Make
			asciiField(0x0110, ModelMarker), // Model
			// Orientation, as imaging and phones write it: one SHORT.
			{0x0112, tiffShort, 0, binary.LittleEndian.AppendUint16(nil, orientation)},
			longField(0x8769, uint32(exifOff)), // ExifIFDPointer
			longField(0x8825, uint32(gpsOff)),  // GPSInfoIFDPointer
		}
	}
	exifOff := ifd0Off + ifdSize(ifd0(0, 0))
	gpsOff := exifOff + ifdSize(exifFields)
	b := []byte{'I', 'I', 42, 0, ifd0Off, 0, 0, 0} // TIFF header: byte order, 42, IFD0 offset
	b = appendIFD(b, ifd0Off, ifd0(exifOff, gpsOff))
	b = appendIFD(b, exifOff, exifFields)
	return appendIFD(b, gpsOff, gpsFields)
}

// texturedQuadrants draws the quadrant pattern under a texture: value
// noise in octaves from 1/8 of the long side down to 4 px, the same on
// every channel (light and shade), plus per-pixel grain on each channel
// (sensor noise), all from fixed seeds.
func texturedQuadrants(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	type octave struct {
		period float64 // px between lattice points
		amp    float64 // largest offset, in levels of 255
		n      int     // lattice points per row
		grid   []float32
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var octs []*octave
	for _, o := range []struct{ period, amp float64 }{
		{float64(max(w, h)) / 8, 14}, {64, 10}, {16, 12}, {4, 5},
	} {
		if o.period < 2 {
			continue
		}
		n, m := int(float64(w)/o.period)+2, int(float64(h)/o.period)+2
		grid := make([]float32, n*m)
		for i := range grid {
			grid[i] = float32(rng.Float64()*2 - 1)
		}
		octs = append(octs, &octave{o.period, o.amp, n, grid})
	}
	const grain = 10 // largest per-pixel offset, in levels
	smooth := func(t float64) float64 { return t * t * (3 - 2*t) }
	for y := range h {
		for x := range w {
			base := storedCorners[btoi(y >= h/2)*2+btoi(x >= w/2)]
			var shade float64
			for _, o := range octs {
				fx, fy := float64(x)/o.period, float64(y)/o.period
				ix, iy := int(fx), int(fy)
				tx, ty := smooth(fx-float64(ix)), smooth(fy-float64(iy))
				g := o.grid[iy*o.n+ix:]
				top := float64(g[0]) + (float64(g[1])-float64(g[0]))*tx
				bot := float64(g[o.n]) + (float64(g[o.n+1])-float64(g[o.n]))*tx
				shade += (top + (bot-top)*ty) * o.amp
			}
			hsh := mix(uint64(y)<<32 | uint64(x))
			i := img.PixOffset(x, y)
			for c, v := range [3]uint8{base.R, base.G, base.B} {
				g := float64(int(hsh>>(8*c))&0xFF-128) * grain / 128
				img.Pix[i+c] = uint8(max(0, min(255, math.Round(float64(v)+shade+g))))
			}
			img.Pix[i+3] = 0xFF
		}
	}
	return img
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mix is SplitMix64's finalizer: a fixed, well-spread hash of a pixel's
// coordinates.
func mix(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// JPEGMarkers returns the marker bytes (0xE1 for APP1, 0xFE for COM, 0xC0
// for a baseline SOF, …) of the segments of the JPEG b between its SOI and
// its first SOS, in order, neither included. It follows ITU T.81 §B.1.1:
// fill bytes 0xFF before a marker are skipped and TEM (0x01) has no
// length. It fails if b does not start with SOI, if a segment is cut
// short or has a length under 2, if other bytes stand where a marker
// should, or if no SOS comes.
func JPEGMarkers(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, errors.New("jpeg markers: no SOI at the start")
	}
	var out []byte
	for i := 2; ; {
		if i >= len(b) {
			return nil, errors.New("jpeg markers: no SOS before the end")
		}
		if b[i] != 0xFF {
			return nil, fmt.Errorf("jpeg markers: byte 0x%02X at offset %d where a marker should be", b[i], i)
		}
		for i < len(b) && b[i] == 0xFF {
			i++
		}
		if i >= len(b) {
			return nil, errors.New("jpeg markers: no SOS before the end")
		}
		m := b[i]
		i++
		switch {
		case m == 0xDA:
			return out, nil
		case m == 0x01:
			out = append(out, m)
			continue
		case m == 0x00, m == 0xD8, m == 0xD9, m >= 0xD0 && m <= 0xD7:
			return nil, fmt.Errorf("jpeg markers: marker 0x%02X at offset %d before the scan", m, i-1)
		}
		if i+2 > len(b) {
			return nil, fmt.Errorf("jpeg markers: segment 0x%02X at offset %d cut short", m, i-2)
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 || i+n > len(b) {
			return nil, fmt.Errorf("jpeg markers: segment 0x%02X at offset %d of length %d, %d bytes remain", m, i-2, n, len(b)-i)
		}
		out = append(out, m)
		i += n
	}
}
