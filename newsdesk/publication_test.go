package newsdesk

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
)

// fetch GETs url and returns its body, failing t unless it answers 200.
func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return b
}

// TestClaimsPublish: a claim the policy allows is published. The server
// keeps it pending until two editors cosign one checkpoint that covers
// what it rests on, and Publish says so; once bob and carol have synced,
// publishing again posts it, and the page and trail are served. The
// trail checks offline with the newsroom key, names the two clusters, the
// two approvers, the receipt period; a correction follows it; audit
// verify re-evaluates it. No published byte holds a tip's text, id or
// ciphertext hash, or a private part.
func TestClaimsPublish(t *testing.T) {
	r := newClaimRoom(t, 2)
	ctx := context.Background()
	alice, bob, carol := r.room.alice, r.room.bob, r.room.carol
	claimText := marker("claim")
	id, _, err := r.desk(t, alice).NewClaim(ctx, claimText, "Hyesan")
	if err != nil {
		t.Fatal(err)
	}
	claim := id.String()
	privateWhy := marker("privatewhy")
	spec := supports("drivers", privateWhy)
	spec.PrivateWhy = true
	for i, s := range []LinkSpec{supports("customs", "the customs ledger"), spec} {
		if _, err := r.desk(t, alice).Link(ctx, claim, r.tips[i].TipIDString(), s); err != nil {
			t.Fatal(err)
		}
	}
	note := marker("note")
	for _, k := range []*crypto.EditorKey{bob, carol} {
		if _, err := r.desk(t, k).Signoff(ctx, claim, audit.DecisionApprove, note); err != nil {
			t.Fatal(err)
		}
	}

	// A renewed bundle, which the publication will name: no editor has
	// cosigned a checkpoint that includes it but alice, when she syncs to
	// publish, so the server keeps the publication pending.
	r.publish(t, 2, []*crypto.EditorKey{alice, bob, carol})
	res, err := r.desk(t, alice).Publish(ctx, claim)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if !res.Logged || res.Index < 1 || !res.Posted {
		t.Fatalf("Publish = %+v, want the publication logged and posted", res)
	}
	if !res.Pending() {
		t.Fatalf("Publish = %+v, want it pending: only alice cosigned a checkpoint with bundle 2", res.Reply)
	}
	if w := res.Reply.Waiting; w.Cosigners != 2 || w.Have != 1 || w.Bundle != 2 || w.Size < 1 || w.Size > res.Index || !slices.Equal(res.Others, []string{"bob", "carol"}) {
		t.Errorf("the pending publication waits for %+v, others %q; want 2 cosigners of bundle 2, 1 so far, of a checkpoint up to %d entries", w, res.Others, res.Index)
	}
	// bob and carol sync, which cosigns: the server accepts it, and
	// publishing again posts it and gets the URL.
	for _, k := range []*crypto.EditorKey{bob, carol} {
		if _, err := r.caches[k.Label].SyncLog(ctx, r.srv.URL, k, r.opts); err != nil {
			t.Fatal(err)
		}
	}
	if res, err = r.desk(t, alice).Publish(ctx, claim); err != nil {
		t.Fatalf("Publish again: %v", err)
	}
	if res.Logged || !res.Posted || res.Pending() {
		t.Fatalf("Publish again = %+v, want it posted again, accepted", res)
	}
	// Bob is not its publisher: he gets the URL from the page.
	if rb, err := r.desk(t, bob).Publish(ctx, claim); err != nil || rb.Posted || rb.URL != res.URL || rb.Publisher != "alice" {
		t.Errorf("bob's Publish of alice's publication = %+v, %v; want the page's URL", rb, err)
	}
	if want := r.srv.URL + protocol.ClaimPath(claim); res.URL != want {
		t.Errorf("URL = %q, want %q", res.URL, want)
	}

	// A second publication is refused before logging.
	size := r.logSize(t)
	if _, _, err := PublishBody(r.desk(t, bob).Editorial().State, nil, 0, claim, nil); !errors.Is(err, ErrAlreadyPublished) {
		t.Errorf("PublishBody of a published claim = %v, want ErrAlreadyPublished", err)
	}
	if _, err := r.desk(t, bob).EditClaim(ctx, claim, "changed", nil); !errors.Is(err, ErrClaimPublished) {
		t.Errorf("EditClaim of a published claim = %v, want ErrClaimPublished", err)
	}
	if got := r.logSize(t); got != size {
		t.Errorf("refusals changed the log from %d to %d entries", size, got)
	}

	// The trail, from the page's URL, checks with the pinned key.
	data, err := ReadTrail(ctx, res.URL)
	if err != nil {
		t.Fatal(err)
	}
	a, err := CheckTrail(data, r.room.key.Verifier)
	if err != nil {
		t.Fatalf("CheckTrail: %v", err)
	}
	rep := a.Report
	if rep.Text != claimText || len(rep.Policy.Clusters) != 2 || !slices.Equal(rep.Policy.Approvers, []string{"bob", "carol"}) ||
		len(rep.Periods) != 1 || rep.Periods[0] != audit.OneDay(r.tips[0].Day) || a.FromTrail {
		t.Errorf("trail report = %+v", rep)
	}
	var out bytes.Buffer
	if err := WriteTrailReport(&out, a); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cluster \"customs\"", "why: the customs ledger", "why kept among the editors", "approved by: bob, carol", "receipt periods of the evidence: " + r.tips[0].Day} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	// Without a pinned key: the trail's own, said so.
	if a, err := CheckTrail(data, ""); err != nil || !a.FromTrail || a.Newsroom != r.room.key.Verifier {
		t.Errorf("CheckTrail without a key = %+v, %v", a, err)
	}

	// A correction, then audit verify re-evaluates the publication.
	cr, err := r.desk(t, bob).Correct(ctx, claim, audit.CorrectionClarification, "Concentrate, not ore.")
	if err != nil || cr.Pending || cr.URL != res.URL {
		t.Fatalf("Correct = %+v, %v", cr, err)
	}
	if _, err := r.desk(t, alice).Correct(ctx, claim, "erratum", "x"); err == nil {
		t.Error("a correction of kind erratum was accepted")
	}
	av, err := AuditVerify(ctx, r.srv.URL, filepath.Join(t.TempDir(), "audit"), AuditOptions{Newsroom: r.room.key.Verifier})
	if err != nil {
		t.Fatalf("AuditVerify: %v", err)
	}
	if len(av.Publications) != 1 || av.Publications[0].Claim != id || len(av.Publications[0].Report.Corrections) != 1 {
		t.Errorf("AuditVerify publications = %+v", av.Publications)
	}

	// Nothing private in anything published.
	published := [][]byte{fetch(t, r.srv.URL+protocol.PathClaims), fetch(t, res.URL), fetch(t, res.URL+protocol.PathTrailSuffix), fetch(t, r.srv.URL+protocol.PathClaimsFeed)}
	for _, rc := range r.tips {
		for _, secret := range []string{rc.TipIDString(), hex.EncodeToString(rc.SHA256[:]), privateWhy, note} {
			for i, b := range published {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("published document %d holds %q", i, secret)
				}
			}
		}
	}
	for _, text := range r.texts {
		for i, b := range published {
			if bytes.Contains(b, []byte(text)) {
				t.Errorf("published document %d holds a tip's text", i)
			}
		}
	}
	if !bytes.Contains(published[1], []byte(claimText)) {
		t.Error("the claim's page does not hold its text")
	}
}

