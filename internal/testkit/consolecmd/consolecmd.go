// Package consolecmd runs `newsdesk console` in tests as an editor does:
// it starts the command, waits for the one URL it prints, and stops it
// with Ctrl-C (SIGINT), checking that it exits cleanly. The console's own
// tests and the end-to-end tests share it.
package consolecmd

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cmd is a running `newsdesk console`.
type Cmd struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan error
	// URL is the URL the command printed (its "open " line).
	URL string
	// stopped is set once Interrupt saw the command exit.
	stopped bool
}

// Start starts cmd (a `newsdesk console` command line, its standard
// output and error not set) and waits, for at most limit, for the URL it
// prints. The test fails if the command ends or prints none. The command
// is killed at the test's end unless Interrupt stopped it.
func Start(tb testing.TB, cmd *exec.Cmd, limit time.Duration) *Cmd {
	tb.Helper()
	c := &Cmd{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		c.exited <- cmd.Wait()
	}()
	tb.Cleanup(func() {
		if !c.stopped {
			cmd.Process.Kill()
			for range lines {
			}
			<-c.exited
		}
	})
	deadline := time.After(limit)
	for c.URL == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				tb.Fatalf("newsdesk console printed no URL before its output ended:\n%s", c.Stderr())
			}
			if u, found := strings.CutPrefix(line, "open "); found {
				c.URL = u
			}
		case <-deadline:
			tb.Fatalf("newsdesk console printed no URL within %v:\n%s", limit, c.Stderr())
		}
	}
	go func() {
		for range lines { // whatever else it prints
		}
	}()
	return c
}

// Stderr returns what the command wrote to its standard error so far.
func (c *Cmd) Stderr() string { return c.stderr.String() }

// Interrupt sends the command SIGINT, as Ctrl-C does, and waits for it
// to exit, for at most limit; the test fails unless it exits with status
// 0 in time.
func (c *Cmd) Interrupt(tb testing.TB, limit time.Duration) {
	tb.Helper()
	if err := Interrupt(c.cmd.Process, c.exited, limit); err != nil {
		tb.Errorf("%v\n%s", err, c.Stderr())
	}
	c.stopped = true
}

// Interrupt sends p SIGINT and waits, for at most limit, for its exit
// status on exited (the result of its Wait), which it always receives
// (killing p if need be). It returns an error if the process did not
// exit in time or exited with an error.
func Interrupt(p *os.Process, exited <-chan error, limit time.Duration) error {
	if err := p.Signal(os.Interrupt); err != nil {
		p.Kill()
		<-exited
		return fmt.Errorf("Ctrl-C to newsdesk console: %w", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("newsdesk console after Ctrl-C: %w", err)
		}
		return nil
	case <-time.After(limit):
		p.Kill()
		<-exited
		return fmt.Errorf("newsdesk console did not stop within %v of Ctrl-C", limit)
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer (the command) and
// readers (the test).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
