package server

// Closing a receipts period early (docs/claims.md, "Period close";
// protocol.PathPeriodClose).
//
// A tip can be linked to a claim only once its period's receipts root is
// logged (its handle needs a proof). For a story that cannot wait, an
// editor logs a period event and asks the server to end the current
// period today and log its root at once. What keeps that sound is one
// lock (Server.periodMu) between the receipt day of each tip and the
// making of each period's tree:
//
//   - a source's commit takes the lock for reading from the moment its
//     tip gets a receipt day until the tip is durably stored
//     (holdReceiptDay, upload.go), and the day it gets is today, or the
//     day after the last stored period if that is later;
//   - storing a period (rootPeriod, receipts.go) takes it for writing, so
//     it waits for every tip already dated and builds its tree over them
//     all, and moves the first day a new tip may get past the period.
//
// So a tip that arrives after a close, on the same day, is receipted with
// the next day, and no tip ever lands in a closed period. The cost, which
// SECURITY.md states: the closed period's tree holds only the tips that
// arrived so far, a smaller anonymity set. periodclose_test.go proves
// these with real tips, days and receipts checks.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"
)

// holdReceiptDay returns the receipt day of a tip committed now and a
// release that must be called once the tip is stored (or not): until
// then no period is stored, so the tip's period cannot be closed without
// it. release may be called more than once.
func (s *Server) holdReceiptDay() (string, func()) {
	s.periodMu.RLock()
	day := crypto.Day(s.now())
	if s.receiptFloor > day {
		day = s.receiptFloor
	}
	var once sync.Once
	return day, func() { once.Do(s.periodMu.RUnlock) }
}

// loadReceiptFloor sets the first day a tip may be receipted with from
// the last stored period, at start.
func (s *Server) loadReceiptFloor(ctx context.Context) error {
	last, err := s.store.LastReceiptsPeriod(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.periodMu.Lock()
	s.receiptFloor = addDays(last.Last, 1)
	s.periodMu.Unlock()
	return nil
}

// periodPublic is the public part of every period event (docs/claims.md).
var periodPublic = []byte(`{"kind":"` + string(audit.KindPeriod) + `"}`)

// Refusals of period closes.
var errPeriodNotAClose = protocol.Errorf(protocol.CodeMalformed, "the revealed event is not a period event")

// servePeriodClose closes the current receipts period today and logs its
// root (protocol.PathPeriodClose), after the session's editor logged a
// period event, which the request reveals. It answers 200 PeriodClosed
// once the root is committed and pinned; a period already closed today is
// answered the same way.
func (s *Server) servePeriodClose(w http.ResponseWriter, r *http.Request) {
	editor, ok := s.editor(w, r)
	if !ok {
		return
	}
	b := readRequest(w, r, protocol.MaxRevealedRequest, errRevealedTooLarge)
	if b == nil {
		return
	}
	rv, err := protocol.ParseRevealedEvent(b)
	if err != nil {
		writeRefusal(w, clipMessage(asProtocolError(err)))
		return
	}
	// A period event's public part has one spelling; anything else is
	// another kind of event (whose public part may not even parse alone).
	if !bytes.Equal(rv.Public, periodPublic) {
		writeRefusal(w, errPeriodNotAClose)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	ev, _, perr := s.openRevealed(ctx, rv, editor)
	if perr != nil {
		writeRefusal(w, perr)
		return
	}
	if today := crypto.Day(s.now()); ev.Day != today {
		// A close acts on the period of its day: an old event must not
		// close a later period unseen in the log.
		writeRefusal(w, protocol.Errorf(protocol.CodeExpired, "the period event is of %s, not today (%s): log a new one", ev.Day, today))
		return
	}
	closed, err := s.closePeriod(ctx)
	if err != nil {
		writeRefusal(w, s.failed("close a receipts period", err))
		return
	}
	s.log.Info("receipts period closed early", attrEditor, editor, attrFirst, closed.First, attrLast, closed.Last)
	writeJSON(w, closed)
}

// closePeriod stores and logs the roots of every period up to the one
// that ends today, which it ends today (earlier ones, finished but not
// yet rooted for want of time to settle, are rooted as they are: the
// lock stands in for the settling). If the last stored period already
// ends today or later, it closes nothing and answers about that one.
func (s *Server) closePeriod(ctx context.Context) (*protocol.PeriodClosed, error) {
	s.receiptsMu.Lock()
	defer s.receiptsMu.Unlock()
	if err := s.resolvePendingPeriod(ctx); err != nil {
		return nil, err
	}
	next, err := s.nextPeriodStart(ctx)
	if err != nil {
		return nil, err
	}
	today := crypto.Day(s.now())
	for next <= today {
		p := audit.Period{First: next, Last: min(addDays(next, s.cfg.ReceiptsPeriodDays-1), today)}
		if err := s.rootPeriod(ctx, p); err != nil {
			return nil, err
		}
		next = addDays(p.Last, 1)
	}
	last, err := s.store.LastReceiptsPeriod(ctx)
	if err != nil {
		return nil, err
	}
	if last.LogIndex < 0 {
		return nil, errors.New("the closed period's root is not logged")
	}
	return &protocol.PeriodClosed{Receipts: last.LogIndex, First: last.First, Last: last.Last, Next: addDays(last.Last, 1)}, nil
}
