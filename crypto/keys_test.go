package crypto

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
)

func TestGenerateEditorKey(t *testing.T) {
	for _, tt := range []struct {
		classic bool
		prefix  string
		stanza  string
	}{
		{true, "age1", StanzaX25519},
		{false, "age1pq1", StanzaHybrid},
	} {
		k, err := GenerateEditorKey("desk-1", tt.classic)
		if err != nil {
			t.Fatalf("GenerateEditorKey(classic=%v) error = %v", tt.classic, err)
		}
		if k.Label != "desk-1" || k.Public.Label != "desk-1" || !strings.HasPrefix(k.Public.Recipient, tt.prefix) {
			t.Errorf("GenerateEditorKey(classic=%v) = label %q, public %+v", tt.classic, k.Label, k.Public)
		}
		if tt.classic == strings.HasPrefix(k.Public.Recipient, "age1pq1") {
			t.Errorf("GenerateEditorKey(classic=%v) recipient %.12s…", tt.classic, k.Public.Recipient)
		}

		// Marshal → ParseEditorKey gives the same keys back.
		text := k.Marshal()
		k2, err := ParseEditorKey(text)
		if err != nil {
			t.Fatalf("ParseEditorKey(Marshal()) error = %v", err)
		}
		if k2.Public != k.Public || !bytes.Equal(k2.Marshal(), text) {
			t.Errorf("ParseEditorKey(Marshal()) = %+v, want %+v", k2.Public, k.Public)
		}

		// The public half round-trips and is something a bundle can list.
		pub := MarshalEditorPublic(k.Public)
		e, err := ParseEditorPublic(pub)
		if err != nil || e != k.Public {
			t.Errorf("ParseEditorPublic(MarshalEditorPublic(%+v)) = %+v, %v", k.Public, e, err)
		}
		b := &Bundle{Newsroom: testNewsroom.vkey, Version: 1, Expires: testExpires, Log: testLog.vkey, Policy: DefaultPolicy, Editors: []Editor{e}}
		if _, err := SignBundle(b, testNewsroom.signer()); err != nil {
			t.Errorf("SignBundle(bundle of the generated editor) error = %v", err)
		}
		if b.StanzaType() != tt.stanza {
			t.Errorf("StanzaType() = %q, want %q", b.StanzaType(), tt.stanza)
		}

		// The halves belong together: the identity decrypts what is
		// encrypted to the recipient, and the signing keys verify with the
		// public keys under the right names.
		rs, err := b.Recipients()
		if err != nil {
			t.Fatal(err)
		}
		var ct bytes.Buffer
		if err := encrypt(&ct, []byte("hello"), rs); err != nil {
			t.Fatal(err)
		}
		r, err := age.Decrypt(&ct, k2.Identity)
		if err != nil {
			t.Fatalf("decrypting with the parsed identity: %v", err)
		}
		if got, _ := io.ReadAll(r); string(got) != "hello" {
			t.Errorf("decrypted %q, want %q", got, "hello")
		}
		for _, c := range []struct {
			signer func() (note.Signer, error)
			vkey   string
		}{{k2.Signer, k.Public.Sign}, {k2.Cosigner, k.Public.Cosign}} {
			s, err := c.signer()
			if err != nil {
				t.Fatal(err)
			}
			msg, err := note.Sign(&note.Note{Text: "x\n"}, s)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := note.NewVerifier(c.vkey)
			if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
				t.Errorf("a note signed by %s does not verify with %s: %v", s.Name(), c.vkey, err)
			}
		}
	}

	for _, label := range []string{"", "Alice", "a b", "alice.cosign", strings.Repeat("a", 33)} {
		if k, err := GenerateEditorKey(label, true); err == nil {
			t.Errorf("GenerateEditorKey(%q) = %+v, want an error", label, k.Public)
		}
	}
}

func TestSignerKey(t *testing.T) {
	for _, header := range []string{NewsroomKeyHeader, LogKeyHeader} {
		k, err := GenerateSignerKey(header, "name.example")
		if err != nil {
			t.Fatalf("GenerateSignerKey(%s) error = %v", header, err)
		}
		text := k.Marshal()
		if !strings.HasPrefix(string(text), header+"\nsign PRIVATE+KEY+name.example+") {
			t.Errorf("Marshal() = %q, want a %s file", text, header)
		}
		k2, err := ParseSignerKey(header, text)
		if err != nil {
			t.Fatalf("ParseSignerKey(Marshal()) error = %v", err)
		}
		if k2.Verifier != k.Verifier || !bytes.Equal(k2.Marshal(), text) {
			t.Errorf("ParseSignerKey(Marshal()) verifier %q, want %q", k2.Verifier, k.Verifier)
		}
		msg, err := note.Sign(&note.Note{Text: "x\n"}, k2.Signer)
		if err != nil {
			t.Fatal(err)
		}
		v, err := note.NewVerifier(k.Verifier)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			t.Errorf("a note signed by the parsed key does not verify with Verifier: %v", err)
		}
		other := LogKeyHeader
		if header == LogKeyHeader {
			other = NewsroomKeyHeader
		}
		if _, err := ParseSignerKey(other, text); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseSignerKey(%s, a %s file) error = %v, want one wrapping %q", other, header, err, ErrMalformed)
		}
	}
}

