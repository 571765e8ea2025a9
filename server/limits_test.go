package server

import (
	"crypto/sha256"
	"net/http"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// A source that answers pings but sends nothing times out: pongs do not
// extend the read deadline, so an open upload cannot hold staging space
// for ever, and its connection lets go of it for a resume.
func TestPongsDoNotKeepASessionOpen(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) {
		c.ReadTimeout = 500 * time.Millisecond
		c.PingInterval = 20 * time.Millisecond
	}})
	w := ts.dial(t)
	pongs := make(chan struct{}, 100)
	w.c.SetPingHandler(func(data string) error {
		select {
		case pongs <- struct{}{}:
		default:
		}
		return w.c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	ct := sealFor(t, ts, "resumed after a timeout", protocol.FrameSize, 1)
	up := ts.newUpload(t, ts.s.Bundle().Version, int64(len(ct)), protocol.FrameSize)
	w.text(up)
	w.readOffset(0)
	// The ping handler runs inside reads, so keep reading: the session
	// must end with a typed timeout after at least one ping was answered.
	if e := w.refusal(); e.Code != protocol.CodeTimeout {
		t.Fatalf("idle session ended with %v, want code %s", e, protocol.CodeTimeout)
	}
	if len(pongs) == 0 {
		t.Errorf("no ping arrived before the timeout; the test proves nothing")
	}
	if n := ts.s.staging.Load(); n != 0 {
		t.Errorf("staging holds %d bytes after the session ended, want 0", n)
	}
	ts.s.activeMu.Lock()
	held := len(ts.s.active)
	ts.s.activeMu.Unlock()
	if held != 0 {
		t.Errorf("%d uploads held open after their session timed out, want 0", held)
	}
	p := &partial{c: w, up: up, ct: ct, frameSize: protocol.FrameSize}
	p.resumeOn(t, 0)
	p.finish(t, 0)
	ts.send(t, "others still get through")
	ts.intact(t)
}

// A session, however busy, ends at MaxSessionTime.
func TestSessionTimeIsCapped(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) {
		c.MaxSessionTime = 200 * time.Millisecond
		c.MaxUploadsPerConn = 1 << 20
	}})
	w := ts.dial(t)
	ct := seal(t, "busy", ts.recipients(t), protocol.FrameSize)
	write := func(mt int, b []byte) bool { return w.c.WriteMessage(mt, b) == nil }
	for {
		// Keep the session busy with whole uploads, without ever idling
		// for the read timeout; writes fail once the server closed.
		if !write(websocket.TextMessage, protocol.Marshal(ts.newUpload(t, ts.s.Bundle().Version, int64(len(ct)), protocol.FrameSize))) ||
			!write(websocket.BinaryMessage, protocol.AppendDataFrame(nil, 0, ct)) ||
			!write(websocket.TextMessage, protocol.Marshal(&protocol.Commit{SHA256: sha256.Sum256(ct)})) {
			break
		}
		done := false
		for !done {
			m, err := w.next()
			if err != nil {
				t.Fatalf("session ended with %v before a timeout refusal", err)
			}
			switch m := m.(type) {
			case *protocol.ReceiptReply:
				done = true
			case *protocol.Error:
				if m.Code != protocol.CodeTimeout {
					t.Fatalf("busy session refused with %v, want %s", m, protocol.CodeTimeout)
				}
				return
			}
		}
	}
	// A write failed: the refusal must be waiting to be read.
	for {
		m, err := w.next()
		if err != nil {
			t.Fatalf("session ended with %v before a timeout refusal", err)
		}
		if e, ok := m.(*protocol.Error); ok {
			if e.Code != protocol.CodeTimeout {
				t.Fatalf("busy session refused with %v, want %s", e, protocol.CodeTimeout)
			}
			return
		}
	}
}

// The bundle is sent once per connection.
func TestBundleOncePerConnection(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	w := ts.dial(t)
	w.text(&protocol.BundleRequest{Version: protocol.Version})
	expect[*protocol.BundleReply](w)
	w.text(&protocol.BundleRequest{Version: protocol.Version})
	if e := w.refusal(); e.Code != protocol.CodeUnexpected {
		t.Errorf("second bundle request: %v, want code %s", e, protocol.CodeUnexpected)
	}
}

// A bundle published while an upload runs wins at the commit.
func TestBundleReplacedDuringUpload(t *testing.T) {
	ts := newTestServer(t, serverOptions{editors: 2})
	w := ts.dial(t)
	ct := seal(t, "sealed to version 1", ts.recipients(t), protocol.FrameSize)
	w.sendUpload(1, ct, protocol.FrameSize)
	w.readOffset(0)
	w.readAck(protocol.FrameSize)
	v2 := ts.makeBundle(t, 2, func(b *crypto.Bundle) {
		b.Revoked = []string{b.Editors[1].Label}
		b.Editors = b.Editors[:1]
	})
	if e := publish(t, ts, v2.Signed()); e != nil {
		t.Fatalf("publish v2: %v", e)
	}
	w.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
	if e := w.refusal(); e.Code != protocol.CodeStaleBundle {
		t.Fatalf("commit after the bundle changed: %v, want code %s", e, protocol.CodeStaleBundle)
	}
	ts.intact(t)
}

// Challenges cost the server no memory, and a nonce it did not issue, or
// issued for another expiry, is refused.
func TestChallengesAreStateless(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	for range 2000 {
		if status, body := httpDo(t, http.MethodPost, ts.origin()+protocol.PathChallenge, "", nil); status != http.StatusOK {
			t.Fatalf("challenge: %d %s", status, body)
		}
	}
	ts.s.sessions.mu.Lock()
	n := len(ts.s.sessions.used)
	ts.s.sessions.mu.Unlock()
	if n != 0 {
		t.Errorf("%d nonces held after 2000 unanswered challenges, want 0", n)
	}

	signer, err := ts.editors[0].Signer()
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(30 * time.Second).UTC().Truncate(time.Second)
	issued := ts.s.sessions.newNonce(exp)
	var forged [crypto.NonceSize]byte
	copy(forged[:], issued[:])
	forged[crypto.NonceSize-1] ^= 1
	for _, tc := range []struct {
		name    string
		nonce   [crypto.NonceSize]byte
		expires time.Time
	}{
		{"forged_mac", forged, exp},
		{"other_expiry", issued, exp.Add(time.Second)},
	} {
		msg, err := crypto.SignLogin(&crypto.Login{Origin: ts.s.Origin(), Nonce: tc.nonce, Expires: tc.expires}, signer)
		if err != nil {
			t.Fatal(err)
		}
		status, body := httpDo(t, http.MethodPost, ts.origin()+protocol.PathLogin, "", msg)
		if e := httpError(t, body); status != http.StatusForbidden || !protocol.IsError(e, protocol.CodeUnauthorized) {
			t.Errorf("%s: login = %d %v, want 403 %s", tc.name, status, e, protocol.CodeUnauthorized)
		}
	}
	// The issued nonce itself still works once.
	msg, err := crypto.SignLogin(&crypto.Login{Origin: ts.s.Origin(), Nonce: issued, Expires: exp}, signer)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := httpDo(t, http.MethodPost, ts.origin()+protocol.PathLogin, "", msg); status != http.StatusOK {
		t.Errorf("login with the issued nonce: %d %s", status, body)
	}
}
