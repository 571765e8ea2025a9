// Package console is the editors' decryption console (`newsdesk console`,
// issue 10): a web page served on 127.0.0.1 over one newsdesk.Session, for
// an editor to work through a busy tip line in a browser on the same
// machine.
//
// It promises, to the editor:
//
//   - Only the browser the editor opened with the printed URL gets in. The
//     URL carries a one-time token, exchanged at the first load for an
//     HttpOnly, SameSite=Strict session cookie and a redirect to a URL
//     without it; a second use of the token is refused. Every request
//     without the cookie is refused, and so is every request whose Host is
//     not the console's own 127.0.0.1:port (DNS rebinding). Every POST
//     needs the per-session CSRF token as well as the cookie, and an Origin,
//     when the browser sends one, that is the console's. (auth.go;
//     TestConsoleRefuses.)
//   - Nothing leaves 127.0.0.1 from the page: every answer carries a
//     Content-Security-Policy allowing only the console's own origin and
//     its one inline script and style by a nonce drawn per answer,
//     frame-ancestors 'none', X-Content-Type-Options: nosniff,
//     Referrer-Policy: no-referrer, and Cache-Control: no-store. Text from
//     tips is rendered by html/template, escaped, with control and
//     bidirectional-format characters shown as visible marks.
//     (TestConsoleBrowser checks every request the browser made.)
//   - No plaintext is written to disk: tips are decrypted in memory, the
//     index and search live in memory, images are decoded and re-encoded in
//     memory (never the bytes a source sent), other attachments are sent
//     to the browser as downloads only. (TestConsoleLeavesNoPlaintext scans
//     the cache, temporary and working directories, the browser's profile
//     among them, after a session.)
//   - Every act writes the same events as the CLI, through the same
//     Session methods; a reply to a source too (Session.Reply, as
//     newsdesk reply).
//   - Tips from one source are grouped (issue 13: "2 tips from this
//     source", the source's thread on a tip's page) from the mailbox id
//     inside their encryption, which stays in the console's memory: a
//     page names a source by one of its tips, never by its mailbox id.
//     (TestConsoleSources.)
//
// The console renders pages on the server from an in-memory index that a
// background sync keeps current; a small embedded script adds keyboard
// shortcuts and polls a JSON endpoint so that new tips appear without a
// reload.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"fieldtip/newsdesk"
	"fieldtip/protocol"
)

