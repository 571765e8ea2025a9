package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"golang.org/x/mod/sumdb/tlog"
)

// receiptsRun is a test server with the editorial log helpers of
// editorial_log_test.go pointed at it, and its log lines kept.
type receiptsRun struct {
	*testServer
	lr   *logRun
	logs *lockedBuffer
}

// newReceiptsRun starts a server with two classic editors, its clock at
// noon UTC (so a test moving it by whole days never lands near midnight),
// and runs its first receipts purge, which fixes the first period's day.
func newReceiptsRun(t *testing.T, config func(*Config)) *receiptsRun {
	t.Helper()
	logs := &lockedBuffer{}
	ts := newTestServer(t, serverOptions{editors: 2, config: config,
		logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	// Moving within the current UTC day crosses no proof-of-work epoch.
	now := ts.clock.now().UTC()
	ts.clock.advance(time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, time.UTC).Sub(now))
	h := &logHarness{tb: t, dir: ts.dir, newsroom: ts.newsroom, logKey: ts.logKey, editors: ts.editors, bundle: ts.bundle, logger: ts.cfg.Logger}
	r := &receiptsRun{testServer: ts, lr: &logRun{h: h, s: ts.s, store: ts.store, origin: ts.origin()}, logs: logs}
	ts.s.purgeTips(context.Background())
	return r
}

func (r *receiptsRun) today() string { return crypto.Day(r.clock.now()) }

// nextDays moves the clock on by n days and runs the purge.
func (r *receiptsRun) nextDays(n int) {
	r.clock.advance(time.Duration(n) * 24 * time.Hour)
	r.s.purge(context.Background())
}

// loggedRoot is a receipts root the log holds.
type loggedRoot struct {
	index int64
	root  *audit.ReceiptsRoot
}

// roots reads the whole log through its endpoints, audits it (periods in
// order, roots signed by the log key) and returns its receipts roots.
func (r *receiptsRun) roots(t *testing.T) []loggedRoot {
	t.Helper()
	var out []loggedRoot
	for i, e := range r.lr.verifyLog(t) {
		if !bytes.HasPrefix(e, []byte(audit.ReceiptsHeader+"\n")) {
			continue
		}
		root, err := audit.OpenReceiptsRoot(e, r.logKey.Verifier)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		out = append(out, loggedRoot{int64(i), root})
	}
	return out
}

// period fetches GET /receipts/<index>, opens its key as editor, and
// checks the leaves against the root: it returns the key and the tree.
func (r *receiptsRun) period(t *testing.T, lroot loggedRoot, editor *crypto.EditorKey) (audit.PeriodKey, *audit.ReceiptsTree) {
	t.Helper()
	resp, b := get(t, r.origin()+protocol.PathReceipts+strconv.FormatInt(lroot.index, 10))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /receipts/%d: %s %s %s", lroot.index, resp.Status, resp.Header.Get("Content-Type"), b)
	}
	var p protocol.ReceiptsPeriod
	if err := protocol.DecodeJSON(bytes.NewReader(b), 64<<20, &p); err != nil {
		t.Fatalf("GET /receipts/%d: %v", lroot.index, err)
	}
	k, err := audit.OpenPeriodKey(p.SealedKey, lroot.root, editor.Identity)
	if err != nil {
		t.Fatalf("OpenPeriodKey(period %s, as %s) = %v", lroot.root.Period.First, editor.Label, err)
	}
	if int64(len(p.Leaves)) != 32*lroot.root.Size {
		t.Fatalf("period %s: %d bytes of leaves, want %d leaves", lroot.root.Period.First, len(p.Leaves), lroot.root.Size)
	}
	var leaves []audit.Leaf
	for l := range slices.Chunk(p.Leaves, 32) {
		leaves = append(leaves, audit.Leaf(l))
	}
	tree, err := audit.NewReceiptsTree(leaves)
	if err != nil {
		t.Fatalf("period %s: %v", lroot.root.Period.First, err)
	}
	return k, tree
}

