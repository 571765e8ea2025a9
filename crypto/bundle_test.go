package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSignOpenBundle(t *testing.T) {
	three := newTestBundle(testAlice, testBob, testCarol)
	three.Revoked = []string{"dave", "erin"}
	for _, tt := range []struct {
		name   string
		b      *Bundle
		stanza string
	}{
		{"classic", newTestBundle(testAlice), StanzaX25519},
		{"classic_three_revoked", three, StanzaX25519},
		{"hybrid", newTestBundle(testHybridAlice, testHybridBob), StanzaHybrid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := SignBundle(tt.b, testNewsroom.signer())
			if err != nil {
				t.Fatalf("SignBundle: %v", err)
			}
			if !bytes.Equal(tt.b.Signed(), msg) {
				t.Errorf("after SignBundle, Signed() = %q, want the signed note", tt.b.Signed())
			}
			got, err := OpenBundle(msg, testNewsroom.vkey)
			if err != nil {
				t.Fatalf("OpenBundle(SignBundle(b)) error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.b) {
				t.Errorf("OpenBundle(SignBundle(b)) = %+v, want %+v", got, tt.b)
			}
			if got.StanzaType() != tt.stanza {
				t.Errorf("StanzaType() = %q, want %q", got.StanzaType(), tt.stanza)
			}
			rs, err := got.Recipients()
			if err != nil || len(rs) != len(got.Editors) {
				t.Errorf("Recipients() = %d recipients, %v, want %d", len(rs), err, len(got.Editors))
			}
			for _, e := range tt.b.Editors {
				if ed := got.Editor(e.Label); ed == nil || *ed != e {
					t.Errorf("Editor(%q) = %v, want %v", e.Label, ed, e)
				}
			}
			if ed := got.Editor("dave"); ed != nil {
				t.Errorf("Editor(%q) = %v, want nil (revoked)", "dave", ed)
			}
			if _, err := got.LogVerifier(); err != nil {
				t.Errorf("LogVerifier() error = %v", err)
			}
			self, err := OpenBundleSelfSigned(msg)
			if err != nil || !reflect.DeepEqual(self, got) {
				t.Errorf("OpenBundleSelfSigned = %+v, %v, want %+v", self, err, got)
			}
		})
	}
}

// A receipt signed by the key a bundle names opens with that bundle's log
// key: the chain a source follows.
func TestBundleLogKeyOpensReceipt(t *testing.T) {
	b, err := OpenBundle(mustSignBundle(newTestBundle(testAlice)), testNewsroom.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReceipt(mustSignReceipt(&testReceipt, testLog), b.Log); err != nil {
		t.Errorf("OpenReceipt(receipt, bundle's log key) error = %v", err)
	}
}

func TestSignBundleRefuses(t *testing.T) {
	mod := func(f func(b *Bundle)) *Bundle {
		b := newTestBundle(testAlice, testBob)
		f(b)
		return b
	}
	many := newTestBundle()
	for i := range MaxEditors + 1 {
		label := fmt.Sprintf("e%02d", i)
		many.Editors = append(many.Editors, Editor{Label: label, Recipient: testAlice.Public.Recipient,
			Sign: newTestNoteKey(label, "").vkey, Cosign: newTestNoteKey(CosignName(label), "").vkey})
	}
	for _, tt := range []struct {
		name string
		b    *Bundle
	}{
		{"no_editors", newTestBundle()},
		{"too_many_editors", many},
		{"version_zero", mod(func(b *Bundle) { b.Version = 0 })},
		{"policy_zero", mod(func(b *Bundle) { b.Policy = Policy{} })},
		{"policy_too_many_approvals", mod(func(b *Bundle) { b.Policy.Approvals = MaxEditors + 1 })},
		{"bad_log_key", mod(func(b *Bundle) { b.Log = "log.example" })},
		{"bad_newsroom_key", mod(func(b *Bundle) { b.Newsroom = "x" })},
		{"duplicate_label", mod(func(b *Bundle) { b.Editors[1] = b.Editors[0] })},
		{"mixed", mod(func(b *Bundle) { b.Editors[0] = testHybridAlice.Public })},
		{"label_invalid", mod(func(b *Bundle) { b.Editors[0].Label = "Alice" })},
		{"label_space", mod(func(b *Bundle) { b.Editors[0].Label = "al ice" })},
		{"sign_key_name", mod(func(b *Bundle) { b.Editors[0].Sign = testBob.Public.Sign })},
		{"revoked_unsorted", mod(func(b *Bundle) { b.Revoked = []string{"erin", "dave"} })},
		{"revoked_twice", mod(func(b *Bundle) { b.Revoked = []string{"dave", "dave"} })},
		{"revoked_listed", mod(func(b *Bundle) { b.Revoked = []string{"alice"} })},
		{"revoked_invalid", mod(func(b *Bundle) { b.Revoked = []string{"Dave"} })},
	} {
		msg, err := SignBundle(tt.b, testNewsroom.signer())
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("SignBundle(%s) = %q, %v, want an error wrapping %q", tt.name, msg, err, ErrMalformed)
		}
		if tt.b.Signed() != nil {
			t.Errorf("SignBundle(%s) failed but set Signed()", tt.name)
		}
	}

	// The newsroom line must name the signing key.
	b := newTestBundle(testAlice)
	for _, k := range []testNoteKey{testOtherNewsroom, testImpostor, testLog} {
		if msg, err := SignBundle(b, k.signer()); err == nil {
			t.Errorf("SignBundle(bundle of %s, signer %s) = %q, want an error", testNewsroom.vkey, k.vkey, msg)
		}
	}

	// The same recipient for every editor keeps the editors valid while the
	// post-quantum recipients make the note too large.
	large := newTestBundle()
	for i := range MaxEditors {
		label := fmt.Sprintf("e%02d", i)
		large.Editors = append(large.Editors, Editor{Label: label, Recipient: testHybridAlice.Public.Recipient,
			Sign: newTestNoteKey(label, "").vkey, Cosign: newTestNoteKey(CosignName(label), "").vkey})
	}
	if msg, err := SignBundle(large, testNewsroom.signer()); err == nil {
		t.Errorf("SignBundle(64 post-quantum editors) = %d bytes, want an error (more than %d)", len(msg), MaxBundleSize)
	}
}

