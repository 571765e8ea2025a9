package protocol_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"strings"
	"testing"

	"fieldtip/crypto"
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
// docs/formats.md, and the receipt is for the example's upload.
func TestExampleNotes(t *testing.T) {
	const (
		newsroom = "newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry"
	)
	b, err := crypto.OpenBundle([]byte(exampleBundle), newsroom)
	if err != nil {
		t.Fatalf("OpenBundle(example bundle) error = %v", err)
	}
	if b.Version != 3 {
		t.Errorf("example bundle version = %d, want 3 as in the upload", b.Version)
	}
	r, err := crypto.OpenReceipt([]byte(exampleReceipt), b.Log)
	if err != nil {
		t.Fatalf("OpenReceipt(example receipt) error = %v", err)
	}
	if r.SHA256 != sha256.Sum256(make([]byte, 16384)) || r.Length != 16384 {
		t.Errorf("example receipt is for %x, %d bytes, not the example's upload", r.SHA256, r.Length)
	}
	if !bytes.Contains([]byte(exampleBundle), []byte("\n\n— ")) {
		t.Errorf("example bundle is not a signed note")
	}
}
