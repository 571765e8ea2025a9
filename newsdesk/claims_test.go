package newsdesk

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
)

// The tests of this file run the claim commands' library through a real
// server (SQLite, loopback HTTP, real keys) for three editors, alice, bob
// and carol, with the default policy: 2 supporting clusters, 2 approvals.

// claimRoom is a server whose bundle lists alice, bob and carol, and tips
// sent on the first day whose receipts root is logged (the clock moved a
// day, the purge run), so that they can be linked.
type claimRoom struct {
	*evDesk
	tips  []*crypto.Receipt
	texts []string
	// caches are each editor's, by label.
	caches map[string]*Cache
}

func newClaimRoom(t testing.TB, ntips int) *claimRoom {
	t.Helper()
	room := newEvRoom(t, true)
	r := &claimRoom{evDesk: newEvDesk(t, room, room.alice, room.bob, room.carol), caches: map[string]*Cache{}}
	for i := range ntips {
		r.texts = append(r.texts, marker("tip"+string(rune('1'+i))))
		r.tips = append(r.tips, r.send(t, r.texts[i]))
	}
	r.clock.advance(24 * time.Hour)
	r.srv.Server.Purge(context.Background())
	for _, k := range []*crypto.EditorKey{room.alice, room.bob, room.carol} {
		r.caches[k.Label] = r.newCache(t)
	}
	return r
}

// desk opens a desk as the editor of key, in that editor's cache.
func (r *claimRoom) desk(t testing.TB, key *crypto.EditorKey) *Desk {
	t.Helper()
	d, err := r.caches[key.Label].OpenDesk(context.Background(), r.srv.URL, key, r.opts)
	if err != nil {
		t.Fatalf("OpenDesk as %s: %v", key.Label, err)
	}
	d.now, d.s.now = r.clock.now, r.clock.now
	return d
}

func supports(cluster, why string) LinkSpec {
	return LinkSpec{Stance: audit.StanceSupports, Cluster: cluster, Reliability: "B", Credibility: 2, Access: audit.AccessFirstHand, Why: why}
}