// Config is what a console is started with.
type Config struct {
	// Session is the editor's session, opened and synced by the caller;
	// the console syncs it in the background and closes nothing.
	Session *newsdesk.Session
	// Server is the server's URL (the one the session was opened with),
	// for the public pages the console links and reads (claim pages,
	// cosignatures).
	Server string
	// Listen is the address to listen on (default 127.0.0.1:0, a random
	// port). It must be a loopback address.
	Listen string
	// SyncEvery is the interval between background syncs (default 30 s;
	// at least 100 ms).
	SyncEvery time.Duration
	// Out receives the one line with the URL to open.
	Out io.Writer
	// Logger logs what the console does (never tip text); default
	// discards.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Console is a running console.
type Console struct {
	cfg     Config
	s       *newsdesk.Session
	desk    *newsdesk.Desk
	log     *slog.Logger
	origin  string // the server's origin, for links and public reads
	host    string // the console's own host:port
	auth    *auth
	pages   *pages
	httpc   *http.Client
	started time.Time

	// mu serializes every use of the session: what its State and
	// Editorial return changes with the next Sync or write.
	mu sync.Mutex
	// index is the current snapshot pages render from; replaced whole.
	index atomic.Pointer[Index]
	// syncErr is the last background sync's error, shown in red on every
	// page until a sync succeeds.
	syncErr atomic.Pointer[string]
	// texts holds the decrypted text of every tip indexed, for search, by
	// tip id: in memory only.
	texts map[string]string

	// testOnlyAfterSync, if set, is called after each background sync.
	testOnlyAfterSync func(error)
}

// DefaultSyncEvery is the default interval between background syncs.
const DefaultSyncEvery = 30 * time.Second

// New checks cfg and builds the console's index from the session (every
// cached tip decrypted once, in memory, for search). It does not listen.
func New(ctx context.Context, cfg Config) (*Console, error) {
	if cfg.Session == nil {
		return nil, errors.New("console: no session")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.SyncEvery == 0 {
		cfg.SyncEvery = DefaultSyncEvery
	}
	if cfg.SyncEvery < 100*time.Millisecond {
		return nil, fmt.Errorf("console: sync every %s: at least 100ms", cfg.SyncEvery)
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{cfg: cfg, s: cfg.Session, desk: newsdesk.NewDesk(cfg.Session), log: cfg.Logger,
		texts: map[string]string{}, started: cfg.Now(),
		httpc: &http.Client{Timeout: 30 * time.Second}}
	if cfg.Server != "" {
		u, err := protocol.ParseServerURL(cfg.Server)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		c.origin = u.Origin
	}
	var err error
	if c.pages, err = newPages(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	err = c.reindex(ctx)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// loopback reports whether addr's host is a loopback IP address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listen binds the console's address (loopback only) and draws the
// one-time token; it returns the URL to open.
func (c *Console) Listen() (net.Listener, string, error) {
	if !loopback(c.cfg.Listen) {
		return nil, "", fmt.Errorf("console: listen on %q: only a loopback address (127.0.0.1) is allowed", c.cfg.Listen)
	}
	l, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("console: %w", err)
	}
	c.host = l.Addr().String()
	a, err := newAuth(c.host)
	if err != nil {
		l.Close()
		return nil, "", err
	}
	c.auth = a
	u := url.URL{Scheme: "http", Host: c.host, Path: pathLogin, RawQuery: url.Values{"token": {a.token}}.Encode()}
	return l, u.String(), nil
}

// Run listens, prints the URL to open on cfg.Out, serves until ctx ends
// (Ctrl-C), syncing in the background, and shuts down within 5 seconds.
func (c *Console) Run(ctx context.Context) error {
	l, u, err := c.Listen()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.cfg.Out, "open %s\n", u)
	return c.Serve(ctx, l)
}

// Serve serves on l (from Listen) until ctx ends.
func (c *Console) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           c.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// The console serves one browser on this machine: nothing to
		// log about its connections.
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	syncDone := make(chan struct{})
	go func() {
		defer close(syncDone)
		c.syncLoop(ctx)
	}()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		<-syncDone
		return fmt.Errorf("console: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-syncDone
	if err != nil {
		return fmt.Errorf("console: shut down: %w", err)
	}
	return nil
}

// syncLoop syncs every cfg.SyncEvery until ctx ends.
func (c *Console) syncLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := c.sync(ctx)
		if ctx.Err() != nil {
			return
		}
		if f := c.testOnlyAfterSync; f != nil {
			f(err)
		}
	}
}

// sync syncs the session and brings the index up to it. A failure is kept
// to be shown on every page (a fork, a receipts check) until a sync
// succeeds.
func (c *Console) sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.s.Sync(ctx)
	if err != nil {
		msg := "sync failed: " + err.Error()
		c.syncErr.Store(&msg)
		c.log.Warn("console sync", "err", err)
		// What was pulled before the failure is shown all the same.
		if ierr := c.reindex(ctx); ierr != nil {
			return errors.Join(err, ierr)
		}
		return err
	}
	c.syncErr.Store(nil)
	c.log.Info("console sync", "pulled", len(rep.Pulled), "log_size", rep.Tree.N)
	return c.reindex(ctx)
}

// syncError returns the last sync's failure, or "".
func (c *Console) syncError() string {
	if p := c.syncErr.Load(); p != nil {
		return *p
	}
	return ""
}

// itoa formats an int64.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
