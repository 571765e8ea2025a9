package audit

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"fieldtip/crypto"
)

// The kinds of events on claims (docs/claims.md, "Event kinds").
const (
	KindClaim   Kind = "claim"
	KindLink    Kind = "link"
	KindUnlink  Kind = "unlink"
	KindSignoff Kind = "signoff"
	KindPublish Kind = "publish"
	KindCorrect Kind = "correct"
	// KindPeriod: an editor asked the server to close the receipts
	// period early. It changes no claim.
	KindPeriod Kind = "period"
)

// EvidenceHeader is the first line of the text an evidence hash is
// computed over (docs/claims.md, "The evidence hash").
const EvidenceHeader = "fieldtip/evidence/v1"

// Claim limits (docs/claims.md).
const (
	// ClaimIDSize is the size of a claim id.
	ClaimIDSize = 16
	// MaxClaimText caps a claim's text and a correction's text (at least
	// one byte each).
	MaxClaimText = 4096
	// MaxScope caps a claim's scope.
	MaxScope = 1024
	// MaxWhy caps a link's why, public or private, and a sign-off's note.
	MaxWhy = 4096
	// MaxClusterName caps a cluster name (at least one byte).
	MaxClusterName = 64
	// MaxClaimEvents caps the events of one claim: an event beyond it is
	// refused and is not an event of the claim, so a trail holds at most
	// this many events.
	MaxClaimEvents = 1000
)

// ClaimID names a claim: 16 random bytes, printed in unpadded base64url.
type ClaimID [ClaimIDSize]byte

