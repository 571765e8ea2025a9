package crypto

import (
	"errors"
	"reflect"
	"testing"
)

func TestSignOpenLogin(t *testing.T) {
	b := newTestBundle(testAlice, testBob)
	for _, k := range []*EditorKey{testAlice, testBob} {
		s, err := k.Signer()
		if err != nil {
			t.Fatal(err)
		}
		msg, err := SignLogin(&testLogin, s)
		if err != nil {
			t.Fatalf("SignLogin: %v", err)
		}
		got, err := OpenLogin(msg, b)
		if err != nil {
			t.Fatalf("OpenLogin(SignLogin(%s)) error = %v", k.Label, err)
		}
		want := testLogin
		want.Editor = k.Label
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("OpenLogin(SignLogin(%s)) = %+v, want %+v", k.Label, *got, want)
		}
		if len(msg) > MaxLoginSize {
			t.Errorf("len(login) = %d, more than MaxLoginSize %d", len(msg), MaxLoginSize)
		}
		// A login opens only as a login.
		if r, err := OpenReceipt(msg, k.Public.Sign); r != nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("OpenReceipt(login, editor key) = %v, %v, want an error wrapping %q", r, err, ErrMalformed)
		}
	}

	// The cosigning key is not a login key, and an editor missing from the
	// bundle (revoked) is unknown.
	cs, err := testAlice.Cosigner()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := SignLogin(&testLogin, cs)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := OpenLogin(msg, b); l != nil || !errors.Is(err, ErrUnknownSigner) {
		t.Errorf("OpenLogin(signed by the cosigning key) = %v, %v, want an error wrapping %q", l, err, ErrUnknownSigner)
	}
	s, _ := testCarol.Signer()
	msg, _ = SignLogin(&testLogin, s)
	revoked := newTestBundle(testAlice, testBob)
	revoked.Revoked = []string{"carol"}
	if l, err := OpenLogin(msg, revoked); l != nil || !errors.Is(err, ErrUnknownSigner) {
		t.Errorf("OpenLogin(signed by revoked carol) = %v, %v, want an error wrapping %q", l, err, ErrUnknownSigner)
	}
}

func TestOpenLoginMangled(t *testing.T) {
	msg := mustSignLogin(&testLogin, newTestNoteKey("alice", ""))
	b := newTestBundle(testAlice, testBob)
	forEachMangling(t, msg, func(m []byte) error {
		l, err := OpenLogin(m, b)
		return checkRefused(l, err)
	})
}

func TestOpenLoginLimits(t *testing.T) {
	big := make([]byte, MaxLoginSize+1)
	if l, err := OpenLogin(big, newTestBundle(testAlice)); l != nil || !errors.Is(err, ErrMalformed) {
		t.Errorf("OpenLogin(%d bytes) = %v, %v, want an error wrapping %q", len(big), l, err, ErrMalformed)
	}
}
