package crypto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
)

// Fixed keys of the tests and of the vectors under testdata/. Their secret
// halves are published here: never use them for anything else.
//
// age has no API to build an identity from chosen bytes, so these were
// generated once with age.GenerateX25519Identity and
// age.GenerateHybridIdentity and are kept as constants.
const (
	testAgeAlice       = "AGE-SECRET-KEY-1ZVQUTCQW7WPS6MZHT65CWV8CVNUQVQ2QPUWPYAC4N4C58KXSRPMS7X8UEK"
	testAgeBob         = "AGE-SECRET-KEY-1VD0UTSZ37TK54NCRADT2ZM2ZAX43XNQKTSCVH32C2X5MU7HG9LPQR023KL"
	testAgeCarol       = "AGE-SECRET-KEY-14KZ7JRZAZW2JEJ8R7XSNDK26S0P4E92JQYKS6VYA0YLGL372VE7SNY4CVK"
	testAgeHybridAlice = "AGE-SECRET-KEY-PQ-1XC2ZPAQE8VDP8G0KHYCKXYX98RGAN6N3K6N469E48XC4X9XQ3GFQQGWTY8"
	testAgeHybridBob   = "AGE-SECRET-KEY-PQ-1Q60HCY633Q6PDLTV0LU77LQY97T0RT4GK0JJLV44U2FC295GEZWQ8YGQF0"
)

// testNoteKey is a signed-note Ed25519 key derived from a fixed seed.
type testNoteKey struct {
	name string
	skey string // PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)
	vkey string // name+hash+base64(0x01 ‖ public key)
}

// newTestNoteKey derives the key named name from the seed
// SHA-256("fieldtip test key " + name + variant). Two variants of one name
// are two keys with the same name.
func newTestNoteKey(name, variant string) testNoteKey {
	seed := sha256.Sum256([]byte("fieldtip test key " + name + variant))
	pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		panic(err)
	}
	hash := strings.Split(vkey, "+")[1]
	skey := "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, seed[:]...))
	return testNoteKey{name: name, skey: skey, vkey: vkey}
}

func (k testNoteKey) signer() note.Signer {
	s, err := note.NewSigner(k.skey)
	if err != nil {
		panic(err)
	}
	return s
}

var (
	testNewsroom      = newTestNoteKey("newsroom.example", "")
	testOtherNewsroom = newTestNoteKey("other.example", "")
	// testImpostor has the newsroom's name but another key.
	testImpostor = newTestNoteKey("newsroom.example", " impostor")
	testLog      = newTestNoteKey("log.example", "")
	testOtherLog = newTestNoteKey("log.example", " other")
)

// testExpires is the expiry of the test bundles.
var testExpires = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// newTestEditorKey builds an editor's keys from a fixed age identity and
// signing keys derived from label.
func newTestEditorKey(label, ageIdentity string) *EditorKey {
	sign, cosign := newTestNoteKey(label, ""), newTestNoteKey(CosignName(label), "")
	k, err := ParseEditorKey(fmt.Appendf(nil, "%s\nlabel %s\nage %s\nsign %s\ncosign %s\n", EditorKeyHeader, label, ageIdentity, sign.skey, cosign.skey))
	if err != nil {
		panic(err)
	}
	return k
}

var (
	testAlice       = newTestEditorKey("alice", testAgeAlice)
	testBob         = newTestEditorKey("bob", testAgeBob)
	testCarol       = newTestEditorKey("carol", testAgeCarol)
	testHybridAlice = newTestEditorKey("alice", testAgeHybridAlice)
	testHybridBob   = newTestEditorKey("bob", testAgeHybridBob)
)

// newTestBundle returns an unsigned bundle of the test newsroom listing
// editors.
func newTestBundle(editors ...*EditorKey) *Bundle {
	b := &Bundle{
		Newsroom: testNewsroom.vkey,
		Version:  7,
		Expires:  testExpires,
		Log:      testLog.vkey,
		Policy:   DefaultPolicy,
	}
	for _, e := range editors {
		b.Editors = append(b.Editors, e.Public)
	}
	return b
}

// bundleText returns the canonical text of b, which must be valid.
func bundleText(b *Bundle) string {
	text, err := b.text()
	if err != nil {
		panic(err)
	}
	return text
}

// signText signs any text as a note, with each key in turn.
func signText(text string, keys ...testNoteKey) []byte {
	var signers []note.Signer
	for _, k := range keys {
		signers = append(signers, k.signer())
	}
	msg, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		panic(err)
	}
	return msg
}

// mustSignBundle signs b with the test newsroom key.
func mustSignBundle(b *Bundle) []byte {
	msg, err := SignBundle(b, testNewsroom.signer())
	if err != nil {
		panic(err)
	}
	return msg
}

// replaceOnce replaces old, which must occur exactly once in s.
func replaceOnce(s, old, new string) string {
	if n := strings.Count(s, old); n != 1 {
		panic(fmt.Sprintf("%q occurs %d times", old, n))
	}
	return strings.Replace(s, old, new, 1)
}

func recipientsOf(editors ...*EditorKey) []age.Recipient {
	var rs []age.Recipient
	for _, e := range editors {
		r, err := parseRecipient(e.Public.Recipient)
		if err != nil {
			panic(err)
		}
		rs = append(rs, r)
	}
	return rs
}

// sigLine returns the signature line of a signed note.
func sigLine(msg []byte) string {
	s := string(msg)
	return s[strings.LastIndex(s, "\n\n")+2:]
}
