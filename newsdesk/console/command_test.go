package console

import (
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"fieldtip/internal/testkit/browser"
	"fieldtip/internal/testkit/consolecmd"
)

// TestConsoleCommandURL runs the real `newsdesk console` binary against a
// real server, as an editor does: the passphrase from a file, a sync,
// then the one URL it prints. Headless Chromium opens that printed URL
// and sees the inbox with the tip (the token gone from the address); the
// same URL a second time is refused; Ctrl-C (SIGINT) stops the command
// cleanly, leaving the sealed index in the cache.
func TestConsoleCommandURL(t *testing.T) {
	r := newRoom(t, "alice")
	word := marker("printedurl")
	tip := r.send(t, "Opened from the printed URL: "+word)
	cache := t.TempDir()
	cmd := exec.Command(newsdeskCLI(t), "console", "--server", r.srv.URL, "--newsroom", r.newsroom.Verifier,
		"--key", r.keyFiles["alice"], "--passphrase-file", r.passFile, "--cache", cache)
	c := consolecmd.Start(t, cmd, failAfter)
	printed := c.URL
	pu, err := url.Parse(printed)
	if err != nil || pu.Scheme != "http" || pu.Hostname() != "127.0.0.1" || pu.Query().Get("token") == "" {
		t.Fatalf("the printed URL %q is not a loopback URL with a token", printed)
	}

	b := browser.Start(t, browser.Options{Hosts: []string{pu.Host}})
	if err := b.Navigate(printed); err != nil {
		t.Fatal(err)
	}
	base := "http://" + pu.Host
	if loc := eval[string](t, b, "location.href"); loc != base+"/" {
		t.Errorf("after opening the printed URL the address is %q, want %q (no token)", loc, base+"/")
	}
	wait(t, b, fmt.Sprintf(`document.querySelector('#rows tr[data-id="%s"]') !== null`, tip))
	if got := eval[string](t, b, `document.getElementById("rows").textContent`); !strings.Contains(got, word) {
		t.Errorf("the inbox opened from the printed URL lacks the tip's first line:\n%s", got)
	}
	if err := b.Navigate(printed); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, b, "document.body.textContent"); !strings.Contains(got, "used already") || strings.Contains(got, word) {
		t.Errorf("the printed URL a second time: %q", got)
	}

	// Ctrl-C: the command stops, and closes its session.
	c.Interrupt(t, failAfter)
	if len(filesHolding(t, []string{cache}, []byte("fieldtip/newsdesk-index/v1"))) == 0 {
		t.Error("the cache holds no sealed index after Ctrl-C: the session did not close")
	}
}
