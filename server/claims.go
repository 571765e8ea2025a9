package server

// Publications of claims, on the server's side (docs/claims.md, "Building
// a trail"; docs/log.md, "Publications"; protocol/claims.go).
//
//   - The server cannot read event bodies. A publishing editor reveals
//     the public parts and salts of the claim's events; the server builds
//     the claim's trail from its own log (audit.BuildTrail over trailLog,
//     which reads its store) and runs audit.CheckTrail on the marshalled
//     bytes, the check every reader runs. Only a trail that passes is
//     stored and served: a publication the policy refuses is
//     policy_not_met naming the unmet rule, revealed parts that do not
//     match the log are trail_refused naming the trail rule.
//   - A publication whose only fault is that no checkpoint is cosigned by
//     enough editors yet is kept pending (202, saying what it waits for)
//     and accepted by the first POST /cosignature after which one is.
//   - A correction is checked the same way, with the trail rebuilt over a
//     newer head; the stored trail and its head change together.
//   - Everything stored is public once accepted (no tip id, ciphertext
//     hash or private part ever reaches the server), at day precision.
//
// One mutex serializes the publication work (publish, correct, the
// pending retries), so two requests for one claim never race; reads of
// the pages do not take it. claims_test.go proves these with real keys,
// logs and sockets.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"golang.org/x/mod/sumdb/tlog"
)

// Publication limits.
const (
	// maxPublishWork caps publish requests read at once: each holds up to
	// protocol.MaxPublishRequest bytes.
	maxPublishWork = 2
	// maxPendingPublications caps the publications waiting for
	// cosignatures; past it a new one is refused busy.
	maxPendingPublications = 64
	// maxCosignedCandidates caps the cosigned checkpoints a trail build
	// considers, largest first.
	maxCosignedCandidates = 16
	// maxClaimViews caps the checked trails the pages keep in memory.
	maxClaimViews = 1024
)

// claimsState is the server's publication state (Server.claims).
type claimsState struct {
	// mu serializes publications, corrections and pending retries.
	mu sync.Mutex
	// sem bounds the publish requests read at once.
	sem chan struct{}

	// viewsMu guards views: each accepted claim's checked trail, by claim
	// id, for the pages (claimpages.go). A view is replaced whenever its
	// stored trail changes, which only this server does.
	viewsMu sync.Mutex
	views   map[string]*claimView

	// bundlesMu guards bundles: the bundles of the log opened once, by
	// log index.
	bundlesMu sync.Mutex
	bundles   map[int64]*crypto.Bundle
}

func newClaimsState() *claimsState {
	return &claimsState{sem: make(chan struct{}, maxPublishWork), views: map[string]*claimView{}, bundles: map[int64]*crypto.Bundle{}}
}

// claimView is an accepted claim's trail as checked: what its page, the
// list and the feed show.
type claimView struct {
	head   int64
	report *audit.TrailReport
	// periods are the receipt periods of the trail's receipts roots, by
	// log index.
	periods map[int64]audit.Period
}

// newClaimView makes the view of a checked trail (data, which CheckTrail
// established report from) over a head of size head.
func (s *Server) newClaimView(head int64, data []byte, report *audit.TrailReport) *claimView {
	v := &claimView{head: head, report: report, periods: map[int64]audit.Period{}}
	t, err := audit.ParseTrail(data)
	if err != nil {
		return v
	}
	for _, r := range t.Receipts {
		b, err := s.bundleAt(context.Background(), r.Index)
		if err != nil {
			continue
		}
		if root, err := audit.OpenReceiptsRoot(r.Entry, b.Log); err == nil {
			v.periods[r.Index] = root.Period
		}
	}
	return v
}

