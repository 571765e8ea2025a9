package client

import (
	"errors"
	"fmt"
	"mime"
	"path/filepath"
	"strings"

	"fieldtip/crypto"
)

// Attach turns a file into a tip attachment. A photo (JPEG, PNG, GIF) is
// scrubbed (ScrubPhoto): re-encoded with its orientation applied, its
// metadata gone and its size down to what a bad link can carry. Any other
// file is refused with an error wrapping ErrNotScrubbable, unless
// keepOriginal is set: then it goes unchanged, metadata and all, and
// warning says so for the caller to show.
func Attach(name string, data []byte, keepOriginal bool) (a crypto.Attachment, warning string, err error) {
	scrubbed, err := ScrubPhoto(data)
	if err == nil {
		return crypto.Attachment{Name: ScrubbedName(name), Type: "image/jpeg", Data: scrubbed}, "", nil
	}
	if !errors.Is(err, ErrNotScrubbable) || !keepOriginal {
		return a, "", fmt.Errorf("%s: %w (--keep-original sends it unchanged, with whatever it says about you)", filepath.Base(name), err)
	}
	typ := mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
	if typ == "" {
		typ = "application/octet-stream"
	}
	warning = fmt.Sprintf("%s is sent unchanged: any metadata in it (author, device, place, time) goes with it", filepath.Base(name))
	return crypto.Attachment{Name: filepath.Base(name), Type: typ, Data: data}, warning, nil
}
