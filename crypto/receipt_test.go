package crypto

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestSignOpenReceipt(t *testing.T) {
	for _, r := range []Receipt{
		testReceipt,
		{Length: 1, Day: "1970-01-01"},
		{TipID: [TipIDSize]byte{15: 0xff}, SHA256: [32]byte{0xff}, Length: 1 << 40, Day: "2099-12-31"},
	} {
		msg, err := SignReceipt(&r, testLog.signer())
		if err != nil {
			t.Fatalf("SignReceipt(%+v) error = %v", r, err)
		}
		if len(msg) > MaxReceiptSize {
			t.Errorf("len(SignReceipt(%+v)) = %d, more than MaxReceiptSize %d", r, len(msg), MaxReceiptSize)
		}
		got, err := OpenReceipt(msg, testLog.vkey)
		if err != nil {
			t.Fatalf("OpenReceipt(SignReceipt(%+v)) error = %v", r, err)
		}
		if !reflect.DeepEqual(*got, r) {
			t.Errorf("OpenReceipt(SignReceipt(%+v)) = %+v", r, *got)
		}
		if got.TipIDString() != FormatTipID(r.TipID) {
			t.Errorf("TipIDString() = %q, want %q", got.TipIDString(), FormatTipID(r.TipID))
		}
		// A receipt opens only as a receipt.
		if l, err := OpenLogin(msg, newTestBundle(testAlice, testBob)); l != nil || !errors.Is(err, ErrUnknownSigner) {
			t.Errorf("OpenLogin(receipt) = %v, %v, want an error wrapping %q", l, err, ErrUnknownSigner)
		}
		if b, err := OpenBundle(msg, testLog.vkey); b != nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("OpenBundle(receipt, log key) = %v, %v, want an error wrapping %q", b, err, ErrMalformed)
		}
	}
}

func TestSignReceiptRefuses(t *testing.T) {
	for _, r := range []Receipt{
		{Length: 0, Day: "2026-03-14"},
		{Length: -1, Day: "2026-03-14"},
		{Length: 1, Day: ""},
		{Length: 1, Day: "2026-3-14"},
		{Length: 1, Day: "2026-02-30"},
		{Length: 1, Day: "2026-03-14T00:00:00Z"},
	} {
		if msg, err := SignReceipt(&r, testLog.signer()); err == nil {
			t.Errorf("SignReceipt(%+v) = %q, want an error", r, msg)
		}
	}
}

// A login note signed by the very key a receipt is checked against is
// refused by its first line, and the other way round: the type line, not
// the key, keeps one kind of signature from passing as another.
func TestReceiptLoginSameKey(t *testing.T) {
	// A log key named like an editor, standing in for a key used for both.
	shared := newTestNoteKey("alice", "")
	receipt := mustSignReceipt(&testReceipt, shared)
	login := mustSignLogin(&testLogin, shared)
	if r, err := OpenReceipt(login, shared.vkey); r != nil || !errors.Is(err, ErrMalformed) {
		t.Errorf("OpenReceipt(login note) = %v, %v, want an error wrapping %q", r, err, ErrMalformed)
	}
	if l, err := OpenLogin(receipt, loginBundle([]string{shared.vkey})); l != nil || !errors.Is(err, ErrMalformed) {
		t.Errorf("OpenLogin(receipt note) = %v, %v, want an error wrapping %q", l, err, ErrMalformed)
	}
}

func TestOpenReceiptMangled(t *testing.T) {
	msg := mustSignReceipt(&testReceipt, testLog)
	forEachMangling(t, msg, func(m []byte) error {
		r, err := OpenReceipt(m, testLog.vkey)
		return checkRefused(r, err)
	})
}

// checkRefused checks that an Open function refused its input with one of
// the sentinels and returned nothing.
func checkRefused[T any](v *T, err error) error {
	if err == nil {
		return fmt.Errorf("accepted as %+v", *v)
	}
	if v != nil {
		return fmt.Errorf("returned %+v with error %v", *v, err)
	}
	if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownSigner) && !errors.Is(err, ErrMalformed) {
		return fmt.Errorf("error %v wraps none of the sentinels", err)
	}
	return nil
}

func TestOpenReceiptLimits(t *testing.T) {
	big := make([]byte, MaxReceiptSize+1)
	if r, err := OpenReceipt(big, testLog.vkey); r != nil || !errors.Is(err, ErrMalformed) {
		t.Errorf("OpenReceipt(%d bytes) = %v, %v, want an error wrapping %q", len(big), r, err, ErrMalformed)
	}
	if r, err := OpenReceipt(mustSignReceipt(&testReceipt, testLog), "not a key"); r != nil || err == nil {
		t.Errorf("OpenReceipt(receipt, bad log key) = %v, %v, want an error", r, err)
	}
}

func TestTipID(t *testing.T) {
	id := testReceipt.TipID
	s := FormatTipID(id)
	if s != "-_-_AwQFBgcICQoLDA0ODw" {
		t.Errorf("FormatTipID(%x) = %q, want %q", id, s, "-_-_AwQFBgcICQoLDA0ODw")
	}
	if got, err := ParseTipID(s); err != nil || got != id {
		t.Errorf("ParseTipID(%q) = %x, %v, want %x", s, got, err, id)
	}
	for _, bad := range []string{"", s + "==", s[:21], s + "A", "+/+/AwQFBgcICQoLDA0ODw", s[:21] + "x", "AAECAwQFBgcICQoLDA0ODw\n", "AAECAwQFBgcICQoL\r\nDA0ODw"} {
		if got, err := ParseTipID(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseTipID(%q) = %x, %v, want an error wrapping %q", bad, got, err, ErrMalformed)
		}
	}
}

func TestDay(t *testing.T) {
	kst := time.FixedZone("KST", 9*3600)
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 3, 14, 23, 59, 59, 0, time.UTC), "2026-03-14"},
		{time.Date(2026, 3, 15, 8, 59, 59, 0, kst), "2026-03-14"},
		{time.Date(2026, 3, 15, 9, 0, 0, 0, kst), "2026-03-15"},
	} {
		if got := Day(tt.t); got != tt.want {
			t.Errorf("Day(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}
