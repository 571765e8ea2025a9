package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
)

// Replies (docs/replies.md): FetchReplies asks the server for the bucket
// of the source's mailbox on a connection of its own (never an upload's),
// opens with the reply identities what it can, hands each reply to the
// caller, and only then deletes it from the server.

// FetchOptions tune FetchReplies. The zero value is valid.
type FetchOptions struct {
	// Budget is the most time spent connected (default DefaultBudget): a
	// hard stop, as SendOutbox's. Replies not yet deleted stay on the
	// server and come again next time.
	Budget time.Duration
	// NetDialContext, if set, dials the TCP connection instead of the
	// config's proxy or a direct dial (a test relay).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Reply, if set, is called with each reply opened, before it is
	// deleted from the server: the caller shows or keeps it.
	Reply func(*Reply)
	// Keep leaves what was read on the server (no delete).
	Keep bool
}

// Reply is a reply the source opened.
type Reply struct {
	ID   protocol.ReplyID
	Text string
	// Deleted reports that the server confirmed its deletion.
	Deleted bool
}

// RepliesReport is what FetchReplies did.
type RepliesReport struct {
	// Replies are those opened, in the server's order.
	Replies []*Reply
	// Bits is the bucket's length: the bits of the mailbox id the server
	// learnt. Bucket is how many replies it held (the source's and
	// others').
	Bits, Bucket int
	// BytesSent and BytesReceived count WebSocket payload bytes.
	BytesSent, BytesReceived int64
	// RoundTrips counts the waits for the server: the requests it answered
	// (a second request when it asked for a longer prefix, the deletes).
	RoundTrips int
	// Connected is the time spent connected, dial to close.
	Connected time.Duration
}

// FetchReplies fetches the replies to keys' mailbox from cfg's server, on
// a connection of its own, within the budget. It asks first for every
// reply (0 bits); when the server holds many it asks once more with the
// length the server suggests, never more than protocol.MaxReplyBits,
// whatever the server says. It hands each reply it opens to opts.Reply,
// then deletes those from the server (unless opts.Keep). The report is
// valid whatever the error.
func FetchReplies(ctx context.Context, cfg *Config, keys *crypto.ReplyKeys, opts FetchOptions) (*RepliesReport, error) {
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	rep := &RepliesReport{}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, opts.Budget)
	defer cancel()
	// spent reports that the budget, not the caller, ended the fetch.
	spent := func() bool { return ctx.Err() != nil && parent.Err() == nil }
	start := time.Now()
	l, err := dialServer(ctx, cfg, opts.NetDialContext)
	if err != nil {
		rep.Connected = time.Since(start)
		if spent() {
			// A slow link can spend it all on connecting.
			return rep, fmt.Errorf("the budget of %s is spent connecting: %w", opts.Budget, ErrBudgetSpent)
		}
		return rep, err
	}
	l.replyFrames.Store(true)
	defer func() {
		l.close()
		rep.BytesSent, rep.BytesReceived = l.sent, l.received.Load()
		rep.Connected = time.Since(start)
	}()
	if err := fetchBucket(ctx, l, keys, opts, rep); err != nil {
		if spent() {
			return rep, fmt.Errorf("the budget of %s is spent: %w", opts.Budget, ErrBudgetSpent)
		}
		return rep, err
	}
	l.closeCleanly()
	return rep, nil
}

func fetchBucket(ctx context.Context, l *link, keys *crypto.ReplyKeys, opts FetchOptions, rep *RepliesReport) error {
	mailbox := protocol.MailboxID(keys.Mailbox)
	bits := 0
	var bucket *protocol.Bucket
	for asked := 0; ; asked++ {
		req := &protocol.RepliesRequest{Version: protocol.Version, Bits: bits, Prefix: protocol.BucketPrefix(mailbox, bits)}
		if err := l.send(req); err != nil {
			return err
		}
		m, err := l.receive(ctx)
		if err != nil {
			return err
		}
		rep.RoundTrips++
		b, ok := m.(*protocol.Bucket)
		if !ok {
			return fmt.Errorf("%w: it answered the replies request with %T", ErrBadServerMessage, m)
		}
		// The parser refused a suggestion above MaxReplyBits: a hostile
		// server cannot narrow the bucket further than that.
		if b.Count == 0 && b.Bits > bits && asked == 0 {
			bits = b.Bits
			continue
		}
		bucket = b
		break
	}
	rep.Bits = bits
	var mine []*Reply
	for range bucket.Count {
		m, err := l.receive(ctx)
		if err != nil {
			return err
		}
		f, ok := m.(*protocol.ReplyFrame)
		if !ok {
			return fmt.Errorf("%w: %T among the bucket's replies", ErrBadServerMessage, m)
		}
		rep.Bucket++
		r, err := crypto.OpenReply(f.Ciphertext, keys.Identities()...)
		if errors.Is(err, crypto.ErrNotForMe) {
			continue
		}
		if err != nil {
			// Sealed to this source, but not a reply: nothing to show,
			// and not deleted (an editor's newsdesk made it).
			continue
		}
		reply := &Reply{ID: f.ID, Text: r.Text}
		mine = append(mine, reply)
		rep.Replies = append(rep.Replies, reply)
		if opts.Reply != nil {
			opts.Reply(reply)
		}
	}
	if opts.Keep || len(mine) == 0 {
		return nil
	}
	// The deletes go out together; the answers come in order.
	for _, r := range mine {
		d := &protocol.Delete{ReplyID: r.ID}
		copy(d.MailboxKey[:], keys.MailboxKey())
		copy(d.Sig[:], keys.SignDelete(r.ID))
		if err := l.send(d); err != nil {
			return err
		}
	}
	rep.RoundTrips++
	for _, r := range mine {
		m, err := l.receive(ctx)
		if err != nil {
			return err
		}
		d, ok := m.(*protocol.Deleted)
		if !ok || d.ReplyID != r.ID {
			return fmt.Errorf("%w: it answered a delete with %T", ErrBadServerMessage, m)
		}
		r.Deleted = true
	}
	return nil
}

// DeriveReplyKeys derives the source's reply keys from its codename at
// the newsroom cfg pins, at the fixed cost of crypto.ReplyKDF (about as
// long as opening the outbox).
func DeriveReplyKeys(cfg *Config, codename string) (*crypto.ReplyKeys, error) {
	return crypto.DeriveReplyKeys(codename, cfg.Newsroom, crypto.ReplyKDF)
}
