package newsdesk

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

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
// same State. Nothing decrypted is written anywhere.
func Replay(v *LogView, key *crypto.EditorKey) (*Editorial, error) {
	ed, bad, err := openAll(v, key)
	if err != nil {
		return nil, err
	}
	st := audit.NewState()
	next := 0
	for _, o := range ed.Events {
		for ; next < len(bad) && bad[next].Index < o.Index; next++ {
			if err := st.Refuse(bad[next].Index, bad[next].Event, audit.ReasonBadBody); err != nil {
				return nil, err
			}
		}
		// A publish is checked against the bundle it names, the one in
		// force at its index (audit.State.AddBundle).
		st.AddBundle(v.BundleAt(o.Index))
		if err := st.Apply(o.Index, o.Event, o.Body); err != nil {
			return nil, fmt.Errorf("replay event %d: %w", o.Index, err)
		}
	}
	for ; next < len(bad); next++ {
		if err := st.Refuse(bad[next].Index, bad[next].Event, audit.ReasonBadBody); err != nil {
			return nil, err
		}
	}
	ed.State = st
	return ed, nil
}

// openBodies returns the events whose bodies the editor can open.
func openBodies(v *LogView, key *crypto.EditorKey) ([]OpenedEvent, error) {
	ed, _, err := openAll(v, key)
	if err != nil {
		return nil, err
	}
	return ed.Events, nil
}

// badBody is an event whose body was sealed to the editor but does not
// open.
type badBody struct {
	Index int64
	Event *audit.Event
}

// openAll opens what the editor can of v's event bodies: the events
// opened, in log order, the unreadable ones and the bad ones. Only a
// replica that does not hold what SyncLog checked (an entry, a body that
// does not hash to its event) is an error.
func openAll(v *LogView, key *crypto.EditorKey) (*Editorial, []badBody, error) {
	events := map[int64]*audit.Event{}
	var order []int64
	for i, e := range v.Entries {
		if !strings.HasPrefix(string(e), audit.EventHeader+"\n") {
			continue
		}
		ev, err := audit.OpenEvent(e, v.BundleAt(int64(i)))
		if err != nil {
			return nil, nil, fmt.Errorf("event %d: %w", i, err)
		}
		events[int64(i)], order = ev, append(order, int64(i))
	}
	ed := &Editorial{}
	byIndex := map[int64]OpenedEvent{}
	badAt := map[int64]bool{}
	var bad []badBody
	var waiting []int64
	for _, i := range order {
		ct, err := v.Body(i)
		if errors.Is(err, fs.ErrNotExist) {
			waiting = append(waiting, i)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		ev := events[i]
		body, parts, err := audit.OpenEventBody(ct, ev, key.Identity)
		var noMatch *age.NoIdentityMatchError
		var ce *audit.CommitmentError
		switch {
		case err == nil:
			byIndex[i] = OpenedEvent{Index: i, Event: ev, Body: body, Parts: parts}
		case errors.As(err, &ce) && ce.Part == "ciphertext":
			return nil, nil, fmt.Errorf("event %d: the replica's body (%s) changed since it was checked: %w", i, v.Replica, err)
		case errors.As(err, &noMatch) && !sealedTo(v.BundleAt(i), key):
			// Sealed before this editor was added: wait for a handover.
			waiting = append(waiting, i)
		default:
			bad, badAt[i] = append(bad, badBody{Index: i, Event: ev}), true
		}
	}
	// Bodies sealed before this editor was added, handed over since.
	for _, i := range order {
		o, ok := byIndex[i]
		if !ok || o.Body.Kind != audit.KindHandover || o.Body.To != key.Label {
			continue
		}
		for _, h := range o.Body.Bodies {
			ev, isEvent := events[h.Index]
			if _, done := byIndex[h.Index]; done || badAt[h.Index] || !isEvent || h.Index >= i {
				continue
			}
			body, parts, err := audit.OpenHandedOver(h, ev, key.Identity)
			if err != nil {
				ed.Warnings = append(ed.Warnings, fmt.Sprintf("the body of event %d handed over in event %d (by %s) does not open: %v", h.Index, i, o.Event.Editor, err))
				continue
			}
			byIndex[h.Index] = OpenedEvent{Index: h.Index, Event: ev, Body: body, Parts: parts, Via: &h}
		}
	}
	for _, i := range order {
		if o, ok := byIndex[i]; ok {
			ed.Events = append(ed.Events, o)
		}
	}
	for _, i := range waiting {
		if _, ok := byIndex[i]; !ok {
			ed.Unreadable = append(ed.Unreadable, i)
		}
	}
	return ed, bad, nil
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
