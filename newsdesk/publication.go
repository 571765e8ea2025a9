package newsdesk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"fieldtip/audit"
	"fieldtip/protocol"
)

// PublishResult is a publication: the publish event, and what the server
// made of the revealed parts.
type PublishResult struct {
	Claim audit.ClaimID
	// Index is the publish event's log index; Logged is set when this run
	// logged it (not set when the log held it already and this run only
	// posted it again).
	Index  int64
	Logged bool
	// Posted is set when this run posted the publication to the server:
	// not when another editor published it (only they can post it).
	Posted bool
	// Publisher and Day are the publication's editor and day.
	Publisher, Day string
	// Policy is the policy as this editor evaluated it before logging.
	Policy *audit.PolicyResult
	// Reply is the server's answer; URL the claim page's URL as readers
	// reach it once accepted: the server's answer says it (its public
	// origin, not always the one editors post to).
	Reply *protocol.PublishReply
	URL   string
	// Corrections are the correction events posted again with it.
	Corrections []int64
	// Others are the other editors of the bundle, for a pending
	// publication's message: their newsdesk sync cosigns.
	Others []string
}

// Pending reports whether the server keeps the publication until editors
// cosign a checkpoint that covers what it rests on.
func (r *PublishResult) Pending() bool { return r.Reply.State == protocol.StatePending }

// Publish publishes a claim: it brings the log up to the server's
// (Session.Refresh) and evaluates the bundle's policy locally (a *PolicyError says what is lacking, and nothing is logged),
// logs the publish event over the claim as it stands, then posts the
// public parts and salts of every event of the claim through the
// publication to the server, which builds the trail from its own log,
// checks it and serves the claim's page, or keeps it pending until enough
// editors have cosigned (Pending). For a claim the log already publishes,
// it posts the publication again, and its corrections: what to do after
// a lost answer or a pending publication.
func (d *Desk) Publish(ctx context.Context, claim string) (*PublishResult, error) {
	// The policy is evaluated over the log as the server has it now, not
	// as this session last synced it: a console's sign-off by another
	// editor a moment ago counts (and a change since is seen).
	if d.s.Online() {
		if err := d.s.Refresh(ctx); err != nil {
			return nil, fmt.Errorf("bring the log up to the server's before publishing: %w", err)
		}
	}
	st := d.state()
	c, err := findClaim(st, claim)
	if err != nil {
		return nil, err
	}
	res := &PublishResult{Claim: c.ID}
	if c.Published == nil {
		v := d.View()
		body, pol, err := PublishBody(st, v.Bundle, v.Tree.N, claim, d.Editorial().Unreadable)
		if err != nil {
			return nil, err
		}
		res.Policy = pol
		if res.Index, err = d.write(ctx, body); err != nil {
			return nil, err
		}
		res.Logged = true
		if c = d.state().Claim(c.ID); c.Published == nil || c.Published.Index != res.Index {
			// Another editor's publication came first, or replay refused
			// this one (another editor's change logged in between).
			return res, fmt.Errorf("the publication is logged as event %d, but replay refuses it: %s", res.Index, refusal(d.state(), res.Index))
		}
	}
	res.Index, res.Publisher, res.Day = c.Published.Index, c.Published.Editor, c.Published.Day
	if c.Published.Editor != d.key.Label {
		// Only the publisher may post a publication (the server checks
		// who signed it): show where it stands.
		return res, d.shownBy(ctx, res, c.Published)
	}
	revealed, err := Reveal(d.Editorial(), c.ID)
	if err != nil {
		return res, err
	}
	req := &protocol.PublishRequest{Publish: res.Index}
	var corrections []protocol.RevealedEvent
	for _, r := range revealed {
		e := protocol.RevealedEvent{Index: r.Index, Salt: r.Salt, Public: r.Public}
		if r.Index <= res.Index {
			req.Events = append(req.Events, e)
		} else {
			corrections = append(corrections, e)
		}
	}
	body, err := protocol.MarshalPublishRequest(req)
	if err != nil {
		return res, err
	}
	reply, err := d.postPublication(ctx, protocol.PathPublish, body)
	if err != nil {
		return res, fmt.Errorf("the publication is logged as event %d, but the server: %w", res.Index, err)
	}
	res.Reply, res.Posted = reply, true
	b := d.View().BundleAt(res.Index)
	for _, e := range b.Editors {
		if e.Label != d.key.Label && !slices.Contains(b.Revoked, e.Label) {
			res.Others = append(res.Others, e.Label)
		}
	}
	if res.Pending() {
		return res, nil
	}
	res.URL = d.pageURL(reply)
	for _, e := range corrections {
		if _, err := d.postCorrection(ctx, e); err != nil {
			return res, err
		}
		res.Corrections = append(res.Corrections, e.Index)
	}
	return res, nil
}

