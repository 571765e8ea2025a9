package crypto

import (
	"fmt"
	"strconv"
	"strings"
)

// LineReader walks the body of a signed note or key file strictly, by the
// common rules of fieldtip's line formats (docs/formats.md): every line is
// "key value…" with single spaces, and the caller asks for the keys in the
// order the format fixes. Its errors wrap ErrMalformed, name the format
// (what) and the line, and never quote a line holding a secret key. It is
// exported for the formats of package audit, which follow the same rules:
// one reader, not a copy per package (issue 12).
type LineReader struct {
	what  string
	lines []string
	n     int
}

// lineReader is this package's name for it.
type lineReader = LineReader

// NewLineReader starts reading text, whose first line must be header.
func NewLineReader(what, text, header string) (*LineReader, error) {
	return newLineReader(what, text, header)
}

// Next reads a line "key f1 f2 …" with exactly nfields fields after key.
func (r *LineReader) Next(key string, nfields int) ([]string, error) { return r.next(key, nfields) }

// Value reads a line "key value".
func (r *LineReader) Value(key string) (string, error) { return r.value(key) }

// ParseInt parses s, the value of key, as a canonical decimal integer in
// [min, max].
func (r *LineReader) ParseInt(key, s string, min, max int64) (int64, error) {
	return r.parseInt(key, s, min, max)
}

// End checks that every line was read.
func (r *LineReader) End() error { return r.end() }

func newLineReader(what, text, header string) (*lineReader, error) {
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("%s: %w: does not end in a newline", what, ErrMalformed)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if lines[0] != header {
		return nil, fmt.Errorf("%s: %w: first line is %q, want %q", what, ErrMalformed, quoteLine(lines[0]), header)
	}
	return &lineReader{what: what, lines: lines, n: 1}, nil
}

// peek returns the key of the next line, or "" at the end.
func (r *lineReader) peek() string {
	if r.n >= len(r.lines) {
		return ""
	}
	k, _, _ := strings.Cut(r.lines[r.n], " ")
	return k
}

// next reads a line "key f1 f2 …" with exactly nfields fields after the key.
func (r *lineReader) next(key string, nfields int) ([]string, error) {
	if r.n >= len(r.lines) {
		return nil, fmt.Errorf("%s: %w: missing %q line", r.what, ErrMalformed, key)
	}
	line := r.lines[r.n]
	fields := strings.Split(line, " ")
	if fields[0] != key {
		return nil, fmt.Errorf("%s: %w: line %d is %q, want a %q line", r.what, ErrMalformed, r.n+1, quoteLine(line), key)
	}
	if len(fields)-1 != nfields {
		return nil, fmt.Errorf("%s: %w: %q line has %d fields, want %d", r.what, ErrMalformed, key, len(fields)-1, nfields)
	}
	for _, f := range fields[1:] {
		if f == "" {
			return nil, fmt.Errorf("%s: %w: %q line has an empty field (double space?)", r.what, ErrMalformed, key)
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

func (r *lineReader) int(key string, min, max int64) (int64, error) {
	s, err := r.value(key)
	if err != nil {
		return 0, err
	}
	return r.parseInt(key, s, min, max)
}

func (r *lineReader) parseInt(key, s string, min, max int64) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(v, 10) != s || v < min || v > max {
		return 0, fmt.Errorf("%s: %w: %s %q is not a canonical integer in [%d, %d]", r.what, ErrMalformed, key, clip(s), min, max)
	}
	return v, nil
}

func (r *lineReader) end() error {
	if r.n < len(r.lines) {
		return fmt.Errorf("%s: %w: unexpected line %d %q", r.what, ErrMalformed, r.n+1, quoteLine(r.lines[r.n]))
	}
	return nil
}

// quoteLine clips a line for an error message, unless it holds a secret
// key (a key file's line, or one pasted where a public key belongs):
// errors never print a secret (STYLE.md, Errors).
func quoteLine(s string) string {
	if u := strings.ToUpper(s); strings.Contains(u, "SECRET-KEY") || strings.Contains(u, "PRIVATE+KEY") {
		return "(a line holding a secret key)"
	}
	return clip(s)
}

func clip(s string) string {
	if len(s) > 48 {
		return s[:48] + "…"
	}
	return s
}
