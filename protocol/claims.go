package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Claims and their publication trails on the wire (docs/claims.md for the
// events and the trail; docs/log.md, "Publications", for these endpoints).
//
// Editors' requests, with a session (Authorization: Bearer <token>), each
// naming a logged event of the session's editor and revealing its public
// part and salt, so that the server, which cannot read event bodies, can
// check what the event says against its commitment:
//
//	POST /editor/publish       PublishRequest  → 200 PublishReply (accepted), 202 PublishReply (pending)
//	POST /editor/correct       RevealedEvent   → 200 PublishReply (accepted, with the correction)
//	POST /editor/period/close  RevealedEvent   → 200 PeriodClosed
//
// Public, no login (on the public listener when there is one):
//
//	GET /claims                → ClaimList (JSON)
//	GET /claims/<id>           → the claim's page (HTML)
//	GET /claims/<id>/trail     → the claim's trail (fieldtip/trail/v1, docs/claims.md)
//	GET /claims.atom           → an Atom feed: one entry per publication and per correction
//
// A publication the policy refuses is an error of code CodePolicyNotMet
// whose Rule names the first unmet rule (RuleClusters, RuleObjection,
// RuleApprovals) and whose text says what is lacking; revealed parts that
// make no valid trail with the server's log are CodeTrailRefused, whose
// Rule names the trail rule they break (RuleCommitment, …) and whose Index
// is the log index concerned, when there is one.
const (
	PathPublish     = "/editor/publish"
	PathCorrect     = "/editor/correct"
	PathPeriodClose = "/editor/period/close"

	// PathClaims lists the published claims; PathClaims + "/" + <claim id>
	// is a claim's page (ClaimPath) and that + PathTrailSuffix its trail.
	PathClaims      = "/claims"
	PathTrailSuffix = "/trail"
	PathClaimsFeed  = "/claims.atom"
)

// ClaimPath returns the path of a claim's page.
func ClaimPath(id string) string { return PathClaims + "/" + id }

// ClaimTrailPath returns the path of a claim's trail.
func ClaimTrailPath(id string) string { return ClaimPath(id) + PathTrailSuffix }

// Claims limits, checked before anything else is read.
const (
	// MaxPublishRequest caps a publish request: the revealed parts of up
	// to MaxRevealedEvents events. It is the trail's cap (the trail holds
	// all of this and more).
	MaxPublishRequest = 32 << 20
	// MaxRevealedEvents caps the events of a publish request: a claim has
	// at most 1,000 events (docs/claims.md).
	MaxRevealedEvents = 1000
	// MaxPublicPart caps one revealed public part (a claim event's, with
	// every byte of its texts escaped, is well under it).
	MaxPublicPart = 64 << 10
	// MaxRevealedRequest caps a correction or a period close: one revealed
	// event.
	MaxRevealedRequest = MaxPublicPart + 1024
	// MaxClaimList caps the claims one GET /claims answers.
	MaxClaimList = 500
	// SaltSize is the size of a revealed part's salt.
	SaltSize = 32
	// ClaimIDLength is the length of a claim id's text: 16 bytes in
	// unpadded base64url.
	ClaimIDLength = 22
)

// Error codes of publications (see Error).
const (
	// CodePolicyNotMet: the claim, as the server's log has it, does not
	// meet the publication policy of the bundle the publication names.
	// Rule names the first unmet rule; the text says what is lacking.
	// Log what is lacking (sign-offs, links) and publish again.
	CodePolicyNotMet Code = "policy_not_met"
	// CodeTrailRefused: the revealed parts and the server's log make no
	// valid trail: a part that does not open its event's commitment, an
	// event left out, an event of another claim, a publication replay
	// refuses. Rule names the trail rule (docs/claims.md, "Checking a
	// trail"); Index, when not 0, the log index concerned. Do not retry
	// as is.
	CodeTrailRefused Code = "trail_refused"
	// CodePending: the claim's publication waits for editors to cosign a
	// checkpoint (a correction of it cannot be shown yet). Sync, then try
	// again.
	CodePending Code = "pending"
)

// The rules a refused publication names (Error.Rule). The policy's:
const (
	RuleClusters  = "clusters"
	RuleObjection = "objection"
	RuleApprovals = "approvals"
)

// The trail's (docs/claims.md, "Checking a trail"):
const (
	RuleFormat      = "format"
	RuleBundle      = "bundle"
	RuleSignature   = "signature"
	RuleCommitment  = "commitment"
	RulePart        = "part"
	RuleCheckpoint  = "checkpoint"
	RuleInclusion   = "inclusion"
	RuleConsistency = "consistency"
	RuleCosigners   = "cosigners"
	RuleDay         = "day"
	RuleWitnessed   = "witnessed"
	RuleReceipts    = "receipts"
	RuleHandle      = "handle"
	RuleChanges     = "changes"
	RuleReplay      = "replay"
)

// maxRuleLength caps a rule's name on the wire. Rules are lowercase ASCII
// words; a client accepts names it does not know (new rules may be added).
const maxRuleLength = 32

// RevealedEvent is a logged event's public part and the salt of its
// commitment, as an editor reveals it. On the wire:
//
//	{"index":<log index>,"salt":<32 bytes, unpadded base64url>,"public":<the public part>}
//
// The public part is embedded as the JSON object it is, byte for byte, as
// Go's encoding/json writes it (its commitment is over those bytes); the
// server checks it against the event's commitment.
type RevealedEvent struct {
	Index  int64
	Salt   [SaltSize]byte
	Public []byte
}

// PublishRequest asks the server to publish a claim: Publish is the log
// index of the publish event, Events the revealed public parts and salts of
// every event of the claim, from the claim event that created it through
// the publish event, by strictly increasing index. On the wire:
//
//	{"publish":<index>,"events":[<RevealedEvent>,…]}
type PublishRequest struct {
	Publish int64
	Events  []RevealedEvent
}

// The publication states of PublishReply.State.
const (
	StateAccepted = "accepted"
	StatePending  = "pending"
)

// PublishReply answers a publication or a correction.
//
// Accepted (200): the server built the claim's trail from its own log,
// checked it, and serves the claim's page and trail: Head is the size of
// the log the trail's proofs are against, Witnessed the size of its
// cosigned checkpoint and Cosigners the labels of the editors who cosigned
// it, sorted.
//
// Pending (202): everything checked but the witness: no checkpoint the
// server holds of at least Waiting.Size entries is cosigned by
// Waiting.Cosigners editors of the bundle the publication names. The
// server keeps the publication and accepts it as soon as enough editors
// have cosigned such a checkpoint (each editor's newsdesk sync does);
// nothing is public until then. Head, Witnessed are 0 and Cosigners empty.
type PublishReply struct {
	// Claim is the claim's id; URL and Trail the paths of its page and
	// trail on the server's public listener; Page the page's URL as
	// readers reach it: URL on the server's public origin, which is not
	// always the origin the editor posted to (a CDN's or an onion
	// service's name in front of the public listener).
	Claim     string   `json:"claim"`
	State     string   `json:"state"`
	URL       string   `json:"url"`
	Page      string   `json:"page"`
	Trail     string   `json:"trail"`
	Head      int64    `json:"head"`
	Witnessed int64    `json:"witnessed"`
	Cosigners []string `json:"cosigners"`
	Waiting   *Waiting `json:"waiting,omitempty"`
}

// Waiting says what a pending publication waits for: a checkpoint of at
// least Size entries (every event the policy rests on) cosigned by
// Cosigners editors of bundle Bundle; Have is the most editors who have
// cosigned one such checkpoint so far.
type Waiting struct {
	Size      int64 `json:"size"`
	Cosigners int64 `json:"cosigners"`
	Bundle    int64 `json:"bundle"`
	Have      int64 `json:"have"`
}

// PeriodClosed answers a period close: the receipts period that ends
// today was closed and its root logged at index Receipts; it runs from
// First to Last (today). Tips that arrive from now on are receipted with
// day Next (tomorrow, the first day of the next period), so a tip received
// today can be linked at once, and the closed period takes no more tips.
type PeriodClosed struct {
	Receipts int64  `json:"receipts"`
	First    string `json:"first"`
	Last     string `json:"last"`
	Next     string `json:"next"`
}

// ClaimList is what GET /claims answers: the published claims, latest
// publication first, at most MaxClaimList of them. GET /claims?before=<n>
// lists those published before log index n.
type ClaimList struct {
	Claims []ClaimSummary `json:"claims"`
}

// ClaimSummary is one published claim: its id, the paths of its page and
// trail, its text and scope as published, the day of its publication and
// of its latest correction (the publication's if none), how many
// corrections it has and whether one retracts it, its publication's log
// index, and how many supporting clusters and approving editors the trail
// shows. Days only: nothing finer.
type ClaimSummary struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	Trail       string `json:"trail"`
	Text        string `json:"text"`
	Scope       string `json:"scope"`
	Published   string `json:"published"`
	Updated     string `json:"updated"`
	Publication int64  `json:"publication"`
	Corrections int64  `json:"corrections"`
	Retracted   bool   `json:"retracted"`
	Clusters    int64  `json:"clusters"`
	Approvals   int64  `json:"approvals"`
}

