package newsdesk

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"fieldtip/audit"
	"fieldtip/crypto"
)

// The claim commands (docs/claims.md) turn an editor's request and the
// replayed log into one event body. Each checks first what replay would
// refuse (a claim that does not exist, a published claim, a tip already
// linked, a sign-off over a state the claim never had), so that a hurried
// mistake costs nothing in the log, and says what to do instead. The
// policy is audit.EvaluatePolicy, the one function the server and every
// auditor run: newsdesk never decides publication by rules of its own.

// Errors of the claim commands that callers may branch on.
var (
	// ErrNoSuchClaim: no claim event in the log has the id.
	ErrNoSuchClaim = errors.New("no such claim in the log")
	// ErrClaimPublished: a published claim takes corrections only.
	ErrClaimPublished = errors.New("the claim is published: only corrections may follow (newsdesk correct)")
	// ErrClaimNotPublished: corrections append to a published claim.
	ErrClaimNotPublished = errors.New("the claim is not published: a correction appends to a published claim (to change a draft, use newsdesk claim edit)")
	// ErrNotLinked: the tip has no active link to the claim.
	ErrNotLinked = errors.New("the tip is not linked to the claim")
	// ErrAlreadyLinked: the tip has an active link to the claim.
	ErrAlreadyLinked = errors.New("the tip is already linked to the claim (unlink it first to link it again with other grades)")
	// ErrNothingToApprove: an approval of a claim with no supporting
	// evidence, which no policy can count.
	ErrNothingToApprove = errors.New("nothing supports the claim yet: link evidence first (newsdesk link); an approval of this state could never count")
	// ErrNoChange: an edit that changes neither text nor scope, which
	// would only void the approvals.
	ErrNoChange = errors.New("the text and scope are those of the version in force: nothing to edit")
)

// PolicyError is a publication refused by the policy in force: Lacking
// says what is missing, in words (audit.PolicyResult.Lacking).
type PolicyError struct {
	Claim   audit.ClaimID
	Bundle  int64
	Lacking []string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("claim %s cannot be published under the policy of bundle %d: %s", e.Claim, e.Bundle, strings.Join(e.Lacking, "; "))
}

// findClaim returns the claim s names, with a suggestion when s looks
// like a mistyped id of a claim of the log.
func findClaim(st *audit.State, s string) (*audit.ClaimState, error) {
	id, err := audit.ParseClaimID(s)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, suggestClaim(st, s))
	}
	c := st.Claim(id)
	if c == nil {
		return nil, fmt.Errorf("claim %s: %w%s (newsdesk claims lists them)", id, ErrNoSuchClaim, suggestClaim(st, s))
	}
	return c, nil
}

