package readme

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeAsWritten checks what issue 12 asked of the README's text, not
// its commands (TestReadme runs those): no link leaves the repository for
// ../shared/ (the design briefs are not part of it; docs/ holds what the
// repository needs), in the README or any doc; the walk-through serves on
// another port than the --dev server's 127.0.0.1:8080, so both can run;
// and the README says that the first go run compiles for about a minute.
func TestReadmeAsWritten(t *testing.T) {
	root := filepath.Dir(readmePath)
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	// A Markdown link or an HTML href whose target names the shared
	// folder outside the repository.
	shared := regexp.MustCompile(`(\]\(|href=")[^)"]*\.\./shared/`)
	for _, p := range append([]string{readmePath, filepath.Join(root, "SECURITY.md")}, docs...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if shared.MatchString(line) {
				t.Errorf("%s:%d links into ../shared/, which is not part of the repository: %s", filepath.Base(p), i+1, line)
			}
		}
	}

	md, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readmeBlocks(string(md))
	if err != nil {
		t.Fatal(err)
	}
	const devAddr = "127.0.0.1:8080"
	if readmeAddr == devAddr {
		t.Errorf("the walk-through serves on %s, the --dev server's address", readmeAddr)
	}
	served := false
	for _, b := range blocks {
		if b.Skip != "" {
			continue
		}
		if strings.Contains(b.Text, devAddr) {
			t.Errorf("README line %d, a block the walk-through runs, uses %s, the --dev server's address", b.Line, devAddr)
		}
		served = served || strings.Contains(b.Text, "--listen "+readmeAddr)
	}
	if !served {
		t.Errorf("no block the walk-through runs starts a server on %s", readmeAddr)
	}
	if !regexp.MustCompile("first `go run`\\s+compiles[^.]*about\\s+a\\s+minute").Match(md) {
		t.Error("the README does not say that the first `go run` compiles for about a minute")
	}
}
