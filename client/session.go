package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
)

// DefaultBudget is how long SendOutbox stays connected unless told
// otherwise: FIELD.md's target of 30 s per session (a direction finder
// needs about a minute).
const DefaultBudget = 30 * time.Second

// maxSessions bounds the connections one SendOutbox makes: it reconnects
// after a dropped link or a refusal that closed the connection, never in
// the background, and never after a connection that made no progress.
const maxSessions = 32

// ErrBudgetSpent: SendOutbox stopped because its time was up; what is
// left resumes next time.
var ErrBudgetSpent = errors.New("budget spent")

// SendOptions tune SendOutbox. The zero value is valid.
type SendOptions struct {
	// Budget is the most time spent connected, over every session (default
	// DefaultBudget). It is a hard stop: when it is spent the connection
	// closes, wherever the upload is, and the item resumes from the
	// server's offset next time. Work done offline between sessions
	// (proofs of work) does not count.
	Budget time.Duration
	// NetDialContext, if set, dials the TCP connection instead of the
	// config's proxy or a direct dial (a test relay).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock for bundle expiry and seed epochs (default time.Now).
	Now func() time.Time
	// Item, if set, is called when an item starts transmitting, with its
	// place among the items this call handles (from 0) and their number.
	Item func(i, n int)
	// Progress, if set, is called with bytes acknowledged and the total of
	// the upload in progress.
	Progress func(acked, total int64)
	// Renew, if set, is called before proofs of work are computed again
	// for an item, between sessions with the radio off; RenewProgress, if
	// set, with the proofs done and their number, from any goroutine.
	Renew         func()
	RenewProgress func(done, total int)
}

// Result is an item the server acknowledged with a verified receipt.
type Result struct {
	// Receipt is the verified receipt; ReceiptNote its signed text.
	Receipt     *crypto.Receipt
	ReceiptNote []byte
	// BundleVersion is the version of the bundle the tip was sealed to.
	BundleVersion int64
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
	// (bad_ciphertext, too_large: marked refused in the outbox, in this
	// call or an earlier one, and not sent again) or that could not be
	// confirmed; they stay in the outbox, since an unsigned refusal must
	// not erase a tip.
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
	// UploadID identifies the item (OutboxItem.UploadID); Day is the day
	// it was composed (OutboxItem.Day).
	UploadID      [16]byte
	Day           int
	BundleVersion int64
	// Code is the server's refusal code, if the refusal was one.
	Code   protocol.Code
	Reason error
}

// sender is one SendOutbox: the outbox it empties, and what it carries
// from session to session.
type sender struct {
	cfg  *Config
	ob   *Outbox
	opts SendOptions
	rep  *SendReport
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
	// total is the number of items the call started with, less those
	// refused before, which are in rep.Held from the start: earlier of
	// them.
	total, earlier int
}

// SendOutbox transmits the outbox's items, in order, until they are all
// acknowledged or the budget of connected time is spent. An item leaves
// the outbox only after its receipt verified against the bundle's log key
// and matched its ciphertext, or when a newer bundle verified against the
// pinned newsroom key confirms that the server can never accept it.
// Progress (which items were started) is saved in the outbox as it goes,
// so the next SendOutbox resumes where this one stopped. It reconnects
// after a dropped link while the budget lasts, computes any new proofs of
// work between connections, and does nothing once it returns. A bundle or
// seed it learns is saved in cfg's dir. The error, if any, says why it
// stopped early; the report is valid either way.
func SendOutbox(ctx context.Context, cfg *Config, ob *Outbox, opts SendOptions) (*SendReport, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	s := &sender{cfg: cfg, ob: ob, opts: opts, rep: &SendReport{},
		staleBundle: map[[16]byte]bool{}, skip: map[[16]byte]bool{}, forceRenew: map[[16]byte]bool{}}
	for _, it := range ob.Items {
		if it.Refused != "" {
			// Refused for good in an earlier call: sending it again
			// would spend radio time on a known refusal.
			s.skip[it.UploadID] = true
			s.rep.Held = append(s.rep.Held, DroppedItem{UploadID: it.UploadID, Day: it.Day, BundleVersion: it.BundleVersion, Code: it.Refused,
				Reason: fmt.Errorf("the server refused it before (%s)", it.Refused)})
			s.earlier++
			continue
		}
		s.total++
	}
	err := s.run(ctx)
	s.rep.Remaining = len(ob.Items)
	for _, it := range ob.Items {
		s.rep.RemainingBytes += int64(len(it.Ciphertext))
	}
	return s.rep, err
}

