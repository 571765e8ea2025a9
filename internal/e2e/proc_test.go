package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fieldtip/internal/testkit/scripttest"
)

// binDir holds the binaries TestMain builds: fieldtipd, fieldtip, newsdesk.
var binDir string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fieldtip-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The server and the editors' tool with SQLite, the source's client
	// with CGO_ENABLED=0, which proves the static phone build DESIGN.md §3
	// promises.
	if err := scripttest.Build(dir, scripttest.Programs...); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// bin returns the path of a built binary.
func bin(name string) string { return filepath.Join(binDir, name) }

// run runs a built binary in dir with stdin and returns its standard output
// and error; it fails the test unless the exit status is want.
func run(t *testing.T, dir, stdin string, want int, prog string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin(prog), args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	got := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		got = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v", prog, strings.Join(args, " "), err)
	}
	if got != want {
		t.Fatalf("%s %s: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", prog, strings.Join(args, " "), got, want, o.String(), e.String())
	}
	return o.String(), e.String()
}

// lockedBuffer is a bytes.Buffer safe for one writer and many readers.
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

// server is a running fieldtipd process.
type server struct {
	cmd    *exec.Cmd
	Addr   string // the address it listens on, host:port
	URL    string // http://Addr
	TmpDir string // its TMPDIR, where SQLite would put temporary files
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{} // closed once the process has exited
	err    error         // its exit error, set before done is closed
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// serverStartLimit bounds the readiness wait for a new server: it covers a
// loaded machine, and a server that never listens fails the test instead
// of hanging it.
const serverStartLimit = 60 * time.Second

// cheapPoW are the fieldtipd flags of a server whose proofs of work cost
// a few 64 KiB Argon2id tries (fieldtiptest.CheapPoW): real proofs, checked
// for real, at a price that keeps tests which send many tips fast. The
// scripts that mirror the README run the defaults, as a reader would.
var cheapPoW = []string{"--pow-memory", "64", "--pow-time", "1", "--pow-bits", "2"}

// startServer runs fieldtipd with args, and --listen 127.0.0.1:0 unless
// args has a --listen, and returns once the server logged the address it
// listens on. The process is killed when the test ends, if it still runs.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	s := &server{done: make(chan struct{}), TmpDir: t.TempDir()}
	if !slices.Contains(args, "--listen") {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	s.cmd = exec.Command(bin("fieldtipd"), args...)
	s.cmd.Env = append(os.Environ(), "TMPDIR="+s.TmpDir)
	s.cmd.Stdout = &s.stdout
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		r := bufio.NewReader(pipe)
		for {
			line, err := r.ReadString('\n')
			s.stderr.Write([]byte(line))
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
			if err != nil {
				break
			}
		}
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("fieldtipd %s stderr:\n%s", strings.Join(args, " "), s.stderr.String())
		}
	})
	select {
	case s.Addr = <-addr:
	case <-s.done:
		select {
		case s.Addr = <-addr:
		default:
			t.Fatalf("fieldtipd exited before listening: %v\n%s", s.err, s.stderr.String())
		}
	case <-time.After(serverStartLimit):
		t.Fatalf("fieldtipd did not listen within %v\n%s", serverStartLimit, s.stderr.String())
	}
	s.URL = "http://" + s.Addr
	return s
}

// kill ends the server with SIGKILL, a crash: no cleanup of any kind runs.
func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// stop sends SIGTERM and waits for the server to exit; it returns the
// exit error. The wait is bounded by the server's own shutdown timeout
// (30 s) and a margin.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(45 * time.Second):
		s.kill()
		t.Fatalf("fieldtipd did not stop after SIGTERM\n%s", s.stderr.String())
	}
	return s.err
}

// stopClean stops the server with SIGTERM and checks that it shut down
// cleanly: exit status 0, the shutdown logged, no warning or error.
func (s *server) stopClean(t *testing.T) {
	t.Helper()
	if err := s.stop(t); err != nil {
		t.Errorf("fieldtipd after SIGTERM: %v", err)
	}
	log := s.stderr.String()
	if !strings.Contains(log, `msg="shutting down"`) {
		t.Errorf("fieldtipd log has no shutdown line:\n%s", log)
	}
	if strings.Contains(log, "level=ERROR") || strings.Contains(log, "level=WARN") {
		t.Errorf("fieldtipd logged a warning or an error:\n%s", log)
	}
}
