package scripttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldtip/internal/testkit/fieldtiptest"

	"github.com/armon/go-socks5"
	"github.com/rogpeppe/go-internal/testscript"
)

// Commands returns the commands every fieldtip script has, besides
// testscript's own:
//
//	waitserver URL            wait until URL/healthz answers 200 (a readiness wait)
//	capture NAME FILE [RE]    set $NAME to FILE's last line, or to RE's first group
//	exitcode N PROG ARGS...   run PROG, which must exit with status N
//	replace FILE OLD NEW      replace the one occurrence of OLD in FILE
//	samesize FILE1 FILE2      FILE1 and FILE2 have the same size
//	grepr REGEXP DIR          some file under DIR matches (with !, none does)
//	phonejpeg FILE W H        write fieldtiptest.PhoneJPEG(W, H) to FILE
//	socks5                    start a SOCKS5 proxy in the test process; $SOCKS is its address
//	socks5 requests           print the destinations asked of the proxy, one a line
//	httpget URL FILE          GET URL into FILE; it must answer 200 (with !, must not)
//	tty [-in FILE] COLS PROG [ARGS...]
//	                          run PROG on a terminal COLS columns wide; what it wrote becomes stdout
//
// FILE may be stdout or stderr, for the last command's.
func Commands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"waitserver": cmdWaitServer,
		"capture":    cmdCapture,
		"exitcode":   cmdExitCode,
		"replace":    cmdReplace,
		"samesize":   cmdSameSize,
		"grepr":      cmdGrepR,
		"phonejpeg":  cmdPhoneJPEG,
		"socks5":     cmdSOCKS5,
		"httpget":    cmdHTTPGet,
		"tty":        cmdTTY,
	}
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

func cmdSameSize(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: samesize FILE1 FILE2")
	}
	a, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	b, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	if same := a.Size() == b.Size(); same == neg {
		ts.Fatalf("%s has %d bytes, %s has %d", args[0], a.Size(), args[1], b.Size())
	}
}

// cmdGrepR: grepr REGEXP DIR matches REGEXP against every file under DIR;
// with !, it fails naming the first file that matches.
func cmdGrepR(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: grepr REGEXP DIR")
	}
	re, err := regexp.Compile(args[0])
	ts.Check(err)
	var found string
	err = filepath.WalkDir(ts.MkAbs(args[1]), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if re.Match(b) {
			found = path
		}
		return nil
	})
	ts.Check(err)
	switch {
	case neg && found != "":
		ts.Fatalf("%s matches %q", found, args[0])
	case !neg && found == "":
		ts.Fatalf("no file under %s matches %q", args[1], args[0])
	}
}

func cmdPhoneJPEG(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: phonejpeg FILE W H")
	}
	w, err := strconv.Atoi(args[1])
	ts.Check(err)
	h, err := strconv.Atoi(args[2])
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), fieldtiptest.PhoneJPEG(w, h), 0o644))
}

// socksKey is the key of a script's *socksProxy in its Values.
type socksKey struct{}

// socksProxy is a real SOCKS5 server (github.com/armon/go-socks5) on
// loopback, in the test process. It resolves the one name ProxiedName, to
// 127.0.0.1, and no other (the tests look nothing up in DNS), and records
// each destination it was asked to connect to: a name shows that the
// client left the lookup to the proxy, as socks5h:// must.
type socksProxy struct {
	mu    sync.Mutex
	addr  string
	dests []string
}

// ProxiedName is the only host name the socks5 command's proxy resolves;
// .invalid (RFC 2606) never resolves anywhere else.
const ProxiedName = "newsroom.invalid"

func (p *socksProxy) Allow(ctx context.Context, req *socks5.Request) (context.Context, bool) {
	dest := req.DestAddr.Address()
	if req.DestAddr.FQDN != "" {
		dest = net.JoinHostPort(req.DestAddr.FQDN, strconv.Itoa(req.DestAddr.Port))
	}
	p.mu.Lock()
	p.dests = append(p.dests, dest)
	p.mu.Unlock()
	return ctx, req.Command == socks5.ConnectCommand
}

func (p *socksProxy) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	if name != ProxiedName {
		return ctx, nil, fmt.Errorf("the test proxy resolves only %s, not %q", ProxiedName, name)
	}
	return ctx, net.IPv4(127, 0, 0, 1), nil
}

func cmdSOCKS5(ts *testscript.TestScript, neg bool, args []string) {
	p := ts.Value(socksKey{}).(*socksProxy)
	switch {
	case !neg && len(args) == 0:
		if p.addr != "" {
			ts.Fatalf("socks5: already running at %s", p.addr)
		}
		srv, err := socks5.New(&socks5.Config{Rules: p, Resolver: p, Logger: log.New(io.Discard, "", 0)})
		ts.Check(err)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		ts.Defer(func() { l.Close() })
		go srv.Serve(l)
		p.addr = l.Addr().String()
		ts.Setenv("SOCKS", p.addr)
	case !neg && len(args) == 1 && args[0] == "requests":
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, d := range p.dests {
			fmt.Fprintln(ts.Stdout(), d)
		}
	default:
		ts.Fatalf("usage: socks5 [requests]")
	}
}

// httpTimeout bounds httpget: generous, the machine is loaded.
const httpTimeout = 60 * time.Second

// cmdHTTPGet: httpget URL FILE writes the body of GET URL to FILE; the
// answer must be 200 OK (with !, anything else, and FILE is not written).
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: httpget URL FILE")
	}
	c := &http.Client{Timeout: httpTimeout}
	resp, err := c.Get(args[0])
	ts.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	ts.Check(err)
	switch {
	case neg && resp.StatusCode == http.StatusOK:
		ts.Fatalf("GET %s: %s, want another status", args[0], resp.Status)
	case neg:
		return
	case resp.StatusCode != http.StatusOK:
		ts.Fatalf("GET %s: %s: %s", args[0], resp.Status, b)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), b, 0o644))
}