// pulled lists the tips an editor pulls, by day: their ciphertext hashes.
func (r *receiptsRun) pulled(t *testing.T, token string) map[string][][32]byte {
	t.Helper()
	status, b := httpDo(t, http.MethodGet, r.origin()+protocol.PathTips, "Bearer "+token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /editor/tips: %d %s", status, b)
	}
	var list protocol.TipList
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	out := map[string][][32]byte{}
	for _, ti := range list.Tips {
		h, err := hex.DecodeString(ti.SHA256)
		if err != nil || len(h) != 32 {
			t.Fatalf("tip hash %q", ti.SHA256)
		}
		out[ti.Day] = append(out[ti.Day], [32]byte(h))
	}
	return out
}

// event logs an event by editor and returns its index.
func (r *receiptsRun) event(t *testing.T, editor *crypto.EditorKey, token string) int64 {
	t.Helper()
	tree, _ := r.lr.checkpoint(t)
	return r.lr.logged(t, token, newEvent(t, editor, r.s.Bundle(), tree, nil))
}

// tipAction posts a delete or mark request.
func (r *receiptsRun) tipAction(t *testing.T, token, tip, suffix string, body any) (int, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return httpDo(t, http.MethodPost, r.origin()+protocol.TipActionPath(tip, suffix), auth, b)
}

// forget removes tips deleted on purpose from the acknowledged ones intact
// checks.
func (r *receiptsRun) forget(ids ...[16]byte) {
	r.receipts = slices.DeleteFunc(r.receipts, func(rc *crypto.Receipt) bool { return slices.Contains(ids, rc.TipID) })
}

// noTipIDsLogged checks that no log line names a tip.
func (r *receiptsRun) noTipIDsLogged(t *testing.T, ids ...[16]byte) {
	t.Helper()
	logs := r.logs.String()
	for _, id := range ids {
		if strings.Contains(logs, crypto.FormatTipID(id)) || strings.Contains(logs, hex.EncodeToString(id[:])) {
			t.Errorf("the server's log names tip %s", crypto.FormatTipID(id))
		}
	}
}