// TestClaimsWalk: alice writes a claim and links two tips in one cluster;
// bob and carol approve; the policy lacks a second cluster. A third tip
// in a second cluster voids their approvals (it changes the evidence);
// they approve again and the claim is ready. At every step the summary
// says exactly what is lacking, and every editor replays the same state.
func TestClaimsWalk(t *testing.T) {
	r := newClaimRoom(t, 3)
	ctx := context.Background()
	alice, bob, carol := r.room.alice, r.room.bob, r.room.carol

	d := r.desk(t, alice)
	claimText := marker("claim")
	id, v1, err := d.NewClaim(ctx, claimText, "Hyesan, March")
	if err != nil {
		t.Fatal(err)
	}
	d = r.desk(t, alice)
	why := marker("why")
	privateWhy := marker("privatewhy")
	l1, err := d.Link(ctx, id.String(), r.tips[0].TipIDString(), supports("customs", why))
	if err != nil {
		t.Fatalf("Link tip 1: %v", err)
	}
	if l1.Handle.Receipts < 1 || l1.Handle.Period != audit.OneDay(r.tips[0].Day) {
		t.Errorf("tip 1's handle = %+v, want the receipts root of %s", l1.Handle, r.tips[0].Day)
	}
	spec := supports("customs", privateWhy)
	spec.PrivateWhy = true
	d = r.desk(t, alice)
	if _, err := d.Link(ctx, id.String(), r.tips[1].TipIDString(), spec); err != nil {
		t.Fatalf("Link tip 2: %v", err)
	}

	summary := func(who *crypto.EditorKey) ClaimSummary {
		t.Helper()
		s, err := r.desk(t, who).Claims()
		if err != nil || len(s) != 1 {
			t.Fatalf("Claims as %s = %+v, %v; want one claim", who.Label, s, err)
		}
		return s[0]
	}
	s := summary(bob)
	if s.State != "draft" || s.Version != v1 || !slices.Equal(s.Clusters, []string{"customs"}) || len(s.Approvals) != 0 ||
		!slices.Equal(s.Lacking, []string{"needs 1 more supporting cluster", "needs 2 more approvals from editors other than alice"}) {
		t.Errorf("summary after two links in one cluster = %+v", s)
	}

	for _, k := range []*crypto.EditorKey{bob, carol} {
		res, err := r.desk(t, k).Signoff(ctx, id.String(), audit.DecisionApprove, marker("note"))
		if err != nil {
			t.Fatalf("%s approves: %v", k.Label, err)
		}
		if len(res.Notes) != 0 {
			t.Errorf("%s's approval notes = %q, want none", k.Label, res.Notes)
		}
	}
	s = summary(alice)
	if !slices.Equal(s.Approvals, []string{"bob", "carol"}) || !slices.Equal(s.Lacking, []string{"needs 1 more supporting cluster"}) {
		t.Errorf("summary after two approvals = %+v", s)
	}

	l3, err := r.desk(t, alice).Link(ctx, id.String(), r.tips[2].TipIDString(), supports("drivers", "a second route"))
	if err != nil {
		t.Fatalf("Link tip 3: %v", err)
	}
	s = summary(alice)
	wantLacking := []string{"needs 2 more approvals from editors other than alice",
		"bob's approval predates the last change (link at " + itoa(l3.Index) + ")",
		"carol's approval predates the last change (link at " + itoa(l3.Index) + ")"}
	if !slices.Equal(s.Clusters, []string{"customs", "drivers"}) || !slices.Equal(s.Lacking, wantLacking) {
		t.Errorf("summary after the third link = %+v, want lacking %q", s, wantLacking)
	}
	res, err := r.desk(t, bob).Signoff(ctx, id.String(), audit.DecisionApprove, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Policy.Met || !slices.Equal(res.Policy.Lacking, []string{"needs an approval from an editor other than alice and bob", "carol's approval predates the last change (link at " + itoa(l3.Index) + ")"}) {
		t.Errorf("policy after bob's second approval = %+v", res.Policy)
	}
	res, err = r.desk(t, carol).Signoff(ctx, id.String(), audit.DecisionApprove, "")
	if err != nil || !res.Policy.Met {
		t.Fatalf("carol's second approval: %+v, %v; want the policy met", res, err)
	}
	s = summary(carol)
	if s.State != "ready" || len(s.Lacking) != 0 || !slices.Equal(s.Approvals, []string{"bob", "carol"}) {
		t.Errorf("summary when met = %+v", s)
	}

	// Every editor replays the same state; no public part holds a tip
	// id, a ciphertext hash or a private why; the private parts do.
	eds := map[string]*Editorial{}
	for _, k := range []*crypto.EditorKey{alice, bob, carol} {
		eds[k.Label] = r.desk(t, k).Editorial()
	}
	if a, b, c := eds["alice"].State.Marshal(), eds["bob"].State.Marshal(), eds["carol"].State.Marshal(); !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Fatalf("the editors replay different states:\n%s\n%s\n%s", a, b, c)
	}
	var privates []byte
	for _, o := range eds["alice"].Events {
		for _, rc := range r.tips {
			for _, secret := range []string{rc.TipIDString(), hex.EncodeToString(rc.SHA256[:]), privateWhy} {
				if bytes.Contains(o.Parts.Public, []byte(secret)) {
					t.Errorf("the public part of event %d holds %q: %s", o.Index, secret, o.Parts.Public)
				}
			}
		}
		privates = append(privates, o.Parts.Private...)
	}
	for _, want := range []string{r.tips[0].TipIDString(), hex.EncodeToString(r.tips[1].SHA256[:]), privateWhy} {
		if !bytes.Contains(privates, []byte(want)) {
			t.Errorf("no private part holds %q", want)
		}
	}
	c := eds["bob"].State.Claim(id)
	if c.Links[0].Tip != r.tips[0].TipID || c.Links[1].PrivateWhy != privateWhy || c.Links[0].Why != why {
		t.Errorf("bob's replay of the links = %+v", c.Links)
	}
	// Nothing decrypted is on disk.
	for _, cache := range r.caches {
		fieldtiptest.AssertNoPlaintext(t, cache.Dir, append(slices.Clone(r.texts), claimText, why, privateWhy)...)
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// TestClaimsRefusedLocally: the mistakes a hurried editor makes are
// refused before anything is logged, each saying what to do: an unknown
// or mistyped claim id, an approval with no evidence, a second link of a
// tip, an unlink of a tip not linked, a deleted tip, an edit that changes
// nothing, a correction of an unpublished claim, a publication the policy
// refuses (with what is lacking). A tip of today, whose period has no
// root yet, is a *NoRootError saying when it can be linked.
func TestClaimsRefusedLocally(t *testing.T) {
	r := newClaimRoom(t, 2)
	ctx := context.Background()
	alice, bob := r.room.alice, r.room.bob
	id, _, err := r.desk(t, alice).NewClaim(ctx, "Copper leaves Hyesan by truck.", "")
	if err != nil {
		t.Fatal(err)
	}
	claim := id.String()
	if _, err := r.desk(t, alice).Link(ctx, claim, r.tips[0].TipIDString(), supports("customs", "seen")); err != nil {
		t.Fatal(err)
	}
	// A spam tip, deleted.
	spam := r.tips[1].TipIDString()
	if _, err := r.caches["bob"].Triage(ctx, r.srv.URL, bob, spam, audit.StatusSpam, nil, "", r.opts); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.caches["bob"].Delete(ctx, r.srv.URL, bob, spam, r.opts); err != nil {
		t.Fatal(err)
	}
	today := r.send(t, "a tip of today")
	size := r.logSize(t)

	// One character changed for another of the alphabet.
	typo := []byte(claim)
	if typo[5] == 'A' {
		typo[5] = 'B'
	} else {
		typo[5] = 'A'
	}
	other, err := audit.GenerateClaimID()
	if err != nil {
		t.Fatal(err)
	}
	d := r.desk(t, bob)
	for _, c := range []struct {
		name string
		err  error
		want []error
		text []string
	}{
		{"mistyped claim id", func() error { _, err := d.Signoff(ctx, string(typo), audit.DecisionApprove, ""); return err }(),
			[]error{ErrNoSuchClaim}, []string{"did you mean " + claim + "?"}},
		{"malformed claim id", func() error { _, err := d.Signoff(ctx, "nope", audit.DecisionApprove, ""); return err }(),
			[]error{crypto.ErrMalformed}, []string{`claim id "nope"`}},
		{"unknown claim", func() error { _, err := d.Unlink(ctx, other.String(), r.tips[0].TipIDString()); return err }(),
			[]error{ErrNoSuchClaim}, []string{"newsdesk claims lists them"}},
		{"bad decision", func() error { _, err := d.Signoff(ctx, claim, "maybe", ""); return err }(),
			nil, []string{`decision "maybe" is not one of approve, reject, needs-work`}},
		{"second link", func() error {
			_, err := d.Link(ctx, claim, r.tips[0].TipIDString(), supports("drivers", "again"))
			return err
		}(), []error{ErrAlreadyLinked}, nil},
		{"deleted tip", func() error { _, err := d.Link(ctx, claim, spam, supports("drivers", "x")); return err }(),
			[]error{ErrTipDeleted}, nil},
		{"unknown tip", func() error {
			_, err := d.Link(ctx, claim, "AAAAAAAAAAAAAAAAAAAAAA", supports("drivers", "x"))
			return err
		}(),
			nil, []string{"neither on the server nor in"}},
		{"unlink a tip not linked", func() error { _, err := d.Unlink(ctx, claim, today.TipIDString()); return err }(),
			[]error{ErrNotLinked}, nil},
		{"edit without change", func() error { _, err := d.EditClaim(ctx, claim, "Copper leaves Hyesan by truck.", nil); return err }(),
			[]error{ErrNoChange}, nil},
		{"correct a draft", func() error {
			_, err := CorrectBody(d.Editorial().State, claim, audit.CorrectionCorrection, "x")
			return err
		}(),
			[]error{ErrClaimNotPublished}, nil},
		{"bad reliability", func() error {
			s := supports("drivers", "x")
			s.Reliability = "G"
			_, err := d.Link(ctx, claim, today.TipIDString(), s)
			return err
		}(), nil, []string{`reliability "G" is not one of A, B, C, D, E, F`}},
	} {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !errors.Is(c.err, w) {
				t.Errorf("%s: %v, want %v", c.name, c.err, w)
			}
		}
		for _, w := range c.text {
			if !strings.Contains(c.err.Error(), w) {
				t.Errorf("%s: %q lacks %q", c.name, c.err, w)
			}
		}
	}

	// A tip of today: no root covers its day yet.
	_, err = d.Link(ctx, claim, today.TipIDString(), supports("drivers", "x"))
	var nr *NoRootError
	if !errors.As(err, &nr) || nr.Day != today.Day || !strings.Contains(err.Error(), "newsdesk period close") ||
		!strings.Contains(err.Error(), "00:00 UTC on "+addDay(today.Day, 1)) {
		t.Errorf("Link of a tip of today = %v, want a *NoRootError for %s saying when", err, today.Day)
	}
	if got := r.logSize(t); got != size {
		t.Errorf("refusals changed the log from %d to %d entries", size, got)
	}

	// An approval with no supporting evidence: refused.
	id2, _, err := r.desk(t, alice).NewClaim(ctx, "A second claim.", "")
	if err != nil {
		t.Fatal(err)
	}
	size = r.logSize(t)
	d = r.desk(t, bob)
	if _, err := d.Signoff(ctx, id2.String(), audit.DecisionApprove, ""); !errors.Is(err, ErrNothingToApprove) {
		t.Errorf("approval with no evidence = %v, want ErrNothingToApprove", err)
	}
	// The publication: the policy says what is lacking.
	_, _, err = PublishBody(d.Editorial().State, d.View().Bundle, d.View().Tree.N, claim, nil)
	var pe *PolicyError
	if !errors.As(err, &pe) || !slices.Equal(pe.Lacking, []string{"needs 1 more supporting cluster", "needs 2 more approvals from editors other than alice"}) {
		t.Errorf("PublishBody = %v, want a *PolicyError lacking a cluster and two approvals", err)
	}
	if got := r.logSize(t); got != size {
		t.Errorf("refusals changed the log from %d to %d entries", size, got)
	}

	// A rejection with no evidence is fine, and so is the author's own
	// approval, with a note saying it will not count.
	if _, err := r.desk(t, bob).Signoff(ctx, id2.String(), audit.DecisionReject, "no evidence"); err != nil {
		t.Errorf("a rejection with no evidence: %v", err)
	}
	res, err := r.desk(t, alice).Signoff(ctx, claim, audit.DecisionApprove, "")
	if err != nil || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "you wrote version") {
		t.Errorf("the author's approval = %+v, %v; want it logged with a note", res, err)
	}
	res, err = r.desk(t, alice).Signoff(ctx, claim, audit.DecisionApprove, "")
	if err != nil || len(res.Notes) != 2 || !strings.Contains(res.Notes[1], "signed off this same state before") {
		t.Errorf("the author's second approval = %+v, %v; want two notes", res, err)
	}
	s, err := r.desk(t, bob).Claims()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s {
		if c.ID == claim && !slices.Contains(c.Lacking, "alice's approval does not count: alice wrote this version") {
			t.Errorf("summary = %+v, want alice's approval explained", c)
		}
	}
}

