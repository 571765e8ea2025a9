package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
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
	"testing"
	"time"

	"fieldtip/client"
	"fieldtip/internal/testkit/fieldtiptest"

	"github.com/armon/go-socks5"
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
//	samesize FILE1 FILE2      FILE1 and FILE2 have the same size
//	phonejpeg FILE W H        write fieldtiptest.PhoneJPEG(W, H) to FILE
//	scrubbed OUT IN           OUT is IN (a PhoneJPEG) properly scrubbed; prints OUT's size
//	socks5                    start a SOCKS5 proxy in the test process; $SOCKS is its address
//	socks5 requests           print the destinations asked of the proxy, one a line
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
			env.Values[socksKey{}] = &socksProxy{}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitserver": cmdWaitServer,
			"capture":    cmdCapture,
			"exitcode":   cmdExitCode,
			"replace":    cmdReplace,
			"samesize":   cmdSameSize,
			"phonejpeg":  cmdPhoneJPEG,
			"scrubbed":   cmdScrubbed,
			"socks5":     cmdSOCKS5,
			"grepr":      cmdGrepR,
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

// cmdScrubbed checks that OUT is what scrubbing must make of IN, a
// PhoneJPEG (orientation 6): IN does carry the EXIF and comment segments
// and the markers (so the check can fail), and OUT has no APPn or COM
// segment and none of the markers, shows IN's picture upright (the
// corners OrientedCorners(6) gives, so portrait for a landscape IN), and is
// at most 1600 px on its long side. It prints "W×H px, N bytes" for OUT.
func cmdScrubbed(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: scrubbed OUT IN")
	}
	in, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	out, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	if err := checkScrubbed(out, in); err != nil {
		ts.Fatalf("%s from %s: %v", args[0], args[1], err)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(out))
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%d×%d px, %d bytes\n", cfg.Width, cfg.Height, len(out))
}

// phoneMarkers are the strings PhoneJPEG hides in its metadata, and the
// EXIF segment's own header.
var phoneMarkers = []string{
	fieldtiptest.MakerNoteMarker, fieldtiptest.CommentMarker, fieldtiptest.MakeMarker,
	fieldtiptest.ModelMarker, fieldtiptest.DateTimeMarker, "Exif\x00\x00",
}

// maxLongSide is the long side, in pixels, that scrubbing scales photos
// down to (issue 4).
const maxLongSide = 1600

// cornerTolerance is how far, per channel, a scrubbed corner's mean colour
// may be from the quadrant's: PhoneJPEG's texture moves it by less than 30
// and re-encoding by a little more; the quadrants differ by at least 130.
const cornerTolerance = 45

// checkScrubbed reports what is wrong with out as the scrubbed form of
// in, a PhoneJPEG with orientation 6.
func checkScrubbed(out, in []byte) error {
	inMarkers, err := fieldtiptest.JPEGMarkers(in)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if !bytes.Contains(inMarkers, []byte{0xE1}) || !bytes.Contains(inMarkers, []byte{0xFE}) {
		return fmt.Errorf("input has segments % X, want APP1 and COM: the check would prove nothing", inMarkers)
	}
	for _, m := range phoneMarkers {
		if !bytes.Contains(in, []byte(m)) {
			return fmt.Errorf("input lacks %q: the check would prove nothing", m)
		}
	}
	markers, err := fieldtiptest.JPEGMarkers(out)
	if err != nil {
		return err
	}
	for _, m := range markers {
		if m >= 0xE0 && m <= 0xEF || m == 0xFE {
			return fmt.Errorf("segments % X: 0x%02X is a metadata segment (APPn or COM)", markers, m)
		}
	}
	for _, m := range phoneMarkers {
		if bytes.Contains(out, []byte(m)) {
			return fmt.Errorf("holds %q", m)
		}
	}
	img, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		return err
	}
	inCfg, err := jpeg.DecodeConfig(bytes.NewReader(in))
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	b := img.Bounds()
	if max(b.Dx(), b.Dy()) > maxLongSide {
		return fmt.Errorf("%d×%d px, longer than %d px", b.Dx(), b.Dy(), maxLongSide)
	}
	if (b.Dx() > b.Dy()) == (inCfg.Width > inCfg.Height) {
		return fmt.Errorf("%d×%d px from %d×%d px with orientation 6: not turned upright", b.Dx(), b.Dy(), inCfg.Width, inCfg.Height)
	}
	got, want := fieldtiptest.CornerColors(img), fieldtiptest.OrientedCorners(6)
	for c := range want {
		if !fieldtiptest.ColorNear(got[c], want[c], cornerTolerance) {
			return fmt.Errorf("corners (TL, TR, BL, BR) %v, want %v ±%d: not turned per orientation 6", got, want, cornerTolerance)
		}
	}
	return nil
}

// socksKey is the key of a script's *socksProxy in its Values.
type socksKey struct{}

// socksProxy is a real SOCKS5 server (github.com/armon/go-socks5) on
// loopback, in the test process. It resolves the one name proxiedName, to
// 127.0.0.1, and no other (the tests look nothing up in DNS), and records
// each destination it was asked to connect to: a name shows that the
// client left the lookup to the proxy, as socks5h:// must.
type socksProxy struct {
	mu    sync.Mutex
	addr  string
	dests []string
}

// proxiedName is the only host name the test proxy resolves; .invalid
// (RFC 2606) never resolves anywhere else.
const proxiedName = "newsroom.invalid"

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
	if name != proxiedName {
		return ctx, nil, fmt.Errorf("the test proxy resolves only %s, not %q", proxiedName, name)
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

// TestCheckScrubbed shows that the scrubbed command can fail: it refuses
// the photo as taken, and a copy re-encoded without its metadata but not
// turned upright, and passes client.ScrubPhoto's output.
func TestCheckScrubbed(t *testing.T) {
	in := fieldtiptest.PhoneJPEG(800, 600)
	img, err := jpeg.Decode(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var bare bytes.Buffer
	if err := jpeg.Encode(&bare, img, &jpeg.Options{Quality: 70}); err != nil {
		t.Fatal(err)
	}
	scrubbed, err := client.ScrubPhoto(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		out  []byte
		ok   bool
	}{
		{"as taken", in, false},
		{"bare but not upright", bare.Bytes(), false},
		{"ScrubPhoto", scrubbed, true},
	} {
		if err := checkScrubbed(tc.out, in); (err == nil) != tc.ok {
			t.Errorf("checkScrubbed(%s) = %v, want ok %t", tc.name, err, tc.ok)
		}
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
