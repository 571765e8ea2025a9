package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"log/slog"
	"time"

	"fieldtip/audit"
	"fieldtip/client"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"
)

// claimRun is a server with three editors, tips from sources, a receipts
// period closed early over them (a period event, then POST
// /editor/period/close), and each tip's handle as an editor computes it.
type claimRun struct {
	*receiptsRun
	t      testing.TB
	tokens []string
	// tips are the sources' tips, with their texts; handles their leaves;
	// receipts the log index of their period's root.
	tips     []*client.Result
	texts    []string
	handles  []audit.Leaf
	receipts int64
}

// newClaimRun starts the server, sends one tip per text, and closes the
// period.
func newClaimRun(t *testing.T, texts ...string) *claimRun {
	t.Helper()
	r := newEditorsRun(t, nil)
	for _, text := range texts {
		r.tips = append(r.tips, r.send(t, text))
		r.texts = append(r.texts, text)
	}
	closed := r.closePeriod(0)
	r.receipts = closed.Receipts
	root := r.rootAt(t, closed.Receipts)
	k, _ := r.period(t, root, r.editors[0])
	for _, tip := range r.tips {
		r.handles = append(r.handles, audit.TipLeaf(k, tip.Receipt.SHA256))
	}
	return r
}

// newEditorsRun starts a server as newReceiptsRun does (trees of 8 leaves,
// periods of a day, the clock at noon UTC, hooks set by beforeServe if
// not nil), puts in force a bundle of three editors, and logs them in.
func newEditorsRun(t testing.TB, beforeServe func(*Server)) *claimRun {
	t.Helper()
	logs := &lockedBuffer{}
	ts := newTestServer(t, serverOptions{editors: 2, beforeServe: beforeServe,
		config: func(c *Config) { c.ReceiptsTreeSize = 8; c.ReceiptsPeriodDays = 1 },
		logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	now := ts.clock.now().UTC()
	ts.clock.advance(time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, time.UTC).Sub(now))
	h := &logHarness{tb: t, dir: ts.dir, newsroom: ts.newsroom, logKey: ts.logKey, editors: ts.editors, bundle: ts.bundle, logger: ts.cfg.Logger}
	rr := &receiptsRun{testServer: ts, lr: &logRun{h: h, s: ts.s, store: ts.store, origin: ts.origin()}, logs: logs}
	ts.s.purgeTips(context.Background())
	r := &claimRun{receiptsRun: rr, t: t}
	// Three editors: the run's two and one more, in a bundle of version 2.
	r.editors = append(r.editors, newEditorKey(t, "editor-2", true))
	b2 := r.makeBundle(t, 2, nil)
	if e := publish(t, r.testServer, b2.Signed()); e != nil {
		t.Fatalf("publish bundle 2: %v", e)
	}
	for _, k := range r.editors {
		r.tokens = append(r.tokens, r.lr.login(t, k))
	}
	return r
}

// rootAt returns the logged receipts root at index.
func (r *claimRun) rootAt(t *testing.T, index int64) loggedRoot {
	t.Helper()
	for _, l := range r.roots(t) {
		if l.index == index {
			return l
		}
	}
	t.Fatalf("no receipts root at %d", index)
	return loggedRoot{}
}

// logBody seals body to the bundle in force, signs its event as editor
// over the log's checkpoint, logs it, and returns its index and what an
// editor reveals of it.
func (r *claimRun) logBody(editor int, body *audit.EventBody) (int64, protocol.RevealedEvent) {
	r.t.Helper()
	tree, _ := r.lr.checkpoint(r.t)
	sealed, err := audit.SealEventBody(body, r.s.Bundle())
	if err != nil {
		r.t.Fatalf("SealEventBody(%s) = %v", body.Kind, err)
	}
	ev, err := sealed.Event(r.today(), tree)
	if err != nil {
		r.t.Fatal(err)
	}
	signer, err := r.editors[editor].Signer()
	if err != nil {
		r.t.Fatal(err)
	}
	entry, err := audit.SignEvent(ev, signer)
	if err != nil {
		r.t.Fatal(err)
	}
	index := r.lr.logged(r.t, r.tokens[editor], &testEvent{entry: entry, body: sealed.Ciphertext, ev: ev})
	return index, protocol.RevealedEvent{Index: index, Salt: sealed.Parts.PublicSalt, Public: sealed.Parts.Public}
}

// postJSON posts a body to path as editor (-1: no session).
func (r *claimRun) postJSON(editor int, path string, body []byte) (int, []byte) {
	r.t.Helper()
	auth := ""
	if editor >= 0 {
		auth = "Bearer " + r.tokens[editor]
	}
	return httpDo(r.t, http.MethodPost, r.origin()+path, auth, body)
}

// closePeriod logs a period event as editor and closes the period.
func (r *claimRun) closePeriod(editor int) *protocol.PeriodClosed {
	r.t.Helper()
	_, rv := r.logBody(editor, &audit.EventBody{Kind: audit.KindPeriod})
	b, err := protocol.MarshalRevealedEvent(&rv)
	if err != nil {
		r.t.Fatal(err)
	}
	status, out := r.postJSON(editor, protocol.PathPeriodClose, b)
	if status != http.StatusOK {
		r.t.Fatalf("POST %s = %d %s", protocol.PathPeriodClose, status, out)
	}
	var closed protocol.PeriodClosed
	if err := protocol.DecodeJSON(bytes.NewReader(out), 1<<10, &closed); err != nil {
		r.t.Fatalf("POST %s: %v: %s", protocol.PathPeriodClose, err, out)
	}
	return &closed
}

// cosignAll has every editor listed cosign the log's checkpoint, as each
// one's newsdesk sync does.
func (r *claimRun) cosignAll(editors ...int) {
	r.t.Helper()
	_, cp := r.lr.checkpoint(r.t)
	for _, e := range editors {
		status, body := r.lr.postCosignature(r.t, r.tokens[e], cosign(r.t, r.logKey, cp, r.editors[e]))
		if status != http.StatusOK {
			r.t.Fatalf("POST /cosignature (%s) = %d %s", r.editors[e].Label, status, body)
		}
	}
}

// testClaim is a claim the editors build event by event, keeping what
// sign-offs and the publication must name, and every event revealed.
type testClaim struct {
	r       *claimRun
	id      audit.ClaimID
	events  []protocol.RevealedEvent
	version int64
	links   map[int]int64 // tip number → active link index
	changes int64
}

func (r *claimRun) newClaim(editor int, text, scope string) *testClaim {
	r.t.Helper()
	id, err := audit.GenerateClaimID()
	if err != nil {
		r.t.Fatal(err)
	}
	c := &testClaim{r: r, id: id, links: map[int]int64{}}
	c.edit(editor, text, scope)
	return c
}

func (c *testClaim) add(editor int, body *audit.EventBody) int64 {
	c.r.t.Helper()
	body.Claim = c.id
	index, rv := c.r.logBody(editor, body)
	c.events = append(c.events, rv)
	return index
}

// edit logs a version of the claim (its first, for newClaim).
func (c *testClaim) edit(editor int, text, scope string) {
	c.r.t.Helper()
	c.version = c.add(editor, &audit.EventBody{Kind: audit.KindClaim, Text: text, Scope: scope})
	c.changes++
}

// link links tip number tip with a stance and grades.
func (c *testClaim) link(editor, tip int, cluster string, stance audit.Stance) {
	c.r.t.Helper()
	tipID := c.r.tips[tip].Receipt.TipID
	c.links[tip] = c.add(editor, &audit.EventBody{Kind: audit.KindLink, Stance: stance, Cluster: cluster, Reliability: "B", Credibility: 2,
		Access: audit.AccessFirstHand, Why: "saw the trucks load at the north gate", Handle: c.r.handles[tip], Receipts: c.r.receipts,
		Tip: tipID, Ciphertext: c.r.tips[tip].Receipt.SHA256})
	c.changes++
}

func (c *testClaim) unlink(editor, tip int) {
	c.r.t.Helper()
	c.add(editor, &audit.EventBody{Kind: audit.KindUnlink, Link: c.links[tip], Tip: c.r.tips[tip].Receipt.TipID})
	delete(c.links, tip)
	c.changes++
}

func (c *testClaim) evidence() [32]byte {
	var idx []int64
	for _, i := range c.links {
		idx = append(idx, i)
	}
	return audit.EvidenceHash(idx)
}

func (c *testClaim) signoff(editor int, d audit.Decision) {
	c.r.t.Helper()
	c.add(editor, &audit.EventBody{Kind: audit.KindSignoff, Version: c.version, Evidence: c.evidence(), Changes: c.changes, Decision: d, Note: "private note of " + c.r.editors[editor].Label})
}

// publishEvent logs the publication and returns the request revealing
// every event of the claim.
func (c *testClaim) publishEvent(editor int) *protocol.PublishRequest {
	c.r.t.Helper()
	n := int64(len(c.events))
	index := c.add(editor, &audit.EventBody{Kind: audit.KindPublish, Version: c.version, Evidence: c.evidence(), Changes: c.changes, Events: n})
	return &protocol.PublishRequest{Publish: index, Events: slices.Clone(c.events)}
}

func (c *testClaim) correctEvent(editor int, typ audit.CorrectionType, text string) protocol.RevealedEvent {
	c.r.t.Helper()
	c.add(editor, &audit.EventBody{Kind: audit.KindCorrect, Correction: typ, Text: text})
	return c.events[len(c.events)-1]
}

// post sends a publish request as editor.
func (r *claimRun) post(editor int, req *protocol.PublishRequest) (int, []byte) {
	r.t.Helper()
	b, err := protocol.MarshalPublishRequest(req)
	if err != nil {
		r.t.Fatalf("MarshalPublishRequest() = %v", err)
	}
	return r.postJSON(editor, protocol.PathPublish, b)
}

// published posts a publish request that must be answered with state.
func (r *claimRun) published(editor int, req *protocol.PublishRequest, wantStatus int) *protocol.PublishReply {
	r.t.Helper()
	status, body := r.post(editor, req)
	if status != wantStatus {
		r.t.Fatalf("POST %s = %d %s, want %d", protocol.PathPublish, status, body, wantStatus)
	}
	var reply protocol.PublishReply
	if err := protocol.DecodeJSON(bytes.NewReader(body), 1<<20, &reply); err != nil {
		r.t.Fatalf("POST %s: %v: %s", protocol.PathPublish, err, body)
	}
	return &reply
}

// refused posts a publish request that must be refused with code and
// rule.
func (r *claimRun) refused(name string, editor int, req *protocol.PublishRequest, code protocol.Code, rule string) *protocol.Error {
	r.t.Helper()
	status, body := r.post(editor, req)
	e := httpError(r.t, body)
	if e.Code != code || e.Rule != rule || status != codeStatus(code) {
		r.t.Errorf("%s: POST %s = %d %+v, want %d %s rule %q", name, protocol.PathPublish, status, e, codeStatus(code), code, rule)
	}
	return e
}

// wellSupported builds a claim by editor 0 with tips 0 and 1 linked in
// two clusters and tip 2 as context, approved by editors 1 and 2.
func (r *claimRun) wellSupported() *testClaim {
	c := r.newClaim(0, "Copper concentrate leaves the Hyesan mine by truck at night.", "Hyesan, March 2026")
	c.link(0, 0, "north gate", audit.StanceSupports)
	c.link(0, 1, "rail yard", audit.StanceSupports)
	c.link(0, 2, "rail yard", audit.StanceContext)
	c.signoff(1, audit.DecisionApprove)
	c.signoff(2, audit.DecisionApprove)
	return c
}

// TestPublishRefusals: the server refuses, with the rule named, hand-built
// publications the policy or its log does not allow, stores nothing for
// them, and accepts the one that meets the policy.
func TestPublishRefusals(t *testing.T) {
	r := newClaimRun(t, "trucks at the north gate at 2am", "the rail yard loads copper at night", "the mine runs a night shift")

	// One cluster: two tips in the same cluster.
	one := r.newClaim(0, "One cluster is not enough.", "")
	one.link(0, 0, "north gate", audit.StanceSupports)
	one.link(0, 1, "north gate", audit.StanceSupports)
	one.signoff(1, audit.DecisionApprove)
	one.signoff(2, audit.DecisionApprove)
	r.cosignAll(0, 1, 2)
	e := r.refused("one cluster", 0, one.publishEvent(0), protocol.CodePolicyNotMet, protocol.RuleClusters)
	if !strings.Contains(e.Message, "needs 1 more supporting cluster") {
		t.Errorf("one cluster: message %q does not say what is lacking", e.Message)
	}

	// One editor approving twice.
	twice := r.newClaim(0, "One approver twice is one approval.", "")
	twice.link(0, 0, "north gate", audit.StanceSupports)
	twice.link(0, 1, "rail yard", audit.StanceSupports)
	twice.signoff(1, audit.DecisionApprove)
	twice.signoff(1, audit.DecisionApprove)
	r.cosignAll(0, 1, 2)
	r.refused("one editor approving twice", 0, twice.publishEvent(0), protocol.CodePolicyNotMet, protocol.RuleApprovals)

	// The author as one of two approvers.
	author := r.newClaim(0, "The author's approval does not count.", "")
	author.link(0, 0, "north gate", audit.StanceSupports)
	author.link(0, 1, "rail yard", audit.StanceSupports)
	author.signoff(0, audit.DecisionApprove)
	author.signoff(1, audit.DecisionApprove)
	r.cosignAll(0, 1, 2)
	e = r.refused("the author approving", 0, author.publishEvent(0), protocol.CodePolicyNotMet, protocol.RuleApprovals)
	if !strings.Contains(e.Message, "editor-0 wrote this version") {
		t.Errorf("the author approving: message %q does not name the author", e.Message)
	}

	// Approvals older than the last evidence change, and than an edit.
	stale := r.newClaim(0, "Approvals before a change do not count.", "")
	stale.link(0, 0, "north gate", audit.StanceSupports)
	stale.link(0, 1, "rail yard", audit.StanceSupports)
	stale.signoff(1, audit.DecisionApprove)
	stale.signoff(2, audit.DecisionApprove)
	stale.link(0, 2, "mine", audit.StanceSupports)
	r.cosignAll(0, 1, 2)
	e = r.refused("an approval before a link", 0, stale.publishEvent(0), protocol.CodePolicyNotMet, protocol.RuleApprovals)
	if !strings.Contains(e.Message, "predates the last change (link at") {
		t.Errorf("an approval before a link: message %q", e.Message)
	}
	unlinked := r.newClaim(0, "Approvals before an unlink do not count.", "")
	unlinked.link(0, 0, "north gate", audit.StanceSupports)
	unlinked.link(0, 1, "rail yard", audit.StanceSupports)
	unlinked.link(0, 2, "mine", audit.StanceSupports)
	unlinked.signoff(1, audit.DecisionApprove)
	unlinked.signoff(2, audit.DecisionApprove)
	unlinked.unlink(0, 2)
	r.cosignAll(0, 1, 2)
	e = r.refused("an approval before an unlink", 0, unlinked.publishEvent(0), protocol.CodePolicyNotMet, protocol.RuleApprovals)
	if !strings.Contains(e.Message, "predates the last change (unlink at") {
		t.Errorf("an approval before an unlink: message %q", e.Message)
	}
	edited := r.newClaim(0, "Approvals before an edit do not count.", "")
	edited.link(0, 0, "north gate", audit.StanceSupports)
	edited.link(0, 1, "rail yard", audit.StanceSupports)
	edited.signoff(1, audit.DecisionApprove)
	edited.signoff(2, audit.DecisionApprove)
	edited.edit(0, "Approvals before an edit do not count, edited.", "")
	r.cosignAll(0, 1, 2)
	e = r.refused("an approval before an edit", 0, edited.publishEvent(0), protocol.CodePolicyNotMet, protocol.RuleApprovals)
	if !strings.Contains(e.Message, "predates the last change (edit at") {
		t.Errorf("an approval before an edit: message %q", e.Message)
	}

	// A standing rejection.
	rejected := r.wellSupported()
	rejected.signoff(1, audit.DecisionReject)
	r.cosignAll(0, 1, 2)
	r.refused("a standing rejection", 0, rejected.publishEvent(0), protocol.CodePolicyNotMet, protocol.RuleObjection)

	// The claim that meets the policy, revealed wrongly.
	good := r.wellSupported()
	req := good.publishEvent(0)
	r.cosignAll(0, 1, 2)
	altered := *req
	altered.Events = slices.Clone(req.Events)
	altered.Events[1].Public = bytes.Replace(slices.Clone(altered.Events[1].Public), []byte("north gate"), []byte("south gate"), 1)
	e = r.refused("a public part altered", 0, &altered, protocol.CodeTrailRefused, protocol.RuleCommitment)
	if e.Index != req.Events[1].Index {
		t.Errorf("a public part altered: index %d, want %d", e.Index, req.Events[1].Index)
	}
	missing := *req
	missing.Events = slices.Delete(slices.Clone(req.Events), 4, 5) // editor-1's approval
	r.refused("a part missing", 0, &missing, protocol.CodeTrailRefused, protocol.RuleChanges)
	swapped := *req
	swapped.Events = slices.Clone(req.Events)
	swapped.Events[0].Salt[0] ^= 1
	r.refused("a salt altered", 0, &swapped, protocol.CodeTrailRefused, protocol.RuleCommitment)
	foreign := *req
	foreign.Events = append([]protocol.RevealedEvent{one.events[0]}, req.Events[1:]...)
	r.refused("another claim's event", 0, &foreign, protocol.CodeTrailRefused, protocol.RulePart)
	if notMine, _ := r.post(1, req); notMine != http.StatusForbidden {
		t.Errorf("a publication posted by another editor: %d, want 403", notMine)
	}

	for _, c := range []*testClaim{one, twice, author, stale, unlinked, edited, rejected} {
		if _, err := r.store.Publication(context.Background(), c.id.String()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a refused publication was stored: %v", err)
		}
	}

	reply := r.published(0, req, http.StatusOK)
	if reply.State != protocol.StateAccepted || reply.Claim != good.id.String() || reply.URL != protocol.ClaimPath(good.id.String()) ||
		!slices.Equal(reply.Cosigners, []string{"editor-0", "editor-1", "editor-2"}) || reply.Witnessed < req.Publish || reply.Head <= req.Publish {
		t.Errorf("accepted publication: %+v", reply)
	}
	// Sent again (the answer lost): the same answer.
	if again := r.published(0, req, http.StatusOK); again.Head != reply.Head || again.State != protocol.StateAccepted {
		t.Errorf("the publication sent again: %+v, want %+v", again, reply)
	}
	// A second publish event of a published claim is refused.
	second := good.publishEvent(0)
	r.refused("a second publication", 0, second, protocol.CodeTrailRefused, protocol.RuleReplay)

	// The trail served is the one checked, and checks offline.
	resp, trail := get(t, r.origin()+protocol.ClaimTrailPath(good.id.String()))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET trail: %s %s", resp.Status, trail)
	}
	rep, err := audit.CheckTrail(trail, r.newsroom.Verifier)
	if err != nil {
		t.Fatalf("CheckTrail(the served trail) = %v", err)
	}
	if rep.Text != "Copper concentrate leaves the Hyesan mine by truck at night." || len(rep.Policy.Clusters) != 2 {
		t.Errorf("the served trail established %+v", rep)
	}
}