// validRule reports whether s is a rule's name on the wire: 1 to
// maxRuleLength lowercase ASCII letters.
func validRule(s string) bool {
	if len(s) == 0 || len(s) > maxRuleLength {
		return false
	}
	for i := range len(s) {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// The JSON forms of the claims requests; field order is the encoding's.
type revealedJSON struct {
	Index  int64           `json:"index"`
	Salt   string          `json:"salt"`
	Public json.RawMessage `json:"public"`
}

type publishJSON struct {
	Publish int64                    `json:"publish"`
	Events  cappedList[revealedJSON] `json:"events"`
}

// cappedList is a JSON list that decodes at most MaxRevealedEvents items:
// a list of empty objects costs memory out of proportion to its bytes, so
// the count is capped before the next one is decoded.
type cappedList[T any] []T

func (l *cappedList[T]) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*l = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return errors.New("not a list")
	}
	out := cappedList[T]{}
	for dec.More() {
		if len(out) == MaxRevealedEvents {
			return fmt.Errorf("a list of more than %d items", MaxRevealedEvents)
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		out = append(out, v)
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	*l = out
	return nil
}

// maxLogIndex bounds every log index on the wire: 2^53, as tlog's.
const maxLogIndex = 1 << 53

func (e *RevealedEvent) toJSON() revealedJSON {
	return revealedJSON{Index: e.Index, Salt: base64.RawURLEncoding.EncodeToString(e.Salt[:]), Public: json.RawMessage(e.Public)}
}

// check checks a revealed event's ranges: an index that can be an event's
// (1 to 2^53 − 1: entry 0 is a bundle), a public part that is a JSON
// object of 2 to MaxPublicPart bytes in the form encoding/json writes.
// (Whether it is a public part of the kind and form docs/claims.md says is
// for package audit, against the event's commitment.)
func (e *RevealedEvent) check() error {
	switch {
	case e.Index < 1 || e.Index >= maxLogIndex:
		return malformed("revealed event index %d is not 1 to 2^53 − 1", e.Index)
	case len(e.Public) < 2 || len(e.Public) > MaxPublicPart || e.Public[0] != '{':
		return malformed("the public part of event %d is not a JSON object of at most %d bytes", e.Index, MaxPublicPart)
	case !onePublicForm(e.Public):
		return malformed("the public part of event %d is not compact JSON as Go's encoding/json writes it", e.Index)
	}
	return nil
}

func fromRevealedJSON(j revealedJSON) (RevealedEvent, error) {
	e := RevealedEvent{Index: j.Index, Public: []byte(j.Public)}
	if err := decodeFixed(e.Salt[:], "salt", j.Salt); err != nil {
		return e, err
	}
	return e, e.check()
}

// MarshalRevealedEvent encodes a revealed event (the body of a correction
// or a period close) in its one form. It refuses an event out of range, or
// whose public part is not a JSON object in the form Go's encoding/json
// writes.
func MarshalRevealedEvent(e *RevealedEvent) ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e.toJSON())
	if err != nil {
		return nil, malformed("revealed event: %v", err)
	}
	return b, nil
}

