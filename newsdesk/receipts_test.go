package newsdesk

import (
	"bytes"
	"context"
	"encoding/json"
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
	"fieldtip/server"
)

// receiptsTreeSize keeps the receipts trees of these tests small.
const receiptsTreeSize = 16

func smallReceiptsTrees(c *server.Config) { c.ReceiptsTreeSize = receiptsTreeSize }

// closeDay moves the server's clock a day on and runs its purge, which
// logs the root of the day the tips arrived on.
func (d *logDesk) closeDay(t *testing.T) {
	t.Helper()
	d.clock.advance(24 * time.Hour)
	d.srv.Server.Purge(context.Background())
}

// receiptsRoots returns the index of each receipts root in v.
func receiptsRoots(v *LogView) []int64 {
	var out []int64
	for i, e := range v.Entries {
		if bytes.HasPrefix(e, []byte(audit.ReceiptsHeader+"\n")) {
			out = append(out, int64(i))
		}
	}
	return out
}

// wantReceiptsError checks that err is a receipts failure of the period
// of day (at entry index) and mentions every one of details.
func wantReceiptsError(t *testing.T, err error, day string, details ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("SyncLog = nil, want a receipts failure of %s", day)
	}
	msg := err.Error()
	for _, want := range append([]string{"receipts of " + day + " to " + day}, details...) {
		if !strings.Contains(msg, want) {
			t.Errorf("SyncLog error lacks %q:\n%s", want, msg)
		}
	}
}

// TestReceiptsDroppedTip: the server issued a receipt for a tip the
// editor pulled, then dropped the tip before the day's receipts tree.
// SyncLog names the period and the tip, every time, and sends no
// cosignature of the log that holds the tree.
func TestReceiptsDroppedTip(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, smallReceiptsTrees)
	ctx := context.Background()
	opts := SyncOptions{Newsroom: nk.key.Verifier}
	d.send(t, &crypto.Tip{Text: "kept"})
	dropped := d.send(t, &crypto.Tip{Text: "dropped"})
	if n, err := d.cache.Pull(ctx, d.url, nk.editor, PullOptions{}); n != 2 || err != nil {
		t.Fatalf("Pull = %d, %v", n, err)
	}
	d.execDB(t, `DELETE FROM tips WHERE id = ?`, dropped.TipID[:])
	d.closeDay(t)

	for range 2 {
		_, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts)
		wantReceiptsError(t, err, dropped.Day, "1 pulled tip(s) are not in its receipts tree: "+dropped.TipIDString())
	}
	v, err := d.cache.LoadLog(ctx)
	if err != nil || len(receiptsRoots(v)) != 1 {
		t.Fatalf("replica after the failed sync: %v; want one receipts root", err)
	}
	if list := string(d.get(t, protocol.PathCosigned)); strings.HasPrefix(list, strconv.FormatInt(v.Tree.N, 10)+" ") {
		t.Errorf("the log with the bad receipts tree was cosigned: %q", list)
	}
}

// TestReceiptsForeignLeaf: the server hid a tip from the editor's listing
// but it is a leaf of the day's tree: SyncLog says so.
func TestReceiptsForeignLeaf(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, smallReceiptsTrees)
	ctx := context.Background()
	shown := d.send(t, &crypto.Tip{Text: "shown"})
	hidden := d.send(t, &crypto.Tip{Text: "hidden"})
	hide := func(r *http.Request, b []byte) []byte {
		if r.URL.Path != protocol.PathTips {
			return b
		}
		var l protocol.TipList
		if err := json.Unmarshal(b, &l); err != nil {
			return b
		}
		l.Tips = slices.DeleteFunc(l.Tips, func(ti protocol.TipInfo) bool { return ti.ID == hidden.TipIDString() })
		out, _ := json.Marshal(&l)
		return out
	}
	d.relayed.Store(&hide)
	ids := d.pull(t, PullOptions{})
	if !slices.Equal(ids, []string{shown.TipIDString()}) {
		t.Fatalf("pulled %q through the hiding proxy, want only %s", ids, shown.TipIDString())
	}
	d.closeDay(t)
	_, err := d.cache.SyncLog(ctx, d.url, nk.editor, SyncOptions{Newsroom: nk.key.Verifier})
	wantReceiptsError(t, err, hidden.Day, "1 leaf (leaves) are tips "+nk.editor.Label+" never got", "no event "+nk.editor.Label+" can read names them as deleted")
}

