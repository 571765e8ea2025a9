package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/tlog"
)

// TrailHeader is the format and version a trail names in its first
// member (docs/claims.md, "The trail package").
const TrailHeader = "fieldtip/trail/v1"

// Trail limits (docs/claims.md, "Limits"), checked before any other work.
const (
	// MaxTrailSize caps a trail document.
	MaxTrailSize = 32 << 20
	// MaxTrailBundles caps the bundles of a trail; the events, receipts
	// roots and handles are capped by MaxClaimEvents.
	MaxTrailBundles = 64
	// MaxProofHashes caps every proof of a trail (a tree of 2^53 entries
	// needs 53).
	MaxProofHashes = 64
	// MaxHeadSize caps the head checkpoint; MaxWitnessedSize the witnessed
	// one, with a cosignature line for each of 64 editors.
	MaxHeadSize      = MaxCheckpointSize
	MaxWitnessedSize = MaxCheckpointSize + 64*256
)

// Trail is a publication trail (docs/claims.md, "The trail package"): what
// anyone needs to check, with the newsroom's key alone, how a published
// claim was reached. It holds no tip id, ciphertext hash, private part or
// private salt. A *Trail from ParseTrail is in its one form but has not
// been checked: CheckTrail does that.
type Trail struct {
	Claim ClaimID
	// Head is the log's signed checkpoint every entry's Proof is against.
	Head []byte
	// Witnessed is a checkpoint of the log, signed by the log key and
	// cosigned by editors; Consistency proves Head's tree extends it.
	Witnessed   []byte
	Consistency tlog.TreeProof
	// Bundles are the bundles in force at the events and receipts roots;
	// Receipts the receipts roots links name; Events the claim's events.
	// Each list by strictly increasing index.
	Bundles  []TrailEntry
	Receipts []TrailEntry
	Events   []TrailEvent
	// Handles are the proofs of the links' handles, one per link event,
	// by increasing index of the link.
	Handles []TrailHandle
}

// TrailEntry is a log entry with its inclusion proof in the head's tree.
type TrailEntry struct {
	Index int64
	Entry []byte
	Proof tlog.RecordProof
}

// TrailEvent is an event entry with its revealed public part and salt.
type TrailEvent struct {
	TrailEntry
	Salt   [SaltSize]byte
	Public []byte
}

// TrailHandle is a link's handle's place in its receipts tree: the leaf's
// index and its inclusion proof.
type TrailHandle struct {
	// Link is the log index of the link event.
	Link int64
	// Leaf is the index of the handle among the receipts tree's leaves.
	Leaf  int64
	Proof tlog.RecordProof
}

// The rules a trail can break (docs/claims.md, "Checking a trail"): the
// Rule of a *TrailError, for errors.Is.
var (
	ErrTrailFormat      = errors.New("not a trail in its one form")
	ErrTrailBundle      = errors.New("bundle does not verify")
	ErrTrailSignature   = errors.New("event not signed by an editor of its bundle")
	ErrTrailCommitment  = errors.New("public part does not open the event's commitment")
	ErrTrailPart        = errors.New("public part is not one of the claim's")
	ErrTrailCheckpoint  = errors.New("checkpoint does not verify")
	ErrTrailInclusion   = errors.New("inclusion proof does not verify")
	ErrTrailConsistency = errors.New("witnessed checkpoint is not a prefix of the head")
	ErrTrailCosigners   = errors.New("too few editors cosigned the witnessed checkpoint")
	ErrTrailDay         = errors.New("a cosignature's time is finer than a day")
	ErrTrailWitnessed   = errors.New("entry not in the witnessed checkpoint")
	ErrTrailReceipts    = errors.New("receipts root does not verify")
	ErrTrailHandle      = errors.New("handle is not in its receipts tree")
	ErrTrailChanges     = errors.New("the trail leaves out events of the claim")
	ErrTrailReplay      = errors.New("the claim's events do not replay to a publication")
	ErrTrailPolicy      = errors.New("the policy is not met")
)

// TrailError is a trail that breaks a rule: Rule is one of the ErrTrail
// sentinels, Index the log index of the entry concerned (-1 when none),
// Err the details.
type TrailError struct {
	Rule  error
	Index int64
	Err   error
}

