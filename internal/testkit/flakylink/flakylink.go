// Package flakylink is a test harness that stands in for the source's radio
// link (docs/field.md, "Bad links" and "Link profiles"): a TCP relay on
// loopback that delays, throttles and cuts the connections it relays, and
// counts the bytes it delivers. It is imported by tests and benchmarks only;
// no shipped program links it.
//
// The promise, per direction of each relayed connection:
//
//   - Bytes arrive intact and in order, or the connection is cut; nothing is
//     reordered, duplicated or corrupted.
//   - The link is modelled as a serialiser followed by a delay line: a byte
//     reaches the other side no earlier than RTT/2 after its last bit was
//     serialised at the configured rate, so a stream of N bytes that starts on
//     an idle link is delivered in no less than RTT/2 + N*8/rate. The relay
//     reads at most about 1 KiB ahead of the serialiser, so a sender sees the
//     link's pace in its own writes, as it would on a real link.
//   - With [Config.CutEvery] = N, a connection is cut (both TCP connections
//     reset, as when a radio link drops) right after its N-th client→server
//     byte is delivered to the target; the bytes after it are never
//     delivered. Each new connection counts from zero.
//
// TestThrottledRelayIsIntactAndExact, TestCutExactlyAtCutEvery,
// TestDelayIsApplied and TestRateAndDelayCompose in flakylink_test.go check
// these, on real loopback TCP.
//
// Relayed connections have no idle deadline: a test harness must not cut a
// connection the test did not ask it to cut. [Relay.Close] ends all of them.
package flakylink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Profile is a link from FIELD.md's "Link profiles" table.
type Profile struct {
	Name           string
	UpBitsPerSec   int           // client → server rate in bit/s; 0 = unthrottled
	DownBitsPerSec int           // server → client rate in bit/s; 0 = unthrottled
	RTT            time.Duration // added round-trip delay, RTT/2 each way; 0 = none
}

// The profiles of FIELD.md's "Link profiles" table. The table gives the
// uplink only; the downlink is set to the same rate, which is the worse case
// for the acknowledgements a client waits for.
var (
	GPRS   = Profile{"GPRS", 20_000, 20_000, 500 * time.Millisecond}
	TwoG   = Profile{"2G", 50_000, 50_000, 300 * time.Millisecond}
	Good2G = Profile{"good 2G", 150_000, 150_000, 150 * time.Millisecond}
	ThreeG = Profile{"3G", 250_000, 250_000, 100 * time.Millisecond}
)

// Profiles lists FIELD.md's profiles from worst to best, for benchmarks that
// run over each.
var Profiles = []Profile{GPRS, TwoG, Good2G, ThreeG}

// Config is what a [Relay] does to each connection it accepts.
type Config struct {
	Profile

	// CutEvery cuts each connection (both sides reset, SO_LINGER 0) as soon
	// as it has delivered this many client→server bytes to the target.
	// 0 = never.
	CutEvery int64

	// MaxCuts stops cutting once the relay has cut this many connections in
	// all, so that a test can drop a link once and then let the retry
	// through. 0 = no limit.
	MaxCuts int

	// ChargeHandshake holds a new connection's first client bytes one extra
	// RTT, the cost of the TCP handshake that a loopback connect does not
	// pay, so that a client's connected time compares with FIELD.md's ideal
	// (round trips × delay + bytes ÷ uplink). Default off: then a round trip
	// through the relay costs exactly one RTT.
	ChargeHandshake bool
}

func (c Config) validate() error {
	switch {
	case c.UpBitsPerSec < 0:
		return fmt.Errorf("uplink rate %d bit/s is negative", c.UpBitsPerSec)
	case c.DownBitsPerSec < 0:
		return fmt.Errorf("downlink rate %d bit/s is negative", c.DownBitsPerSec)
	case c.RTT < 0:
		return fmt.Errorf("round trip %v is negative", c.RTT)
	case c.CutEvery < 0:
		return fmt.Errorf("cut interval %d bytes is negative", c.CutEvery)
	case c.MaxCuts < 0:
		return fmt.Errorf("cut limit %d is negative", c.MaxCuts)
	}
	return nil
}

// Stats counts what a [Relay] did since it started.
type Stats struct {
	BytesUp     int64 // client → server bytes delivered to the target
	BytesDown   int64 // server → client bytes delivered to the client
	Connections int   // client connections accepted
	Cuts        int   // connections cut by CutEvery (counted when due, even if the target had already gone)
}

// Relay is a running flaky link. Its methods are safe for concurrent use.
type Relay struct {
	ln     net.Listener
	target string
	ctx    context.Context // cancelled by Close: aborts dials in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection's goroutines

	bytesUp, bytesDown atomic.Int64

	mu          sync.Mutex
	cfg         Config
	closed      bool
	live        map[*link]struct{}
	connections int
	cuts        int
}

// dialTimeout bounds the dial to the target, which is on loopback in every
// intended use; a target that does not answer by then is a test bug.
const dialTimeout = 10 * time.Second

