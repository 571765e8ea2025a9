package server

// Receipts trees, on the server's side (docs/audit.md, "Receipts tree";
// AUDIT.md, "The receipts tree").
//
//   - Periods are Config.ReceiptsPeriodDays long and follow each other
//     without gap or overlap. The first begins on the day this server
//     first looked for finished periods (its first purge, which runs as
//     Serve starts), or on the receipt day of the earliest stored tip if
//     that is earlier (a server upgraded with tips); that day is kept in
//     the settings (receiptsStartSetting). Each next period begins the day
//     after the last one the log or the store holds, so changing the
//     period length takes effect at the next period.
//   - A period is finished once the clock, less receiptsSettle, is past
//     its last day (UTC): a tip whose receipt day was set before midnight
//     commits within CommitTimeout, so its period's tree sees it.
//   - For each finished period, in order, purgeTips draws a random period
//     key k, builds the tree over the ciphertext hashes of the period's
//     tips still stored (padded with dummies to ReceiptsTreeSize), seals k
//     to the editors of the bundle in force, signs the root with the log
//     key, and stores all but k in one transaction; k is then dropped.
//     Then it appends the root to the log (appendLog) and records its
//     index. The store and the log cannot share a transaction (appendLog
//     commits through the log's committer), so a period is first stored
//     pending: a crash or refusal between the two is resolved at the next
//     purge, which looks for the stored root among the entries appended
//     since (found: it records the index; not found: it appends it then).
//     A root is therefore logged once, and never without its leaves.
//   - A tip's ciphertext is deleted only once its period's root is
//     published (a deletion before waits: tipdelete.go), so every tip that
//     ever got a receipt is a leaf of its period's tree.
//
// receipts_test.go proves these with real keys, files and sockets.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"strconv"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"
)

const (
	// receiptsStartSetting holds the first day of the first period.
	receiptsStartSetting = "receipts_start"
	// maxPeriodsPerPurge caps the roots one purge logs (a server upgraded
	// with a year of tips catches up over a few purges).
	maxPeriodsPerPurge = 400
	// purgeDeleteBatch is how many rejected tips one delete takes.
	purgeDeleteBatch = 256
	// receiptsScanBatch is how many entries one read takes when the purge
	// looks through the log.
	receiptsScanBatch = 256
	// receiptsSettleSlack is added to CommitTimeout in receiptsSettle.
	receiptsSettleSlack = time.Minute
)

// Log attribute keys.
const (
	attrFirst = "first"
	attrLast  = "last"
	attrIndex = "index"
)

// fillReceiptsConfig sets the receipts settings' defaults (a period of a
// day, trees of audit.DefaultReceiptsTreeSize leaves; RejectedRetention
// stays 0: never) and checks them. Config.fill calls it.
func fillReceiptsConfig(c *Config) error {
	if c.ReceiptsPeriodDays == 0 {
		c.ReceiptsPeriodDays = 1
	}
	if c.ReceiptsTreeSize == 0 {
		c.ReceiptsTreeSize = audit.DefaultReceiptsTreeSize
	}
	if c.ReceiptsPeriodDays < 1 || c.ReceiptsPeriodDays > audit.MaxPeriodDays {
		return fmt.Errorf("receipts period of %d days, want 1 to %d", c.ReceiptsPeriodDays, audit.MaxPeriodDays)
	}
	if c.ReceiptsTreeSize < 1 || c.ReceiptsTreeSize > audit.MaxReceiptsTreeSize || bits.OnesCount64(uint64(c.ReceiptsTreeSize)) != 1 {
		return fmt.Errorf("receipts tree size %d is not a power of two from 1 to %d", c.ReceiptsTreeSize, audit.MaxReceiptsTreeSize)
	}
	if c.RejectedRetention < 0 {
		return fmt.Errorf("rejected retention %s is negative (0 keeps rejected tips until an editor deletes them)", c.RejectedRetention)
	}
	return nil
}