// TestPublishPending: a publication made before editors cosigned a
// checkpoint that holds its events is kept pending (202, saying what it
// waits for), is not public, and is accepted by the cosignature that
// completes it.
func TestPublishPending(t *testing.T) {
	r := newClaimRun(t, "trucks at the north gate", "the rail yard at night", "a night shift")
	c := r.wellSupported()
	req := c.publishEvent(0)
	reply := r.published(0, req, http.StatusAccepted)
	if reply.State != protocol.StatePending || reply.Waiting == nil || reply.Waiting.Cosigners != 2 || reply.Waiting.Bundle != 2 ||
		reply.Waiting.Size != req.Publish || reply.Waiting.Have != 0 {
		t.Fatalf("pending publication: %+v %+v", reply, reply.Waiting)
	}
	for _, path := range []string{protocol.ClaimPath(c.id.String()), protocol.ClaimTrailPath(c.id.String())} {
		if resp, _ := get(t, r.origin()+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s while pending: %s, want 404", path, resp.Status)
		}
	}
	// A correction must wait too.
	corr := c.correctEvent(0, audit.CorrectionClarification, "The trucks run on weekdays.")
	b, _ := protocol.MarshalRevealedEvent(&corr)
	if status, body := r.postJSON(0, protocol.PathCorrect, b); status != http.StatusConflict || httpError(t, body).Code != protocol.CodePending {
		t.Errorf("a correction while pending: %d %s", status, body)
	}
	r.cosignAll(1)
	if again := r.published(0, req, http.StatusAccepted); again.Waiting.Have != 1 {
		t.Errorf("pending after one cosignature: %+v", again.Waiting)
	}
	r.cosignAll(2) // the second cosigner completes it
	if resp, body := get(t, r.origin()+protocol.ClaimPath(c.id.String())); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the page after the cosignatures: %s %s", resp.Status, body)
	}
	if done := r.published(0, req, http.StatusOK); done.State != protocol.StateAccepted || !slices.Equal(done.Cosigners, []string{"editor-1", "editor-2"}) {
		t.Errorf("accepted: %+v", done)
	}
	// The correction now goes through.
	if status, body := r.postJSON(0, protocol.PathCorrect, b); status != http.StatusOK {
		t.Errorf("the correction once accepted: %d %s", status, body)
	}
}