// TestClaimsPeriodClose: a tip of today cannot be linked (its period has
// no root); after ClosePeriod it can, and a tip sent after the close is
// dated the next day.
func TestClaimsPeriodClose(t *testing.T) {
	r := newClaimRoom(t, 0)
	ctx := context.Background()
	alice := r.room.alice
	today := r.send(t, "a tip of today")
	id, _, err := r.desk(t, alice).NewClaim(ctx, "A claim that cannot wait.", "")
	if err != nil {
		t.Fatal(err)
	}
	var nr *NoRootError
	if _, err := r.desk(t, alice).Link(ctx, id.String(), today.TipIDString(), supports("a", "b")); !errors.As(err, &nr) {
		t.Fatalf("Link before the close = %v, want a *NoRootError", err)
	}
	pr, err := r.desk(t, r.room.bob).ClosePeriod(ctx)
	if err != nil {
		t.Fatalf("ClosePeriod: %v", err)
	}
	if pr.Closed.Last != today.Day || pr.Closed.Next != addDay(today.Day, 1) || pr.Closed.Receipts <= pr.Index {
		t.Errorf("ClosePeriod = %+v (event %d), want the period of %s closed", pr.Closed, pr.Index, today.Day)
	}
	l, err := r.desk(t, alice).Link(ctx, id.String(), today.TipIDString(), supports("a", "b"))
	if err != nil || l.Handle.Receipts != pr.Closed.Receipts {
		t.Fatalf("Link after the close = %+v, %v", l, err)
	}
	if later := r.send(t, "a later tip"); later.Day != pr.Closed.Next {
		t.Errorf("a tip after the close is dated %s, want %s", later.Day, pr.Closed.Next)
	}
	st := r.desk(t, alice).Editorial().State
	if p := st.Periods(); len(p) != 1 || p[0].Editor != "bob" || p[0].Index != pr.Index {
		t.Errorf("period events = %+v, want bob's", p)
	}
}