// registerReceiptRoutes serves the receipts trees and the editors' tip
// deletion and marks (protocol/receipts.go; tipdelete.go).
func (s *Server) registerReceiptRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+protocol.PathReceipts+"{index}", s.serveReceipts)
	mux.HandleFunc("POST "+protocol.PathTips+"/{id}"+protocol.PathTipDeleteSuffix, s.serveTipDelete)
	mux.HandleFunc("POST "+protocol.PathTips+"/{id}"+protocol.PathTipMarkSuffix, s.serveTipMark)
}

// purgeTips logs the receipts roots of finished periods and deletes the
// ciphertext of rejected tips past the retention. Its logs carry counts
// and days, never a tip id.
func (s *Server) purgeTips(ctx context.Context) {
	if s.elog() == nil {
		return
	}
	s.receiptsMu.Lock()
	defer s.receiptsMu.Unlock()
	// A purge cut short by shutdown is not an error: the next start
	// purges again (the dev script checks a clean shutdown logs none).
	if err := s.logReceiptsRoots(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("log receipts roots", attrErr, err)
	}
	if ctx.Err() != nil {
		return
	}
	s.purgeDeleted(ctx)
	if s.cfg.RejectedRetention > 0 {
		s.purgeRejected(ctx)
	}
}

// purgeDeleted deletes the tips editors deleted before their period's
// receipts root was logged, once it is.
func (s *Server) purgeDeleted(ctx context.Context) {
	head := s.elog().head.Load()
	if head == nil {
		return
	}
	n := s.deleteMarked(ctx, func() ([][16]byte, error) {
		return s.store.PendingDeletions(ctx, head.tree.N, purgeDeleteBatch)
	})
	if n > 0 {
		s.log.Info("deleted tips editors deleted before their receipts root", attrCount, n)
	}
}

// deleteMarked deletes, in batches, the tips list returns, until it
// returns fewer than a batch, and returns how many it deleted.
func (s *Server) deleteMarked(ctx context.Context, list func() ([][16]byte, error)) int64 {
	var total int64
	for {
		ids, err := list()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("list tips to delete", attrErr, err)
			}
			return total
		}
		if len(ids) == 0 {
			return total
		}
		n, err := s.store.DeleteTips(ctx, ids)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("delete tips", attrCount, n, attrErr, err)
			}
			return total
		}
		if len(ids) < purgeDeleteBatch {
			return total
		}
	}
}

// receiptsSettle is how long after a period's last day ends its root is
// made: a tip's receipt day is set before its commit, which takes at most
// CommitTimeout.
func (s *Server) receiptsSettle() time.Duration { return s.cfg.CommitTimeout + receiptsSettleSlack }

// addDays returns day plus n days. day is a valid YYYY-MM-DD.
func addDays(day string, n int) string {
	t, err := time.Parse(crypto.DateLayout, day)
	if err != nil {
		panic(fmt.Sprintf("addDays(%q): %v", day, err))
	}
	return crypto.Day(t.AddDate(0, 0, n))
}

// logReceiptsRoots logs the root of every finished period not yet logged,
// in order, up to maxPeriodsPerPurge. The caller holds receiptsLock.
func (s *Server) logReceiptsRoots(ctx context.Context) error {
	if err := s.resolvePendingPeriod(ctx); err != nil {
		return err
	}
	next, err := s.nextPeriodStart(ctx)
	if err != nil {
		return err
	}
	done := crypto.Day(s.now().Add(-s.receiptsSettle()))
	logged := 0
	for range maxPeriodsPerPurge {
		p := audit.Period{First: next, Last: addDays(next, s.cfg.ReceiptsPeriodDays-1)}
		if p.Last >= done {
			break
		}
		if err := s.rootPeriod(ctx, p); err != nil {
			return fmt.Errorf("period %s to %s: %w", p.First, p.Last, err)
		}
		logged++
		next = addDays(p.Last, 1)
	}
	if logged > 0 {
		s.log.Info("receipts roots logged", attrCount, logged, attrLast, addDays(next, -1))
	}
	return nil
}

