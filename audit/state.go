package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"fieldtip/crypto"
)

// State is the editorial state an editor's newsdesk rebuilds by applying
// the log's events in order (docs/audit.md, "Replay"). It lives in memory.
// Two editors who apply the same events get the same Marshal bytes.
type State struct {
	tips      map[[crypto.TipIDSize]byte]*TipState
	refused   []Refusal
	handovers []HandoverRecord
	applied   int64
	last      int64
	// claims are replayed from public parts; private holds what the
	// editors' private parts add (link tips, sign-off notes), by index.
	claims  map[ClaimID]*claimReplay
	private map[int64]*EventBody
	periods []Act
	// replies are the reply events, in log order.
	replies []ReplyRecord
	// bundles are the bundles publish events are checked against, by
	// version (AddBundle).
	bundles map[int64]*crypto.Bundle
}

// TipState is what the events say about one tip.
type TipState struct {
	// Status is the last triage's status, "" before any.
	Status Status
	// Tags are the last triage's tags, sorted.
	Tags []string
	// Assignee is the editor the last triage with an assignee assigned
	// the tip to ("" for nobody, and before any).
	Assignee string
	// Notes are the tip's notes in log order: triage notes and notes.
	Notes []Note
	// Deleted is set by a delete event; Tags and Notes are then empty.
	Deleted bool
}

// Note is one note on a tip.
type Note struct {
	// Index is the log index of the event.
	Index int64
	// Editor is the label of the author; Day the event's day.
	Editor, Day string
	Text        string
}

// Refusal is an event that could not apply, with the reason; it changed
// nothing.
type Refusal struct {
	Index  int64
	Editor string
	Reason string
}

// HandoverRecord records a handover event.
type HandoverRecord struct {
	Index       int64
	Editor, Day string
	// To is the new editor; Indexes the entries whose bodies were handed
	// over.
	To      string
	Indexes []int64
	// Tips are the tips re-encrypted to To (absent from the encoding
	// when none, as before tips were handed over).
	Tips []HandedOverTip `json:",omitempty"`
}

// Reasons of refusals, the same for every editor.
const (
	ReasonDeleted       = "the tip is deleted"
	ReasonDeletePolicy  = "only a rejected or spam tip can be deleted"
	ReasonAlreadyDelete = "the tip is already deleted"
	// ReasonBadBody: the editor holds the event's body (its ciphertext
	// hash checked) and is one of its recipients, but it does not open:
	// it does not decrypt, has not its one form, or does not match the
	// event's commitments. Only its author can have made it so.
	ReasonBadBody = "the body does not open"
)

// ErrOutOfOrder: events applied out of log order.
var ErrOutOfOrder = errors.New("event applied out of log order")

// NewState returns the state of a log without events.
func NewState() *State {
	return &State{tips: map[[crypto.TipIDSize]byte]*TipState{}, last: -1,
		claims: map[ClaimID]*claimReplay{}, private: map[int64]*EventBody{}, bundles: map[int64]*crypto.Bundle{}}
}

// AddBundle makes a bundle known to the state: a publish event is checked
// against the policy of the bundle it names (docs/claims.md, "Replay"),
// so every bundle of the log that a publish event may name must be added
// before it is applied. Adding changes nothing else.
func (s *State) AddBundle(b *crypto.Bundle) { s.bundles[b.Version] = b }

