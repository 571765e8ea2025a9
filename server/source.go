package server

import (
	"bytes"
	"container/list"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// Refusals of source connections.
var (
	errTooManyConns = protocol.Errorf(protocol.CodeBusy, "too many connections; try again later")
	errEvicted      = protocol.Errorf(protocol.CodeBusy, "the server is full and this connection was idle longest; try again later")
)

// slowestLink is the uplink and downlink the session deadlines allow for,
// in bytes per second: FIELD.md's GPRS, 20 kbit/s.
const slowestLink = 20_000 / 8

// serveSource runs one source's WebSocket session (protocol package doc).
func (s *Server) serveSource(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown() {
		writeRefusal(w, errStopping)
		return
	}
	// The connection limit is checked before the upgrade, so a refused
	// connection costs no WebSocket buffers; at the cap the session idle
	// longest makes room (conns.go).
	if !s.sources.admit() {
		writeRefusal(w, errTooManyConns)
		return
	}
	s.handlers.Add(1)
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.sources.release()
		s.handlers.Done()
		return // Upgrade has answered with an HTTP error.
	}
	// The session runs in a goroutine of its own, and the handler returns:
	// net/http then lets go of the request, its response buffers and the
	// connection's, which an idle WebSocket would otherwise hold.
	go s.runSession(conn)
}

// runSession runs the session of an upgraded connection.
func (s *Server) runSession(conn *websocket.Conn) {
	defer s.handlers.Done()
	defer conn.Close()
	// The backstop limit: gorilla refuses a frame header declaring more, at
	// once, but answers only with close code 1009. Messages up to it are
	// read through a reader capped at protocol.MaxClientMessage+1, so one
	// over the protocol's limit costs at most that and is refused with a
	// typed error (readMessage).
	conn.SetReadLimit(readBackstop)
	now := time.Now()
	sess := &sourceSession{s: s, conn: conn, end: now.Add(s.cfg.MaxSessionTime), wait: s.cfg.FirstMessageTimeout}
	s.sources.register(sess)
	defer s.sources.leave(sess)
	if s.shuttingDown() {
		conn.SetReadDeadline(now)
	}
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
	// wait is how long the next read may wait (readWait).
	wait time.Duration
	// lastSent is the size of the session's last answer.
	lastSent int

	// evicted is set once sourceConns closed the session to make room;
	// elem and class are its place in sourceConns' idle lists, under its
	// lock.
	evicted atomic.Bool
	elem    *list.Element
	class   int
	// carriedUpload is set once an upload, resume or commit arrived;
	// replies, once a reply fetch did: never both (replies.go).
	carriedUpload bool
	replies       *replySession
	// writeMu orders the session's writes and its upload pipe's.
	writeMu sync.Mutex
}

// startPings pings the source every PingInterval from a timer, not a
// goroutine of its own: an idle connection should cost little.
func (ss *sourceSession) startPings() (stop func()) {
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	// Pongs do not extend the read deadline (gorilla's default pong
	// handler does nothing): a client that answers pings but sends nothing
	// must still time out. Pings keep proxies and CDNs from cutting a slow
	// upload as idle.
	t = time.AfterFunc(ss.s.cfg.PingInterval, func() {
		// WriteControl may run concurrently with the session's writes
		// (gorilla/websocket's concurrency rules).
		if ss.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(ss.s.cfg.WriteTimeout)) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			t.Reset(ss.s.cfg.PingInterval)
		}
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}

