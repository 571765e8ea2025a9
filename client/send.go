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

// SendOptions tune Send and SendOutbox. The zero value is valid.
type SendOptions struct {
	// FrameSize is protocol.FrameSize (default) or
	// protocol.LowBandwidthFrameSz. Send only: an outbox item keeps the
	// frame size it was composed with.
	FrameSize int
	// NetDialContext, if set, dials the TCP connection (a SOCKS5 proxy, a
	// test relay).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock for bundle expiry and seed epochs (default time.Now).
	Now func() time.Time
	// Progress, if set, is called with bytes acknowledged and the total of
	// the upload in progress.
	Progress func(acked, total int64)
}

func (o *SendOptions) fill() {
	if o.FrameSize == 0 {
		o.FrameSize = protocol.FrameSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
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
// it in one connection, with no outbox: it fetches the bundle and seed,
// seals, computes the proofs of work, and uploads. It returns only after
// the server's receipt verified and matched the ciphertext sent; any other
// outcome is an error and the tip must be considered not delivered.
// Refusals from the server are *protocol.Error. A source's phone uses
// Compose and SendOutbox instead, which do the heavy work offline.
func Send(ctx context.Context, dir string, tip *crypto.Tip, opts SendOptions) (*Result, error) {
	opts.fill()
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	l, err := dialServer(ctx, cfg, opts.NetDialContext)
	if err != nil {
		return nil, err
	}
	defer l.close()
	b, seed, err := l.fetchBundle(ctx, dir, cfg, opts.Now())
	if err != nil {
		return nil, err
	}
	it, err := sealItem(ctx, b, seed, tip, opts.FrameSize)
	if err != nil {
		return nil, err
	}
	l.onSeed = func(signed []byte) error { return l.checkSeed(dir, cfg, b, signed, opts.Now()) }
	receipt, err := l.transmit(ctx, it, opts.Progress, nil)
	if err != nil {
		return nil, err
	}
	r, err := checkReceipt(receipt, b.Log, it.Ciphertext)
	if err != nil {
		return nil, err
	}
	l.closeCleanly()
	return &Result{Receipt: r, ReceiptNote: receipt, BundleVersion: b.Version, BytesSent: l.sent}, nil
}

// checkReceipt verifies a receipt against the log key and the ciphertext
// it must name.
func checkReceipt(receipt []byte, logKey string, ct []byte) (*crypto.Receipt, error) {
	r, err := crypto.OpenReceipt(receipt, logKey)
	if err != nil {
		return nil, fmt.Errorf("receipt refused: %w", err)
	}
	if r.SHA256 != sha256.Sum256(ct) || r.Length != int64(len(ct)) {
		return nil, errors.New("receipt refused: it does not match the ciphertext sent")
	}
	return r, nil
}

// sealItem pads and encrypts tip to b and computes its proofs of work: an
// upload ready to go, with a fresh upload id and resume secret.
func sealItem(ctx context.Context, b *crypto.Bundle, seed *crypto.PoWSeed, tip *crypto.Tip, frameSize int) (*OutboxItem, error) {
	recipients, err := b.Recipients()
	if err != nil {
		return nil, err
	}
	ct, err := crypto.Seal(tip, recipients, int64(frameSize))
	if err != nil {
		return nil, err
	}
	it := &OutboxItem{BundleVersion: b.Version, FrameSize: frameSize, Ciphertext: ct}
	if err := renewItem(ctx, it, seed); err != nil {
		return nil, err
	}
	return it, nil
}

// renewItem gives an item a fresh upload id and resume secret and computes
// its proofs of work with seed: for a new item, and for one whose upload
// the server no longer has (expired, or whose proofs are spent or stale).
// The item changes only if everything succeeded.
func renewItem(ctx context.Context, it *OutboxItem, seed *crypto.PoWSeed) error {
	var id [16]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return err
	}
	pow, err := crypto.SolvePoWs(ctx, seed.Params, seed.Seed, id, int64(len(it.Ciphertext)))
	if err != nil {
		return fmt.Errorf("proof of work: %w", err)
	}
	it.UploadID, it.ResumeSecret, it.PoW, it.PoWEpoch, it.Started = id, secret, pow, seed.Epoch, false
	return nil
}

// verifyBundle checks a bundle from the server against the pinned
// newsroom key, its expiry and the highest version seen, and records it
// in cfg as the newest seen (the caller saves cfg).
func verifyBundle(cfg *Config, msg []byte, now time.Time) (*crypto.Bundle, error) {
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
	cfg.HighestBundleVersion = b.Version
	cfg.Bundle = string(msg)
	return b, nil
}

// Fetch connects to the server and stores its bundle and current seed,
// both verified, so that Compose works with no network. fieldtip init
// calls it after Init.
func Fetch(ctx context.Context, dir string, opts SendOptions) (*crypto.Bundle, *crypto.PoWSeed, error) {
	opts.fill()
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	l, err := dialServer(ctx, cfg, opts.NetDialContext)
	if err != nil {
		return nil, nil, err
	}
	defer l.close()
	// An explicit fetch (fieldtip init) is how a source accepts a changed
	// epoch length: the seeds are replaced, but only if the fetch succeeds
	// (fetchBundle saves the config only then).
	cfg.Seeds = nil
	b, seed, err := l.fetchBundle(ctx, dir, cfg, opts.Now())
	if err != nil {
		return nil, nil, err
	}
	l.closeCleanly()
	return b, seed, nil
}

func dialServer(ctx context.Context, cfg *Config, netDial func(context.Context, string, string) (net.Conn, error)) (*link, error) {
	u, err := protocol.ParseServerURL(cfg.Server)
	if err != nil {
		return nil, err
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

// fetchBundle asks for the bundle in force and the current seed, verifies
// both and saves them in the config.
func (l *link) fetchBundle(ctx context.Context, dir string, cfg *Config, now time.Time) (*crypto.Bundle, *crypto.PoWSeed, error) {
	if err := l.send(&protocol.BundleRequest{Version: protocol.Version}); err != nil {
		return nil, nil, err
	}
	msg, err := l.receive(ctx)
	if err != nil {
		return nil, nil, err
	}
	reply, ok := msg.(*protocol.BundleReply)
	if !ok {
		return nil, nil, fmt.Errorf("%w: it answered the bundle request with %T", ErrBadServerMessage, msg)
	}
	b, err := verifyBundle(cfg, reply.Bundle, now)
	if err != nil {
		return nil, nil, err
	}
	seed, err := acceptSeed(cfg, b, reply.Seed, now)
	if err != nil {
		return nil, nil, err
	}
	if err := saveConfig(dir, cfg); err != nil {
		return nil, nil, err
	}
	return b, seed, nil
}

// checkSeed verifies and records the seed an offset message carried.
func (l *link) checkSeed(dir string, cfg *Config, b *crypto.Bundle, signed []byte, now time.Time) error {
	before := len(cfg.Seeds)
	if _, err := acceptSeed(cfg, b, signed, now); err != nil {
		return err
	}
	if len(cfg.Seeds) != before || cfg.Seeds[len(cfg.Seeds)-1] != string(signed) {
		return saveConfig(dir, cfg)
	}
	return nil
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

// transmit sends one item on l: a new upload (the first message with its
// frames right behind it, no wait) or, for a started one, a resume (one
// round trip for the server's offset), then frames with at most Window
// unacknowledged, then the commit. It returns the signed receipt.
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
		}
		if err := l.send(up); err != nil {
			return nil, err
		}
	}
	gotOffset := resumed
	buf := make([]byte, 0, protocol.FrameHeaderSize+it.FrameSize)
	for acked < total {
		for sent < total && sent-acked < Window*frame {
			buf = protocol.AppendDataFrame(buf[:0], sent, it.Ciphertext[sent:sent+frame])
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
	if err := l.send(&protocol.Commit{SHA256: sha256.Sum256(it.Ciphertext)}); err != nil {
		return nil, err
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
