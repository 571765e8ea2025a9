package audit

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"fieldtip/crypto"

	"filippo.io/age"
)

// replayAll opens every event of the log with one editor's identity and
// applies it to a new State, bundles added, as newsdesk does.
func replayAll(t *testing.T, c *claimLog, id age.Identity) *State {
	t.Helper()
	v, err := c.verify()
	if err != nil {
		t.Fatal(err)
	}
	s := NewState()
	for i, e := range c.entries {
		switch firstLine(e) {
		case crypto.BundleHeader:
			s.AddBundle(v.BundleAt(int64(i) + 1))
		case EventHeader:
			ev, err := OpenEvent(e, v.BundleAt(int64(i)))
			if err != nil {
				t.Fatal(err)
			}
			body, _, err := OpenEventBody(c.bodies[int64(i)], ev, id)
			if err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			if err := s.Apply(int64(i), ev, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

// Every refusal of docs/claims.md's table, made by real editors in a real
// log: two editors who replay it refuse the same events for the same
// reasons and reach the same state, and an auditor who replays the
// claim's public parts alone makes the same decisions.
func TestReplayClaimRefusals(t *testing.T) {
	bob := newEditor(t, "bob")
	c := newClaimLog(t, crypto.Policy{Clusters: 2, Approvals: 1}, testAlice, bob)
	r := c.receipts("2026-03-13", tipHash(1), tipHash(2), tipHash(3))
	id, other := ClaimID{1}, ClaimID{2}
	want := []Refusal{}
	refused := func(i int64, editor, reason string) {
		want = append(want, Refusal{Index: i, Editor: editor, Reason: reason})
	}

	refused(c.link("alice", id, r, 1, StanceSupports, "a"), "alice", ReasonUnknownClaim)
	c.claim("alice", id, "The claim.")
	c.claim("bob", other, "Another claim.")
	l1 := c.link("alice", id, r, 1, StanceSupports, "a")
	refused(c.link("bob", id, r, 1, StanceSupports, "b"), "bob", ReasonAlreadyLinked)
	// A link citing a receipts root at or after itself.
	next := int64(len(c.entries))
	refused(c.event("alice", &EventBody{Kind: KindLink, Claim: id, Stance: StanceSupports, Cluster: "b", Reliability: "A",
		Credibility: 1, Access: AccessDocument, Why: "w", Handle: Leaf{7}, Receipts: next, Tip: tipID(7), Ciphertext: [32]byte{7}}), "alice", ReasonReceiptsAfter)
	refused(c.unlink("bob", other, l1), "bob", ReasonNotActiveLink)
	refused(c.unlink("bob", id, l1-1), "bob", ReasonNotActiveLink)
	// A sign-off counting a change the claim has not had, and one naming
	// evidence it never had.
	cs := c.state.Claim(id)
	refused(c.event("bob", &EventBody{Kind: KindSignoff, Claim: id, Version: cs.Version().Index, Evidence: cs.Evidence(),
		Changes: cs.Changes + 1, Decision: DecisionApprove}), "bob", ReasonSignoffState)
	refused(c.event("bob", &EventBody{Kind: KindSignoff, Claim: id, Version: cs.Version().Index, Evidence: EvidenceHash(nil),
		Changes: cs.Changes, Decision: DecisionApprove}), "bob", ReasonSignoffState)
	c.signoff("bob", id, DecisionApprove)
	refused(c.publish("alice", id), "alice", ReasonPolicy+": needs 1 more supporting cluster")
	c.link("bob", id, r, 2, StanceSupports, "b")
	c.signoff("bob", id, DecisionApprove)
	cs = c.state.Claim(id)
	refused(c.event("alice", &EventBody{Kind: KindPublish, Claim: id, Version: cs.Version().Index, Evidence: cs.Evidence(),
		Changes: cs.Changes, Events: cs.Events - 1}), "alice", fmt.Sprintf("%s: %d events, the claim has %d", ReasonPublishMismatch, cs.Events-1, cs.Events))
	refused(c.event("alice", &EventBody{Kind: KindCorrect, Claim: id, Correction: CorrectionCorrection, Text: "Early."}), "alice", ReasonNotPublished)
	pub := c.publish("alice", id)
	refused(c.claim("alice", id, "An edit."), "alice", ReasonClaimPublished)
	refused(c.link("bob", id, r, 3, StanceContext, "c"), "bob", ReasonClaimPublished)
	refused(c.unlink("bob", id, l1), "bob", ReasonClaimPublished)
	refused(c.signoff("bob", id, DecisionReject), "bob", ReasonClaimPublished)
	refused(c.publish("alice", id), "alice", ReasonAlreadyPublished)
	corr := c.event("bob", &EventBody{Kind: KindCorrect, Claim: id, Correction: CorrectionClarification, Text: "At night."})
	c.event("bob", &EventBody{Kind: KindPeriod})

	if got := c.state.Refused(); !reflect.DeepEqual(got, want) {
		t.Errorf("refused:\n%+v\nwant:\n%+v", got, want)
	}
	sa, sb := replayAll(t, c, testAlice.Identity), replayAll(t, c, bob.Identity)
	if !bytes.Equal(sa.Marshal(), sb.Marshal()) || sa.Digest() != sb.Digest() || !bytes.Equal(sa.Marshal(), c.state.Marshal()) {
		t.Fatalf("alice's and bob's states differ:\n%s\n%s", sa.Marshal(), sb.Marshal())
	}
	got := sa.Claim(id)
	if got.Published == nil || got.Published.Index != pub || len(got.Corrections) != 1 || got.Corrections[0].Index != corr {
		t.Errorf("claim: published %+v, corrections %+v", got.Published, got.Corrections)
	}
	if got.Links[0].Tip != tipID(1) || got.Signoffs[0].Note != "private note of bob" {
		t.Errorf("the state lost private fields: %+v %+v", got.Links[0], got.Signoffs[0])
	}
	if ps := sa.Periods(); len(ps) != 1 || ps[0].Editor != "bob" {
		t.Errorf("periods %+v", ps)
	}

	// From public parts alone: the same claim, less its private fields,
	// and the same refusals of its events.
	pubState, pubRefused, err := ReplayClaim(sa.ClaimEvents(id), c.testLog.bundle)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got.Links {
		got.Links[i].Tip, got.Links[i].Ciphertext, got.Links[i].PrivateWhy = [16]byte{}, [32]byte{}, ""
	}
	for i := range got.Signoffs {
		got.Signoffs[i].Note = ""
	}
	if !reflect.DeepEqual(pubState, got) {
		t.Errorf("ReplayClaim:\n%+v\nwant:\n%+v", pubState, got)
	}
	// Less the link before the claim existed and the unlink of the
	// other claim, which are not events of this one.
	wantClaim := append(want[1:3:3], want[4:]...)
	if !reflect.DeepEqual(pubRefused, wantClaim) {
		t.Errorf("ReplayClaim refused:\n%+v\nwant:\n%+v", pubRefused, wantClaim)
	}
}

// The cap on a claim's events: the 1001st is refused and is not an event
// of the claim.
func TestReplayClaimCap(t *testing.T) {
	id := ClaimID{1}
	events := []ClaimEvent{{Index: 1, Editor: "alice", Day: "2026-03-14", Body: &EventBody{Kind: KindClaim, Claim: id, Text: "x"}}}
	for i := int64(2); i <= MaxClaimEvents+1; i++ {
		events = append(events, ClaimEvent{Index: i, Editor: "bob", Day: "2026-03-14",
			Body: &EventBody{Kind: KindCorrect, Claim: id, Correction: CorrectionCorrection, Text: "x"}})
	}
	r, err := replayClaim(events, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	if r.c.Events != MaxClaimEvents || len(r.events) != MaxClaimEvents || len(r.refused) != MaxClaimEvents-1 {
		t.Errorf("events %d, recorded %d, refused %d", r.c.Events, len(r.events), len(r.refused))
	}
	if reason := r.apply(events[len(events)-1], nil); reason != ReasonClaimFull {
		t.Errorf("event over the cap: %q", reason)
	}
}

// The publication policy, case by case (issue 9): the cases where a
// publication must be refused, and those where it must pass. Each case
// is a real log; the policy is evaluated from the claim's public parts,
// and a publication logged after it is refused, or not, by replay with
// the same words.
func TestPolicy(t *testing.T) {
	type setup struct {
		c  *claimLog
		id ClaimID
		r  int64
	}
	support2 := func(s setup) {
		s.c.link("alice", s.id, s.r, 1, StanceSupports, "mine workers")
		s.c.link("alice", s.id, s.r, 2, StanceSupports, "customs papers")
	}
	for _, tc := range []struct {
		name    string
		build   func(s setup)
		lacking []string // nil: met
		check   func(t *testing.T, res *PolicyResult)
	}{
		{"met", func(s setup) {
			support2(s)
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("carol", s.id, DecisionApprove)
		}, nil, func(t *testing.T, res *PolicyResult) {
			if !reflect.DeepEqual(res.Approvers, []string{"bob", "carol"}) || len(res.Clusters) != 2 {
				t.Errorf("approvers %v, clusters %v", res.Approvers, res.Clusters)
			}
		}},
		{"one cluster", func(s setup) {
			s.c.link("alice", s.id, s.r, 1, StanceSupports, "mine workers")
			s.c.link("bob", s.id, s.r, 2, StanceSupports, "mine workers")
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("carol", s.id, DecisionApprove)
		}, []string{"needs 1 more supporting cluster"}, nil},
		{"no evidence, no approvals", func(s setup) {}, []string{"needs 2 more supporting clusters", "needs 2 more approvals from editors other than alice"}, nil},
		{"one editor approving twice", func(s setup) {
			support2(s)
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("bob", s.id, DecisionApprove)
		}, []string{"needs an approval from an editor other than alice and bob"}, nil},
		{"the author as one of two approvers", func(s setup) {
			support2(s)
			s.c.signoff("alice", s.id, DecisionApprove)
			s.c.signoff("bob", s.id, DecisionApprove)
		}, []string{"needs an approval from an editor other than alice and bob", "alice's approval does not count: alice wrote this version"}, nil},
		{"approvals older than the last evidence change", func(s setup) {
			support2(s)
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("carol", s.id, DecisionApprove)
			s.c.link("alice", s.id, s.r, 3, StanceContext, "a driver") // index 7
		}, []string{"needs 2 more approvals from editors other than alice",
			"bob's approval predates the last change (link at 7)", "carol's approval predates the last change (link at 7)"}, nil},
		{"an approval older than an unlink", func(s setup) {
			support2(s)
			l := s.c.link("bob", s.id, s.r, 3, StanceSupports, "a driver")
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.unlink("alice", s.id, l) // index 7
			s.c.signoff("carol", s.id, DecisionApprove)
		}, []string{"needs an approval from an editor other than alice and carol", "bob's approval predates the last change (unlink at 7)"}, nil},
		{"approvals older than a claim edit", func(s setup) {
			support2(s)
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("carol", s.id, DecisionApprove)
			s.c.claim("alice", s.id, "Copper leaves Hyesan by truck, at night.") // index 7
			s.c.signoff("carol", s.id, DecisionApprove)
		}, []string{"needs an approval from an editor other than alice and carol", "bob's approval predates the last change (edit at 7)"}, nil},
		{"an edit makes its editor the author", func(s setup) {
			support2(s)
			s.c.claim("bob", s.id, "Copper leaves Hyesan by truck, at night.")
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("alice", s.id, DecisionApprove)
		}, []string{"needs an approval from an editor other than bob and alice", "bob's approval does not count: bob wrote this version"}, nil},
		{"a revoked editor's approval", func(s setup) {
			support2(s)
			s.c.signoff("dave", s.id, DecisionApprove)
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.bundle(2, crypto.DefaultPolicy, []*crypto.EditorKey{s.c.editors["alice"], s.c.editors["bob"], s.c.editors["carol"]}, "dave")
		}, []string{"needs an approval from an editor other than alice and bob", "dave's approval does not count: dave is revoked"}, nil},
		{"an editor no longer listed", func(s setup) {
			support2(s)
			s.c.signoff("dave", s.id, DecisionApprove)
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.bundle(2, crypto.DefaultPolicy, []*crypto.EditorKey{s.c.editors["alice"], s.c.editors["bob"], s.c.editors["carol"]})
		}, []string{"needs an approval from an editor other than alice and bob", "dave's approval does not count: dave is not an editor of bundle 2"}, nil},
		{"a reject blocks", func(s setup) {
			support2(s)
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("carol", s.id, DecisionApprove)
			s.c.signoff("dave", s.id, DecisionReject)
		}, []string{"dave rejected this version"}, func(t *testing.T, res *PolicyResult) {
			if len(res.Objections) != 1 || res.Objections[0].Editor != "dave" {
				t.Errorf("objections %+v", res.Objections)
			}
		}},
		{"needs-work blocks", func(s setup) {
			support2(s)
			s.c.signoff("dave", s.id, DecisionNeedsWork)
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("carol", s.id, DecisionApprove)
		}, []string{"dave asked for more work on this version"}, nil},
		{"a reject stands until the claim changes", func(s setup) {
			support2(s)
			s.c.signoff("dave", s.id, DecisionReject)
			s.c.link("alice", s.id, s.r, 3, StanceContext, "a driver")
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("carol", s.id, DecisionApprove)
		}, nil, nil},
		{"the latest sign-off counts: a reject withdraws an approval", func(s setup) {
			support2(s)
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("carol", s.id, DecisionApprove)
			s.c.signoff("bob", s.id, DecisionReject)
		}, []string{"bob rejected this version", "needs an approval from an editor other than alice and carol"}, nil},
		{"the latest sign-off counts: an approval after a reject", func(s setup) {
			support2(s)
			s.c.signoff("bob", s.id, DecisionReject)
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("carol", s.id, DecisionApprove)
		}, nil, nil},
		{"contradicting links are shown, not counted", func(s setup) {
			s.c.link("alice", s.id, s.r, 1, StanceSupports, "mine workers")
			s.c.link("alice", s.id, s.r, 2, StanceContradicts, "customs papers")
			s.c.link("alice", s.id, s.r, 3, StanceContext, "a driver")
			s.c.signoff("bob", s.id, DecisionApprove)
			s.c.signoff("carol", s.id, DecisionApprove)
		}, []string{"needs 1 more supporting cluster"}, func(t *testing.T, res *PolicyResult) {
			if len(res.Others) != 2 || res.Others[0].Stance != StanceContradicts || len(res.Clusters) != 1 {
				t.Errorf("others %+v, clusters %+v", res.Others, res.Clusters)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClaimLog(t, crypto.DefaultPolicy, testAlice, newEditor(t, "bob"), newEditor(t, "carol"), newEditor(t, "dave"))
			s := setup{c: c, id: ClaimID{4}, r: c.receipts("2026-03-13", tipHash(1), tipHash(2), tipHash(3))}
			c.claim("alice", s.id, "Copper leaves Hyesan by truck.") // index 2
			tc.build(s)
			res, err := EvaluatePolicy(c.testLog.bundle, c.state.ClaimEvents(s.id), int64(len(c.entries)))
			if err != nil {
				t.Fatal(err)
			}
			if res.Met != (tc.lacking == nil) || !reflect.DeepEqual(res.Lacking, tc.lacking) {
				t.Fatalf("EvaluatePolicy: met %v, lacking %q; want %q", res.Met, res.Lacking, tc.lacking)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
			before := len(c.state.Refused())
			pub := c.publish("alice", s.id)
			refused := c.state.Refused()[before:]
			if tc.lacking == nil {
				if len(refused) != 0 || c.state.Claim(s.id).Published == nil {
					t.Fatalf("publication refused: %+v", refused)
				}
				return
			}
			want := []Refusal{{Index: pub, Editor: "alice", Reason: ReasonPolicy + ": " + strings.Join(tc.lacking, "; ")}}
			if !reflect.DeepEqual(refused, want) {
				t.Fatalf("publication: refused %+v, want %+v", refused, want)
			}
		})
	}
}
