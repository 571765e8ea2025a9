package crypto

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// seedVectors returns the vectors of testdata/<format>, failing f if there
// are none: a fuzzer without seeds explores little.
func seedVectors(f *testing.F, format string) []seed {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", format, "*"))
	if err != nil {
		f.Fatal(err)
	}
	var seeds []seed
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		h, body, err := parseVector(b)
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		seeds = append(seeds, seed{h, body})
	}
	if len(seeds) == 0 {
		f.Fatalf("no seed vectors in testdata/%s", format)
	}
	return seeds
}

type seed struct {
	h    map[string][]string
	body []byte
}

// checkSentinel fails t unless err wraps one of the package's sentinels.
func checkSentinel(t *testing.T, fn string, err error, sentinels ...error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s error = %v, wraps none of %q", fn, err, sentinels)
}

// Anything OpenBundle accepts is its input exactly, formats back to its
// note text, and is what SignBundle makes of it.
func FuzzOpenBundle(f *testing.F) {
	for _, s := range seedVectors(f, "bundle") {
		if first(s.h, "newsroom") != testNewsroom.vkey {
			f.Fatalf("bundle vector pinned to %q, not the test newsroom key", first(s.h, "newsroom"))
		}
		f.Add(s.body)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		b, err := OpenBundle(msg, testNewsroom.vkey)
		if err != nil {
			if b != nil {
				t.Fatalf("OpenBundle returned a bundle with error %v", err)
			}
			checkSentinel(t, "OpenBundle", err, ErrMalformed, ErrBadSignature, ErrUnknownSigner)
			return
		}
		if err := checkOpenedBundle(b, msg); err != nil {
			t.Fatal(err)
		}
	})
}

// Anything OpenReceipt accepts is what SignReceipt makes of it.
func FuzzOpenReceipt(f *testing.F) {
	for _, s := range seedVectors(f, "receipt") {
		f.Add(s.body)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := OpenReceipt(msg, testLog.vkey)
		if err != nil {
			if r != nil {
				t.Fatalf("OpenReceipt returned a receipt with error %v", err)
			}
			checkSentinel(t, "OpenReceipt", err, ErrMalformed, ErrBadSignature, ErrUnknownSigner)
			return
		}
		if again := mustSignReceipt(r, testLog); !bytes.Equal(again, msg) {
			t.Fatalf("OpenReceipt accepted %q, which SignReceipt writes as %q", msg, again)
		}
	})
}

// Anything OpenLogin accepts is what SignLogin makes of it, signed by the
// editor it names.
func FuzzOpenLogin(f *testing.F) {
	for _, s := range seedVectors(f, "login") {
		f.Add(s.body)
	}
	b := newTestBundle(testAlice, testBob)
	keys := map[string]testNoteKey{"alice": newTestNoteKey("alice", ""), "bob": newTestNoteKey("bob", "")}
	f.Fuzz(func(t *testing.T, msg []byte) {
		l, err := OpenLogin(msg, b)
		if err != nil {
			if l != nil {
				t.Fatalf("OpenLogin returned a login with error %v", err)
			}
			checkSentinel(t, "OpenLogin", err, ErrMalformed, ErrBadSignature, ErrUnknownSigner)
			return
		}
		k, ok := keys[l.Editor]
		if !ok {
			t.Fatalf("OpenLogin accepted a login by %q, not an editor", l.Editor)
		}
		if again := mustSignLogin(l, k); !bytes.Equal(again, msg) {
			t.Fatalf("OpenLogin accepted %q, which SignLogin writes as %q", msg, again)
		}
	})
}

// Anything ParseTip accepts is MarshalTip of the result followed by zeros.
func FuzzParseTip(f *testing.F) {
	for _, s := range seedVectors(f, "tip") {
		f.Add(s.body)
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		tip, err := ParseTip(plain)
		if err != nil {
			if tip != nil {
				t.Fatalf("ParseTip returned a tip with error %v", err)
			}
			checkSentinel(t, "ParseTip", err, ErrMalformed)
			return
		}
		if err := checkParsedTip(tip, plain); err != nil {
			t.Fatal(err)
		}
	})
}

// CheckCiphertext never panics and refuses only with ErrBadCiphertext.
func FuzzCheckCiphertext(f *testing.F) {
	for _, s := range seedVectors(f, "ciphertext") {
		count, err := strconv.Atoi(first(s.h, "count"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.body, first(s.h, "stanza") == StanzaHybrid, uint8(count))
	}
	f.Fuzz(func(t *testing.T, ct []byte, hybrid bool, count uint8) {
		stanza := StanzaX25519
		if hybrid {
			stanza = StanzaHybrid
		}
		if err := CheckCiphertext(ct, stanza, int(count)); err != nil {
			checkSentinel(t, "CheckCiphertext", err, ErrBadCiphertext)
		}
	})
}

// Anything ParseEditorPublic accepts is what MarshalEditorPublic writes.
func FuzzParseEditorPublic(f *testing.F) {
	for _, s := range seedVectors(f, "editor-pub") {
		f.Add(s.body)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		e, err := ParseEditorPublic(text)
		if err != nil {
			checkSentinel(t, "ParseEditorPublic", err, ErrMalformed)
			return
		}
		if again := MarshalEditorPublic(e); !bytes.Equal(again, text) {
			t.Fatalf("ParseEditorPublic accepted %q, which MarshalEditorPublic writes as %q", text, again)
		}
	})
}

// Anything ParseEditorKey accepts is what Marshal writes.
func FuzzParseEditorKey(f *testing.F) {
	for _, s := range seedVectors(f, "editor-key") {
		f.Add(s.body)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		k, err := ParseEditorKey(text)
		if err != nil {
			if k != nil {
				t.Fatalf("ParseEditorKey returned a key with error %v", err)
			}
			checkSentinel(t, "ParseEditorKey", err, ErrMalformed)
			return
		}
		if again := k.Marshal(); !bytes.Equal(again, text) {
			t.Fatalf("ParseEditorKey accepted %q, which Marshal writes as %q", text, again)
		}
	})
}