// Refusals of publications. Texts are fixed per reason, or say what the
// log and the revealed parts show (never internal detail).
var (
	errClaimTooLarge     = protocol.Errorf(protocol.CodeTooLarge, "publication request larger than %d bytes", protocol.MaxPublishRequest)
	errRevealedTooLarge  = protocol.Errorf(protocol.CodeTooLarge, "request larger than %d bytes", protocol.MaxRevealedRequest)
	errClaimEventBeyond  = protocol.Errorf(protocol.CodeConflict, "no entry at that index in the published log")
	errClaimNotAnEvent   = protocol.Errorf(protocol.CodeMalformed, "the entry at that index is not an editorial event")
	errClaimEventNotMine = protocol.Errorf(protocol.CodeUnauthorized, "the event at that index is not signed by the editor logged in")
	errClaimNotPublished = protocol.Errorf(protocol.CodeNotFound, "the claim has no publication on this server")
	errClaimPending      = protocol.Errorf(protocol.CodePending, "the claim's publication waits for editors to cosign a checkpoint; sync, then try again")
	errTooManyPending    = protocol.Errorf(protocol.CodeBusy, "too many publications wait for cosignatures; editors should sync first")
)

// trailRefused returns a trail_refused refusal for rule at index (0 for
// none).
func trailRefused(rule string, index int64, format string, args ...any) *protocol.Error {
	e := clipMessage(protocol.Errorf(protocol.CodeTrailRefused, format, args...))
	e.Rule = rule
	if index > 0 {
		e.Index = index
	}
	return e
}

// trailRules names the rules of audit.CheckTrail on the wire.
var trailRules = []struct {
	err  error
	rule string
}{
	{audit.ErrTrailFormat, protocol.RuleFormat},
	{audit.ErrTrailBundle, protocol.RuleBundle},
	{audit.ErrTrailSignature, protocol.RuleSignature},
	{audit.ErrTrailCommitment, protocol.RuleCommitment},
	{audit.ErrTrailPart, protocol.RulePart},
	{audit.ErrTrailCheckpoint, protocol.RuleCheckpoint},
	{audit.ErrTrailInclusion, protocol.RuleInclusion},
	{audit.ErrTrailConsistency, protocol.RuleConsistency},
	{audit.ErrTrailCosigners, protocol.RuleCosigners},
	{audit.ErrTrailDay, protocol.RuleDay},
	{audit.ErrTrailWitnessed, protocol.RuleWitnessed},
	{audit.ErrTrailReceipts, protocol.RuleReceipts},
	{audit.ErrTrailHandle, protocol.RuleHandle},
	{audit.ErrTrailChanges, protocol.RuleChanges},
	{audit.ErrTrailReplay, protocol.RuleReplay},
}

// trailLog is the server's log as audit.BuildTrail reads it: its store,
// up to the published head. It remembers the first failure of the store
// itself, so that the caller answers it as the server's fault, not as a
// trail the request got wrong.
type trailLog struct {
	s   *Server
	ctx context.Context
	err error
}

func (t *trailLog) fail(err error) error {
	if err != nil && t.err == nil {
		t.err = err
	}
	return err
}

func (t *trailLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	h, err := t.s.store.LogHashes(t.ctx).ReadHashes(indexes)
	return h, t.fail(err)
}

func (t *trailLog) Entries(ctx context.Context, indexes []int64) ([][]byte, error) {
	head := t.s.elog().head.Load()
	for _, x := range indexes {
		if head == nil || x < 0 || x >= head.tree.N {
			return nil, fmt.Errorf("no entry %d in the published log", x)
		}
	}
	e, err := t.s.store.ReadEntriesAt(ctx, indexes)
	return e, t.fail(err)
}

func (t *trailLog) BundleBefore(ctx context.Context, index int64) (int64, error) {
	if bi := t.s.elog().bundleBefore(index); bi >= 0 {
		return bi, nil
	}
	return 0, fmt.Errorf("no bundle before entry %d", index)
}

func (t *trailLog) ReceiptsLeaves(ctx context.Context, index int64) ([]audit.Leaf, error) {
	p, err := t.s.store.ReceiptsPeriodAt(ctx, index)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("entry %d is not a receipts root this server holds", index)
	}
	if err != nil {
		return nil, t.fail(err)
	}
	leaves := make([]audit.Leaf, 0, len(p.Leaves)/32)
	for i := 0; i+32 <= len(p.Leaves); i += 32 {
		leaves = append(leaves, audit.Leaf(p.Leaves[i:i+32]))
	}
	return leaves, nil
}