func (ss *sourceSession) run() {
	defer ss.release()
	for {
		if ss.s.shuttingDown() {
			ss.refuse(errStopping)
			return
		}
		class := idleNoUpload
		if ss.up != nil {
			class = idleUpload
		}
		if !ss.s.sources.wait(ss, class) {
			ss.refuse(errEvicted)
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
			case ss.evicted.Load():
				ss.refuse(errEvicted)
			case ss.upFailed() != nil:
				// The upload's pipe failed and cut the read short.
				ss.refuse(ss.upFailed())
			case errors.Is(err, errTooLarge):
				ss.refuse(protocol.Errorf(protocol.CodeTooLarge, "message larger than %d bytes", protocol.MaxClientMessage))
			case isTimeout(err) && !time.Now().Before(ss.end):
				ss.refuse(protocol.Errorf(protocol.CodeTimeout, "the session's %s are up; reconnect", ss.s.cfg.MaxSessionTime))
			case isTimeout(err):
				ss.refuse(protocol.Errorf(protocol.CodeTimeout, "no message within %s; reconnect", ss.wait.Round(time.Millisecond)))
			}
			return
		}
		if !ss.s.sources.busy(ss) {
			// Evicted after the message arrived: it is not handled.
			ss.refuse(errEvicted)
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
		ss.wait = ss.readWait()
	}
}

// readWait is how long the session waits for its next message after
// handling one: ReadTimeout while its open upload has bytes to come (its
// frames are in flight); otherwise, with no upload open or the open one
// complete (its commit is due), FirstMessageTimeout plus the time the
// answer just sent takes on the slowest link, since a source sends its
// next message right behind reading it (FIELD.md: no waiting while the
// radio is on). An idle connection so costs its slot for seconds.
func (ss *sourceSession) readWait() time.Duration {
	if ss.up != nil && ss.up.next < ss.up.length {
		return ss.s.cfg.ReadTimeout
	}
	// The upload's pipe answers too (send).
	ss.writeMu.Lock()
	last := ss.lastSent
	ss.writeMu.Unlock()
	return ss.s.cfg.FirstMessageTimeout + time.Duration(last)*time.Second/slowestLink
}

// extendReadDeadline gives the next read ss.wait (and no more than the
// session has left), unless shutdown has begun or the session was evicted:
// beginShutdown closes s.closing, and an eviction sets ss.evicted, before
// setting the connection's read deadline to now, and a deadline set here
// after that would keep the source, and so Serve, waiting. Checking them
// after setting the deadline sees any whose deadline came first.
func (ss *sourceSession) extendReadDeadline() {
	deadline := time.Now().Add(ss.wait)
	if ss.end.Before(deadline) {
		deadline = ss.end
	}
	ss.conn.SetReadDeadline(deadline)
	if ss.s.shuttingDown() || ss.evicted.Load() || ss.upFailed() != nil {
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
	// A data frame is read into one buffer of its size, not grown to it
	// (io.ReadAll's doublings cost four times the frame in allocations).
	var b bytes.Buffer
	if mt == websocket.BinaryMessage {
		b.Grow(protocol.MaxClientMessage + 1 + bytes.MinRead)
	}
	if _, err := b.ReadFrom(io.LimitReader(r, protocol.MaxClientMessage+1)); err != nil {
		return 0, nil, err
	}
	if b.Len() > protocol.MaxClientMessage {
		return 0, nil, errTooLarge
	}
	return mt, b.Bytes(), nil
}

func (ss *sourceSession) handleControl(data []byte) *protocol.Error {
	msg, err := protocol.ParseClientMessage(data)
	if err != nil {
		return asProtocolError(err)
	}
	if perr := ss.guardConnection(msg); perr != nil {
		return perr
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
	case *protocol.RepliesRequest:
		return ss.fetchReplies(m)
	case *protocol.Delete:
		return ss.deleteReply(m)
	}
	return protocol.Errorf(protocol.CodeUnexpected, "unexpected message")
}

func unsupportedVersion(v int) *protocol.Error {
	return protocol.UnsupportedVersion(v)
}

func (ss *sourceSession) send(msg any) *protocol.Error {
	// The session and its upload's pipe both answer.
	ss.writeMu.Lock()
	defer ss.writeMu.Unlock()
	ss.conn.SetWriteDeadline(time.Now().Add(ss.s.cfg.WriteTimeout))
	b := protocol.Marshal(msg)
	ss.lastSent = len(b)
	if err := ss.conn.WriteMessage(websocket.TextMessage, b); err != nil {
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
	if e == errEvicted || e.Code == protocol.CodeTimeout {
		// An idle peer: waiting for its close frame would hold the
		// connection that the refusal frees.
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
