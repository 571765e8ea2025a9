package newsdesk

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"fieldtip/audit"
	"fieldtip/crypto"

	"filippo.io/age"
)

// TipSummary is what an inbox shows of a tip: its receipt's facts and,
// from its text decrypted in memory, its first line and attachments.
type TipSummary struct {
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	Day    string `json:"day"`
	Length int64  `json:"length"`
	// SHA256 is the ciphertext's hash (lowercase hex), as the receipt says.
	SHA256 string `json:"sha256"`
	// FirstLine is the text's first line, without control characters,
	// cut to FirstLineRunes runes.
	FirstLine string `json:"first_line"`
	// TextBytes is the length of the whole text.
	TextBytes   int              `json:"text_bytes"`
	Attachments []AttachmentInfo `json:"attachments"`
	// Mailbox is the mailbox id of the tip's reply address (its source,
	// docs/replies.md), "" for a tip without one: tips with the same come
	// from one codename.
	Mailbox string `json:"mailbox,omitempty"`
	// Unreadable says why the editor's key cannot open the tip ("" when
	// it can): UnreadableNotSealed, or the error.
	Unreadable string `json:"unreadable,omitempty"`
	// transient marks a summary of a cached file that does not match its
	// receipt: never kept, summarized again each time.
	transient bool
}

// AttachmentInfo describes an attachment without its bytes.
type AttachmentInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int    `json:"size"`
}

// FirstLineRunes is how much of a tip's first line a summary keeps.
const FirstLineRunes = 120

// UnreadableNotSealed is a TipSummary's Unreadable for a tip sealed to a
// bundle that did not list this key: sent before the editor was added (or
// re-keyed).
const UnreadableNotSealed = "not sealed to this key"

// ErrNotSealed: a tip was not sealed to the editor's key.
var ErrNotSealed = errors.New("the tip was not sealed to this key: it was sent before this key was in the bundle (another editor can read it)")

// tipIndex is the session's list of cached tips and their summaries.
type tipIndex struct {
	// loaded is set once entries holds the cache's tips.
	loaded  bool
	entries []Entry
	// sums are the summaries by tip id; one is used only while its
	// SHA-256 is the cached tip's. mu guards it while a pull summarizes
	// in the background.
	mu    sync.Mutex
	sums  map[string]TipSummary
	dirty bool
	// decrypted counts the tips decrypted (tests read it).
	decrypted int
}

func newTipIndex(snap *snapshot) *tipIndex {
	t := &tipIndex{sums: map[string]TipSummary{}}
	if snap != nil {
		for _, s := range snap.Tips {
			t.sums[s.ID] = s
		}
	}
	return t
}

// summaries returns the summaries of the tips in the cache, in arrival
// order (all of them if the cache was not listed).
func (t *tipIndex) summaries() []TipSummary {
	if !t.loaded {
		out := make([]TipSummary, 0, len(t.sums))
		for _, s := range t.sums {
			out = append(out, s)
		}
		slices.SortFunc(out, func(a, b TipSummary) int { return int(a.Seq - b.Seq) })
		return out
	}
	out := make([]TipSummary, 0, len(t.entries))
	for _, e := range t.entries {
		if s, ok := t.sums[e.ID]; ok {
			out = append(out, s)
		}
	}
	return out
}

// load lists the cache's tips, once.
func (s *Session) loadTips() error {
	if s.tips.loaded {
		return nil
	}
	es, err := s.cache.List()
	if err != nil {
		return err
	}
	s.tips.entries, s.tips.loaded = es, true
	return nil
}

// summarize returns the summary of a cached tip, decrypting it with id.
// A tip whose ciphertext does not match its receipt, or cannot be read,
// gets a transient summary saying so.
func summarize(e *Entry, id age.Identity) TipSummary {
	ct, err := e.ciphertext()
	if err != nil {
		s := newSummary(e)
		s.Unreadable, s.transient = err.Error(), true
		return s
	}
	return summarizeBytes(e, ct, id)
}

func newSummary(e *Entry) TipSummary {
	return TipSummary{ID: e.ID, Seq: e.Seq, Day: e.Receipt.Day, Length: e.Receipt.Length, SHA256: hex.EncodeToString(e.Receipt.SHA256[:]), Attachments: []AttachmentInfo{}}
}