func (t *trailLog) Cosigned(ctx context.Context, min, max int64) ([][]byte, error) {
	sizes, err := t.s.store.CosignedSizesBetween(ctx, min, max, maxCosignedCandidates)
	if err != nil {
		return nil, t.fail(err)
	}
	var out [][]byte
	for _, c := range sizes {
		signed, cosigs, err := t.s.store.Cosigned(ctx, c.Size)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, t.fail(err)
		}
		msg := append([]byte(nil), signed...)
		for _, cs := range cosigs {
			msg = append(msg, cs.Line...)
		}
		out = append(out, msg)
	}
	return out, nil
}

// bundleAt returns the bundle in force at index, opened with the pinned
// newsroom key.
func (s *Server) bundleAt(ctx context.Context, index int64) (*crypto.Bundle, error) {
	bi := s.elog().bundleBefore(index)
	if bi < 0 {
		return nil, fmt.Errorf("no bundle before entry %d", index)
	}
	c := s.claims
	c.bundlesMu.Lock()
	b := c.bundles[bi]
	c.bundlesMu.Unlock()
	if b != nil {
		return b, nil
	}
	es, err := s.store.ReadEntriesAt(ctx, []int64{bi})
	if err != nil {
		return nil, err
	}
	if b, err = crypto.OpenBundle(es[0], s.newsroom); err != nil {
		return nil, fmt.Errorf("the bundle at entry %d: %w", bi, err)
	}
	c.bundlesMu.Lock()
	c.bundles[bi] = b
	c.bundlesMu.Unlock()
	return b, nil
}

// openRevealed opens the logged event a request reveals: it must be in
// the published log, an event signed by editor (any editor of its bundle
// if editor is ""), whose public commitment the revealed part and salt
// open. It returns the event and the public part parsed, or the refusal.
func (s *Server) openRevealed(ctx context.Context, rv *protocol.RevealedEvent, editor string) (*audit.Event, *audit.EventBody, *protocol.Error) {
	head := s.elog().head.Load()
	if head == nil || rv.Index >= head.tree.N {
		return nil, nil, errClaimEventBeyond
	}
	es, err := s.store.ReadEntriesAt(ctx, []int64{rv.Index})
	if err != nil {
		return nil, nil, s.failed("read a revealed event", err)
	}
	if !strings.HasPrefix(string(es[0][:min(len(es[0]), len(audit.EventHeader)+1)]), audit.EventHeader+"\n") {
		return nil, nil, errClaimNotAnEvent
	}
	b, err := s.bundleAt(ctx, rv.Index)
	if err != nil {
		return nil, nil, s.failed("the bundle in force at a revealed event", err)
	}
	ev, err := audit.OpenEvent(es[0], b)
	switch {
	case errors.Is(err, crypto.ErrUnknownSigner), errors.Is(err, crypto.ErrBadSignature):
		return nil, nil, errClaimEventNotMine
	case err != nil:
		return nil, nil, errClaimNotAnEvent
	case editor != "" && ev.Editor != editor:
		return nil, nil, errClaimEventNotMine
	}
	if !audit.CheckPublic(ev, rv.Public, rv.Salt) {
		return nil, nil, trailRefused(protocol.RuleCommitment, rv.Index, "the public part and salt of event %d do not open its commitment", rv.Index)
	}
	body, err := audit.ParsePublicPart(rv.Public)
	if err != nil {
		return nil, nil, trailRefused(protocol.RulePart, rv.Index, "the public part of event %d is not one in its one form", rv.Index)
	}
	return ev, body, nil
}

// registerClaimRoutes serves the publication endpoints and the public
// pages (claimpages.go).
func (s *Server) registerClaimRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+protocol.PathPublish, s.servePublish)
	mux.HandleFunc("POST "+protocol.PathCorrect, s.serveCorrect)
	mux.HandleFunc("POST "+protocol.PathPeriodClose, s.servePeriodClose)
	s.registerClaimPages(mux)
}

// readRequest reads a request body of at most limit bytes; on a refusal
// it has answered and returns nil.
func readRequest(w http.ResponseWriter, r *http.Request, limit int64, tooLarge *protocol.Error) []byte {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeRefusal(w, tooLarge)
		return nil
	}
	if err != nil {
		return nil // the client went away
	}
	return b
}