// BenchmarkClaimLink: linking a tip to a claim (its handle computed from
// the period key, proved in the period's receipts tree and checked
// against the logged root, then the event written) and withdrawing the
// link, against two notes on the tip written the same way, measured in
// the same run: what the handle and the claim checks cost over a plain
// event. Reports ns per pair of each and their ratio.
//
//	go test -tags sqlite_omit_load_extension -run '^$' -bench ClaimLink ./newsdesk
func BenchmarkClaimLink(b *testing.B) {
	r := newClaimRoom(b, 1)
	ctx := context.Background()
	d := r.desk(b, r.room.alice)
	defer d.Close()
	id, _, err := d.NewClaim(ctx, "A claim to link to.", "")
	if err != nil {
		b.Fatal(err)
	}
	tip := r.tips[0].TipIDString()
	var notes, links time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		for _, text := range []string{"one", "two"} {
			if _, err := d.s.Note(ctx, tip, text); err != nil {
				b.Fatal(err)
			}
		}
		mid := time.Now()
		if _, err := d.Link(ctx, id.String(), tip, supports("drivers", "seen")); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Unlink(ctx, id.String(), tip); err != nil {
			b.Fatal(err)
		}
		notes, links, n = notes+mid.Sub(start), links+time.Since(mid), n+1
	}
	b.ReportMetric(float64(notes.Nanoseconds())/float64(n), "ns/note-pair")
	b.ReportMetric(float64(links.Nanoseconds())/float64(n), "ns/link-unlink")
	b.ReportMetric(float64(links)/float64(notes), "ratio")
}