// shownBy fills res for a claim another editor published, from its public
// page: accepted if the server serves it, otherwise an error saying who
// must post it.
func (d *Desk) shownBy(ctx context.Context, res *PublishResult, p *audit.Publication) error {
	path := protocol.ClaimPath(res.Claim.String())
	page, err := get(ctx, d.httpClient(), d.origin()+path, maxClaimPage)
	var pe *protocol.Error
	switch {
	case err == nil:
		res.Reply = &protocol.PublishReply{Claim: res.Claim.String(), State: protocol.StateAccepted, URL: path, Page: pageJSONLDURL(page),
			Trail: protocol.ClaimTrailPath(res.Claim.String())}
		res.URL = d.pageURL(res.Reply)
		return nil
	case errors.As(err, &pe) && pe.Code == protocol.CodeNotFound:
		return fmt.Errorf("claim %s: %s published it on %s (event %d), and the server does not show it yet: only %s's newsdesk publish %s can post it (it may be waiting for cosignatures: newsdesk sync cosigns)",
			res.Claim, p.Editor, p.Day, p.Index, p.Editor, res.Claim)
	default:
		return fmt.Errorf("claim %s: %s published it (event %d); its page: %w", res.Claim, p.Editor, p.Index, err)
	}
}

// maxClaimPage bounds a claim page newsdesk fetches to see that it is
// served.
const maxClaimPage = 4 << 20

// refusal returns why replay refused the event at index, or says it did
// not apply.
func refusal(st *audit.State, index int64) string {
	for _, r := range st.Refused() {
		if r.Index == index {
			return r.Reason
		}
	}
	return "it is not the claim's publication"
}

// postPublication posts a publication or a correction over the
// session's login and reads the answer (200 accepted, 202 pending:
// protocol.PublishReply).
func (d *Desk) postPublication(ctx context.Context, path string, body []byte) (*protocol.PublishReply, error) {
	var reply protocol.PublishReply
	if err := d.call(ctx, func(r *Remote) error { return r.do(ctx, http.MethodPost, path, body, &reply) }); err != nil {
		return nil, err
	}
	if reply.State != protocol.StateAccepted && reply.State != protocol.StatePending {
		return nil, fmt.Errorf("the server answered the publication with state %q", clipUntrusted(reply.State))
	}
	if reply.State == protocol.StatePending && reply.Waiting == nil {
		return nil, errors.New("the server keeps the publication pending without saying what for")
	}
	if reply.State == protocol.StateAccepted && !strings.HasPrefix(reply.URL, protocol.PathClaims+"/") {
		return nil, fmt.Errorf("the server accepted the publication at %q, not a claim page's path", clipUntrusted(reply.URL))
	}
	if reply.Page != "" && !isPageURL(reply.Page, reply.URL) {
		return nil, fmt.Errorf("the server gave the claim's page URL as %q, not an http(s) URL of its path %q", clipUntrusted(reply.Page), clipUntrusted(reply.URL))
	}
	return &reply, nil
}

// pageURL returns the URL readers reach a claim's page at: the one the
// server's answer gives (on its public origin), or, from a server whose
// answer has none, its path on the origin the editor posted to.
func (d *Desk) pageURL(reply *protocol.PublishReply) string {
	if reply.Page != "" && isPageURL(reply.Page, reply.URL) {
		return reply.Page
	}
	return d.origin() + reply.URL
}

// isPageURL reports whether page is path on an http or https origin,
// and nothing else (no user, query or fragment).
func isPageURL(page, path string) bool {
	u, err := url.Parse(page)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil &&
		u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && u.Opaque == "" && u.RawPath == "" && u.Path == path &&
		page == u.Scheme+"://"+u.Host+path
}

