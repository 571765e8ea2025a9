package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/creack/pty"
	"github.com/rogpeppe/go-internal/testscript"
)

// fieldtipCmds are the commands fieldtip's scripts have besides
// internal/testkit/scripttest's:
//
//	bytesfile FILE N              write N incompressible bytes (a fixed stream) to FILE
//	tty [-stdin FILE] PROG ARGS   run PROG with standard input and error on a new
//	                              pseudo-terminal, as on a phone's or laptop's
//	                              screen; what the terminal showed becomes the
//	                              command's stderr, standard output its stdout.
//	                              FILE's text is typed, then Ctrl-D. PROG must exit 0
//	                              (with !, not 0).
func fieldtipCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"bytesfile": cmdBytesFile,
		"tty":       cmdTTY,
	}
}

func cmdBytesFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: bytesfile FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	r := rand.New(rand.NewChaCha8([32]byte{'f', 'i', 'e', 'l', 'd', 't', 'i', 'p'}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o644))
}

func cmdTTY(ts *testscript.TestScript, neg bool, args []string) {
	var input []byte
	if len(args) >= 2 && args[0] == "-stdin" {
		input = []byte(ts.ReadFile(args[1]))
		args = args[2:]
	}
	if len(args) < 1 {
		ts.Fatalf("usage: tty [-stdin FILE] PROG [ARGS...]")
	}
	prog := lookPath(ts, args[0])
	cmd := exec.Command(prog, args[1:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"), "HOME="+ts.Getenv("HOME"), "TMPDIR="+ts.Getenv("TMPDIR"))
	ptmx, tty, err := pty.Open()
	ts.Check(err)
	defer ptmx.Close()
	var stdout bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, &stdout, tty
	// The terminal is the child's controlling terminal, so /dev/tty is it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	ts.Check(cmd.Start())
	tty.Close()
	shown := make(chan []byte)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, ptmx) // ends with EIO once the child's side is closed
		shown <- b.Bytes()
	}()
	if input != nil {
		ptmx.Write(input)
		ptmx.Write([]byte{4}) // Ctrl-D: end of input on a line of its own
	}
	err = cmd.Wait()
	out := <-shown
	ts.Stdout().Write(stdout.Bytes())
	// The terminal turns \n into \r\n: undo it, so scripts match lines.
	ts.Stderr().Write(bytes.ReplaceAll(out, []byte("\r\n"), []byte("\n")))
	var exit *exec.ExitError
	switch {
	case err == nil && neg:
		ts.Fatalf("%s succeeded, want a failure", args[0])
	case errors.As(err, &exit) && !neg:
		ts.Fatalf("%s exited with status %d", args[0], exit.ExitCode())
	case err != nil && !errors.As(err, &exit):
		ts.Fatalf("%s: %v", args[0], err)
	}
}

// lookPath finds prog on the script's PATH.
func lookPath(ts *testscript.TestScript, prog string) string {
	for _, dir := range strings.Split(ts.Getenv("PATH"), string(os.PathListSeparator)) {
		p := filepath.Join(dir, prog)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	ts.Fatalf("%s is not on the script's PATH", prog)
	return ""
}
