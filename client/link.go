package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// The link is the transport of one session: a WebSocket to the server's
// source endpoint, written from the caller's goroutine and read by a
// reader goroutine, as gorilla/websocket allows, with a deadline on every
// read and write; transmit plays one upload on it (FIELD.md, "Upload
// protocol shape").

// Window is how many data frames a client keeps in flight (FIELD.md: two
// to four): enough to fill a slow link's round trip, few enough that a drop
// costs little.
const Window = 4

// ReadTimeout bounds the wait for each message from the server.
const ReadTimeout = 60 * time.Second

// dialServer opens a link to cfg's server: through netDial if set (a
// test relay), else through cfg's proxy if it has one, else directly.
func dialServer(ctx context.Context, cfg *Config, netDial func(context.Context, string, string) (net.Conn, error)) (*link, error) {
	u, err := protocol.ParseServerURL(cfg.Server)
	if err != nil {
		return nil, err
	}
	if netDial == nil && cfg.Proxy != "" {
		if netDial, err = ProxyDialer(cfg.Proxy); err != nil {
			return nil, err
		}
	}
	l, err := dial(ctx, u.WebSocket, netDial)
	if err != nil {
		return nil, err
	}
	// The context is a hard stop (the source's radio time): when it ends,
	// the connection closes, which ends any read or write in progress.
	l.stop = context.AfterFunc(ctx, func() { l.conn.Close() })
	return l, nil
}

// link is one WebSocket session with the server: writes from the caller's
// goroutine, reads from a reader goroutine, as gorilla/websocket allows.
type link struct {
	ctx  context.Context
	conn *websocket.Conn
	msgs chan any
	errc chan error
	done chan struct{}
	stop func() bool
	sent int64
	// received counts the payload bytes read (the reader goroutine adds,
	// FetchReplies reads); replyFrames lets binary messages in, as reply
	// frames: only a reply fetch's connection takes them.
	received    atomic.Int64
	replyFrames atomic.Bool
	// onSeed, if set, checks the seed each offset message carries.
	onSeed func(signed []byte) error
}

func dial(ctx context.Context, wsURL string, netDial func(context.Context, string, string) (net.Conn, error)) (*link, error) {
	d := &websocket.Dialer{
		HandshakeTimeout:  30 * time.Second,
		NetDialContext:    netDial,
		EnableCompression: false,
		ReadBufferSize:    4096,
		WriteBufferSize:   protocol.MaxClientMessage + 64,
	}
	conn, resp, err := d.DialContext(ctx, wsURL, nil)
	if err != nil {
		if resp != nil && resp.Body != nil {
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if m, perr := protocol.ParseServerMessage(body); perr == nil {
				if e, ok := m.(*protocol.Error); ok {
					return nil, e
				}
			}
			return nil, fmt.Errorf("connect to server: it answered %q, not a WebSocket upgrade", resp.Status)
		}
		// x/net/proxy wraps a failure to reach the proxy in one about
		// the server: say what failed, once.
		var pe *proxyError
		if errors.As(err, &pe) {
			err = pe
		}
		return nil, fmt.Errorf("connect to server: %w", err)
	}
	conn.SetReadLimit(protocol.MaxServerMessage)
	l := &link{ctx: ctx, conn: conn, msgs: make(chan any, 2*Window+4), errc: make(chan error, 1), done: make(chan struct{})}
	go l.read()
	return l, nil
}

func (l *link) read() {
	for {
		// A server that goes silent must not hold the link (and the
		// radio) for ever, even for a caller whose context has no deadline.
		l.conn.SetReadDeadline(time.Now().Add(ReadTimeout))
		mt, data, err := l.conn.ReadMessage()
		if err != nil {
			l.errc <- fmt.Errorf("connection lost: %w", err)
			return
		}
		l.received.Add(int64(len(data)))
		var m any
		switch {
		case mt == websocket.BinaryMessage && l.replyFrames.Load():
			m, err = protocol.ParseReplyFrame(data)
		case mt != websocket.TextMessage:
			l.errc <- errors.New("server sent a binary message")
			return
		default:
			m, err = protocol.ParseServerMessage(data)
		}
		if err != nil {
			// Not wrapped: a *protocol.Error here is the client's own
			// parse failure, and must not read as a refusal by the server.
			l.errc <- fmt.Errorf("%w: %s", ErrBadServerMessage, err.Error())
			return
		}
		select {
		case l.msgs <- m:
		case <-l.done:
			return
		}
	}
}