// Apply applies the event at log index index, opened with OpenEvent and
// its body with OpenEventBody (or OpenHandedOver). Events must come in
// increasing index order (ErrOutOfOrder otherwise). An event that cannot
// apply is recorded as a Refusal, not returned as an error: every editor
// must refuse the same events the same way.
func (s *State) Apply(index int64, e *Event, b *EventBody) error {
	if index <= s.last {
		return fmt.Errorf("audit: %w: index %d after %d", ErrOutOfOrder, index, s.last)
	}
	if e.Editor == "" {
		return errors.New("audit: apply: the event has no editor (not opened with OpenEvent)")
	}
	if err := b.check(); err != nil {
		return fmt.Errorf("audit: apply: %w", err)
	}
	if b.Kind == KindPublish && s.bundles[e.Bundle] == nil {
		return fmt.Errorf("audit: apply: publish event %d names bundle %d, which was not added (AddBundle)", index, e.Bundle)
	}
	s.last = index
	s.applied++
	refuse := func(reason string) error {
		s.refused = append(s.refused, Refusal{Index: index, Editor: e.Editor, Reason: reason})
		return nil
	}
	switch b.Kind {
	case KindClaim, KindLink, KindUnlink, KindSignoff, KindPublish, KindCorrect:
		if reason := s.applyClaim(index, e, b); reason != "" {
			return refuse(reason)
		}
		return nil
	case KindPeriod:
		s.periods = append(s.periods, Act{Index: index, Editor: e.Editor, Day: e.Day})
		return nil
	case KindReply:
		// A reply was sent whatever became of the tip: it is recorded
		// even on a deleted tip, for the thread of its source.
		s.replies = append(s.replies, ReplyRecord{Index: index, Editor: e.Editor, Day: e.Day, Tip: b.Tip,
			Mailbox: b.Mailbox, Reply: b.Reply, Text: b.Text})
		return nil
	}
	if b.Kind == KindHandover {
		h := HandoverRecord{Index: index, Editor: e.Editor, Day: e.Day, To: b.To}
		for _, x := range b.Bodies {
			h.Indexes = append(h.Indexes, x.Index)
		}
		h.Tips = slices.Clone(b.Tips)
		s.handovers = append(s.handovers, h)
		return nil
	}
	t := s.tips[b.Tip]
	if t == nil {
		t = &TipState{}
	}
	if t.Deleted {
		if b.Kind == KindDelete {
			return refuse(ReasonAlreadyDelete)
		}
		return refuse(ReasonDeleted)
	}
	switch b.Kind {
	case KindTriage:
		t.Status = b.Status
		t.Tags = slices.Clone(b.Tags)
		slices.Sort(t.Tags)
		if b.Assignee != nil {
			t.Assignee = *b.Assignee
		}
		if b.Text != "" {
			t.Notes = append(t.Notes, Note{Index: index, Editor: e.Editor, Day: e.Day, Text: b.Text})
		}
	case KindNote:
		t.Notes = append(t.Notes, Note{Index: index, Editor: e.Editor, Day: e.Day, Text: b.Text})
	case KindDelete:
		if t.Status != StatusRejected && t.Status != StatusSpam {
			return refuse(ReasonDeletePolicy)
		}
		t.Deleted, t.Tags, t.Notes, t.Assignee = true, nil, nil, ""
	}
	s.tips[b.Tip] = t
	return nil
}

// applyClaim applies an event on a claim from its public part, and keeps
// its private fields aside; it returns the reason it is refused, or "".
func (s *State) applyClaim(index int64, e *Event, b *EventBody) string {
	r := s.claims[b.Claim]
	if r == nil {
		if b.Kind != KindClaim {
			return ReasonUnknownClaim
		}
		r = newClaimReplay(b.Claim)
		s.claims[b.Claim] = r
	}
	if reason := r.applyWith(ClaimEvent{Index: index, Editor: e.Editor, Day: e.Day, Body: b.Public()}, s.bundles[e.Bundle], b.Mailbox); reason != "" {
		return reason
	}
	switch b.Kind {
	case KindLink:
		s.private[index] = &EventBody{Tip: b.Tip, Ciphertext: b.Ciphertext, PrivateWhy: b.PrivateWhy, Mailbox: b.Mailbox}
	case KindSignoff:
		if b.Note != "" {
			s.private[index] = &EventBody{Note: b.Note}
		}
	}
	return ""
}

