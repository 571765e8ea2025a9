package scripttest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/creack/pty"
	"github.com/rogpeppe/go-internal/testscript"
)

// ttyEnvKey is the key of the names of a script's environment variables in
// its Values: testscript lets a command read a variable, not list them.
type ttyEnvKey struct{}

// ttyExtraEnv are variables a script may set with `env` after it started
// that tty passes on too.
var ttyExtraEnv = []string{"COLUMNS", "LINES", "TERM", "NO_COLOR"}

// ttyLimit bounds how long a program run by tty may take: generous for a
// loaded machine; a program still running then is killed and the script
// fails, instead of hanging on a terminal nobody types into.
const ttyLimit = 5 * time.Minute

// ttyDrain bounds reading what is left on the terminal once the program
// exited.
const ttyDrain = 30 * time.Second

// cmdTTY: tty [-in FILE] COLS PROG [ARGS...] runs PROG with its standard
// input, output and error on a terminal (a pseudo-terminal) COLS columns
// and 24 rows wide; what PROG wrote to it becomes stdout (line endings as
// "\n"), and FILE, if given, is typed into it, then end of input. With !,
// PROG must exit with a non-zero status.
func cmdTTY(ts *testscript.TestScript, neg bool, args []string) {
	var input []byte
	if len(args) >= 2 && args[0] == "-in" {
		input = []byte(ts.ReadFile(args[1]))
		args = args[2:]
	}
	if len(args) < 2 {
		ts.Fatalf("usage: tty [-in FILE] COLS PROG [ARGS...]")
	}
	cols, err := strconv.ParseUint(args[0], 10, 16)
	ts.Check(err)
	path, err := lookPath(ts, args[1])
	ts.Check(err)
	cmd := exec.Command(path, args[2:]...)
	cmd.Args[0] = args[1]
	cmd.Dir = ts.MkAbs(".")
	for _, name := range append(ts.Value(ttyEnvKey{}).([]string), ttyExtraEnv...) {
		if v := ts.Getenv(name); v != "" || name == "PATH" {
			cmd.Env = append(cmd.Env, name+"="+v)
		}
	}
	ctrl, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: 24})
	ts.Check(err)
	defer ctrl.Close()
	if len(input) > 0 {
		// A terminal takes ^D at the start of a line as end of input.
		if !bytes.HasSuffix(input, []byte("\n")) {
			input = append(input, '\n')
		}
		go ctrl.Write(append(input, 4))
	}
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(ctrl) // EIO once the program exited and closed the terminal
		out <- b
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(ttyLimit):
		cmd.Process.Kill()
		<-done
		ts.Fatalf("tty %s: still running after %v", args[1], ttyLimit)
	}
	// What the program wrote is read until the terminal reports it closed
	// (EIO), unless a process it left behind still holds the terminal.
	var b []byte
	select {
	case b = <-out:
	case <-time.After(ttyDrain):
		ctrl.Close()
		b = <-out
	}
	ts.Stdout().Write(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		ts.Fatalf("tty %s: %v", args[1], err)
	case neg && err == nil:
		ts.Fatalf("tty %s: exited with status 0, want non-zero", args[1])
	case !neg && err != nil:
		ts.Fatalf("tty %s: %v", args[1], err)
	}
}

// lookPath finds prog on the script's PATH.
func lookPath(ts *testscript.TestScript, prog string) (string, error) {
	if strings.Contains(prog, "/") {
		return ts.MkAbs(prog), nil
	}
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, prog)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on the script's PATH", prog)
}
