package audit

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"fieldtip/crypto"

	"filippo.io/age"
)

// replay opens every event of a verified log with one editor's identity
// and applies it, as newsdesk does.
func replay(t *testing.T, l *testLog, id age.Identity, skip int64) *State {
	t.Helper()
	v, err := l.verify()
	if err != nil {
		t.Fatal(err)
	}
	s := NewState()
	for i, e := range l.entries {
		if firstLine(e) != EventHeader || int64(i) == skip {
			continue
		}
		ev, err := OpenEvent(e, v.BundleAt(int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		body, _, err := OpenEventBody(l.bodies[int64(i)], ev, id)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if err := s.Apply(int64(i), ev, body); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestReplayTwoEditors(t *testing.T) {
	bob := newEditor(t, "bob")
	l := newTestLog(t)
	l.addBundle(1, []*crypto.EditorKey{testAlice, bob})
	l.addEvent(testAlice, &EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusReviewing, Tags: []string{"mine", "copper"}, Text: "Plausible."})
	l.addEvent(bob, &EventBody{Kind: KindNote, Tip: tipID(1), Text: "Trucks seen by a second source."})
	l.addEvent(bob, &EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusUseful, Tags: []string{"copper"}})
	l.addEvent(testAlice, &EventBody{Kind: KindTriage, Tip: tipID(2), Status: StatusNew})
	refusedDelete := l.addEvent(bob, &EventBody{Kind: KindDelete, Tip: tipID(2), Ciphertext: [32]byte{2}}) // status new: refused
	l.addEvent(bob, &EventBody{Kind: KindTriage, Tip: tipID(2), Status: StatusSpam, Text: "Advert."})
	l.addEvent(testAlice, &EventBody{Kind: KindDelete, Tip: tipID(2), Ciphertext: [32]byte{2}})
	refusedNote := l.addEvent(bob, &EventBody{Kind: KindNote, Tip: tipID(2), Text: "Too late."})
	refusedTwice := l.addEvent(bob, &EventBody{Kind: KindDelete, Tip: tipID(2), Ciphertext: [32]byte{2}})
	handover := l.addEvent(testAlice, &EventBody{Kind: KindHandover, To: "carol", Bodies: []HandedOver{{Index: 1, Ciphertext: []byte{1}}, {Index: 2, Ciphertext: []byte{2}}}})

	sa, sb := replay(t, l, testAlice.Identity, -1), replay(t, l, bob.Identity, -1)
	if !bytes.Equal(sa.Marshal(), sb.Marshal()) || sa.Digest() != sb.Digest() {
		t.Fatalf("alice's and bob's states differ:\n%s\n%s", sa.Marshal(), sb.Marshal())
	}

	want1 := &TipState{Status: StatusUseful, Tags: []string{"copper"}, Notes: []Note{
		{Index: 1, Editor: "alice", Day: "2026-03-14", Text: "Plausible."},
		{Index: 2, Editor: "bob", Day: "2026-03-14", Text: "Trucks seen by a second source."},
	}}
	if got := sa.Tip(tipID(1)); !reflect.DeepEqual(got, want1) {
		t.Errorf("tip 1 = %+v, want %+v", got, want1)
	}
	if got, want := sa.Tip(tipID(2)), (&TipState{Status: StatusSpam, Deleted: true}); !reflect.DeepEqual(got, want) {
		t.Errorf("tip 2 = %+v, want %+v", got, want)
	}
	if got := sa.Tip(tipID(3)); got != nil {
		t.Errorf("tip 3 = %+v, want nil", got)
	}
	if got, want := sa.Tips(), [][crypto.TipIDSize]byte{tipID(1), tipID(2)}; !reflect.DeepEqual(got, want) {
		t.Errorf("Tips() = %v, want %v", got, want)
	}
	wantRefused := []Refusal{
		{Index: refusedDelete, Editor: "bob", Reason: ReasonDeletePolicy},
		{Index: refusedNote, Editor: "bob", Reason: ReasonDeleted},
		{Index: refusedTwice, Editor: "bob", Reason: ReasonAlreadyDelete},
	}
	if got := sa.Refused(); !reflect.DeepEqual(got, wantRefused) {
		t.Errorf("Refused() = %+v, want %+v", got, wantRefused)
	}
	wantHandovers := []HandoverRecord{{Index: handover, Editor: "alice", Day: "2026-03-14", To: "carol", Indexes: []int64{1, 2}}}
	if got := sa.Handovers(); !reflect.DeepEqual(got, wantHandovers) {
		t.Errorf("Handovers() = %+v, want %+v", got, wantHandovers)
	}

	// An editor who missed one event has another digest.
	if missed := replay(t, l, bob.Identity, 2); missed.Digest() == sa.Digest() {
		t.Error("a state without event 2 has the same digest")
	}
	// Tip returns a copy.
	sa.Tip(tipID(1)).Notes[0].Text = "changed"
	if sa.Digest() != sb.Digest() {
		t.Error("changing what Tip returned changed the state")
	}
}

func TestStateApplyRefuses(t *testing.T) {
	s := NewState()
	e := &Event{Editor: "alice", Day: "2026-03-14"}
	note := &EventBody{Kind: KindNote, Tip: tipID(1), Text: "x"}
	if err := s.Apply(5, e, note); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int64{5, 4} {
		if err := s.Apply(i, e, note); !errors.Is(err, ErrOutOfOrder) {
			t.Errorf("Apply(%d) after 5 = %v, want ErrOutOfOrder", i, err)
		}
	}
	if err := s.Apply(6, &Event{Day: "2026-03-14"}, note); err == nil {
		t.Error("Apply of an event without an editor succeeded")
	}
	if err := s.Apply(7, e, &EventBody{Kind: KindNote, Tip: tipID(1)}); !errors.Is(err, crypto.ErrMalformed) {
		t.Errorf("Apply of an empty note = %v, want ErrMalformed", err)
	}
	if got := len(s.Tip(tipID(1)).Notes); got != 1 {
		t.Errorf("after refused applies, %d notes, want 1", got)
	}
}

// An event whose body does not open is refused, in order, and changes
// the digest.
func TestStateRefuse(t *testing.T) {
	s, plain := NewState(), NewState()
	e := &Event{Editor: "bob", Day: "2026-03-14"}
	note := &EventBody{Kind: KindNote, Tip: tipID(1), Text: "x"}
	for _, st := range []*State{s, plain} {
		if err := st.Apply(1, e, note); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Refuse(2, e, ReasonBadBody); err != nil {
		t.Fatal(err)
	}
	if want := []Refusal{{Index: 2, Editor: "bob", Reason: ReasonBadBody}}; !reflect.DeepEqual(s.Refused(), want) {
		t.Errorf("Refused() = %+v, want %+v", s.Refused(), want)
	}
	if s.Digest() == plain.Digest() {
		t.Error("a refused body left the digest unchanged")
	}
	if !reflect.DeepEqual(s.Tip(tipID(1)), plain.Tip(tipID(1))) {
		t.Error("a refused body changed a tip")
	}
	for _, c := range []struct {
		name   string
		index  int64
		e      *Event
		reason string
	}{
		{"same index", 2, e, ReasonBadBody},
		{"earlier index", 1, e, ReasonBadBody},
		{"no editor", 3, &Event{Day: "2026-03-14"}, ReasonBadBody},
		{"no reason", 3, e, ""},
	} {
		if err := s.Refuse(c.index, c.e, c.reason); err == nil {
			t.Errorf("Refuse(%s) succeeded", c.name)
		}
	}
	if err := s.Apply(2, e, note); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("Apply at a refused index = %v, want ErrOutOfOrder", err)
	}
}

// A triage with an assignee assigns the tip; one without leaves the
// assignment as it was (every triage before assignments existed); ""
// unassigns. A state without assignments encodes as before them, and a
// handover of tips is recorded with them.
func TestReplayAssignee(t *testing.T) {
	bob := newEditor(t, "bob")
	l := newTestLog(t)
	l.addBundle(1, []*crypto.EditorKey{testAlice, bob})
	l.addEvent(testAlice, &EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusReviewing, Assignee: ptr("bob")})
	sa := replay(t, l, testAlice.Identity, -1)
	if got := sa.Tip(tipID(1)).Assignee; got != "bob" {
		t.Fatalf("after an assignment, assignee %q, want bob", got)
	}
	if !bytes.Contains(sa.Marshal(), []byte(`"assignee":"bob"`)) {
		t.Errorf("the state's encoding does not hold the assignee: %s", sa.Marshal())
	}
	l.addEvent(bob, &EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusUseful, Tags: []string{"copper"}})
	if got := replay(t, l, bob.Identity, -1).Tip(tipID(1)); got.Assignee != "bob" || got.Status != StatusUseful {
		t.Fatalf("after a triage without an assignee, %+v, want bob still assigned", got)
	}
	l.addEvent(bob, &EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusUseful, Tags: []string{"copper"}, Assignee: ptr("")})
	sb := replay(t, l, bob.Identity, -1)
	if got := sb.Tip(tipID(1)).Assignee; got != "" {
		t.Fatalf("after unassigning, assignee %q", got)
	}
	if bytes.Contains(sb.Marshal(), []byte(`assignee`)) {
		t.Errorf("a state without an assignment encodes one: %s", sb.Marshal())
	}
	h := []HandedOverTip{{Tip: tipID(1), Ciphertext: [32]byte{1}, Sealed: [32]byte{2}, Length: 100}}
	i := l.addEvent(testAlice, &EventBody{Kind: KindHandover, To: "bob", Tips: h})
	sc := replay(t, l, testAlice.Identity, -1)
	if got := sc.Handovers(); len(got) != 1 || got[0].Index != i || !reflect.DeepEqual(got[0].Tips, h) || got[0].Indexes != nil {
		t.Errorf("Handovers() = %+v", got)
	}
	if bytes.Contains(sb.Marshal(), []byte(`"Tips"`)) {
		t.Errorf("a handover without tips encodes them: %s", sb.Marshal())
	}
}

// A triage body written before assignments existed (no assignee member)
// still opens, and means what it meant.
func TestTriageBeforeAssignments(t *testing.T) {
	const tip = `"AQIDBAUGBwgJCgsMDQ4PEA"`
	b, _, err := parseEventBody(pad(rawBody(`{"kind":"triage"}`, `{"tip":`+tip+`,"status":"new","tags":["a"],"note":"x"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if b.Assignee != nil {
		t.Fatalf("an old triage has assignee %q", *b.Assignee)
	}
	s := NewState()
	if err := s.Apply(1, &Event{Editor: "alice", Day: "2026-03-14"}, &EventBody{Kind: KindTriage, Tip: b.Tip, Status: StatusNew, Assignee: ptr("bob")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(2, &Event{Editor: "alice", Day: "2026-03-14"}, b); err != nil {
		t.Fatal(err)
	}
	if got := s.Tip(b.Tip); got.Assignee != "bob" || got.Status != StatusNew {
		t.Errorf("after an old triage: %+v", got)
	}
}
