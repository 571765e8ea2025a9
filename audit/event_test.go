package audit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func testEvent() *Event {
	e := &Event{Bundle: 3, Day: "2026-03-14", Base: tlog.Tree{N: 1, Hash: tlog.RecordHash([]byte("entry 0"))}}
	for i := range e.ID {
		e.ID[i] = byte(0xa0 + i)
	}
	for i := range 32 {
		e.Ciphertext[i], e.Public[i], e.Private[i] = byte(i), byte(0x40+i), byte(0x80+i)
	}
	return e
}

// testBundle is a signed bundle of version 3 listing editors and revoking
// mallory.
func testBundle(t testing.TB, editors ...*crypto.EditorKey) *crypto.Bundle {
	b := &crypto.Bundle{Newsroom: testNewsroom.Verifier, Version: 3, Log: testLogKey.Verifier,
		Policy: crypto.DefaultPolicy, Revoked: []string{"mallory"}}
	for _, e := range editors {
		b.Editors = append(b.Editors, e.Public)
	}
	if _, err := crypto.SignBundle(b, testNewsroom.Signer); err != nil {
		t.Fatal(err)
	}
	return b
}

func signText(t testing.TB, text string, signers ...note.Signer) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestEventRoundTrip(t *testing.T) {
	bob := newEditor(t, "bob")
	b := testBundle(t, testAlice, bob)
	e := testEvent()
	msg, err := SignEvent(e, signer(t, bob))
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenEvent(msg, b)
	if err != nil {
		t.Fatalf("OpenEvent: %v", err)
	}
	if got.Editor != "bob" {
		t.Errorf("OpenEvent(…).Editor = %q, want %q", got.Editor, "bob")
	}
	got.Editor = ""
	if *got != *e {
		t.Errorf("OpenEvent(SignEvent(e)) = %+v, want %+v", got, e)
	}
	again, err := SignEvent(got, signer(t, bob))
	if err != nil || !bytes.Equal(again, msg) {
		t.Errorf("SignEvent(OpenEvent(msg)) differs from msg (err %v)", err)
	}
}

func TestSignEventRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		f    func(*Event)
	}{
		{"bundle 0", func(e *Event) { e.Bundle = 0 }},
		{"bundle 2^53+1", func(e *Event) { e.Bundle = 1<<53 + 1 }},
		{"day empty", func(e *Event) { e.Day = "" }},
		{"day with time", func(e *Event) { e.Day = "2026-03-14T00:00:00Z" }},
		{"base size 0", func(e *Event) { e.Base.N = 0 }},
	} {
		e := testEvent()
		c.f(e)
		if _, err := SignEvent(e, signer(t, testAlice)); err == nil {
			t.Errorf("%s: SignEvent succeeded", c.name)
		}
	}
	cosigner, err := testAlice.Cosigner()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignEvent(testEvent(), cosigner); err == nil {
		t.Errorf("SignEvent with a cosigning key (name alice.cosign) succeeded")
	}
}

func TestOpenEventMalformed(t *testing.T) {
	bob := newEditor(t, "bob")
	b := testBundle(t, testAlice, bob)
	valid, err := testEvent().text()
	if err != nil {
		t.Fatal(err)
	}
	alice := signer(t, testAlice)
	line := func(key string) string {
		for l := range strings.SplitSeq(valid, "\n") {
			if strings.HasPrefix(l, key+" ") {
				return l
			}
		}
		panic(key)
	}
	repl := func(old, new string) string {
		if strings.Count(valid, old) != 1 {
			panic(old)
		}
		return strings.Replace(valid, old, new, 1)
	}
	hash := testEvent().Base.Hash.String()
	for _, c := range []struct {
		name string
		text string
	}{
		{"header v2", repl(EventHeader, "fieldtip/event/v2")},
		{"receipt header", repl(EventHeader, crypto.ReceiptHeader)},
		{"no id line", repl(line("id")+"\n", "")},
		{"lines swapped", repl(line("bundle")+"\n"+line("day"), line("day")+"\n"+line("bundle"))},
		{"extra line", valid + "extra 1\n"},
		{"blank line at end", valid + "\n"},
		{"double space", repl("bundle 3", "bundle  3")},
		{"trailing space", repl("bundle 3", "bundle 3 ")},
		{"bundle leading zero", repl("bundle 3", "bundle 03")},
		{"bundle plus", repl("bundle 3", "bundle +3")},
		{"bundle zero", repl("bundle 3", "bundle 0")},
		{"bundle over 2^53", repl("bundle 3", "bundle 9007199254740993")},
		{"day invalid", repl("day 2026-03-14", "day 2026-02-30")},
		{"day short", repl("day 2026-03-14", "day 2026-3-14")},
		{"base size 0", repl("base 1 ", "base 0 ")},
		{"base size leading zero", repl("base 1 ", "base 01 ")},
		{"base one field", repl("base 1 "+hash, "base 1")},
		{"base hash url alphabet", repl(hash, strings.NewReplacer("+", "-", "/", "_").Replace(hash)+"")},
		{"base hash unpadded", repl(hash, strings.TrimRight(hash, "="))},
		{"base hash padding bits", repl(hash, hash[:42]+nonzeroPad(hash[42])+"=")},
		{"base hash 31 bytes", repl(hash, tlog.Hash{}.String()[:40]+"AA==")},
		{"id padded", repl(testEvent().IDString(), testEvent().IDString()+"==")},
		{"id std alphabet", repl("id ", "id +")},
		{"id 15 bytes", repl(testEvent().IDString(), testEvent().IDString()[:20])},
		{"ciphertext uppercase", repl(line("ciphertext"), strings.ToUpper(line("ciphertext")[:11])+line("ciphertext")[11:])},
		{"ciphertext hex uppercase", repl(line("ciphertext"), "ciphertext "+strings.ToUpper(line("ciphertext")[11:]))},
		{"public short", repl(line("public"), line("public")[:len(line("public"))-2])},
		{"private missing", repl(line("private")+"\n", "")},
		{"label line", repl(EventHeader+"\n", EventHeader+"\neditor alice\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := signText(t, c.text, alice)
			e, err := OpenEvent(msg, b)
			if !errors.Is(err, crypto.ErrMalformed) || e != nil {
				t.Fatalf("OpenEvent = %v, %v; want nil, ErrMalformed", e, err)
			}
		})
	}
}