// run makes sessions until the outbox is empty, the budget is spent or a
// session ends without progress.
func (s *sender) run(ctx context.Context) error {
	var stopErr error
	budgetSpent := false
	for s.rep.Sessions < maxSessions && ctx.Err() == nil {
		if s.renew != nil {
			if err := s.renewStale(ctx); err != nil {
				return err
			}
		}
		if s.pending() == 0 {
			break
		}
		left := s.opts.Budget - s.rep.Connected
		if left <= 0 {
			break
		}
		if err := solvePrePoWs(ctx, s.cfg, s.ob, s.opts.Now()); err != nil {
			return err
		}
		budget, cancel := context.WithTimeout(ctx, left)
		progress, err := s.session(budget)
		spent := budget.Err() != nil && ctx.Err() == nil
		cancel()
		budgetSpent = budgetSpent || spent
		stopErr = err
		if err == nil && !spent {
			continue
		}
		if spent || (!progress && s.renew == nil) {
			break
		}
	}
	if s.pending() > 0 && (budgetSpent || s.rep.Connected >= s.opts.Budget) && ctx.Err() == nil {
		stopErr = fmt.Errorf("the budget of %s is spent: %w", s.opts.Budget, ErrBudgetSpent)
	}
	return stopErr
}

// pending counts the items this call may still send.
func (s *sender) pending() int {
	n := 0
	for _, it := range s.ob.Items {
		if !s.skip[it.UploadID] {
			n++
		}
	}
	return n
}

// renewStale gives new proofs of work (and a new upload id) under s.renew
// to every item whose proofs the server would refuse as stale, and to
// those in forceRenew.
func (s *sender) renewStale(ctx context.Context) error {
	for _, it := range s.ob.Items {
		if s.forceRenew[it.UploadID] || !s.renew.Accepts(it.PoWEpoch) {
			if s.opts.Renew != nil {
				s.opts.Renew()
			}
			if err := renewItem(ctx, it, s.renew, s.opts.RenewProgress); err != nil {
				return err
			}
			if err := s.ob.Update(it); err != nil {
				return err
			}
		}
	}
	s.renew = nil
	clear(s.forceRenew)
	return nil
}

// session runs one connection: it sends items until none is left, the
// budget ends or something closes the connection. progress reports
// whether anything moved (a frame acknowledged, an item sent or dropped),
// which is what allows another session.
func (s *sender) session(ctx context.Context) (progress bool, err error) {
	now := s.opts.Now()
	b, berr := s.cfg.storedBundle(now)
	if berr != nil && s.cfg.Bundle == "" {
		return false, berr
	}
	fetch := s.fetch || berr != nil || needsFreshSeed(s.cfg, b, s.ob, now)
	if fetch && s.fetches >= 2 {
		return false, errors.New("the server's bundle and seed do not settle what it refused; try again later")
	}
	start := time.Now()
	s.rep.Sessions++
	l, err := dialServer(ctx, s.cfg, s.opts.NetDialContext)
	if err != nil {
		s.rep.Connected += time.Since(start)
		return false, err
	}
	defer func() {
		s.rep.BytesSent += l.sent
		l.close()
		s.rep.Connected += time.Since(start)
	}()
	if fetch {
		var stop bool
		if b, stop, progress, err = s.refetch(ctx, l, now); err != nil || stop {
			return progress, err
		}
	}
	l.onSeed = func(signed []byte) error { return checkSeed(s.cfg, b, signed, now) }
	for {
		it := s.next()
		if it == nil {
			break
		}
		moved, err := s.transmit(ctx, l, b, it, now)
		if errors.Is(err, errReceiptRefused) {
			// A receipt that does not verify is no progress, whatever
			// moved before: resending would only make duplicates for
			// whoever forges receipts.
			return false, err
		}
		progress = progress || moved
		if err != nil {
			return progress, err
		}
	}
	l.closeCleanly()
	return progress, nil
}

