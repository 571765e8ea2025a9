package newsdesk

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/protocol"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
)

// The tests of this file check what a Session promises: one login a run,
// the log replayed once and then event by event, a write that leaves the
// replica and the state up to date and cosigns its acknowledgement, and a
// sealed index that spares the next run the decryption and holds no
// plaintext.

// calls counts the requests the proxy of a logDesk relays, by method
// and path.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) count(method, path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[method+" "+path]
}

// countCalls makes the proxy count every request it relays.
func (d *logDesk) countCalls() *calls {
	c := &calls{n: map[string]int{}}
	f := func(_ http.ResponseWriter, r *http.Request) bool {
		c.mu.Lock()
		c.n[r.Method+" "+r.URL.Path]++
		c.mu.Unlock()
		return false
	}
	d.intercept.Store(&f)
	return c
}

// open opens a session on the desk's cache as nk's editor.
func (d *logDesk) open(t testing.TB, server string) *Session {
	t.Helper()
	// The server's clock, which starts at noon today: with the real one a
	// login the server dated noon looks expired from 12:14:30 UTC on, and
	// every call logs in again.
	s, err := OpenSession(context.Background(), SessionConfig{Cache: d.cache.Dir, Server: server, Key: d.nk.editor, Newsroom: d.nk.key.Verifier, Now: d.clock.now})
	if err != nil {
		t.Fatalf("OpenSession: %v", err)
	}
	return s
}

