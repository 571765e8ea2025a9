package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// Window is how many data frames a client keeps in flight (FIELD.md: two
// to four): enough to fill a slow link's round trip, few enough that a drop
// costs little.
const Window = 4

// ReadTimeout bounds the wait for each message from the server.
const ReadTimeout = 60 * time.Second

// SendOptions tune Send. The zero value is valid.
type SendOptions struct {
	// FrameSize is protocol.FrameSize (default) or
	// protocol.LowBandwidthFrameSz.
	FrameSize int
	// NetDialContext, if set, dials the TCP connection (a SOCKS5 proxy, a
	// test relay).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock for bundle expiry (default time.Now).
	Now func() time.Time
	// Progress, if set, is called with bytes acknowledged and the total.
	Progress func(acked, total int64)
}

// Result is what Send reports after the server acknowledged a tip.
type Result struct {
	// Receipt is the verified receipt; ReceiptNote its signed text.
	Receipt     *crypto.Receipt
	ReceiptNote []byte
	// BundleVersion is the version of the bundle the tip was sealed to.
	BundleVersion int64
	// BytesSent counts WebSocket payload bytes sent (frames and control).
	BytesSent int64
}

// Send seals tip to the editors of the server's current bundle and uploads
// it. It returns only after the server's receipt verified and matched the
// ciphertext sent; any other outcome is an error and the tip must be
// considered not delivered. Refusals from the server are *protocol.Error.
func Send(ctx context.Context, dir string, tip *crypto.Tip, opts SendOptions) (*Result, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	if opts.FrameSize == 0 {
		opts.FrameSize = protocol.FrameSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	u, err := protocol.ParseServerURL(cfg.Server)
	if err != nil {
		return nil, err
	}
	l, err := dial(ctx, u.WebSocket, opts.NetDialContext)
	if err != nil {
		return nil, err
	}
	defer l.close()
	// The context is a hard stop (the source's radio time): when it ends,
	// the connection closes, which ends any read or write in progress.
	stop := context.AfterFunc(ctx, func() { l.conn.Close() })
	defer stop()

	if err := l.send(&protocol.BundleRequest{Version: protocol.Version}); err != nil {
		return nil, err
	}
	msg, err := l.receive(ctx)
	if err != nil {
		return nil, err
	}
	reply, ok := msg.(*protocol.BundleReply)
	if !ok {
		return nil, fmt.Errorf("server answered the bundle request with %T", msg)
	}
	b, err := verifyBundle(dir, cfg, reply.Bundle, opts.Now())
	if err != nil {
		return nil, err
	}
	recipients, err := b.Recipients()
	if err != nil {
		return nil, err
	}
	ct, err := crypto.Seal(tip, recipients, int64(opts.FrameSize))
	if err != nil {
		return nil, err
	}
	receipt, err := l.upload(ctx, b, ct, opts)
	if err != nil {
		return nil, err
	}
	r, err := crypto.OpenReceipt(receipt, b.Log)
	if err != nil {
		return nil, fmt.Errorf("receipt refused: %w", err)
	}
	if r.SHA256 != sha256.Sum256(ct) || r.Length != int64(len(ct)) {
		return nil, errors.New("receipt refused: it does not match the ciphertext sent")
	}
	l.closeCleanly()
	return &Result{Receipt: r, ReceiptNote: receipt, BundleVersion: b.Version, BytesSent: l.sent}, nil
}

// verifyBundle checks a bundle from the server against the pinned
// newsroom key, its expiry and the highest version seen, and records its
// version as seen.
func verifyBundle(dir string, cfg *Config, msg []byte, now time.Time) (*crypto.Bundle, error) {
	b, err := crypto.OpenBundle(msg, cfg.Newsroom)
	if err != nil {
		return nil, fmt.Errorf("bundle from server refused: %w", err)
	}
	if b.Expired(now) {
		return nil, fmt.Errorf("bundle from server refused: version %d %w on %s", b.Version, crypto.ErrExpired, b.Expires.Format(time.RFC3339))
	}
	if b.Version < cfg.HighestBundleVersion {
		return nil, fmt.Errorf("bundle from server refused: version %d: %w (version %d)", b.Version, ErrBundleRollback, cfg.HighestBundleVersion)
	}
	if b.Version > cfg.HighestBundleVersion {
		cfg.HighestBundleVersion = b.Version
		if err := saveConfig(dir, cfg); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// link is one WebSocket session with the server: writes from the caller's
// goroutine, reads from a reader goroutine, as gorilla/websocket allows.
type link struct {
	ctx  context.Context
	conn *websocket.Conn
	msgs chan any
	errc chan error
	done chan struct{}
	sent int64
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
		if mt != websocket.TextMessage {
			l.errc <- errors.New("server sent a binary message")
			return
		}
		m, err := protocol.ParseServerMessage(data)
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
		// refusal, which says what to do.
		if e := l.queuedError(); e != nil {
			return e
		}
		return fmt.Errorf("send: %w", err)
	}
	l.sent += int64(len(b))
	return nil
}

// upload sends ct as one upload: the first message, its frames right
// behind it with at most Window unacknowledged, then the commit. It returns
// the signed receipt.
func (l *link) upload(ctx context.Context, b *crypto.Bundle, ct []byte, opts SendOptions) ([]byte, error) {
	up := &protocol.Upload{
		Version:       protocol.Version,
		BundleVersion: b.Version,
		Length:        int64(len(ct)),
		FrameSize:     opts.FrameSize,
	}
	rand.Read(up.UploadID[:])
	var secret [32]byte
	rand.Read(secret[:])
	up.ResumeHash = sha256.Sum256(secret[:])
	if err := l.send(up); err != nil {
		return nil, err
	}
	frame := int64(opts.FrameSize)
	total := int64(len(ct))
	var sent, acked int64
	gotOffset := false
	buf := make([]byte, 0, protocol.FrameHeaderSize+opts.FrameSize)
	for acked < total {
		for sent < total && sent-acked < Window*frame {
			buf = protocol.AppendDataFrame(buf[:0], sent, ct[sent:sent+frame])
			if err := l.write(websocket.BinaryMessage, buf); err != nil {
				return nil, err
			}
			sent += frame
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
		case *protocol.Ack:
			if !gotOffset || m.Offset <= acked || m.Offset > sent || m.Offset%frame != 0 {
				return nil, fmt.Errorf("server acknowledged offset %d; %d sent, %d acknowledged before", m.Offset, sent, acked)
			}
			acked = m.Offset
			if opts.Progress != nil {
				opts.Progress(acked, total)
			}
		default:
			return nil, fmt.Errorf("unexpected %T from the server during upload", m)
		}
	}
	if err := l.send(&protocol.Commit{SHA256: sha256.Sum256(ct)}); err != nil {
		return nil, err
	}
	m, err := l.receive(ctx)
	if err != nil {
		return nil, err
	}
	r, ok := m.(*protocol.ReceiptReply)
	if !ok {
		return nil, fmt.Errorf("server answered the commit with %T", m)
	}
	return r.Receipt, nil
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
	close(l.done)
	l.conn.Close()
}