// pull pulls through the proxy (the server takes logins for its origin).
func (d *logDesk) pull(t *testing.T, opts PullOptions) []string {
	t.Helper()
	var ids []string
	opts.Pulled = func(id string) { ids = append(ids, id) }
	if _, err := d.cache.Pull(context.Background(), d.url, d.nk.editor, opts); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	return ids
}

// TestReceiptsHonestDay: a day with a kept tip and a tip the editors
// rejected and deleted (its ciphertext gone from the cache, and from the
// server once the root is logged) passes: the deleted tip is a leaf of the
// tree, accounted for by its delete event. The tree was fetched, checked
// and kept in the replica.
func TestReceiptsHonestDay(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, smallReceiptsTrees)
	ctx := context.Background()
	opts := SyncOptions{Newsroom: nk.key.Verifier}
	d.send(t, &crypto.Tip{Text: "kept"})
	gone := d.send(t, &crypto.Tip{Text: "spam, deleted"})
	if _, err := d.cache.Triage(ctx, d.url, nk.editor, gone.TipIDString(), audit.StatusRejected, nil, "", opts); err != nil {
		t.Fatal(err)
	}
	if _, pending, err := d.cache.Delete(ctx, d.url, nk.editor, gone.TipIDString(), opts); err != nil || !pending {
		t.Fatalf("Delete = pending %v, %v; want pending its root", pending, err)
	}
	if _, err := d.cache.Find(gone.TipIDString()); err == nil {
		t.Fatal("the deleted tip is still in the cache")
	}
	d.closeDay(t)
	v, err := d.cache.SyncLog(ctx, d.url, nk.editor, opts)
	if err != nil {
		t.Fatalf("SyncLog over an honest day: %v", err)
	}
	roots := receiptsRoots(v)
	if len(roots) != 1 {
		t.Fatalf("%d receipts roots, want 1", len(roots))
	}
	root, err := audit.OpenReceiptsRoot(v.Entries[roots[0]], d.srv.LogKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if root.Period != audit.OneDay(gone.Day) || root.Size != receiptsTreeSize {
		t.Errorf("root of %+v with %d leaves, want %s with %d", root.Period, root.Size, gone.Day, receiptsTreeSize)
	}
	b, err := os.ReadFile(filepath.Join(d.replica(), replicaReceipts, strconv.FormatInt(roots[0], 10)))
	if err != nil {
		t.Fatalf("the checked tree is not in the replica: %v", err)
	}
	var p protocol.ReceiptsPeriod
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	k, err := audit.OpenPeriodKey(p.SealedKey, root, nk.editor.Identity)
	if err != nil {
		t.Fatal(err)
	}
	leaf := audit.TipLeaf(k, gone.SHA256)
	if !bytes.Contains(p.Leaves, leaf[:]) {
		t.Error("the deleted tip is not a leaf: the test proves nothing about deleted tips")
	}
	// The server removed its ciphertext once the root was logged.
	r, err := Login(ctx, d.url, nk.editor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.FetchTip(ctx, gone.TipIDString()); err == nil {
		t.Error("the server still serves the deleted tip")
	}
	// Later days pass too, with nothing in them.
	d.closeDay(t)
	if v, err = d.cache.SyncLog(ctx, d.url, nk.editor, opts); err != nil || len(receiptsRoots(v)) != 2 {
		t.Errorf("SyncLog over an empty day: %v", err)
	}
}

// TestReceiptsKeyNotSealedToEditor: the bundle in force lists alice, but
// the period key does not open with her key (here: the bundle names
// another age recipient for her, as a server sealing to nobody would
// look). Skipping the period would let such a server escape the check.
func TestReceiptsKeyNotSealedToEditor(t *testing.T) {
	nk := newTestNewsroom(t, true)
	other, err := crypto.GenerateEditorKey("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	wrong := nk.editor.Public
	wrong.Recipient = other.Public.Recipient
	bundleFor := func(log string) []byte {
		b := &crypto.Bundle{
			Newsroom: nk.key.Verifier, Version: 1, Expires: time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second),
			Log: log, Policy: crypto.DefaultPolicy, Editors: []crypto.Editor{wrong},
		}
		msg, err := crypto.SignBundle(b, nk.key.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	d := newLogDesk(t, nk, bundleFor, smallReceiptsTrees)
	tip := d.send(t, &crypto.Tip{Text: "a tip"})
	d.closeDay(t)
	_, err = d.cache.SyncLog(context.Background(), d.url, nk.editor, SyncOptions{Newsroom: nk.key.Verifier})
	wantReceiptsError(t, err, tip.Day, "lists alice, but the period key does not open with its key")
}