// TestReceiptsRoots sends tips over two days, lets a third pass without
// any, and checks what the log and GET /receipts serve: one root per
// finished day, in order, of the default size, whose sealed key each
// editor opens and whose leaves hash to the root and hold exactly the
// day's tips (and dummies for the empty day).
func TestReceiptsRoots(t *testing.T) {
	r := newReceiptsRun(t, nil)
	ctx := context.Background()
	day0 := r.today()
	r.send(t, "trucks at the depot")
	r.send(t, "the depot again")
	r.nextDays(1)
	day1 := r.today()
	r.send(t, "a third tip")
	if roots := r.roots(t); len(roots) != 1 || roots[0].root.Period != audit.OneDay(day0) {
		t.Fatalf("roots after the first day = %+v, want one, of %s", roots, day0)
	}
	r.nextDays(2) // day1 and the empty day after it end
	sizeBefore, _ := r.lr.checkpoint(t)
	r.s.purge(ctx) // nothing more to log
	if after, _ := r.lr.checkpoint(t); after != sizeBefore {
		t.Errorf("a second purge on the same day changed the log from %d to %d entries", sizeBefore.N, after.N)
	}

	roots := r.roots(t)
	day2 := crypto.Day(r.clock.now().Add(-24 * time.Hour))
	wantDays := []string{day0, day1, day2}
	if len(roots) != len(wantDays) {
		t.Fatalf("%d roots logged, want %d (%v)", len(roots), len(wantDays), wantDays)
	}
	token := r.lr.login(t, r.editors[0])
	pulled := r.pulled(t, token)
	if len(pulled[day0]) != 2 || len(pulled[day1]) != 1 {
		t.Fatalf("pulled %d and %d tips, want 2 and 1", len(pulled[day0]), len(pulled[day1]))
	}
	for i, lroot := range roots {
		root := lroot.root
		if root.Period != audit.OneDay(wantDays[i]) || root.Size != audit.DefaultReceiptsTreeSize {
			t.Errorf("root %d: period %v size %d, want %s, %d", i, root.Period, root.Size, wantDays[i], audit.DefaultReceiptsTreeSize)
		}
		for _, ed := range r.editors {
			k, tree := r.period(t, lroot, ed)
			if err := audit.CheckReceipts(k, root, tree, pulled[wantDays[i]]); err != nil {
				t.Errorf("CheckReceipts(%s, as %s) = %v", wantDays[i], ed.Label, err)
			}
			// The check can fail: a tip of another day is not a leaf here.
			other := pulled[day1][0]
			if i == 1 {
				other = pulled[day0][0]
			}
			var me *audit.ReceiptsMismatchError
			if err := audit.CheckReceipts(k, root, tree, append(slices.Clone(pulled[wantDays[i]]), other)); !errors.As(err, &me) || len(me.Missing) != 1 {
				t.Errorf("CheckReceipts(%s with another day's tip) = %v, want it missing", wantDays[i], err)
			}
		}
	}
	// Only receipts roots are served, by their canonical index.
	notRoot := int64(1)
	for slices.ContainsFunc(roots, func(l loggedRoot) bool { return l.index == notRoot }) {
		notRoot++
	}
	for path, want := range map[string]int{
		"0": http.StatusNotFound, strconv.FormatInt(notRoot, 10): http.StatusNotFound, "999999": http.StatusNotFound,
		"01": http.StatusBadRequest, "-1": http.StatusBadRequest, "x": http.StatusBadRequest, "99999999999999999999": http.StatusBadRequest,
	} {
		if resp, _ := get(t, r.origin()+protocol.PathReceipts+path); resp.StatusCode != want {
			t.Errorf("GET /receipts/%s: %s, want %d", path, resp.Status, want)
		}
	}
	// A restart logs nothing again.
	r.restart(t)
	r.lr.s, r.lr.store, r.lr.origin = r.s, r.store, r.origin()
	r.s.purge(ctx)
	if again := r.roots(t); len(again) != len(roots) {
		t.Errorf("after a restart, %d roots, want %d", len(again), len(roots))
	}
	r.intact(t)
}

// TestReceiptsCatchDroppedTip: a server that issued a receipt and lost
// the tip before making the day's tree is caught by an editor who pulled
// the tip: the tree has no leaf for it.
func TestReceiptsCatchDroppedTip(t *testing.T) {
	r := newReceiptsRun(t, func(c *Config) { c.ReceiptsTreeSize = 8 })
	day := r.today()
	kept := r.send(t, "kept")
	dropped := r.send(t, "dropped")
	token := r.lr.login(t, r.editors[1])
	pulled := r.pulled(t, token)[day]
	exec(t, r.dir, `DELETE FROM tips WHERE id = ?`, dropped.Receipt.TipID[:])
	r.nextDays(1)
	roots := r.roots(t)
	if len(roots) != 1 || roots[0].root.Size != 8 {
		t.Fatalf("roots = %+v, want one of 8 leaves", roots)
	}
	k, tree := r.period(t, roots[0], r.editors[1])
	err := audit.CheckReceipts(k, roots[0].root, tree, pulled)
	var me *audit.ReceiptsMismatchError
	if !errors.As(err, &me) || len(me.Missing) != 1 || me.Missing[0] != dropped.Receipt.SHA256 || len(me.Foreign) != 0 {
		t.Fatalf("CheckReceipts(with the dropped tip) = %v, want exactly it missing", err)
	}
	if err := audit.CheckReceipts(k, roots[0].root, tree, [][32]byte{kept.Receipt.SHA256}); err != nil {
		t.Errorf("CheckReceipts(the kept tip) = %v", err)
	}
}

