package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"fieldtip/crypto"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/tlog"
)

// SaltSize is the size of a commitment salt.
const SaltSize = 32

// bodyFrame is the padding step of a body's plaintext (docs/audit.md).
const bodyFrame = 1024

// Kind is what an editorial event does. It is in the body's public part.
type Kind string

// The kinds of events defined so far (docs/audit.md).
const (
	KindTriage   Kind = "triage"
	KindNote     Kind = "note"
	KindDelete   Kind = "delete"
	KindHandover Kind = "handover"
	// KindReply: an editor answered a tip's source (docs/replies.md).
	KindReply Kind = "reply"
)

// Status is a tip's triage status.
type Status string

// The triage statuses.
const (
	StatusNew       Status = "new"
	StatusReviewing Status = "reviewing"
	StatusUseful    Status = "useful"
	StatusSpam      Status = "spam"
	StatusRejected  Status = "rejected"
)

// ValidStatus reports whether s is one of the triage statuses.
func ValidStatus(s Status) bool {
	switch s {
	case StatusNew, StatusReviewing, StatusUseful, StatusSpam, StatusRejected:
		return true
	}
	return false
}

// EventBody is what an editorial event says, in the clear. Which fields an
// event uses depends on its kind; the others must be zero.
type EventBody struct {
	Kind Kind
	// Tip is the tip a triage, note or delete is about.
	Tip [crypto.TipIDSize]byte
	// Status is a triage's new status.
	Status Status
	// Tags is a triage's new tag set: at most MaxTags, each 1 to
	// MaxTagSize bytes without spaces or control characters, sorted and
	// distinct (SealEventBody sorts them). Nil and empty are the same.
	Tags []string
	// Assignee, in a triage, is the editor the tip is assigned to from
	// now on: a label, or "" for nobody. Nil leaves the assignment as it
	// was (every triage before assignments existed, docs/audit.md,
	// "Parts": the triage's assignee).
	Assignee *string
	// Text is a triage's note (may be empty) or a note's text (may not): at
	// most MaxTextSize bytes of UTF-8, no control characters but newline
	// and tab.
	Text string
	// Ciphertext is, in a delete, SHA-256 of the deleted tip's
	// ciphertext: editors who never pulled the tip can still account for
	// its receipts leaf (docs/audit.md, "Receipts tree").
	Ciphertext [32]byte
	// To is the label of the editor a handover is for.
	To string
	// Bodies are a handover's re-encrypted bodies, by strictly increasing
	// index (HandOver makes them).
	Bodies []HandedOver
	// Tips are the tips a handover re-encrypted to To, by strictly
	// increasing tip id; the server keeps each re-encryption beside the
	// tip (docs/audit.md, "Parts": the handover's tips). A handover has
	// bodies, tips or both.
	Tips []HandedOverTip

	// The fields of the events on claims (docs/claims.md, "Event kinds").
	// Text is also a claim's text and a correction's text (1 to
	// MaxClaimText bytes); Tip and Ciphertext are also a link's tip and
	// its ciphertext hash (private), Tip an unlink's (private).

	// Claim is the claim a claim, link, unlink, signoff, publish or
	// correct event is about.
	Claim ClaimID
	// Scope is a claim's scope: 0 to MaxScope bytes.
	Scope string
	// Stance, Cluster (1 to MaxClusterName bytes), Reliability ("A" to
	// "F"), Credibility (1 to 6), Access, Why (public), Handle and
	// Receipts are a link's public fields; PrivateWhy its private why.
	// Exactly one of Why and PrivateWhy is set, each at most MaxWhy bytes.
	Stance      Stance
	Cluster     string
	Reliability string
	Credibility int
	Access      Access
	Why         string
	PrivateWhy  string
	// Handle is the linked tip's receipts-tree leaf; Receipts the log
	// index of its period's receipts root.
	Handle   Leaf
	Receipts int64
	// Link is the log index of the link event an unlink withdraws.
	Link int64
	// Version (the log index of a claim event), Evidence (an evidence
	// hash) and Changes (a count of change events, 1 to MaxClaimEvents)
	// name the state of the claim a signoff or publish is over.
	Version  int64
	Evidence [32]byte
	Changes  int64
	// Events is, in a publish, the number of events of the claim before
	// it (1 to MaxClaimEvents).
	Events int64
	// Decision is a signoff's; Note its private note (0 to MaxWhy bytes).
	Decision Decision
	Note     string
	// Correction is a correct event's type.
	Correction CorrectionType

	// Mailbox is, in a reply, the mailbox id it was stored under and, in
	// a link (optional), the linked tip's source mailbox: private both.
	// Reply is a reply's id; Text its text (crypto.CheckReplyText).
	Mailbox crypto.MailboxID
	Reply   [crypto.ReplyIDSize]byte
}

// Public returns a copy of b with only the fields of its public part: what
// a revealed public part says (ParsePublicPart). The policy and claim
// replay decide from these alone.
func (b *EventBody) Public() *EventBody {
	p := &EventBody{Kind: b.Kind, Claim: b.Claim}
	switch b.Kind {
	case KindClaim:
		p.Text, p.Scope = b.Text, b.Scope
	case KindLink:
		p.Stance, p.Cluster, p.Reliability, p.Credibility, p.Access = b.Stance, b.Cluster, b.Reliability, b.Credibility, b.Access
		p.Why, p.Handle, p.Receipts = b.Why, b.Handle, b.Receipts
	case KindUnlink:
		p.Link = b.Link
	case KindSignoff:
		p.Version, p.Evidence, p.Changes, p.Decision = b.Version, b.Evidence, b.Changes, b.Decision
	case KindPublish:
		p.Version, p.Evidence, p.Changes, p.Events = b.Version, b.Evidence, b.Changes, b.Events
	case KindCorrect:
		p.Correction, p.Text = b.Correction, b.Text
	default:
		p.Claim = ClaimID{}
	}
	return p
}

// HandedOver is an earlier event's body plaintext re-encrypted to a new
// editor.
type HandedOver struct {
	// Index is the log index of the event whose body this is.
	Index int64
	// Ciphertext is the body plaintext, encrypted with age to the new
	// editor alone.
	Ciphertext []byte
}

