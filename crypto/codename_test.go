package crypto

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// testCodename is made of listed words that appear nowhere in
// ParseCodename's error texts, so the tests can check that no word leaks.
const testCodename = "copper truck mountain harbor velvet quarry nutmeg"

func TestCodenameWordSet(t *testing.T) {
	set := codenameWordSet()
	if len(set) != 7776 {
		t.Fatalf("word set has %d words, want 7776", len(set))
	}
	for _, w := range []string{"abacus", "zoom", "drop-down", "yo-yo", "t-shirt", "copper"} {
		if _, ok := set[w]; !ok {
			t.Errorf("word set lacks %q", w)
		}
	}
	for w := range set {
		if w != strings.ToLower(w) || strings.ContainsFunc(w, func(r rune) bool { return r <= ' ' || r > '~' }) {
			t.Errorf("listed word %q is not lowercase printable ASCII without spaces", w)
		}
	}
}

func TestParseCodename(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want string // "" for ErrBadCodename
	}{
		{"canonical", testCodename, testCodename},
		{"upper case", "COPPER Truck mounTain HARBOR velvet quarry nutmeg", testCodename},
		{"outer space", "  \t" + testCodename + " \n", testCodename},
		{"inner runs", "copper  truck\tmountain \t harbor\n\nvelvet quarry   nutmeg", testCodename},
		{"no-break space", "copper\u00a0truck mountain harbor velvet quarry nutmeg", testCodename},
		{"hyphenated words", "yo-yo t-shirt drop-down felt-tip copper truck nutmeg", "yo-yo t-shirt drop-down felt-tip copper truck nutmeg"},
		{"eight words", testCodename + " basin", testCodename + " basin"},
		{"sixteen words", testCodename + " " + testCodename + " basin walnut", testCodename + " " + testCodename + " basin walnut"},
		{"empty", "", ""},
		{"only spaces", "   \t ", ""},
		{"six words", "copper truck mountain harbor velvet quarry", ""},
		{"one word", "copper", ""},
		{"seventeen words", testCodename + " " + testCodename + " basin walnut pumice", ""},
		{"unknown first word", "cooper truck mountain harbor velvet quarry nutmeg", ""},
		{"unknown last word", "copper truck mountain harbor velvet quarry nutmge", ""},
		{"typo in the middle", "copper truck mountian harbor velvet quarry nutmeg", ""},
		{"punctuation", "copper, truck mountain harbor velvet quarry nutmeg", ""},
		{"hyphen instead of space", "copper-truck mountain harbor velvet quarry nutmeg basin", ""},
		{"zero-width space", "copper\u200btruck mountain harbor velvet quarry nutmeg basin", ""},
		{"digits", "copper truck mountain harbor velvet quarry 12345", ""},
		{"too long", testCodename + strings.Repeat(" ", 1100), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseCodename(c.in)
			if c.want != "" {
				if err != nil || got != c.want {
					t.Fatalf("ParseCodename(%q) = %q, %v; want %q, nil", c.in, got, err, c.want)
				}
				return
			}
			if !errors.Is(err, ErrBadCodename) || got != "" {
				t.Fatalf("ParseCodename(%q) = %q, %v; want ErrBadCodename", c.in, got, err)
			}
			msg := strings.ToLower(err.Error())
			// Split as a person would read the words back.
			sep := func(r rune) bool { return strings.ContainsRune(" ,-\t\n\u00a0\u200b", r) }
			for _, w := range strings.FieldsFunc(strings.ToLower(c.in), sep) {
				if strings.Contains(msg, w) {
					t.Errorf("error %q quotes the typed word %q", err, w)
				}
			}
		})
	}
}

// The error names the position of the first unlisted word.
func TestParseCodenamePosition(t *testing.T) {
	words := strings.Fields(testCodename)
	for i := range words {
		bad := append([]string(nil), words...)
		bad[i] += "x"
		_, err := ParseCodename(strings.Join(bad, " "))
		if !errors.Is(err, ErrBadCodename) {
			t.Fatalf("word %d misspelt: err = %v, want ErrBadCodename", i+1, err)
		}
		if want := "word " + string(rune('1'+i)) + " of 7 "; !strings.Contains(err.Error(), want) {
			t.Errorf("word %d misspelt: err = %q, want it to contain %q", i+1, err, want)
		}
		if strings.Contains(err.Error(), bad[i]) {
			t.Errorf("error %q quotes the misspelt word", err)
		}
	}
}

