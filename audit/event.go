package audit

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// EventIDSize is the size of an event id.
const EventIDSize = 16

// Event is an editorial event's log entry: who acted (the signature), on
// which day, under which bundle, from which checkpoint, and hashes of the
// encrypted body. An *Event returned by OpenEvent has verified.
//
// Its text, after the EventHeader line (docs/audit.md):
//
//	id <16 bytes, unpadded base64url>
//	bundle <version, 1 to 2^53>
//	day <YYYY-MM-DD>
//	base <tree size, 1 to 2^53> <root hash, standard base64>
//	ciphertext <64 lowercase hex digits>
//	public <64 lowercase hex digits>
//	private <64 lowercase hex digits>
type Event struct {
	// ID is random; a log holds no two events with the same id.
	ID [EventIDSize]byte
	// Bundle is the version of the bundle in force at the event's index.
	Bundle int64
	// Day is when the editor signed, YYYY-MM-DD in UTC.
	Day string
	// Base is the checkpoint the author last verified (N ≥ 1).
	Base tlog.Tree
	// Ciphertext is SHA-256 of the body's age file.
	Ciphertext [32]byte
	// Public and Private are the commitments to the body's parts.
	Public, Private [32]byte

	// Editor is the label of the editor whose signing key signed the
	// event, set by OpenEvent.
	Editor string
}

// IDString returns the event id as printed: unpadded base64url.
func (e *Event) IDString() string { return base64.RawURLEncoding.EncodeToString(e.ID[:]) }

// text formats the event, checking it on the way.
func (e *Event) text() (string, error) {
	if e.Bundle < 1 || e.Bundle > maxTreeSize {
		return "", fmt.Errorf("event: bundle version %d out of range", e.Bundle)
	}
	if !validDay(e.Day) {
		return "", fmt.Errorf("event: day %q is not YYYY-MM-DD", clip(e.Day))
	}
	if e.Base.N < 1 || e.Base.N > maxTreeSize {
		return "", fmt.Errorf("event: base tree size %d out of range", e.Base.N)
	}
	return fmt.Sprintf("%s\nid %s\nbundle %d\nday %s\nbase %d %s\nciphertext %s\npublic %s\nprivate %s\n",
		EventHeader, e.IDString(), e.Bundle, e.Day, e.Base.N, e.Base.Hash,
		hex.EncodeToString(e.Ciphertext[:]), hex.EncodeToString(e.Public[:]), hex.EncodeToString(e.Private[:])), nil
}

// SignEvent signs an event with an editor's signing key (crypto.EditorKey's
// Signer, never its cosigner).
func SignEvent(e *Event, editor note.Signer) ([]byte, error) {
	text, err := e.text()
	if err != nil {
		return nil, err
	}
	if !crypto.ValidLabel(editor.Name()) {
		return nil, fmt.Errorf("event: signing key is named %q, not an editor label", clip(editor.Name()))
	}
	return signNote("event", text, editor, MaxEventSize)
}

// eventKeys are the verifiers of a bundle's editors, built once per
// bundle.
type eventKeys struct {
	bundle    *crypto.Bundle
	verifiers note.Verifiers
}

func newEventKeys(b *crypto.Bundle) (*eventKeys, error) {
	vs := make([]note.Verifier, 0, len(b.Editors))
	for _, ed := range b.Editors {
		v, err := note.NewVerifier(ed.Sign)
		if err != nil {
			return nil, fmt.Errorf("bundle editor %q: %w", ed.Label, err)
		}
		vs = append(vs, v)
	}
	return &eventKeys{bundle: b, verifiers: note.VerifierList(vs...)}, nil
}

// OpenEvent verifies a signed event against the signing keys of the
// editors of b, which must be the bundle in force at the event's index
// (revoked editors are not among its editors), parses it, and checks that
// it names b's version. Whether its id is new and its base a prefix of the
// log is the log's to check (Verifier).
//
// Errors wrap crypto.ErrMalformed, crypto.ErrBadSignature,
// crypto.ErrUnknownSigner (with ErrRevokedEditor when b revokes the
// signer) or ErrWrongBundle.
func OpenEvent(msg []byte, b *crypto.Bundle) (*Event, error) {
	if len(msg) > MaxEventSize {
		return nil, fmt.Errorf("event: %w: %d bytes, more than %d", crypto.ErrMalformed, len(msg), MaxEventSize)
	}
	keys, err := newEventKeys(b)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	return openEvent(msg, keys)
}

func openEvent(msg []byte, keys *eventKeys) (*Event, error) {
	if len(msg) > MaxEventSize {
		return nil, fmt.Errorf("event: %w: %d bytes, more than %d", crypto.ErrMalformed, len(msg), MaxEventSize)
	}
	n, err := crypto.OpenNote("event", msg, keys.verifiers)
	if err != nil {
		// The unverified signer's name only chooses the message: a
		// revoked editor is told so (issue 12), nothing is trusted.
		var unknown *crypto.UnknownSignerError
		if errors.As(err, &unknown) && unknown.Name != "" {
			if _, revoked := slices.BinarySearch(keys.bundle.Revoked, unknown.Name); revoked {
				return nil, fmt.Errorf("%w: %w: %q", err, ErrRevokedEditor, clip(unknown.Name))
			}
		}
		return nil, err
	}
	e, err := parseEvent(n.Text)
	if err != nil {
		return nil, err
	}
	e.Editor = n.Sigs[0].Name
	if e.Bundle != keys.bundle.Version {
		return nil, fmt.Errorf("event: %w: names bundle %d, version %d is in force", ErrWrongBundle, e.Bundle, keys.bundle.Version)
	}
	return e, nil
}

func parseEvent(text string) (*Event, error) {
	r, err := newLineReader("event", text, EventHeader)
	if err != nil {
		return nil, err
	}
	e := &Event{}
	id, err := r.value("id")
	if err != nil {
		return nil, err
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(id)
	if err != nil || len(b) != EventIDSize || base64.RawURLEncoding.EncodeToString(b) != id {
		return nil, fmt.Errorf("event: %w: id %q is not %d bytes of unpadded base64url", crypto.ErrMalformed, clip(id), EventIDSize)
	}
	copy(e.ID[:], b)
	v, err := r.value("bundle")
	if err != nil {
		return nil, err
	}
	if e.Bundle, err = r.int("bundle", v, 1, maxTreeSize); err != nil {
		return nil, err
	}
	if v, err = r.value("day"); err != nil {
		return nil, err
	}
	if e.Day, err = r.day("day", v); err != nil {
		return nil, err
	}
	base, err := r.next("base", 2)
	if err != nil {
		return nil, err
	}
	if e.Base.N, err = r.int("base size", base[0], 1, maxTreeSize); err != nil {
		return nil, err
	}
	if e.Base.Hash, err = r.treeHash("base hash", base[1]); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst *[32]byte
	}{{"ciphertext", &e.Ciphertext}, {"public", &e.Public}, {"private", &e.Private}} {
		if v, err = r.value(f.key); err != nil {
			return nil, err
		}
		if *f.dst, err = r.hex32(f.key, v); err != nil {
			return nil, err
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	// Every field above is checked to be in its one encoding, so the text
	// is what formatting the parsed event gives; check it all the same, so
	// a later field cannot slip past.
	if canon, err := e.text(); err != nil || canon != text {
		return nil, fmt.Errorf("event: %w: not in canonical form", crypto.ErrMalformed)
	}
	return e, nil
}

// newEventID draws a random event id.
func newEventID() ([EventIDSize]byte, error) {
	var id [EventIDSize]byte
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("event id: %w", err)
	}
	return id, nil
}
