package client

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"unicode"
	"unicode/utf8"

	"fieldtip/crypto"

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
	// (decompression bomb), and decoding allocates 1.5 to 8 bytes per pixel.
	MaxPhotoPixels = 80_000_000
)

// ErrNotScrubbable is wrapped by every error ScrubPhoto returns: the file
// cannot be sent as a scrubbed photo.
var ErrNotScrubbable = errors.New("cannot scrub this file: only JPEG, PNG, GIF and WebP photos are re-encoded")

// Causes of a refusal besides an unknown type, wrapped beside
// ErrNotScrubbable.
var (
	errPhotoTooLarge = errors.New("photo too large to scrub")
	errTooManyPixels = errors.New("too many pixels to decode safely")
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
// On a 2-core desktop, a 12-megapixel phone photo takes about 0.6 s and
// allocates 45 MiB, 90 MiB when it must be turned; one of MaxPhotoPixels
// about 2.5 s and 175 MiB, 480 MiB turned (baseline 4:2:0; progressive or
// 4:4:4 JPEGs need more).
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
	cfg, err := decodeConfig(format, data)
	if err != nil {
		return nil, refusal(kind+" header does not decode", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, refusal(fmt.Sprintf("%s of %d×%d px", kind, cfg.Width, cfg.Height), errEmptyPicture)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxPhotoPixels {
		return nil, refusal(fmt.Sprintf("%s of %d×%d px, more than %d px", kind, cfg.Width, cfg.Height, MaxPhotoPixels), errTooManyPixels)
	}
	img, err := decodePhoto(format, data)
	if err != nil {
		return nil, refusal(kind+" does not decode", err)
	}
	if b := img.Bounds(); b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, refusal(fmt.Sprintf("%s decoded to %d×%d px", kind, b.Dx(), b.Dy()), errEmptyPicture)
	}
	img = flatten(shrink(img))
	var buf bytes.Buffer
	// imaging.Encode hands an opaque NRGBA to image/jpeg as RGBA (the same
	// bytes), which takes the encoder's fast path. image/jpeg writes SOI,
	// DQT, SOF0, DHT, SOS and EOI only.
	if err := imaging.Encode(&buf, img, imaging.JPEG, imaging.JPEGQuality(PhotoQuality)); err != nil {
		return nil, refusal("JPEG encoding failed", err)
	}
	return buf.Bytes(), nil
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
		// imaging.Decode calls image.Decode, which picks image/jpeg for
		// these first bytes, then applies the EXIF Orientation tag of the
		// first APP1 segment (EXIF 2.32, tag 0x0112).
		return imaging.Decode(r, imaging.AutoOrientation(true))
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

// scrubbedFallbackName is the name of a scrubbed photo whose own name
// cannot be kept.
const scrubbedFallbackName = "photo.jpg"

// ScrubbedName returns the attachment name to send with a photo that
// ScrubPhoto re-encoded: the part of name after its last / or \, with its
// extension replaced by ".jpg", shortened to crypto.MaxNameLength bytes.
// When nothing usable is left (name is empty, ends in a separator, is . or
// .., or the rest is empty, starts with . or -, is not UTF-8 or holds a
// control or format character), it returns "photo.jpg". The result is
// always a valid attachment name (docs/formats.md, "Tip").
//
// The name is the caller's to choose: a camera's names (IMG_20240512_153012)
// carry the time the photo was taken.
func ScrubbedName(name string) string {
	base := name[strings.LastIndexAny(name, `/\`)+1:]
	stem := base
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		stem = base[:i]
	}
	if stem == "" || strings.HasPrefix(stem, ".") || strings.HasPrefix(stem, "-") || !utf8.ValidString(stem) ||
		strings.IndexFunc(stem, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0 {
		return scrubbedFallbackName
	}
	const ext = ".jpg"
	for len(stem) > crypto.MaxNameLength-len(ext) {
		_, n := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-n]
	}
	return stem + ext
}