func TestGenerateCodename(t *testing.T) {
	a, err := GenerateCodename()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateCodename()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two codenames are equal: the generator is not random")
	}
	for _, c := range []string{a, b} {
		words := strings.Split(c, " ")
		if len(words) != CodenameWords {
			t.Errorf("codename has %d words, want %d", len(words), CodenameWords)
		}
		for i, w := range words {
			if _, ok := codenameWordSet()[w]; !ok {
				t.Errorf("word %d of a generated codename is not listed", i+1)
			}
		}
		if got, err := ParseCodename(c); err != nil || got != c {
			t.Errorf("ParseCodename(GenerateCodename()) = %q, %v; want it unchanged", got, err)
		}
	}
}

// The known answers were computed with the reference implementation's CLI
// (Debian's argon2 0~20171227), independently of x/crypto:
//
//	printf 'fieldtip/outbox/v1\0copper truck mountain harbor velvet quarry nutmeg' |
//	    argon2 fieldtip-outbox-salt-0123456789a -id -t 3 -k 65536 -p 1 -l 32 -r
func TestDeriveOutboxKeyKnownAnswer(t *testing.T) {
	var salt [32]byte
	copy(salt[:], "fieldtip-outbox-salt-0123456789a")
	for _, c := range []struct {
		kdf  CodenameKDF
		want string
	}{
		{CodenameKDF{MemoryKiB: 64, Time: 1}, "b44ba8f4274923b93ca7613c5de0001232e9ca840321ec127fba58e993a53075"},
		{DefaultCodenameKDF, "02113eec37f4a5ff705a69b9f51f98b132d09e2cba2b331851617050f376077a"},
	} {
		key := DeriveOutboxKey(testCodename, salt, c.kdf)
		if got := hex.EncodeToString(key[:]); got != c.want {
			t.Errorf("DeriveOutboxKey(%+v) = %s, want %s", c.kdf, got, c.want)
		}
	}
}

func TestDeriveOutboxKeySeparates(t *testing.T) {
	cheap := CodenameKDF{MemoryKiB: 64, Time: 1}
	var salt, salt2 [32]byte
	salt2[0] = 1
	base := DeriveOutboxKey(testCodename, salt, cheap)
	if again := DeriveOutboxKey(testCodename, salt, cheap); again != base {
		t.Fatal("DeriveOutboxKey is not deterministic")
	}
	for name, k := range map[string][32]byte{
		"other codename": DeriveOutboxKey(testCodename+" basin", salt, cheap),
		"other salt":     DeriveOutboxKey(testCodename, salt2, cheap),
		"other memory":   DeriveOutboxKey(testCodename, salt, CodenameKDF{MemoryKiB: 128, Time: 1}),
		"other time":     DeriveOutboxKey(testCodename, salt, CodenameKDF{MemoryKiB: 64, Time: 2}),
	} {
		if k == base {
			t.Errorf("%s gives the same key", name)
		}
	}
}

func TestDeriveOutboxKeyRefusesNoCost(t *testing.T) {
	for _, kdf := range []CodenameKDF{{}, {MemoryKiB: 64}, {Time: 1}, {MemoryKiB: 7, Time: 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("DeriveOutboxKey(%+v) did not panic", kdf)
				}
			}()
			DeriveOutboxKey(testCodename, [32]byte{}, kdf)
		}()
	}
}

// BenchmarkDeriveOutboxKey measures the default cost: what opening the
// outbox costs a source (and each guess costs an attacker).
func BenchmarkDeriveOutboxKey(b *testing.B) {
	var salt [32]byte
	for b.Loop() {
		DeriveOutboxKey(testCodename, salt, DefaultCodenameKDF)
	}
}
