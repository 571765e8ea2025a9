package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestCosignatures: one cosignature per size and editor, the latest;
// sizes largest first with their cosigner counts; lines sorted by key
// name; the first checkpoint of a size kept.
func TestCosignatures(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if _, _, err := s.Cosigned(ctx, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Cosigned(1) on an empty store = %v, want ErrNotFound", err)
	}
	if got, err := s.CosignedSizes(ctx, 64); err != nil || len(got) != 0 {
		t.Fatalf("CosignedSizes() on an empty store = %v, %v", got, err)
	}
	put := func(size int64, signed, editor, line string) {
		t.Helper()
		if err := s.PutCosignature(ctx, size, []byte(signed), Cosignature{Editor: editor, Name: editor + ".cosign", Line: []byte(line)}); err != nil {
			t.Fatalf("PutCosignature(%d, %s) = %v", size, editor, err)
		}
	}
	put(5, "cp5", "bob", "bob 1")
	put(5, "cp5 again", "alice", "alice 1")
	put(5, "cp5", "bob", "bob 2")
	put(3, "cp3", "bob", "bob 3")
	for i := range 70 {
		put(int64(100+i), fmt.Sprint("cp", 100+i), "carol", "carol")
	}
	signed, cs, err := s.Cosigned(ctx, 5)
	want := []Cosignature{{"alice", "alice.cosign", []byte("alice 1")}, {"bob", "bob.cosign", []byte("bob 2")}}
	if err != nil || string(signed) != "cp5" || !reflect.DeepEqual(cs, want) {
		t.Errorf("Cosigned(5) = %q, %+v, %v; want cp5, %+v", signed, cs, err, want)
	}
	sizes, err := s.CosignedSizes(ctx, 64)
	if err != nil || len(sizes) != 64 || sizes[0] != (CosignedSize{169, 1}) || sizes[63] != (CosignedSize{106, 1}) {
		t.Errorf("CosignedSizes(64) = %v, %v; want 169 down to 106", sizes, err)
	}
	sizes, err = s.CosignedSizes(ctx, 100)
	if n := len(sizes); err != nil || n != 72 || sizes[n-2] != (CosignedSize{5, 2}) || sizes[n-1] != (CosignedSize{3, 1}) {
		t.Errorf("CosignedSizes(100) = %v, %v; want 72 sizes ending with 5 (2) and 3 (1)", sizes, err)
	}
	if _, _, err := s.Cosigned(ctx, 4); !errors.Is(err, ErrNotFound) {
		t.Errorf("Cosigned(4) = %v, want ErrNotFound", err)
	}
}

// TestPutCosignatureRefused: sizes and lengths outside the schema's limits
// are refused before the write, and store nothing.
func TestPutCosignatureRefused(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	ok := Cosignature{Editor: "alice", Name: "alice.cosign", Line: []byte("line")}
	long := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name   string
		size   int64
		signed []byte
		c      Cosignature
		ok     bool
	}{
		{"size_zero", 0, []byte("cp"), ok, false},
		{"size_negative", -1, []byte("cp"), ok, false},
		{"no_checkpoint", 1, nil, ok, false},
		{"checkpoint_at_limit", 1, bytes.Repeat([]byte("c"), MaxCosignedCheckpoint), ok, true},
		{"checkpoint_over_limit", 2, bytes.Repeat([]byte("c"), MaxCosignedCheckpoint+1), ok, false},
		{"no_editor", 2, []byte("cp"), Cosignature{Name: "n", Line: []byte("l")}, false},
		{"editor_at_limit", 3, []byte("cp"), Cosignature{Editor: long(32), Name: "n", Line: []byte("l")}, true},
		{"editor_over_limit", 4, []byte("cp"), Cosignature{Editor: long(33), Name: "n", Line: []byte("l")}, false},
		{"name_over_limit", 4, []byte("cp"), Cosignature{Editor: "e", Name: long(65), Line: []byte("l")}, false},
		{"no_line", 4, []byte("cp"), Cosignature{Editor: "e", Name: "n"}, false},
		{"line_at_limit", 5, []byte("cp"), Cosignature{Editor: "e", Name: "n", Line: bytes.Repeat([]byte("l"), MaxCosignatureLine)}, true},
		{"line_over_limit", 6, []byte("cp"), Cosignature{Editor: "e", Name: "n", Line: bytes.Repeat([]byte("l"), MaxCosignatureLine+1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.PutCosignature(ctx, tc.size, tc.signed, tc.c)
			if (err == nil) != tc.ok {
				t.Fatalf("PutCosignature() = %v, want ok %t", err, tc.ok)
			}
			if _, _, err := s.Cosigned(ctx, tc.size); (err == nil) != tc.ok {
				t.Errorf("Cosigned(%d) = %v after PutCosignature ok %t", tc.size, err, tc.ok)
			}
		})
	}
}
