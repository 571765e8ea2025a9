package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"golang.org/x/mod/sumdb/note"
)

// DefaultScryptWorkFactor is the scrypt work factor (log2 N) for key files:
// age's own default, about a second on a laptop.
const DefaultScryptWorkFactor = 18

// MaxKeyFileSize caps a key file read from disk.
const MaxKeyFileSize = 64 << 10

// SealWithPassphrase encrypts a key file's plaintext with age's scrypt
// recipient and armors it. workFactor is log2 of scrypt's N.
func SealWithPassphrase(plaintext []byte, passphrase string, workFactor int) ([]byte, error) {
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	r.SetWorkFactor(workFactor)
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return buf.Bytes(), nil
}

// armorHeader begins every key file SealWithPassphrase writes.
const armorHeader = "-----BEGIN AGE ENCRYPTED FILE-----"

// NotKeyFileError is a file given where a passphrase-protected key file
// belongs that is, by its first line, something else fieldtip writes; Kind
// says what, so that the user can tell which file was meant (issue 12: a
// .pub file given as --key).
type NotKeyFileError struct {
	// Kind is what the file is, for example "an editor's public key
	// (fieldtip/editor/v1)".
	Kind string
	// Public is set when the file holds only public keys: the .pub file,
	// a verifier key or a bundle.
	Public bool
}

func (e *NotKeyFileError) Error() string {
	return "not a passphrase-protected key file but " + e.Kind
}

// CheckKeyFile returns a *NotKeyFileError if b is not a key file
// SealWithPassphrase wrote but another file fieldtip's programs make; nil
// if b may be a key file (OpenWithPassphrase decides). It needs no
// passphrase, so a program can check before asking for one, and it never
// quotes b: a secret key pasted into the wrong file stays unprinted.
func CheckKeyFile(b []byte) error {
	line, _, _ := strings.Cut(string(b[:min(len(b), 256)]), "\n")
	line = strings.TrimSuffix(line, "\r")
	switch {
	case line == armorHeader:
		return nil
	case line == EditorPubHeader:
		return &NotKeyFileError{Kind: "an editor's public key (" + EditorPubHeader + ")", Public: true}
	case line == BundleHeader:
		return &NotKeyFileError{Kind: "a key bundle (" + BundleHeader + ")", Public: true}
	case strings.HasPrefix(strings.ToUpper(line), "AGE-SECRET-KEY-"):
		return &NotKeyFileError{Kind: "a bare age identity, not sealed with a passphrase"}
	case strings.HasPrefix(line, "age1"):
		return &NotKeyFileError{Kind: "an age recipient (a public key)", Public: true}
	}
	if v, err := note.NewVerifier(line); err == nil {
		return &NotKeyFileError{Kind: "a verifier key (" + v.Name() + "), which is public", Public: true}
	}
	return nil
}

// OpenWithPassphrase decrypts a key file sealed by SealWithPassphrase.
// A wrong passphrase is ErrIncorrectPassphrase; a file that is something
// else fieldtip makes is a *NotKeyFileError.
func OpenWithPassphrase(sealed []byte, passphrase string) ([]byte, error) {
	if len(sealed) > MaxKeyFileSize {
		return nil, fmt.Errorf("key file: %w: %d bytes, more than %d", ErrMalformed, len(sealed), MaxKeyFileSize)
	}
	if err := CheckKeyFile(sealed); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(sealed)), id)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) && len(noMatch.StanzaTypes) == 1 && noMatch.StanzaTypes[0] == "scrypt" {
			return nil, fmt.Errorf("key file: %w", ErrIncorrectPassphrase)
		}
		return nil, fmt.Errorf("key file: not a passphrase-protected key file: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, MaxKeyFileSize))
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return plain, nil
}