// HandedOverTip names a tip re-encrypted to a new editor by a handover:
// the server stores the re-encryption beside the tip and serves it to that
// editor only, who checks it against Sealed before opening it.
type HandedOverTip struct {
	// Tip is the tip's id.
	Tip [crypto.TipIDSize]byte
	// Ciphertext is SHA-256 of the tip's ciphertext (as its receipt
	// says); Sealed is SHA-256 of the re-encryption, Length its length
	// (1 to crypto.MaxTipSize).
	Ciphertext, Sealed [32]byte
	Length             int64
}

// Parts is an event body as committed: the exact bytes of its two parts
// and their salts. A publication trail reveals Public and PublicSalt;
// Private and PrivateSalt are never revealed.
type Parts struct {
	Public, Private         []byte
	PublicSalt, PrivateSalt [SaltSize]byte
}

// PublicCommitment returns SHA-256(PublicDomain ‖ salt ‖ public part).
func (p *Parts) PublicCommitment() [32]byte { return commit(PublicDomain, p.PublicSalt, p.Public) }

// PrivateCommitment returns SHA-256(PrivateDomain ‖ salt ‖ private part).
func (p *Parts) PrivateCommitment() [32]byte { return commit(PrivateDomain, p.PrivateSalt, p.Private) }

func commit(domain string, salt [SaltSize]byte, part []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(salt[:])
	h.Write(part)
	return [32]byte(h.Sum(nil))
}

// CheckPublic reports whether a revealed public part and salt open the
// public commitment of e.
func CheckPublic(e *Event, public []byte, salt [SaltSize]byte) bool {
	return commit(PublicDomain, salt, public) == e.Public
}

// CommitmentError is a body that does not match its event: Part is
// "ciphertext" (the age file's hash), "public" or "private".
type CommitmentError struct {
	Part string
}

func (e *CommitmentError) Error() string {
	if e.Part == "ciphertext" {
		return "the body's ciphertext does not match the event's hash"
	}
	return fmt.Sprintf("the body's %s part does not match the event's commitment", e.Part)
}

// SealedBody is an event body encrypted to the editors of a bundle, with
// what the event commits to.
type SealedBody struct {
	// Ciphertext is the age file the server stores by the event's index.
	Ciphertext []byte
	// Parts are the committed parts and their salts.
	Parts Parts
	// Bundle is the version of the bundle it was sealed to.
	Bundle int64
}

// Hash returns SHA-256 of the ciphertext.
func (s *SealedBody) Hash() [32]byte { return sha256.Sum256(s.Ciphertext) }

// Event returns the event that commits to s, with a fresh random id, for
// an editor to sign (SignEvent). day is today in UTC; base is the
// checkpoint the editor last verified.
func (s *SealedBody) Event(day string, base tlog.Tree) (*Event, error) {
	id, err := newEventID()
	if err != nil {
		return nil, err
	}
	e := &Event{ID: id, Bundle: s.Bundle, Day: day, Base: base, Ciphertext: s.Hash(),
		Public: s.Parts.PublicCommitment(), Private: s.Parts.PrivateCommitment()}
	if _, err := e.text(); err != nil {
		return nil, err
	}
	return e, nil
}

// SealEventBody encodes a body with fresh random salts, pads it and
// encrypts it with age to every editor of b (docs/audit.md, "Event body").
func SealEventBody(body *EventBody, b *crypto.Bundle) (*SealedBody, error) {
	var parts Parts
	if _, err := rand.Read(parts.PublicSalt[:]); err != nil {
		return nil, fmt.Errorf("event body: %w", err)
	}
	if _, err := rand.Read(parts.PrivateSalt[:]); err != nil {
		return nil, fmt.Errorf("event body: %w", err)
	}
	plain, err := marshalEventBody(body, &parts)
	if err != nil {
		return nil, err
	}
	rs, err := b.Recipients()
	if err != nil {
		return nil, fmt.Errorf("event body: %w", err)
	}
	ct, err := encrypt(plain, rs)
	if err != nil {
		return nil, err
	}
	return &SealedBody{Ciphertext: ct, Parts: parts, Bundle: b.Version}, nil
}

// OpenEventBody decrypts an event's body with an editor's identity and
// returns it only after checking, in order, that its SHA-256 is the
// event's ciphertext hash, that the plaintext has its one form, and that
// both parts open the event's commitments (*CommitmentError otherwise).
func OpenEventBody(ciphertext []byte, e *Event, id age.Identity) (*EventBody, *Parts, error) {
	if len(ciphertext) > MaxSealedBodySize {
		return nil, nil, fmt.Errorf("event body: %w: %d bytes, more than %d", crypto.ErrMalformed, len(ciphertext), MaxSealedBodySize)
	}
	if sha256.Sum256(ciphertext) != e.Ciphertext {
		return nil, nil, fmt.Errorf("event body: %w", &CommitmentError{Part: "ciphertext"})
	}
	return openBody(ciphertext, e, id)
}

// OpenHandedOver decrypts a body handed over to this editor (a
// HandedOver of a handover event) and checks it against e, the event at
// h.Index, as OpenEventBody does, except for the ciphertext hash: the
// re-encrypted file differs, the plaintext and so the commitments do not.
func OpenHandedOver(h HandedOver, e *Event, id age.Identity) (*EventBody, *Parts, error) {
	if len(h.Ciphertext) > MaxSealedBodySize {
		return nil, nil, fmt.Errorf("event body: %w: %d bytes, more than %d", crypto.ErrMalformed, len(h.Ciphertext), MaxSealedBodySize)
	}
	return openBody(h.Ciphertext, e, id)
}

