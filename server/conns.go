package server

// Connections cost what they hold (issue 11). A flood of connections must
// not lock sources or editors out, so no connection limit refuses the
// newcomer while an idle connection holds a slot: at the cap, the
// connection idle longest is closed to make room.
//
//   - Source WebSockets (sourceConns, at most Config.MaxConns) are counted
//     apart from plain HTTP connections: a flood of them takes no slot an
//     editor or /healthz needs. At the cap the session waiting longest for
//     a message is closed, one without an open upload first (an open upload
//     cost its source a proof of work; an idle connection cost nothing), a
//     session handling a message never. A session has FirstMessageTimeout
//     for its first message and, between messages, a deadline that follows
//     its upload (sourceSession.readDeadline).
//   - Plain HTTP connections (httpConns, at most Config.MaxHTTPConns per
//     listener) are closed, at the cap, longest idle first: first those
//     that never finished a request or last asked for the sources' path,
//     then those that last served an editor or /healthz; never one whose
//     request is being handled. On the listener of the sources' endpoint an
//     idle keep-alive connection is closed after sourceHTTPIdleTimeout.
//
// The caps are sized so that a full house fits in memory (README,
// "Operating"; SECURITY.md, "Flooding") and are lowered at start to what
// the open-file limit allows (fitFileLimit). TestConnectionFlood
// (internal/e2e) holds 10,000 idle WebSockets and 2,000 idle keep-alive
// connections while a source sends and an editor pulls.

import (
	"container/list"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// sourceHTTPIdleTimeout is how long an idle keep-alive connection is kept
// on the listener of the sources' endpoint: a source's client never
// reuses one (it upgrades its first request), so an idle one is a flooder
// or a browser, and either can reconnect.
const sourceHTTPIdleTimeout = 5 * time.Second

// Eviction classes of source sessions, evicted in this order.
const (
	// idleNoUpload: no upload open (before the first message, after a
	// bundle answer or a receipt).
	idleNoUpload = iota
	// idleUpload: an upload open, which cost its source a proof of work.
	idleUpload
	numIdleClasses
)

// sourceConns holds the slots of source sessions (Config.MaxConns).
type sourceConns struct {
	max int

	mu sync.Mutex
	// held is the number of slots taken: sessions, and admissions still
	// upgrading.
	held int
	// idle lists the sessions waiting for a message, by class, those
	// waiting longest first. A session handling a message is in none.
	idle [numIdleClasses]list.List
	// all is every registered session, for shutdown.
	all map[*sourceSession]struct{}
	// evictions counts sessions closed to make room.
	evictions atomic.Int64
}

func newSourceConns(max int) *sourceConns {
	return &sourceConns{max: max, all: map[*sourceSession]struct{}{}}
}

// admit takes a slot for a new session; at the cap it evicts the session
// waiting longest (without an upload first) and hands its slot over. It
// reports false when every slot is held by a session handling a message
// or still upgrading.
func (sc *sourceConns) admit() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.held < sc.max {
		sc.held++
		return true
	}
	for class := range sc.idle {
		if e := sc.idle[class].Front(); e != nil {
			victim := e.Value.(*sourceSession)
			sc.idle[class].Remove(e)
			victim.elem = nil
			delete(sc.all, victim)
			victim.evicted.Store(true)
			// The victim's read returns at once; it refuses with busy and
			// closes (sourceSession.run). Its slot is the newcomer's.
			victim.conn.SetReadDeadline(time.Now())
			sc.evictions.Add(1)
			return true
		}
	}
	return false
}

// release gives back a slot taken by admit for a session that never
// registered (its upgrade failed).
func (sc *sourceConns) release() {
	sc.mu.Lock()
	sc.held--
	sc.mu.Unlock()
}

// register adds an admitted session, waiting for its first message.
func (sc *sourceConns) register(ss *sourceSession) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.all[ss] = struct{}{}
	ss.elem = sc.idle[idleNoUpload].PushBack(ss)
}

// wait puts ss at the back of its class's idle list, before a read. It
// reports false if ss was evicted.
func (sc *sourceConns) wait(ss *sourceSession, class int) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if ss.evicted.Load() {
		return false
	}
	if ss.elem != nil {
		sc.idle[ss.class].Remove(ss.elem)
	}
	ss.class = class
	ss.elem = sc.idle[class].PushBack(ss)
	return true
}

// busy takes ss out of the idle lists while it handles a message, so it
// is not evicted halfway. It reports false if ss was evicted.
func (sc *sourceConns) busy(ss *sourceSession) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if ss.evicted.Load() {
		return false
	}
	if ss.elem != nil {
		sc.idle[ss.class].Remove(ss.elem)
		ss.elem = nil
	}
	return true
}

// leave gives back the slot of a session that ends; an evicted session's
// slot was handed over already.
func (sc *sourceConns) leave(ss *sourceSession) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if ss.evicted.Load() {
		return
	}
	if ss.elem != nil {
		sc.idle[ss.class].Remove(ss.elem)
		ss.elem = nil
	}
	delete(sc.all, ss)
	sc.held--
}

// count returns the slots held.
func (sc *sourceConns) count() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.held
}

// waiting returns the number of sessions waiting for a message, by class.
func (sc *sourceConns) waiting() [numIdleClasses]int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	var n [numIdleClasses]int
	for class := range sc.idle {
		n[class] = sc.idle[class].Len()
	}
	return n
}

// each calls f with every registered session, under the lock.
func (sc *sourceConns) each(f func(*sourceSession)) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for ss := range sc.all {
		f(ss)
	}
}

// Eviction ranks of HTTP connections, evicted in this order.
const (
	// rankSource: no request finished yet, or the last one asked for the
	// sources' path.
	rankSource = iota
	// rankPublic: the last request was for an editor or the public.
	rankPublic
	numRanks
)

