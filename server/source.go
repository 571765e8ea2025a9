package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

var errTooManyConns = protocol.Errorf(protocol.CodeBusy, "too many connections; try again later")

// serveSource runs one source's WebSocket session (protocol package doc).
func (s *Server) serveSource(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown() {
		writeRefusal(w, errStopping)
		return
	}
	// The connection limit is checked before the upgrade, so a refused
	// connection costs no WebSocket buffers.
	select {
	case s.connSem <- struct{}{}:
		defer func() { <-s.connSem }()
	default:
		writeRefusal(w, errTooManyConns)
		return
	}
	s.handlers.Add(1)
	defer s.handlers.Done()
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered with an HTTP error.
	}
	defer conn.Close()
	// The backstop limit: gorilla refuses a frame header declaring more, at
	// once, but answers only with close code 1009. Messages up to it are
	// read through a reader capped at protocol.MaxClientMessage+1, so one
	// over the protocol's limit costs at most that and is refused with a
	// typed error (readMessage).
	conn.SetReadLimit(readBackstop)
	s.connsMu.Lock()
	s.conns[conn] = struct{}{}
	s.connsMu.Unlock()
	defer func() {
		s.connsMu.Lock()
		delete(s.conns, conn)
		s.connsMu.Unlock()
	}()
	if s.shuttingDown() {
		conn.SetReadDeadline(time.Now())
	}
	sess := &sourceSession{s: s, conn: conn, end: time.Now().Add(s.cfg.MaxSessionTime)}
	stopPing := sess.startPings()
	defer stopPing()
	sess.run()
}

type sourceSession struct {
	s    *Server
	conn *websocket.Conn
	// end is when the session's time is up (Config.MaxSessionTime): an
	// open upload holds staging space, so no connection may hold it for
	// ever, however patiently it answers pings.
	end           time.Time
	uploads       int
	bundleAnswers int
	up            *upload
}

func (ss *sourceSession) startPings() (stop func()) {
	done := make(chan struct{})
	// Pongs do not extend the read deadline (gorilla's default pong
	// handler does nothing): a client that answers pings but sends nothing
	// must still time out. Pings keep proxies and CDNs from cutting a slow
	// upload as idle.
	go func() {
		t := time.NewTicker(ss.s.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				// WriteControl may run concurrently with the session's
				// writes (gorilla/websocket's concurrency rules).
				if ss.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(ss.s.cfg.WriteTimeout)) != nil {
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

func (ss *sourceSession) run() {
	defer ss.release()
	for {
		if ss.s.shuttingDown() {
			ss.refuse(errStopping)
			return
		}
		if ss.s.testOnlyBeforeRead != nil {
			ss.s.testOnlyBeforeRead()
		}
		ss.extendReadDeadline()
		mt, data, err := ss.readMessage()
		if err != nil {
			switch {
			case ss.s.shuttingDown():
				ss.refuse(errStopping)
			case errors.Is(err, errTooLarge):
				ss.refuse(protocol.Errorf(protocol.CodeTooLarge, "message larger than %d bytes", protocol.MaxClientMessage))
			case isTimeout(err):
				ss.refuse(protocol.Errorf(protocol.CodeTimeout, "no message within %s, or the session's %s are up; reconnect", ss.s.cfg.ReadTimeout, ss.s.cfg.MaxSessionTime))
			}
			return
		}
		var perr *protocol.Error
		switch mt {
		case websocket.TextMessage:
			perr = ss.handleControl(data)
		case websocket.BinaryMessage:
			perr = ss.handleFrame(data)
		}
		if perr != nil {
			ss.refuse(perr)
			return
		}
	}
}

// extendReadDeadline gives the next read ReadTimeout (and no more than the
// session has left), unless shutdown has
// begun: beginShutdown closes s.closing and then sets every connection's
// read deadline to now, and a deadline set here after that would keep an
// idle source, and so Serve, waiting for ReadTimeout. Checking closing after
// setting the deadline sees any beginShutdown whose deadline came first.
func (ss *sourceSession) extendReadDeadline() {
	deadline := time.Now().Add(ss.s.cfg.ReadTimeout)
	if ss.end.Before(deadline) {
		deadline = ss.end
	}
	ss.conn.SetReadDeadline(deadline)
	if ss.s.shuttingDown() {
		ss.conn.SetReadDeadline(time.Now())
	}
}

// readBackstop is gorilla's read limit on source connections; see
// serveSource.
const readBackstop = 4 * protocol.MaxClientMessage

var errTooLarge = errors.New("message over the protocol limit")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readMessage reads one message of at most protocol.MaxClientMessage bytes.
func (ss *sourceSession) readMessage() (int, []byte, error) {
	mt, r, err := ss.conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, protocol.MaxClientMessage+1))
	if err != nil {
		return 0, nil, err
	}
	if len(data) > protocol.MaxClientMessage {
		return 0, nil, errTooLarge
	}
	return mt, data, nil
}

func (ss *sourceSession) handleControl(data []byte) *protocol.Error {
	msg, err := protocol.ParseClientMessage(data)
	if err != nil {
		return asProtocolError(err)
	}
	switch m := msg.(type) {
	case *protocol.BundleRequest:
		if m.Version != protocol.Version {
			return unsupportedVersion(m.Version)
		}
		// One answer per connection: a bundle is up to 64 KiB, and a
		// client needs it once; more would let a small request loop cost
		// the server large writes.
		if ss.bundleAnswers++; ss.bundleAnswers > 1 {
			return protocol.Errorf(protocol.CodeUnexpected, "the bundle was already sent on this connection")
		}
		seed, perr := ss.seed()
		if perr != nil {
			return perr
		}
		return ss.send(&protocol.BundleReply{Bundle: ss.s.bundle.Load().Signed(), Seed: seed.signed})
	case *protocol.Upload:
		return ss.openUpload(m)
	case *protocol.Resume:
		return ss.resume(m)
	case *protocol.Commit:
		return ss.commit(m)
	}
	return protocol.Errorf(protocol.CodeUnexpected, "unexpected message")
}

func unsupportedVersion(v int) *protocol.Error {
	return protocol.Errorf(protocol.CodeUnsupportedVersion, "protocol version %d is not supported; this server speaks %d", v, protocol.Version)
}

func (ss *sourceSession) send(msg any) *protocol.Error {
	ss.conn.SetWriteDeadline(time.Now().Add(ss.s.cfg.WriteTimeout))
	if err := ss.conn.WriteMessage(websocket.TextMessage, protocol.Marshal(msg)); err != nil {
		// The link is gone; nothing more can be said on it.
		return errLinkGone
	}
	return nil
}

// errLinkGone ends a session whose link failed; refuse sends nothing for it.
var errLinkGone = &protocol.Error{Code: protocol.CodeInternal, Message: "link gone"}

// refuse sends a typed error, then closes the WebSocket cleanly: a close
// frame with a matching close code, and a short wait for the peer's.
func (ss *sourceSession) refuse(e *protocol.Error) {
	// Let go of the open upload before the peer can read the refusal, so
	// that its resume on a new connection need not wait for this one (its
	// bytes stay on disk).
	ss.release()
	if e == errLinkGone {
		return
	}
	if ss.send(clipMessage(e)) != nil {
		return
	}
	code := refusal(e).closeCode
	deadline := time.Now().Add(ss.s.cfg.WriteTimeout)
	if ss.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, string(e.Code)), deadline) != nil {
		return
	}
	// Wait briefly for the peer's close frame, discarding anything else.
	ss.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := ss.conn.NextReader(); err != nil {
			return
		}
	}
}
