// Package atomicfile writes small files durably: the data goes to a
// temporary file in the same directory, which is synced, then put in place,
// and the directory is synced. A reader sees the old file or the new one,
// never a part; after a crash the new file is there whole or not at all.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteNew writes a file that must not exist yet. It fails with an error
// matching fs.ErrExist if path exists, so a key is never silently replaced.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, func(tmp string) error {
		// Link, not rename: link fails if path exists.
		err := os.Link(tmp, path)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists already; not replacing it: %w", path, err)
		}
		return err
	})
}

// Replace writes a file, replacing any old one.
func Replace(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, func(tmp string) error { return os.Rename(tmp, path) })
}

func write(path string, data []byte, perm os.FileMode, place func(tmp string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := place(f.Name()); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