// TestReceiptsPendingResolved: a period stored and then not logged (a
// crash between the two), or logged and not recorded, is finished by the
// next purge, with its root logged exactly once.
func TestReceiptsPendingResolved(t *testing.T) {
	r := newReceiptsRun(t, func(c *Config) { c.ReceiptsTreeSize = 4 })
	ctx := context.Background()
	day0 := r.today()
	r.send(t, "a tip")
	r.clock.advance(48 * time.Hour)
	// Day 0: stored, the server stopped before appending.
	store := func(p audit.Period) {
		t.Helper()
		size, _ := r.store.LogSize(ctx)
		if err := r.store.PutReceiptsPeriod(ctx, p.First, p.Last, size, func(tips [][32]byte) ([]byte, []byte, []byte, error) {
			return buildPeriod(p, tips, 4, r.s.Bundle(), r.logKey)
		}); err != nil {
			t.Fatal(err)
		}
	}
	store(audit.OneDay(day0))
	r.s.purge(ctx)
	roots := r.roots(t)
	if len(roots) != 2 || roots[0].root.Period != audit.OneDay(day0) {
		t.Fatalf("roots = %+v, want day 0 (resolved) and day 1", roots)
	}
	// Day 2: stored and appended, the server stopped before recording.
	r.clock.advance(24 * time.Hour)
	day2 := crypto.Day(r.clock.now().Add(-24 * time.Hour))
	store(audit.OneDay(day2))
	p, err := r.store.PendingReceiptsPeriod(ctx)
	if err != nil {
		t.Fatal(err)
	}
	index, _, err := r.s.appendLog(ctx, p.Entry)
	if err != nil {
		t.Fatal(err)
	}
	r.s.purge(ctx)
	roots = r.roots(t)
	if len(roots) != 3 || roots[2].index != index {
		t.Fatalf("roots = %+v, want 3, the last at %d (found, not appended again)", roots, index)
	}
	for _, lroot := range roots {
		k, tree := r.period(t, lroot, r.editors[0])
		if err := audit.CheckReceipts(k, lroot.root, tree, nil); lroot.root.Period.First != day0 && err != nil {
			t.Errorf("period %s: %v", lroot.root.Period.First, err)
		}
	}
}

// dbFilesHold reports whether the server's database file or WAL holds
// any 64-byte piece (at 64-byte steps) of secret.
func dbFilesHold(t *testing.T, dir string, secret []byte) []string {
	t.Helper()
	var where []string
	for _, name := range []string{dbFile, dbFile + "-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+64 <= len(secret); i += 64 {
			if bytes.Contains(b, secret[i:i+64]) {
				where = append(where, fmt.Sprintf("%s at piece %d", name, i/64))
				break
			}
		}
	}
	return where
}

