package audit

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// This file holds the strict readers of the line formats (docs/formats.md,
// "Common rules"): crypto's LineReader, with the value parsers audit's
// formats add.

// lineReader is crypto.LineReader under the names audit's parsers call.
type lineReader struct {
	*crypto.LineReader
	what string
}

func newLineReader(what, text, header string) (*lineReader, error) {
	r, err := crypto.NewLineReader(what, text, header)
	if err != nil {
		return nil, err
	}
	return &lineReader{LineReader: r, what: what}, nil
}

func (r *lineReader) next(key string, nfields int) ([]string, error) { return r.Next(key, nfields) }
func (r *lineReader) value(key string) (string, error)               { return r.Value(key) }
func (r *lineReader) end() error                                     { return r.End() }

func (r *lineReader) int(key, s string, min, max int64) (int64, error) {
	return r.ParseInt(key, s, min, max)
}

func (r *lineReader) day(key, s string) (string, error) {
	if !validDay(s) {
		return "", fmt.Errorf("%s: %w: %s %q is not a day YYYY-MM-DD", r.what, crypto.ErrMalformed, key, clip(s))
	}
	return s, nil
}

// hex32 parses 64 lowercase hex digits.
func (r *lineReader) hex32(key, s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 || hex.EncodeToString(b) != s {
		return h, fmt.Errorf("%s: %w: %s is not 64 lowercase hex digits", r.what, crypto.ErrMalformed, key)
	}
	copy(h[:], b)
	return h, nil
}

// treeHash parses a tree hash in standard, padded, canonical base64, as a
// C2SP checkpoint writes it (tlog.Hash.String).
func (r *lineReader) treeHash(key, s string) (tlog.Hash, error) {
	var h tlog.Hash
	// Strict decoding still skips CR and LF: compare the re-encoding too.
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tlog.HashSize || base64.StdEncoding.EncodeToString(b) != s {
		return h, fmt.Errorf("%s: %w: %s is not a 32-byte hash in standard base64", r.what, crypto.ErrMalformed, key)
	}
	copy(h[:], b)
	return h, nil
}

// raw32 parses 32 bytes of unpadded base64url.
func (r *lineReader) raw32(key, s string) ([32]byte, error) {
	var v [32]byte
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 32 || base64.RawURLEncoding.EncodeToString(b) != s {
		return v, fmt.Errorf("%s: %w: %s is not 32 bytes of unpadded base64url", r.what, crypto.ErrMalformed, key)
	}
	copy(v[:], b)
	return v, nil
}

func validDay(s string) bool {
	t, err := time.Parse(crypto.DateLayout, s)
	return err == nil && t.Format(crypto.DateLayout) == s
}

func clip(s string) string {
	if len(s) > 48 {
		return s[:48] + "…"
	}
	return s
}

// firstLine returns the first line of a note, without its newline.
func firstLine(msg []byte) string {
	s := string(msg[:min(len(msg), 64)])
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// signNote signs text with one signer and checks the size.
func signNote(what, text string, s note.Signer, max int) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		return nil, fmt.Errorf("%s: sign: %w", what, err)
	}
	if len(msg) > max {
		return nil, fmt.Errorf("%s: signed note is %d bytes, more than %d", what, len(msg), max)
	}
	return msg, nil
}