// HandOver opens the body of e, at log index index, with an existing
// editor's identity and re-encrypts the same plaintext to the new editor's
// recipient, for a handover event.
func HandOver(ciphertext []byte, e *Event, index int64, id age.Identity, to age.Recipient) (HandedOver, error) {
	if len(ciphertext) > MaxSealedBodySize {
		return HandedOver{}, fmt.Errorf("event body: %w: %d bytes, more than %d", crypto.ErrMalformed, len(ciphertext), MaxSealedBodySize)
	}
	if sha256.Sum256(ciphertext) != e.Ciphertext {
		return HandedOver{}, fmt.Errorf("event body: %w", &CommitmentError{Part: "ciphertext"})
	}
	plain, err := decrypt(ciphertext, id)
	if err != nil {
		return HandedOver{}, err
	}
	if _, _, err := checkBody(plain, e); err != nil {
		return HandedOver{}, err
	}
	ct, err := encrypt(plain, []age.Recipient{to})
	if err != nil {
		return HandedOver{}, err
	}
	return HandedOver{Index: index, Ciphertext: ct}, nil
}

// HandOverAgain re-encrypts a body handed over to this editor (h, of the
// event e at h.Index) to another editor's recipient: an editor added
// later can pass on what was handed over to them. It checks the
// plaintext against e as OpenHandedOver does.
func HandOverAgain(h HandedOver, e *Event, id age.Identity, to age.Recipient) (HandedOver, error) {
	if len(h.Ciphertext) > MaxSealedBodySize {
		return HandedOver{}, fmt.Errorf("event body: %w: %d bytes, more than %d", crypto.ErrMalformed, len(h.Ciphertext), MaxSealedBodySize)
	}
	plain, err := decrypt(h.Ciphertext, id)
	if err != nil {
		return HandedOver{}, err
	}
	if _, _, err := checkBody(plain, e); err != nil {
		return HandedOver{}, err
	}
	ct, err := encrypt(plain, []age.Recipient{to})
	if err != nil {
		return HandedOver{}, err
	}
	return HandedOver{Index: h.Index, Ciphertext: ct}, nil
}

func openBody(ciphertext []byte, e *Event, id age.Identity) (*EventBody, *Parts, error) {
	plain, err := decrypt(ciphertext, id)
	if err != nil {
		return nil, nil, err
	}
	return checkBody(plain, e)
}

// checkBody splits a plaintext, checks the commitments, then parses the
// parts.
func checkBody(plain []byte, e *Event) (*EventBody, *Parts, error) {
	parts, err := splitEventBody(plain)
	if err != nil {
		return nil, nil, err
	}
	if parts.PublicCommitment() != e.Public {
		return nil, nil, fmt.Errorf("event body: %w", &CommitmentError{Part: "public"})
	}
	if parts.PrivateCommitment() != e.Private {
		return nil, nil, fmt.Errorf("event body: %w", &CommitmentError{Part: "private"})
	}
	body, err := parseParts(parts)
	if err != nil {
		return nil, nil, err
	}
	return body, parts, nil
}

func encrypt(plain []byte, rs []age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		return nil, fmt.Errorf("event body: encrypt: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("event body: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("event body: encrypt: %w", err)
	}
	return buf.Bytes(), nil
}

// decrypt reads the whole age file before returning: age authenticates
// every chunk and the end, so a truncated file is an error, never part of
// a body.
func decrypt(ciphertext []byte, id age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ciphertext), id)
	if err != nil {
		return nil, fmt.Errorf("event body: decrypt: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("event body: decrypt: %w", err)
	}
	if len(plain) > MaxBodySize {
		return nil, fmt.Errorf("event body: %w: plaintext over %d bytes", crypto.ErrMalformed, MaxBodySize)
	}
	return plain, nil
}

// The JSON forms of the parts (docs/audit.md, "Parts"). Field order is
// the encoding's order.
type publicPart struct {
	Kind Kind `json:"kind"`
}

type triagePart struct {
	Tip    string   `json:"tip"`
	Status Status   `json:"status"`
	Tags   []string `json:"tags"`
	// Assignee is absent when the triage leaves the assignment as it
	// was: a triage without it has the form of every triage before
	// assignments existed, and means what it meant.
	Assignee *string `json:"assignee,omitempty"`
	Note     string  `json:"note"`
}

type notePart struct {
	Tip  string `json:"tip"`
	Text string `json:"text"`
}

type deletePart struct {
	Tip        string `json:"tip"`
	Ciphertext string `json:"ciphertext"`
}

type handoverPart struct {
	To     string         `json:"to"`
	Bodies []handoverBody `json:"bodies"`
	// Tips is absent when the handover re-encrypted no tip (every
	// handover before tips were handed over).
	Tips []handoverTip `json:"tips,omitempty"`
}

type handoverBody struct {
	Index      int64  `json:"index"`
	Ciphertext []byte `json:"ciphertext"`
}

type handoverTip struct {
	Tip        string `json:"tip"`
	Ciphertext string `json:"ciphertext"`
	Sealed     string `json:"sealed"`
	Length     int64  `json:"length"`
}

// The public and private parts of the events on claims (docs/claims.md,
// "Event kinds").
type claimPublic struct {
	Kind  Kind   `json:"kind"`
	Claim string `json:"claim"`
	Text  string `json:"text"`
	Scope string `json:"scope"`
}

type linkPublic struct {
	Kind        Kind   `json:"kind"`
	Claim       string `json:"claim"`
	Stance      Stance `json:"stance"`
	Cluster     string `json:"cluster"`
	Reliability string `json:"reliability"`
	Credibility int    `json:"credibility"`
	Access      Access `json:"access"`
	Why         string `json:"why"`
	Handle      string `json:"handle"`
	Receipts    int64  `json:"receipts"`
}

type linkPrivate struct {
	Tip        string `json:"tip"`
	Ciphertext string `json:"ciphertext"`
	Why        string `json:"why"`
}

// linkPrivateMailbox is a link's private part when the tip carries its
// source's reply address (docs/claims.md, "Event kinds").
type linkPrivateMailbox struct {
	Tip        string `json:"tip"`
	Ciphertext string `json:"ciphertext"`
	Why        string `json:"why"`
	Mailbox    string `json:"mailbox"`
}

type replyPrivate struct {
	Tip     string `json:"tip"`
	Mailbox string `json:"mailbox"`
	Reply   string `json:"reply"`
	Text    string `json:"text"`
}

type unlinkPublic struct {
	Kind  Kind   `json:"kind"`
	Claim string `json:"claim"`
	Link  int64  `json:"link"`
}

type tipPrivate struct {
	Tip string `json:"tip"`
}

