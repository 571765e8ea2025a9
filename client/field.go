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
	// Warn, if set, is told when the stored seed is past its epochs: the
	// proofs of work will be redone, offline, before the item is sent.
	Warn func(string)
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
	if seed.CheckCurrent(opts.Now()) != nil && opts.Warn != nil {
		opts.Warn(fmt.Sprintf("the stored proof-of-work seed (epoch %d) is old: send will fetch the current one and redo the proof of work, offline, before sending", seed.Epoch))
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
	// Dropped are items the server can never accept: encrypted to a bundle
	// it no longer accepts, confirmed by a newer bundle verified against
	// the pinned newsroom key. They have left the outbox, and their tips
	// must be composed again.
	Dropped []DroppedItem
	// Held are items the server refused in a way that no resend fixes
	// (bad_ciphertext, too_large) or that could not be confirmed; they stay
	// in the outbox, since an unsigned refusal must not erase a tip.
	Held []DroppedItem
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

// DroppedItem is an outbox item the server refused.
type DroppedItem struct {
	BundleVersion int64
	Reason        error
}

// SendBudgetOptions tune SendOutbox.
type SendBudgetOptions struct {
	SendOptions
	// Budget is the most time spent connected, over every session (default
	// DefaultBudget). It is a hard stop: when it is spent the connection
	// closes, wherever the upload is, and the item resumes from the
	// server's offset next time. Work done offline between sessions
	// (proofs of work) does not count.
	Budget time.Duration
	// Item, if set, is called when an item starts transmitting, with its
	// place among the items this call handles (from 0) and their number.
	Item func(i, n int)
}

// ErrBudgetSpent: SendOutbox stopped because its time was up; what is
// left resumes next time.
var ErrBudgetSpent = errors.New("budget spent")

// sendState is what one SendOutbox carries from session to session.
type sendState struct {
	// fetch makes the next session start with a bundle request: the
	// stored bundle expired, or the server refused proofs or a bundle
	// version that only its current bundle and seed can settle.
	fetch bool
	// fetches counts the sessions that did, so a server that refuses
	// everything cannot keep the client fetching and computing.
	fetches int
	// renew is set when items need new proofs of work: they are computed
	// between sessions, with the radio off.
	renew *crypto.PoWSeed
	// staleBundle holds items refused with stale_bundle, to drop only if
	// a verified newer bundle confirms it.
	staleBundle map[[16]byte]bool
	// skip holds items not to send again in this call.
	skip map[[16]byte]bool
	// forceRenew holds items that need a new upload id and proofs of work
	// whatever their epoch: the server no longer holds their upload, or
	// refused their proofs.
	forceRenew map[[16]byte]bool
	total      int
}

// SendOutbox transmits the outbox's items, in order, until they are all
// acknowledged or the budget of connected time is spent. An item leaves
// the outbox only after its receipt verified against the bundle's log key
// and matched its ciphertext, or when a newer bundle verified against the
// pinned newsroom key confirms that the server can never accept it.
// Progress (which items were started) is saved in the outbox as it goes,
// so the next SendOutbox resumes where this one stopped. It reconnects
// after a dropped link while the budget lasts, computes any new proofs of
// work between connections, and does nothing once it returns. The error,
// if any, says why it stopped early; the report is valid either way.
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
	st := &sendState{staleBundle: map[[16]byte]bool{}, skip: map[[16]byte]bool{}, forceRenew: map[[16]byte]bool{}, total: len(ob.Items)}
	var stopErr error
	budgetSpent := false
	for rep.Sessions < maxSessions && ctx.Err() == nil {
		if st.renew != nil {
			if err := renewStale(ctx, ob, st.renew, st.forceRenew); err != nil {
				return rep, err
			}
			st.renew = nil
			clear(st.forceRenew)
		}
		if st.pending(ob) == 0 {
			break
		}
		left := opts.Budget - rep.Connected
		if left <= 0 {
			break
		}
		budget, cancel := context.WithTimeout(ctx, left)
		progress, err := sendSession(budget, dir, cfg, ob, opts, rep, st)
		spent := budget.Err() != nil && ctx.Err() == nil
		cancel()
		budgetSpent = budgetSpent || spent
		stopErr = err
		if err == nil && !spent {
			continue
		}
		if spent || (!progress && st.renew == nil) {
			break
		}
	}
	if st.pending(ob) > 0 && (budgetSpent || rep.Connected >= opts.Budget) && ctx.Err() == nil {
		stopErr = fmt.Errorf("the budget of %s is spent: %w", opts.Budget, ErrBudgetSpent)
	}
	return rep, stopErr
}

// pending counts the items this call may still send.
func (st *sendState) pending(ob *Outbox) int {
	n := 0
	for _, it := range ob.Items {
		if !st.skip[it.UploadID] {
			n++
		}
	}
	return n
}