// EditorKey is an editor's secret keys: an age identity for decrypting tips
// and event bodies, an Ed25519 signing key for editorial events and logins,
// and a separate Ed25519 cosigning key for witnessing the log (one key, one
// signature type).
//
// Its file plaintext, before passphrase sealing:
//
//	fieldtip/editor-key/v1
//	label <label>
//	age <AGE-SECRET-KEY-PQ-1… or AGE-SECRET-KEY-1…>
//	sign <signed-note signer key named label>
//	cosign <signed-note signer key named label.cosign>
type EditorKey struct {
	Label    string
	Identity age.Identity
	identity string
	sign     string
	cosign   string

	Public Editor
}

// GenerateEditorKey creates an editor's keys under label. classic selects
// an X25519 age key instead of the default hybrid post-quantum one.
func GenerateEditorKey(label string, classic bool) (*EditorKey, error) {
	if !ValidLabel(label) {
		return nil, fmt.Errorf("editor key: label %q is not valid (1-32 of a-z 0-9 _ -)", clip(label))
	}
	var idStr, recipient string
	if classic {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, err
		}
		idStr, recipient = id.String(), id.Recipient().String()
	} else {
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			return nil, err
		}
		idStr, recipient = id.String(), id.Recipient().String()
	}
	sk, vk, err := note.GenerateKey(rand.Reader, label)
	if err != nil {
		return nil, err
	}
	csk, cvk, err := note.GenerateKey(rand.Reader, CosignName(label))
	if err != nil {
		return nil, err
	}
	text := fmt.Sprintf("%s\nlabel %s\nage %s\nsign %s\ncosign %s\n", EditorKeyHeader, label, idStr, sk, csk)
	k, err := ParseEditorKey([]byte(text))
	if err != nil {
		return nil, err
	}
	if k.Public.Recipient != recipient || k.Public.Sign != vk || k.Public.Cosign != cvk {
		return nil, errors.New("editor key: derived public keys do not match the generated ones")
	}
	return k, nil
}

// Marshal returns the key file plaintext (seal it before writing it).
func (k *EditorKey) Marshal() []byte {
	return fmt.Appendf(nil, "%s\nlabel %s\nage %s\nsign %s\ncosign %s\n", EditorKeyHeader, k.Label, k.identity, k.sign, k.cosign)
}

// Signer returns the editor's signing key.
func (k *EditorKey) Signer() (note.Signer, error) { return note.NewSigner(k.sign) }

// Cosigner returns the editor's cosigning key.
func (k *EditorKey) Cosigner() (note.Signer, error) { return note.NewSigner(k.cosign) }

// ParseEditorKey parses a key file's plaintext and derives the public half.
func ParseEditorKey(text []byte) (*EditorKey, error) {
	r, err := newLineReader("editor key", string(text), EditorKeyHeader)
	if err != nil {
		return nil, err
	}
	k := &EditorKey{}
	if k.Label, err = r.value("label"); err != nil {
		return nil, err
	}
	if k.identity, err = r.value("age"); err != nil {
		return nil, err
	}
	if k.sign, err = r.value("sign"); err != nil {
		return nil, err
	}
	if k.cosign, err = r.value("cosign"); err != nil {
		return nil, err
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if !ValidLabel(k.Label) {
		return nil, fmt.Errorf("editor key: %w: label %q is not valid", ErrMalformed, clip(k.Label))
	}
	k.Public.Label = k.Label
	if strings.HasPrefix(k.identity, "AGE-SECRET-KEY-PQ-1") {
		id, err := age.ParseHybridIdentity(k.identity)
		if err != nil {
			return nil, fmt.Errorf("editor key: %w: age identity: %w", ErrMalformed, err)
		}
		k.Identity, k.Public.Recipient = id, id.Recipient().String()
	} else {
		id, err := age.ParseX25519Identity(k.identity)
		if err != nil {
			return nil, fmt.Errorf("editor key: %w: age identity: %w", ErrMalformed, err)
		}
		k.Identity, k.Public.Recipient = id, id.Recipient().String()
	}
	if k.Public.Sign, err = verifierFor(k.sign, k.Label); err != nil {
		return nil, fmt.Errorf("editor key: signing key: %w", err)
	}
	if k.Public.Cosign, err = verifierFor(k.cosign, CosignName(k.Label)); err != nil {
		return nil, fmt.Errorf("editor key: cosigning key: %w", err)
	}
	return k, nil
}

// MarshalEditorPublic formats an editor's public half (LABEL.key.pub):
//
//	fieldtip/editor/v1
//	label <label>
//	age <age recipient>
//	sign <signing verifier key>
//	cosign <cosigning verifier key>
func MarshalEditorPublic(e Editor) []byte {
	return fmt.Appendf(nil, "%s\nlabel %s\nage %s\nsign %s\ncosign %s\n", EditorPubHeader, e.Label, e.Recipient, e.Sign, e.Cosign)
}

// ParseEditorPublic parses a LABEL.key.pub file.
func ParseEditorPublic(text []byte) (Editor, error) {
	var e Editor
	r, err := newLineReader("editor public key", string(text), EditorPubHeader)
	if err != nil {
		return e, err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"label", &e.Label}, {"age", &e.Recipient}, {"sign", &e.Sign}, {"cosign", &e.Cosign}} {
		if *f.dst, err = r.value(f.key); err != nil {
			return e, err
		}
	}
	if err := r.end(); err != nil {
		return e, err
	}
	// Reuse the bundle's checks: a public key file must be something a
	// bundle can list.
	probe := Bundle{Editors: []Editor{e}}
	if err := probe.checkEditors(); err != nil {
		return e, fmt.Errorf("editor public key: %w", err)
	}
	return e, nil
}

