package client

import (
	"errors"
	"regexp"
	"testing"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
)

func TestAttachNames(t *testing.T) {
	// Issue 12: every scrubbed photo has a name of its own (an editor
	// reads many tips into one folder), never the camera's; a file sent
	// as it is keeps its name, unless the name hides characters.
	photo := fieldtiptest.PhoneJPEGOrientation(64, 48, 1)
	re := regexp.MustCompile(`\Aphoto-[a-z2-7]{8}\.jpg\z`)
	seen := map[string]bool{}
	for range 20 {
		a, _, err := Attach("IMG_20240512_153012.jpg", photo, false)
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(a.Name) || seen[a.Name] {
			t.Fatalf("photo named %q (seen before: %t), want photo-XXXXXXXX.jpg, new each time", a.Name, seen[a.Name])
		}
		seen[a.Name] = true
		if _, err := crypto.MarshalTip(&crypto.Tip{Attachments: []crypto.Attachment{a}}); err != nil {
			t.Errorf("photo name %q is not a valid attachment name: %v", a.Name, err)
		}
	}
	pdf := []byte("%PDF-1.4\n")
	for _, tc := range []struct {
		name string
		keep bool
		want error // nil: accepted
	}{
		{"permit.pdf", true, nil},
		{"permit.pdf", false, ErrNotScrubbable},
		{"evil\u202efdp.exe", true, ErrBadName},        // right-to-left override
		{"per\u200bmit.pdf", true, ErrBadName},         // zero-width space
		{"per\u2066mit.pdf", true, ErrBadName},         // left-to-right isolate
		{"esc\x1b[31m.pdf", true, ErrBadName},          // terminal escape
		{"tab\tname.pdf", true, ErrBadName},            // control
		{"\ufeffbom.pdf", true, ErrBadName},            // zero-width no-break space
		{"照片.pdf", true, nil},                          // letters of any script
		{"evil\u202efdp.jpg", false, ErrNotScrubbable}, // a PDF still, whatever its name says
	} {
		a, _, err := Attach(tc.name, pdf, tc.keep)
		if tc.want == nil {
			if err != nil || a.Name != tc.name {
				t.Errorf("Attach(%q) = %q, %v; want it under its name", tc.name, a.Name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("Attach(%q, keep %t) = %v, want %v", tc.name, tc.keep, err, tc.want)
		}
		if err != nil && hidden(err.Error()) {
			t.Errorf("Attach(%q): the error %q shows the hidden characters as they are", tc.name, err)
		}
	}
	// A photo's own name never travels, so it may be anything.
	if _, _, err := Attach("evil\u202egpj.jpg", photo, false); err != nil {
		t.Errorf("Attach(photo with a strange name) = %v", err)
	}
}
