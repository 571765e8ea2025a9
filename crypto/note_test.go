package crypto

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestOpenNote: the one opener of signed notes (issue 12: audit calls it
// too) takes exactly one canonical signature by a known key, and on an
// unknown signer hands the unverified key name out only inside the error.
func TestOpenNote(t *testing.T) {
	v, err := note.NewVerifier(testLog.vkey)
	if err != nil {
		t.Fatal(err)
	}
	known := note.VerifierList(v)
	const text = "fieldtip/test/v1\nline\n"
	good := signText(text, testLog)
	twice := signText(text, testLog, testOtherNewsroom)
	changed := append([]byte{}, good...)
	if i := len(changed) - 10; changed[i] == 'A' { // a base64 digit in the signature
		changed[i] = 'B'
	} else {
		changed[i] = 'A'
	}
	tests := []struct {
		name     string
		msg      []byte
		want     error  // nil: opens
		unknown  string // the name an *UnknownSignerError carries
		isUnkErr bool
	}{
		{"one known signature", good, nil, "", false},
		{"unknown signer", signText(text, testOtherNewsroom), ErrUnknownSigner, "other.example", true},
		{"impostor of a known name", signText(text, testOtherLog), ErrUnknownSigner, "log.example", true},
		{"two unknown signers", signText(text, testOtherNewsroom, testImpostor), ErrUnknownSigner, "", true},
		{"a known and an unknown signature", twice, ErrMalformed, "", false},
		{"signature changed", changed, ErrBadSignature, "", false},
		{"text after the signature", append(append([]byte{}, good...), "more\n"...), ErrBadSignature, "", false},
		{"no signature", []byte(text), ErrBadSignature, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := OpenNote("test", tt.msg, known)
			if tt.want == nil {
				if err != nil || n.Text != text {
					t.Fatalf("OpenNote = %v, %v, want the note", n, err)
				}
				return
			}
			if n != nil || !errors.Is(err, tt.want) {
				t.Fatalf("OpenNote = %v, %v, want %v", n, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "test: ") {
				t.Errorf("OpenNote error %q does not name the note's kind", err)
			}
			var unk *UnknownSignerError
			if errors.As(err, &unk) != tt.isUnkErr {
				t.Fatalf("OpenNote error %v: *UnknownSignerError %v, want %v", err, !tt.isUnkErr, tt.isUnkErr)
			}
			if tt.isUnkErr && unk.Name != tt.unknown {
				t.Errorf("UnknownSignerError.Name = %q, want %q", unk.Name, tt.unknown)
			}
		})
	}
}