// TestTipDelete refuses every faulty deletion, leaving every tip intact;
// a deletion before the tip's period is rooted waits (202) and the purge
// after the root completes it; a deletion after the root is immediate. In
// both cases the bytes are gone from the database and its WAL, and the
// tip stays a leaf of its period's tree.
func TestTipDelete(t *testing.T) {
	r := newReceiptsRun(t, func(c *Config) { c.ReceiptsTreeSize = 8 })
	ctx := context.Background()
	victim := r.send(t, "to be deleted").Receipt
	other := r.send(t, "to be kept").Receipt
	early := r.send(t, "deleted before its root").Receipt
	ct, err := r.store.TipCiphertext(ctx, victim.TipID)
	if err != nil {
		t.Fatal(err)
	}
	earlyCT, err := r.store.TipCiphertext(ctx, early.TipID)
	if err != nil {
		t.Fatal(err)
	}
	if len(dbFilesHold(t, r.dir, ct)) == 0 {
		t.Fatal("the database files do not hold the tip before its deletion: the check below would prove nothing")
	}
	token0, token1 := r.lr.login(t, r.editors[0]), r.lr.login(t, r.editors[1])
	mine := r.event(t, r.editors[0], token0)
	theirs := r.event(t, r.editors[1], token1)
	tree, _ := r.lr.checkpoint(t)
	id := victim.TipIDString()
	var unknown [16]byte
	unknown[0] = 1

	refusals := []struct {
		name   string
		token  string
		tip    string
		body   any
		status int
		code   protocol.Code
	}{
		{"no_session", "", id, protocol.TipDelete{Event: mine}, 401, protocol.CodeUnauthorized},
		{"bad_session", "AAAA", id, protocol.TipDelete{Event: mine}, 401, protocol.CodeUnauthorized},
		{"bad_tip_id", token0, "not-a-tip-id", protocol.TipDelete{Event: mine}, 400, protocol.CodeMalformed},
		{"bad_body", token0, id, `{"event":"1"}`, 400, protocol.CodeMalformed},
		{"rejected_member", token0, id, `{"event":1,"rejected":true}`, 400, protocol.CodeMalformed},
		{"too_large", token0, id, `{"event":1}` + strings.Repeat(" ", protocol.MaxTipActionRequest), 413, protocol.CodeTooLarge},
		{"unknown_tip", token0, crypto.FormatTipID(unknown), protocol.TipDelete{Event: mine}, 404, protocol.CodeNotFound},
		{"not_an_event", token0, id, protocol.TipDelete{Event: 0}, 400, protocol.CodeMalformed},
		{"another_editors_event", token0, id, protocol.TipDelete{Event: theirs}, 403, protocol.CodeUnauthorized},
		{"beyond_the_log", token0, id, protocol.TipDelete{Event: tree.N}, 409, protocol.CodeConflict},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			status, b := r.tipAction(t, tt.token, tt.tip, protocol.PathTipDeleteSuffix, tt.body)
			if status != tt.status {
				t.Fatalf("status %d %s, want %d", status, b, tt.status)
			}
			if e := httpError(t, b); e.Code != tt.code {
				t.Errorf("code %s, want %s", e.Code, tt.code)
			}
			r.intact(t)
		})
	}

	// Before the period's root: accepted, pending. The tip is no longer
	// listed or served, but its bytes stay until the root is logged.
	status, b := r.tipAction(t, token0, early.TipIDString(), protocol.PathTipDeleteSuffix, protocol.TipDelete{Event: mine})
	if status != http.StatusAccepted || string(b) != `{"pending":true}`+"\n" {
		t.Fatalf("delete before the root: %d %q, want 202 {\"pending\":true}", status, b)
	}
	if _, err := r.store.TipCiphertext(ctx, early.TipID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TipCiphertext(pending deletion) = %v, want ErrNotFound", err)
	}
	if len(dbFilesHold(t, r.dir, earlyCT)) == 0 {
		t.Error("a deletion pending its root removed the bytes before the root")
	}
	r.forget(early.TipID)
	r.intact(t)

	r.nextDays(1)
	if where := dbFilesHold(t, r.dir, earlyCT); len(where) > 0 {
		t.Errorf("after the root and a purge, the pending deletion's bytes are still in %v", where)
	}
	token0 = r.lr.login(t, r.editors[0]) // the sessions expired
	del := r.event(t, r.editors[0], token0)
	status, b = r.tipAction(t, token0, id, protocol.PathTipDeleteSuffix, protocol.TipDelete{Event: del})
	if status != http.StatusOK || string(b) != "{}\n" {
		t.Fatalf("delete: %d %q, want 200 {}", status, b)
	}
	if where := dbFilesHold(t, r.dir, ct); len(where) > 0 {
		t.Errorf("after the delete, the tip's ciphertext is still in %v", where)
	}
	if _, err := r.store.TipCiphertext(ctx, victim.TipID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TipCiphertext(deleted) = %v, want ErrNotFound", err)
	}
	r.forget(victim.TipID)
	r.intact(t)
	if status, b := r.tipAction(t, token0, id, protocol.PathTipDeleteSuffix, protocol.TipDelete{Event: del}); status != http.StatusNotFound {
		t.Errorf("second delete: %d %s, want 404", status, b)
	}
	// The deleted tip stays a leaf of its period's tree.
	roots := r.roots(t)
	k, rtree := r.period(t, roots[0], r.editors[1])
	if err := audit.CheckReceipts(k, roots[0].root, rtree, [][32]byte{victim.SHA256, other.SHA256, early.SHA256}); err != nil {
		t.Errorf("CheckReceipts() after the delete = %v", err)
	}
	r.noTipIDsLogged(t, victim.TipID, other.TipID)
}

