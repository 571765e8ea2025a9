package audit

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestOpenParts: parts opened before open again against their event, to
// the same body; a part, or a salt, changed by one byte is a
// *CommitmentError naming the part.
func TestOpenParts(t *testing.T) {
	b := testBundle(t, testAlice)
	for _, body := range testBodies() {
		t.Run(string(body.Kind), func(t *testing.T) {
			sb, err := SealEventBody(body, b)
			if err != nil {
				t.Fatal(err)
			}
			e, err := sb.Event("2026-03-14", tlog.Tree{N: 1})
			if err != nil {
				t.Fatal(err)
			}
			got, err := OpenParts(&sb.Parts, e)
			if err != nil || !reflect.DeepEqual(got, sorted(body)) {
				t.Fatalf("OpenParts = %+v, %v; want %+v", got, err, sorted(body))
			}
			flip := func(p []byte) []byte { p = bytes.Clone(p); p[len(p)-1] ^= 1; return p }
			for _, c := range []struct {
				part string
				p    Parts
			}{
				{"public", Parts{Public: flip(sb.Parts.Public), Private: sb.Parts.Private, PublicSalt: sb.Parts.PublicSalt, PrivateSalt: sb.Parts.PrivateSalt}},
				{"private", Parts{Public: sb.Parts.Public, Private: flip(sb.Parts.Private), PublicSalt: sb.Parts.PublicSalt, PrivateSalt: sb.Parts.PrivateSalt}},
				{"public", Parts{Public: sb.Parts.Public, Private: sb.Parts.Private, PublicSalt: [SaltSize]byte(flip(sb.Parts.PublicSalt[:])), PrivateSalt: sb.Parts.PrivateSalt}},
				{"private", Parts{Public: sb.Parts.Public, Private: sb.Parts.Private, PublicSalt: sb.Parts.PublicSalt, PrivateSalt: [SaltSize]byte(flip(sb.Parts.PrivateSalt[:]))}},
			} {
				var ce *CommitmentError
				if _, err := OpenParts(&c.p, e); !errors.As(err, &ce) || ce.Part != c.part {
					t.Errorf("OpenParts with the %s part changed = %v, want a *CommitmentError for it", c.part, err)
				}
			}
		})
	}
}
