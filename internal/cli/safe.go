package cli

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TerminalSafe returns s ready for a terminal: every character that could
// move the cursor, rewrite the screen or the window title, or make text
// read other than it is stored is shown as an escape instead — C0 controls
// but tab and newline (ESC as \x1b, CR as \x0d), DEL and the C1 controls
// (\x9b is a one-byte CSI on some terminals), the Unicode format
// characters (bidi embeddings, overrides and isolates such as U+202E as
// \u202e, zero-width spaces and joiners, the byte-order mark), the line
// and paragraph separators, and bytes that are not UTF-8 (\xff).
//
// Every string that came from the network or from a tip (a server's error
// messages, a login challenge's origin, editor labels, attachment names, a
// tip's text) reaches a terminal of fieldtip or newsdesk through it (issue
// 11): a server, a CDN or proxy in its path, or the author of a tip, must
// not be able to rewrite what a source or an editor sees. A backslash is
// left as it is: the escapes are for reading, not for decoding.
func TerminalSafe(s string) string {
	i := strings.IndexFunc(s, needsEscape)
	if i < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case needsEscape(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

// needsEscape reports whether TerminalSafe escapes r.
func needsEscape(r rune) bool {
	switch {
	case r == '\t' || r == '\n':
		return false
	case unicode.IsControl(r): // C0, DEL, C1
		return true
	case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
		return true
	}
	return false
}