// TestTipMarkAndRetention: the purge deletes a tip marked rejected for
// longer than the retention, once its period is rooted, and nothing else:
// not a tip marked later, not one unmarked, not one never marked.
func TestTipMarkAndRetention(t *testing.T) {
	r := newReceiptsRun(t, func(c *Config) {
		c.ReceiptsTreeSize = 8
		c.ReceiptsPeriodDays = 4
		c.RejectedRetention = 24 * time.Hour
	})
	ctx := context.Background()
	rejected := r.send(t, "spam").Receipt
	unmarked := r.send(t, "rejected, then useful").Receipt
	never := r.send(t, "useful").Receipt
	late := r.send(t, "rejected later").Receipt
	token := r.lr.login(t, r.editors[0])
	mark := func(token string, tip *crypto.Receipt, rejected bool) {
		t.Helper()
		ev := r.event(t, r.editors[0], token)
		status, b := r.tipAction(t, token, tip.TipIDString(), protocol.PathTipMarkSuffix, protocol.TipMark{Event: ev, Rejected: rejected})
		if status != http.StatusOK || string(b) != "{}\n" {
			t.Fatalf("mark %v: %d %s", rejected, status, b)
		}
	}
	mark(token, rejected, true)
	mark(token, unmarked, true)
	mark(token, unmarked, false)
	// Mark refusals leave the marks as they are.
	theirs := r.event(t, r.editors[1], r.lr.login(t, r.editors[1]))
	for name, body := range map[string]any{
		"missing_rejected": `{"event":1}`,
		"foreign_event":    protocol.TipMark{Event: theirs, Rejected: true},
		"bundle_entry":     protocol.TipMark{Event: 0, Rejected: true},
	} {
		if status, b := r.tipAction(t, token, never.TipIDString(), protocol.PathTipMarkSuffix, body); status == http.StatusOK {
			t.Errorf("mark %s: %d %s, want a refusal", name, status, b)
		}
	}
	markOf := func(tip *crypto.Receipt) string {
		t.Helper()
		tp, err := r.store.TipPeriodOf(ctx, tip.TipID)
		if err != nil {
			t.Fatal(err)
		}
		return tp.RejectedDay
	}
	if markOf(rejected) != r.today() || markOf(unmarked) != "" || markOf(never) != "" {
		t.Errorf("marks: %q %q %q, want today, none, none", markOf(rejected), markOf(unmarked), markOf(never))
	}

	// Two days on, the mark is older than the retention, but the four-day
	// period is not rooted: the tip is kept.
	r.nextDays(2)
	if len(r.roots(t)) != 0 {
		t.Fatal("a four-day period rooted after two days")
	}
	r.intact(t)
	// Four days on, the period is rooted: the purge deletes the tip.
	r.nextDays(2)
	token = r.lr.login(t, r.editors[0])
	mark(token, late, true)
	r.s.purge(ctx)
	if _, err := r.store.TipCiphertext(ctx, rejected.TipID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the rejected tip past the retention: %v, want deleted", err)
	}
	r.forget(rejected.TipID)
	r.intact(t) // unmarked, never and late are kept
	roots := r.roots(t)
	if len(roots) != 1 || roots[0].root.Period.Last != addDays(roots[0].root.Period.First, 3) {
		t.Fatalf("roots = %+v, want one period of four days", roots)
	}
	k, tree := r.period(t, roots[0], r.editors[0])
	if err := audit.CheckReceipts(k, roots[0].root, tree, [][32]byte{rejected.SHA256, unmarked.SHA256, never.SHA256, late.SHA256}); err != nil {
		t.Errorf("CheckReceipts() = %v", err)
	}
	// A day later, the late mark is older than the retention too.
	r.nextDays(2)
	if _, err := r.store.TipCiphertext(ctx, late.TipID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the tip marked later: %v, want deleted once past the retention", err)
	}
	r.forget(late.TipID)
	r.intact(t)
	if !strings.Contains(r.logs.String(), "deleted rejected tips past the retention") {
		t.Error("the purge did not log its deletions")
	}
	r.noTipIDsLogged(t, rejected.TipID, unmarked.TipID, never.TipID, late.TipID)
}