func closeOK(t testing.TB, s *Session) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestSessionNoteOneLogin: a note in a session opened on a synced cache
// costs one login, decrypts only the new event, and leaves the note in the
// replica and the state: an offline session shows it, decrypting nothing.
func TestSessionNoteOneLogin(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	rc := d.send(t, &crypto.Tip{Text: "trucks at night"})
	tip := rc.TipIDString()
	s := d.open(t, d.url)
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.Note(ctx, tip, "note "+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	closeOK(t, s)

	c := d.countCalls()
	s = d.open(t, d.url)
	if s.replay.decrypted != 0 {
		t.Errorf("opening a session decrypted %d bodies, want none (the sealed index holds them)", s.replay.decrypted)
	}
	i, err := s.Note(ctx, tip, "one login")
	if err != nil {
		t.Fatal(err)
	}
	if n := c.count(http.MethodPost, protocol.PathLogin); n != 1 {
		t.Errorf("a note made %d logins, want 1", n)
	}
	if n := c.count(http.MethodPost, protocol.PathEvent); n != 1 {
		t.Errorf("a note posted %d events, want 1", n)
	}
	if s.replay.decrypted != 1 {
		t.Errorf("a note decrypted %d bodies, want 1 (its own)", s.replay.decrypted)
	}
	ts := s.State().Tip(rc.TipID)
	if ts == nil || len(ts.Notes) != 6 || ts.Notes[5].Text != "one login" || ts.Notes[5].Index != i {
		t.Errorf("the session's state after the note = %+v, want six notes, the last at %d", ts, i)
	}
	closeOK(t, s)

	off := d.open(t, "")
	defer closeOK(t, off)
	if v := off.View(); v == nil || v.Tree.N <= i {
		t.Fatalf("the offline replica does not hold event %d", i)
	}
	if ts := off.State().Tip(rc.TipID); ts == nil || len(ts.Notes) != 6 {
		t.Errorf("offline state = %+v, want six notes", ts)
	}
	if off.replay.decrypted != 0 {
		t.Errorf("an offline session after the note decrypted %d bodies, want none", off.replay.decrypted)
	}
	if _, err := off.Note(ctx, tip, "offline"); !errors.Is(err, ErrOffline) {
		t.Errorf("Note offline = %v, want ErrOffline", err)
	}
}

// TestSessionWriteCosigns: a write sends the editor's cosignature of the
// checkpoint its acknowledgement verified, with no sync.
func TestSessionWriteCosigns(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	tip := d.send(t, &crypto.Tip{Text: "a tip"}).TipIDString()
	s := d.open(t, d.url)
	defer closeOK(t, s)
	if _, err := s.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	c := d.countCalls()
	i, err := s.Note(ctx, tip, "witnessed")
	if err != nil {
		t.Fatal(err)
	}
	if n := c.count(http.MethodGet, protocol.PathTips); n != 0 {
		t.Errorf("the note listed the tips %d times: a write is no sync", n)
	}
	size := s.View().Tree.N
	if size != i+1 {
		t.Fatalf("view of %d entries after event %d", size, i)
	}
	msg := d.get(t, protocol.PathCosigned+"/"+strconv.FormatInt(size, 10))
	cv, err := crypto.CosignatureVerifier(nk.editor.Public.Cosign)
	if err != nil {
		t.Fatal(err)
	}
	logV, err := note.NewVerifier(d.srv.LogKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(logV, cv)); err != nil {
		t.Errorf("GET /cosigned/%d = %q: %v; want alice's cosignature", size, msg, err)
	}
}

// TestSessionRenewsLogin: a login the server ended (here: expired) is
// renewed once, and the write goes through.
func TestSessionRenewsLogin(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	tip := d.send(t, &crypto.Tip{Text: "a tip"}).TipIDString()
	s := d.open(t, d.url)
	defer closeOK(t, s)
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c := d.countCalls()
	d.clock.advance(20 * time.Minute) // past the server's 15-minute sessions
	if _, err := s.Note(ctx, tip, "after the login expired"); err != nil {
		t.Fatalf("Note after the login expired: %v", err)
	}
	if n := c.count(http.MethodPost, protocol.PathLogin); n != 1 {
		t.Errorf("%d logins, want one renewal", n)
	}
}

// TestSessionSealedIndex: the sealed index lets the next run skip
// decryption; it holds no plaintext; one that does not open (tampered, or
// another key's), or that names a tree the replica does not hold, is
// ignored and everything is decrypted again, to the same state.
func TestSessionSealedIndex(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	tipText, noteText := marker("tip"), marker("note")
	rc := d.send(t, &crypto.Tip{Text: tipText, Attachments: []crypto.Attachment{{Name: "a.txt", Type: "text/plain", Data: []byte(marker("file"))}}})
	s := d.open(t, d.url)
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Triage(ctx, rc.TipIDString(), TriageChange{Status: audit.StatusUseful, AddTags: []string{"copper"}, Note: noteText}); err != nil {
		t.Fatal(err)
	}
	want := s.State().Marshal()
	wantTips, err := s.Tips()
	if err != nil {
		t.Fatal(err)
	}
	closeOK(t, s)
	fieldtiptest.AssertNoPlaintext(t, d.cache.Dir, tipText, noteText, "copper")

	reopen := func(name string, wantDecrypted bool) {
		t.Helper()
		s := d.open(t, "")
		defer closeOK(t, s)
		tips, err := s.Tips()
		if err != nil {
			t.Fatal(err)
		}
		if got := s.State().Marshal(); !bytes.Equal(got, want) {
			t.Errorf("%s: state %s, want %s", name, got, want)
		}
		if !slices.EqualFunc(tips, wantTips, func(a, b TipSummary) bool {
			return a.ID == b.ID && a.FirstLine == b.FirstLine && len(a.Attachments) == len(b.Attachments)
		}) {
			t.Errorf("%s: tips %+v, want %+v", name, tips, wantTips)
		}
		decrypted := s.replay.decrypted + s.tips.decrypted
		if wantDecrypted && decrypted != 2 {
			t.Errorf("%s: decrypted %d, want the event and the tip again", name, decrypted)
		}
		if !wantDecrypted && decrypted != 0 {
			t.Errorf("%s: decrypted %d, want nothing", name, decrypted)
		}
	}
	reopen("sealed index", false)

	path := filepath.Join(d.cache.Dir, snapshotFile)
	sealed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed[len(sealed)-1] ^= 1
	if err := os.WriteFile(path, sealed, 0o600); err != nil {
		t.Fatal(err)
	}
	reopen("tampered index", true)
	reopen("index written again", false)

	other, err := crypto.GenerateEditorKey("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := openSnapshot(mustRead(t, path), nk.editor)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := sealSnapshot(snap, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, foreign, 0o600); err != nil {
		t.Fatal(err)
	}
	reopen("another key's index", true)

	// An index of a tree the replica does not hold.
	snap.Log.Hash = bytes.Repeat([]byte{7}, 32)
	moved, err := sealSnapshot(snap, nk.editor)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, moved, 0o600); err != nil {
		t.Fatal(err)
	}
	s = d.open(t, "")
	if s.replay.decrypted != 1 {
		t.Errorf("an index of another tree: decrypted %d bodies, want 1", s.replay.decrypted)
	}
	closeOK(t, s)
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenSnapshotMalformed: a sealed index that is not one is refused
// with errSnapshot, never a panic.
func TestOpenSnapshotMalformed(t *testing.T) {
	nk := newTestNewsroom(t, true)
	good, err := sealSnapshot(&snapshot{}, nk.editor)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"header only", []byte(snapshotHeader + "\n")},
		{"other header", append([]byte("fieldtip/newsdesk-index/v2\n"), good[len(snapshotHeader)+1:]...)},
		{"short nonce", good[:len(snapshotHeader)+1+10]},
		{"cut by one", good[:len(good)-1]},
		{"byte appended", append(bytes.Clone(good), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := openSnapshot(tc.in, nk.editor); !errors.Is(err, errSnapshot) {
				t.Errorf("openSnapshot = %v, want errSnapshot", err)
			}
		})
	}
	if _, err := openSnapshot(good, nk.editor); err != nil {
		t.Errorf("openSnapshot(good) = %v", err)
	}
}

