package audit

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"fieldtip/crypto"
)

// checkSentinel fails t unless err wraps one of sentinels.
func checkSentinel(t *testing.T, fn string, err error, sentinels ...error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s error = %v, wraps none of %q", fn, err, sentinels)
}

// fuzzEvents returns signed events by alice (fixed keys, so the corpus is
// stable) under bundle 3: valid ones and near misses.
func fuzzEvents(f *testing.F) [][]byte {
	alice := signer(f, testAlice)
	var out [][]byte
	for _, n := range []int64{1, 7, 1 << 53} {
		e := testEvent()
		e.Base.N = n
		msg, err := SignEvent(e, alice)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, msg)
	}
	out = append(out, []byte(exampleEvent))
	text, err := testEvent().text()
	if err != nil {
		f.Fatal(err)
	}
	for _, t := range []string{
		text + "extra 1\n",
		string(bytes.Replace([]byte(text), []byte("bundle 3"), []byte("bundle 03"), 1)),
		string(bytes.Replace([]byte(text), []byte("bundle 3"), []byte("bundle 4"), 1)),
	} {
		out = append(out, signText(f, t, alice))
	}
	return out
}

// Anything OpenEvent accepts is what SignEvent makes of it, signed by the
// editor it names.
func FuzzOpenEvent(f *testing.F) {
	b := testBundle(f, testAlice)
	seeds := fuzzEvents(f)
	if len(seeds) == 0 {
		f.Fatal("no seeds")
	}
	for _, s := range seeds {
		f.Add(s)
	}
	alice := signer(f, testAlice)
	f.Fuzz(func(t *testing.T, msg []byte) {
		e, err := OpenEvent(msg, b)
		if err != nil {
			if e != nil {
				t.Fatalf("OpenEvent returned an event with error %v", err)
			}
			checkSentinel(t, "OpenEvent", err, crypto.ErrMalformed, crypto.ErrBadSignature, crypto.ErrUnknownSigner, ErrWrongBundle)
			return
		}
		if e.Editor != "alice" {
			t.Fatalf("OpenEvent(…).Editor = %q", e.Editor)
		}
		again, err := SignEvent(e, alice)
		if err != nil {
			t.Fatalf("SignEvent(OpenEvent(msg)): %v", err)
		}
		if !bytes.Equal(again, msg) {
			t.Fatalf("SignEvent(OpenEvent(msg)) = %q, want %q", again, msg)
		}
	})
}

// Anything parseEventBody accepts encodes back, with its salts, to its
// input exactly.
func FuzzParseEventBody(f *testing.F) {
	for i, body := range testBodies() {
		parts := &Parts{}
		parts.PublicSalt[0], parts.PrivateSalt[31] = byte(i), byte(i+1)
		plain, err := marshalEventBody(body, parts)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
	}
	const tip = `"AQIDBAUGBwgJCgsMDQ4PEA"`
	for _, s := range []string{
		rawBody(`{"kind":"note"}`, `{"tip":`+tip+`,"text":"x"}`),
		rawBody(`{"kind":"triage"}`, `{"tip":`+tip+`,"status":"new","tags":null,"note":""}`),
		rawBody(`{"kind":"handover"}`, `{"to":"bob","bodies":[{"index":1,"ciphertext":"AQ=="}]}`),
	} {
		f.Add(pad(s))
		f.Add([]byte(s))
	}
	for _, p := range claimParts {
		f.Add(pad(rawBody(p[0], p[1])))
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		b, parts, err := parseEventBody(plain)
		if err != nil {
			if b != nil || parts != nil {
				t.Fatalf("parseEventBody returned a body with error %v", err)
			}
			checkSentinel(t, "parseEventBody", err, crypto.ErrMalformed)
			return
		}
		again := &Parts{PublicSalt: parts.PublicSalt, PrivateSalt: parts.PrivateSalt}
		enc, err := marshalEventBody(b, again)
		if err != nil {
			t.Fatalf("marshalEventBody(parseEventBody(plain)): %v", err)
		}
		if !bytes.Equal(enc, plain) || !reflect.DeepEqual(again, parts) {
			t.Fatalf("marshalEventBody(parseEventBody(plain)) = %q, want %q", enc, plain)
		}
	})
}
