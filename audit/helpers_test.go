package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The keys of docs/formats.md's worked examples (package crypto's
// example_test.go). Their secret halves are published: never use them for
// anything else.
const (
	exampleNewsroomKeyFile = "fieldtip/newsroom-key/v1\n" +
		"sign PRIVATE+KEY+newsroom.example+b7c03b27+AWUrZili2VzEsrmQYARV+2m/68nqnvhUwrhmjXO7IQuD\n"
	exampleLogKeyFile = "fieldtip/log-key/v1\n" +
		"sign PRIVATE+KEY+log.example+974b4a5f+AWppr8Ief/B0QlkqpgCPEt3hWBW7gaXNROSdz8XkyX7V\n"
	exampleEditorKeyFile = "fieldtip/editor-key/v1\n" +
		"label alice\n" +
		"age AGE-SECRET-KEY-1ZVQUTCQW7WPS6MZHT65CWV8CVNUQVQ2QPUWPYAC4N4C58KXSRPMS7X8UEK\n" +
		"sign PRIVATE+KEY+alice+abd8ab9f+AevrW6mbzX0A896bDp92fqR9TMxgT8tYJhPOweRtFZZK\n" +
		"cosign PRIVATE+KEY+alice.cosign+694ce601+AS6rNFuOqS8b8OQ5SMH+sN4DIQ+EasR/4DoXey2arCv5\n"
)

var (
	testNewsroom = mustSignerKey(crypto.NewsroomKeyHeader, exampleNewsroomKeyFile)
	testLogKey   = mustSignerKey(crypto.LogKeyHeader, exampleLogKeyFile)
	testAlice    = mustEditorKey(exampleEditorKeyFile)
)

func mustSignerKey(header, text string) *crypto.SignerKey {
	k, err := crypto.ParseSignerKey(header, []byte(text))
	if err != nil {
		panic(err)
	}
	return k
}

func mustEditorKey(text string) *crypto.EditorKey {
	k, err := crypto.ParseEditorKey([]byte(text))
	if err != nil {
		panic(err)
	}
	return k
}

// newEditor makes an editor with fresh keys (classic age keys: fast).
func newEditor(t testing.TB, label string) *crypto.EditorKey {
	t.Helper()
	k, err := crypto.GenerateEditorKey(label, true)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signer(t testing.TB, k *crypto.EditorKey) note.Signer {
	t.Helper()
	s, err := k.Signer()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testLog is a log being built by a test: entries, their stored hashes,
// the bundle in force, and the sealed bodies of its events by index.
type testLog struct {
	t       testing.TB
	entries [][]byte
	hashes  []tlog.Hash
	bundle  *crypto.Bundle
	bodies  map[int64][]byte
	events  map[int64]*Event
}

func newTestLog(t testing.TB) *testLog {
	return &testLog{t: t, bodies: map[int64][]byte{}, events: map[int64]*Event{}}
}

func (l *testLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return readHashes(l.hashes, indexes)
}

// append adds an entry as it is and returns its index.
func (l *testLog) append(e []byte) int64 {
	l.t.Helper()
	hs, err := tlog.StoredHashes(int64(len(l.entries)), e, l)
	if err != nil {
		l.t.Fatal(err)
	}
	l.hashes = append(l.hashes, hs...)
	l.entries = append(l.entries, e)
	return int64(len(l.entries) - 1)
}

func (l *testLog) tree() tlog.Tree {
	l.t.Helper()
	n := int64(len(l.entries))
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		l.t.Fatal(err)
	}
	return tlog.Tree{N: n, Hash: h}
}

// addBundle signs and appends a bundle of the test newsroom.
func (l *testLog) addBundle(version int64, editors []*crypto.EditorKey, revoked ...string) *crypto.Bundle {
	l.t.Helper()
	b := &crypto.Bundle{
		Newsroom: testNewsroom.Verifier,
		Version:  version,
		Expires:  time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Log:      testLogKey.Verifier,
		Policy:   crypto.DefaultPolicy,
		Revoked:  revoked,
	}
	for _, e := range editors {
		b.Editors = append(b.Editors, e.Public)
	}
	msg, err := crypto.SignBundle(b, testNewsroom.Signer)
	if err != nil {
		l.t.Fatal(err)
	}
	l.append(msg)
	l.bundle = b
	return b
}

// addEvent seals body to the bundle in force, signs the event as editor
// with the current tree as base, appends it and returns its index.
func (l *testLog) addEvent(editor *crypto.EditorKey, body *EventBody) int64 {
	l.t.Helper()
	msg, ev, ct := l.makeEvent(editor, body, l.tree())
	i := l.append(msg)
	l.bodies[i], l.events[i] = ct, ev
	return i
}

func (l *testLog) makeEvent(editor *crypto.EditorKey, body *EventBody, base tlog.Tree) ([]byte, *Event, []byte) {
	l.t.Helper()
	sb, err := SealEventBody(body, l.bundle)
	if err != nil {
		l.t.Fatal(err)
	}
	ev, err := sb.Event("2026-03-14", base)
	if err != nil {
		l.t.Fatal(err)
	}
	msg, err := SignEvent(ev, signer(l.t, editor))
	if err != nil {
		l.t.Fatal(err)
	}
	ev.Editor = editor.Label
	return msg, ev, sb.Ciphertext
}

// verify runs a fresh verifier over the whole log.
func (l *testLog) verify() (*Verifier, error) {
	v, err := NewVerifier(testNewsroom.Verifier)
	if err != nil {
		l.t.Fatal(err)
	}
	return v, v.Verify(context.Background(), SliceReader(l.entries), int64(len(l.entries)))
}

// entryError returns the *EntryError err holds, failing t if none.
func entryError(t testing.TB, err error) *EntryError {
	t.Helper()
	var ee *EntryError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v is not an *EntryError", err)
	}
	return ee
}

func tipID(b byte) [crypto.TipIDSize]byte {
	var id [crypto.TipIDSize]byte
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}
