package audit

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// This file holds the strict readers of the line formats (docs/formats.md,
// "Common rules"). They mirror crypto's unexported ones; the rules are the
// same.

// lineReader walks a text strictly: every line is "key value…" with single
// spaces, and the caller asks for the keys in the order the format fixes.
type lineReader struct {
	what  string
	lines []string
	n     int
}

func newLineReader(what, text, header string) (*lineReader, error) {
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("%s: %w: does not end in a newline", what, crypto.ErrMalformed)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if lines[0] != header {
		return nil, fmt.Errorf("%s: %w: first line is %q, want %q", what, crypto.ErrMalformed, clip(lines[0]), header)
	}
	return &lineReader{what: what, lines: lines, n: 1}, nil
}

// next reads a line "key f1 f2 …" with exactly nfields fields after the key.
func (r *lineReader) next(key string, nfields int) ([]string, error) {
	if r.n >= len(r.lines) {
		return nil, fmt.Errorf("%s: %w: missing %q line", r.what, crypto.ErrMalformed, key)
	}
	line := r.lines[r.n]
	fields := strings.Split(line, " ")
	if fields[0] != key {
		return nil, fmt.Errorf("%s: %w: line %d is %q, want a %q line", r.what, crypto.ErrMalformed, r.n+1, clip(line), key)
	}
	if len(fields)-1 != nfields {
		return nil, fmt.Errorf("%s: %w: %q line has %d fields, want %d", r.what, crypto.ErrMalformed, key, len(fields)-1, nfields)
	}
	for _, f := range fields[1:] {
		if f == "" {
			return nil, fmt.Errorf("%s: %w: %q line has an empty field (double space?)", r.what, crypto.ErrMalformed, key)
		}
	}
	r.n++
	return fields[1:], nil
}

func (r *lineReader) value(key string) (string, error) {
	f, err := r.next(key, 1)
	if err != nil {
		return "", err
	}
	return f[0], nil
}

func (r *lineReader) end() error {
	if r.n < len(r.lines) {
		return fmt.Errorf("%s: %w: unexpected line %d %q", r.what, crypto.ErrMalformed, r.n+1, clip(r.lines[r.n]))
	}
	return nil
}

func (r *lineReader) int(key, s string, min, max int64) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(v, 10) != s || v < min || v > max {
		return 0, fmt.Errorf("%s: %w: %s %q is not a canonical integer in [%d, %d]", r.what, crypto.ErrMalformed, key, clip(s), min, max)
	}
	return v, nil
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

// openNote opens a note that must carry exactly one canonical signature,
// by a key among known, and nothing after it (docs/formats.md, "Signed
// notes"). It mirrors crypto's. On an unknown signer it also returns the
// signature's key name, for a better error; nothing else of the note.
func openNote(what string, msg []byte, known note.Verifiers) (*note.Note, string, error) {
	n, err := note.Open(msg, known)
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		name := ""
		if sigs := unverified.Note.UnverifiedSigs; len(sigs) == 1 {
			name = sigs[0].Name
		}
		return nil, name, fmt.Errorf("%s: %w", what, crypto.ErrUnknownSigner)
	case errors.As(err, &invalid):
		return nil, "", fmt.Errorf("%s: %w (key %s)", what, crypto.ErrBadSignature, invalid.Name)
	case err != nil:
		// note.Open reports a malformed note and a bad signature from a
		// known key alike.
		return nil, "", fmt.Errorf("%s: %w: %w", what, crypto.ErrBadSignature, err)
	}
	if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		return nil, "", fmt.Errorf("%s: %w: %d signatures, want exactly one", what, crypto.ErrMalformed, len(n.Sigs)+len(n.UnverifiedSigs))
	}
	// One encoding: note.Open skips a repeated signature line of a key it
	// already checked, and decodes base64 non-strictly.
	sig := n.Sigs[0]
	if _, err := base64.StdEncoding.Strict().DecodeString(sig.Base64); err != nil ||
		string(msg) != n.Text+"\n— "+sig.Name+" "+sig.Base64+"\n" {
		return nil, "", fmt.Errorf("%s: %w: signature block is not exactly one canonical signature line", what, crypto.ErrMalformed)
	}
	return n, "", nil
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