// FuzzOpenSnapshot: a sealed index either opens and seals again to one
// that opens to the same snapshot, or is errSnapshot.
func FuzzOpenSnapshot(f *testing.F) {
	nk := newTestNewsroom(f, true)
	snap := &snapshot{Bad: []int64{3}, Warnings: []string{"w"}, Tips: []TipSummary{{ID: "x", FirstLine: "l", Attachments: []AttachmentInfo{}}}}
	snap.Log.N, snap.Log.Hash = 4, make([]byte, 32)
	good, err := sealSnapshot(snap, nk.editor)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(snapshotHeader + "\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := openSnapshot(in, nk.editor)
		if err != nil {
			if !errors.Is(err, errSnapshot) {
				t.Fatalf("openSnapshot = %v, want errSnapshot", err)
			}
			return
		}
		again, err := sealSnapshot(got, nk.editor)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := openSnapshot(again, nk.editor); err != nil || back.Log.N != got.Log.N || len(back.Tips) != len(got.Tips) {
			t.Fatalf("sealed again: %v", err)
		}
	})
}

// TestSessionTriageChangesOnlyWhatIsGiven: a status alone keeps the tags;
// tags are added and removed; a note alone keeps both.
func TestSessionTriageChangesOnlyWhatIsGiven(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	rc := d.send(t, &crypto.Tip{Text: "a tip"})
	tip := rc.TipIDString()
	s := d.open(t, d.url)
	defer closeOK(t, s)
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		ch         TriageChange
		status     audit.Status
		tags       []string
		notes      int
		wantErrIs  error
		wantErrSub string
	}{
		{ch: TriageChange{AddTags: []string{"copper", "hyesan"}}, status: audit.StatusNew, tags: []string{"copper", "hyesan"}},
		{ch: TriageChange{Status: audit.StatusReviewing}, status: audit.StatusReviewing, tags: []string{"copper", "hyesan"}},
		{ch: TriageChange{RemoveTags: []string{"hyesan"}, AddTags: []string{"zinc"}}, status: audit.StatusReviewing, tags: []string{"copper", "zinc"}},
		{ch: TriageChange{Note: "checked"}, status: audit.StatusReviewing, tags: []string{"copper", "zinc"}, notes: 1},
		{ch: TriageChange{Status: audit.StatusUseful, SetTags: []string{"river"}, ReplaceTags: true}, status: audit.StatusUseful, tags: []string{"river"}, notes: 1},
		{ch: TriageChange{ReplaceTags: true}, status: audit.StatusUseful, tags: nil, notes: 1},
		{ch: TriageChange{}, wantErrIs: ErrNoTriageChange},
		{ch: TriageChange{Status: "maybe"}, wantErrSub: `status "maybe"`},
	}
	for n, st := range steps {
		_, err := s.Triage(ctx, tip, st.ch)
		if st.wantErrIs != nil || st.wantErrSub != "" {
			if err == nil || (st.wantErrIs != nil && !errors.Is(err, st.wantErrIs)) || !strings.Contains(err.Error(), st.wantErrSub) {
				t.Errorf("step %d: Triage(%+v) = %v, want an error", n, st.ch, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: Triage(%+v): %v", n, st.ch, err)
		}
		ts := s.State().Tip(rc.TipID)
		if ts == nil || ts.Status != st.status || !slices.Equal(ts.Tags, st.tags) || len(ts.Notes) != st.notes {
			t.Errorf("step %d: after Triage(%+v) the tip is %+v, want %s %q with %d note(s)", n, st.ch, ts, st.status, st.tags, st.notes)
		}
	}
}

// TestSessionReadDeletedTip: reading a tip the log deletes says so, who
// deleted it and when.
func TestSessionReadDeletedTip(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newLogDesk(t, nk, nil, nil)
	ctx := context.Background()
	rc := d.send(t, &crypto.Tip{Text: "spam"})
	tip := rc.TipIDString()
	s := d.open(t, d.url)
	defer closeOK(t, s)
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Triage(ctx, tip, TriageChange{Status: audit.StatusSpam}); err != nil {
		t.Fatal(err)
	}
	i, _, err := s.Delete(ctx, tip)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.OpenTip(tip)
	if !errors.Is(err, ErrTipDeleted) || !strings.Contains(err.Error(), "by alice on "+rc.Day+" (event "+strconv.FormatInt(i, 10)+")") {
		t.Errorf("OpenTip of a deleted tip = %v, want ErrTipDeleted naming alice, the day and event %d", err, i)
	}
}

// TestHintedIdentity: the hinted identity opens what age opens, with one
// unwrap a file once it has learnt the editor's place.
func TestHintedIdentity(t *testing.T) {
	var keys []*crypto.EditorKey
	var rs []age.Recipient
	for _, l := range []string{"alice", "bob", "carol"} {
		k, err := crypto.GenerateEditorKey(l, true)
		if err != nil {
			t.Fatal(err)
		}
		r, err := crypto.ParseRecipient(k.Public.Recipient)
		if err != nil {
			t.Fatal(err)
		}
		keys, rs = append(keys, k), append(rs, r)
	}
	seal := func(rs ...age.Recipient) []byte {
		ct, err := crypto.Seal(&crypto.Tip{Text: "x"}, rs, protocol.FrameSize)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	counting := &countingIdentity{id: keys[2].Identity}
	h := newHintedIdentity(counting)
	for n := range 3 {
		counting.unwraps = 0
		if tip, err := crypto.Open(seal(rs...), h); err != nil || tip.Text != "x" {
			t.Fatalf("open %d: %v", n, err)
		}
		want := 1 // the hint
		if n == 0 {
			want = 3 // carol is third
		}
		if counting.unwraps != want {
			t.Errorf("open %d: %d unwraps, want %d", n, counting.unwraps, want)
		}
	}
	// Another order: still opens, and learns the new place.
	if _, err := crypto.Open(seal(rs[2], rs[0], rs[1]), h); err != nil {
		t.Fatal(err)
	}
	if h.hint.Load() != 0 {
		t.Errorf("hint %d after carol came first, want 0", h.hint.Load())
	}
	// Not sealed to carol: the error age gives.
	_, err := crypto.Open(seal(rs[0], rs[1]), h)
	var noMatch *age.NoIdentityMatchError
	if !errors.As(err, &noMatch) {
		t.Errorf("open of a file not sealed to carol = %v, want *age.NoIdentityMatchError", err)
	}
}

// countingIdentity counts the stanzas an identity is asked to unwrap.
type countingIdentity struct {
	id      age.Identity
	unwraps int
}

func (c *countingIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	c.unwraps += len(stanzas)
	return c.id.Unwrap(stanzas)
}
