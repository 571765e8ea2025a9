package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"unicode"
	"unicode/utf8"

	"github.com/disintegration/imaging"
	"golang.org/x/image/webp"
)

// Photo scrubbing limits (FIELD.md, "Bad links" and "Photo metadata").
const (
	// MaxPhotoSide is the long side of a scrubbed photo, in pixels: a
	// 1600×1200 JPEG at PhotoQuality is about 150 KiB, about 26 s at
	// 50 kbit/s.
	MaxPhotoSide = 1600
	// PhotoQuality is the JPEG quality (1 to 100) of a scrubbed photo.
	PhotoQuality = 70
	// MaxPhotoInput is the most bytes ScrubPhoto accepts; callers reading
	// an attachment read at most this many bytes plus one.
	MaxPhotoInput = 64 << 20
	// MaxPhotoPixels caps width×height, read from the file's header before
	// anything is decoded: a small file can claim a huge picture
	// (decompression bomb), and decoding allocates 1 to 8 bytes per pixel.
	MaxPhotoPixels = 80_000_000
	// MaxPhotoMemory caps what scrubbing one photo may hold at once: the
	// decoded picture and the downscaling's intermediate rows, estimated
	// from the header (format, size, color model, JPEG sampling and
	// progressive mode) before anything is decoded. A cheap phone has 1 to
	// 2 GiB for everything it runs (issue 12: an 8000×8000 PNG took
	// 512 MB). It admits a 48-megapixel phone JPEG (4:2:0, baseline) and
	// a 24-megapixel 8-bit PNG; TestScrubMemory measures the real use.
	MaxPhotoMemory = 128 << 20
)

// ErrNotScrubbable is wrapped by every error ScrubPhoto returns: the file
// cannot be sent as a scrubbed photo.
var ErrNotScrubbable = errors.New("cannot scrub this file: only JPEG, PNG, GIF and WebP photos are re-encoded")

// Causes of a refusal besides an unknown type, wrapped beside
// ErrNotScrubbable.
var (
	errPhotoTooLarge = errors.New("photo too large to scrub")
	errTooManyPixels = errors.New("too many pixels to decode safely")
	errTooMuchMemory = errors.New("more memory than fieldtip allows itself on a phone: scale the picture down (or take a screenshot of it) first")
	errEmptyPicture  = errors.New("no pixels")
)

// photoFormat is a format ScrubPhoto decodes.
type photoFormat int

const (
	formatNone photoFormat = iota
	formatJPEG
	formatPNG
	formatGIF
	formatWebP
)

// ScrubPhoto returns data re-encoded so that nothing but the picture
// remains. Every error it returns wraps ErrNotScrubbable and names the
// type it detected or what was wrong.
//
// It decodes a JPEG, PNG, GIF or WebP, recognized by its first bytes (never
// by a file name); an animated GIF gives its first frame only. It applies
// the EXIF Orientation of a JPEG, read from its first APP1 segment, where
// phones write it (Go's decoder ignores it, FIELD.md "Photo metadata");
// other formats are taken as stored. It composites transparency
// onto white, downscales to at most MaxPhotoSide on the long side (never
// upscales) and encodes a baseline JPEG at PhotoQuality holding no metadata
// segment: no APP0 to APP15 (EXIF, GPS, maker notes, XMP, ICC profiles,
// thumbnails) and no COM. Files over MaxPhotoInput bytes or whose header
// claims over MaxPhotoPixels pixels are refused before decoding.
//
// It refuses, from the header, a picture whose scrubbing would hold more
// than MaxPhotoMemory (checkPhotoHeader), and turns the picture after
// downscaling it. A 12-megapixel phone JPEG allocates 44 MiB in all, 52
// MiB when it must be turned (90 MiB before issue 12); a 12-megapixel PNG
// 73 MiB (BenchmarkScrubMemory).
//
// Scrubbing removes metadata, not the picture's content; it does not
// reliably remove the sensor's noise pattern, so a scrubbed photo must
// still not be published as received.
func ScrubPhoto(data []byte) ([]byte, error) {
	if len(data) > MaxPhotoInput {
		return nil, refusal(fmt.Sprintf("%d bytes, more than %d", len(data), MaxPhotoInput), errPhotoTooLarge)
	}
	kind, format := sniffPhoto(data)
	if format == formatNone {
		return nil, fmt.Errorf("scrub photo: %s: %w", kind, ErrNotScrubbable)
	}
	if _, err := checkPhotoHeader(kind, format, data); err != nil {
		return nil, err
	}
	orientation := 1
	if format == formatJPEG {
		orientation = exifOrientation(data)
	}
	img, err := decodePhoto(format, data)
	if err != nil {
		return nil, refusal(kind+" does not decode", err)
	}
	if b := img.Bounds(); b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, refusal(fmt.Sprintf("%s decoded to %d×%d px", kind, b.Dx(), b.Dy()), errEmptyPicture)
	}
	// Shrink first, then turn: turning the small picture costs a fraction
	// of turning the full one (a 12-megapixel photo turned in full took
	// 48 MB more).
	img = flatten(orient(shrink(img), orientation))
	var buf bytes.Buffer
	// imaging.Encode hands an opaque NRGBA to image/jpeg as RGBA (the same
	// bytes), which takes the encoder's fast path. image/jpeg writes SOI,
	// DQT, SOF0, DHT, SOS and EOI only.
	if err := imaging.Encode(&buf, img, imaging.JPEG, imaging.JPEGQuality(PhotoQuality)); err != nil {
		return nil, refusal("JPEG encoding failed", err)
	}
	return buf.Bytes(), nil
}

