package client

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
)

// ComposeOptions tune Compose. The zero value is valid.
type ComposeOptions struct {
	// FrameSize is protocol.FrameSize (default) or
	// protocol.LowBandwidthFrameSz (--low-bandwidth).
	FrameSize int
	// Now is the clock for the bundle's expiry (default time.Now).
	Now func() time.Time
	// Warn, if set, is told when the stored seed is past its epochs: the
	// proofs of work will be redone, offline, before the item is sent.
	Warn func(string)
	// Room, if set, is asked whether the sealed tip's ciphertext of n
	// bytes fits where it goes (Outbox.Room), before the proofs of work
	// are computed; its error stops Compose.
	Room func(n int) error
	// Stage, if set, is told what Compose starts: "seal", then "proof of
	// work" (see Progress).
	Stage func(stage string)
	// Progress, if set, is called with the proofs of work done and their
	// number, from any goroutine.
	Progress func(done, total int)
	// Reply, if set, are the source's reply keys: the tip carries the
	// reply address of the bundle's key type (docs/replies.md).
	Reply *crypto.ReplyKeys
}

// Compose seals tip to the bundle stored by Init and computes its proofs
// of work with the newest stored seed, with no network: the returned item
// goes into the outbox. Attachments must already be scrubbed (Attach).
func Compose(ctx context.Context, cfg *Config, tip *crypto.Tip, opts ComposeOptions) (*OutboxItem, error) {
	if opts.FrameSize == 0 {
		opts.FrameSize = protocol.FrameSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b, err := cfg.storedBundle(opts.Now())
	if err != nil {
		return nil, err
	}
	seed, err := cfg.newestSeed(b.Log)
	if err != nil {
		return nil, err
	}
	if opts.Reply != nil {
		a, err := opts.Reply.Address(b.StanzaType())
		if err != nil {
			return nil, err
		}
		t := *tip
		t.Reply = a
		tip = &t
	}
	if seed.CheckCurrent(opts.Now()) != nil && opts.Warn != nil {
		opts.Warn(fmt.Sprintf("the stored proof-of-work seed (epoch %d) is old: send will fetch the current one and redo the proof of work, offline, before sending", seed.Epoch))
	}
	stage := func(s string) {
		if opts.Stage != nil {
			opts.Stage(s)
		}
	}
	recipients, err := b.Recipients()
	if err != nil {
		return nil, err
	}
	stage("seal")
	ct, err := crypto.Seal(tip, recipients, int64(opts.FrameSize))
	if err != nil {
		return nil, err
	}
	if opts.Room != nil {
		if err := opts.Room(len(ct)); err != nil {
			return nil, err
		}
	}
	stage("proof of work")
	it := &OutboxItem{BundleVersion: b.Version, FrameSize: opts.FrameSize, Ciphertext: ct, Day: DayOf(opts.Now())}
	if err := renewItem(ctx, it, seed, opts.Progress); err != nil {
		return nil, err
	}
	return it, nil
}

// renewItem gives an item a fresh upload id and resume secret and computes
// its proofs of work with seed: for a new item, and for one whose upload
// the server no longer has (expired, or whose proofs are spent or stale).
// The item changes only if everything succeeded.
func renewItem(ctx context.Context, it *OutboxItem, seed *crypto.PoWSeed, progress func(done, total int)) error {
	var id [16]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return err
	}
	pow, err := crypto.SolvePoWsProgress(ctx, seed.Params, seed.Seed, id, int64(len(it.Ciphertext)), progress)
	if err != nil {
		return fmt.Errorf("proof of work: %w", err)
	}
	pre, err := crypto.SolvePrePoW(ctx, seed.Seed, id, int64(len(it.Ciphertext)), pow)
	if err != nil {
		return err
	}
	it.UploadID, it.ResumeSecret, it.PoW, it.PoWEpoch, it.Started = id, secret, pow, seed.Epoch, false
	it.prePoW, it.hasPrePoW = pre, true
	return nil
}

// solvePrePoWs computes, with the radio off, the pre-proof of work of
// every item about to be sent anew that lacks one: the outbox stores the
// proofs, not their pre-proof (docs/outbox.md), which costs about 2^16
// SHA-256 evaluations an item, a tenth of a second on a phone. An item
// whose epoch's seed is not stored is left as it is: its proofs are stale
// and will be renewed.
func solvePrePoWs(ctx context.Context, cfg *Config, ob *Outbox, now time.Time) error {
	b, err := cfg.storedBundle(now)
	if err != nil {
		return nil // the session fetches a bundle, and renews what it must
	}
	seeds, err := cfg.seeds(b.Log)
	if err != nil {
		return err
	}
	for _, it := range ob.Items {
		if it.Started || it.hasPrePoW {
			continue
		}
		for _, seed := range seeds {
			if seed.Epoch != it.PoWEpoch {
				continue
			}
			pre, err := crypto.SolvePrePoW(ctx, seed.Seed, it.UploadID, int64(len(it.Ciphertext)), it.PoW)
			if err != nil {
				return err
			}
			it.prePoW, it.hasPrePoW = pre, true
		}
	}
	return nil
}