// String returns the id in unpadded base64url.
func (id ClaimID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// GenerateClaimID draws a random claim id whose text does not start with
// '-' (a command line would read it as a flag).
func GenerateClaimID() (ClaimID, error) {
	var id ClaimID
	for {
		if _, err := rand.Read(id[:]); err != nil {
			return id, fmt.Errorf("claim id: %w", err)
		}
		if id.String()[0] != '-' {
			return id, nil
		}
	}
}

// ParseClaimID decodes a claim id printed by ClaimID.String; any other
// spelling is crypto.ErrMalformed.
func ParseClaimID(s string) (ClaimID, error) {
	var id ClaimID
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ClaimIDSize || base64.RawURLEncoding.EncodeToString(b) != s {
		return id, fmt.Errorf("claim id %q: %w: want %d bytes of unpadded base64url", clip(s), crypto.ErrMalformed, ClaimIDSize)
	}
	copy(id[:], b)
	return id, nil
}

// Stance is how a link's evidence bears on the claim.
type Stance string

// The stances.
const (
	StanceSupports    Stance = "supports"
	StanceContradicts Stance = "contradicts"
	StanceContext     Stance = "context"
)

// Access is how a link's source knows what it says.
type Access string

// The kinds of access.
const (
	AccessFirstHand  Access = "first-hand"
	AccessSecondHand Access = "second-hand"
	AccessHearsay    Access = "hearsay"
	AccessDocument   Access = "document"
)

// Decision is a sign-off's verdict.
type Decision string

// The decisions.
const (
	DecisionApprove   Decision = "approve"
	DecisionReject    Decision = "reject"
	DecisionNeedsWork Decision = "needs-work"
)

// CorrectionType is what a correction to a published claim does.
type CorrectionType string

// The correction types.
const (
	CorrectionCorrection    CorrectionType = "correction"
	CorrectionClarification CorrectionType = "clarification"
	CorrectionRetraction    CorrectionType = "retraction"
)

// EvidenceHash returns the evidence hash of a claim whose active links are
// the link events at these log indexes (in any order; no index twice):
// SHA-256 of EvidenceHeader, a newline, then each index in increasing
// order in canonical decimal followed by a newline (docs/claims.md).
func EvidenceHash(links []int64) [32]byte {
	sorted := slices.Clone(links)
	slices.Sort(sorted)
	h := sha256.New()
	h.Write([]byte(EvidenceHeader + "\n"))
	var buf []byte
	for _, i := range sorted {
		buf = strconv.AppendInt(buf[:0], i, 10)
		h.Write(append(buf, '\n'))
	}
	return [32]byte(h.Sum(nil))
}

// ClaimEvent is one event of a claim as a trail reveals it: where it is
// in the log, who signed it on which day (from its verified entry), and
// its public part. Body holds public fields only (ParsePublicPart's
// result, or EventBody.Public of an opened body); the policy and
// ReplayClaim never look at anything else, so editors, the server and
// auditors reach the same decisions.
type ClaimEvent struct {
	Index       int64
	Editor, Day string
	Body        *EventBody
}

// ClaimVersion is one version of a claim: its claim event.
type ClaimVersion struct {
	// Index is the log index of the claim event; it names the version.
	Index       int64
	Editor, Day string
	Text, Scope string
}

// Link is a link event of a claim that replay applied.
type Link struct {
	Index       int64
	Editor, Day string
	Stance      Stance
	Cluster     string
	// Reliability is "A" to "F"; Credibility 1 to 6.
	Reliability string
	Credibility int
	Access      Access
	// Why is the public why; PrivateWhy the private one (empty in a
	// state replayed from public parts).
	Why, PrivateWhy string
	// Handle is the tip's receipts-tree leaf; Receipts the log index of
	// its period's receipts root.
	Handle   Leaf
	Receipts int64
	// Tip and Ciphertext are the private part's tip id and ciphertext
	// hash: zero in a state replayed from public parts.
	Tip        [16]byte
	Ciphertext [32]byte
	// Mailbox is the private part's mailbox id of the tip's source (zero
	// for a tip without a reply address, and in a state replayed from
	// public parts). Not in the state's encoding.
	Mailbox crypto.MailboxID `json:"-"`
	// Withdrawn is the log index of the unlink event that withdrew the
	// link, 0 while it is active (entry 0 is always a bundle).
	Withdrawn int64
}

// Signoff is a sign-off event that replay applied.
type Signoff struct {
	Index       int64
	Editor, Day string
	// Version, Evidence and Changes name the state of the claim the
	// editor signed off: the claim after Changes change events.
	Version  int64
	Evidence [32]byte
	Changes  int64
	Decision Decision
	// Note is the private note (empty in a state replayed from public
	// parts).
	Note string
}

// Publication is a claim's publish event.
type Publication struct {
	Index       int64
	Editor, Day string
	Version     int64
	Evidence    [32]byte
	Changes     int64
	Events      int64
}

// Correction is a correct event of a published claim.
type Correction struct {
	Index       int64
	Editor, Day string
	Type        CorrectionType
	Text        string
}

// Act is an event that says only who did something on which day: a
// period close.
type Act struct {
	Index       int64
	Editor, Day string
}

// ClaimState is what a claim's events made of it, in log order.
type ClaimState struct {
	ID       ClaimID
	Versions []ClaimVersion
	// Links are all applied links, active and withdrawn.
	Links       []Link
	Signoffs    []Signoff
	Published   *Publication
	Corrections []Correction
	// Changes is the number of change events applied (claim, link,
	// unlink); Events the number of events of the claim, applied or
	// refused.
	Changes, Events int64
	// LastChange is the log index of the last change event.
	LastChange int64
}

// Version returns the version in force: the last one.
func (c *ClaimState) Version() ClaimVersion { return c.Versions[len(c.Versions)-1] }

// ActiveLinks returns the links no unlink withdrew, in log order.
func (c *ClaimState) ActiveLinks() []Link {
	var out []Link
	for _, l := range c.Links {
		if l.Withdrawn == 0 {
			out = append(out, l)
		}
	}
	return out
}

// Evidence returns the evidence hash of the active links.
func (c *ClaimState) Evidence() [32]byte {
	var idx []int64
	for _, l := range c.Links {
		if l.Withdrawn == 0 {
			idx = append(idx, l.Index)
		}
	}
	return EvidenceHash(idx)
}

// Reasons of refusals of claim events, the same for every editor and for
// an auditor replaying a trail (docs/claims.md, "Replay"). Publications
// are refused with ReasonPublishMismatch or ReasonPolicy followed by
// ": " and what differs or is lacking.
const (
	ReasonUnknownClaim     = "no such claim"
	ReasonClaimFull        = "the claim has 1000 events, the most one may have"
	ReasonClaimPublished   = "the claim is published: only corrections may follow"
	ReasonReceiptsAfter    = "the receipts root is not logged before the link"
	ReasonAlreadyLinked    = "the tip is already linked to the claim"
	ReasonNotActiveLink    = "not an active link of the claim"
	ReasonSignoffState     = "the sign-off is not over a state the claim had"
	ReasonAlreadyPublished = "the claim is already published"
	ReasonPublishMismatch  = "the publication does not match the claim"
	ReasonPolicy           = "the policy is not met"
	ReasonNotPublished     = "the claim is not published"
	// ReasonSourceCluster is refused on editors' machines only, where
	// links' private parts are known (claimReplay.applyWith).
	ReasonSourceCluster = "a tip of this source is linked in another cluster: tips that share a source reply key must share a cluster"
)

// hex32String is 32 bytes as 64 lowercase hex digits.
func hex32String(b [32]byte) string { return hex.EncodeToString(b[:]) }

// MaxPublicPart caps a revealed public part: the longest a claim event's
// can be, with every byte of its texts escaped, is well under it.
const MaxPublicPart = 64 << 10

// MarshalText makes a ClaimID a JSON string.
func (id ClaimID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses a claim id strictly (ParseClaimID).
func (id *ClaimID) UnmarshalText(b []byte) error {
	v, err := ParseClaimID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// claimReplay is the replay of one claim from public parts
// (docs/claims.md, "Replay"): State runs one per claim, ReplayClaim,
// EvaluatePolicy and CheckTrail one each. Its decisions read the public
// fields of the events only, and the bundle a publication names.
type claimReplay struct {
	c *ClaimState
	// events are the claim's events, applied or refused, in log order.
	events []ClaimEvent
	// history[n-1] is the claim after n change events.
	history []claimPoint
	refused []Refusal
	// atPublication is the policy as evaluated when the publication
	// applied.
	atPublication *PolicyResult
	// mailboxes are the source mailboxes of the applied links (the private
	// parts' mailbox ids), on editors' machines only: the cluster rule of
	// replies (applyWith).
	mailboxes map[int64]crypto.MailboxID
}

// claimPoint is the state of a claim after a change event.
type claimPoint struct {
	version  int64
	evidence [32]byte
	// index and kind are the change event's.
	index int64
	kind  Kind
}

func newClaimReplay(id ClaimID) *claimReplay {
	return &claimReplay{c: &ClaimState{ID: id}}
}

// apply applies one event of the claim (ev.Body holds public fields and
// names the claim) and returns "" or the reason it is refused. bundle is
// the bundle a publish event names; it is not used otherwise.
func (r *claimReplay) apply(ev ClaimEvent, bundle *crypto.Bundle) string {
	return r.applyWith(ev, bundle, crypto.MailboxID{})
}

// applyWith is apply on an editor's machine, where a link's private part
// is known: mailbox is the mailbox id of the linked tip's source (zero if
// the tip has none). A link whose tip shares its source's mailbox with an
// active link of the claim in another cluster is refused
// (ReasonSourceCluster; AUDIT.md: tips that share a source reply key must
// share a cluster). An auditor, who sees public parts only, cannot apply
// this rule (docs/claims.md, "Replay").
func (r *claimReplay) applyWith(ev ClaimEvent, bundle *crypto.Bundle, mailbox crypto.MailboxID) string {
	c, b := r.c, ev.Body
	if c.Events >= MaxClaimEvents {
		// Not an event of the claim: the count stays under the cap.
		return ReasonClaimFull
	}
	c.Events++
	r.events = append(r.events, ev)
	reason := r.decide(ev, bundle)
	if reason == "" && b.Kind == KindLink && mailbox != (crypto.MailboxID{}) {
		reason = r.sourceCluster(b.Cluster, mailbox)
	}
	if reason == "" && b.Kind == KindLink && mailbox != (crypto.MailboxID{}) {
		if r.mailboxes == nil {
			r.mailboxes = map[int64]crypto.MailboxID{}
		}
		r.mailboxes[ev.Index] = mailbox
	}
	if reason != "" {
		r.refused = append(r.refused, Refusal{Index: ev.Index, Editor: ev.Editor, Reason: reason})
		return reason
	}
	switch b.Kind {
	case KindClaim:
		c.Versions = append(c.Versions, ClaimVersion{Index: ev.Index, Editor: ev.Editor, Day: ev.Day, Text: b.Text, Scope: b.Scope})
	case KindLink:
		c.Links = append(c.Links, Link{Index: ev.Index, Editor: ev.Editor, Day: ev.Day, Stance: b.Stance, Cluster: b.Cluster,
			Reliability: b.Reliability, Credibility: b.Credibility, Access: b.Access, Why: b.Why, Handle: b.Handle, Receipts: b.Receipts})
	case KindUnlink:
		for i := range c.Links {
			if c.Links[i].Index == b.Link {
				c.Links[i].Withdrawn = ev.Index
			}
		}
	case KindSignoff:
		c.Signoffs = append(c.Signoffs, Signoff{Index: ev.Index, Editor: ev.Editor, Day: ev.Day, Version: b.Version,
			Evidence: b.Evidence, Changes: b.Changes, Decision: b.Decision})
	case KindPublish:
		c.Published = &Publication{Index: ev.Index, Editor: ev.Editor, Day: ev.Day, Version: b.Version,
			Evidence: b.Evidence, Changes: b.Changes, Events: b.Events}
	case KindCorrect:
		c.Corrections = append(c.Corrections, Correction{Index: ev.Index, Editor: ev.Editor, Day: ev.Day, Type: b.Correction, Text: b.Text})
	}
	if b.Kind == KindClaim || b.Kind == KindLink || b.Kind == KindUnlink {
		c.Changes++
		c.LastChange = ev.Index
		r.history = append(r.history, claimPoint{version: c.Version().Index, evidence: c.Evidence(), index: ev.Index, kind: b.Kind})
	}
	return ""
}

// sourceCluster returns ReasonSourceCluster if an active link of the
// claim in another cluster than cluster links a tip of mailbox's source.
func (r *claimReplay) sourceCluster(cluster string, mailbox crypto.MailboxID) string {
	for _, l := range r.c.Links {
		if l.Withdrawn == 0 && l.Cluster != cluster && r.mailboxes[l.Index] == mailbox {
			return ReasonSourceCluster
		}
	}
	return ""
}

// decide returns why ev cannot apply, or "".
func (r *claimReplay) decide(ev ClaimEvent, bundle *crypto.Bundle) string {
	c, b := r.c, ev.Body
	published := c.Published != nil
	switch b.Kind {
	case KindClaim:
		if published {
			return ReasonClaimPublished
		}
	case KindLink:
		if published {
			return ReasonClaimPublished
		}
		if b.Receipts >= ev.Index {
			return ReasonReceiptsAfter
		}
		for _, l := range c.Links {
			if l.Withdrawn == 0 && l.Handle == b.Handle {
				return ReasonAlreadyLinked
			}
		}
	case KindUnlink:
		if published {
			return ReasonClaimPublished
		}
		for _, l := range c.Links {
			if l.Index == b.Link && l.Withdrawn == 0 {
				return ""
			}
		}
		return ReasonNotActiveLink
	case KindSignoff:
		if published {
			return ReasonClaimPublished
		}
		if b.Changes > c.Changes {
			return ReasonSignoffState
		}
		if p := r.history[b.Changes-1]; p.version != b.Version || p.evidence != b.Evidence {
			return ReasonSignoffState
		}
	case KindPublish:
		if published {
			return ReasonAlreadyPublished
		}
		var diff []string
		if v := c.Version().Index; b.Version != v {
			diff = append(diff, fmt.Sprintf("version %d, the version in force is %d", b.Version, v))
		}
		if e := c.Evidence(); b.Evidence != e {
			diff = append(diff, "the evidence hash is not the claim's")
		}
		if b.Changes != c.Changes {
			diff = append(diff, fmt.Sprintf("%d changes, the claim has %d", b.Changes, c.Changes))
		}
		// c.Events counts this event already.
		if b.Events != c.Events-1 {
			diff = append(diff, fmt.Sprintf("%d events, the claim has %d", b.Events, c.Events-1))
		}
		if len(diff) > 0 {
			return ReasonPublishMismatch + ": " + strings.Join(diff, "; ")
		}
		res := r.evaluate(bundle)
		if !res.Met {
			return ReasonPolicy + ": " + strings.Join(res.Lacking, "; ")
		}
		r.atPublication = res
	case KindCorrect:
		if !published {
			return ReasonNotPublished
		}
	}
	return ""
}

// ReplayClaim replays one claim's events, public parts only, in log order
// (docs/claims.md, "Replay"): the same decisions State makes, which is
// how an auditor holding a trail reaches them. events must start with
// the claim event that created the claim and all name it, by increasing
// index; a publish event is checked against bundle, the bundle it names.
// It returns the claim and the events it refused.
func ReplayClaim(events []ClaimEvent, bundle *crypto.Bundle) (*ClaimState, []Refusal, error) {
	r, err := replayClaim(events, bundle, -1)
	if err != nil {
		return nil, nil, err
	}
	return r.c, r.refused, nil
}

// replayClaim replays the events before index at (all, if at < 0).
func replayClaim(events []ClaimEvent, bundle *crypto.Bundle, at int64) (*claimReplay, error) {
	if len(events) == 0 || events[0].Body == nil || events[0].Body.Kind != KindClaim {
		return nil, errors.New("audit: replay claim: the first event is not a claim event")
	}
	r := newClaimReplay(events[0].Body.Claim)
	last := int64(-1)
	for _, ev := range events {
		if at >= 0 && ev.Index >= at {
			break
		}
		if ev.Body == nil || ev.Index <= last {
			return nil, fmt.Errorf("audit: replay claim: %w: index %d after %d", ErrOutOfOrder, ev.Index, last)
		}
		last = ev.Index
		pub := ev.Body.Public()
		if err := pub.checkFields(true); err != nil {
			return nil, fmt.Errorf("audit: replay claim: event %d: %w", ev.Index, err)
		}
		if _, ok := publicFields[pub.Kind]; !ok {
			return nil, fmt.Errorf("audit: replay claim: event %d is a %s, not an event of a claim", ev.Index, pub.Kind)
		}
		if pub.Claim != r.c.ID {
			return nil, fmt.Errorf("audit: replay claim: event %d is of claim %s, not %s", ev.Index, pub.Claim, r.c.ID)
		}
		if pub.Kind == KindPublish && bundle == nil {
			return nil, fmt.Errorf("audit: replay claim: publish event %d and no bundle", ev.Index)
		}
		ev.Body = pub
		r.apply(ev, bundle)
	}
	return r, nil
}