// Claims returns the ids of the claims, sorted.
func (s *State) Claims() []ClaimID {
	ids := make([]ClaimID, 0, len(s.claims))
	for id := range s.claims {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b ClaimID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// Claim returns a copy of a claim as the events made it, with the private
// fields the editor's bodies hold (link tips and private whys, sign-off
// notes), or nil.
func (s *State) Claim(id ClaimID) *ClaimState {
	r := s.claims[id]
	if r == nil {
		return nil
	}
	c := *r.c
	c.Versions = slices.Clone(c.Versions)
	c.Links = slices.Clone(c.Links)
	c.Signoffs = slices.Clone(c.Signoffs)
	c.Corrections = slices.Clone(c.Corrections)
	if c.Published != nil {
		p := *c.Published
		c.Published = &p
	}
	for i := range c.Links {
		if p := s.private[c.Links[i].Index]; p != nil {
			c.Links[i].Tip, c.Links[i].Ciphertext, c.Links[i].PrivateWhy, c.Links[i].Mailbox = p.Tip, p.Ciphertext, p.PrivateWhy, p.Mailbox
		}
	}
	for i := range c.Signoffs {
		if p := s.private[c.Signoffs[i].Index]; p != nil {
			c.Signoffs[i].Note = p.Note
		}
	}
	return &c
}

// ClaimEvents returns the events of a claim, applied or refused, from the
// claim event that created it, in log order, with public fields only: the
// input of EvaluatePolicy and what a trail reveals. The bodies are the
// state's: the caller must not modify them.
func (s *State) ClaimEvents(id ClaimID) []ClaimEvent {
	r := s.claims[id]
	if r == nil {
		return nil
	}
	return slices.Clone(r.events)
}

// Periods returns the period events (early closes of a receipts period),
// in log order.
func (s *State) Periods() []Act { return slices.Clone(s.periods) }

// Refuse records the event at index, whose body does not open (it is
// bad, not merely sealed before the editor was added), as refused for
// reason, applying nothing. Like Apply, it takes events in increasing
// index order. Editors who open the body and editors who cannot then
// have different digests, which is how they find out.
func (s *State) Refuse(index int64, e *Event, reason string) error {
	if index <= s.last {
		return fmt.Errorf("audit: %w: index %d after %d", ErrOutOfOrder, index, s.last)
	}
	if e.Editor == "" {
		return errors.New("audit: refuse: the event has no editor (not opened with OpenEvent)")
	}
	if reason == "" {
		return errors.New("audit: refuse: no reason")
	}
	s.last = index
	s.applied++
	s.refused = append(s.refused, Refusal{Index: index, Editor: e.Editor, Reason: reason})
	return nil
}

// Tips returns the ids of the tips events name, sorted.
func (s *State) Tips() [][crypto.TipIDSize]byte {
	ids := make([][crypto.TipIDSize]byte, 0, len(s.tips))
	for id := range s.tips {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b [crypto.TipIDSize]byte) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// Tip returns a copy of what the events say about a tip, or nil.
func (s *State) Tip(id [crypto.TipIDSize]byte) *TipState {
	t := s.tips[id]
	if t == nil {
		return nil
	}
	return &TipState{Status: t.Status, Tags: slices.Clone(t.Tags), Assignee: t.Assignee, Notes: slices.Clone(t.Notes), Deleted: t.Deleted}
}

// Refused returns the events that could not apply, in log order.
func (s *State) Refused() []Refusal { return slices.Clone(s.refused) }

// Handovers returns the handover events, in log order.
func (s *State) Handovers() []HandoverRecord { return slices.Clone(s.handovers) }

// Marshal returns the canonical encoding of the state: the line
// "fieldtip/state/v1", then one line of JSON as encoding/json writes it,
// with tips sorted by id. It is for comparing states, never parsed.
func (s *State) Marshal() []byte {
	type tipJSON struct {
		Tip    string   `json:"tip"`
		Status Status   `json:"status"`
		Tags   []string `json:"tags"`
		// Assignee is left out when empty, so that a state without
		// assignments encodes as before they existed.
		Assignee string `json:"assignee,omitempty"`
		Notes    []Note `json:"notes"`
		Deleted  bool   `json:"deleted"`
	}
	type stateJSON struct {
		Applied   int64            `json:"applied"`
		Last      int64            `json:"last"`
		Tips      []tipJSON        `json:"tips"`
		Refused   []Refusal        `json:"refused"`
		Handovers []HandoverRecord `json:"handovers"`
		Claims    []*ClaimState    `json:"claims"`
		Periods   []Act            `json:"periods"`
		// Replies are omitted when there are none: the encoding of a log
		// without replies is what it was before replies existed.
		Replies []ReplyRecord `json:"replies,omitempty"`
	}
	out := stateJSON{Applied: s.applied, Last: s.last, Tips: []tipJSON{},
		Refused: append([]Refusal{}, s.refused...), Handovers: append([]HandoverRecord{}, s.handovers...),
		Claims: []*ClaimState{}, Periods: append([]Act{}, s.periods...)}
	for _, id := range s.Claims() {
		out.Claims = append(out.Claims, s.Claim(id))
	}
	for _, r := range s.replies {
		r.TipID, r.MailboxID, r.ReplyID = crypto.FormatTipID(r.Tip), r.Mailbox.String(), crypto.FormatTipID(r.Reply)
		out.Replies = append(out.Replies, r)
	}
	for _, id := range s.Tips() {
		t := s.tips[id]
		out.Tips = append(out.Tips, tipJSON{Tip: crypto.FormatTipID(id), Status: t.Status,
			Tags: append([]string{}, t.Tags...), Assignee: t.Assignee, Notes: append([]Note{}, t.Notes...), Deleted: t.Deleted})
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(err) // only strings, integers and slices
	}
	return append(append([]byte(stateHeader+"\n"), b...), '\n')
}

// ReplyRecord is a reply event: an editor answered a tip's source.
type ReplyRecord struct {
	Index       int64
	Editor, Day string
	Tip         [crypto.TipIDSize]byte   `json:"-"`
	Mailbox     crypto.MailboxID         `json:"-"`
	Reply       [crypto.ReplyIDSize]byte `json:"-"`
	Text        string
	// TipID, MailboxID and ReplyID are the ids' encodings, for the
	// state's JSON.
	TipID     string `json:"Tip"`
	MailboxID string `json:"Mailbox"`
	ReplyID   string `json:"Reply"`
}

// Replies returns the reply events, in log order.
func (s *State) Replies() []ReplyRecord { return slices.Clone(s.replies) }

// Digest returns SHA-256 of Marshal: two editors compare it to check they
// replayed the same log to the same state.
func (s *State) Digest() [32]byte { return sha256.Sum256(s.Marshal()) }