func TestOpenBundleLimits(t *testing.T) {
	huge := append(mustSignBundle(newTestBundle(testAlice)), bytes.Repeat([]byte("x"), MaxBundleSize)...)
	if b, err := OpenBundle(huge, testNewsroom.vkey); !errors.Is(err, ErrMalformed) || b != nil {
		t.Errorf("OpenBundle(%d bytes) = %v, %v, want an error wrapping %q", len(huge), b, err, ErrMalformed)
	}
	if b, err := OpenBundleSelfSigned(huge); !errors.Is(err, ErrMalformed) || b != nil {
		t.Errorf("OpenBundleSelfSigned(%d bytes) = %v, %v, want an error wrapping %q", len(huge), b, err, ErrMalformed)
	}
	// A pinned key that is not a verifier key is the caller's error.
	if b, err := OpenBundle(mustSignBundle(newTestBundle(testAlice)), testNewsroom.skey); err == nil {
		t.Errorf("OpenBundle(msg, a signer key) = %v, want an error", b)
	}
}

// Exhaustive mangling: every single-byte change, deletion and insertion in
// a small signed bundle is refused (never accepted, as the same bundle or
// as another).
func TestOpenBundleMangled(t *testing.T) {
	msg := mustSignBundle(newTestBundle(testAlice))
	open := func(m []byte) error {
		b, err := OpenBundle(m, testNewsroom.vkey)
		if err == nil {
			return fmt.Errorf("accepted as %+v", b)
		}
		if b != nil {
			return fmt.Errorf("returned %+v with error %v", b, err)
		}
		if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownSigner) && !errors.Is(err, ErrMalformed) {
			return fmt.Errorf("error %v wraps none of the sentinels", err)
		}
		return nil
	}
	forEachMangling(t, msg, open)
}

// forEachMangling calls open on every variant of msg with one byte changed
// (each bit flipped, and set to a few characters that keep base64 and text
// plausible), deleted, or inserted, and reports the variants open does not
// refuse.
func forEachMangling(t *testing.T, msg []byte, open func([]byte) error) {
	t.Helper()
	failures := 0
	report := func(what string, i int, m []byte, err error) {
		if err != nil && failures < 10 {
			failures++
			t.Errorf("%s at %d (%q…): %v", what, i, m[max(0, i-8):min(len(m), i+8)], err)
		}
	}
	for i := range msg {
		seen := map[byte]bool{msg[i]: true}
		var values []byte
		for bit := range 8 {
			values = append(values, msg[i]^1<<bit)
		}
		values = append(values, 'A', 'a', '0', '+', '/', '=', ' ', '\n', '-')
		for _, c := range values {
			if seen[c] {
				continue
			}
			seen[c] = true
			m := bytes.Clone(msg)
			m[i] = c
			report(fmt.Sprintf("byte set to %q", c), i, m, open(m))
		}
		m := append(bytes.Clone(msg[:i]), msg[i+1:]...)
		report("byte deleted", i, m, open(m))
		m = append(append(bytes.Clone(msg[:i]), ' '), msg[i:]...)
		report("space inserted", i, m, open(m))
	}
	m := append(bytes.Clone(msg), '\n')
	report("newline appended", len(msg), m, open(m))
}

func TestBundleExpired(t *testing.T) {
	b := newTestBundle(testAlice)
	for _, tt := range []struct {
		now  time.Time
		want bool
	}{
		{testExpires.Add(-time.Hour), false},
		{testExpires.Add(-time.Second), false},
		{testExpires.Add(-time.Nanosecond), false},
		{testExpires, true},
		{testExpires.Add(time.Nanosecond), true},
		{testExpires.Add(time.Second), true},
		{testExpires.In(time.FixedZone("KST", 9*3600)), true},
		{testExpires.In(time.FixedZone("KST", 9*3600)).Add(-time.Nanosecond), false},
	} {
		if got := b.Expired(tt.now); got != tt.want {
			t.Errorf("Expired(%v) with expiry %v = %v, want %v", tt.now, testExpires, got, tt.want)
		}
	}
}

