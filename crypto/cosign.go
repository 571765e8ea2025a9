package crypto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

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
// tlog-cosignature/v1 signer named CosignName(label).
func (k *EditorKey) CosignatureSigner() (*torchwood.CosignatureSigner, error) {
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
	return torchwood.NewCosignatureSigner(name, ed25519.NewKeyFromSeed(raw[1:]))
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
