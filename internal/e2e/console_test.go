package e2e

import (
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldtip/internal/testkit/browser"
	"fieldtip/internal/testkit/consolecmd"
)

// TestConsoleAgainstFieldtipd runs the decryption console as an editor
// does, every part a real program: fieldtipd, a tip sent with fieldtip,
// newsdesk console with its passphrase from a file. Headless Chromium
// opens the one URL it prints and finds the tip in the inbox and its text
// on the tip's page; a triage from the page is an event that newsdesk log
// shows; Ctrl-C stops the console cleanly; the server's data dir holds no
// plaintext.
func TestConsoleAgainstFieldtipd(t *testing.T) {
	d := newDesk(t)
	srv := d.start(t)
	word := randomMarker()
	run(t, d.dir, "", 0, "fieldtip", "init", "--config", "phone", "--server", srv.URL, "--newsroom", d.newsroom)
	out, _ := run(t, d.dir, "", 0, "fieldtip", "send", "--config", "phone", "--codename-file", "codename", "--text", "Trucks at the bridge. "+word)
	id := tipID(t, out)

	cache := filepath.Join(d.dir, "alice-cache")
	cmd := exec.Command(bin("newsdesk"), "console", "--server", srv.URL, "--newsroom", d.newsroom,
		"--key", "alice.key", "--passphrase-file", d.pass, "--cache", cache)
	cmd.Dir = d.dir
	c := consolecmd.Start(t, cmd, serverStartLimit)
	printed := c.URL
	pu, err := url.Parse(printed)
	if err != nil || pu.Hostname() != "127.0.0.1" {
		t.Fatalf("newsdesk console printed %q, not a loopback URL", printed)
	}
	base := "http://" + pu.Host

	b := browser.Start(t, browser.Options{Hosts: []string{pu.Host}})
	if err := b.Navigate(printed); err != nil {
		t.Fatal(err)
	}
	rows, err := b.Text("#rows")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rows, "Trucks at the bridge.") {
		t.Errorf("the console's inbox lacks the tip's first line:\n%s", rows)
	}
	if err := b.Navigate(base + "/tip/" + id); err != nil {
		t.Fatal(err)
	}
	body, err := b.Text("body")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, word) {
		t.Errorf("the tip's page lacks its text:\n%s", body)
	}

	// A triage from the tip's page, written to the log as the CLI writes it.
	triage := `form[action$="/triage"]`
	if _, err := browser.Eval[bool](b, `(() => { const f = document.querySelector('`+triage+`');
		f.querySelector('[name="status"]').value = "useful";
		f.querySelector('[name="add_tag"]').value = "bridge";
		window.__before = true; f.requestSubmit(); return true })()`); err != nil {
		t.Fatalf("submit the triage: %v\n%s", err, body)
	}
	deadline := time.Now().Add(serverStartLimit)
	for {
		done, err := browser.Eval[bool](b, `window.__before === undefined && document.readyState === "complete"`)
		if err == nil && done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the triage form led to no page")
		}
		time.Sleep(50 * time.Millisecond) // a poll of the browser, not a race
	}
	if flash, _ := browser.Eval[string](b, `(document.querySelector(".flash") || {}).textContent || ""`); !strings.Contains(flash, "triage logged") {
		t.Errorf("after the triage the console says %q", flash)
	}

	// Ctrl-C stops it; the log read by the CLI holds the triage.
	c.Interrupt(t, serverStartLimit)
	log, _ := run(t, d.dir, "", 0, "newsdesk", "log", "--server", srv.URL, "--newsroom", d.newsroom,
		"--key", "alice.key", "--passphrase-file", d.pass, "--cache", filepath.Join(d.dir, "cli-cache"))
	if !strings.Contains(log, "useful") || !strings.Contains(log, "bridge") {
		t.Errorf("newsdesk log does not show the console's triage:\n%s", log)
	}
	if searched := searchTree(t, d.data, encodings([]byte(word))); !slices.Contains(searched, "fieldtip.db") {
		t.Errorf("searched %v for the tip's text: no database among them", searched)
	}
	if strings.Contains(c.Stderr(), word) {
		t.Errorf("the console logged the tip's text:\n%s", c.Stderr())
	}
}