// renewStale gives new proofs of work (and a new upload id) to every
// item whose proofs the server would refuse as stale under seed, and to
// those in force.
func renewStale(ctx context.Context, ob *Outbox, seed *crypto.PoWSeed, force map[[16]byte]bool) error {
	for _, it := range ob.Items {
		if force[it.UploadID] || !seed.Accepts(it.PoWEpoch) {
			if err := renewItem(ctx, it, seed); err != nil {
				return err
			}
			if err := ob.Update(it); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendSession runs one connection: it sends items until none is left, the
// budget ends or something closes the connection. progress reports
// whether anything moved (a frame acknowledged, an item sent or dropped),
// which is what allows another session.
func sendSession(ctx context.Context, dir string, cfg *Config, ob *Outbox, opts SendBudgetOptions, rep *SendReport, st *sendState) (progress bool, err error) {
	now := opts.Now()
	b, berr := cfg.storedBundle(now)
	if berr != nil && cfg.Bundle == "" {
		return false, berr
	}
	fetch := st.fetch || berr != nil || needsFreshSeed(cfg, b, ob, now)
	if fetch && st.fetches >= 2 {
		return false, errors.New("the server's bundle and seed do not settle what it refused; try again later")
	}
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
	if fetch {
		st.fetch = false
		st.fetches++
		nb, seed, err := l.fetchBundle(ctx, dir, cfg, now)
		if err != nil {
			return false, err
		}
		b = nb
		var drop []*OutboxItem
		for _, it := range ob.Items {
			if !st.staleBundle[it.UploadID] {
				continue
			}
			delete(st.staleBundle, it.UploadID)
			if b.Version > it.BundleVersion {
				// Confirmed by the newsroom's signature, not just the
				// server's word: the item can never be accepted.
				drop = append(drop, it)
				continue
			}
			st.skip[it.UploadID] = true
			rep.Held = append(rep.Held, DroppedItem{BundleVersion: it.BundleVersion,
				Reason: fmt.Errorf("the server refused bundle version %d, which is still the newest the newsroom signed", it.BundleVersion)})
		}
		for _, it := range drop {
			if err := ob.Remove(it.UploadID); err != nil {
				return true, err
			}
			rep.Dropped = append(rep.Dropped, DroppedItem{BundleVersion: it.BundleVersion,
				Reason: fmt.Errorf("encrypted to bundle version %d; the newsroom's bundle in force is version %d", it.BundleVersion, b.Version)})
			progress = true
		}
		for _, it := range ob.Items {
			if st.forceRenew[it.UploadID] || !seed.Accepts(it.PoWEpoch) {
				// Proofs of work are computed with the radio off: end
				// this session, compute, and reconnect.
				st.renew = seed
				return true, nil
			}
		}
	}
	l.onSeed = func(signed []byte) error { return l.checkSeed(dir, cfg, b, signed, now) }
	for {
		var it *OutboxItem
		for _, c := range ob.Items {
			if !st.skip[c.UploadID] {
				it = c
				break
			}
		}
		if it == nil {
			break
		}
		if opts.Item != nil {
			opts.Item(len(rep.Sent)+len(rep.Dropped)+len(rep.Held), st.total)
		}
		var acked int64 = -1
		if !it.Started {
			acked = 0
		}
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
			retry, herr := handleRefusal(ctx, cfg, b, ob, it, perr, now, st, rep)
			if herr != nil {
				return progress, herr
			}
			// Every refusal closes the connection. Another session follows
			// if the refusal changed something or frames moved before it.
			return progress || retry, perr
		}
		r, err := checkReceipt(receipt, b.Log, it.Ciphertext)
		if err != nil {
			// A receipt that does not verify is no progress: resending
			// would only make duplicates for whoever forges receipts.
			return false, err
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

// handleRefusal deals with an item the server refused. Refusals are not
// signed (a CDN in the middle can forge them), so none erases an item on
// its own: stale_bundle is settled by the next session's verified bundle;
// bad_ciphertext and too_large hold the item for this call; what the
// server no longer holds gets a fresh upload id and proofs of work; the
// rest resumes. retry says whether a new session right away can do
// better.
func handleRefusal(ctx context.Context, cfg *Config, b *crypto.Bundle, ob *Outbox, it *OutboxItem, perr *protocol.Error, now time.Time, st *sendState, rep *SendReport) (retry bool, err error) {
	switch perr.Code {
	case protocol.CodeStaleBundle:
		st.staleBundle[it.UploadID] = true
		st.fetch = true
		return true, nil
	case protocol.CodeBadCiphertext, protocol.CodeTooLarge:
		st.skip[it.UploadID] = true
		rep.Held = append(rep.Held, DroppedItem{BundleVersion: it.BundleVersion, Reason: perr})
		return true, nil
	case protocol.CodeStalePoW, protocol.CodeBadPoW:
		// The server's clock or seed disagrees with what is stored here:
		// fetch its seed, then renew (between sessions).
		st.forceRenew[it.UploadID] = true
		st.fetch = true
		return true, nil
	case protocol.CodeNotFound, protocol.CodeExpired, protocol.CodeReplayed, protocol.CodeUnauthorized, protocol.CodeBadHash:
		// The server does not hold this upload (never opened, expired,
		// committed but the receipt was lost) or will not finish it: start
		// anew under a new id, with the radio off. A duplicate tip costs
		// less than a lost one.
		seed, err := cfg.newestSeed(b.Log)
		if err != nil {
			return false, err
		}
		st.renew = seed
		st.forceRenew[it.UploadID] = true
		return true, nil
	case protocol.CodeConflict, protocol.CodeBadChecksum, protocol.CodeTooManyUploads:
		// The server keeps its offset: resume in a new session.
		return true, nil
	}
	// busy, timeout, shutting_down, internal…: stop; the item resumes
	// next time.
	return false, nil
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