func TestReceiptsConfig(t *testing.T) {
	c := Config{}
	if err := c.fill(); err != nil {
		t.Fatal(err)
	}
	if c.ReceiptsPeriodDays != 1 || c.ReceiptsTreeSize != audit.DefaultReceiptsTreeSize || c.RejectedRetention != 0 {
		t.Errorf("defaults: %d days, %d leaves, retention %s", c.ReceiptsPeriodDays, c.ReceiptsTreeSize, c.RejectedRetention)
	}
	for name, edit := range map[string]func(*Config){
		"days_32":       func(c *Config) { c.ReceiptsPeriodDays = 32 },
		"days_negative": func(c *Config) { c.ReceiptsPeriodDays = -1 },
		"size_1000":     func(c *Config) { c.ReceiptsTreeSize = 1000 },
		"size_2^21":     func(c *Config) { c.ReceiptsTreeSize = 1 << 21 },
		"size_negative": func(c *Config) { c.ReceiptsTreeSize = -4 },
		"retention_neg": func(c *Config) { c.RejectedRetention = -time.Hour },
	} {
		c := Config{}
		edit(&c)
		if err := c.fill(); err == nil {
			t.Errorf("Config.fill(%s) = nil error", name)
		}
	}
	for _, ok := range []func(*Config){
		func(c *Config) { c.ReceiptsPeriodDays = 31; c.ReceiptsTreeSize = 1 },
		func(c *Config) {
			c.ReceiptsPeriodDays = 7
			c.ReceiptsTreeSize = 1 << 20
			c.RejectedRetention = 30 * 24 * time.Hour
		},
	} {
		c := Config{}
		ok(&c)
		if err := c.fill(); err != nil {
			t.Errorf("Config.fill() = %v", err)
		}
	}
}