// Start listens on 127.0.0.1 on a free port and relays each connection it
// accepts to target (host:port) under cfg, until [Relay.Close]. A connection
// whose dial to target fails is reset.
func Start(target string, cfg Config) (*Relay, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("flakylink: target %q: %w", target, err)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("flakylink: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("flakylink: listening on loopback: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		ln:     ln,
		target: target,
		ctx:    ctx,
		cancel: cancel,
		cfg:    cfg,
		live:   make(map[*link]struct{}),
	}
	r.wg.Add(1)
	go r.acceptLoop()
	return r, nil
}

// Addr is the relay's listening address, "127.0.0.1:port".
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// URL is scheme://Addr(), for example URL("ws") for a WebSocket client.
func (r *Relay) URL(scheme string) string { return scheme + "://" + r.Addr() }

// SetConfig changes what the relay does to connections it accepts after the
// call; connections already open keep the configuration they started with.
// An invalid cfg is refused and the old one kept.
func (r *Relay) SetConfig(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("flakylink: %w", err)
	}
	r.mu.Lock()
	r.cfg = cfg
	r.mu.Unlock()
	return nil
}

// Stats returns the counts so far. After Close returns they are final.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{
		BytesUp:     r.bytesUp.Load(),
		BytesDown:   r.bytesDown.Load(),
		Connections: r.connections,
		Cuts:        r.cuts,
	}
}

// Close stops listening, resets every live connection (without counting a
// cut), and returns once all the relay's goroutines have ended. Closing
// twice is harmless.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.wg.Wait()
		return nil
	}
	r.closed = true
	r.cancel()
	err := r.ln.Close()
	live := make([]*link, 0, len(r.live))
	for l := range r.live {
		live = append(live, l)
	}
	r.mu.Unlock()
	for _, l := range live {
		l.end(true)
	}
	r.wg.Wait()
	if err != nil {
		return fmt.Errorf("flakylink: closing listener: %w", err)
	}
	return nil
}

func (r *Relay) acceptLoop() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (out of file descriptors) are worth a
			// retry; the loop ends when Close closes the listener.
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			resetConn(c.(*net.TCPConn))
			return
		}
		r.connections++
		cfg := r.cfg
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serve(c.(*net.TCPConn), cfg, time.Now())
	}
}

// serve dials the target for an accepted client connection and starts the
// two directions of the link.
func (r *Relay) serve(client *net.TCPConn, cfg Config, accepted time.Time) {
	defer r.wg.Done()
	d := net.Dialer{Timeout: dialTimeout}
	sc, err := d.DialContext(r.ctx, "tcp", r.target)
	if err != nil {
		resetConn(client)
		return
	}
	l := &link{
		r:        r,
		client:   client,
		server:   sc.(*net.TCPConn),
		cutEvery: cfg.CutEvery,
		maxCuts:  cfg.MaxCuts,
		done:     make(chan struct{}),
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		l.end(true)
		return
	}
	r.live[l] = struct{}{}
	r.wg.Add(4)
	r.mu.Unlock()

	upStart := accepted
	if cfg.ChargeHandshake {
		upStart = accepted.Add(cfg.RTT)
	}
	up := newDirection(cfg.UpBitsPerSec, cfg.RTT/2, upStart)
	down := newDirection(cfg.DownBitsPerSec, cfg.RTT/2, accepted)
	go l.pump(client, up)
	go l.deliver(l.server, up, &r.bytesUp, true)
	go l.pump(l.server, down)
	go l.deliver(client, down, &r.bytesDown, false)
}

// takeCut reports whether a connection may be cut now under maxCuts, and
// counts the cut if so.
func (r *Relay) takeCut(maxCuts int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if maxCuts > 0 && r.cuts >= maxCuts {
		return false
	}
	r.cuts++
	return true
}

func (r *Relay) forget(l *link) {
	r.mu.Lock()
	delete(r.live, l)
	r.mu.Unlock()
}