// next returns the first item this call may still send, or nil.
func (s *sender) next() *OutboxItem {
	for _, it := range s.ob.Items {
		if !s.skip[it.UploadID] {
			return it
		}
	}
	return nil
}

// refetch asks for the bundle in force and the current seed on l, saves
// them, and settles what they settle: items refused as stale_bundle leave
// the outbox if the verified bundle is newer than theirs, or are held. It
// returns the bundle, and stop when the session must end so that proofs
// of work are computed with the radio off.
func (s *sender) refetch(ctx context.Context, l *link, now time.Time) (b *crypto.Bundle, stop, progress bool, err error) {
	s.fetch = false
	s.fetches++
	b, seed, err := l.fetchBundle(ctx, s.cfg, now)
	if err != nil {
		return nil, false, false, err
	}
	if err := s.cfg.save(); err != nil {
		return nil, false, false, err
	}
	var drop []*OutboxItem
	for _, it := range s.ob.Items {
		if !s.staleBundle[it.UploadID] {
			continue
		}
		delete(s.staleBundle, it.UploadID)
		if b.Version > it.BundleVersion {
			// Confirmed by the newsroom's signature, not just the
			// server's word: the item can never be accepted.
			drop = append(drop, it)
			continue
		}
		s.skip[it.UploadID] = true
		s.rep.Held = append(s.rep.Held, DroppedItem{UploadID: it.UploadID, Day: it.Day, BundleVersion: it.BundleVersion, Code: protocol.CodeStaleBundle,
			Reason: fmt.Errorf("the server refused bundle version %d, which is still the newest the newsroom signed", it.BundleVersion)})
	}
	for _, it := range drop {
		if err := s.ob.Remove(it.UploadID); err != nil {
			return nil, false, true, err
		}
		s.rep.Dropped = append(s.rep.Dropped, DroppedItem{UploadID: it.UploadID, Day: it.Day, BundleVersion: it.BundleVersion, Code: protocol.CodeStaleBundle,
			Reason: fmt.Errorf("encrypted to bundle version %d; the newsroom's bundle in force is version %d", it.BundleVersion, b.Version)})
		progress = true
	}
	for _, it := range s.ob.Items {
		if s.forceRenew[it.UploadID] || !seed.Accepts(it.PoWEpoch) {
			// Proofs of work are computed with the radio off: end
			// this session, compute, and reconnect.
			s.renew = seed
			return b, true, true, nil
		}
	}
	return b, false, progress, nil
}