type signoffPublic struct {
	Kind     Kind     `json:"kind"`
	Claim    string   `json:"claim"`
	Version  int64    `json:"version"`
	Evidence string   `json:"evidence"`
	Changes  int64    `json:"changes"`
	Decision Decision `json:"decision"`
}

type signoffPrivate struct {
	Note string `json:"note"`
}

type publishPublic struct {
	Kind     Kind   `json:"kind"`
	Claim    string `json:"claim"`
	Version  int64  `json:"version"`
	Evidence string `json:"evidence"`
	Changes  int64  `json:"changes"`
	Events   int64  `json:"events"`
}

type correctPublic struct {
	Kind  Kind           `json:"kind"`
	Claim string         `json:"claim"`
	Type  CorrectionType `json:"type"`
	Text  string         `json:"text"`
}

// emptyPart is the private part of the kinds that keep nothing private.
type emptyPart struct{}

// kindFields are the fields of EventBody each kind uses; every other
// field must be zero. publicFields are those of its public part.
var (
	kindFields = map[Kind][]string{
		KindTriage:   {"Tip", "Status", "Tags", "Assignee", "Text"},
		KindNote:     {"Tip", "Text"},
		KindDelete:   {"Tip", "Ciphertext"},
		KindHandover: {"To", "Bodies", "Tips"},
		KindClaim:    {"Claim", "Text", "Scope"},
		KindLink: {"Claim", "Stance", "Cluster", "Reliability", "Credibility", "Access", "Why", "Handle", "Receipts",
			"Tip", "Ciphertext", "PrivateWhy", "Mailbox"},
		KindUnlink:  {"Claim", "Link", "Tip"},
		KindSignoff: {"Claim", "Version", "Evidence", "Changes", "Decision", "Note"},
		KindPublish: {"Claim", "Version", "Evidence", "Changes", "Events"},
		KindCorrect: {"Claim", "Correction", "Text"},
		KindPeriod:  {},
		KindReply:   {"Tip", "Mailbox", "Reply", "Text"},
	}
	publicFields = map[Kind][]string{
		KindClaim:   {"Claim", "Text", "Scope"},
		KindLink:    {"Claim", "Stance", "Cluster", "Reliability", "Credibility", "Access", "Why", "Handle", "Receipts"},
		KindUnlink:  {"Claim", "Link"},
		KindSignoff: {"Claim", "Version", "Evidence", "Changes", "Decision"},
		KindPublish: {"Claim", "Version", "Evidence", "Changes", "Events"},
		KindCorrect: {"Claim", "Correction", "Text"},
	}
)

const kindList = "triage, note, delete, handover, claim, link, unlink, signoff, publish, correct, period, reply"

// setFields returns the names of the fields of b, besides Kind, that are
// not zero.
func (b *EventBody) setFields() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"Tip", b.Tip != [crypto.TipIDSize]byte{}},
		{"Status", b.Status != ""},
		{"Tags", len(b.Tags) > 0},
		{"Assignee", b.Assignee != nil},
		{"Text", b.Text != ""},
		{"Ciphertext", b.Ciphertext != [32]byte{}},
		{"To", b.To != ""},
		{"Bodies", len(b.Bodies) > 0},
		{"Tips", len(b.Tips) > 0},
		{"Claim", b.Claim != ClaimID{}},
		{"Scope", b.Scope != ""},
		{"Stance", b.Stance != ""},
		{"Cluster", b.Cluster != ""},
		{"Reliability", b.Reliability != ""},
		{"Credibility", b.Credibility != 0},
		{"Access", b.Access != ""},
		{"Why", b.Why != ""},
		{"PrivateWhy", b.PrivateWhy != ""},
		{"Handle", b.Handle != Leaf{}},
		{"Receipts", b.Receipts != 0},
		{"Link", b.Link != 0},
		{"Version", b.Version != 0},
		{"Evidence", b.Evidence != [32]byte{}},
		{"Changes", b.Changes != 0},
		{"Events", b.Events != 0},
		{"Decision", b.Decision != ""},
		{"Note", b.Note != ""},
		{"Correction", b.Correction != ""},
		{"Mailbox", b.Mailbox != crypto.MailboxID{}},
		{"Reply", b.Reply != [crypto.ReplyIDSize]byte{}},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// check checks a body's fields for its kind.
func (b *EventBody) check() error { return b.checkFields(false) }

