package client

import (
	"crypto/rand"
	"errors"
	"fmt"
	"mime"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"fieldtip/crypto"
)

// ErrPhotoNotSent: a JPEG, PNG, GIF or WebP photo that ScrubPhoto could
// not re-encode (too large, damaged). It is never sent unchanged, even with
// keepOriginal: its metadata (GPS, camera serial) would go with it.
var ErrPhotoNotSent = errors.New("is a photo fieldtip cannot re-encode (too large or damaged), and a photo is never sent with its metadata")

// ErrBadName: a file whose name would go with it (--keep-original) holds
// a control character or an invisible Unicode format character (a bidi
// override, a zero-width space), which would show an editor another name
// than the file's, or none.
var ErrBadName = errors.New("its name holds a control or invisible formatting character (such as a right-to-left override or a zero-width space): rename the file")

// CheckAttachment makes the cheap checks of Attach, with no decoding, so
// that a caller can refuse a file before any long work: a photo's header
// must decode and be within the limits ScrubPhoto decodes; any other file
// needs keepOriginal and a name fit to send. It reports whether the file
// is a photo, which Attach will re-encode.
func CheckAttachment(name string, data []byte, keepOriginal bool) (photo bool, err error) {
	base := filepath.Base(name)
	kind, format := sniffPhoto(data)
	if format != formatNone {
		if _, err := checkPhotoHeader(kind, format, data); err != nil {
			return true, fmt.Errorf("%s %w: %w", showName(base), ErrPhotoNotSent, err)
		}
		return true, nil
	}
	if !keepOriginal {
		return false, fmt.Errorf("%s: scrub photo: %s: %w (--keep-original sends it unchanged, with whatever it says about you)", showName(base), kind, ErrNotScrubbable)
	}
	if err := checkSentName(base); err != nil {
		return false, err
	}
	return false, nil
}

// checkSentName refuses a name that would show an editor something else
// than it is: control characters and Unicode format characters (Cc, Cf).
func checkSentName(base string) error {
	if hidden(base) {
		return fmt.Errorf("%s: %w", showName(base), ErrBadName)
	}
	return nil
}

// hidden reports whether s holds a control or format character.
func hidden(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0
}

// showName is a file name as an error message shows it: as it is, or
// quoted with Go's escapes if it holds a character a terminal would act on
// or hide.
func showName(base string) string {
	if hidden(base) {
		return strconv.QuoteToASCII(base)
	}
	return base
}

// Attach turns a file into an attachment of a tip. A photo (JPEG, PNG,
// GIF, WebP) is scrubbed (ScrubPhoto): re-encoded with its orientation
// applied, its metadata gone and its size down to what a bad link can
// carry, and named photo-XXXXXXXX.jpg with 8 random characters, since a
// camera's file name (IMG_20240512_153012) tells when it was taken, and a
// name unique to the photo lets an editor write every attachment of every
// tip into one folder. Any other file is refused with an error wrapping
// ErrNotScrubbable, unless keepOriginal is set: then it goes unchanged
// under its base name (refused with ErrBadName if that holds a control or
// format character), metadata and all, and warning says so for the caller
// to show.
func Attach(name string, data []byte, keepOriginal bool) (a crypto.Attachment, warning string, err error) {
	base := filepath.Base(name)
	photo, err := CheckAttachment(name, data, keepOriginal)
	if err != nil {
		return a, "", err
	}
	if photo {
		scrubbed, err := ScrubPhoto(data)
		if err != nil {
			return a, "", fmt.Errorf("%s %w: %w", showName(base), ErrPhotoNotSent, err)
		}
		return crypto.Attachment{Name: photoName(), Type: "image/jpeg", Data: scrubbed}, "", nil
	}
	typ := mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
	if typ == "" {
		typ = "application/octet-stream"
	}
	warning = fmt.Sprintf("%s is sent unchanged: any metadata in it (author, device, place, time) goes with it", showName(base))
	return crypto.Attachment{Name: base, Type: typ, Data: data}, warning, nil
}

// photoName returns photo-XXXXXXXX.jpg, 8 random characters of a-z and
// 2-7 (40 bits: two photos of one newsroom share a name with odds of
// about one in a million for every 1,500 photos, and a reader that finds
// a name taken still writes the photo under another).
func photoName() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [8]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return "photo-" + string(b[:]) + ".jpg"
}
