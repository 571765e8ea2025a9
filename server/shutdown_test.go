package server

import (
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// gate parks a server goroutine in a test hook until the test releases it.
type gate struct {
	entered, released chan struct{}
	enterOnce         sync.Once
	releaseOnce       sync.Once
}

func newGate(tb testing.TB) *gate {
	g := &gate{entered: make(chan struct{}), released: make(chan struct{})}
	// Never leave a server goroutine parked past the test.
	tb.Cleanup(g.release)
	return g
}

// park is the hook: it reports entry and waits for release.
func (g *gate) park() {
	g.enterOnce.Do(func() { close(g.entered) })
	<-g.released
}

func (g *gate) release() { g.releaseOnce.Do(func() { close(g.released) }) }

func (g *gate) waitEntered(tb testing.TB) {
	tb.Helper()
	select {
	case <-g.entered:
	case <-time.After(failAfter):
		tb.Fatalf("hook not reached after %v", failAfter)
	}
}

// TestShutdownFinishesCommit begins shutdown while a commit is between its
// checks and its durable write: the commit finishes, its receipt reaches
// the source and the row is stored; a connection idle at shutdown gets
// shutting_down; Serve returns nil.
func TestShutdownFinishesCommit(t *testing.T) {
	g := newGate(t)
	ts := newTestServer(t, serverOptions{beforeServe: func(s *Server) { s.testOnlyBeforeStore = g.park }})

	idle := ts.dial(t)
	idle.text(&protocol.BundleRequest{Version: protocol.Version})
	expect[*protocol.BundleReply](idle)

	c := ts.dial(t)
	ct := sealFor(t, ts, "in flight at shutdown", fs16, 1)
	c.sendUpload(1, ct, fs16)
	c.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
	g.waitEntered(t)

	ts.cancel()
	select {
	case <-ts.s.closing: // shutdown has begun
	case <-time.After(failAfter):
		t.Fatal("shutdown did not begin")
	}
	g.release()

	r := ts.openReceipt(t, c.readUpload(int64(len(ct)), fs16))
	if e := c.refusal(); !protocol.IsError(e, protocol.CodeShuttingDown) {
		t.Errorf("after the receipt: %v, want code %s", e, protocol.CodeShuttingDown)
	}
	if e := idle.refusal(); !protocol.IsError(e, protocol.CodeShuttingDown) {
		t.Errorf("idle connection: %v, want code %s", e, protocol.CodeShuttingDown)
	}
	ts.stop()
	if _, err := ts.store.TipCiphertext(t.Context(), r.TipID); err != nil {
		t.Errorf("tip committed during shutdown: %v", err)
	}
	ts.intact(t)
	if _, _, err := testDialer.Dial(ts.wsURL(), nil); err == nil {
		t.Errorf("a source connected after Serve returned")
	}
}

// TestShutdownBetweenCheckAndRead forces the race between a session's
// shutdown check and its next read deadline: shutdown begins (and sets its
// deadline) after the check and before the session sets ReadTimeout. The
// session must still wake and answer shutting_down at once, not after
// ReadTimeout (an hour here, so a lost wake-up fails at failAfter).
func TestShutdownBetweenCheckAndRead(t *testing.T) {
	g := newGate(t)
	var reads atomic.Int32
	ts := newTestServer(t, serverOptions{
		config: func(c *Config) { c.ReadTimeout, c.FirstMessageTimeout = time.Hour, time.Hour },
		beforeServe: func(s *Server) {
			s.testOnlyBeforeRead = func() {
				// The first read takes the bundle request; park
				// before the second.
				if reads.Add(1) == 2 {
					g.park()
				}
			}
		},
	})
	c := ts.dial(t)
	c.text(&protocol.BundleRequest{Version: protocol.Version})
	expect[*protocol.BundleReply](c)
	g.waitEntered(t)
	ts.s.beginShutdown()
	g.release()
	if e := c.refusal(); !protocol.IsError(e, protocol.CodeShuttingDown) {
		t.Errorf("session parked across shutdown: %v, want code %s", e, protocol.CodeShuttingDown)
	}

	// Shutdown has begun but the listener still accepts: a new source is
	// refused before the upgrade.
	_, resp, err := testDialer.Dial(ts.wsURL(), nil)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Dial during shutdown = %v, want a 503", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if e := httpError(t, body); !protocol.IsError(e, protocol.CodeShuttingDown) {
		t.Errorf("Dial during shutdown: %v, want code %s", e, protocol.CodeShuttingDown)
	}
}

// TestShutdownMidUpload: a source in the middle of an upload when shutdown
// begins gets shutting_down, and nothing of the upload is stored as a tip;
// its acknowledged frame stays staged for a resume (TestRestartKeepsAcked
// resumes one).
func TestShutdownMidUpload(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	c := ts.dial(t)
	ct := sealFor(t, ts, twoFrameText, fs16, 2)
	up := ts.newUpload(t, 1, int64(len(ct)), fs16)
	c.text(up)
	c.frame(ct, 0, fs16)
	c.readOffset(0)
	c.readAck(fs16)
	ts.cancel()
	if e := c.refusal(); !protocol.IsError(e, protocol.CodeShuttingDown) {
		t.Errorf("mid-upload at shutdown: %v, want code %s", e, protocol.CodeShuttingDown)
	}
	ts.stop()
	if n, err := ts.store.CountTips(t.Context()); err != nil || n != 0 {
		t.Errorf("CountTips() = %d, %v; want 0", n, err)
	}
	if n, staged := ts.storedCounts(t); n != 1 || staged != fs16 {
		t.Errorf("after shutdown the store holds %d unfinished uploads of %d bytes, want 1 of %d", n, staged, fs16)
	}
	if u, err := ts.store.GetUpload(t.Context(), up.UploadID); err != nil || u.Received != fs16 {
		t.Errorf("GetUpload() = %+v, %v; want the upload with %d bytes received", u, err, fs16)
	}
}
