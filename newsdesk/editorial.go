package newsdesk

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"

	"fieldtip/audit"
	"fieldtip/crypto"

	"filippo.io/age"
)

// OpenedEvent is an event of the log with its body, decrypted in memory.
type OpenedEvent struct {
	Index int64
	Event *audit.Event
	Body  *audit.EventBody
	Parts *audit.Parts
	// Via is the handed-over body this editor opened it from, when the
	// body was sealed before the editor was added; nil otherwise.
	Via *audit.HandedOver
}

// Editorial is the editorial state an editor rebuilds by replaying the
// log: it lives in memory only.
type Editorial struct {
	// State is the replayed state; State.Refused lists the events that
	// could not apply, bodies that do not open among them.
	State *audit.State
	// Events are the events the editor could open, in log order.
	Events []OpenedEvent
	// Unreadable are the indexes of events whose body the editor cannot
	// open: sealed before the editor was added, and not handed over yet.
	Unreadable []int64
	// Warnings say what went wrong that changed nothing, such as a body
	// handed over to this editor that does not open.
	Warnings []string
}

// Replay opens every event body of v that the editor can read, with its
// own identity or through a handover addressed to it, and applies them in
// log order to a new audit.State (docs/audit.md, "Replay"). A body that
// does not open although it was sealed to this editor (bad age, form or
// commitments: its author's doing) is recorded as refused
// (audit.ReasonBadBody). Two editors who open the same events get the
// same State. Nothing decrypted is written anywhere. A Session does the
// same work once and then event by event.
func Replay(v *LogView, key *crypto.EditorKey) (*Editorial, error) {
	r := newReplayer(key, key.Identity)
	if err := r.advance(v); err != nil {
		return nil, err
	}
	return r.editorial(), nil
}

// replayer replays the log incrementally: advance opens only the events
// after those it has seen, and applies them to the state it keeps. It
// rebuilds the state from the bodies it holds (no decryption) only when
// a handover opens bodies of earlier events.
type replayer struct {
	key *crypto.EditorKey
	// id opens bodies: the key's identity, or a session's hinted one.
	id age.Identity
	// size is how many entries of the log it has seen.
	size int64
	// events are the event entries seen, by index; order their indexes.
	events map[int64]*audit.Event
	order  []int64
	// opened are the events whose body the editor opened, directly or
	// through a handover.
	opened map[int64]OpenedEvent
	// via is, for bodies opened through a handover, the handover's index.
	via map[int64]int64
	// bad are the events sealed to the editor whose body does not open.
	bad      map[int64]bool
	warnings []string
	// missing are events sealed to the editor whose body the replica
	// lacks: each advance tries them again.
	missing map[int64]bool
	// state is the state after every event seen; events the opened
	// events in log order.
	state      *audit.State
	openedList []OpenedEvent
	// bundles are the bundles in force at the events, by index.
	bundles map[int64]*crypto.Bundle
	// sealedTo caches sealedTo by bundle version.
	sealedToV map[int64]bool
	// decrypted counts the bodies it tried to decrypt (tests read it).
	decrypted int
}

func newReplayer(key *crypto.EditorKey, id age.Identity) *replayer {
	return &replayer{key: key, id: id, events: map[int64]*audit.Event{}, opened: map[int64]OpenedEvent{}, via: map[int64]int64{}, bundles: map[int64]*crypto.Bundle{},
		bad: map[int64]bool{}, missing: map[int64]bool{}, state: audit.NewState(), sealedToV: map[int64]bool{}}
}

// editorial returns the replayed state. Its slices are the replayer's:
// callers read them only.
func (r *replayer) editorial() *Editorial {
	ed := &Editorial{State: r.state, Events: r.openedList, Warnings: slices.Clone(r.warnings)}
	for _, i := range r.order {
		if _, ok := r.opened[i]; !ok && !r.bad[i] {
			// Sealed before the editor was added, or its body missing.
			ed.Unreadable = append(ed.Unreadable, i)
		}
	}
	return ed
}

// sealedToMe reports whether bodies sealed to b are sealed to the editor.
func (r *replayer) sealedToMe(b *crypto.Bundle) bool {
	if b == nil {
		return false
	}
	ok, seen := r.sealedToV[b.Version]
	if !seen {
		ok = sealedTo(b, r.key)
		r.sealedToV[b.Version] = ok
	}
	return ok
}

