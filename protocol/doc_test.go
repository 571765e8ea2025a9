package protocol_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
)

// captureStdout returns what f prints to os.Stdout, as an Example's output.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		out <- b
	}()
	stdout := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = stdout }()
	f()
	w.Close()
	return string(<-out)
}

// docBlock returns the fenced code block that follows marker in a
// Markdown file.
func docBlock(t *testing.T, file, marker string) string {
	t.Helper()
	doc, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), marker+"\n")
	if !ok {
		t.Fatalf("%s has no %q", file, marker)
	}
	fence, after, ok := strings.Cut(after, "\n")
	if !ok || !strings.HasPrefix(fence, "```") {
		t.Fatalf("%s: no code block right after %q", file, marker)
	}
	block, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("%s: the code block after %q does not end", file, marker)
	}
	return block
}

// The worked example of docs/protocol.md is, byte for byte, the output of
// Example.
func TestDocExample(t *testing.T) {
	got := captureStdout(t, Example)
	if want := docBlock(t, "../docs/protocol.md", "<!-- output of Example in protocol/example_test.go -->"); got != want {
		t.Errorf("docs/protocol.md worked example:\n%s\nExample prints:\n%s", want, got)
	}
}

// The notes of the worked example open with the example keys of
// docs/formats.md, the seed is the one the uploads name and their proofs
// of work verify under it, and each receipt is for its upload.
func TestExampleNotes(t *testing.T) {
	const newsroom = "newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry"
	b, err := crypto.OpenBundle([]byte(exampleBundle), newsroom)
	if err != nil {
		t.Fatalf("OpenBundle(example bundle) error = %v", err)
	}
	if b.Version != 3 {
		t.Errorf("example bundle version = %d, want 3 as in the upload", b.Version)
	}
	if !bytes.Contains([]byte(exampleBundle), []byte("\n\n— ")) {
		t.Errorf("example bundle is not a signed note")
	}

	seed, err := crypto.OpenPoWSeed([]byte(exampleSeed), b.Log)
	if err != nil {
		t.Fatalf("OpenPoWSeed(example seed) error = %v", err)
	}
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	if seed.Epoch != exampleEpoch || seed.EpochSeconds != 7*86400 || seed.Params != crypto.DefaultPoWParams || seed.Seed != bytesFrom(0x80) {
		t.Errorf("example seed = %+v, want epoch %d of one week, the default parameters and the bytes 0x80…0x9f", seed, exampleEpoch)
	}
	if err := seed.CheckCurrent(day); err != nil {
		t.Errorf("example seed on the receipts' day: %v", err)
	}
	if len(exampleSeed) > protocol.MaxSeedSize {
		t.Errorf("example seed is %d bytes, more than MaxSeedSize %d", len(exampleSeed), protocol.MaxSeedSize)
	}

	for _, u := range []struct {
		name    string
		id      protocol.UploadID
		tip     []byte
		pow     []uint64
		pre     uint64
		receipt string
	}{
		{"first", exampleID1, exampleTip1, examplePoW1, examplePre1, exampleReceipt},
		{"second", exampleID2, exampleTip2, examplePoW2, examplePre2, exampleReceipt2},
	} {
		length := int64(len(u.tip))
		if len(u.pow) != protocol.Proofs(length) {
			t.Errorf("%s upload: %d proofs for %d bytes, want %d", u.name, len(u.pow), length, protocol.Proofs(length))
		}
		if err := crypto.CheckPoWs(seed.Params, seed.Seed, u.id, length, u.pow, u.pre); err != nil {
			t.Errorf("%s upload: CheckPoWs(example seed, %s, %d, %v, %d) = %v", u.name, u.id, length, u.pow, u.pre, err)
		}
		for n := range u.pre {
			if crypto.CheckPrePoW(seed.Seed, u.id, length, u.pow, n) {
				t.Errorf("%s upload: pre-proof %d works too, smaller than %d", u.name, n, u.pre)
				break
			}
		}
		// The proofs are the smallest nonces that work, as the docs say:
		// no smaller nonce is a proof.
		for n := range u.pow[0] {
			if crypto.CheckPoW(seed.Params, crypto.PoWInput{Seed: seed.Seed, UploadID: u.id, Length: length}, n) {
				t.Errorf("%s upload: nonce %d is a proof too, smaller than %d", u.name, n, u.pow[0])
				break
			}
		}
		r, err := crypto.OpenReceipt([]byte(u.receipt), b.Log)
		if err != nil {
			t.Fatalf("OpenReceipt(%s example receipt) error = %v", u.name, err)
		}
		if r.SHA256 != sha256.Sum256(u.tip) || r.Length != length || r.Day != "2026-03-14" {
			t.Errorf("%s example receipt is for %x, %d bytes, day %s, not the example's upload", u.name, r.SHA256, r.Length, r.Day)
		}
	}
}

// Package protocol cannot import crypto (DESIGN.md §3), so the sizes both
// define are checked to agree here.
func TestCryptoAgrees(t *testing.T) {
	if protocol.PoWChunkSize != crypto.PoWChunkSize {
		t.Errorf("protocol.PoWChunkSize = %d, crypto.PoWChunkSize = %d", protocol.PoWChunkSize, crypto.PoWChunkSize)
	}
	if protocol.MaxSeedSize != crypto.MaxPoWSeedSize {
		t.Errorf("protocol.MaxSeedSize = %d, crypto.MaxPoWSeedSize = %d", protocol.MaxSeedSize, crypto.MaxPoWSeedSize)
	}
	if protocol.MaxBundleSize != crypto.MaxBundleSize {
		t.Errorf("protocol.MaxBundleSize = %d, crypto.MaxBundleSize = %d", protocol.MaxBundleSize, crypto.MaxBundleSize)
	}
	if protocol.MaxReceiptSize != crypto.MaxReceiptSize {
		t.Errorf("protocol.MaxReceiptSize = %d, crypto.MaxReceiptSize = %d", protocol.MaxReceiptSize, crypto.MaxReceiptSize)
	}
	for _, n := range []int64{-1, 0, 1, protocol.FrameSize, protocol.PoWChunkSize - 1, protocol.PoWChunkSize, protocol.PoWChunkSize + 1,
		protocol.MaxProofs * protocol.PoWChunkSize, protocol.MaxProofs*protocol.PoWChunkSize + 1, 1 << 40} {
		if p, c := protocol.Proofs(n), crypto.PoWChunks(n); p != c {
			t.Errorf("protocol.Proofs(%d) = %d, crypto.PoWChunks(%d) = %d", n, p, n, c)
		}
	}
}