// servePublish publishes a claim (protocol.PathPublish): 200 once its
// trail is built, checked and stored, 202 while it waits for cosignatures.
func (s *Server) servePublish(w http.ResponseWriter, r *http.Request) {
	editor, ok := s.editor(w, r)
	if !ok {
		return
	}
	c := s.claims
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	case <-r.Context().Done():
		return
	}
	b := readRequest(w, r, protocol.MaxPublishRequest, errClaimTooLarge)
	if b == nil {
		return
	}
	req, err := protocol.ParsePublishRequest(b)
	if err != nil {
		writeRefusal(w, clipMessage(asProtocolError(err)))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	reply, perr := s.publish(context.WithoutCancel(r.Context()), req, b, editor)
	if perr != nil {
		writeRefusal(w, perr)
		return
	}
	status := http.StatusOK
	if reply.State == protocol.StatePending {
		status = http.StatusAccepted
	}
	writeJSONStatus(w, status, reply)
}

// publish checks and stores a publication (the caller holds claims.mu).
// raw is the request as sent, stored as the publication's revealed parts.
func (s *Server) publish(ctx context.Context, req *protocol.PublishRequest, raw []byte, editor string) (*protocol.PublishReply, *protocol.Error) {
	last := &req.Events[len(req.Events)-1]
	ev, body, perr := s.openRevealed(ctx, last, editor)
	if perr != nil {
		return nil, perr
	}
	if body.Kind != audit.KindPublish {
		return nil, trailRefused(protocol.RulePart, last.Index, "event %d is a %s, not a publication", last.Index, body.Kind)
	}
	claim := body.Claim.String()
	old, err := s.store.Publication(ctx, claim)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return nil, s.failed("read a publication", err)
	case old.Index != req.Publish:
		return nil, trailRefused(protocol.RuleReplay, old.Index, "the claim is already published, by the publication at %d", old.Index)
	case !old.Pending:
		// Sent again (an answer lost on the way): the same answer.
		v, perr := s.claimView(ctx, claim)
		if perr != nil {
			return nil, perr
		}
		return s.acceptedReply(claim, v), nil
	}
	if old == nil {
		n, err := s.store.CountPendingPublications(ctx)
		if err != nil {
			return nil, s.failed("count pending publications", err)
		}
		if n >= maxPendingPublications {
			return nil, errTooManyPending
		}
	}
	p := &storage.Publication{Claim: claim, Index: req.Publish, Day: ev.Day, Revealed: raw}
	return s.tryPublish(ctx, p, req)
}

// tryPublish builds and checks the trail of publication p (whose revealed
// parts are req) and stores p, accepted or pending.
func (s *Server) tryPublish(ctx context.Context, p *storage.Publication, req *protocol.PublishRequest) (*protocol.PublishReply, *protocol.Error) {
	head := s.elog().head.Load()
	revealed := make([]audit.Revealed, len(req.Events))
	for i, e := range req.Events {
		revealed[i] = audit.Revealed{Index: e.Index, Public: e.Public, Salt: e.Salt}
	}
	id, err := audit.ParseClaimID(p.Claim)
	if err != nil {
		return nil, s.failed("parse a stored claim id", err)
	}
	data, report, perr := s.buildTrail(ctx, head, id, revealed)
	var te *audit.TrailError
	switch {
	case perr == nil:
	case errors.As(perr, &te) && errors.Is(te.Rule, audit.ErrTrailCosigners):
		return s.keepPending(ctx, p, req, head)
	default:
		return nil, s.publishRefusal(ctx, perr, req)
	}
	p.Pending, p.NeedSize, p.NeedCosigners = false, 0, 0
	p.Head, p.Trail = head.tree.N, data
	p.Text, p.Scope = report.Text, report.Scope
	p.Clusters, p.Approvals = int64(len(report.Policy.Clusters)), int64(len(report.Policy.Approvers))
	p.Day = report.Published.Day
	if err := s.store.PutPublication(ctx, p); err != nil {
		return nil, s.failed("store a publication", err)
	}
	v := s.newClaimView(head.tree.N, data, report)
	s.putClaimView(p.Claim, v)
	s.log.Info("claim published", attrEditor, report.Published.Editor, attrIndex, p.Index, attrSize, head.tree.N)
	return s.acceptedReply(p.Claim, v), nil
}

