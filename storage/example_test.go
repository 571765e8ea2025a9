package storage_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"fieldtip/storage"
)

func ExampleStore_PutTip() {
	dir, err := os.MkdirTemp("", "fieldtip-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := storage.Open(filepath.Join(dir, "fieldtip.db"), storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	ct := []byte("age-encryption.org/v1 ...") // an age file, in practice
	t := &storage.Tip{Ciphertext: ct}
	t.ID = [16]byte{1}
	t.Day = "2026-11-28"
	t.BundleVersion = 1
	t.SHA256 = sha256.Sum256(ct)
	t.Length = int64(len(ct))
	t.Receipt = []byte("signed receipt note")
	// nil means committed with synchronous=FULL: the receipt may go out.
	if err := s.PutTip(ctx, t); err != nil {
		log.Fatal(err)
	}
	// An editor pages through tips by Seq.
	tips, err := s.ListTips(ctx, 0, 100)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range tips {
		fmt.Println(m.Seq, m.Day, m.Length)
	}
	// Output:
	// 1 2026-11-28 25
}