// nonzeroPad returns a base64 character that differs from c only in the
// two unused low bits of a 32-byte value's last character.
func nonzeroPad(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i^1])
}

func TestOpenEventSignature(t *testing.T) {
	bob, mallory, eve := newEditor(t, "bob"), newEditor(t, "mallory"), newEditor(t, "eve")
	b := testBundle(t, testAlice, bob)
	text, err := testEvent().text()
	if err != nil {
		t.Fatal(err)
	}
	alice := signer(t, testAlice)
	valid := signText(t, text, alice)
	cosigner, err := testAlice.Cosigner()
	if err != nil {
		t.Fatal(err)
	}
	sig := valid[bytes.LastIndex(valid, []byte("\n\n"))+2:]
	v4, err := (&Event{ID: testEvent().ID, Bundle: 4, Day: "2026-03-14", Base: testEvent().Base}).text()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		msg  []byte
		want []error
	}{
		{"two editors", signText(t, text, alice, signer(t, bob)), []error{crypto.ErrMalformed}},
		{"signature twice", append(bytes.Clone(valid), sig...), []error{crypto.ErrMalformed}},
		{"cosigning key", signText(t, text, cosigner), []error{crypto.ErrUnknownSigner}},
		{"editor not in bundle", signText(t, text, signer(t, eve)), []error{crypto.ErrUnknownSigner}},
		{"revoked editor", signText(t, text, signer(t, mallory)), []error{crypto.ErrUnknownSigner, ErrRevokedEditor}},
		{"other bundle version", signText(t, v4, alice), []error{ErrWrongBundle}},
		{"text changed", bytes.Replace(valid, []byte("day 2026-03-14"), []byte("day 2026-03-15"), 1), []error{crypto.ErrBadSignature}},
		{"signature changed", append(bytes.Clone(valid[:len(valid)-5]), 'A', 'A', 'A', '=', '\n'), []error{crypto.ErrBadSignature}},
		{"no signature", []byte(text), []error{crypto.ErrBadSignature}},
		// sumdb/note refuses control characters before any signature
		// check: "not a note at all" is ErrBadSignature (formats.md).
		{"tab", signText(t, strings.Replace(text, "bundle 3", "bundle\t3", 1), alice), []error{crypto.ErrBadSignature}},
		{"CR", signText(t, strings.Replace(text, "bundle 3\n", "bundle 3\r\n", 1), alice), []error{crypto.ErrBadSignature}},
		{"over the cap", append(bytes.Repeat([]byte("x"), MaxEventSize-len(valid)+1), valid...), []error{crypto.ErrMalformed}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := OpenEvent(c.msg, b)
			if e != nil {
				t.Fatalf("OpenEvent returned an event with error %v", err)
			}
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("OpenEvent = %v, want %v", err, w)
				}
			}
		})
	}
}

// Every single-byte change to a signed event is refused.
func TestOpenEventMangled(t *testing.T) {
	b := testBundle(t, testAlice)
	msg, err := SignEvent(testEvent(), signer(t, testAlice))
	if err != nil {
		t.Fatal(err)
	}
	for i := range msg {
		for _, x := range []byte{0x01, 0x20, 0x80} {
			m := bytes.Clone(msg)
			m[i] ^= x
			if e, err := OpenEvent(m, b); err == nil {
				t.Fatalf("byte %d ^ %#x: OpenEvent = %+v, want an error", i, x, e)
			}
		}
	}
	for _, n := range []int{len(msg) - 1, len(msg) - 2, 1} {
		if _, err := OpenEvent(msg[:n], b); err == nil {
			t.Errorf("OpenEvent of the first %d bytes succeeded", n)
		}
	}
}

func ExampleOpenEvent() {
	// An auditor opens an event against the bundle in force at its index.
	b, err := crypto.OpenBundle([]byte(exampleBundle), testNewsroom.Verifier)
	if err != nil {
		panic(err)
	}
	e, err := OpenEvent([]byte(exampleEvent), b)
	if err != nil {
		panic(err)
	}
	fmt.Println(e.Editor, e.Day, e.Bundle, e.Base.N)
	// Output: alice 2026-03-14 3 1
}
