// Package browser runs a real headless Chromium for tests of fieldtip's
// web pages, and records every network request it makes, so that a test
// can prove a page loads nothing from outside the server under test. It is
// imported by tests only; no shipped program links it.
//
// A test starts one browser per test with Start, naming the hosts the
// page may load from (the test server's host:port); drives it with
// Navigate, Text, Eval or any chromedp action through Run and Value; and
// reads Requests and Console. When the test ends the browser is stopped
// and the test fails if any request went to another host (unless the
// options say the test checks Outside itself).
//
// The browser is Debian's chromium-headless-shell (or chromium), found on
// the PATH or named by $FIELDTIP_BROWSER, started with --headless
// --no-sandbox --disable-gpu --disable-background-networking
// --disable-component-update --disable-sync --no-first-run and a fresh
// --user-data-dir in the test's temporary directory. Where no browser is
// installed the test is skipped, except when $CI is "true": CI installs
// one (.ci/run), so there a missing browser fails the test instead of
// letting the browser tests pass unseen.
package browser

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Binaries are the browser programs Find looks for on the PATH, in order.
var Binaries = []string{"chromium-headless-shell", "chromium", "chromium-browser", "headless_shell", "google-chrome"}

// EnvBrowser names a browser binary to use instead of looking on the PATH.
const EnvBrowser = "FIELDTIP_BROWSER"

// ErrNoBrowser: no browser binary is installed.
var ErrNoBrowser = errors.New("browser: no chromium-headless-shell or chromium on the PATH (apt-get install chromium-headless-shell)")

// Find returns the path of the browser binary: $FIELDTIP_BROWSER if set,
// else the first of Binaries on the PATH, else ErrNoBrowser.
func Find() (string, error) {
	if p := os.Getenv(EnvBrowser); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("browser: $%s: %w", EnvBrowser, err)
		}
		return p, nil
	}
	for _, b := range Binaries {
		if p, err := exec.LookPath(b); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBrowser
}

// Options shape a browser.
type Options struct {
	// Hosts are the hosts (host:port, as in a URL) the pages may load
	// from; data:, about: and blob: URLs never leave the browser. At least
	// one.
	Hosts []string
	// Timeout bounds each Run, Navigate, Text, Eval and Value (default 60
	// s: a failure bound on a loaded machine, never a synchronization).
	Timeout time.Duration
	// CheckOutside, if true, leaves requests to other hosts to the test
	// (Outside) instead of failing it when it ends: for tests of the kit.
	CheckOutside bool
}

// Request is one request the browser sent.
type Request struct {
	// URL is the request's URL; Method its method; Type the kind of
	// resource (Document, Stylesheet, Script, Image, Font, Fetch, …).
	URL, Method, Type string
}

// Browser is a running headless Chromium with one tab.
type Browser struct {
	tb      testing.TB
	opts    Options
	allowed map[string]bool
	ctx     context.Context
	cancel  context.CancelFunc

	mu       sync.Mutex
	requests []Request
	console  []string
}

// Start starts a browser for tb, stopped when tb ends. It skips tb when
// no browser is installed, or fails it if $CI is "true".
func Start(tb testing.TB, opts Options) *Browser {
	tb.Helper()
	path, err := Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%v: CI must run the browser tests", err)
		}
		tb.Skip(err)
	}
	if len(opts.Hosts) == 0 {
		tb.Fatal("browser.Start: no host the pages may load from")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	b := &Browser{tb: tb, opts: opts, allowed: map[string]bool{}}
	for _, h := range opts.Hosts {
		b.allowed[h] = true
	}
	dataDir := filepath.Join(tb.TempDir(), "chromium")
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(dataDir),
	)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	b.ctx = ctx
	b.cancel = func() { cancel(); cancelAlloc() }
	tb.Cleanup(b.stop)
	// Start the browser now, so that a browser that cannot start fails
	// here, not in the first action. The first run's context is the tab's
	// lifetime, so it gets b.ctx itself, bounded from outside.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	timer := time.NewTimer(opts.Timeout)
	defer timer.Stop()
	select {
	case err := <-started:
		if err != nil {
			tb.Fatalf("browser: start %s: %v", path, err)
		}
	case <-timer.C:
		b.cancel()
		tb.Fatalf("browser: %s did not start within %s", path, opts.Timeout)
	}
	return b
}

// listen records requests and console messages. It runs on the browser's
// reading goroutine: it must return fast and never run a command.
func (b *Browser) listen(ev any) {
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		if e.Request == nil {
			return
		}
		b.mu.Lock()
		b.requests = append(b.requests, Request{URL: e.Request.URL, Method: e.Request.Method, Type: string(e.Type)})
		b.mu.Unlock()
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range e.Args {
			args = append(args, fmt.Sprint(a.Value))
		}
		b.mu.Lock()
		b.console = append(b.console, fmt.Sprintf("%s: %v", e.Type, args))
		b.mu.Unlock()
	case *runtime.EventExceptionThrown:
		b.mu.Lock()
		if e.ExceptionDetails != nil {
			b.console = append(b.console, "exception: "+e.ExceptionDetails.Text)
		}
		b.mu.Unlock()
	}
}

// stop stops the browser and fails the test on requests that left the
// allowed hosts.
func (b *Browser) stop() {
	b.cancel()
	if b.opts.CheckOutside {
		return
	}
	for _, r := range b.Outside() {
		b.tb.Errorf("browser: a request left the test server: %s %s (%s)", r.Method, r.URL, r.Type)
	}
}

// Context returns the tab's context, for chromedp calls the kit does not
// wrap; bound it with a timeout.
func (b *Browser) Context() context.Context { return b.ctx }

// Run runs actions in the tab, within the timeout.
func (b *Browser) Run(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.Timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// Value runs one action that returns a value, within the browser's
// timeout.
func Value[T any](b *Browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.Timeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// Navigate loads url in the tab and waits for it to load.
func (b *Browser) Navigate(url string) error { return b.Run(chromedp.Navigate(url)) }

// Text returns the visible text of the first element the CSS selector
// finds, waiting for it to be there.
func (b *Browser) Text(selector string) (string, error) {
	return Value(b, chromedp.Text(chromedp.CSS(selector)))
}

// Eval evaluates a JavaScript expression in the page (through the
// DevTools protocol: a page's Content-Security-Policy does not apply to
// it) and returns its value.
func Eval[T any](b *Browser, expression string) (T, error) {
	return Value(b, chromedp.Evaluate[T](expression))
}

// Screenshot writes a PNG of the whole page to path: for a person to look
// at while writing a test.
func (b *Browser) Screenshot(path string) error {
	png, err := Value(b, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// Requests returns every request the browser sent, in order.
func (b *Browser) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// Console returns the page's console messages and uncaught exceptions.
func (b *Browser) Console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.console)
}

// Outside returns the requests to anywhere but the allowed hosts (data:,
// about: and blob: URLs stay in the browser).
func (b *Browser) Outside() []Request {
	var out []Request
	for _, r := range b.Requests() {
		if !b.inside(r.URL) {
			out = append(out, r)
		}
	}
	return out
}

func (b *Browser) inside(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "data", "about", "blob":
		return true
	case "http", "https", "ws", "wss":
		return b.allowed[u.Host]
	}
	return false
}