// advance opens the events of v after those seen (v must extend the log
// the replayer saw) and applies them. Only a replica that does not hold
// what the sync checked (an entry, a body that does not hash to its
// event) is an error.
func (r *replayer) advance(v *LogView) error {
	if v == nil || v.Tree.N <= r.size {
		return nil
	}
	start := r.size
	// The events sealed to this editor to open: those whose body was
	// missing before, then the new ones.
	var mine []int64
	for i := range r.missing {
		mine = append(mine, i)
	}
	slices.Sort(mine)
	added, err := r.openEvents(v, start, v.Tree.N)
	if err != nil {
		return err
	}
	for _, i := range added {
		// A body sealed to bundles that do not list this key waits for a
		// handover: no need to try it.
		if r.sealedToMe(v.BundleAt(i)) {
			mine = append(mine, i)
		}
	}
	r.size = v.Tree.N
	r.decrypted += len(mine)
	results, err := r.openBodies(v, mine)
	if err != nil {
		return err
	}
	rebuild := false
	var fresh []int64
	for k, i := range mine {
		res := results[k]
		switch {
		case res.missing:
			// Not fetched (yet): it waits, as an unreadable one does.
			r.missing[i] = true
			continue
		case res.err == nil:
			r.opened[i] = OpenedEvent{Index: i, Event: r.events[i], Body: res.body, Parts: res.parts}
		default:
			r.bad[i] = true
		}
		delete(r.missing, i)
		if i < start {
			rebuild = true
		}
		fresh = append(fresh, i)
	}
	// Bodies sealed before this editor was added, handed over since.
	for _, i := range fresh {
		o, ok := r.opened[i]
		if !ok || o.Body.Kind != audit.KindHandover || o.Body.To != r.key.Label {
			continue
		}
		for _, h := range o.Body.Bodies {
			ev, isEvent := r.events[h.Index]
			if _, done := r.opened[h.Index]; done || r.bad[h.Index] || !isEvent || h.Index >= i {
				continue
			}
			r.decrypted++
			body, parts, err := audit.OpenHandedOver(h, ev, r.id)
			if err != nil {
				r.warnings = append(r.warnings, fmt.Sprintf("the body of event %d handed over in event %d (by %s) does not open: %v", h.Index, i, o.Event.Editor, err))
				continue
			}
			r.opened[h.Index] = OpenedEvent{Index: h.Index, Event: ev, Body: body, Parts: parts, Via: &h}
			r.via[h.Index] = i
			if h.Index < start {
				rebuild = true
			} else {
				fresh = append(fresh, h.Index)
			}
		}
	}
	if rebuild {
		return r.rebuild()
	}
	slices.Sort(fresh)
	fresh = slices.Compact(fresh)
	for _, i := range fresh {
		if err := r.apply(i); err != nil {
			return err
		}
	}
	return nil
}

// openEvents records the event entries of v from start to end−1, as its
// verifier opened them (or opened again, on every core, if it did not),
// and returns their indexes.
func (r *replayer) openEvents(v *LogView, start, end int64) ([]int64, error) {
	var idx []int64
	for i := start; i < end; i++ {
		if strings.HasPrefix(string(v.Entries[i]), audit.EventHeader+"\n") {
			idx = append(idx, i)
		}
	}
	evs := make([]*audit.Event, len(idx))
	errs := make([]error, len(idx))
	parallel(len(idx), func(k int) {
		if evs[k] = v.verifier.Event(idx[k]); evs[k] == nil {
			evs[k], errs[k] = audit.OpenEvent(v.Entries[idx[k]], v.BundleAt(idx[k]))
		}
	})
	for k, i := range idx {
		if errs[k] != nil {
			return nil, fmt.Errorf("event %d: %w", i, errs[k])
		}
		r.events[i], r.bundles[i] = evs[k], v.BundleAt(i)
	}
	r.order = append(r.order, idx...)
	return idx, nil
}

// parallel calls f(0) to f(n−1) on every core and returns when all
// returned.
func parallel(n int, f func(int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for k := range next {
				f(k)
			}
		})
	}
	for k := range n {
		next <- k
	}
	close(next)
	wg.Wait()
}

// apply applies event i, opened or bad, to the state.
func (r *replayer) apply(i int64) error {
	if r.bad[i] {
		return r.state.Refuse(i, r.events[i], audit.ReasonBadBody)
	}
	o := r.opened[i]
	// A publish is checked against the bundle it names, the one in force
	// at its index (audit.State.AddBundle).
	r.state.AddBundle(r.bundles[i])
	if err := r.state.Apply(i, o.Event, o.Body); err != nil {
		return fmt.Errorf("replay event %d: %w", i, err)
	}
	r.openedList = append(r.openedList, o)
	return nil
}

// rebuild applies every event opened or bad, in log order, to a new
// state: what a handover of earlier bodies needs. It decrypts nothing.
func (r *replayer) rebuild() error {
	r.state, r.openedList = audit.NewState(), nil
	for _, i := range r.order {
		if _, ok := r.opened[i]; ok || r.bad[i] {
			if err := r.apply(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// openResult is the outcome of opening one event body.
type openResult struct {
	body    *audit.EventBody
	parts   *audit.Parts
	missing bool
	err     error
}

// openBodies opens the bodies of the events at indexes, on every core.
// A body missing from the replica is a result with missing set; one that
// does not open, a result with err; a body that no longer hashes to its
// event (the replica changed since the sync checked it), an error.
func (r *replayer) openBodies(v *LogView, indexes []int64) ([]openResult, error) {
	out := make([]openResult, len(indexes))
	parallel(len(indexes), func(k int) {
		i := indexes[k]
		ct, err := v.Body(i)
		if errors.Is(err, fs.ErrNotExist) {
			out[k] = openResult{missing: true}
			return
		}
		if err != nil {
			out[k] = openResult{err: err, missing: true}
			return
		}
		body, parts, err := audit.OpenEventBody(ct, r.events[i], r.id)
		out[k] = openResult{body: body, parts: parts, err: err}
	})
	for k, res := range out {
		var ce *audit.CommitmentError
		if res.missing && res.err != nil {
			return nil, fmt.Errorf("event %d: read its body: %w", indexes[k], res.err)
		}
		if errors.As(res.err, &ce) && ce.Part == "ciphertext" {
			return nil, fmt.Errorf("event %d: the replica's body (%s) changed since it was checked: %w", indexes[k], v.Replica, res.err)
		}
	}
	return out, nil
}

// sealedTo reports whether bodies sealed to b are sealed to the editor
// of key: b lists the editor with that key's recipient.
func sealedTo(b *crypto.Bundle, key *crypto.EditorKey) bool {
	if b == nil {
		return false
	}
	e := b.Editor(key.Label)
	return e != nil && e.Recipient == key.Public.Recipient
}

// tipHash returns the ciphertext hash an event body names, if any.
func tipHash(b *audit.EventBody) ([32]byte, bool) {
	if b.Kind == audit.KindDelete {
		return b.Ciphertext, true
	}
	return [32]byte{}, false
}
