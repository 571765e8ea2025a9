package cli

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestTerminalSafe(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"plain text, unchanged", "plain text, unchanged"},
		{"lines\n\tand tabs stay", "lines\n\tand tabs stay"},
		{"Hyesan 혜산시 — copper", "Hyesan 혜산시 — copper"},
		{"\x1b[2J\x1b[Hcleared", `\x1b[2J\x1b[Hcleared`},
		{"ok\rfieldtip: sent", `ok\x0dfieldtip: sent`},
		{"\x1b]0;pwned\x07title", `\x1b]0;pwned\x07title`},
		{"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", `\x1b]8;;http://x\x1b\link\x1b]8;;\x1b\`},
		{"nul\x00del\x7f", `nul\x00del\x7f`},
		{"c1 \u009b31m csi", `c1 \x9b31m csi`},
		{"invoice_\u202egpj.exe", `invoice_\u202egpj.exe`},
		{"\u2066isolate\u2069 \u202aembed\u202c \u200eLRM\u200f", `\u2066isolate\u2069 \u202aembed\u202c \u200eLRM\u200f`},
		{"zero\u200bwidth\u200c\u200djoin\ufeffbom\u2060", `zero\u200bwidth\u200c\u200djoin\ufeffbom\u2060`},
		{"soft\u00adhyphen", `soft\xadhyphen`},
		{"line\u2028para\u2029", `line\u2028para\u2029`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
		{"cut \xe2\x80", `cut \xe2\x80`},
		{"replacement \ufffd kept", "replacement \ufffd kept"},
		{`back\slash`, `back\slash`},
	} {
		if got := TerminalSafe(tt.in); got != tt.want {
			t.Errorf("TerminalSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzTerminalSafe: the output is valid UTF-8 without a control character
// (but tab and newline), a format character or a line or paragraph
// separator; a string without any of those is returned unchanged.
func FuzzTerminalSafe(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b]0;t\x07", "a\rb", "\u202e", "\xff", "\u009b", "x\n\ty"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := TerminalSafe(s)
		if !utf8.ValidString(got) {
			t.Fatalf("TerminalSafe(%q) = %q, not UTF-8", s, got)
		}
		if i := strings.IndexFunc(got, needsEscape); i >= 0 {
			t.Fatalf("TerminalSafe(%q) = %q, with %q at %d", s, got, got[i:], i)
		}
		clean := utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
			return (unicode.IsControl(r) && r != '\t' && r != '\n') || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
		}) < 0
		if clean && got != s {
			t.Fatalf("TerminalSafe(%q) = %q, want it unchanged", s, got)
		}
	})
}
