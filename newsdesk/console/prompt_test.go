//go:build linux

package console

import (
	"bufio"
	"os/exec"
	"strings"
	"testing"
	"time"

	"fieldtip/internal/testkit/consolecmd"

	"github.com/creack/pty"
)

// TestConsoleCommandAsksPassphrase runs the real `newsdesk console`
// without --passphrase-file, on a terminal of its own (a pseudo-terminal
// it has as its controlling terminal, as in an editor's shell): it asks
// for the key's passphrase there, without echoing it, then syncs and
// prints the URL; Ctrl-C stops it.
func TestConsoleCommandAsksPassphrase(t *testing.T) {
	r := newRoom(t, "alice")
	r.send(t, "a tip behind the passphrase")
	cmd := exec.Command(newsdeskCLI(t), "console", "--server", r.srv.URL, "--newsroom", r.newsroom.Verifier,
		"--key", r.keyFiles["alice"], "--cache", t.TempDir())
	term, err := pty.Start(cmd)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer term.Close()
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		// The prompt has no newline: split at ':' too.
		sc := bufio.NewScanner(term)
		sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			for i, c := range data {
				if c == '\n' || c == ':' && strings.HasSuffix(string(data[:i]), "passphrase") {
					return i + 1, data[:i+1], nil
				}
			}
			if atEOF && len(data) > 0 {
				return len(data), data, nil
			}
			return 0, nil, nil
		})
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r\n")
		}
		close(lines)
	}()
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	}()
	var seen []string
	expect := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.After(failAfter)
		for {
			select {
			case l, open := <-lines:
				if !open {
					t.Fatalf("the terminal closed before %s:\n%s", what, strings.Join(seen, "\n"))
				}
				seen = append(seen, l)
				if ok(l) {
					return l
				}
			case <-deadline:
				t.Fatalf("no %s on the terminal:\n%s", what, strings.Join(seen, "\n"))
			}
		}
	}
	expect("passphrase prompt", func(l string) bool { return strings.HasSuffix(l, "Editor key passphrase:") })
	if _, err := term.Write([]byte(passphrase + "\n")); err != nil {
		t.Fatal(err)
	}
	url := expect("URL", func(l string) bool { return strings.HasPrefix(l, "open http://127.0.0.1:") })
	if !strings.Contains(url, "token=") {
		t.Errorf("the printed URL %q has no token", url)
	}
	for _, l := range seen {
		if strings.Contains(l, passphrase) {
			t.Errorf("the terminal echoed the passphrase: %q", l)
		}
	}
	if err := consolecmd.Interrupt(cmd.Process, exited, failAfter); err != nil {
		t.Errorf("%v\n%s", err, strings.Join(seen, "\n"))
	}
	stopped = true
}