// buildTrail builds a claim's trail over head from the revealed parts
// and checks its bytes as any reader would. A failure of the store is
// the server's (internal or busy); anything else is a *audit.TrailError.
func (s *Server) buildTrail(ctx context.Context, head *logHead, id audit.ClaimID, revealed []audit.Revealed) ([]byte, *audit.TrailReport, error) {
	tl := &trailLog{s: s, ctx: ctx}
	t, err := audit.BuildTrail(ctx, tl, s.newsroom, head.signed, id, revealed)
	if tl.err != nil {
		return nil, nil, s.failed("build a trail", tl.err)
	}
	var te *audit.TrailError
	if err != nil && !errors.As(err, &te) {
		return nil, nil, s.failed("build a trail", err)
	}
	if err != nil {
		return nil, nil, err
	}
	data, err := audit.MarshalTrail(t)
	if err != nil {
		return nil, nil, s.failed("marshal a trail", err)
	}
	report, err := audit.CheckTrail(data, s.newsroom)
	if err != nil {
		// BuildTrail checks as it builds: a trail it made that CheckTrail
		// refuses is a fault of one of them, refused all the same.
		s.log.Error("a trail the server built does not check", attrErr, err)
		if !errors.As(err, &te) {
			return nil, nil, errInternal
		}
		return nil, nil, err
	}
	return data, report, nil
}

// publishRefusal maps a failed build or check of a publication's trail to
// its refusal: policy_not_met naming the first unmet rule of the policy,
// or trail_refused naming the trail rule; anything else as is.
func (s *Server) publishRefusal(ctx context.Context, err error, req *protocol.PublishRequest) *protocol.Error {
	var te *audit.TrailError
	if !errors.As(err, &te) {
		return refusal(err).err
	}
	if errors.Is(te.Rule, audit.ErrTrailPolicy) {
		rule, lacking := s.unmetRule(ctx, req)
		if lacking == "" && te.Err != nil {
			lacking = te.Err.Error()
		}
		e := clipMessage(protocol.Errorf(protocol.CodePolicyNotMet, "the policy is not met: %s", lacking))
		e.Rule = rule
		return e
	}
	rule := ""
	for _, r := range trailRules {
		if errors.Is(te.Rule, r.err) {
			rule = r.rule
		}
	}
	return trailRefused(rule, te.Index, "%s", te.Error())
}

// unmetRule evaluates the policy over the revealed parts (which the trail
// build opened against their commitments) the way replay does at the
// publication, and returns the first unmet rule and what is lacking, in
// words; "" and "" if it cannot tell.
func (s *Server) unmetRule(ctx context.Context, req *protocol.PublishRequest) (string, string) {
	var events []audit.ClaimEvent
	for i := range req.Events[:len(req.Events)-1] {
		ev, body, perr := s.openRevealed(ctx, &req.Events[i], "")
		if perr != nil {
			return "", ""
		}
		events = append(events, audit.ClaimEvent{Index: req.Events[i].Index, Editor: ev.Editor, Day: ev.Day, Body: body})
	}
	b, err := s.bundleAt(ctx, req.Publish)
	if err != nil {
		return "", ""
	}
	res, err := audit.EvaluatePolicy(b, events, req.Publish)
	if err != nil || res.Met {
		return "", ""
	}
	lacking := strings.Join(res.Lacking, "; ")
	switch {
	case int64(len(res.Clusters)) < res.Policy.Clusters:
		return protocol.RuleClusters, lacking
	case len(res.Objections) > 0:
		return protocol.RuleObjection, lacking
	default:
		return protocol.RuleApprovals, lacking
	}
}