// signerToVerifier agrees with note.GenerateKey on random keys.
func TestSignerToVerifier(t *testing.T) {
	for range 20 {
		skey, vkey, err := note.GenerateKey(nil, "k")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := signerToVerifier(skey); err != nil || got != vkey {
			t.Errorf("signerToVerifier(%s) = %q, %v, want %q", skey, got, err, vkey)
		}
	}
	for _, bad := range []string{"", "PRIVATE+KEY+k", "PUBLIC+KEY+k+00000000+AQ", "PRIVATE+KEY+k+00000000+AQ==", "PRIVATE+KEY+k+00000000+" + strings.Repeat("A", 44)} {
		if got, err := signerToVerifier(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("signerToVerifier(%q) = %q, %v, want an error wrapping %q", bad, got, err, ErrMalformed)
		}
	}
}

func TestSealWithPassphrase(t *testing.T) {
	plain := testAlice.Marshal()
	sealed, err := SealWithPassphrase(plain, "correct horse", testWorkFactor)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sealed, []byte("-----BEGIN AGE ENCRYPTED FILE-----\n")) {
		t.Errorf("SealWithPassphrase output is not armored: %.40q", sealed)
	}
	if bytes.Contains(sealed, []byte("AGE-SECRET-KEY")) || bytes.Contains(sealed, []byte("PRIVATE+KEY")) {
		t.Errorf("sealed key file holds a key in the clear")
	}
	got, err := OpenWithPassphrase(sealed, "correct horse")
	if err != nil || !bytes.Equal(got, plain) {
		t.Errorf("OpenWithPassphrase(sealed, right passphrase) = %q, %v, want %q", got, err, plain)
	}
	for _, wrong := range []string{"correct horse ", "Correct horse", "x"} {
		if got, err := OpenWithPassphrase(sealed, wrong); !errors.Is(err, ErrIncorrectPassphrase) || got != nil {
			t.Errorf("OpenWithPassphrase(sealed, %q) = %q, %v, want an error wrapping %q", wrong, got, err, ErrIncorrectPassphrase)
		}
	}
	for _, bad := range [][]byte{nil, []byte("garbage"), plain, sealed[:len(sealed)/2]} {
		if got, err := OpenWithPassphrase(bad, "correct horse"); err == nil || errors.Is(err, ErrIncorrectPassphrase) {
			t.Errorf("OpenWithPassphrase(%.20q) = %q, %v, want an error other than %q", bad, got, err, ErrIncorrectPassphrase)
		}
	}
	big := make([]byte, MaxKeyFileSize+1)
	if _, err := OpenWithPassphrase(big, "x"); !errors.Is(err, ErrMalformed) {
		t.Errorf("OpenWithPassphrase(%d bytes) error = %v, want one wrapping %q", len(big), err, ErrMalformed)
	}
	// The passphrase-sealed newsroom key file opens to the same key.
	nk, err := ParseSignerKey(NewsroomKeyHeader, []byte(NewsroomKeyHeader+"\nsign "+testNewsroom.skey+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err = SealWithPassphrase(nk.Marshal(), "p", testWorkFactor)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := OpenWithPassphrase(sealed, "p")
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParseSignerKey(NewsroomKeyHeader, opened); err != nil || k.Verifier != testNewsroom.vkey {
		t.Errorf("newsroom key file round trip: verifier %v, %v, want %q", k, err, testNewsroom.vkey)
	}
}

func TestEditorKeyTextIsCanonical(t *testing.T) {
	// The fixed test keys marshal to exactly the text they were parsed
	// from, for both age key types.
	for _, k := range []*EditorKey{testAlice, testHybridAlice} {
		if again, err := ParseEditorKey(k.Marshal()); err != nil || !bytes.Equal(again.Marshal(), k.Marshal()) {
			t.Errorf("ParseEditorKey(%s key).Marshal() differs: %v", k.Label, err)
		}
	}
}
