package crypto

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// NonceSize is the size of a login challenge nonce.
const NonceSize = 32

// MaxLoginSize caps a signed login note.
const MaxLoginSize = 2048

// Login is an editor's answer to a server challenge: a note signed with the
// editor's signing key, bound to the server's origin, the server's fresh
// nonce and a short expiry, so it cannot be replayed later or elsewhere.
//
// Its text, after the LoginHeader line:
//
//	origin <scheme://host[:port]>
//	nonce <32 bytes, unpadded base64url>
//	expires <RFC 3339 UTC, seconds>
type Login struct {
	Origin  string
	Nonce   [NonceSize]byte
	Expires time.Time
	// Editor is the label of the editor whose key signed the note, set by
	// OpenLogin.
	Editor string
}

// SignLogin signs a login note with an editor's signing key.
func SignLogin(l *Login, editor note.Signer) ([]byte, error) {
	if l.Origin == "" || strings.ContainsAny(l.Origin, " \t\r\n") {
		return nil, fmt.Errorf("login: origin %q is not a single word", clip(l.Origin))
	}
	text := fmt.Sprintf("%s\norigin %s\nnonce %s\nexpires %s\n", LoginHeader, l.Origin,
		base64.RawURLEncoding.EncodeToString(l.Nonce[:]), l.Expires.UTC().Format(time.RFC3339))
	msg, err := note.Sign(&note.Note{Text: text}, editor)
	if err != nil {
		return nil, fmt.Errorf("login: sign: %w", err)
	}
	return msg, nil
}

// OpenLogin verifies a login note against the signing keys of the editors
// in b (revoked editors are not in b.Editors) and parses it. It checks the
// signature and format only: the caller compares origin, nonce and expiry
// with the challenge it issued.
func OpenLogin(msg []byte, b *Bundle) (*Login, error) {
	if len(msg) > MaxLoginSize {
		return nil, fmt.Errorf("login: %w: %d bytes, more than %d", ErrMalformed, len(msg), MaxLoginSize)
	}
	var vs []note.Verifier
	for _, e := range b.Editors {
		v, err := note.NewVerifier(e.Sign)
		if err != nil {
			return nil, fmt.Errorf("login: bundle editor %q: %w", e.Label, err)
		}
		vs = append(vs, v)
	}
	n, err := OpenNote("login", msg, note.VerifierList(vs...))
	if err != nil {
		return nil, err
	}
	r, err := newLineReader("login", n.Text, LoginHeader)
	if err != nil {
		return nil, err
	}
	l := &Login{Editor: n.Sigs[0].Name}
	if l.Origin, err = r.value("origin"); err != nil {
		return nil, err
	}
	nonce, err := r.value("nonce")
	if err != nil {
		return nil, err
	}
	// Strict decoding still skips CR and LF: compare the re-encoding too.
	if nb, err := base64.RawURLEncoding.Strict().DecodeString(nonce); err != nil || len(nb) != NonceSize || base64.RawURLEncoding.EncodeToString(nb) != nonce {
		return nil, fmt.Errorf("login: %w: nonce is not %d bytes of unpadded base64url", ErrMalformed, NonceSize)
	} else {
		copy(l.Nonce[:], nb)
	}
	exp, err := r.value("expires")
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339, exp)
	if err != nil || t.UTC().Format(time.RFC3339) != exp {
		return nil, fmt.Errorf("login: %w: expires %q is not an RFC 3339 UTC time in seconds", ErrMalformed, clip(exp))
	}
	l.Expires = t.UTC()
	if err := r.end(); err != nil {
		return nil, err
	}
	return l, nil
}