// nextPeriodStart returns the first day of the next period: the day after
// the last period the store or the log holds, or the start day.
func (s *Server) nextPeriodStart(ctx context.Context) (string, error) {
	var lastDay string
	var from int64
	last, err := s.store.LastReceiptsPeriod(ctx)
	switch {
	case err == nil:
		lastDay, from = last.Last, last.LogIndex+1
	case !errors.Is(err, storage.ErrNotFound):
		return "", err
	}
	// A root in the log that the store does not hold (a database restored
	// from a copy older than the log recovered into it): its leaves are
	// lost, but the next period must still begin after it, or the log
	// would hold two roots for one day.
	foreign, foreignLast, err := s.receiptsRootsSince(ctx, from)
	if err != nil {
		return "", err
	}
	if foreign > 0 {
		s.log.Warn("receipts roots in the log without their leaves in the database; editors' receipts checks of those periods will fail", attrCount, foreign, attrLast, foreignLast)
		lastDay = max(lastDay, foreignLast)
	}
	if lastDay != "" {
		return addDays(lastDay, 1), nil
	}
	start, err := s.store.Setting(ctx, receiptsStartSetting)
	if err == nil {
		if _, err := time.Parse(crypto.DateLayout, start); err != nil {
			return "", fmt.Errorf("setting %s: %q is not a day", receiptsStartSetting, clipString(start))
		}
		return start, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	start = crypto.Day(s.now())
	if first, err := s.store.EarliestTipDay(ctx); err == nil {
		if _, err := time.Parse(crypto.DateLayout, first); err != nil {
			return "", fmt.Errorf("earliest tip day %q is not a day", clipString(first))
		}
		start = min(start, first)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	if err := s.store.SetSettingOnce(ctx, receiptsStartSetting, start); err != nil {
		return "", err
	}
	s.log.Info("receipts periods begin", attrFirst, start)
	return start, nil
}

// receiptsRootsSince returns how many receipts roots the log holds from
// index from on, and the last day of the latest.
func (s *Server) receiptsRootsSince(ctx context.Context, from int64) (int, string, error) {
	size, err := s.store.LogSize(ctx)
	if err != nil {
		return 0, "", err
	}
	n, last := 0, ""
	for start := from; start < size; start += receiptsScanBatch {
		entries, err := s.store.ReadEntries(ctx, start, min(size, start+receiptsScanBatch))
		if err != nil {
			return 0, "", err
		}
		for i, e := range entries {
			if !bytes.HasPrefix(e, []byte(audit.ReceiptsHeader+"\n")) {
				continue
			}
			root, err := audit.OpenReceiptsRoot(e, s.logKey.Verifier)
			if err != nil {
				return 0, "", fmt.Errorf("receipts root at log index %d: %w", start+int64(i), err)
			}
			n, last = n+1, max(last, root.Period.Last)
		}
	}
	return n, last, nil
}

// rootPeriod builds, stores and logs the root of period p.
func (s *Server) rootPeriod(ctx context.Context, p audit.Period) error {
	logFrom, err := s.store.LogSize(ctx)
	if err != nil {
		return err
	}
	bundle := s.bundle.Load()
	// Under the period lock: every tip dated in p is stored before its
	// tree is made, and none is dated in p after (periodclose.go).
	if s.testOnlyBeforePeriodLock != nil {
		s.testOnlyBeforePeriodLock()
	}
	s.periodMu.Lock()
	err = s.store.PutReceiptsPeriod(ctx, p.First, p.Last, logFrom, func(tips [][32]byte) ([]byte, []byte, []byte, error) {
		return buildPeriod(p, tips, s.cfg.ReceiptsTreeSize, bundle, s.logKey)
	})
	if err == nil {
		s.receiptFloor = max(s.receiptFloor, addDays(p.Last, 1))
	}
	s.periodMu.Unlock()
	if err != nil {
		return err
	}
	return s.resolvePendingPeriod(ctx)
}

// buildPeriod makes a period's tree with a fresh key, and returns its
// signed root, the key sealed to bundle's editors, and its leaves. The
// key is not kept: once this returns, only the editors can recompute a
// leaf.
func buildPeriod(p audit.Period, tips [][32]byte, size int64, bundle *crypto.Bundle, logKey *crypto.SignerKey) (entry, sealed, leaves []byte, err error) {
	k, err := audit.GeneratePeriodKey()
	if err != nil {
		return nil, nil, nil, err
	}
	// Best effort: the copies audit's calls take are gone when they return.
	defer clear(k[:])
	tree, err := audit.BuildReceiptsTree(k, tips, size)
	if err != nil {
		return nil, nil, nil, err
	}
	if sealed, err = audit.SealPeriodKey(k, p, bundle); err != nil {
		return nil, nil, nil, err
	}
	root := &audit.ReceiptsRoot{Period: p, Size: tree.Size(), Root: tree.Root(), Key: sha256.Sum256(sealed)}
	if entry, err = audit.SignReceiptsRoot(root, logKey.Signer); err != nil {
		return nil, nil, nil, err
	}
	leaves = make([]byte, 0, 32*tree.Size())
	for _, l := range tree.Leaves() {
		leaves = append(leaves, l[:]...)
	}
	return entry, sealed, leaves, nil
}

// resolvePendingPeriod finishes a stored period whose root is not known
// to be logged: it finds the root among the entries appended since the
// period was stored, or appends it, and records its index.
func (s *Server) resolvePendingPeriod(ctx context.Context) error {
	p, err := s.store.PendingReceiptsPeriod(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	index, err := s.findEntry(ctx, p.LogFrom, p.Entry)
	if err != nil {
		return err
	}
	if index < 0 {
		if index, _, err = s.appendLog(ctx, p.Entry); err != nil {
			return fmt.Errorf("period %s to %s stored, root not logged yet (the next purge retries): %w", p.First, p.Last, err)
		}
	} else {
		s.log.Warn("receipts root found in the log for a pending period", attrFirst, p.First, attrIndex, index)
	}
	if err := s.store.SetReceiptsIndex(ctx, p.First, index); err != nil {
		return err
	}
	return nil
}

// findEntry returns the index of entry in the log from index from on, or
// -1.
func (s *Server) findEntry(ctx context.Context, from int64, entry []byte) (int64, error) {
	size, err := s.store.LogSize(ctx)
	if err != nil {
		return 0, err
	}
	for start := from; start < size; start += receiptsScanBatch {
		entries, err := s.store.ReadEntries(ctx, start, min(size, start+receiptsScanBatch))
		if err != nil {
			return 0, err
		}
		for i, e := range entries {
			if bytes.Equal(e, entry) {
				return start + int64(i), nil
			}
		}
	}
	return -1, nil
}

// purgeRejected deletes the tips marked rejected for longer than
// RejectedRetention whose period's root is published.
func (s *Server) purgeRejected(ctx context.Context) {
	head := s.elog().head.Load()
	if head == nil {
		return
	}
	// A tip marked on day D has been marked longer than the retention R
	// once D < the day of now − R.
	before := crypto.Day(s.now().Add(-s.cfg.RejectedRetention))
	total := s.deleteMarked(ctx, func() ([][16]byte, error) {
		return s.store.RejectedTipsBefore(ctx, before, head.tree.N, purgeDeleteBatch)
	})
	if total > 0 {
		s.log.Info("deleted rejected tips past the retention", attrCount, total)
	}
}

// serveReceipts serves a published period's sealed key and leaves
// (protocol.ReceiptsPeriod) by the log index of its root.
func (s *Server) serveReceipts(w http.ResponseWriter, r *http.Request) {
	index, err := parseIndex(r.PathValue("index"))
	if err != nil {
		writeRefusal(w, protocol.Errorf(protocol.CodeMalformed, "not an entry index"))
		return
	}
	head := s.elog().head.Load()
	var p *storage.ReceiptsPeriod
	if head != nil && index < head.tree.N {
		p, err = s.store.ReceiptsPeriodAt(r.Context(), index)
	} else {
		err = storage.ErrNotFound
	}
	if errors.Is(err, storage.ErrNotFound) {
		writeRefusal(w, protocol.Errorf(protocol.CodeNotFound, "no receipts root at that index"))
		return
	}
	if err != nil {
		writeRefusal(w, s.failed("read receipts period", err))
		return
	}
	b, err := jsonMarshal(&protocol.ReceiptsPeriod{SealedKey: p.SealedKey, Leaves: p.Leaves})
	if err != nil {
		writeRefusal(w, s.failed("encode receipts period", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", immutable)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}
