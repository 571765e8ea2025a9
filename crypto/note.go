package crypto

import (
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// UnknownSignerError is OpenNote's error for a note signed by no key the
// caller trusts; it wraps ErrUnknownSigner. Name is the name the note's
// signature line gives its key when it carries exactly one, unverified:
// only for a better message (audit names a revoked editor with it), never
// to trust.
type UnknownSignerError struct {
	What string // the note's kind, as given to OpenNote
	Name string // the unverified signature's key name, or ""
}

func (e *UnknownSignerError) Error() string { return e.What + ": " + ErrUnknownSigner.Error() }
func (e *UnknownSignerError) Unwrap() error { return ErrUnknownSigner }

// OpenNote opens a signed note that must carry exactly one canonical
// signature, by a key among known, and nothing after it (docs/formats.md,
// "Signed notes"). Its errors name the note's kind (what) and wrap
// ErrUnknownSigner (as an *UnknownSignerError), ErrBadSignature or
// ErrMalformed. It is the one opener of fieldtip's signed notes: package
// audit's formats call it too (issue 12).
func OpenNote(what string, msg []byte, known note.Verifiers) (*note.Note, error) {
	n, err := note.Open(msg, known)
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		e := &UnknownSignerError{What: what}
		if sigs := unverified.Note.UnverifiedSigs; len(sigs) == 1 {
			e.Name = sigs[0].Name
		}
		return nil, e
	case errors.As(err, &invalid):
		return nil, fmt.Errorf("%s: %w (key %s)", what, ErrBadSignature, invalid.Name)
	case err != nil:
		// note.Open reports a malformed note and a bad signature from a
		// known key alike ("malformed note" covers a changed byte in the
		// signature line too).
		return nil, fmt.Errorf("%s: %w: %w", what, ErrBadSignature, err)
	}
	if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		return nil, fmt.Errorf("%s: %w: %d signatures, want exactly one", what, ErrMalformed, len(n.Sigs)+len(n.UnverifiedSigs))
	}
	// One encoding: note.Open skips, unverified, a repeated signature line
	// naming a key it already checked, and decodes signatures with
	// non-strict base64 (nonzero padding bits), so it would accept several
	// byte strings for one signed note. Only the text and exactly one
	// canonical signature line may follow.
	sig := n.Sigs[0]
	if _, err := base64.StdEncoding.Strict().DecodeString(sig.Base64); err != nil ||
		string(msg) != n.Text+"\n— "+sig.Name+" "+sig.Base64+"\n" {
		return nil, fmt.Errorf("%s: %w: signature block is not exactly one canonical signature line", what, ErrMalformed)
	}
	return n, nil
}
