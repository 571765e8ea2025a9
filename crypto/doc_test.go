package crypto_test

import (
	"io"
	"os"
	"strings"
	"testing"
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
func docBlock(t *testing.T, doc, marker string) string {
	t.Helper()
	_, after, ok := strings.Cut(doc, marker+"\n")
	if !ok {
		t.Fatalf("docs/formats.md has no %q", marker)
	}
	fence, after, ok := strings.Cut(after, "\n")
	if !ok || !strings.HasPrefix(fence, "```") {
		t.Fatalf("docs/formats.md: no code block right after %q", marker)
	}
	block, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("docs/formats.md: the code block after %q does not end", marker)
	}
	return block
}

// The worked examples of docs/formats.md are, byte for byte, the example
// key files and the output of the examples.
func TestFormatsDoc(t *testing.T) {
	b, err := os.ReadFile("../docs/formats.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range []struct {
		name string
		text string
	}{
		{"exampleNewsroomKeyFile", exampleNewsroomKeyFile},
		{"exampleLogKeyFile", exampleLogKeyFile},
		{"exampleEditorKeyFile", exampleEditorKeyFile},
	} {
		marker := "<!-- " + c.name + " in crypto/example_test.go -->"
		if got := docBlock(t, doc, marker); got != c.text {
			t.Errorf("docs/formats.md after %s:\n%s\nwant:\n%s", marker, got, c.text)
		}
	}
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"ExampleParseEditorKey", ExampleParseEditorKey},
		{"ExampleSignBundle", ExampleSignBundle},
		{"ExampleSignReceipt", ExampleSignReceipt},
		{"ExampleSignLogin", ExampleSignLogin},
		{"ExampleMarshalTip", ExampleMarshalTip},
		{"ExampleBucket", ExampleBucket},
	} {
		marker := "<!-- output of " + c.name + " in crypto/example_test.go -->"
		if got, want := docBlock(t, doc, marker), captureStdout(t, c.f); got != want {
			t.Errorf("docs/formats.md after %s:\n%s\n%s prints:\n%s", marker, got, c.name, want)
		}
	}
}