func (e *TrailError) Error() string {
	where := ""
	if e.Index >= 0 {
		where = fmt.Sprintf(" at entry %d", e.Index)
	}
	if e.Err == nil {
		return fmt.Sprintf("trail: %s%s", e.Rule, where)
	}
	return fmt.Sprintf("trail: %s%s: %s", e.Rule, where, e.Err)
}

// Unwrap returns the rule and the details, so errors.Is matches either.
func (e *TrailError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Rule}
	}
	return []error{e.Rule, e.Err}
}

func trailErr(rule error, index int64, format string, args ...any) *TrailError {
	return &TrailError{Rule: rule, Index: index, Err: fmt.Errorf(format, args...)}
}

// TrailReport is what CheckTrail established about a published claim.
type TrailReport struct {
	Claim ClaimID
	// Text and Scope are the version published.
	Text, Scope string
	// Versions are all the claim's versions, in log order.
	Versions []ClaimVersion
	// Published is the publication; Bundle the bundle it names, whose
	// policy the claim met.
	Published Publication
	Bundle    int64
	// Policy is the policy as evaluated at the publication: the
	// supporting clusters with each link's grades and access, the
	// contradicting and context links, the approving editors.
	Policy *PolicyResult
	// Periods are the receipt periods of the supporting evidence,
	// distinct, in order.
	Periods []Period
	// Corrections are the corrections, in log order.
	Corrections []Correction
	// Origin is the log's name; Witnessed the cosigned checkpoint and
	// Cosigners the labels of the editors who cosigned it, sorted; Head
	// the checkpoint the trail's proofs are against.
	Origin    string
	Witnessed tlog.Tree
	Cosigners []string
	Head      tlog.Tree
}

// The JSON form of a trail (docs/claims.md). Field order is the
// encoding's order.
type trailJSON struct {
	Trail       string                   `json:"trail"`
	Claim       ClaimID                  `json:"claim"`
	Head        string                   `json:"head"`
	Witnessed   string                   `json:"witnessed"`
	Consistency []tlog.Hash              `json:"consistency"`
	Bundles     objList[trailEntryJSON]  `json:"bundles"`
	Receipts    objList[trailEntryJSON]  `json:"receipts"`
	Events      objList[trailEventJSON]  `json:"events"`
	Handles     objList[trailHandleJSON] `json:"handles"`
}

// objList is a JSON list of objects that decodes at most MaxClaimEvents
// of them: a list of empty objects costs memory out of proportion to its
// bytes, so the count is capped before decoding the next one.
type objList[T any] []T

