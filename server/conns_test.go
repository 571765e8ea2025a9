package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"fieldtip/protocol"
)

// A source connection that sends nothing is closed after
// FirstMessageTimeout with a typed timeout, not after ReadTimeout.
func TestFirstMessageTimeout(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) {
		c.FirstMessageTimeout = 200 * time.Millisecond
		c.ReadTimeout = time.Hour
	}})
	c := ts.dial(t)
	if e := c.refusal(); e.Code != protocol.CodeTimeout {
		t.Errorf("a silent connection ended with %v, want code %s", e, protocol.CodeTimeout)
	}
	// After an answer, with no upload open, the same short wait applies.
	c = ts.dial(t)
	c.text(&protocol.BundleRequest{Version: protocol.Version})
	expect[*protocol.BundleReply](c)
	if e := c.refusal(); e.Code != protocol.CodeTimeout {
		t.Errorf("a connection silent after its bundle ended with %v, want code %s", e, protocol.CodeTimeout)
	}
	ts.send(t, "others still get through")
	ts.intact(t)
}

// readWait follows the upload: ReadTimeout while frames are due, else
// FirstMessageTimeout plus the last answer's time on a 20 kbit/s link.
func TestReadWait(t *testing.T) {
	s := &Server{cfg: Config{FirstMessageTimeout: 10 * time.Second, ReadTimeout: time.Minute}}
	for _, tt := range []struct {
		name     string
		up       *upload
		lastSent int
		want     time.Duration
	}{
		{"no upload, small answer", nil, 0, 10 * time.Second},
		{"no upload, a 64 KiB bundle answer", nil, 65536, 10*time.Second + 65536*time.Second/2500},
		{"upload with frames due", &upload{length: 2 * fs16, next: fs16}, 30, time.Minute},
		{"upload opened, nothing received", &upload{length: fs16}, 2000, time.Minute},
		{"upload complete, commit due", &upload{length: fs16, next: fs16}, 30, 10*time.Second + 30*time.Second/2500},
	} {
		ss := &sourceSession{s: s, up: tt.up, lastSent: tt.lastSent}
		if got := ss.readWait(); got != tt.want {
			t.Errorf("readWait(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// At the cap, a session without an open upload is evicted before one
// with an open upload (which cost its source a proof of work), even when
// the one with an upload has waited longer; among uploads, the one
// waiting longest goes, and resumes on a new connection.
func TestEvictionPrefersNoUpload(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.MaxConns = 2 }})
	ct1 := sealFor(t, ts, twoFrameText, fs16, 2)
	ct2 := sealFor(t, ts, twoFrameText, fs16, 2)
	ts.seedNote(t)
	ts.waitConnsIdle(t)
	p := ts.startUpload(t, ct1, fs16, 1)
	ts.waitWaiting(t, 0, 1)
	idle := ts.dial(t)
	// Both slots held, both waiting; the upload has waited longest.
	ts.waitWaiting(t, 1, 1)
	newcomer := ts.dial(t)
	if e := idle.refusal(); !protocol.IsError(e, protocol.CodeBusy) {
		t.Errorf("the connection without an upload got %v, want code %s", e, protocol.CodeBusy)
	}
	newcomer.c.Close()
	ts.waitSlots(t, 1)

	// Two uploads hold the slots: the one waiting longest makes room.
	ts.waitWaiting(t, 0, 1)
	q := ts.startUpload(t, ct2, fs16, 1)
	ts.waitWaiting(t, 0, 2)
	third := ts.dial(t)
	if e := p.c.refusal(); !protocol.IsError(e, protocol.CodeBusy) {
		t.Errorf("the upload waiting longest got %v, want code %s", e, protocol.CodeBusy)
	}
	third.c.Close()
	q.finish(t, fs16)
	ts.waitConnsIdle(t)
	p.resumeOn(t, fs16)
	p.finish(t, fs16)
	if n := ts.s.sources.evictions.Load(); n != 2 {
		t.Errorf("%d evictions, want 2", n)
	}
	ts.intact(t)
}

// waitSlots waits until exactly n source slots are held.
func (ts *testServer) waitSlots(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(failAfter)
	for ts.s.sources.count() != n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d source slots held after %v, want %d", ts.s.sources.count(), failAfter, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitWaiting waits until noUpload sessions without an upload and upload
// with one wait for a message (and so may be evicted).
func (ts *testServer) waitWaiting(tb testing.TB, noUpload, upload int) {
	tb.Helper()
	deadline := time.Now().Add(failAfter)
	want := [numIdleClasses]int{idleNoUpload: noUpload, idleUpload: upload}
	for ts.s.sources.waiting() != want {
		if time.Now().After(deadline) {
			tb.Fatalf("sessions waiting by class: %v after %v, want %v", ts.s.sources.waiting(), failAfter, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// keepAliveConn is a plain HTTP/1.1 connection.
type keepAliveConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialKeepAlive(tb testing.TB, addr string) *keepAliveConn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, failAfter)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &keepAliveConn{c: c, br: bufio.NewReader(c)}
}

// get asks for path and returns the answer's status, or an error if the
// connection is closed.
func (k *keepAliveConn) get(path string) (int, error) {
	k.c.SetDeadline(time.Now().Add(failAfter))
	if _, err := fmt.Fprintf(k.c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closed reports whether the server closed the connection: a read returns
// EOF (or a reset) within failAfter.
func (k *keepAliveConn) closed() bool {
	k.c.SetReadDeadline(time.Now().Add(failAfter))
	_, err := k.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// At MaxHTTPConns, a new connection closes the one idle longest, never one
// whose request is being served; when every connection is being served,
// the newcomer is closed.
func TestHTTPConnsEvictIdle(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.MaxHTTPConns = 2 }})
	idle := dialKeepAlive(t, ts.addr)
	if st, err := idle.get(protocol.PathHealth); err != nil || st != http.StatusOK {
		t.Fatalf("GET /healthz = %d, %v", st, err)
	}
	// The server marks a connection idle after writing its answer, which
	// the client may read first: wait until it did.
	waitHTTPConns(t, ts, 1, 1)
	// busy's request is being served: its handler waits for a body (and
	// has taken busy out of the idle connections once one of two is idle).
	busy := dialKeepAlive(t, ts.addr)
	fmt.Fprintf(busy.c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", protocol.PathBundle)
	waitHTTPConns(t, ts, 2, 1)
	// A newcomer is served; the idle connection made room.
	newcomer := dialKeepAlive(t, ts.addr)
	if st, err := newcomer.get(protocol.PathHealth); err != nil || st != http.StatusOK {
		t.Fatalf("GET /healthz at the cap = %d, %v; want 200", st, err)
	}
	if !idle.closed() {
		t.Errorf("the idle connection is still open")
	}
	// The busy request still completes.
	busy.c.Write(make([]byte, 100))
	busy.c.SetReadDeadline(time.Now().Add(failAfter))
	if resp, err := http.ReadResponse(busy.br, nil); err != nil {
		t.Errorf("the request being served: %v, want its answer", err)
	} else if e := httpError(t, mustRead(t, resp.Body)); !protocol.IsError(e, protocol.CodeUnauthorized) {
		t.Errorf("the request being served: %v, want its refusal (not a bundle)", e)
	}
	if n := ts.s.httpConns[0].evictions.Load(); n != 1 {
		t.Errorf("%d connections evicted, want 1", n)
	}
}

// TestKeepAliveIdleClosed: on the sources' listener an idle keep-alive
// connection (one that asked for something, /healthz or, with the editors
// on --public-listen, the sources' path without an upgrade, and then stays
// silent) is closed by the server after sourceHTTPIdleTimeout, well
// within failAfter; so such connections cannot hold the HTTP cap for long
// (issue 11).
func TestKeepAliveIdleClosed(t *testing.T) {
	for _, public := range []bool{false, true} {
		t.Run(fmt.Sprintf("public_listen=%t", public), func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, serverOptions{config: func(c *Config) {
				if public {
					c.PublicListen = "127.0.0.1:0"
				}
			}})
			path, want := protocol.PathHealth, http.StatusOK
			if public {
				path, want = protocol.DefaultSourcePath, http.StatusBadRequest
			}
			k := dialKeepAlive(t, ts.addr)
			for range 2 {
				if st, err := k.get(path); err != nil || st != want {
					t.Fatalf("GET %s = %d, %v; want %d on a connection kept alive", path, st, err, want)
				}
			}
			start := time.Now()
			if !k.closed() {
				t.Fatalf("an idle keep-alive connection on the sources' listener is still open after %v", failAfter)
			}
			t.Logf("closed after %v idle (sourceHTTPIdleTimeout %v)", time.Since(start).Round(time.Millisecond), sourceHTTPIdleTimeout)
		})
	}
}

func waitHTTPConns(tb testing.TB, ts *testServer, n, idle int) {
	tb.Helper()
	h := ts.s.httpConns[0]
	counts := func() (held, idle int) {
		h.mu.Lock()
		for i := range h.idle {
			idle += h.idle[i].Len()
		}
		h.mu.Unlock()
		return h.count(), idle
	}
	deadline := time.Now().Add(failAfter)
	for held, i := counts(); held != n || i != idle; held, i = counts() {
		if time.Now().After(deadline) {
			tb.Fatalf("%d HTTP connections held, %d idle, after %v; want %d, %d idle", held, i, failAfter, n, idle)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustRead(tb testing.TB, r io.ReadCloser) []byte {
	tb.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fitCaps lowers both caps in proportion to fit the open-file limit.
func TestFitCaps(t *testing.T) {
	for _, tt := range []struct {
		limit                      uint64
		sources, http, listeners   int
		wantSources, wantHTTPConns int
	}{
		{1 << 20, 10000, 2048, 2, 10000, 2048},
		{10000 + 2*2048 + fdReserve, 10000, 2048, 2, 10000, 2048},
		{10000 + 2*2048 + fdReserve - 1, 10000, 2048, 2, 9999, 2047},
		{20000, 10000, 2048, 1, 10000, 2048},
		{1024, 10000, 2048, 1, 796, 163},
		{1024, 10000, 2048, 2, 681, 139},
		{10, 10000, 2048, 2, 1, 1},
	} {
		s, h := fitCaps(tt.limit, tt.sources, tt.http, tt.listeners)
		if s != tt.wantSources || h != tt.wantHTTPConns {
			t.Errorf("fitCaps(%d, %d, %d, %d) = %d, %d; want %d, %d", tt.limit, tt.sources, tt.http, tt.listeners, s, h, tt.wantSources, tt.wantHTTPConns)
		}
		if tt.limit > fdReserve && uint64(s+tt.listeners*h)+fdReserve > max(tt.limit, fdReserve+uint64(1+tt.listeners)) {
			t.Errorf("fitCaps(%d, …) = %d, %d: over the limit", tt.limit, s, h)
		}
	}
}
