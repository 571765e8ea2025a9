package crypto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// An editor's cosigning key is one Ed25519 key, listed in the bundle as a
// signed-note verifier (type 0x01, named CosignName(label)), and used for one
// signature type only: C2SP tlog-cosignature/v1 (type 0x04), which signs
// "cosignature/v1", a timestamp and the checkpoint. The two helpers below
// re-encode the same key for torchwood's cosignature signer and verifier;
// torchwood has no constructor from a 0x01 key, so the few lines of key
// encoding are written here.

const (
	algEd25519       = 1
	algCosignatureV1 = 4
)

// CosignatureSigner returns the editor's cosigning key as a C2SP
// tlog-cosignature/v1 signer named CosignName(label), whose timestamps are
// day precision (see CosignatureSigner).
func (k *EditorKey) CosignatureSigner() (*CosignatureSigner, error) {
	rest, ok := strings.CutPrefix(k.cosign, "PRIVATE+KEY+")
	name, rest, ok2 := strings.Cut(rest, "+")
	_, key64, ok3 := strings.Cut(rest, "+")
	if !ok || !ok2 || !ok3 {
		return nil, fmt.Errorf("editor key: %w: cosigning key is not a signed-note signer key", ErrMalformed)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algEd25519 {
		return nil, fmt.Errorf("editor key: %w: cosigning key is not an Ed25519 key", ErrMalformed)
	}
	key := ed25519.NewKeyFromSeed(raw[1:])
	// torchwood's signer computes the name's key hash; reuse it, and
	// sign ourselves.
	tw, err := torchwood.NewCosignatureSigner(name, key)
	if err != nil {
		return nil, fmt.Errorf("editor key: cosigning key: %w", err)
	}
	return &CosignatureSigner{name: name, hash: tw.KeyHash(), key: key}, nil
}

// CosignatureSigner is a C2SP tlog-cosignature/v1 signer (a note.Signer)
// whose timestamp is 00:00:00 UTC of the day it signs, not the second:
// cosignatures are published in claim trails, where no time is finer
// than a day (docs/claims.md). torchwood's signer always writes the
// current second and has no option; its verifier, and any tlog-cosignature
// verifier, accepts any timestamp, and a witness that re-signs the same
// checkpoint on the same day writes the same timestamp.
type CosignatureSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	// testOnlyNow replaces time.Now; nil in production.
	testOnlyNow func() time.Time
}

// Name returns the key name, CosignName(label).
func (s *CosignatureSigner) Name() string { return s.name }

// KeyHash returns the tlog-cosignature/v1 key hash of the key.
func (s *CosignatureSigner) KeyHash() uint32 { return s.hash }

// Sign signs a checkpoint (the text of a C2SP tlog-checkpoint, in its one
// form) as tlog-cosignature/v1 does, with the timestamp of the start of
// today in UTC: the signature is the timestamp, 8 bytes big-endian,
// followed by the Ed25519 signature of "cosignature/v1\ntime <timestamp>\n"
// and the checkpoint.
func (s *CosignatureSigner) Sign(msg []byte) ([]byte, error) {
	c, err := torchwood.ParseCheckpoint(string(msg))
	if err != nil {
		return nil, fmt.Errorf("cosign: not a checkpoint: %w", err)
	}
	if c.String() != string(msg) {
		return nil, fmt.Errorf("cosign: checkpoint not in its one form")
	}
	now := time.Now
	if s.testOnlyNow != nil {
		now = s.testOnlyNow
	}
	y, m, d := now().UTC().Date()
	t := uint64(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix())
	sig := binary.BigEndian.AppendUint64(make([]byte, 0, 8+ed25519.SignatureSize), t)
	return append(sig, ed25519.Sign(s.key, fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", t, msg))...), nil
}

// ErrCosignatureTime: a cosignature's timestamp is not 00:00:00 UTC of a
// day.
var ErrCosignatureTime = errors.New("cosignature time is not the start of a day")

// CosignatureDay returns the day, YYYY-MM-DD in UTC, of a
// tlog-cosignature/v1 signature whose timestamp is the start of that day,
// and ErrCosignatureTime for any finer time. It does not verify the
// signature.
func CosignatureDay(sig note.Signature) (string, error) {
	t, err := torchwood.CosignatureTimestamp(sig)
	if err != nil {
		return "", fmt.Errorf("%w: cosignature: %w", ErrMalformed, err)
	}
	if t%86400 != 0 {
		return "", fmt.Errorf("cosignature by %q: %w", clip(sig.Name), ErrCosignatureTime)
	}
	return time.Unix(t, 0).UTC().Format(DateLayout), nil
}

// CosignatureVerifier returns the C2SP tlog-cosignature/v1 verifier of an
// editor's cosigning key as a bundle lists it (a signed-note Ed25519
// verifier key). It checks the key's name and hash before re-encoding it.
func CosignatureVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%w: cosigning key: %w", ErrMalformed, err)
	}
	_, rest, _ := strings.Cut(vkey, "+")
	_, key64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != algEd25519 {
		return nil, fmt.Errorf("%w: cosigning key %q is not an Ed25519 key", ErrMalformed, clip(vkey))
	}
	key := append([]byte{algCosignatureV1}, raw[1:]...)
	h := sha256.Sum256(append([]byte(v.Name()+"\n"), key...))
	cv, err := torchwood.NewCosignatureVerifier(fmt.Sprintf("%s+%08x+%s", v.Name(), binary.BigEndian.Uint32(h[:4]),
		base64.StdEncoding.EncodeToString(key)))
	if err != nil {
		return nil, fmt.Errorf("%w: cosigning key: %w", ErrMalformed, err)
	}
	return cv, nil
}