// receive returns the next server message; a server error message comes
// back as a *protocol.Error. Messages read before the connection failed
// are returned, in order, before the failure is.
func (l *link) receive(ctx context.Context) (any, error) {
	select {
	case m := <-l.msgs:
		return serverMessage(m)
	case err := <-l.errc:
		// The reader queues every message it read before failing, but
		// select picks at random among ready cases: keep the failure for
		// a later call (the reader sends it once) and return the queued
		// messages first, so that acks followed by a refusal and a close
		// read as the refusal, not as a lost connection.
		l.errc <- err
		select {
		case m := <-l.msgs:
			return serverMessage(m)
		default:
		}
		// The context's end closes the connection: report the cause, not
		// the closed connection.
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for the server: %w", context.Cause(ctx))
		}
		return nil, err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the server: %w", context.Cause(ctx))
	}
}

func serverMessage(m any) (any, error) {
	if e, ok := m.(*protocol.Error); ok {
		return nil, e
	}
	return m, nil
}

// queuedError returns a refusal the reader has queued, if any, dropping
// the messages before it.
func (l *link) queuedError() *protocol.Error {
	for {
		select {
		case m := <-l.msgs:
			if e, ok := m.(*protocol.Error); ok {
				return e
			}
		default:
			return nil
		}
	}
}

func (l *link) send(msg any) error {
	return l.write(websocket.TextMessage, protocol.Marshal(msg))
}

func (l *link) write(mt int, b []byte) error {
	deadline := time.Now().Add(60 * time.Second)
	if d, ok := l.ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	l.conn.SetWriteDeadline(deadline)
	if err := l.conn.WriteMessage(mt, b); err != nil {
		if l.ctx.Err() != nil {
			return fmt.Errorf("send: %w", context.Cause(l.ctx))
		}
		// Frames follow the upload message without waiting, so the server
		// may refuse the upload (stale_bundle, too_large, busy) and close
		// while they go out. The reader queued that refusal before it
		// answered the close, which is what fails this write: report the
		// refusal, which says what to do. The write can fail before the
		// reader has read the refusal, so wait for the reader to end (the
		// connection is dead: it reads what the server sent, then fails)
		// before looking.
		if e := l.refusalAfter(refusalGrace); e != nil {
			return e
		}
		return fmt.Errorf("send: %w", err)
	}
	l.sent += int64(len(b))
	return nil
}

// refusalGrace bounds the wait, after a failed write, for the reader to
// read what the server sent before the connection failed.
const refusalGrace = 5 * time.Second

// refusalAfter returns the refusal the server sent before the connection
// failed, if any: it reads the reader's messages (dropping those before a
// refusal) until the reader ends, for at most d or until the link's
// context ends.
func (l *link) refusalAfter(d time.Duration) *protocol.Error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case m := <-l.msgs:
			if e, ok := m.(*protocol.Error); ok {
				return e
			}
		case err := <-l.errc:
			l.errc <- err
			return l.queuedError()
		case <-t.C:
			return l.queuedError()
		case <-l.ctx.Done():
			return l.queuedError()
		}
	}
}