// keepPending stores publication p as pending: everything checked but the
// witness. It answers what the publication waits for.
func (s *Server) keepPending(ctx context.Context, p *storage.Publication, req *protocol.PublishRequest, head *logHead) (*protocol.PublishReply, *protocol.Error) {
	b, err := s.bundleAt(ctx, req.Publish)
	if err != nil {
		return nil, s.failed("the bundle of a publication", err)
	}
	// Every event the policy rests on is before the publication; the
	// witnessed checkpoint must include them (docs/claims.md).
	need := int64(0)
	for _, e := range req.Events {
		if e.Index < req.Publish {
			need = max(need, e.Index+1)
		}
	}
	p.Pending, p.NeedSize, p.NeedCosigners, p.Head, p.Trail = true, need, b.Policy.Approvals, 0, nil
	if err := s.store.PutPublication(ctx, p); err != nil {
		return nil, s.failed("store a pending publication", err)
	}
	have := int64(0)
	sizes, err := s.store.CosignedSizesBetween(ctx, need, head.tree.N, protocol.MaxCosignatures)
	if err != nil {
		return nil, s.failed("cosigned sizes", err)
	}
	for _, c := range sizes {
		have = max(have, c.Cosigners)
	}
	s.log.Info("publication waits for cosignatures", attrIndex, p.Index, attrSize, need)
	return &protocol.PublishReply{Claim: p.Claim, State: protocol.StatePending,
		URL: protocol.ClaimPath(p.Claim), Page: s.PublicOrigin() + protocol.ClaimPath(p.Claim), Trail: protocol.ClaimTrailPath(p.Claim), Cosigners: []string{},
		Waiting: &protocol.Waiting{Size: need, Cosigners: b.Policy.Approvals, Bundle: b.Version, Have: have}}, nil
}

// acceptedReply is the answer about an accepted publication.
func (s *Server) acceptedReply(claim string, v *claimView) *protocol.PublishReply {
	cos := v.report.Cosigners
	if cos == nil {
		cos = []string{}
	}
	return &protocol.PublishReply{Claim: claim, State: protocol.StateAccepted, URL: protocol.ClaimPath(claim), Page: s.PublicOrigin() + protocol.ClaimPath(claim),
		Trail: protocol.ClaimTrailPath(claim), Head: v.head, Witnessed: v.report.Witnessed.N, Cosigners: cos}
}

// retryPending tries again the pending publications that the checkpoint
// of size, now cosigned by more editors, may complete. POST /cosignature
// calls it once the cosignature is stored; a failure leaves them pending.
func (s *Server) retryPending(ctx context.Context, size int64) {
	c := s.claims
	c.mu.Lock()
	defer c.mu.Unlock()
	pending, err := s.store.PendingPublications(ctx, maxPendingPublications)
	if err != nil || len(pending) == 0 {
		if err != nil {
			s.log.Error("list pending publications", attrErr, err)
		}
		return
	}
	_, cosigs, err := s.store.Cosigned(ctx, size)
	if err != nil {
		s.log.Error("read cosignatures", attrErr, err)
		return
	}
	for _, p := range pending {
		if p.NeedSize > size || int64(len(cosigs)) < p.NeedCosigners {
			continue
		}
		req, err := protocol.ParsePublishRequest(p.Revealed)
		if err != nil {
			s.log.Error("a stored pending publication does not parse", attrIndex, p.Index, attrErr, err)
			continue
		}
		if _, perr := s.tryPublish(ctx, p, req); perr != nil {
			s.log.Warn("a pending publication is refused now", attrIndex, p.Index, attrErr, perr)
		}
	}
}

// serveCorrect adds a correction to a published claim
// (protocol.PathCorrect): 200 with the claim once its trail, rebuilt with
// the correction over the newest head, is checked and stored.
func (s *Server) serveCorrect(w http.ResponseWriter, r *http.Request) {
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
	c := s.claims
	c.mu.Lock()
	defer c.mu.Unlock()
	reply, perr := s.correct(context.WithoutCancel(r.Context()), rv, b, editor)
	if perr != nil {
		writeRefusal(w, perr)
		return
	}
	writeJSON(w, reply)
}