func TestOpenBundleSelfSigned(t *testing.T) {
	text := bundleText(newTestBundle(testAlice))
	other := newTestBundle(testAlice)
	other.Newsroom = testOtherNewsroom.vkey
	for _, tt := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"ok", mustSignBundle(newTestBundle(testAlice)), nil},
		{"other_newsroom_self_signed", mustSign(other, testOtherNewsroom), nil},
		{"signed_by_impostor", signText(text, testImpostor), ErrUnknownSigner},
		{"signed_by_other_newsroom", signText(text, testOtherNewsroom), ErrUnknownSigner},
		{"two_signatures", signText(text, testNewsroom, testOtherNewsroom), ErrMalformed},
		{"not_a_note", []byte(text), ErrMalformed},
		{"no_newsroom_line", signText(replaceOnce(text, "newsroom "+testNewsroom.vkey+"\n", ""), testNewsroom), ErrMalformed},
		{"wrong_header", signText(replaceOnce(text, BundleHeader, ReceiptHeader), testNewsroom), ErrMalformed},
	} {
		b, err := OpenBundleSelfSigned(tt.msg)
		if tt.want == nil {
			if err != nil {
				t.Errorf("OpenBundleSelfSigned(%s) error = %v", tt.name, err)
			} else if err := checkOpenedBundle(b, tt.msg); err != nil {
				t.Errorf("OpenBundleSelfSigned(%s): %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) || b != nil {
			t.Errorf("OpenBundleSelfSigned(%s) = %v, %v, want an error wrapping %q", tt.name, b, err, tt.want)
		}
	}
}

// Errors never quote a secret key, even one pasted where a public key
// belongs (STYLE.md, Errors).
func TestErrorsDoNotQuoteSecrets(t *testing.T) {
	aliceSign := newTestNoteKey("alice", "")
	secrets := []string{testAgeAlice, testAgeHybridAlice, aliceSign.skey, testNewsroom.skey}
	pub := string(MarshalEditorPublic(testAlice.Public))
	key := string(testAlice.Marshal())
	text := bundleText(newTestBundle(testAlice))
	var errs []error
	_, err := ParseEditorPublic([]byte(replaceOnce(pub, testAlice.Public.Recipient, testAgeAlice)))
	errs = append(errs, err)
	_, err = ParseEditorPublic([]byte(replaceOnce(pub, testAlice.Public.Recipient, testAgeHybridAlice)))
	errs = append(errs, err)
	_, err = ParseEditorPublic([]byte(replaceOnce(pub, testAlice.Public.Sign, aliceSign.skey)))
	errs = append(errs, err)
	_, err = ParseEditorPublic([]byte(replaceOnce(pub, "label alice\n", "")))
	errs = append(errs, err)
	_, err = ParseEditorPublic([]byte(testAgeAlice + "\n"))
	errs = append(errs, err)
	_, err = ParseEditorKey([]byte(replaceOnce(key, "label alice\n", "")))
	errs = append(errs, err)
	_, err = ParseEditorKey([]byte(key + "age " + testAgeAlice + "\n"))
	errs = append(errs, err)
	_, err = ParseEditorKey([]byte(testAgeAlice + "\n"))
	errs = append(errs, err)
	_, err = ParseSignerKey(LogKeyHeader, []byte(LogKeyHeader+"\nkey "+testNewsroom.skey+"\n"))
	errs = append(errs, err)
	_, err = ParseSignerKey(LogKeyHeader, []byte(testNewsroom.skey+"\n"))
	errs = append(errs, err)
	_, err = OpenBundle(signText(replaceOnce(text, testAlice.Public.Recipient, testAgeAlice), testNewsroom), testNewsroom.vkey)
	errs = append(errs, err)
	_, err = OpenBundle(signText(replaceOnce(text, "log "+testLog.vkey, "log "+testNewsroom.skey), testNewsroom), testNewsroom.vkey)
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		for _, s := range secrets {
			// The secret part: after the last '+' of a signer key, after
			// the type prefix of an age key. Any 12 characters of it
			// would be a leak.
			secret := s[strings.LastIndexAny(s, "+-")+1:]
			for j := 0; j+12 <= len(secret); j++ {
				if strings.Contains(err.Error(), secret[j:j+12]) {
					t.Errorf("case %d: error %q quotes the secret key %.24s…", i, err, s)
					break
				}
			}
		}
	}
}

func TestValidLabel(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"alice", true}, {"a", true}, {"0", true}, {"desk-2_b", true},
		{strings.Repeat("a", 32), true}, {strings.Repeat("a", 33), false},
		{"", false}, {"Alice", false}, {"-a", false}, {"_a", false},
		{"a b", false}, {"a+b", false}, {"a.cosign", false}, {"é", false}, {"a\n", false},
	} {
		if got := ValidLabel(tt.s); got != tt.want {
			t.Errorf("ValidLabel(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
