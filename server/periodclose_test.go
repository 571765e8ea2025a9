package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
)

// TestPeriodClose: an editor's close ends the current period today and
// logs its root at once, over the tips received so far; a tip that
// arrives after it, the same day, is receipted with the next day and
// lands in the next period; every editor's receipts check of both
// periods holds. A second close the same day closes nothing more.
func TestPeriodClose(t *testing.T) {
	r := newEditorsRun(t, nil)
	ctx := context.Background()
	today := r.today()
	before := []*crypto.Receipt{r.send(t, "before the close, one").Receipt, r.send(t, "before the close, two").Receipt}
	rootsBefore := len(r.roots(t))
	closed := r.closePeriod(1)
	if closed.Last != today || closed.First > today || closed.Next != addDays(today, 1) {
		t.Fatalf("PeriodClosed = %+v, want a period ending today %s, next %s", closed, today, addDays(today, 1))
	}
	roots := r.roots(t)
	if len(roots) != rootsBefore+1 || roots[len(roots)-1].index != closed.Receipts || roots[len(roots)-1].root.Period.Last != today {
		t.Fatalf("roots after the close = %+v, want one more, ending today, at %d", roots, closed.Receipts)
	}
	after := r.send(t, "after the close").Receipt
	if after.Day != addDays(today, 1) {
		t.Errorf("a tip after the close is receipted with %s, want %s", after.Day, addDays(today, 1))
	}
	for _, rc := range before {
		if rc.Day != today {
			t.Errorf("a tip before the close is receipted with %s, want %s", rc.Day, today)
		}
	}
	// The store's days are the receipts'.
	metas, err := r.store.ListTips(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	days := map[string]int{}
	for _, m := range metas {
		days[m.Day]++
	}
	if days[today] != 2 || days[addDays(today, 1)] != 1 {
		t.Errorf("stored tip days %v, want 2 today and 1 tomorrow", days)
	}

	// A second close today closes nothing more and answers the same.
	again := r.closePeriod(0)
	if *again != *closed || len(r.roots(t)) != len(roots) {
		t.Errorf("a second close today = %+v (%d roots), want %+v (%d roots)", again, len(r.roots(t)), closed, len(roots))
	}

	// Two days on, the purge roots tomorrow's period with the late tip.
	r.nextDays(2)
	r.tokens[2] = r.lr.login(t, r.editors[2])
	roots = r.roots(t)
	last := roots[len(roots)-1]
	if len(roots) < 2 || last.root.Period.First != addDays(today, 1) {
		t.Fatalf("roots two days on = %+v, want the period after the close", roots)
	}
	pulled := r.pulled(t, r.tokens[2])
	for _, ed := range r.editors {
		k, tree := r.period(t, roots[len(roots)-2], ed)
		if err := audit.CheckReceipts(k, roots[len(roots)-2].root, tree, pulled[today]); err != nil {
			t.Errorf("CheckReceipts(the closed period, as %s) = %v", ed.Label, err)
		}
		var me *audit.ReceiptsMismatchError
		if err := audit.CheckReceipts(k, roots[len(roots)-2].root, tree, append(slices.Clone(pulled[today]), after.SHA256)); !errors.As(err, &me) || len(me.Missing) != 1 {
			t.Errorf("CheckReceipts(the closed period with the late tip) = %v, want it missing: it is not in the closed period", err)
		}
		k, tree = r.period(t, last, ed)
		if err := audit.CheckReceipts(k, last.root, tree, pulled[addDays(today, 1)]); err != nil {
			t.Errorf("CheckReceipts(the next period, as %s) = %v", ed.Label, err)
		}
	}
	r.intact(t)
}

// TestPeriodCloseRefusals: a close needs a session, a period event of
// today signed by the session's editor, revealed as logged.
func TestPeriodCloseRefusals(t *testing.T) {
	r := newEditorsRun(t, nil)
	_, period := r.logBody(0, &audit.EventBody{Kind: audit.KindPeriod})
	good, _ := protocol.MarshalRevealedEvent(&period)
	_, note := r.logBody(0, &audit.EventBody{Kind: audit.KindNote, Tip: [16]byte{1}, Text: "not a close"})
	notAClose, _ := protocol.MarshalRevealedEvent(&note)
	altered := period
	altered.Salt[3] ^= 1
	badSalt, _ := protocol.MarshalRevealedEvent(&altered)
	beyond := period
	beyond.Index = 1 << 40
	farIndex, _ := protocol.MarshalRevealedEvent(&beyond)
	for _, tt := range []struct {
		name   string
		editor int
		body   []byte
		status int
		code   protocol.Code
	}{
		{"no session", -1, good, http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"another editor's event", 1, good, http.StatusForbidden, protocol.CodeUnauthorized},
		{"not JSON", 0, []byte("close"), http.StatusBadRequest, protocol.CodeMalformed},
		{"too large", 0, make([]byte, protocol.MaxRevealedRequest+1), http.StatusRequestEntityTooLarge, protocol.CodeTooLarge},
		{"a note, not a close", 0, notAClose, http.StatusBadRequest, protocol.CodeMalformed},
		{"a salt that does not open it", 0, badSalt, codeStatus(protocol.CodeTrailRefused), protocol.CodeTrailRefused},
		{"an index beyond the log", 0, farIndex, http.StatusConflict, protocol.CodeConflict},
	} {
		status, body := r.postJSON(tt.editor, protocol.PathPeriodClose, tt.body)
		if e := httpError(t, body); status != tt.status || e.Code != tt.code {
			t.Errorf("%s: %d %+v, want %d %s", tt.name, status, e, tt.status, tt.code)
		}
	}
	// Yesterday's period event does not close today's period.
	r.clock.advance(24 * time.Hour)
	r.tokens[0] = r.lr.login(t, r.editors[0])
	status, body := r.postJSON(0, protocol.PathPeriodClose, good)
	if e := httpError(t, body); status != http.StatusGone || e.Code != protocol.CodeExpired {
		t.Errorf("yesterday's period event: %d %+v, want 410 expired", status, e)
	}
}

// TestPeriodCloseWaitsForTips: a close that begins while a tip is being
// committed waits for it, and the tip, dated today, is in the closed
// period's tree: no tip ever lands in a closed period. The tip is held in
// its commit (testOnlyBeforeStore) until the close has reached the
// period lock (testOnlyBeforePeriodLock).
func TestPeriodCloseWaitsForTips(t *testing.T) {
	var beforeStore, beforeLock atomic.Pointer[func()]
	r := newEditorsRun(t, func(s *Server) {
		s.testOnlyBeforeStore = func() {
			if f := beforeStore.Load(); f != nil {
				(*f)()
			}
		}
		s.testOnlyBeforePeriodLock = func() {
			if f := beforeLock.Load(); f != nil {
				(*f)()
			}
		}
	})
	today := r.today()
	_, period := r.logBody(0, &audit.EventBody{Kind: audit.KindPeriod})
	req, _ := protocol.MarshalRevealedEvent(&period)
	locking := make(chan struct{})
	closed := make(chan *protocol.PeriodClosed, 1)
	lockHook := func() { close(locking) }
	beforeLock.Store(&lockHook)
	var once atomic.Bool
	storeHook := func() {
		if !once.CompareAndSwap(false, true) {
			return
		}
		// The tip has its receipt day; start the close and let the tip
		// go on only once the close is at the lock.
		go func() {
			status, body := r.postJSON(0, protocol.PathPeriodClose, req)
			if status != http.StatusOK {
				t.Errorf("POST close = %d %s", status, body)
				closed <- nil
				return
			}
			var pc protocol.PeriodClosed
			if err := protocol.DecodeJSON(bytes.NewReader(body), 1<<10, &pc); err != nil {
				t.Error(err)
			}
			closed <- &pc
		}()
		<-locking
	}
	beforeStore.Store(&storeHook)
	held := r.send(t, "committed while the period closes").Receipt
	pc := <-closed
	beforeStore.Store(nil)
	beforeLock.Store(nil)
	if pc == nil {
		t.FailNow()
	}
	if held.Day != today {
		t.Fatalf("the held tip is receipted with %s, want today %s", held.Day, today)
	}
	root := r.rootAt(t, pc.Receipts)
	k, tree := r.period(t, root, r.editors[0])
	if err := audit.CheckReceipts(k, root.root, tree, [][32]byte{held.SHA256}); err != nil {
		t.Errorf("CheckReceipts(the closed period, with the held tip) = %v: the tip missed its period", err)
	}
	if late := r.send(t, "after").Receipt; late.Day != addDays(today, 1) {
		t.Errorf("a tip after the close is receipted with %s, want %s", late.Day, addDays(today, 1))
	}
}
