package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
)

// OutboxFile is the name of the outbox container in the config dir.
const OutboxFile = "outbox"

// DefaultBudget is how long SendOutbox stays connected unless told
// otherwise: FIELD.md's target of 30 s per session (a direction finder
// needs about a minute).
const DefaultBudget = 30 * time.Second

// maxSessions bounds the connections one SendOutbox makes: it reconnects
// after a dropped link or a refusal that closed the connection, never in
// the background, and never after a connection that made no progress.
const maxSessions = 32

// ComposeOptions tune Compose. The zero value is valid.
type ComposeOptions struct {
	// FrameSize is protocol.FrameSize (default) or
	// protocol.LowBandwidthFrameSz (--low-bandwidth).
	FrameSize int
	// Now is the clock for the bundle's expiry (default time.Now).
	Now func() time.Time
}

// Compose seals tip to the bundle stored by Init/Fetch and computes its
// proofs of work with the newest stored seed, with no network: the
// returned item goes into the outbox. Attachments must already be
// scrubbed (Attach).
func Compose(ctx context.Context, dir string, tip *crypto.Tip, opts ComposeOptions) (*OutboxItem, error) {
	if opts.FrameSize == 0 {
		opts.FrameSize = protocol.FrameSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	b, err := cfg.storedBundle(opts.Now())
	if err != nil {
		return nil, err
	}
	seed, err := cfg.newestSeed(b.Log)
	if err != nil {
		return nil, err
	}
	return sealItem(ctx, b, seed, tip, opts.FrameSize)
}

// OutboxPath returns the outbox container's path in dir.
func OutboxPath(dir string) string { return filepath.Join(dir, OutboxFile) }

// OutboxExists reports whether dir has an outbox container.
func OutboxExists(dir string) (bool, error) {
	_, err := os.Stat(OutboxPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// SendReport is what SendOutbox did.
type SendReport struct {
	// Sent are the items the server acknowledged with a verified receipt,
	// in order; they have left the outbox.
	Sent []*Result
	// Dropped counts items the server can never accept (encrypted to a
	// bundle no longer accepted, or refused as damaged); they have left the
	// outbox, and their tips must be composed again.
	Dropped []DroppedItem
	// Remaining and RemainingBytes are what still waits in the outbox.
	Remaining      int
	RemainingBytes int64
	// BytesSent counts WebSocket payload bytes sent, over every session.
	BytesSent int64
	// Connected is the time spent connected, dial to close, over every
	// session.
	Connected time.Duration
	// Sessions counts the connections made.
	Sessions int
}

// DroppedItem is an outbox item the server refused for good.
type DroppedItem struct {
	BundleVersion int64
	Reason        error
}

// SendBudgetOptions tune SendOutbox.
type SendBudgetOptions struct {
	SendOptions
	// Budget is the most time spent connected (default DefaultBudget). It
	// is a hard stop: when it is spent the connection closes, wherever the
	// upload is, and the item resumes from the server's offset next time.
	Budget time.Duration
	// Item, if set, is called when an item starts transmitting, with its
	// place in the outbox (from 0) and the number waiting.
	Item func(i, n int)
}

// SendOutbox transmits the outbox's items, in order, until they are all
// acknowledged or the budget is spent. An item leaves the outbox only
// after its receipt verified against the bundle's log key and matched its
// ciphertext. Progress (which items were started) is saved in the outbox
// as it goes, so the next SendOutbox resumes where this one stopped. It
// reconnects after a dropped link while the budget lasts, and does nothing
// once it returns. The error, if any, says why it stopped early; the
// report is valid either way.
func SendOutbox(ctx context.Context, dir string, ob *Outbox, opts SendBudgetOptions) (*SendReport, error) {
	opts.fill()
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	rep := &SendReport{}
	defer func() {
		rep.Remaining = len(ob.Items)
		for _, it := range ob.Items {
			rep.RemainingBytes += int64(len(it.Ciphertext))
		}
	}()
	budget, cancel := context.WithTimeout(ctx, opts.Budget)
	defer cancel()
	var stopErr error
	st := &sendState{}
	for len(ob.Items) > 0 && rep.Sessions < maxSessions && budget.Err() == nil {
		progress, err := sendSession(budget, dir, cfg, ob, opts, rep, st)
		if err == nil {
			continue
		}
		stopErr = err
		if budget.Err() != nil || !progress {
			break
		}
	}
	if budget.Err() != nil && len(ob.Items) > 0 && ctx.Err() == nil {
		stopErr = fmt.Errorf("the budget of %s is spent: %w", opts.Budget, ErrBudgetSpent)
	}
	return rep, stopErr
}

// sendState is what one SendOutbox carries from session to session.
type sendState struct {
	// fetchSeed forces the next session to fetch the current seed first:
	// the server refused proofs of work the clock thought current.
	fetchSeed bool
	// seedFetches counts the sessions that did, so a server that refuses
	// every proof cannot keep the client computing.
	seedFetches int
}

// ErrBudgetSpent: SendOutbox stopped because its time was up; what is
// left resumes next time.
var ErrBudgetSpent = errors.New("budget spent")

// sendSession runs one connection: it sends items until the outbox is
// empty, the budget ends or something closes the connection. progress
// reports whether anything moved (a frame acknowledged, an item sent or
// dropped), which is what allows another session.
func sendSession(ctx context.Context, dir string, cfg *Config, ob *Outbox, opts SendBudgetOptions, rep *SendReport, st *sendState) (progress bool, err error) {
	now := opts.Now()
	start := time.Now()
	rep.Sessions++
	l, err := dialServer(ctx, cfg, opts.NetDialContext)
	if err != nil {
		rep.Connected += time.Since(start)
		return false, err
	}
	defer func() {
		rep.BytesSent += l.sent
		l.close()
		rep.Connected += time.Since(start)
	}()
	b, err := cfg.storedBundle(now)
	if err != nil {
		return false, err
	}
	l.onSeed = func(signed []byte) error { return l.checkSeed(dir, cfg, b, signed, now) }
	// Items whose proofs of work are older than the previous epoch would
	// be refused: fetch the current seed first (one round trip) and redo
	// their proofs. The heavy work is otherwise done at compose time.
	if st.fetchSeed || needsFreshSeed(cfg, b, ob, now) {
		st.fetchSeed = false
		st.seedFetches++
		nb, seed, err := l.fetchBundle(ctx, dir, cfg, now)
		if err != nil {
			return false, err
		}
		b = nb
		for _, it := range ob.Items {
			// Relative to the server's seed, not the clock: the server
			// accepts its current epoch and the one before.
			if it.PoWEpoch != seed.Epoch && it.PoWEpoch != seed.Epoch-1 {
				if err := renewItem(ctx, it, seed); err != nil {
					return false, err
				}
				if err := ob.Update(it); err != nil {
					return false, err
				}
			}
		}
	}
	for len(ob.Items) > 0 {
		it := ob.Items[0]
		if opts.Item != nil {
			opts.Item(len(rep.Sent)+len(rep.Dropped), len(ob.Items)+len(rep.Sent)+len(rep.Dropped))
		}
		var acked int64 = -1
		track := func(a, total int64) {
			if acked >= 0 && a > acked {
				progress = true
			}
			acked = a
			if opts.Progress != nil {
				opts.Progress(a, total)
			}
		}
		started := func() error {
			it.Started = true
			return ob.Update(it)
		}
		receipt, err := l.transmit(ctx, it, track, started)
		if err != nil {
			var perr *protocol.Error
			if !errors.As(err, &perr) {
				return progress, err
			}
			dropped, retry, herr := handleRefusal(ctx, cfg, b, ob, it, perr, now)
			if perr.Code == protocol.CodeStalePoW || perr.Code == protocol.CodeBadPoW {
				// Fetch the server's seed and renew the proofs, once.
				st.fetchSeed = st.seedFetches == 0
				retry = st.fetchSeed
			}
			if herr != nil {
				return progress, herr
			}
			if dropped {
				rep.Dropped = append(rep.Dropped, DroppedItem{BundleVersion: it.BundleVersion, Reason: perr})
			}
			// Every refusal closes the connection. Another session follows
			// if the refusal changed something (an item dropped or renewed)
			// or frames moved before it.
			return progress || retry, perr
		}
		r, err := checkReceipt(receipt, b.Log, it.Ciphertext)
		if err != nil {
			return progress, err
		}
		if err := ob.Remove(it.UploadID); err != nil {
			return true, err
		}
		progress = true
		rep.Sent = append(rep.Sent, &Result{Receipt: r, ReceiptNote: receipt, BundleVersion: it.BundleVersion, BytesSent: l.sent})
	}
	l.closeCleanly()
	return progress, nil
}

// handleRefusal deals with an item the server refused: it drops what can
// never be accepted, gives a fresh upload id and proofs of work to what
// the server no longer holds, and leaves the rest to resume. retry says
// whether a new session right away can do better.
func handleRefusal(ctx context.Context, cfg *Config, b *crypto.Bundle, ob *Outbox, it *OutboxItem, perr *protocol.Error, now time.Time) (dropped, retry bool, err error) {
	switch perr.Code {
	case protocol.CodeStaleBundle, protocol.CodeBadCiphertext, protocol.CodeTooLarge:
		// Encrypted to a bundle the server no longer accepts, or not
		// acceptable at all: no resend can succeed, and the plaintext is
		// gone (FIELD.md: ciphertext only on the phone).
		return true, true, ob.Remove(it.UploadID)
	case protocol.CodeNotFound, protocol.CodeExpired, protocol.CodeReplayed, protocol.CodeUnauthorized, protocol.CodeBadHash, protocol.CodeBadPoW:
		// The server does not hold this upload (never opened, expired,
		// committed but the receipt was lost) or will not finish it: start
		// anew under a new id. A duplicate tip costs less than a lost one.
		seed, err := cfg.newestSeed(b.Log)
		if err != nil {
			return false, false, err
		}
		if !seedCurrent(seed.Epoch, seed, now) {
			// The next session fetches a current seed first and renews
			// the item then (needsFreshSeed).
			return false, true, nil
		}
		if err := renewItem(ctx, it, seed); err != nil {
			return false, false, err
		}
		return false, true, ob.Update(it)
	case protocol.CodeConflict, protocol.CodeBadChecksum, protocol.CodeTooManyUploads:
		// The server keeps its offset: resume in a new session.
		return false, true, nil
	}
	// stale_pow (the server's clock or seed disagrees with the one stored
	// here: SendOutbox fetches its seed once), busy, timeout, shutting_down, internal…: stop;
	// the item resumes next time.
	return false, false, nil
}

// needsFreshSeed reports whether any item's proofs of work would be
// refused as stale by the clock, or no current seed is stored.
func needsFreshSeed(cfg *Config, b *crypto.Bundle, ob *Outbox, now time.Time) bool {
	seed, err := cfg.newestSeed(b.Log)
	if err != nil || seed.CheckCurrent(now) != nil {
		return true
	}
	for _, it := range ob.Items {
		if !seedCurrent(it.PoWEpoch, seed, now) {
			return true
		}
	}
	return false
}

// seedCurrent reports whether proofs of epoch are still accepted by the
// clock: the current or the previous epoch of seed's epoch length.
func seedCurrent(epoch int64, seed *crypto.PoWSeed, now time.Time) bool {
	cur := crypto.EpochAt(now, seed.EpochSeconds)
	return epoch == cur || epoch == cur-1
}
