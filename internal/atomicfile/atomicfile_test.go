package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteNewRefusesToReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := WriteNew(p, []byte("first"), 0o600); err != nil {
		t.Fatalf("WriteNew() = %v, want nil", err)
	}
	if err := WriteNew(p, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteNew(existing) = %v, want fs.ErrExist", err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "first" {
		t.Errorf("file holds %q after a refused WriteNew, want %q", got, "first")
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	assertNoTemp(t, dir)
}

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cursor")
	for _, v := range []string{"1", "22"} {
		if err := Replace(p, []byte(v), 0o644); err != nil {
			t.Fatalf("Replace(%q) = %v", v, err)
		}
		if got, _ := os.ReadFile(p); string(got) != v {
			t.Errorf("after Replace(%q) the file holds %q", v, got)
		}
	}
	assertNoTemp(t, dir)
}

func TestMissingDirectory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "no", "such", "dir", "f")
	if err := Replace(p, []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Replace in a missing dir = %v, want fs.ErrNotExist", err)
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if filepath.Ext(e.Name()) != "" || e.Name()[0] == '.' {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