// transmit sends one item on l: a new upload (the first message with its
// frames right behind it, no wait) or, for a started one, a resume (one
// round trip for the server's offset), then frames with at most Window
// unacknowledged, and the commit right behind the last frame (the server
// stores the last frames and the commit together: a one-frame tip is one
// round trip). It returns the signed receipt.
// started, if set, is called before a new upload's first message goes
// out, to record that the item may now exist on the server.
func (l *link) transmit(ctx context.Context, it *OutboxItem, progress func(acked, total int64), started func() error) ([]byte, error) {
	frame := int64(it.FrameSize)
	total := int64(len(it.Ciphertext))
	var sent, acked int64
	resumed := it.Started
	if resumed {
		if err := l.send(&protocol.Resume{Version: protocol.Version, UploadID: it.UploadID, ResumeSecret: it.ResumeSecret}); err != nil {
			return nil, err
		}
		m, err := l.receive(ctx)
		if err != nil {
			return nil, err
		}
		off, ok := m.(*protocol.Offset)
		if !ok {
			return nil, fmt.Errorf("%w: it answered the resume with %T", ErrBadServerMessage, m)
		}
		if off.Offset > total || off.Offset%frame != 0 {
			return nil, fmt.Errorf("%w: offset %d for an upload of %d bytes in %d-byte frames", ErrBadServerMessage, off.Offset, total, frame)
		}
		if err := l.seed(off.Seed); err != nil {
			return nil, err
		}
		sent, acked = off.Offset, off.Offset
		if progress != nil {
			progress(acked, total)
		}
	} else {
		if started != nil {
			if err := started(); err != nil {
				return nil, err
			}
		}
		up := &protocol.Upload{
			Version:       protocol.Version,
			BundleVersion: it.BundleVersion,
			UploadID:      it.UploadID,
			ResumeHash:    sha256.Sum256(it.ResumeSecret[:]),
			Length:        total,
			FrameSize:     it.FrameSize,
			PoWEpoch:      it.PoWEpoch,
			PoW:           it.PoW,
			PrePoW:        it.prePoW,
		}
		if err := l.send(up); err != nil {
			return nil, err
		}
	}
	gotOffset := resumed
	committed := false
	commit := func() error {
		committed = true
		return l.send(&protocol.Commit{SHA256: sha256.Sum256(it.Ciphertext)})
	}
	buf := make([]byte, 0, protocol.FrameHeaderSize+it.FrameSize)
	for acked < total {
		for sent < total && sent-acked < Window*frame {
			buf = protocol.AppendDataFrame(buf[:0], sent, it.Ciphertext[sent:sent+frame])
			if err := l.write(websocket.BinaryMessage, buf); err != nil {
				return nil, err
			}
			sent += frame
		}
		if sent == total && !committed {
			if err := commit(); err != nil {
				return nil, err
			}
		}
		m, err := l.receive(ctx)
		if err != nil {
			return nil, err
		}
		switch m := m.(type) {
		case *protocol.Offset:
			if gotOffset || m.Offset != 0 {
				return nil, fmt.Errorf("%w: offset %d for a new upload", ErrBadServerMessage, m.Offset)
			}
			gotOffset = true
			if err := l.seed(m.Seed); err != nil {
				return nil, err
			}
		case *protocol.Ack:
			if !gotOffset || m.Offset <= acked || m.Offset > sent || m.Offset%frame != 0 {
				return nil, fmt.Errorf("%w: it acknowledged offset %d; %d sent, %d acknowledged before", ErrBadServerMessage, m.Offset, sent, acked)
			}
			acked = m.Offset
			if progress != nil {
				progress(acked, total)
			}
		default:
			return nil, fmt.Errorf("%w: %T during an upload", ErrBadServerMessage, m)
		}
	}
	if !gotOffset {
		// Every frame was acknowledged, so the offset came first; this is
		// only reachable for an upload of no frames, which cannot exist.
		return nil, fmt.Errorf("%w: no offset for the upload", ErrBadServerMessage)
	}
	if !committed {
		// A resumed upload whose every frame was stored: the commit alone.
		if err := commit(); err != nil {
			return nil, err
		}
	}
	m, err := l.receive(ctx)
	if err != nil {
		return nil, err
	}
	r, ok := m.(*protocol.ReceiptReply)
	if !ok {
		return nil, fmt.Errorf("%w: it answered the commit with %T", ErrBadServerMessage, m)
	}
	return r.Receipt, nil
}

func (l *link) seed(signed []byte) error {
	if l.onSeed == nil {
		return nil
	}
	return l.onSeed(signed)
}

// closeCleanly sends a close frame and waits briefly for the server's.
func (l *link) closeCleanly() {
	l.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	select {
	case <-l.errc:
	case <-time.After(time.Second):
	}
}

func (l *link) close() {
	if l.stop != nil {
		l.stop()
	}
	close(l.done)
	l.conn.Close()
}
