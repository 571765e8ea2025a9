package client

import (
	"errors"
	"fmt"
	"mime"
	"path/filepath"
	"strings"

	"fieldtip/crypto"
)

// ErrPhotoNotSent: a JPEG, PNG, GIF or WebP photo that ScrubPhoto could
// not re-encode (too large, damaged). It is never sent unchanged, even with
// keepOriginal: its metadata (GPS, camera serial) would go with it.
var ErrPhotoNotSent = errors.New("is a photo fieldtip cannot re-encode (too large or damaged), and a photo is never sent with its metadata")

// Attach turns a file into the n-th attachment of a tip (from 1). A photo
// (JPEG, PNG, GIF, WebP) is scrubbed (ScrubPhoto): re-encoded with its
// orientation applied, its metadata gone and its size down to what a bad
// link can carry, and named photo-n.jpg, since a camera's file name
// (IMG_20240512_153012) tells when it was taken. Any other file is refused
// with an error wrapping ErrNotScrubbable, unless keepOriginal is set: then
// it goes unchanged under its base name, metadata and all, and warning
// says so for the caller to show.
func Attach(n int, name string, data []byte, keepOriginal bool) (a crypto.Attachment, warning string, err error) {
	base := filepath.Base(name)
	scrubbed, err := ScrubPhoto(data)
	if err == nil {
		return crypto.Attachment{Name: fmt.Sprintf("photo-%d.jpg", n), Type: "image/jpeg", Data: scrubbed}, "", nil
	}
	if _, format := sniffPhoto(data); format != formatNone {
		return a, "", fmt.Errorf("%s %w: %w", base, ErrPhotoNotSent, err)
	}
	if !keepOriginal {
		return a, "", fmt.Errorf("%s: %w (--keep-original sends it unchanged, with whatever it says about you)", base, err)
	}
	typ := mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
	if typ == "" {
		typ = "application/octet-stream"
	}
	warning = fmt.Sprintf("%s is sent unchanged: any metadata in it (author, device, place, time) goes with it", base)
	return crypto.Attachment{Name: base, Type: typ, Data: data}, warning, nil
}
