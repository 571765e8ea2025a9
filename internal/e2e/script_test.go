package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs testdata/*.txt, one scenario each, with the built
// binaries first on PATH and $PORT a free loopback port for the script's
// server. Besides testscript's commands, scripts have:
//
//	waitserver URL            wait until URL/healthz answers 200 (a readiness wait)
//	capture NAME FILE [RE]    set $NAME to FILE's last line, or to RE's first group
//	exitcode N PROG ARGS...   run PROG, which must exit with status N
//	replace FILE OLD NEW      replace the one occurrence of OLD in FILE
//
// FILE may be stdout or stderr, for the last command's.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                "testdata",
		RequireUniqueNames: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", binDir+string(os.PathListSeparator)+env.Getenv("PATH"))
			port, err := freePort()
			if err != nil {
				return err
			}
			env.Setenv("PORT", port)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitserver": cmdWaitServer,
			"capture":    cmdCapture,
			"exitcode":   cmdExitCode,
			"replace":    cmdReplace,
		},
	})
}

// freePort returns a loopback TCP port that was free a moment ago. A
// script's servers listen on it one after another; the kernel hands out
// ephemeral ports in turn, so another process taking it in between is
// unlikely, and would fail the script's waitserver rather than pass it.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// waitTries and waitInterval bound waitserver: long enough for a loaded
// machine and for --dev, which makes two passphrase-sealed keys before it
// listens.
const (
	waitTries    = 600
	waitInterval = 50 * time.Millisecond
)

func cmdWaitServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitserver URL")
	}
	c := &http.Client{Timeout: time.Second}
	var err error
	for range waitTries {
		var resp *http.Response
		if resp, err = c.Get(args[0] + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		time.Sleep(waitInterval)
	}
	ts.Fatalf("server at %s not ready after %d tries: %v", args[0], waitTries, err)
}

func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: capture NAME FILE [REGEXP]")
	}
	text := ts.ReadFile(args[1])
	if len(args) == 3 {
		re, err := regexp.Compile(`(?m)` + args[2])
		ts.Check(err)
		m := re.FindStringSubmatch(text)
		if len(m) < 2 {
			ts.Fatalf("capture: %s does not match %q (or the pattern has no group)", args[1], args[2])
		}
		ts.Setenv(args[0], m[1])
		return
	}
	text = strings.TrimRight(text, "\n")
	line := text[strings.LastIndexByte(text, '\n')+1:]
	if line == "" {
		ts.Fatalf("capture: %s has no last line", args[1])
	}
	ts.Setenv(args[0], line)
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		got = exit.ExitCode()
	case err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	text := ts.ReadFile(args[0])
	if n := strings.Count(text, args[1]); n != 1 {
		ts.Fatalf("replace: %q occurs %d times in %s, want once", args[1], n, args[0])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Replace(text, args[1], args[2], 1)), 0o644))
}