// verifierFor derives the verifier key of a signed-note signer key and
// checks the key's name.
func verifierFor(skey, name string) (string, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if s.Name() != name {
		return "", fmt.Errorf("%w: key is named %q, want %q", ErrMalformed, clip(s.Name()), name)
	}
	// note.Signer does not expose its public key; the encoded signer key
	// holds the private seed, from which the verifier key is derived.
	return signerToVerifier(skey)
}

// SignerKey is a single signed-note Ed25519 key in a file: the newsroom key
// (sealed with a passphrase) or the server's log key (on the server's disk).
//
//	fieldtip/newsroom-key/v1   (or fieldtip/log-key/v1)
//	sign <signed-note signer key>
type SignerKey struct {
	Signer   note.Signer
	Verifier string
	skey     string
	header   string
}

// GenerateSignerKey creates a signed-note Ed25519 key named name, for a key
// file with the given header (NewsroomKeyHeader or LogKeyHeader).
func GenerateSignerKey(header, name string) (*SignerKey, error) {
	sk, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", name, err)
	}
	return ParseSignerKey(header, fmt.Appendf(nil, "%s\nsign %s\n", header, sk))
}

// Marshal returns the key file plaintext.
func (k *SignerKey) Marshal() []byte { return fmt.Appendf(nil, "%s\nsign %s\n", k.header, k.skey) }

// ParseSignerKey parses a single-key file's plaintext with the given header.
func ParseSignerKey(header string, text []byte) (*SignerKey, error) {
	r, err := newLineReader("key file", string(text), header)
	if err != nil {
		return nil, err
	}
	k := &SignerKey{header: header}
	if k.skey, err = r.value("sign"); err != nil {
		return nil, err
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if k.Signer, err = note.NewSigner(k.skey); err != nil {
		return nil, fmt.Errorf("key file: %w: %w", ErrMalformed, err)
	}
	if k.Verifier, err = signerToVerifier(k.skey); err != nil {
		return nil, err
	}
	return k, nil
}

// signerToVerifier derives a verifier key from a signed-note Ed25519 signer
// key ("PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)"). sumdb/note offers no
// such function, so this decodes the documented key encoding by hand and
// re-encodes the public key with note.NewEd25519VerifierKey.
func signerToVerifier(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", fmt.Errorf("%w: not a signed-note signer key", ErrMalformed)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", fmt.Errorf("%w: not an Ed25519 signed-note signer key", ErrMalformed)
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}