// TestCorrections: corrections are checked against the log, shown in
// order, a retraction prominently, in the list, the feed and a trail
// rebuilt over a newer head.
func TestClaimCorrections(t *testing.T) {
	r := newClaimRun(t, "trucks at the north gate", "the rail yard at night", "a night shift")
	c := r.wellSupported()
	req := c.publishEvent(0)
	r.cosignAll(0, 1, 2)
	first := r.published(0, req, http.StatusOK)
	id := c.id.String()

	corr := c.correctEvent(1, audit.CorrectionCorrection, "The trucks leave at 2am, not midnight.")
	b, _ := protocol.MarshalRevealedEvent(&corr)
	// Only the editor who logged it may post it; altered, it is refused.
	if status, _ := r.postJSON(0, protocol.PathCorrect, b); status != http.StatusForbidden {
		t.Errorf("a correction posted by another editor: %d, want 403", status)
	}
	bad := corr
	bad.Public = bytes.Replace(slices.Clone(bad.Public), []byte("2am"), []byte("3am"), 1)
	bb, _ := protocol.MarshalRevealedEvent(&bad)
	if status, body := r.postJSON(1, protocol.PathCorrect, bb); status != codeStatus(protocol.CodeTrailRefused) || httpError(t, body).Rule != protocol.RuleCommitment {
		t.Errorf("an altered correction: %d %s", status, body)
	}
	status, body := r.postJSON(1, protocol.PathCorrect, b)
	if status != http.StatusOK {
		t.Fatalf("POST %s = %d %s", protocol.PathCorrect, status, body)
	}
	var reply protocol.PublishReply
	if err := json.Unmarshal(body, &reply); err != nil || reply.Head <= first.Head {
		t.Fatalf("correction reply %s: %v, want a head above %d", body, err, first.Head)
	}
	retract := c.correctEvent(2, audit.CorrectionRetraction, "A source recanted; we retract the claim.")
	b2, _ := protocol.MarshalRevealedEvent(&retract)
	if status, body := r.postJSON(2, protocol.PathCorrect, b2); status != http.StatusOK {
		t.Fatalf("POST retraction = %d %s", status, body)
	}
	// A correction sent again is the same answer, stored once.
	if status, _ := r.postJSON(1, protocol.PathCorrect, b); status != http.StatusOK {
		t.Errorf("the correction sent again: %d", status)
	}

	_, trail := get(t, r.origin()+protocol.ClaimTrailPath(id))
	rep, err := audit.CheckTrail(trail, r.newsroom.Verifier)
	if err != nil || len(rep.Corrections) != 2 || rep.Corrections[1].Type != audit.CorrectionRetraction {
		t.Fatalf("the trail after corrections: %v, %+v", err, rep)
	}
	resp, page := get(t, r.origin()+protocol.ClaimPath(id))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET page: %s", resp.Status)
	}
	p := string(page)
	ci, ri, rt := strings.Index(p, "2am, not midnight"), strings.Index(p, "A source recanted"), strings.Index(p, `id="retraction"`)
	if ci < 0 || ri < 0 || rt < 0 || rt > strings.Index(p, `id="claim"`) {
		t.Errorf("the page does not show the correction and, first, the retraction:\n%s", p)
	}
	var list protocol.ClaimList
	_, lb := get(t, r.origin()+protocol.PathClaims)
	if err := json.Unmarshal(lb, &list); err != nil || len(list.Claims) != 1 || !list.Claims[0].Retracted || list.Claims[0].Corrections != 2 {
		t.Errorf("GET /claims = %s, %v", lb, err)
	}
	_, feed := get(t, r.origin()+protocol.PathClaimsFeed)
	if n := strings.Count(string(feed), "<entry>"); n != 3 {
		t.Errorf("the feed has %d entries, want 3 (a publication, a correction, a retraction):\n%s", n, feed)
	}
	// A restart keeps it all, and the page is rebuilt from the stored
	// trail, checked again.
	r.restart(t)
	r.lr.s, r.lr.store, r.lr.origin = r.s, r.store, r.origin()
	if resp, again := get(t, r.origin()+protocol.ClaimPath(id)); resp.StatusCode != http.StatusOK || !strings.Contains(string(again), "A source recanted") {
		t.Errorf("after a restart: %s", resp.Status)
	}
}