// summarizeBytes is summarize of the tip's ciphertext ct, in memory.
func summarizeBytes(e *Entry, ct []byte, id age.Identity) TipSummary {
	s := newSummary(e)
	t, err := e.openBytes(ct, id)
	var noMatch *age.NoIdentityMatchError
	switch {
	case errors.Is(err, ErrChecksum):
		s.Unreadable, s.transient = err.Error(), true
		return s
	case errors.As(err, &noMatch):
		s.Unreadable = UnreadableNotSealed
		return s
	case err != nil:
		s.Unreadable = err.Error()
		return s
	}
	s.FirstLine, s.TextBytes = FirstLine(t.Text, FirstLineRunes), len(t.Text)
	if t.Reply != nil {
		s.Mailbox = t.Reply.Mailbox.String()
	}
	for _, a := range t.Attachments {
		s.Attachments = append(s.Attachments, AttachmentInfo{Name: a.Name, Type: a.Type, Size: len(a.Data)})
	}
	return s
}

// addSummaries records summaries made in the background.
func (t *tipIndex) addSummaries(sums []TipSummary) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range sums {
		t.sums[s.ID] = s
	}
	t.decrypted += len(sums)
	t.dirty = true
	return nil
}

// index summarizes, on every core, the cached tips without a summary.
func (s *Session) index() error {
	if err := s.loadTips(); err != nil {
		return err
	}
	var todo []int
	for k, e := range s.tips.entries {
		if sum, ok := s.tips.sums[e.ID]; !ok || sum.transient || sum.SHA256 != hex.EncodeToString(e.Receipt.SHA256[:]) || sum.Seq != e.Seq {
			todo = append(todo, k)
		}
	}
	s.tips.decrypted += len(todo)
	sums := make([]TipSummary, len(todo))
	parallel(len(todo), func(j int) {
		sums[j] = summarize(&s.tips.entries[todo[j]], s.ident)
	})
	for j := range todo {
		s.tips.sums[sums[j].ID] = sums[j]
	}
	if len(todo) > 0 {
		s.tips.dirty = true
	}
	s.summarizeHandedOver()
	return nil
}

// Tips returns the summaries of the cached tips, in arrival order,
// decrypting (on every core) only the tips the sealed index does not
// summarize.
func (s *Session) Tips() ([]TipSummary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.index(); err != nil {
		return nil, err
	}
	return s.tips.summaries(), nil
}

// OpenTip returns a cached tip decrypted in memory, with its cache entry,
// after checking its ciphertext against its receipt. A tip the log
// deletes is ErrTipDeleted (saying who deleted it and when); one sealed
// before this key was in the bundle, ErrNotSealed.
func (s *Session) OpenTip(id string) (*crypto.Tip, *Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tid, err := crypto.ParseTipID(id)
	if err != nil {
		return nil, nil, err
	}
	if err := s.deleted(tid); err != nil {
		return nil, nil, err
	}
	e, err := s.findTip(id)
	if err != nil {
		return nil, nil, err
	}
	t, err := e.open(s.ident)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		t, err = s.openHandedOver(e, err)
	}
	if errors.As(err, &noMatch) {
		return nil, nil, fmt.Errorf("tip %s: %w", id, ErrNotSealed)
	}
	if err != nil {
		return nil, nil, err
	}
	return t, e, nil
}

// deleted returns ErrTipDeleted, naming the delete event, when the
// replayed log deletes the tip.
func (s *Session) deleted(tip [crypto.TipIDSize]byte) error {
	ts := s.replay.state.Tip(tip)
	if ts == nil || !ts.Deleted {
		return nil
	}
	for _, o := range s.replay.openedList {
		if o.Body.Kind == audit.KindDelete && o.Body.Tip == tip {
			return fmt.Errorf("tip %s: %w: by %s on %s (event %d)", crypto.FormatTipID(tip), ErrTipDeleted, o.Event.Editor, o.Event.Day, o.Index)
		}
	}
	return fmt.Errorf("tip %s: %w", crypto.FormatTipID(tip), ErrTipDeleted)
}

// findTip returns the cached tip with the given id.
func (s *Session) findTip(id string) (*Entry, error) {
	if err := s.loadTips(); err != nil {
		return nil, err
	}
	for i := range s.tips.entries {
		if s.tips.entries[i].ID == id {
			return &s.tips.entries[i], nil
		}
	}
	return nil, fmt.Errorf("tip %s is not in %s: sync first", id, s.cache.Dir)
}

// FindTip returns the cached tip with the given id (its receipt verified,
// its ciphertext not read).
func (s *Session) FindTip(id string) (*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.findTip(id)
}