// checkPhotoHeader decodes a photo's header and refuses, before anything
// is decoded, a picture with no pixels, over MaxPhotoPixels, or whose
// scrubbing would hold more than MaxPhotoMemory.
func checkPhotoHeader(kind string, format photoFormat, data []byte) (image.Config, error) {
	cfg, err := decodeConfig(format, data)
	if err != nil {
		return cfg, refusal(kind+" header does not decode", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cfg, refusal(fmt.Sprintf("%s of %d×%d px", kind, cfg.Width, cfg.Height), errEmptyPicture)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxPhotoPixels {
		return cfg, refusal(fmt.Sprintf("%s of %d×%d px, more than %d px", kind, cfg.Width, cfg.Height, MaxPhotoPixels), errTooManyPixels)
	}
	if need := scrubMemory(format, cfg, data); need > MaxPhotoMemory {
		return cfg, refusal(fmt.Sprintf("%s of %d×%d px needs about %d MiB to scrub, more than %d MiB", kind, cfg.Width, cfg.Height, need>>20, MaxPhotoMemory>>20), errTooMuchMemory)
	}
	return cfg, nil
}

// scrubMemory estimates, in bytes, the most ScrubPhoto holds at once for
// a picture: the decoded picture (Go's decoders allocate it whole) and the
// first pass of the downscaling, an NRGBA of the new width by the old
// height (imaging.Resize). The picture is freed before the encoder runs.
func scrubMemory(format photoFormat, cfg image.Config, data []byte) int64 {
	w, h := int64(cfg.Width), int64(cfg.Height)
	var perPixel float64
	switch format {
	case formatJPEG:
		perPixel = jpegDecodeBytesPerPixel(data)
	case formatPNG:
		perPixel = 4
		switch cfg.ColorModel {
		case color.GrayModel, color.AlphaModel:
			perPixel = 1
		case color.Gray16Model, color.Alpha16Model:
			perPixel = 2
		case color.RGBA64Model, color.NRGBA64Model:
			perPixel = 8
		default:
			if _, ok := cfg.ColorModel.(color.Palette); ok {
				perPixel = 1
			}
		}
	case formatGIF:
		perPixel = 1 // paletted; the first frame only
	case formatWebP:
		perPixel = 4 // lossless decodes to NRGBA; lossy to YCbCr (1.5), and alpha
	}
	decoded := int64(perPixel * float64(w) * float64(h))
	long := max(w, h)
	resize := int64(0)
	if long > MaxPhotoSide {
		newW := (w*MaxPhotoSide + long - 1) / long
		resize = 4 * newW * h
	}
	return decoded + resize
}

// jpegDecodeBytesPerPixel reads a JPEG's frame header (SOF) and returns
// the bytes per pixel image/jpeg allocates to decode it: one per
// component sample, at each component's sampling, and four more per sample
// for the coefficients a progressive JPEG keeps. A header it cannot read
// counts as three full-resolution components, progressive.
func jpegDecodeBytesPerPixel(data []byte) float64 {
	const unknown = 3 * (1 + 4)
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xFF {
			return unknown
		}
		marker := data[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		if n < 2 || i+2+n > len(data) {
			return unknown
		}
		seg := data[i+4 : i+2+n]
		switch marker {
		case 0xC0, 0xC1, 0xC2: // baseline, extended, progressive
			if len(seg) < 6 {
				return unknown
			}
			comps := int(seg[5])
			if comps < 1 || len(seg) < 6+3*comps {
				return unknown
			}
			hmax, vmax := 1, 1
			for c := range comps {
				hv := seg[6+3*c+1]
				hmax, vmax = max(hmax, int(hv>>4)), max(vmax, int(hv&15))
			}
			var samples float64
			for c := range comps {
				hv := seg[6+3*c+1]
				hs, vs := max(1, int(hv>>4)), max(1, int(hv&15))
				samples += float64(hs*vs) / float64(hmax*vmax)
			}
			if comps == 4 {
				// CMYK or YCCK: decoded as YCbCr plus a black plane,
				// then converted to a 4-byte-per-pixel CMYK picture.
				samples += 4
			}
			if marker == 0xC2 {
				samples *= 1 + 4 // a block of 64 int32 coefficients per 8×8 samples
			}
			return samples
		case 0xDA: // start of scan before any frame header
			return unknown
		}
		i += 2 + n
	}
	return unknown
}

// exifOrientation returns the EXIF Orientation (1 to 8) of a JPEG, read
// from its first APP1 segment holding EXIF (EXIF 2.32, tag 0x0112 of
// IFD0), where phones write it; 1 (as stored) when there is none or it
// does not parse. Go's decoder ignores it (FIELD.md, "Photo metadata").
func exifOrientation(data []byte) int {
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xFF {
			return 1
		}
		marker := data[i+1]
		if marker == 0xFF {
			i++
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // scan or end: no more headers
			return 1
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		if n < 2 || i+2+n > len(data) {
			return 1
		}
		seg := data[i+4 : i+2+n]
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return tiffOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

// tiffOrientation reads tag 0x0112 (a SHORT, count 1) of IFD0 of a TIFF
// structure, as EXIF stores it.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return 1
	}
	ifd := int64(order.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 1
	}
	count := int64(order.Uint16(t[ifd:]))
	for e := range count {
		off := ifd + 2 + 12*e
		if off+12 > int64(len(t)) {
			return 1
		}
		if order.Uint16(t[off:]) != 0x0112 {
			continue
		}
		if order.Uint16(t[off+2:]) != 3 || order.Uint32(t[off+4:]) != 1 { // SHORT, one value
			return 1
		}
		if v := int(order.Uint16(t[off+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}

// orient applies an EXIF orientation (1 to 8) to img: the picture as the
// camera meant it to be seen.
func orient(img image.Image, orientation int) image.Image {
	switch orientation {
	case 2:
		return imaging.FlipH(img)
	case 3:
		return imaging.Rotate180(img)
	case 4:
		return imaging.FlipV(img)
	case 5:
		return imaging.Transpose(img)
	case 6:
		return imaging.Rotate270(img) // 90° clockwise
	case 7:
		return imaging.Transverse(img)
	case 8:
		return imaging.Rotate90(img) // 90° counterclockwise
	}
	return img
}

// scrubError is a refusal by ScrubPhoto for a file of a type it takes:
// "scrub photo: <what>: <cause>". It matches both ErrNotScrubbable and its
// cause with errors.Is, without repeating ErrNotScrubbable's text, which
// is about types.
type scrubError struct {
	what  string
	cause error
}

func refusal(what string, cause error) error { return &scrubError{what: what, cause: cause} }

func (e *scrubError) Error() string { return "scrub photo: " + e.what + ": " + e.cause.Error() }

func (e *scrubError) Unwrap() []error { return []error{ErrNotScrubbable, e.cause} }

func decodeConfig(format photoFormat, data []byte) (image.Config, error) {
	r := bytes.NewReader(data)
	switch format {
	case formatJPEG:
		return jpeg.DecodeConfig(r)
	case formatPNG:
		return png.DecodeConfig(r)
	case formatGIF:
		return gif.DecodeConfig(r)
	case formatWebP:
		return webp.DecodeConfig(r)
	}
	panic("unreachable")
}

// decodePhoto decodes data with the decoder of format only: image.Decode
// alone would also take the TIFF and BMP decoders that imaging registers.
func decodePhoto(format photoFormat, data []byte) (image.Image, error) {
	r := bytes.NewReader(data)
	switch format {
	case formatJPEG:
		return jpeg.Decode(r) // orientation is applied after shrinking
	case formatPNG:
		return png.Decode(r)
	case formatGIF:
		return gif.Decode(r) // the first frame
	case formatWebP:
		return webp.Decode(r)
	}
	panic("unreachable")
}

// shrink downscales img so that its long side is MaxPhotoSide, keeping its
// aspect ratio (the short side rounded, at least 1 px); a smaller img is
// returned as it is.
func shrink(img image.Image) image.Image {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	long, short := max(w, h), min(w, h)
	if long <= MaxPhotoSide {
		return img
	}
	// long ≤ MaxPhotoPixels, so the product fits in an int64.
	s := int((int64(short)*MaxPhotoSide + int64(long)/2) / int64(long))
	s = max(s, 1)
	if w >= h {
		return imaging.Resize(img, MaxPhotoSide, s, imaging.Lanczos)
	}
	return imaging.Resize(img, s, MaxPhotoSide, imaging.Lanczos)
}

// flatten composites a picture with transparency onto white: JPEG has no
// alpha, and image/jpeg would turn transparent pixels black, hiding dark
// drawings on a transparent background.
func flatten(img image.Image) image.Image {
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		return img
	}
	b := img.Bounds()
	dst := image.NewRGBA(b)
	draw.Draw(dst, b, image.White, image.Point{}, draw.Src)
	draw.Draw(dst, b, img, b.Min, draw.Over)
	return dst
}

// isoBrands names the major brands of ISO base media files (ISO/IEC
// 14496-12 "ftyp" box) that phones write, for refusal messages.
var isoBrands = map[string]string{
	"heic": "HEIC photo", "heix": "HEIC photo", "heim": "HEIC photo", "heis": "HEIC photo",
	"hevc": "HEIC photo sequence", "hevx": "HEIC photo sequence",
	"mif1": "HEIF image", "msf1": "HEIF image sequence",
	"avif": "AVIF image", "avis": "AVIF image sequence",
	"isom": "MP4 video", "iso2": "MP4 video", "mp41": "MP4 video", "mp42": "MP4 video",
	"avc1": "MP4 video", "dash": "MP4 video", "M4V ": "MP4 video", "M4A ": "MP4 audio",
	"qt  ": "QuickTime video",
	"3gp4": "3GP video", "3gp5": "3GP video", "3gp6": "3GP video", "3g2a": "3GPP2 video",
	"crx ": "Canon CR3 raw photo",
}

// sniffPhoto names the type of data from its first bytes and says which
// decoder takes it (formatNone: none does). Names are for messages only.
func sniffPhoto(data []byte) (string, photoFormat) {
	has := func(off int, s string) bool {
		return len(data) >= off+len(s) && string(data[off:off+len(s)]) == s
	}
	switch {
	case len(data) == 0:
		return "empty file", formatNone
	case has(0, "\xff\xd8\xff"):
		return "JPEG", formatJPEG
	case has(0, "\x89PNG\r\n\x1a\n"):
		return "PNG", formatPNG
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return "GIF", formatGIF
	case has(0, "RIFF") && has(8, "WEBP"):
		return "WebP", formatWebP
	case has(0, "RIFF") && has(8, "AVI "):
		return "AVI video", formatNone
	case has(0, "RIFF") && has(8, "WAVE"):
		return "WAV audio", formatNone
	case has(4, "ftyp") && len(data) >= 12:
		brand := string(data[8:12])
		if name, ok := isoBrands[brand]; ok {
			return name, formatNone
		}
		return fmt.Sprintf("ISO media file of brand %q", brand), formatNone
	case has(0, "%PDF-"):
		return "PDF document", formatNone
	case has(0, "II*\x00"), has(0, "MM\x00*"):
		return "TIFF or camera raw image", formatNone
	case has(0, "BM"):
		return "BMP image", formatNone
	case has(0, "\xff\x0a"), has(0, "\x00\x00\x00\x0cJXL \r\n\x87\n"):
		return "JPEG XL image", formatNone
	case has(0, "\x1a\x45\xdf\xa3"):
		return "Matroska or WebM video", formatNone
	case has(0, "PK\x03\x04"):
		return "ZIP archive or office document", formatNone
	case has(0, "OggS"):
		return "Ogg audio or video", formatNone
	case has(0, "ID3"):
		return "MP3 audio", formatNone
	case has(0, "8BPS"):
		return "Photoshop document", formatNone
	case isText(data[:min(len(data), 1024)]):
		return "text", formatNone
	}
	return "file of unknown type", formatNone
}

// isText reports whether b is UTF-8 without control characters other than
// tab, newline and carriage return; a rune cut by the end of b is allowed.
func isText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return !utf8.FullRune(b) // a rune cut short by the end of b
		}
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
		b = b[n:]
	}
	return true
}