// pageJSONLDURL returns the "url" a claim page's JSON-LD block gives (its
// address on the server's public origin), or "" if the page has none.
func pageJSONLDURL(page []byte) string {
	const open, end = `<script type="application/ld+json">`, `</script>`
	_, rest, ok := bytes.Cut(page, []byte(open))
	if !ok {
		return ""
	}
	block, _, ok := bytes.Cut(rest, []byte(end))
	if !ok {
		return ""
	}
	var ld struct {
		URL string `json:"url"`
	}
	if json.Unmarshal(block, &ld) != nil {
		return ""
	}
	return ld.URL
}

// CorrectResult is a correction logged and posted.
type CorrectResult struct {
	Claim audit.ClaimID
	Index int64
	// Reply is the server's answer, nil when it cannot show the
	// correction yet (Pending); URL the claim page's.
	Reply   *protocol.PublishReply
	URL     string
	Pending bool
}

// Correct appends a correction, clarification or retraction to a
// published claim (never rewriting it): it logs the correct event, then
// posts its public part to the server, which rebuilds the trail and the
// page with it. While the publication itself waits for cosignatures, the
// server cannot show it yet (Pending): newsdesk publish CLAIM posts it
// again later.
func (d *Desk) Correct(ctx context.Context, claim string, kind audit.CorrectionType, text string) (*CorrectResult, error) {
	body, err := CorrectBody(d.state(), claim, kind, text)
	if err != nil {
		return nil, err
	}
	res := &CorrectResult{Claim: body.Claim}
	if res.Index, err = d.write(ctx, body); err != nil {
		return nil, err
	}
	e, err := d.revealOne(res.Index)
	if err != nil {
		return res, fmt.Errorf("the %s is logged as event %d, but: %w", kind, res.Index, err)
	}
	reply, err := d.postCorrection(ctx, *e)
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Code == protocol.CodePending {
		res.Pending = true
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.Reply, res.URL = reply, d.pageURL(reply)
	return res, nil
}

// postCorrection posts one correct event's public part.
func (d *Desk) postCorrection(ctx context.Context, e protocol.RevealedEvent) (*protocol.PublishReply, error) {
	body, err := protocol.MarshalRevealedEvent(&e)
	if err != nil {
		return nil, err
	}
	reply, err := d.postPublication(ctx, protocol.PathCorrect, body)
	if err != nil {
		return nil, fmt.Errorf("the correction is logged as event %d, but the server: %w", e.Index, err)
	}
	return reply, nil
}

// revealOne returns the public part and salt of the event at index,
// which this editor wrote (write replayed the log up to it).
func (d *Desk) revealOne(index int64) (*protocol.RevealedEvent, error) {
	for _, o := range d.Editorial().Events {
		if o.Index == index {
			return &protocol.RevealedEvent{Index: index, Salt: o.Parts.PublicSalt, Public: o.Parts.Public}, nil
		}
	}
	return nil, fmt.Errorf("the log holds no event of yours at %d", index)
}

// PeriodResult is a receipts period closed early.
type PeriodResult struct {
	// Index is the period event's index; Closed the server's answer.
	Index  int64
	Closed *protocol.PeriodClosed
}

// ClosePeriod has the server close the current receipts period today and
// log its root at once, so that today's tips can be linked today: it logs
// a period event (so that everyone sees who closed a period early), then
// asks the server, revealing that event's public part. The cost is the
// closed period's anonymity set: only the tips that arrived so far
// (SECURITY.md).
func (d *Desk) ClosePeriod(ctx context.Context) (*PeriodResult, error) {
	i, err := d.write(ctx, &audit.EventBody{Kind: audit.KindPeriod})
	if err != nil {
		return nil, err
	}
	res := &PeriodResult{Index: i}
	e, err := d.revealOne(i)
	if err != nil {
		return res, fmt.Errorf("the period close is logged as event %d, but: %w", i, err)
	}
	body, err := protocol.MarshalRevealedEvent(e)
	if err != nil {
		return res, err
	}
	var closed protocol.PeriodClosed
	if err := d.call(ctx, func(r *Remote) error { return r.do(ctx, http.MethodPost, protocol.PathPeriodClose, body, &closed) }); err != nil {
		return res, fmt.Errorf("the period close is logged as event %d, but the server: %w", i, err)
	}
	res.Closed = &closed
	return res, nil
}