// httpConns holds the plain HTTP connections of one listener: its
// Accept evicts, at the cap, the connection idle longest (httpConns
// package comment above). http.Server reports each connection's state
// through connState, and handlers run inside track.
type httpConns struct {
	net.Listener
	max        int
	sourcePath string

	mu   sync.Mutex
	held int
	// idle lists the connections that may be evicted, by rank, those idle
	// longest first: every connection but those whose request a handler
	// is serving, and those hijacked or closed.
	idle      [numRanks]list.List
	evictions atomic.Int64
}

// trackedConn is a connection httpConns accepted.
type trackedConn struct {
	net.Conn
	rank int
	elem *list.Element // in idle[rank], or nil
	gone bool          // hijacked or closed: no longer held
}

func newHTTPConns(l net.Listener, max int, sourcePath string) *httpConns {
	return &httpConns{Listener: l, max: max, sourcePath: sourcePath}
}

// Accept accepts the next connection, evicting the one idle longest if
// the listener is at its cap; a connection that finds every slot serving
// a request is closed at once.
func (h *httpConns) Accept() (net.Conn, error) {
	for {
		c, err := h.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, rank: rankSource}
		if h.admit(tc) {
			return tc, nil
		}
		c.Close()
	}
}

func (h *httpConns) admit(tc *trackedConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held >= h.max {
		var victim *trackedConn
		for rank := range h.idle {
			if e := h.idle[rank].Front(); e != nil {
				victim = e.Value.(*trackedConn)
				break
			}
		}
		if victim == nil {
			return false
		}
		h.dropLocked(victim)
		victim.Conn.Close()
		h.evictions.Add(1)
	}
	h.held++
	tc.elem = h.idle[tc.rank].PushBack(tc)
	return true
}

// dropLocked forgets tc: it no longer holds a slot.
func (h *httpConns) dropLocked(tc *trackedConn) {
	if tc.gone {
		return
	}
	if tc.elem != nil {
		h.idle[tc.rank].Remove(tc.elem)
		tc.elem = nil
	}
	tc.gone = true
	h.held--
}

// tracked returns the connection httpConns accepted under c.
func tracked(c net.Conn) *trackedConn {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	tc, _ := c.(*trackedConn)
	return tc
}

// connState is the http.Server's ConnState hook.
func (h *httpConns) connState(c net.Conn, state http.ConnState) {
	tc := tracked(c)
	if tc == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch state {
	case http.StateIdle:
		// Idle again after a request: to the back of its rank.
		if !tc.gone {
			if tc.elem != nil {
				h.idle[tc.rank].Remove(tc.elem)
			}
			tc.elem = h.idle[tc.rank].PushBack(tc)
		}
	case http.StateHijacked, http.StateClosed:
		// A hijacked connection is a source's WebSocket: sourceConns
		// holds it from now on.
		h.dropLocked(tc)
	}
}

type connKey struct{}

// connContext is the http.Server's ConnContext hook: it hands track the
// connection of each request.
func (h *httpConns) connContext(ctx context.Context, c net.Conn) context.Context {
	if tc := tracked(c); tc != nil {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

// track runs next with the request's connection out of the idle lists, so
// that a request being served is never evicted, and ranks the connection
// by what it asked for.
func (h *httpConns) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tc, ok := r.Context().Value(connKey{}).(*trackedConn); ok {
			h.mu.Lock()
			if !tc.gone {
				if tc.elem != nil {
					h.idle[tc.rank].Remove(tc.elem)
					tc.elem = nil
				}
				tc.rank = rankPublic
				if r.URL.Path == h.sourcePath {
					tc.rank = rankSource
				}
			}
			h.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// count returns the connections held.
func (h *httpConns) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

// fdReserve is the open files the caps leave for everything else: the
// database, its WAL and shm, the pinned checkpoint being replaced, a
// backup, the listeners, standard streams.
const fdReserve = 64

// fitCaps lowers the source and per-listener HTTP caps, in proportion, so
// that they and fdReserve fit an open-file limit with listeners
// listeners; each stays at least 1.
func fitCaps(limit uint64, sources, httpConns, listeners int) (int, int) {
	want := uint64(sources) + uint64(listeners)*uint64(httpConns)
	if limit >= want+fdReserve {
		return sources, httpConns
	}
	avail := uint64(0)
	if limit > fdReserve {
		avail = limit - fdReserve
	}
	s := max(1, int(uint64(sources)*avail/want))
	h := max(1, int(uint64(httpConns)*avail/want))
	return s, h
}

// fitFileLimit lowers the caps to what the open-file limit allows with n
// listeners, saying so in the log, and returns the HTTP cap per listener.
// (Info, not a warning: a default open-file limit is common and the
// server runs well with lower caps; the operator who wants the defaults
// reads how in the line.)
// A connection past the open-file limit would not be refused cleanly: the
// accept loop would stall, the newcomer waiting in the kernel's queue.
func (s *Server) fitFileLimit(n int) int {
	limit, ok := openFileLimit()
	if !ok {
		return s.cfg.MaxHTTPConns
	}
	src, h := fitCaps(limit, s.cfg.MaxConns, s.cfg.MaxHTTPConns, n)
	if src != s.cfg.MaxConns || h != s.cfg.MaxHTTPConns {
		s.log.Info("the open-file limit is lower than the connection caps need; lowered them (raise it with ulimit -n or systemd's LimitNOFILE=)",
			attrLimit, limit, attrMaxConns, src, attrMaxHTTPConns, h)
	}
	s.sources.setMax(src)
	return h
}

// setMax changes the cap; sessions over it end by themselves.
func (sc *sourceConns) setMax(max int) {
	sc.mu.Lock()
	sc.max = max
	sc.mu.Unlock()
}
