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
}

// Editorial is the editorial state an editor rebuilds by replaying the
// log: it lives in memory only.
type Editorial struct {
	State *audit.State
	// Events are the events the editor could open, in log order.
	Events []OpenedEvent
	// Unreadable are the indexes of events whose body the editor cannot
	// open: sealed before the editor was added, and not handed over yet.
	Unreadable []int64
}

// Replay opens every event body of v that the editor can read, with its
// own identity or through a handover addressed to it, and applies them in
// log order (docs/audit.md, "Replay"). Two editors who open the same
// events get the same State. Nothing decrypted is written anywhere.
func Replay(v *LogView, key *crypto.EditorKey) (*Editorial, error) {
	opened, unreadable, err := openAll(v, key)
	if err != nil {
		return nil, err
	}
	st := audit.NewState()
	for _, o := range opened {
		if err := st.Apply(o.Index, o.Event, o.Body); err != nil {
			return nil, fmt.Errorf("replay event %d: %w", o.Index, err)
		}
	}
	return &Editorial{State: st, Events: opened, Unreadable: unreadable}, nil
}

// openBodies returns the events whose bodies the editor can open.
func openBodies(v *LogView, key *crypto.EditorKey) ([]OpenedEvent, error) {
	opened, _, err := openAll(v, key)
	return opened, err
}

func openAll(v *LogView, key *crypto.EditorKey) (opened []OpenedEvent, unreadable []int64, err error) {
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
	byIndex := map[int64]OpenedEvent{}
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
		body, parts, err := audit.OpenEventBody(ct, events[i], key.Identity)
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			waiting = append(waiting, i)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("event %d: %w", i, err)
		}
		byIndex[i] = OpenedEvent{Index: i, Event: events[i], Body: body, Parts: parts}
	}
	// Bodies sealed before this editor was added, handed over since.
	for _, i := range order {
		o, ok := byIndex[i]
		if !ok || o.Body.Kind != audit.KindHandover || o.Body.To != key.Label {
			continue
		}
		for _, h := range o.Body.Bodies {
			ev, isEvent := events[h.Index]
			if _, done := byIndex[h.Index]; done || !isEvent || h.Index >= i {
				continue
			}
			body, parts, err := audit.OpenHandedOver(h, ev, key.Identity)
			if err != nil {
				return nil, nil, fmt.Errorf("event %d, handed over in event %d: %w", h.Index, i, err)
			}
			byIndex[h.Index] = OpenedEvent{Index: h.Index, Event: ev, Body: body, Parts: parts}
		}
	}
	for _, i := range order {
		if o, ok := byIndex[i]; ok {
			opened = append(opened, o)
		}
	}
	for _, i := range waiting {
		if _, ok := byIndex[i]; !ok {
			unreadable = append(unreadable, i)
		}
	}
	return opened, unreadable, nil
}

// tipHash returns the ciphertext hash an event body names, if any.
func tipHash(b *audit.EventBody) ([32]byte, bool) {
	if b.Kind == audit.KindDelete {
		return b.Ciphertext, true
	}
	return [32]byte{}, false
}