// publicPaths returns every public path the server serves about claims.
func publicPaths(r *claimRun, ids ...string) []string {
	paths := []string{protocol.PathClaims, protocol.PathClaimsFeed}
	for _, id := range ids {
		paths = append(paths, protocol.ClaimPath(id), protocol.ClaimTrailPath(id))
	}
	return paths
}

var (
	timeOfDay    = regexp.MustCompile(`[0-9]{2}:[0-9]{2}`)
	bundleExpiry = regexp.MustCompile(`expires [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z`)
)

// TestClaimPagesHoldNothingPrivate scans every page, feed and trail the
// server publishes for the tips' texts, ids and ciphertext hashes, in
// every encoding they travel in, and for a time finer than a day.
func TestClaimPagesHoldNothingPrivate(t *testing.T) {
	texts := []string{"trucks at the north gate at 2am", "the rail yard loads copper", "the mine runs a night shift"}
	r := newClaimRun(t, texts...)
	c := r.wellSupported()
	req := c.publishEvent(0)
	r.cosignAll(0, 1, 2)
	r.published(0, req, http.StatusOK)
	corr := c.correctEvent(1, audit.CorrectionCorrection, "The trucks leave at 2am.")
	b, _ := protocol.MarshalRevealedEvent(&corr)
	if status, body := r.postJSON(1, protocol.PathCorrect, b); status != http.StatusOK {
		t.Fatalf("correction: %d %s", status, body)
	}
	var secrets []string
	for i, tip := range r.tips {
		id, h := tip.Receipt.TipID, tip.Receipt.SHA256
		secrets = append(secrets, texts[i], crypto.FormatTipID(id), hex.EncodeToString(id[:]), base64.StdEncoding.EncodeToString(id[:]),
			hex.EncodeToString(h[:]), base64.StdEncoding.EncodeToString(h[:]), base64.RawURLEncoding.EncodeToString(h[:]))
	}
	for _, k := range r.editors {
		secrets = append(secrets, "private note of "+k.Label)
	}
	for _, path := range publicPaths(r, c.id.String()) {
		resp, body := get(t, r.origin()+path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: headers %v lack nosniff or a CSP", path, resp.Header)
		}
		for _, s := range secrets {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("GET %s holds %q", path, s)
			}
		}
		// Days are written at 00:00:00 where a format needs a time (Atom,
		// cosignatures); a bundle's expiry is the newsroom's, no act's.
		scrubbed := bundleExpiry.ReplaceAll(bytes.ReplaceAll(body, []byte("T00:00:00Z"), nil), nil)
		if m := timeOfDay.Find(scrubbed); m != nil {
			t.Errorf("GET %s holds a time finer than a day: %q", path, m)
		}
	}
}