// checkFields checks a body's fields for its kind; with publicOnly, a
// body of public fields only (ParsePublicPart), whose private fields
// are unknown and must be zero.
func (b *EventBody) checkFields(publicOnly bool) error {
	used, ok := kindFields[b.Kind]
	if !ok {
		return fmt.Errorf("event body: %w: kind %q is not one of %s", crypto.ErrMalformed, clip(string(b.Kind)), kindList)
	}
	if publicOnly {
		used = publicFields[b.Kind]
	}
	for _, f := range b.setFields() {
		if !slices.Contains(used, f) {
			return fmt.Errorf("event body: %w: a %s has a %s field", crypto.ErrMalformed, b.Kind, f)
		}
	}
	switch b.Kind {
	case KindTriage:
		if !ValidStatus(b.Status) {
			return fmt.Errorf("event body: %w: status %q is not one of new, reviewing, useful, spam, rejected", crypto.ErrMalformed, clip(string(b.Status)))
		}
		if err := checkTags(b.Tags); err != nil {
			return err
		}
		if b.Assignee != nil && *b.Assignee != "" && !crypto.ValidLabel(*b.Assignee) {
			return fmt.Errorf("event body: %w: triage assignee %q, not an editor label", crypto.ErrMalformed, clip(*b.Assignee))
		}
		return checkText(b.Text, true)
	case KindNote:
		return checkText(b.Text, false)
	case KindReply:
		if b.Mailbox == (crypto.MailboxID{}) || b.Reply == [crypto.ReplyIDSize]byte{} {
			return fmt.Errorf("event body: %w: a reply without its mailbox or reply id", crypto.ErrMalformed)
		}
		if err := crypto.CheckReplyText(b.Text); err != nil {
			return fmt.Errorf("event body: %w", err)
		}
	case KindDelete:
		if b.Ciphertext == [32]byte{} {
			return fmt.Errorf("event body: %w: a delete without the tip's ciphertext hash", crypto.ErrMalformed)
		}
	case KindHandover:
		if !crypto.ValidLabel(b.To) {
			return fmt.Errorf("event body: %w: handover to %q, not an editor label", crypto.ErrMalformed, clip(b.To))
		}
		if len(b.Bodies) == 0 && len(b.Tips) == 0 {
			return fmt.Errorf("event body: %w: a handover without bodies or tips", crypto.ErrMalformed)
		}
		for i, h := range b.Tips {
			if i > 0 && bytes.Compare(h.Tip[:], b.Tips[i-1].Tip[:]) <= 0 {
				return fmt.Errorf("event body: %w: handover tip %s out of order or twice", crypto.ErrMalformed, crypto.FormatTipID(h.Tip))
			}
			if h.Length < 1 || h.Length > crypto.MaxTipSize {
				return fmt.Errorf("event body: %w: handover of tip %s is %d bytes, not 1 to %d", crypto.ErrMalformed, crypto.FormatTipID(h.Tip), h.Length, crypto.MaxTipSize)
			}
		}
		for i, h := range b.Bodies {
			if h.Index < 0 || i > 0 && h.Index <= b.Bodies[i-1].Index {
				return fmt.Errorf("event body: %w: handover index %d is negative or out of order", crypto.ErrMalformed, h.Index)
			}
			if len(h.Ciphertext) == 0 || len(h.Ciphertext) > MaxSealedBodySize {
				return fmt.Errorf("event body: %w: handover of index %d has %d bytes of ciphertext", crypto.ErrMalformed, h.Index, len(h.Ciphertext))
			}
		}
	case KindClaim:
		if err := checkClaimText("claim text", b.Text, 1, MaxClaimText, true); err != nil {
			return err
		}
		return checkClaimText("scope", b.Scope, 0, MaxScope, true)
	case KindLink:
		return b.checkLink(publicOnly)
	case KindUnlink:
		return checkIndex("link", b.Link)
	case KindSignoff, KindPublish:
		if err := checkIndex("version", b.Version); err != nil {
			return err
		}
		if b.Evidence == [32]byte{} {
			return fmt.Errorf("event body: %w: a %s without an evidence hash", crypto.ErrMalformed, b.Kind)
		}
		if b.Changes < 1 || b.Changes > MaxClaimEvents {
			return fmt.Errorf("event body: %w: changes %d is not 1 to %d", crypto.ErrMalformed, b.Changes, MaxClaimEvents)
		}
		if b.Kind == KindPublish {
			if b.Events < 1 || b.Events > MaxClaimEvents {
				return fmt.Errorf("event body: %w: events %d is not 1 to %d", crypto.ErrMalformed, b.Events, MaxClaimEvents)
			}
			return nil
		}
		switch b.Decision {
		case DecisionApprove, DecisionReject, DecisionNeedsWork:
		default:
			return fmt.Errorf("event body: %w: decision %q is not one of approve, reject, needs-work", crypto.ErrMalformed, clip(string(b.Decision)))
		}
		return checkClaimText("note", b.Note, 0, MaxWhy, true)
	case KindCorrect:
		switch b.Correction {
		case CorrectionCorrection, CorrectionClarification, CorrectionRetraction:
		default:
			return fmt.Errorf("event body: %w: correction type %q is not one of correction, clarification, retraction", crypto.ErrMalformed, clip(string(b.Correction)))
		}
		return checkClaimText("correction text", b.Text, 1, MaxClaimText, true)
	}
	return nil
}

func (b *EventBody) checkLink(publicOnly bool) error {
	switch b.Stance {
	case StanceSupports, StanceContradicts, StanceContext:
	default:
		return fmt.Errorf("event body: %w: stance %q is not one of supports, contradicts, context", crypto.ErrMalformed, clip(string(b.Stance)))
	}
	if err := checkClaimText("cluster name", b.Cluster, 1, MaxClusterName, false); err != nil {
		return err
	}
	if len(b.Reliability) != 1 || b.Reliability[0] < 'A' || b.Reliability[0] > 'F' {
		return fmt.Errorf("event body: %w: reliability %q is not one of A to F", crypto.ErrMalformed, clip(b.Reliability))
	}
	if b.Credibility < 1 || b.Credibility > 6 {
		return fmt.Errorf("event body: %w: credibility %d is not 1 to 6", crypto.ErrMalformed, b.Credibility)
	}
	switch b.Access {
	case AccessFirstHand, AccessSecondHand, AccessHearsay, AccessDocument:
	default:
		return fmt.Errorf("event body: %w: access %q is not one of first-hand, second-hand, hearsay, document", crypto.ErrMalformed, clip(string(b.Access)))
	}
	if err := checkClaimText("why", b.Why, 0, MaxWhy, true); err != nil {
		return err
	}
	if err := checkClaimText("private why", b.PrivateWhy, 0, MaxWhy, true); err != nil {
		return err
	}
	if !publicOnly && (b.Why == "") == (b.PrivateWhy == "") {
		return fmt.Errorf("event body: %w: a link needs exactly one why, public or private", crypto.ErrMalformed)
	}
	if b.Handle == (Leaf{}) {
		return fmt.Errorf("event body: %w: a link without the tip's handle", crypto.ErrMalformed)
	}
	if err := checkIndex("receipts", b.Receipts); err != nil {
		return err
	}
	if !publicOnly && b.Ciphertext == [32]byte{} {
		return fmt.Errorf("event body: %w: a link without the tip's ciphertext hash", crypto.ErrMalformed)
	}
	return nil
}

// checkIndex checks a log index an event names: 1 to 2^53 − 1 (entry 0 is
// always a bundle).
func checkIndex(what string, i int64) error {
	if i < 1 || i >= maxTreeSize {
		return fmt.Errorf("event body: %w: %s index %d is not 1 to 2^53 − 1", crypto.ErrMalformed, what, i)
	}
	return nil
}

