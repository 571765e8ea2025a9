// Package sourcekit is a source's phone for other packages' tests: it
// sends a tip the way fieldtip send does (client.Init, client.Compose
// into an outbox, client.SendOutbox), so that their tests drive the path
// the program ships. It is imported by tests only; no shipped program
// links it.
package sourcekit

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fieldtip/client"
	"fieldtip/crypto"
)

// outboxKDF is a cheap outbox key cost: real Argon2id, 64 KiB, one pass.
// client's own tests run the default.
var outboxKDF = crypto.CodenameKDF{MemoryKiB: 64, Time: 1}

// Options tune a Phone. The zero value is valid.
type Options struct {
	// FrameSize is the frame size tips are composed with (default
	// protocol.FrameSize).
	FrameSize int
	// NetDialContext, if set, dials every connection (a relay, a counting
	// dialer).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the client's clock (default time.Now).
	Now func() time.Time
}

// Phone is a source's config dir and outbox. Its methods may be called
// from several goroutines; they take turns.
type Phone struct {
	dir, server, newsroom string
	opts                  Options
	mu                    sync.Mutex
	ob                    *client.Outbox
}

// New returns a phone in a new temporary dir for the server at serverURL,
// pinned to the newsroom's verifier key. Nothing connects until Send.
func New(tb testing.TB, serverURL, newsroom string, opts Options) *Phone {
	tb.Helper()
	return &Phone{dir: filepath.Join(tb.TempDir(), "source"), server: serverURL, newsroom: newsroom, opts: opts}
}

// Dir returns the phone's config dir.
func (p *Phone) Dir() string { return p.dir }

// Send runs init (which fetches the bundle and seed in force, as a source
// does after a bundle change), composes tip into the outbox and sends it.
// It returns the receipt once it verified; on any error the tip is
// removed from the outbox, so that the next Send sends its own tip only.
func (p *Phone) Send(ctx context.Context, tip *crypto.Tip) (*client.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg, _, _, err := client.Init(ctx, p.dir, p.server, p.newsroom, client.InitOptions{NetDialContext: p.opts.NetDialContext, Now: p.opts.Now})
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if p.ob == nil {
		codename, err := crypto.GenerateCodename()
		if err != nil {
			return nil, err
		}
		if p.ob, err = client.CreateOutbox(client.OutboxPath(p.dir), codename, 0, outboxKDF); err != nil {
			return nil, err
		}
	}
	it, err := client.Compose(ctx, cfg, tip, client.ComposeOptions{FrameSize: p.opts.FrameSize, Now: p.opts.Now})
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if err := p.ob.Add(it); err != nil {
		return nil, err
	}
	rep, err := client.SendOutbox(ctx, cfg, p.ob, client.SendOptions{NetDialContext: p.opts.NetDialContext, Now: p.opts.Now, Budget: 10 * time.Minute})
	if err == nil && len(rep.Sent) != 1 {
		err = fmt.Errorf("send: %d sent, %d dropped, %d held, want one sent", len(rep.Sent), len(rep.Dropped), len(rep.Held))
	}
	if err != nil {
		for _, left := range p.ob.Items {
			if rerr := p.ob.Remove(left.UploadID); rerr != nil {
				return nil, fmt.Errorf("%w; and the outbox: %w", err, rerr)
			}
		}
		return nil, err
	}
	return rep.Sent[0], nil
}
