package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"fieldtip/newsdesk"
)

// The claims tests' common steps, with the real binaries.

// withThreeEditors adds bob and carol to d's newsroom (alice is there
// already): their key files, and a bundle listing the three that d.start
// puts in force.
func (d *desk) withThreeEditors(t *testing.T) {
	t.Helper()
	for _, label := range []string{"bob", "carol"} {
		if _, err := newsdesk.EditorNew(label, filepath.Join(d.dir, label+".key"), passphrase, false, newsdesk.KeyOptions{WorkFactor: testWorkFactor}); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := run(t, d.dir, "", 0, "fieldtipd", "--data", d.data, "--print-log-key")
	d.bundle = filepath.Join(d.dir, "bundle3.txt")
	run(t, d.dir, "", 0, "newsdesk", "bundle", "sign", "--newsroom", "newsroom.key", "--passphrase-file", d.pass,
		"--log", strings.TrimSpace(out), "--editor", "alice.key.pub", "--editor", "bob.key.pub", "--editor", "carol.key.pub", "--out", d.bundle)
}

// editorAt returns a function that runs newsdesk as an editor (its key
// file and cache named by its label) against the editors' URL server, and
// returns the last line it printed.
func (d *desk) editorAt(t *testing.T, server string) func(label string, args ...string) string {
	return func(label string, args ...string) string {
		t.Helper()
		args = append(args, "--server", server, "--key", label+".key", "--passphrase-file", d.pass, "--cache", label+"-cache", "--newsroom", d.newsroom)
		out, _ := run(t, d.dir, "", 0, "newsdesk", args...)
		return lastLine(out)
	}
}

// sendFromTwoSources sends two tips, each from its own source, to the
// sources' URL server, and returns their ids.
func (d *desk) sendFromTwoSources(t *testing.T, server string) []string {
	t.Helper()
	var tips []string
	for i, text := range []string{"Three trucks of copper concentrate left the mine at night.", "The customs post logged the concentrate as scrap metal."} {
		src := filepath.Join(d.dir, "src"+string(rune('1'+i)))
		run(t, d.dir, "", 0, "fieldtip", "init", "--config", src, "--server", server, "--newsroom", d.newsroom)
		out, _ := run(t, d.dir, "", 0, "fieldtip", "send", "--config", src, "--codename-file", src+"-codename", "--text", text)
		tips = append(tips, tipID(t, out))
	}
	return tips
}