// checkClaimText checks a string of a claim event (docs/claims.md, "Event
// kinds"): min to max bytes of valid UTF-8 without control characters
// (but newline where lines is set), Unicode format characters (Cf, which
// includes bidirectional overrides) or the line and paragraph
// separators; a name (lines unset) neither starts nor ends with white
// space.
func checkClaimText(what, s string, min, max int, lines bool) error {
	if len(s) < min || len(s) > max {
		return fmt.Errorf("event body: %w: %s of %d bytes, want %d to %d", crypto.ErrMalformed, what, len(s), min, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("event body: %w: %s is not valid UTF-8", crypto.ErrMalformed, what)
	}
	for _, r := range s {
		if r == '\n' && lines {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("event body: %w: %s holds the character %U", crypto.ErrMalformed, what, r)
		}
	}
	if !lines && s != "" {
		first, _ := utf8.DecodeRuneInString(s)
		last, _ := utf8.DecodeLastRuneInString(s)
		if unicode.IsSpace(first) || unicode.IsSpace(last) {
			return fmt.Errorf("event body: %w: %s %q starts or ends with white space", crypto.ErrMalformed, what, clip(s))
		}
	}
	return nil
}

func checkTags(tags []string) error {
	if len(tags) > MaxTags {
		return fmt.Errorf("event body: %w: %d tags, at most %d", crypto.ErrMalformed, len(tags), MaxTags)
	}
	for i, t := range tags {
		if t == "" || len(t) > MaxTagSize || !utf8.ValidString(t) ||
			strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return fmt.Errorf("event body: %w: tag %q is not 1 to %d bytes without spaces or control characters", crypto.ErrMalformed, clip(t), MaxTagSize)
		}
		if i > 0 && tags[i-1] >= t {
			return fmt.Errorf("event body: %w: tags not sorted and distinct at %q", crypto.ErrMalformed, clip(t))
		}
	}
	return nil
}

func checkText(s string, mayBeEmpty bool) error {
	if s == "" && !mayBeEmpty {
		return fmt.Errorf("event body: %w: empty note", crypto.ErrMalformed)
	}
	if len(s) > MaxTextSize || !utf8.ValidString(s) ||
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0 {
		return fmt.Errorf("event body: %w: text is not at most %d bytes of UTF-8 without control characters", crypto.ErrMalformed, MaxTextSize)
	}
	return nil
}

// marshalParts returns the exact bytes of a body's two parts.
func (b *EventBody) marshalParts() (public, private []byte, err error) {
	body := *b
	body.Tags = slices.Clone(b.Tags)
	slices.Sort(body.Tags)
	if err := body.check(); err != nil {
		return nil, nil, err
	}
	pub, priv := body.partValues()
	if public, err = json.Marshal(pub); err != nil {
		return nil, nil, fmt.Errorf("event body: %w", err)
	}
	if private, err = json.Marshal(priv); err != nil {
		return nil, nil, fmt.Errorf("event body: %w", err)
	}
	return public, private, nil
}

// partValues returns the JSON values of a checked body's parts.
func (b *EventBody) partValues() (pub, priv any) {
	tip := crypto.FormatTipID(b.Tip)
	claim := b.Claim.String()
	pub = publicPart{Kind: b.Kind}
	switch b.Kind {
	case KindTriage:
		priv = triagePart{Tip: tip, Status: b.Status, Tags: append([]string{}, b.Tags...), Assignee: b.Assignee, Note: b.Text}
	case KindNote:
		priv = notePart{Tip: tip, Text: b.Text}
	case KindDelete:
		priv = deletePart{Tip: tip, Ciphertext: hex32String(b.Ciphertext)}
	case KindHandover:
		hp := handoverPart{To: b.To, Bodies: []handoverBody{}}
		for _, h := range b.Bodies {
			hp.Bodies = append(hp.Bodies, handoverBody(h))
		}
		for _, h := range b.Tips {
			hp.Tips = append(hp.Tips, handoverTip{Tip: crypto.FormatTipID(h.Tip), Ciphertext: hex32String(h.Ciphertext),
				Sealed: hex32String(h.Sealed), Length: h.Length})
		}
		priv = hp
	case KindClaim:
		pub, priv = claimPublic{Kind: b.Kind, Claim: claim, Text: b.Text, Scope: b.Scope}, emptyPart{}
	case KindLink:
		pub = linkPublic{Kind: b.Kind, Claim: claim, Stance: b.Stance, Cluster: b.Cluster, Reliability: b.Reliability,
			Credibility: b.Credibility, Access: b.Access, Why: b.Why, Handle: hex32String(b.Handle), Receipts: b.Receipts}
		priv = linkPrivate{Tip: tip, Ciphertext: hex32String(b.Ciphertext), Why: b.PrivateWhy}
		if b.Mailbox != (crypto.MailboxID{}) {
			priv = linkPrivateMailbox{Tip: tip, Ciphertext: hex32String(b.Ciphertext), Why: b.PrivateWhy, Mailbox: b.Mailbox.String()}
		}
	case KindUnlink:
		pub, priv = unlinkPublic{Kind: b.Kind, Claim: claim, Link: b.Link}, tipPrivate{Tip: tip}
	case KindSignoff:
		pub = signoffPublic{Kind: b.Kind, Claim: claim, Version: b.Version, Evidence: hex32String(b.Evidence),
			Changes: b.Changes, Decision: b.Decision}
		priv = signoffPrivate{Note: b.Note}
	case KindPublish:
		pub = publishPublic{Kind: b.Kind, Claim: claim, Version: b.Version, Evidence: hex32String(b.Evidence),
			Changes: b.Changes, Events: b.Events}
		priv = emptyPart{}
	case KindCorrect:
		pub, priv = correctPublic{Kind: b.Kind, Claim: claim, Type: b.Correction, Text: b.Text}, emptyPart{}
	case KindPeriod:
		priv = emptyPart{}
	case KindReply:
		priv = replyPrivate{Tip: tip, Mailbox: b.Mailbox.String(), Reply: crypto.FormatTipID(b.Reply), Text: b.Text}
	}
	return pub, priv
}

