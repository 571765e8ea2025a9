package crypto

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// TipIDSize is the size of a tip id: random, never sequential, so ids say
// nothing about arrival order or volume.
const TipIDSize = 16

// MaxReceiptSize caps a signed receipt.
const MaxReceiptSize = 1024

// Receipt is the server's signed statement that it durably holds a tip.
// A *Receipt returned by OpenReceipt has verified.
//
// Its text, after the ReceiptHeader line:
//
//	tip <16 bytes, unpadded base64url>
//	sha256 <64 lowercase hex digits of the whole ciphertext>
//	length <ciphertext bytes>
//	day <YYYY-MM-DD, UTC>
type Receipt struct {
	TipID  [TipIDSize]byte
	SHA256 [32]byte
	Length int64
	Day    string
}

// TipIDString returns the tip id as printed everywhere: unpadded base64url.
func (r *Receipt) TipIDString() string { return FormatTipID(r.TipID) }

// FormatTipID encodes a tip id in unpadded base64url.
func FormatTipID(id [TipIDSize]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// ParseTipID decodes a tip id printed by FormatTipID.
func ParseTipID(s string) ([TipIDSize]byte, error) {
	var id [TipIDSize]byte
	// Strict decoding still skips CR and LF: compare the re-encoding too.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != TipIDSize || FormatTipID([TipIDSize]byte(b)) != s {
		return id, fmt.Errorf("tip id %q: %w: want %d bytes of unpadded base64url", clip(s), ErrMalformed, TipIDSize)
	}
	copy(id[:], b)
	return id, nil
}

// Day formats t as a day-precision date in UTC.
func Day(t time.Time) string { return t.UTC().Format(DateLayout) }

// SignReceipt signs a receipt with the server's log key.
func SignReceipt(r *Receipt, log note.Signer) ([]byte, error) {
	if _, err := time.Parse(DateLayout, r.Day); err != nil {
		return nil, fmt.Errorf("receipt: day %q: %w", r.Day, err)
	}
	if r.Length <= 0 {
		return nil, fmt.Errorf("receipt: length %d is not positive", r.Length)
	}
	text := fmt.Sprintf("%s\ntip %s\nsha256 %s\nlength %d\nday %s\n",
		ReceiptHeader, r.TipIDString(), hex.EncodeToString(r.SHA256[:]), r.Length, r.Day)
	msg, err := note.Sign(&note.Note{Text: text}, log)
	if err != nil {
		return nil, fmt.Errorf("receipt: sign: %w", err)
	}
	return msg, nil
}

// OpenReceipt verifies a receipt against the log verifier key named in the
// bundle and parses it.
func OpenReceipt(msg []byte, logKey string) (*Receipt, error) {
	if len(msg) > MaxReceiptSize {
		return nil, fmt.Errorf("receipt: %w: %d bytes, more than %d", ErrMalformed, len(msg), MaxReceiptSize)
	}
	v, err := note.NewVerifier(logKey)
	if err != nil {
		return nil, fmt.Errorf("receipt: log key: %w", err)
	}
	n, err := OpenNote("receipt", msg, note.VerifierList(v))
	if err != nil {
		return nil, err
	}
	rd, err := newLineReader("receipt", n.Text, ReceiptHeader)
	if err != nil {
		return nil, err
	}
	rc := &Receipt{}
	id, err := rd.value("tip")
	if err != nil {
		return nil, err
	}
	if rc.TipID, err = ParseTipID(id); err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	h, err := rd.value("sha256")
	if err != nil {
		return nil, err
	}
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 || hex.EncodeToString(b) != h {
		return nil, fmt.Errorf("receipt: %w: sha256 is not 64 lowercase hex digits", ErrMalformed)
	} else {
		copy(rc.SHA256[:], b)
	}
	if rc.Length, err = rd.int("length", 1, 1<<40); err != nil {
		return nil, err
	}
	if rc.Day, err = rd.value("day"); err != nil {
		return nil, err
	}
	if t, err := time.Parse(DateLayout, rc.Day); err != nil || t.Format(DateLayout) != rc.Day {
		return nil, fmt.Errorf("receipt: %w: day %q is not YYYY-MM-DD", ErrMalformed, clip(rc.Day))
	}
	if err := rd.end(); err != nil {
		return nil, err
	}
	return rc, nil
}