// onePublicForm reports whether a public part is a JSON value as
// encoding/json writes an embedded json.RawMessage: compact, with HTML
// characters escaped (what a part in its one form already is). A part in
// another form would come out of Marshal changed, and its commitment with
// it.
func onePublicForm(p []byte) bool {
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, p); err != nil {
		return false
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	return bytes.Equal(escaped.Bytes(), p)
}

// ParseRevealedEvent parses a correction or period-close request: one
// RevealedEvent in its one form (no whitespace, members in order, no
// other member, the public part as Go's encoding/json writes it), at most
// MaxRevealedRequest bytes. A fault is a *Error of code CodeMalformed.
func ParseRevealedEvent(b []byte) (*RevealedEvent, error) {
	if len(b) > MaxRevealedRequest {
		return nil, malformed("request of %d bytes, more than %d", len(b), MaxRevealedRequest)
	}
	var j revealedJSON
	if err := decodeStrictJSON(b, &j); err != nil {
		return nil, err
	}
	e, err := fromRevealedJSON(j)
	if err != nil {
		return nil, err
	}
	if canon, err := MarshalRevealedEvent(&e); err != nil || !bytes.Equal(canon, b) {
		return nil, malformed("revealed event is not in its one form")
	}
	return &e, nil
}

// MarshalPublishRequest encodes a publish request in its one form. It
// refuses one that ParsePublishRequest would refuse.
func MarshalPublishRequest(r *PublishRequest) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	j := publishJSON{Publish: r.Publish, Events: cappedList[revealedJSON]{}}
	for i := range r.Events {
		j.Events = append(j.Events, r.Events[i].toJSON())
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, malformed("publish request: %v", err)
	}
	if len(b) > MaxPublishRequest {
		return nil, malformed("publish request of %d bytes, more than %d", len(b), MaxPublishRequest)
	}
	return b, nil
}

