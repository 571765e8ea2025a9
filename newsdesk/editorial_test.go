package newsdesk

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"fieldtip/audit"
	"fieldtip/crypto"
)

// TestEditorialRoundTrip: an editor triages, notes and deletes a tip
// through a real server; the replayed state says so; the log audits
// without a key and carries the editor's cosignature.
func TestEditorialRoundTrip(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newDesk(t, nk, serverOptions{})
	ctx := context.Background()
	rc := d.send(t, &crypto.Tip{Text: "trucks at night"})
	tip := rc.TipIDString()
	opts := SyncOptions{Newsroom: nk.key.Verifier}

	if _, err := d.cache.Note(ctx, d.srv.URL, nk.editor, tip, "call the source's cousin", opts); err != nil {
		t.Fatalf("Note: %v", err)
	}
	if _, _, err := d.cache.Delete(ctx, d.srv.URL, nk.editor, tip, opts); !errors.Is(err, ErrDeletePolicy) {
		t.Fatalf("Delete of an untriaged tip = %v, want ErrDeletePolicy", err)
	}
	if _, err := d.cache.Triage(ctx, d.srv.URL, nk.editor, tip, audit.StatusRejected, []string{"copper"}, "not credible", opts); err != nil {
		t.Fatalf("Triage: %v", err)
	}
	v, err := d.cache.SyncLog(ctx, d.srv.URL, nk.editor, opts)
	if err != nil {
		t.Fatalf("SyncLog: %v", err)
	}
	ed, err := Replay(v, nk.editor)
	if err != nil {
		t.Fatal(err)
	}
	ts := ed.State.Tip(rc.TipID)
	if ts == nil || ts.Status != audit.StatusRejected || len(ts.Tags) != 1 || len(ts.Notes) != 2 {
		t.Fatalf("state of the tip = %+v", ts)
	}
	index, pending, err := d.cache.Delete(ctx, d.srv.URL, nk.editor, tip, opts)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if !pending {
		t.Error("a tip deleted on its own day: want the deletion pending its receipts root")
	}
	v, err = d.cache.SyncLog(ctx, d.srv.URL, nk.editor, opts)
	if err != nil {
		t.Fatalf("SyncLog after the delete: %v", err)
	}
	if v.Tree.N <= index {
		t.Fatalf("log size %d, delete at %d", v.Tree.N, index)
	}
	rep, err := AuditVerify(ctx, d.srv.URL, filepath.Join(t.TempDir(), "audit"), AuditOptions{Newsroom: nk.key.Verifier, Cosigners: 1})
	if err != nil {
		t.Fatalf("AuditVerify: %v", err)
	}
	if len(rep.Cosigners) != 1 || rep.Cosigners[0] != "alice" {
		t.Errorf("cosigners %v", rep.Cosigners)
	}
	if _, err := AuditVerify(ctx, d.srv.URL, filepath.Join(t.TempDir(), "audit2"), AuditOptions{Cosigners: 2}); !errors.Is(err, ErrTooFewCosigners) {
		t.Errorf("AuditVerify(--cosigners 2) with one editor = %v", err)
	}
}