// resetConn closes c with SO_LINGER 0, so the peer gets a TCP reset rather
// than an orderly end of stream: that is what a dropped radio link looks like
// to the far end once its retransmissions give up.
func resetConn(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// Pacing is written by hand rather than with golang.org/x/time/rate, which is
// not a dependency of this module; it also needs no more than one virtual
// clock per direction (wireFree below).
const (
	// maxAheadBytes is how far the relay reads ahead of the serialiser on a
	// throttled direction: the burst a sender sees absorbed at once.
	maxAheadBytes = 1024
	// minSegment is the smallest read on a throttled direction. Each
	// segment is delivered whole once its last bit is serialised, as a
	// store-and-forward hop delivers a packet.
	minSegment = 512
	// maxSegment is the largest read, and the read size when unthrottled.
	maxSegment = 32 << 10
	// unthrottledQueue is the delay line's length, in segments, when the
	// direction is unthrottled: it caps the bytes in flight at 2 MiB.
	unthrottledQueue = 64
)

type chunk struct {
	data []byte
	due  time.Time // when the chunk reaches the far side
}

// direction is one way of a link: a reader (pump) feeds a delay line (queue)
// that a writer (deliver) empties on time.
type direction struct {
	bitsPerSec int
	delay      time.Duration // one way
	segment    int           // read size
	ahead      time.Duration // how far the reader may run ahead of the wire
	wireFree   time.Time     // when the serialiser has sent all it was given
	queue      chan chunk    // closed by pump at the sender's end of stream
}

func newDirection(bitsPerSec int, delay time.Duration, start time.Time) *direction {
	d := &direction{bitsPerSec: bitsPerSec, delay: delay, wireFree: start}
	if bitsPerSec == 0 {
		d.segment = maxSegment
		d.queue = make(chan chunk, unthrottledQueue)
		return d
	}
	// About 10 ms of the link per read: small enough for realistic timing,
	// large enough that a fast benchmark link is not limited by timers.
	d.segment = min(max(bitsPerSec/8/100, minSegment), maxSegment)
	d.ahead = serialisation(max(maxAheadBytes, d.segment), bitsPerSec)
	// The delay line holds what is in flight: the bandwidth-delay product
	// plus what the reader may have ahead, with a margin.
	inFlight := int64(bitsPerSec) / 8 * int64(delay) / int64(time.Second)
	d.queue = make(chan chunk, int(inFlight)/d.segment+8)
	return d
}

// serialisation is the time to send n bytes at bitsPerSec, rounded up so
// that the promised lower bound on delivery time holds exactly.
func serialisation(n, bitsPerSec int) time.Duration {
	bits := int64(n) * 8 * int64(time.Second)
	return time.Duration((bits + int64(bitsPerSec) - 1) / int64(bitsPerSec))
}

// link is one relayed connection.
type link struct {
	r              *Relay
	client, server *net.TCPConn
	cutEvery       int64 // 0 once the connection may no longer be cut
	maxCuts        int
	sentUp         int64 // client→server bytes delivered; deliver(up) only

	done     chan struct{} // closed by end: every goroutine of the link stops
	endOnce  sync.Once
	finished atomic.Int32 // directions that ended in an orderly way
}

// end closes both connections, resetting them if abrupt, and stops the
// link's goroutines. Only the first call has an effect. The caller must not
// hold l.r.mu.
func (l *link) end(abrupt bool) {
	l.endOnce.Do(func() {
		l.r.forget(l)
		close(l.done)
		if abrupt {
			resetConn(l.client)
			resetConn(l.server)
		} else {
			_ = l.client.Close()
			_ = l.server.Close()
		}
	})
}

// sleepUntil waits until t or until the link ends, reporting whether t came.
func (l *link) sleepUntil(t time.Time) bool {
	wait := time.Until(t)
	if wait <= 0 {
		return true
	}
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-l.done:
		return false
	}
}

// pump reads from src into d's delay line, stamping each segment with the
// time it reaches the far side, and keeps at most d.ahead of reading ahead
// of the serialiser. At src's end of stream it closes the delay line; on any
// other read error it resets the link.
func (l *link) pump(src *net.TCPConn, d *direction) {
	defer l.r.wg.Done()
	buf := make([]byte, d.segment)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if now := time.Now(); now.After(d.wireFree) {
				d.wireFree = now // the wire was idle
			}
			if d.bitsPerSec > 0 {
				d.wireFree = d.wireFree.Add(serialisation(n, d.bitsPerSec))
			}
			c := chunk{data: append([]byte(nil), buf[:n]...), due: d.wireFree.Add(d.delay)}
			select {
			case d.queue <- c:
			case <-l.done:
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				close(d.queue)
			} else {
				l.end(true)
			}
			return
		}
		if d.bitsPerSec > 0 && !l.sleepUntil(d.wireFree.Add(-d.ahead)) {
			return
		}
	}
}

// deliver writes d's delay line to dst, each chunk when it is due, adding
// what it wrote to counter. For the up direction it also cuts the link at
// cutEvery. When the delay line is closed and empty it half-closes dst, and
// the second direction to do so closes the link.
func (l *link) deliver(dst *net.TCPConn, d *direction, counter *atomic.Int64, up bool) {
	defer l.r.wg.Done()
	for {
		var c chunk
		var ok bool
		select {
		case c, ok = <-d.queue:
		case <-l.done:
			return
		}
		if !ok {
			if err := dst.CloseWrite(); err != nil {
				l.end(true)
				return
			}
			if l.finished.Add(1) == 2 {
				l.end(false)
			}
			return
		}
		if !l.sleepUntil(c.due) {
			return
		}
		b, cut := c.data, false
		if up && l.cutEvery > 0 && l.sentUp+int64(len(b)) >= l.cutEvery {
			if l.r.takeCut(l.maxCuts) {
				b, cut = b[:l.cutEvery-l.sentUp], true
			} else {
				l.cutEvery = 0 // the relay's cut limit is spent
			}
		}
		n, err := dst.Write(b)
		counter.Add(int64(n))
		if up {
			l.sentUp += int64(n)
		}
		if err != nil || cut {
			l.end(true)
			return
		}
	}
}