// correct checks and stores a correction (the caller holds claims.mu).
func (s *Server) correct(ctx context.Context, rv *protocol.RevealedEvent, raw []byte, editor string) (*protocol.PublishReply, *protocol.Error) {
	ev, body, perr := s.openRevealed(ctx, rv, editor)
	if perr != nil {
		return nil, perr
	}
	if body.Kind != audit.KindCorrect {
		return nil, trailRefused(protocol.RulePart, rv.Index, "event %d is a %s, not a correction", rv.Index, body.Kind)
	}
	claim := body.Claim.String()
	p, err := s.store.Publication(ctx, claim)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, errClaimNotPublished
	case err != nil:
		return nil, s.failed("read a publication", err)
	case p.Pending:
		return nil, errClaimPending
	}
	corrections, err := s.store.Corrections(ctx, claim)
	if err != nil {
		return nil, s.failed("read corrections", err)
	}
	req, err := protocol.ParsePublishRequest(p.Revealed)
	if err != nil {
		return nil, s.failed("parse a stored publication", err)
	}
	var revealed []audit.Revealed
	add := func(e *protocol.RevealedEvent) {
		revealed = append(revealed, audit.Revealed{Index: e.Index, Public: e.Public, Salt: e.Salt})
	}
	for i := range req.Events {
		add(&req.Events[i])
	}
	for _, c := range corrections {
		if c.Index == rv.Index {
			// Sent again: the same answer.
			v, perr := s.claimView(ctx, claim)
			if perr != nil {
				return nil, perr
			}
			return s.acceptedReply(claim, v), nil
		}
		old, err := protocol.ParseRevealedEvent(c.Revealed)
		if err != nil {
			return nil, s.failed("parse a stored correction", err)
		}
		add(old)
	}
	add(rv)
	head := s.elog().head.Load()
	data, report, err := s.buildTrail(ctx, head, body.Claim, revealed)
	if err != nil {
		return nil, s.publishRefusal(ctx, err, req)
	}
	sc := &storage.Correction{Index: rv.Index, Claim: claim, Day: ev.Day, Type: string(body.Correction), Text: body.Text, Revealed: raw}
	if err := s.store.PutCorrection(ctx, sc, head.tree.N, data); err != nil {
		return nil, s.failed("store a correction", err)
	}
	v := s.newClaimView(head.tree.N, data, report)
	s.putClaimView(claim, v)
	s.log.Info("claim corrected", attrEditor, ev.Editor, attrIndex, rv.Index, attrKind, string(body.Correction))
	return s.acceptedReply(claim, v), nil
}

// PublicOrigin returns the origin readers reach the public pages at:
// Config.PublicOrigin, or else the origin editors log in to (with
// --public-listen, the public listener serves both).
func (s *Server) PublicOrigin() string {
	if s.cfg.PublicOrigin != "" {
		return s.cfg.PublicOrigin
	}
	return s.Origin()
}

// claimView returns an accepted claim's checked trail: from memory, or
// read from the store and checked again (a stored trail is checked like
// any other before it is shown).
func (s *Server) claimView(ctx context.Context, claim string) (*claimView, *protocol.Error) {
	c := s.claims
	c.viewsMu.Lock()
	v := c.views[claim]
	c.viewsMu.Unlock()
	if v != nil {
		return v, nil
	}
	p, err := s.store.Publication(ctx, claim)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, errClaimNotPublished
	case err != nil:
		return nil, s.failed("read a publication", err)
	case p.Pending:
		return nil, errClaimNotPublished
	}
	report, err := audit.CheckTrail(p.Trail, s.newsroom)
	if err != nil {
		s.log.Error("a stored trail does not check", attrIndex, p.Index, attrErr, err)
		return nil, errInternal
	}
	v = s.newClaimView(p.Head, p.Trail, report)
	s.putClaimView(claim, v)
	return v, nil
}

func (s *Server) putClaimView(claim string, v *claimView) {
	c := s.claims
	c.viewsMu.Lock()
	defer c.viewsMu.Unlock()
	if _, ok := c.views[claim]; !ok && len(c.views) >= maxClaimViews {
		// Drop any one: a page read again checks its trail again.
		for k := range c.views {
			delete(c.views, k)
			break
		}
	}
	c.views[claim] = v
}

// writeJSONStatus answers v as JSON with status.
func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	b, err := jsonMarshal(v)
	if err != nil {
		writeRefusal(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