// check checks a publish request's events: 1 to MaxRevealedEvents, each
// in range, by strictly increasing index, the last one the publication.
func (r *PublishRequest) check() error {
	if len(r.Events) == 0 || len(r.Events) > MaxRevealedEvents {
		return malformed("%d revealed events, want 1 to %d", len(r.Events), MaxRevealedEvents)
	}
	last := int64(0)
	for i := range r.Events {
		if err := r.Events[i].check(); err != nil {
			return err
		}
		if r.Events[i].Index <= last {
			return malformed("revealed event %d follows %d: want strictly increasing indexes", r.Events[i].Index, last)
		}
		last = r.Events[i].Index
	}
	if r.Publish != last {
		return malformed("the publication %d is not the last revealed event (%d)", r.Publish, last)
	}
	return nil
}

// ParsePublishRequest parses a publish request in its one form (no
// whitespace, members in order, no other member, public parts as Go's
// encoding/json writes them, salts in unpadded base64url), at most
// MaxPublishRequest bytes, with 1 to MaxRevealedEvents events by strictly
// increasing index, the last of which is the publication. A fault is a
// *Error of code CodeMalformed.
func ParsePublishRequest(b []byte) (*PublishRequest, error) {
	if len(b) > MaxPublishRequest {
		return nil, malformed("publish request of %d bytes, more than %d", len(b), MaxPublishRequest)
	}
	var j publishJSON
	if err := decodeStrictJSON(b, &j); err != nil {
		return nil, err
	}
	r := &PublishRequest{Publish: j.Publish}
	for _, ej := range j.Events {
		e, err := fromRevealedJSON(ej)
		if err != nil {
			return nil, err
		}
		r.Events = append(r.Events, e)
	}
	// One encoding: encoding/json accepts whitespace, escapes, keys in any
	// case and order, repeated keys and lenient base64; the round trip
	// does not.
	if canon, err := MarshalPublishRequest(r); err != nil {
		return nil, err
	} else if !bytes.Equal(canon, b) {
		return nil, malformed("publish request is not in its one form")
	}
	return r, nil
}

// decodeStrictJSON decodes one JSON value into v, refusing unknown members
// and anything after the value.
func decodeStrictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed("not a request: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("trailing data after the request")
	}
	return nil
}