// transmit sends one item on l and settles its outcome: a verified
// receipt removes it from the outbox; a refusal is handled by refused and
// ends the session. moved reports progress (frames acknowledged, the item
// sent, or a refusal worth another session).
func (s *sender) transmit(ctx context.Context, l *link, b *crypto.Bundle, it *OutboxItem, now time.Time) (moved bool, err error) {
	if s.opts.Item != nil {
		s.opts.Item(len(s.rep.Sent)+len(s.rep.Dropped)+len(s.rep.Held)-s.earlier, s.total)
	}
	var acked int64 = -1
	if !it.Started {
		acked = 0
	}
	track := func(a, total int64) {
		if acked >= 0 && a > acked {
			moved = true
		}
		acked = a
		if s.opts.Progress != nil {
			s.opts.Progress(a, total)
		}
	}
	started := func() error {
		it.Started = true
		return s.ob.Update(it)
	}
	receipt, err := l.transmit(ctx, it, track, started)
	if err != nil {
		var perr *protocol.Error
		if !errors.As(err, &perr) {
			return moved, err
		}
		retry, herr := s.refused(b, it, perr)
		if herr != nil {
			return moved, herr
		}
		// Every refusal closes the connection. Another session follows
		// if the refusal changed something or frames moved before it.
		return moved || retry, perr
	}
	r, err := checkReceipt(receipt, b.Log, it.Ciphertext)
	if err != nil {
		return false, err
	}
	if err := s.ob.Remove(it.UploadID); err != nil {
		return true, err
	}
	s.rep.Sent = append(s.rep.Sent, &Result{Receipt: r, ReceiptNote: receipt, BundleVersion: it.BundleVersion})
	return true, nil
}

// refused deals with an item the server refused. Refusals are not signed
// (a CDN in the middle can forge them), so none erases an item on its
// own: stale_bundle is settled by the next session's verified bundle;
// bad_ciphertext and too_large hold the item for this call; what the
// server no longer holds gets a fresh upload id and proofs of work; the
// rest resumes. retry says whether a new session right away can do
// better.
func (s *sender) refused(b *crypto.Bundle, it *OutboxItem, perr *protocol.Error) (retry bool, err error) {
	switch perr.Code {
	case protocol.CodeStaleBundle:
		s.staleBundle[it.UploadID] = true
		s.fetch = true
		return true, nil
	case protocol.CodeBadCiphertext, protocol.CodeTooLarge:
		// Marked in the outbox, so that later calls do not send it
		// again and fieldtip outbox shows why it waits.
		s.skip[it.UploadID] = true
		it.Refused = perr.Code
		if err := s.ob.Update(it); err != nil {
			return false, err
		}
		s.rep.Held = append(s.rep.Held, DroppedItem{UploadID: it.UploadID, Day: it.Day, BundleVersion: it.BundleVersion, Code: perr.Code, Reason: perr})
		return true, nil
	case protocol.CodeStalePoW, protocol.CodeBadPoW:
		// The server's clock or seed disagrees with what is stored here:
		// fetch its seed, then renew (between sessions).
		s.forceRenew[it.UploadID] = true
		s.fetch = true
		return true, nil
	case protocol.CodeNotFound, protocol.CodeExpired, protocol.CodeReplayed, protocol.CodeUnauthorized, protocol.CodeBadHash:
		// The server does not hold this upload (never opened, expired,
		// committed but the receipt was lost) or will not finish it: start
		// anew under a new id, with the radio off. A duplicate tip costs
		// less than a lost one.
		seed, err := s.cfg.newestSeed(b.Log)
		if err != nil {
			return false, err
		}
		s.renew = seed
		s.forceRenew[it.UploadID] = true
		return true, nil
	case protocol.CodeConflict, protocol.CodeBadChecksum, protocol.CodeTooManyUploads:
		// The server keeps its offset: resume in a new session.
		return true, nil
	}
	// busy, timeout, shutting_down, internal…: stop; the item resumes
	// next time.
	return false, nil
}

// errReceiptRefused is wrapped by checkReceipt's errors.
var errReceiptRefused = errors.New("receipt refused")

// checkReceipt verifies a receipt against the log key and the ciphertext
// it must name.
func checkReceipt(receipt []byte, logKey string, ct []byte) (*crypto.Receipt, error) {
	r, err := crypto.OpenReceipt(receipt, logKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errReceiptRefused, err)
	}
	if r.SHA256 != sha256.Sum256(ct) || r.Length != int64(len(ct)) {
		return nil, fmt.Errorf("%w: it does not match the ciphertext sent", errReceiptRefused)
	}
	return r, nil
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