// marshalEventBody encodes a body with the salts in parts, filling in the
// parts' bytes, and pads it (docs/audit.md, "Plaintext").
func marshalEventBody(b *EventBody, parts *Parts) ([]byte, error) {
	public, private, err := b.marshalParts()
	if err != nil {
		return nil, err
	}
	parts.Public, parts.Private = public, private
	out := fmt.Appendf(nil, "%s\npublic %s %d\nprivate %s %d\n", EventBodyHeader,
		base64.RawURLEncoding.EncodeToString(parts.PublicSalt[:]), len(public),
		base64.RawURLEncoding.EncodeToString(parts.PrivateSalt[:]), len(private))
	out = append(out, public...)
	out = append(out, private...)
	padded := crypto.Bucket(int64(len(out)), bodyFrame)
	if padded > MaxBodySize {
		return nil, fmt.Errorf("event body: %d bytes padded, more than %d", padded, MaxBodySize)
	}
	return append(out, make([]byte, padded-int64(len(out)))...), nil
}

// splitEventBody reads a body plaintext's header, parts and padding,
// without interpreting the parts.
func splitEventBody(plain []byte) (*Parts, error) {
	if len(plain) > MaxBodySize {
		return nil, fmt.Errorf("event body: %w: %d bytes, more than %d", crypto.ErrMalformed, len(plain), MaxBodySize)
	}
	// The header is three short lines; find their end without scanning
	// the whole body.
	head := plain[:min(len(plain), 256)]
	end := 0
	for range 3 {
		nl := bytes.IndexByte(head[end:], '\n')
		if nl < 0 {
			return nil, fmt.Errorf("event body: %w: no three-line header", crypto.ErrMalformed)
		}
		end += nl + 1
	}
	r, err := newLineReader("event body", string(plain[:end]), EventBodyHeader)
	if err != nil {
		return nil, err
	}
	parts := &Parts{}
	var lens [2]int64
	for i, f := range []struct {
		key  string
		salt *[SaltSize]byte
	}{{"public", &parts.PublicSalt}, {"private", &parts.PrivateSalt}} {
		v, err := r.next(f.key, 2)
		if err != nil {
			return nil, err
		}
		if *f.salt, err = r.raw32(f.key+" salt", v[0]); err != nil {
			return nil, err
		}
		if lens[i], err = r.int(f.key+" length", v[1], 0, MaxBodySize); err != nil {
			return nil, err
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	rest := plain[end:]
	if lens[0]+lens[1] > int64(len(rest)) {
		return nil, fmt.Errorf("event body: %w: parts of %d and %d bytes, %d remain", crypto.ErrMalformed, lens[0], lens[1], len(rest))
	}
	parts.Public = rest[:lens[0]:lens[0]]
	parts.Private = rest[lens[0] : lens[0]+lens[1] : lens[0]+lens[1]]
	unpadded := int64(end) + lens[0] + lens[1]
	if crypto.Bucket(unpadded, bodyFrame) != int64(len(plain)) {
		return nil, fmt.Errorf("event body: %w: %d bytes, want %d bytes padded to %d", crypto.ErrMalformed, len(plain), unpadded, crypto.Bucket(unpadded, bodyFrame))
	}
	for _, c := range plain[unpadded:] {
		if c != 0 {
			return nil, fmt.Errorf("event body: %w: padding is not all zero", crypto.ErrMalformed)
		}
	}
	return parts, nil
}

// decodeJSON decodes one JSON object strictly and requires it to be
// exactly what encoding/json writes for the value (one encoding:
// encoding/json matches keys case-insensitively, keeps the last of
// repeated keys, allows whitespace, escapes and null lists).
func decodeJSON(what string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("event body: %w: %s part: %w", crypto.ErrMalformed, what, err)
	}
	if canon, err := json.Marshal(v); err != nil || !bytes.Equal(canon, data) {
		return fmt.Errorf("event body: %w: %s part is not in canonical form", crypto.ErrMalformed, what)
	}
	return nil
}

// ParsePublicPart parses a revealed public part on its own (a trail's):
// it must be in its one form, and the body it returns holds the public
// fields of its kind only (EventBody.Public). Errors wrap
// crypto.ErrMalformed.
func ParsePublicPart(public []byte) (*EventBody, error) {
	if len(public) > MaxPublicPart {
		return nil, fmt.Errorf("event body: %w: public part of %d bytes, more than %d", crypto.ErrMalformed, len(public), MaxPublicPart)
	}
	b, err := parsePublic(public)
	if err != nil {
		return nil, err
	}
	if err := b.checkFields(true); err != nil {
		return nil, err
	}
	return b, nil
}

// parsePublic interprets a public part, without checking the fields'
// values.
func parsePublic(data []byte) (*EventBody, error) {
	// The kind first, leniently; then the strict form of that kind, which
	// must re-encode to the same bytes (so the kind is the first member).
	var head struct {
		Kind Kind `json:"kind"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("event body: %w: public part: %w", crypto.ErrMalformed, err)
	}
	b := &EventBody{Kind: head.Kind}
	var err error
	switch head.Kind {
	case KindClaim:
		var p claimPublic
		if err = decodeJSON("public", data, &p); err == nil {
			b.Text, b.Scope = p.Text, p.Scope
			b.Claim, err = parsePartClaim(p.Claim)
		}
	case KindLink:
		var p linkPublic
		if err = decodeJSON("public", data, &p); err == nil {
			b.Stance, b.Cluster, b.Reliability, b.Credibility, b.Access = p.Stance, p.Cluster, p.Reliability, p.Credibility, p.Access
			b.Why, b.Receipts = p.Why, p.Receipts
			if b.Claim, err = parsePartClaim(p.Claim); err == nil {
				var h [32]byte
				h, err = parsePartHex("handle", p.Handle)
				b.Handle = Leaf(h)
			}
		}
	case KindUnlink:
		var p unlinkPublic
		if err = decodeJSON("public", data, &p); err == nil {
			b.Link = p.Link
			b.Claim, err = parsePartClaim(p.Claim)
		}
	case KindSignoff:
		var p signoffPublic
		if err = decodeJSON("public", data, &p); err == nil {
			b.Version, b.Changes, b.Decision = p.Version, p.Changes, p.Decision
			if b.Claim, err = parsePartClaim(p.Claim); err == nil {
				b.Evidence, err = parsePartHex("evidence", p.Evidence)
			}
		}
	case KindPublish:
		var p publishPublic
		if err = decodeJSON("public", data, &p); err == nil {
			b.Version, b.Changes, b.Events = p.Version, p.Changes, p.Events
			if b.Claim, err = parsePartClaim(p.Claim); err == nil {
				b.Evidence, err = parsePartHex("evidence", p.Evidence)
			}
		}
	case KindCorrect:
		var p correctPublic
		if err = decodeJSON("public", data, &p); err == nil {
			b.Correction, b.Text = p.Type, p.Text
			b.Claim, err = parsePartClaim(p.Claim)
		}
	case KindTriage, KindNote, KindDelete, KindHandover, KindPeriod, KindReply:
		var p publicPart
		err = decodeJSON("public", data, &p)
	default:
		return nil, fmt.Errorf("event body: %w: kind %q is not one of %s", crypto.ErrMalformed, clip(string(head.Kind)), kindList)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

func parsePartClaim(s string) (ClaimID, error) {
	id, err := ParseClaimID(s)
	if err != nil {
		return id, fmt.Errorf("event body: %w", err)
	}
	return id, nil
}

func parsePartHex(what, s string) ([32]byte, error) {
	h, err := hex.DecodeString(s)
	if err != nil || len(h) != 32 || hex.EncodeToString(h) != s {
		return [32]byte{}, fmt.Errorf("event body: %w: %s is not 64 lowercase hex digits", crypto.ErrMalformed, what)
	}
	return [32]byte(h), nil
}

// parseParts interprets committed parts.
func parseParts(parts *Parts) (*EventBody, error) {
	b, err := parsePublic(parts.Public)
	if err != nil {
		return nil, err
	}
	tip := func(s string) error {
		id, err := crypto.ParseTipID(s)
		if err != nil {
			return fmt.Errorf("event body: %w", err)
		}
		b.Tip = id
		return nil
	}
	switch b.Kind {
	case KindTriage:
		var p triagePart
		if err = decodeJSON("private", parts.Private, &p); err == nil {
			if p.Tags == nil {
				// encoding/json writes a nil list as null; ours never is.
				return nil, fmt.Errorf("event body: %w: triage tags are null, not a list", crypto.ErrMalformed)
			}
			b.Status, b.Text, b.Assignee = p.Status, p.Note, p.Assignee
			if len(p.Tags) > 0 {
				b.Tags = p.Tags
			}
			err = tip(p.Tip)
		}
	case KindNote:
		var p notePart
		if err = decodeJSON("private", parts.Private, &p); err == nil {
			b.Text = p.Text
			err = tip(p.Tip)
		}
	case KindDelete:
		var p deletePart
		if err = decodeJSON("private", parts.Private, &p); err == nil {
			if err = tip(p.Tip); err == nil {
				b.Ciphertext, err = parsePartHex("a delete's ciphertext", p.Ciphertext)
			}
		}
	case KindHandover:
		var p handoverPart
		if err = decodeJSON("private", parts.Private, &p); err == nil {
			b.To = p.To
			for _, h := range p.Bodies {
				b.Bodies = append(b.Bodies, HandedOver(h))
			}
			for _, h := range p.Tips {
				var t HandedOverTip
				if t.Tip, err = crypto.ParseTipID(h.Tip); err != nil {
					return nil, fmt.Errorf("event body: handover: %w", err)
				}
				if t.Ciphertext, err = parsePartHex("a handed-over tip's ciphertext", h.Ciphertext); err != nil {
					return nil, err
				}
				if t.Sealed, err = parsePartHex("a handed-over tip's re-encryption", h.Sealed); err != nil {
					return nil, err
				}
				t.Length = h.Length
				b.Tips = append(b.Tips, t)
			}
		}
	case KindLink:
		// Two forms: with the source's mailbox (a tip with a reply
		// address) or without.
		var p linkPrivateMailbox
		if bytes.Contains(parts.Private, []byte(`"mailbox"`)) {
			if err = decodeJSON("private", parts.Private, &p); err == nil {
				b.Mailbox, err = crypto.ParseMailboxID(p.Mailbox)
				if err == nil && b.Mailbox == (crypto.MailboxID{}) {
					err = fmt.Errorf("event body: %w: a link's mailbox is all zero", crypto.ErrMalformed)
				}
			}
		} else {
			var p1 linkPrivate
			err = decodeJSON("private", parts.Private, &p1)
			p.Tip, p.Ciphertext, p.Why = p1.Tip, p1.Ciphertext, p1.Why
		}
		if err == nil {
			b.PrivateWhy = p.Why
			if err = tip(p.Tip); err == nil {
				b.Ciphertext, err = parsePartHex("a link's ciphertext", p.Ciphertext)
			}
		}
	case KindReply:
		var p replyPrivate
		if err = decodeJSON("private", parts.Private, &p); err == nil {
			b.Text = p.Text
			if err = tip(p.Tip); err == nil {
				if b.Mailbox, err = crypto.ParseMailboxID(p.Mailbox); err == nil {
					b.Reply, err = crypto.ParseTipID(p.Reply)
				}
			}
		}
	case KindUnlink:
		var p tipPrivate
		if err = decodeJSON("private", parts.Private, &p); err == nil {
			err = tip(p.Tip)
		}
	case KindSignoff:
		var p signoffPrivate
		if err = decodeJSON("private", parts.Private, &p); err == nil {
			b.Note = p.Note
		}
	case KindClaim, KindPublish, KindCorrect, KindPeriod:
		var p emptyPart
		err = decodeJSON("private", parts.Private, &p)
	}
	if err != nil {
		return nil, err
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	return b, nil
}

// parseEventBody parses a body plaintext without checking it against an
// event: for tests and fuzzing only, since a body is trusted only once its
// commitments are checked (OpenEventBody).
func parseEventBody(plain []byte) (*EventBody, *Parts, error) {
	parts, err := splitEventBody(plain)
	if err != nil {
		return nil, nil, err
	}
	b, err := parseParts(parts)
	if err != nil {
		return nil, nil, err
	}
	return b, parts, nil
}