func TestParseTipAction(t *testing.T) {
	id := crypto.FormatTipID([16]byte{1, 2, 3})
	for _, tt := range []struct {
		name, id, body string
		mark           bool
		want           *tipAction
	}{
		{"delete", id, `{"event":7}`, false, &tipAction{tip: [16]byte{1, 2, 3}, event: 7}},
		{"delete_spaced", id, " {\"event\" : 0 }\n", false, &tipAction{tip: [16]byte{1, 2, 3}}},
		{"mark", id, `{"event":7,"rejected":true}`, true, &tipAction{tip: [16]byte{1, 2, 3}, event: 7, rejected: true}},
		{"unmark", id, `{"rejected":false,"event":9}`, true, &tipAction{tip: [16]byte{1, 2, 3}, event: 9}},

		{"bad_id", "AAAA", `{"event":7}`, false, nil},
		{"id_padded", id + "==", `{"event":7}`, false, nil},
		{"empty", id, ``, false, nil},
		{"null", id, `null`, false, nil},
		{"array", id, `[7]`, false, nil},
		{"no_event", id, `{}`, false, nil},
		{"event_null", id, `{"event":null}`, false, nil},
		{"event_negative", id, `{"event":-1}`, false, nil},
		{"event_float", id, `{"event":1.5}`, false, nil},
		{"event_string", id, `{"event":"1"}`, false, nil},
		{"event_huge", id, `{"event":99999999999999999999}`, false, nil},
		{"event_twice", id, `{"event":1,"event":2}`, false, nil},
		{"unknown_member", id, `{"event":1,"tip":"x"}`, false, nil},
		{"case_folded_member", id, `{"Event":1}`, false, nil},
		{"trailing", id, `{"event":1}{}`, false, nil},
		{"trailing_garbage", id, `{"event":1} x`, false, nil},
		{"delete_with_rejected", id, `{"event":1,"rejected":true}`, false, nil},
		{"mark_without_rejected", id, `{"event":1}`, true, nil},
		{"mark_rejected_string", id, `{"event":1,"rejected":"true"}`, true, nil},
		{"mark_rejected_null", id, `{"event":1,"rejected":null}`, true, nil},
		{"mark_rejected_twice", id, `{"event":1,"rejected":true,"rejected":false}`, true, nil},
		{"too_large", id, `{"event":1}` + strings.Repeat(" ", protocol.MaxTipActionRequest), false, nil},
	} {
		got, err := parseTipAction(tt.id, []byte(tt.body), tt.mark)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%s: parseTipAction() = %+v, want an error", tt.name, got)
			}
			continue
		}
		if err != nil || *got != *tt.want {
			t.Errorf("%s: parseTipAction() = %+v, %v, want %+v", tt.name, got, err, tt.want)
		}
	}
}

// FuzzTipAction: the delete and mark parsers never panic, and what they
// accept reads back the same once written as the protocol types.
func FuzzTipAction(f *testing.F) {
	id := crypto.FormatTipID([16]byte{9})
	for _, s := range []string{`{"event":7}`, `{"event":7,"rejected":true}`, `{"event":1,"event":2}`, `{"rejected":false,"event":0}`, `{}`, `[`, ``} {
		f.Add(id, []byte(s), false)
		f.Add(id, []byte(s), true)
	}
	f.Fuzz(func(t *testing.T, id string, body []byte, mark bool) {
		a, err := parseTipAction(id, body, mark)
		if err != nil {
			return
		}
		if a.event < 0 || (!mark && a.rejected) {
			t.Fatalf("parseTipAction(%q, %q, %v) = %+v", id, body, mark, a)
		}
		var again []byte
		if mark {
			again, _ = json.Marshal(protocol.TipMark{Event: a.event, Rejected: a.rejected})
		} else {
			again, _ = json.Marshal(protocol.TipDelete{Event: a.event})
		}
		b, err := parseTipAction(crypto.FormatTipID(a.tip), again, mark)
		if err != nil || *b != *a {
			t.Fatalf("round trip of %+v: %+v, %v", a, b, err)
		}
	})
}

func TestEventBundleVersion(t *testing.T) {
	k := newEditorKey(t, "alice", true)
	signer, _ := k.Signer()
	ev := &audit.Event{Bundle: 42, Day: "2026-03-14", Base: tlog.Tree{N: 1}}
	entry, err := audit.SignEvent(ev, signer)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := eventBundleVersion(entry); !ok || v != 42 {
		t.Errorf("eventBundleVersion() = %d, %v, want 42", v, ok)
	}
	for _, bad := range []string{"", "fieldtip/event/v1\nbundle 42\n", "fieldtip/event/v1\nbundle 042\n\n— alice AAAA\n"} {
		if v, ok := eventBundleVersion([]byte(bad)); ok {
			t.Errorf("eventBundleVersion(%q) = %d, want not ok", bad, v)
		}
	}
}