func (l *objList[T]) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*l = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return errors.New("not a list")
	}
	out := objList[T]{}
	for dec.More() {
		if len(out) == MaxClaimEvents {
			return fmt.Errorf("a list of more than %d objects", MaxClaimEvents)
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

type trailEntryJSON struct {
	Index int64       `json:"index"`
	Entry string      `json:"entry"`
	Proof []tlog.Hash `json:"proof"`
}

type trailEventJSON struct {
	Index  int64           `json:"index"`
	Entry  string          `json:"entry"`
	Salt   string          `json:"salt"`
	Public json.RawMessage `json:"public"`
	Proof  []tlog.Hash     `json:"proof"`
}

type trailHandleJSON struct {
	Link  int64       `json:"link"`
	Leaf  int64       `json:"leaf"`
	Proof []tlog.Hash `json:"proof"`
}

// MarshalTrail encodes a trail in its one form: the JSON encoding/json
// writes, then a newline. It checks the trail's form and limits (not its
// signatures or proofs) on the way.
func MarshalTrail(t *Trail) ([]byte, error) {
	j := trailJSON{Trail: TrailHeader, Claim: t.Claim, Head: string(t.Head), Witnessed: string(t.Witnessed),
		Consistency: hashes(t.Consistency), Bundles: objList[trailEntryJSON]{}, Receipts: objList[trailEntryJSON]{},
		Events: objList[trailEventJSON]{}, Handles: objList[trailHandleJSON]{}}
	for _, e := range t.Bundles {
		j.Bundles = append(j.Bundles, trailEntryJSON{Index: e.Index, Entry: string(e.Entry), Proof: hashes(e.Proof)})
	}
	for _, e := range t.Receipts {
		j.Receipts = append(j.Receipts, trailEntryJSON{Index: e.Index, Entry: string(e.Entry), Proof: hashes(e.Proof)})
	}
	for _, e := range t.Events {
		j.Events = append(j.Events, trailEventJSON{Index: e.Index, Entry: string(e.Entry),
			Salt: base64.RawURLEncoding.EncodeToString(e.Salt[:]), Public: json.RawMessage(e.Public), Proof: hashes(e.Proof)})
	}
	for _, h := range t.Handles {
		j.Handles = append(j.Handles, trailHandleJSON{Link: h.Link, Leaf: h.Leaf, Proof: hashes(h.Proof)})
	}
	if err := checkTrailForm(t); err != nil {
		return nil, err
	}
	out, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("trail: %w: %w", crypto.ErrMalformed, err)
	}
	out = append(out, '\n')
	if len(out) > MaxTrailSize {
		return nil, fmt.Errorf("trail: %w: %d bytes, more than %d", crypto.ErrMalformed, len(out), MaxTrailSize)
	}
	return out, nil
}

// hashes returns a proof as a list that is never nil.
func hashes[P ~[]tlog.Hash](p P) []tlog.Hash {
	if p == nil {
		return []tlog.Hash{}
	}
	return []tlog.Hash(p)
}

// ParseTrail decodes a trail in its one form (docs/claims.md, "The trail
// package"), refusing anything over the limits before decoding it. Errors
// wrap crypto.ErrMalformed. It checks no signature or proof.
func ParseTrail(data []byte) (*Trail, error) {
	if len(data) > MaxTrailSize {
		return nil, fmt.Errorf("trail: %w: %d bytes, more than %d", crypto.ErrMalformed, len(data), MaxTrailSize)
	}
	prefix := `{"trail":"` + TrailHeader + `",`
	if !bytes.HasPrefix(data, []byte(prefix)) {
		return nil, fmt.Errorf("trail: %w: does not start with %s", crypto.ErrMalformed, prefix)
	}
	body, ok := bytes.CutSuffix(data, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("trail: %w: does not end in a newline", crypto.ErrMalformed)
	}
	var j trailJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("trail: %w: %w", crypto.ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trail: %w: data after the document", crypto.ErrMalformed)
	}
	t := &Trail{Claim: j.Claim, Head: []byte(j.Head), Witnessed: []byte(j.Witnessed), Consistency: j.Consistency}
	for _, e := range j.Bundles {
		t.Bundles = append(t.Bundles, TrailEntry{Index: e.Index, Entry: []byte(e.Entry), Proof: e.Proof})
	}
	for _, e := range j.Receipts {
		t.Receipts = append(t.Receipts, TrailEntry{Index: e.Index, Entry: []byte(e.Entry), Proof: e.Proof})
	}
	for _, e := range j.Events {
		salt, err := base64.RawURLEncoding.Strict().DecodeString(e.Salt)
		if err != nil || len(salt) != SaltSize {
			return nil, fmt.Errorf("trail: %w: event %d: salt is not %d bytes of unpadded base64url", crypto.ErrMalformed, e.Index, SaltSize)
		}
		t.Events = append(t.Events, TrailEvent{TrailEntry: TrailEntry{Index: e.Index, Entry: []byte(e.Entry), Proof: e.Proof},
			Salt: [SaltSize]byte(salt), Public: []byte(e.Public)})
	}
	for _, h := range j.Handles {
		t.Handles = append(t.Handles, TrailHandle{Link: h.Link, Leaf: h.Leaf, Proof: h.Proof})
	}
	if err := checkTrailForm(t); err != nil {
		return nil, err
	}
	// One encoding: encoding/json accepts whitespace, escapes, null
	// lists, keys in any case and order, and lenient base64.
	canon, err := MarshalTrail(t)
	if err != nil || !bytes.Equal(canon, data) {
		return nil, fmt.Errorf("trail: %w: not in canonical form", crypto.ErrMalformed)
	}
	return t, nil
}

// checkTrailForm checks a trail's limits and orders (docs/claims.md,
// "Limits").
func checkTrailForm(t *Trail) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("trail: %w: %s", crypto.ErrMalformed, fmt.Sprintf(format, args...))
	}
	switch {
	case len(t.Head) > MaxHeadSize:
		return bad("head checkpoint of %d bytes, more than %d", len(t.Head), MaxHeadSize)
	case len(t.Witnessed) > MaxWitnessedSize:
		return bad("witnessed checkpoint of %d bytes, more than %d", len(t.Witnessed), MaxWitnessedSize)
	case !utf8.Valid(t.Head) || !utf8.Valid(t.Witnessed):
		return bad("a checkpoint is not UTF-8")
	case len(t.Consistency) > MaxProofHashes:
		return bad("consistency proof of %d hashes, more than %d", len(t.Consistency), MaxProofHashes)
	case len(t.Bundles) > MaxTrailBundles:
		return bad("%d bundles, more than %d", len(t.Bundles), MaxTrailBundles)
	case len(t.Receipts) > MaxClaimEvents:
		return bad("%d receipts roots, more than %d", len(t.Receipts), MaxClaimEvents)
	case len(t.Events) > MaxClaimEvents:
		return bad("%d events, more than %d", len(t.Events), MaxClaimEvents)
	case len(t.Handles) > MaxClaimEvents:
		return bad("%d handles, more than %d", len(t.Handles), MaxClaimEvents)
	}
	entry := func(what string, e TrailEntry, last int64) error {
		switch {
		case e.Index <= last || e.Index >= maxTreeSize:
			return bad("%s index %d is not above %d and below 2^53", what, e.Index, last)
		case len(e.Entry) == 0 || len(e.Entry) > MaxEntrySize:
			return bad("%s %d is %d bytes, want 1 to %d", what, e.Index, len(e.Entry), MaxEntrySize)
		case !utf8.Valid(e.Entry):
			return bad("%s %d is not UTF-8", what, e.Index)
		case len(e.Proof) > MaxProofHashes:
			return bad("%s %d has a proof of %d hashes, more than %d", what, e.Index, len(e.Proof), MaxProofHashes)
		}
		return nil
	}
	last := int64(-1)
	for _, e := range t.Bundles {
		if err := entry("bundle", e, last); err != nil {
			return err
		}
		last = e.Index
	}
	last = -1
	for _, e := range t.Receipts {
		if err := entry("receipts root", e, last); err != nil {
			return err
		}
		last = e.Index
	}
	last = -1
	for _, e := range t.Events {
		if err := entry("event", e.TrailEntry, last); err != nil {
			return err
		}
		last = e.Index
		if len(e.Public) == 0 || len(e.Public) > MaxPublicPart || e.Public[0] != '{' {
			return bad("event %d: public part is not a JSON object of at most %d bytes", e.Index, MaxPublicPart)
		}
	}
	last = -1
	for _, h := range t.Handles {
		switch {
		case h.Link <= last || h.Link >= maxTreeSize:
			return bad("handle of link %d is not above %d and below 2^53", h.Link, last)
		case h.Leaf < 0 || h.Leaf >= MaxReceiptsTreeSize:
			return bad("handle of link %d: leaf index %d is not below %d", h.Link, h.Leaf, MaxReceiptsTreeSize)
		case len(h.Proof) > MaxProofHashes:
			return bad("handle of link %d has a proof of %d hashes, more than %d", h.Link, len(h.Proof), MaxProofHashes)
		}
		last = h.Link
	}
	return nil
}

// CheckTrail checks a trail document with only the newsroom's verifier
// key, which the caller pinned: no network, no decryption key
// (docs/claims.md, "Checking a trail"). It returns what the trail
// establishes, or a *TrailError naming the first rule it breaks
// (errors.Is with the ErrTrail sentinels).
func CheckTrail(data []byte, newsroom string) (*TrailReport, error) {
	t, err := ParseTrail(data)
	if err != nil {
		return nil, &TrailError{Rule: ErrTrailFormat, Index: -1, Err: err}
	}
	return checkTrail(t, newsroom)
}