// TestPublishRevokedApproval: an approval by an editor a later bundle
// revokes does not count for a publication under that bundle.
func TestPublishRevokedApproval(t *testing.T) {
	r := newClaimRun(t, "trucks at the north gate", "the rail yard at night")
	c := r.newClaim(0, "A revoked editor's approval does not count.", "")
	c.link(0, 0, "north gate", audit.StanceSupports)
	c.link(0, 1, "rail yard", audit.StanceSupports)
	c.signoff(1, audit.DecisionApprove)
	c.signoff(2, audit.DecisionApprove)
	b3 := r.makeBundle(t, 3, func(b *crypto.Bundle) {
		b.Revoked = []string{"editor-2"}
		b.Editors = b.Editors[:2]
	})
	if e := publish(t, r.testServer, b3.Signed()); e != nil {
		t.Fatalf("publish bundle 3: %v", e)
	}
	r.cosignAll(0, 1)
	e := r.refused("a revoked editor's approval", 0, c.publishEvent(0), protocol.CodePolicyNotMet, protocol.RuleApprovals)
	if !strings.Contains(e.Message, "editor-2 is revoked") {
		t.Errorf("message %q does not say the approver is revoked", e.Message)
	}
}

// FuzzClaimRequests posts any body to the publication endpoints, as a
// logged-in editor, on a server whose log holds claim events: every
// answer is a typed refusal the protocol parses (never a failure of the
// server), and nothing is stored or logged.
func FuzzClaimRequests(f *testing.F) {
	for _, dir := range []string{"publish", "revealed"} {
		files, _ := filepath.Glob(filepath.Join("..", "protocol", "testdata", dir, "*"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			_, body, _ := bytes.Cut(b, []byte("\n\n"))
			f.Add(uint8(0), body)
			f.Add(uint8(1), body)
			f.Add(uint8(2), body)
		}
	}
	r := newEditorsRun(f, nil)
	c := r.newClaim(0, "A claim.", "")
	c.signoff(1, audit.DecisionApprove)
	req := c.publishEvent(0)
	good, _ := protocol.MarshalPublishRequest(req)
	f.Add(uint8(0), good)
	rv, _ := protocol.MarshalRevealedEvent(&req.Events[0])
	f.Add(uint8(1), rv)
	f.Add(uint8(2), rv)
	handler := r.s.PublicHandler()
	paths := []string{protocol.PathPublish, protocol.PathCorrect, protocol.PathPeriodClose}
	ctx := context.Background()
	size, _ := r.store.LogSize(ctx)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		hr := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		hr.Header.Set("Authorization", "Bearer "+r.tokens[0])
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, hr)
		res := w.Result()
		if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusAccepted {
			// Only the well-formed publication of the seed can pass; it is
			// refused by the policy. Anything else passing is a bug.
			t.Fatalf("POST %s %q = %d %s", path, body, res.StatusCode, w.Body.Bytes())
		}
		if res.StatusCode >= 500 {
			t.Fatalf("POST %s %q = %d %s: the server failed", path, body, res.StatusCode, w.Body.Bytes())
		}
		m, err := protocol.ParseServerMessage(bytes.TrimSuffix(w.Body.Bytes(), []byte("\n")))
		if _, ok := m.(*protocol.Error); err != nil || !ok {
			t.Fatalf("POST %s: answer %q is not a typed error: %v", path, w.Body.Bytes(), err)
		}
		if n, _ := r.store.LogSize(ctx); n != size {
			t.Fatalf("POST %s logged %d entries", path, n-size)
		}
		if pubs, _ := r.store.AcceptedPublications(ctx, 0, 10); len(pubs) != 0 {
			t.Fatalf("POST %s stored a publication", path)
		}
	})
}