// suggestClaim returns "; did you mean ID?" when exactly one claim of st
// has an id s is a long prefix of, or is within two typos of.
func suggestClaim(st *audit.State, s string) string {
	var near []string
	for _, id := range st.Claims() {
		t := id.String()
		if (len(s) >= 6 && strings.HasPrefix(t, s)) || editDistance(s, t) <= 2 {
			near = append(near, t)
		}
	}
	if len(near) != 1 {
		return ""
	}
	return "; did you mean " + near[0] + "?"
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// unpublished returns the claim s names, refusing a published one.
func unpublished(st *audit.State, s string) (*audit.ClaimState, error) {
	c, err := findClaim(st, s)
	if err != nil {
		return nil, err
	}
	if c.Published != nil {
		return nil, fmt.Errorf("claim %s (published on %s, event %d): %w", c.ID, c.Published.Day, c.Published.Index, ErrClaimPublished)
	}
	return c, nil
}

// NewClaimBody returns the body of a new claim with a fresh id.
func NewClaimBody(text, scope string) (*audit.EventBody, error) {
	id, err := audit.GenerateClaimID()
	if err != nil {
		return nil, err
	}
	return &audit.EventBody{Kind: audit.KindClaim, Claim: id, Text: text, Scope: scope}, nil
}

// EditClaimBody returns the body of a new version of the claim s names:
// its text, and its scope (the version in force's when scope is nil).
func EditClaimBody(st *audit.State, s, text string, scope *string) (*audit.EventBody, error) {
	c, err := unpublished(st, s)
	if err != nil {
		return nil, err
	}
	v := c.Version()
	sc := v.Scope
	if scope != nil {
		sc = *scope
	}
	if text == v.Text && sc == v.Scope {
		return nil, fmt.Errorf("claim %s, version %d: %w", c.ID, v.Index, ErrNoChange)
	}
	return &audit.EventBody{Kind: audit.KindClaim, Claim: c.ID, Text: text, Scope: sc}, nil
}

// LinkSpec is what an editor says of a piece of evidence: how it bears on
// the claim, the independence cluster it belongs to, its Admiralty grades
// and how its source knows, and why (docs/claims.md, "Event kinds").
type LinkSpec struct {
	Stance  audit.Stance
	Cluster string
	// Reliability is "A" to "F" (of the source); Credibility 1 to 6 (of
	// the information).
	Reliability string
	Credibility int
	Access      audit.Access
	// Why is the reason for the grades and the cluster; PrivateWhy keeps
	// it in the private part, never published.
	Why        string
	PrivateWhy bool
}

// Check checks the spec's enumerated values and its why, each error
// naming the value and what it may be.
func (s LinkSpec) Check() error {
	switch s.Stance {
	case audit.StanceSupports, audit.StanceContradicts, audit.StanceContext:
	default:
		return fmt.Errorf("stance %q is not one of supports, contradicts, context", clipUntrusted(string(s.Stance)))
	}
	if len(s.Reliability) != 1 || s.Reliability[0] < 'A' || s.Reliability[0] > 'F' {
		return fmt.Errorf("reliability %q is not one of A, B, C, D, E, F (A: completely reliable … E: unreliable, F: cannot be judged)", clipUntrusted(s.Reliability))
	}
	if s.Credibility < 1 || s.Credibility > 6 {
		return fmt.Errorf("credibility %d is not one of 1 to 6 (1: confirmed … 5: improbable, 6: cannot be judged)", s.Credibility)
	}
	switch s.Access {
	case audit.AccessFirstHand, audit.AccessSecondHand, audit.AccessHearsay, audit.AccessDocument:
	default:
		return fmt.Errorf("access %q is not one of first-hand, second-hand, hearsay, document", clipUntrusted(string(s.Access)))
	}
	if s.Cluster == "" {
		return errors.New("a link needs a cluster name: evidence that is not independent shares one")
	}
	if s.Why == "" {
		return errors.New("a link needs a why: the reason for its grades and its cluster")
	}
	return nil
}

// TipHandle is a tip's blinded handle (its receipts-tree leaf) and where
// it is proved: the receipts root it is a leaf of.
type TipHandle struct {
	Leaf audit.Leaf
	// Receipts is the log index of the receipts root; Period its period.
	Receipts int64
	Period   audit.Period
	// LeafIndex is the leaf's index in the tree, whose proof was checked
	// against the logged root.
	LeafIndex int64
}

// linkBody returns the body of a link of the tip to the claim s names.
func linkBody(st *audit.State, s string, tip [crypto.TipIDSize]byte, ciphertext [32]byte, h *TipHandle, spec LinkSpec) (*audit.EventBody, error) {
	c, err := unpublished(st, s)
	if err != nil {
		return nil, err
	}
	for _, l := range c.ActiveLinks() {
		if l.Handle == h.Leaf {
			return nil, fmt.Errorf("tip %s, claim %s (link %d, %s in cluster %q): %w", crypto.FormatTipID(tip), c.ID, l.Index, l.Stance, l.Cluster, ErrAlreadyLinked)
		}
	}
	b := &audit.EventBody{Kind: audit.KindLink, Claim: c.ID, Stance: spec.Stance, Cluster: spec.Cluster,
		Reliability: spec.Reliability, Credibility: spec.Credibility, Access: spec.Access,
		Handle: h.Leaf, Receipts: h.Receipts, Tip: tip, Ciphertext: ciphertext}
	if spec.PrivateWhy {
		b.PrivateWhy = spec.Why
	} else {
		b.Why = spec.Why
	}
	return b, nil
}

// UnlinkBody returns the body withdrawing the active link of the tip to
// the claim s names.
func UnlinkBody(st *audit.State, s, tip string) (*audit.EventBody, error) {
	id, err := crypto.ParseTipID(tip)
	if err != nil {
		return nil, err
	}
	c, err := unpublished(st, s)
	if err != nil {
		return nil, err
	}
	for _, l := range c.ActiveLinks() {
		if l.Tip == id {
			return &audit.EventBody{Kind: audit.KindUnlink, Claim: c.ID, Link: l.Index, Tip: id}, nil
		}
	}
	return nil, fmt.Errorf("tip %s, claim %s: %w", tip, c.ID, ErrNotLinked)
}

// SignoffBody returns the body of the editor me's sign-off of the claim s
// names, over exactly the state replay shows: the version in force, the
// evidence hash of its active links, its count of changes. It refuses an
// approval with no supporting evidence; notes says what else about the
// sign-off the editor should know (an approval that will not count, one
// that repeats an earlier one).
func SignoffBody(st *audit.State, bundle *crypto.Bundle, me, s string, decision audit.Decision, note string) (body *audit.EventBody, notes []string, err error) {
	switch decision {
	case audit.DecisionApprove, audit.DecisionReject, audit.DecisionNeedsWork:
	default:
		return nil, nil, fmt.Errorf("decision %q is not one of approve, reject, needs-work", clipUntrusted(string(decision)))
	}
	c, err := unpublished(st, s)
	if err != nil {
		return nil, nil, err
	}
	v := c.Version()
	if decision == audit.DecisionApprove {
		supports := slices.ContainsFunc(c.ActiveLinks(), func(l audit.Link) bool { return l.Stance == audit.StanceSupports })
		if !supports {
			return nil, nil, fmt.Errorf("claim %s: %w", c.ID, ErrNothingToApprove)
		}
		if v.Editor == me {
			notes = append(notes, fmt.Sprintf("your approval will not count toward the policy: you wrote version %d; it needs approvals from other editors", v.Index))
		}
		if bundle != nil && bundle.Editor(me) == nil {
			notes = append(notes, fmt.Sprintf("your approval will not count: %s is not an editor of bundle %d", me, bundle.Version))
		}
	}
	for _, so := range slices.Backward(c.Signoffs) {
		if so.Editor != me {
			continue
		}
		if so.Changes == c.Changes && so.Decision == decision {
			notes = append(notes, fmt.Sprintf("you signed off this same state before (%s, event %d): an editor's latest sign-off is the one that counts, once", so.Decision, so.Index))
		}
		break
	}
	return &audit.EventBody{Kind: audit.KindSignoff, Claim: c.ID, Version: v.Index, Evidence: c.Evidence(),
		Changes: c.Changes, Decision: decision, Note: note}, notes, nil
}

// PublishBody evaluates the policy of bundle, the bundle in force at the
// next index (at), for the claim s names and returns the body of its
// publication, over the claim as it stands; a policy not met is a
// *PolicyError saying what is lacking. unreadable are the indexes of
// events the editor cannot open (waiting for a handover): one of them
// could be an event of the claim, so the editor cannot count them.
func PublishBody(st *audit.State, bundle *crypto.Bundle, at int64, s string, unreadable []int64) (*audit.EventBody, *audit.PolicyResult, error) {
	c, err := findClaim(st, s)
	if err != nil {
		return nil, nil, err
	}
	if c.Published != nil {
		return nil, nil, fmt.Errorf("claim %s (published on %s, event %d): %w", c.ID, c.Published.Day, c.Published.Index, ErrAlreadyPublished)
	}
	if len(unreadable) > 0 {
		return nil, nil, fmt.Errorf("claim %s: %d event(s) of the log (first at %d) are sealed before you were added and not handed over to you; one could be of this claim, so you cannot count its events: ask an editor for a handover (newsdesk handover)", c.ID, len(unreadable), unreadable[0])
	}
	res, err := audit.EvaluatePolicy(bundle, st.ClaimEvents(c.ID), at)
	if err != nil {
		return nil, nil, err
	}
	if !res.Met {
		return nil, res, &PolicyError{Claim: c.ID, Bundle: bundle.Version, Lacking: res.Lacking}
	}
	return &audit.EventBody{Kind: audit.KindPublish, Claim: c.ID, Version: c.Version().Index, Evidence: c.Evidence(),
		Changes: c.Changes, Events: c.Events}, res, nil
}

// ErrAlreadyPublished: the log holds the claim's publication already.
var ErrAlreadyPublished = errors.New("the claim is already published")

// CorrectBody returns the body of a correction, clarification or
// retraction of the published claim s names.
func CorrectBody(st *audit.State, s string, kind audit.CorrectionType, text string) (*audit.EventBody, error) {
	switch kind {
	case audit.CorrectionCorrection, audit.CorrectionClarification, audit.CorrectionRetraction:
	default:
		return nil, fmt.Errorf("correction kind %q is not one of correction, clarification, retraction", clipUntrusted(string(kind)))
	}
	c, err := findClaim(st, s)
	if err != nil {
		return nil, err
	}
	if c.Published == nil {
		return nil, fmt.Errorf("claim %s: %w", c.ID, ErrClaimNotPublished)
	}
	return &audit.EventBody{Kind: audit.KindCorrect, Claim: c.ID, Correction: kind, Text: text}, nil
}

// Reveal returns what a publication or correction reveals of the claim
// (docs/claims.md, "Building a trail"): the public part and public salt
// of every event of the claim from the claim event that created it
// through its publication, and of the corrections after it, in log order.
// Private parts and private salts are never among them. Every one of
// those events must be one the editor opened.
func Reveal(ed *Editorial, id audit.ClaimID) ([]audit.Revealed, error) {
	c := ed.State.Claim(id)
	if c == nil {
		return nil, fmt.Errorf("claim %s: %w", id, ErrNoSuchClaim)
	}
	if c.Published == nil {
		return nil, fmt.Errorf("claim %s: %w", id, ErrClaimNotPublished)
	}
	parts := map[int64]*audit.Parts{}
	for _, o := range ed.Events {
		parts[o.Index] = o.Parts
	}
	var out []audit.Revealed
	for _, ev := range ed.State.ClaimEvents(id) {
		if ev.Index > c.Published.Index && ev.Body.Kind != audit.KindCorrect {
			continue
		}
		p := parts[ev.Index]
		if p == nil {
			return nil, fmt.Errorf("claim %s: the body of event %d is not one this editor opened", id, ev.Index)
		}
		out = append(out, audit.Revealed{Index: ev.Index, Public: p.Public, Salt: p.PublicSalt})
	}
	return out, nil
}

// ClaimSummary is one claim as `newsdesk claims` lists it.
type ClaimSummary struct {
	ID string `json:"id"`
	// State is "draft" (the policy is not met), "ready" (it is: the
	// claim can be published), "published", "corrected" (published, with
	// corrections or clarifications) or "retracted" (a retraction
	// follows its publication).
	State string `json:"state"`
	// Version is the log index of the version in force; Versions how
	// many there are; Author who wrote the version in force.
	Version  int64  `json:"version"`
	Versions int    `json:"versions"`
	Author   string `json:"author"`
	Text     string `json:"text"`
	Scope    string `json:"scope"`
	// Clusters are the supporting clusters' names; Approvals the editors
	// whose approvals count; both now, or at the publication.
	Clusters  []string `json:"clusters"`
	Approvals []string `json:"approvals"`
	// Lacking says what the policy still lacks (unpublished claims).
	Lacking []string `json:"lacking"`
	// Published is the day of the publication and Publication its event
	// index (0 if unpublished); Corrections the corrections since.
	Published   string `json:"published,omitempty"`
	Publication int64  `json:"publication,omitempty"`
	Corrections int    `json:"corrections"`
}

// SummarizeClaims evaluates every claim of st: an unpublished one under
// bundleAt(at), the bundle in force at the log's next index at; a
// published one at its publication, under the bundle in force there.
func SummarizeClaims(st *audit.State, bundleAt func(int64) *crypto.Bundle, at int64) ([]ClaimSummary, error) {
	var out []ClaimSummary
	for _, id := range st.Claims() {
		c := st.Claim(id)
		when := at
		if c.Published != nil {
			when = c.Published.Index
		}
		res, err := audit.EvaluatePolicy(bundleAt(when), st.ClaimEvents(id), when)
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", id, err)
		}
		v := c.Version()
		s := ClaimSummary{ID: id.String(), Version: v.Index, Versions: len(c.Versions), Author: v.Editor,
			Text: v.Text, Scope: v.Scope, Clusters: []string{}, Approvals: []string{}, Lacking: []string{},
			Corrections: len(c.Corrections)}
		for _, cl := range res.Clusters {
			s.Clusters = append(s.Clusters, cl.Name)
		}
		s.Approvals = append(s.Approvals, res.Approvers...)
		switch {
		case c.Published == nil && res.Met:
			s.State = "ready"
		case c.Published == nil:
			s.State = "draft"
			s.Lacking = append(s.Lacking, res.Lacking...)
		case slices.ContainsFunc(c.Corrections, func(k audit.Correction) bool { return k.Type == audit.CorrectionRetraction }):
			s.State = "retracted"
		case len(c.Corrections) > 0:
			s.State = "corrected"
		default:
			s.State = "published"
		}
		if c.Published != nil {
			s.Published, s.Publication = c.Published.Day, c.Published.Index
		}
		out = append(out, s)
	}
	return out, nil
}
