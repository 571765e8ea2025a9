package newsdesk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/internal/testkit/sourcekit"
	"fieldtip/protocol"
	"fieldtip/server"
	"fieldtip/storage"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The tests of this file write editorial events through a real server
// (SQLite file, log key, loopback TCP) from real editors' caches, with
// real age and signing keys, and check what every editor replays.

// evRoom is a newsroom key and three editors, alice, bob and carol, who
// are in the bundles a test signs.
type evRoom struct {
	key               *crypto.SignerKey
	alice, bob, carol *crypto.EditorKey
}

// newEvRoom makes the newsroom; classic selects X25519 age keys (fast),
// otherwise the hybrid post-quantum default.
func newEvRoom(t testing.TB, classic bool) *evRoom {
	t.Helper()
	n := fieldtiptest.NewNewsroom(t, classic)
	r := &evRoom{key: n.Key, alice: n.Editor}
	for _, p := range []struct {
		k     **crypto.EditorKey
		label string
	}{{&r.bob, "bob"}, {&r.carol, "carol"}} {
		k, err := crypto.GenerateEditorKey(p.label, classic)
		if err != nil {
			t.Fatal(err)
		}
		*p.k = k
	}
	return r
}

// bundle signs a bundle of version naming the log key and listing
// editors, revoking revoked (sorted), expiring in a week (test servers
// move their clock a day).
func (r *evRoom) bundle(t testing.TB, version int64, logKey string, editors []*crypto.EditorKey, revoked ...string) []byte {
	t.Helper()
	b := &crypto.Bundle{
		Newsroom: r.key.Verifier,
		Version:  version,
		Expires:  time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second),
		Log:      logKey,
		Policy:   crypto.DefaultPolicy,
		Revoked:  revoked,
	}
	for _, e := range editors {
		b.Editors = append(b.Editors, e.Public)
	}
	msg, err := crypto.SignBundle(b, r.key.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// evClock is a server clock a test moves: real time plus an offset,
// starting at noon UTC today so that a day's move never lands near
// midnight.
type evClock struct{ offset atomic.Int64 }

func newEvClock() *evClock {
	now := time.Now().UTC()
	c := &evClock{}
	c.offset.Store(int64(time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, time.UTC).Sub(now)))
	return c
}

func (c *evClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *evClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// evDesk is a real server with bundle version 1 in force, on a clock the
// test moves, and a source configured for it.
type evDesk struct {
	room    *evRoom
	srv     *testServer
	src     *sourcekit.Phone
	dataDir string
	clock   *evClock
	opts    SyncOptions
}

// newEvDesk starts a server whose bundle 1 lists editors, with receipts
// trees of 8 leaves.
func newEvDesk(t testing.TB, room *evRoom, editors ...*crypto.EditorKey) *evDesk {
	t.Helper()
	d := &evDesk{room: room, clock: newEvClock(), opts: SyncOptions{Newsroom: room.key.Verifier}}
	d.srv = startServer(t, func(log string) []byte { return room.bundle(t, 1, log, editors) }, serverOptions{Config: func(c *server.Config) {
		c.Now = d.clock.now
		c.ReceiptsTreeSize = 8
		d.dataDir = c.DataDir
	}})
	d.src = sourcekit.New(t, d.srv.URL, room.key.Verifier, sourcekit.Options{})
	return d
}

// newCache returns an empty editor's cache.
func (d *evDesk) newCache(t testing.TB) *Cache {
	return &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
}

// send sends a tip of text as a source and returns its receipt.
func (d *evDesk) send(t testing.TB, text string) *crypto.Receipt {
	t.Helper()
	res, err := d.src.Send(context.Background(), &crypto.Tip{Text: text})
	if err != nil {
		t.Fatalf("sending a tip: %v", err)
	}
	return res.Receipt
}

// publish puts a newer bundle in force (POST /bundle).
func (d *evDesk) publish(t testing.TB, version int64, editors []*crypto.EditorKey, revoked ...string) {
	t.Helper()
	if err := PublishBundle(context.Background(), d.srv.URL, d.room.bundle(t, version, d.srv.LogKey.Verifier, editors, revoked...)); err != nil {
		t.Fatalf("PublishBundle(version %d): %v", version, err)
	}
}

// logSize returns the size of the server's checkpoint, verified with its
// log key.
func (d *evDesk) logSize(t testing.TB) int64 {
	t.Helper()
	resp, err := http.Get(d.srv.URL + protocol.PathCheckpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", protocol.PathCheckpoint, resp.Status, err)
	}
	v, err := note.NewVerifier(d.srv.LogKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := torchwood.VerifyCheckpoint(b, torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(v.Name()), torchwood.SingleVerifierPolicy(v)))
	if err != nil {
		t.Fatalf("the server's checkpoint: %v", err)
	}
	return cp.N
}

// syncedSession opens a session on c as key's editor and syncs it; the
// session is closed when the test ends.
func syncedSession(t testing.TB, c *Cache, url string, key *crypto.EditorKey, opts SyncOptions) *Session {
	t.Helper()
	s, err := OpenSession(context.Background(), SessionConfig{Cache: c.Dir, Server: url, Key: key, Newsroom: opts.Newsroom, NoCosign: opts.NoCosign})
	if err != nil {
		t.Fatalf("OpenSession as %s: %v", key.Label, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if _, err := s.Sync(context.Background()); err != nil {
		t.Fatalf("Sync as %s: %v", key.Label, err)
	}
	return s
}

// replay syncs c as key's editor and replays the log.
func (d *evDesk) replay(t testing.TB, c *Cache, key *crypto.EditorKey) *Editorial {
	t.Helper()
	v, err := c.SyncLog(context.Background(), d.srv.URL, key, d.opts)
	if err != nil {
		t.Fatalf("SyncLog as %s: %v", key.Label, err)
	}
	ed, err := Replay(v, key)
	if err != nil {
		t.Fatalf("Replay as %s: %v", key.Label, err)
	}
	return ed
}

// postRaw posts one event with the wire framing of POST /event (docs/
// log.md: a 2-byte big-endian length, the entry, the body) over the
// session r and returns the server's refusal, failing t if it accepted.
func postRaw(t testing.TB, r *Remote, entry, body []byte) *protocol.Error {
	t.Helper()
	req := binary.BigEndian.AppendUint16(nil, uint16(len(entry)))
	req = append(append(req, entry...), body...)
	_, err := r.raw(context.Background(), http.MethodPost, protocol.PathEvent, req, maxProof)
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("POST /event = %v, want a refusal", err)
	}
	return pe
}

// marker returns a unique string that cannot occur by chance in a file.
func marker(kind string) string { return kind + "-marker-" + rand.Text() }

// noteOn is a note body, written with WriteEvent directly (bypassing
// Note's local checks).
func noteOn(rc *crypto.Receipt, text string) *audit.EventBody {
	return &audit.EventBody{Kind: audit.KindNote, Tip: rc.TipID, Text: text}
}

// deleteOf is a delete body, written with WriteEvent directly (bypassing
// Delete's policy check).
func deleteOf(rc *crypto.Receipt) *audit.EventBody {
	return &audit.EventBody{Kind: audit.KindDelete, Tip: rc.TipID, Ciphertext: rc.SHA256}
}

// TestEventsTwoEditors: alice and bob, each with a cache of their own,
// triage, note and delete tips in turn, and log three events that cannot
// apply (a delete of a tip nobody rejected, a note on a deleted tip, a
// second delete). Both replay the log to the same state, byte for byte,
// refusing the same three events for the same reasons; each drops from
// its cache the tip the other deleted; neither cache holds a note, a tag
// or a tip's text.
func TestEventsTwoEditors(t *testing.T) {
	room := newEvRoom(t, true)
	d := newEvDesk(t, room, room.alice, room.bob)
	ctx := context.Background()
	url, opts := d.srv.URL, d.opts
	alice, bob := d.newCache(t), d.newCache(t)

	tipTexts := []string{marker("tip1"), marker("tip2"), marker("tip3")}
	var tips []*crypto.Receipt
	for _, text := range tipTexts {
		tips = append(tips, d.send(t, text))
	}
	t1, t2, t3 := tips[0], tips[1], tips[2]
	tag1, tag2 := marker("tag"), marker("tag")
	noteA1, noteB1, noteB2, noteA2, noteLate := marker("noteA1"), marker("noteB1"), marker("noteB2"), marker("noteA2"), marker("noteLate")

	step := func(what string, _ int64, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	i, err := alice.Triage(ctx, url, room.alice, t1.TipIDString(), audit.StatusUseful, []string{tag2, tag1}, noteA1, opts)
	step("alice triages tip 1", i, err)
	i, err = bob.Note(ctx, url, room.bob, t1.TipIDString(), noteB1, opts)
	step("bob notes tip 1", i, err)
	i, err = bob.Triage(ctx, url, room.bob, t2.TipIDString(), audit.StatusRejected, nil, noteB2, opts)
	step("bob rejects tip 2", i, err)
	i, err = alice.Note(ctx, url, room.alice, t2.TipIDString(), noteA2, opts)
	step("alice notes tip 2", i, err)
	badDelete, err := bob.WriteEvent(ctx, url, room.bob, deleteOf(t3), opts)
	step("bob logs a delete of tip 3, which nobody rejected", badDelete, err)
	i, pending, err := alice.Delete(ctx, url, room.alice, t2.TipIDString(), opts)
	step("alice deletes tip 2", i, err)
	if !pending {
		t.Error("alice's delete of a tip of today: want it pending its receipts root")
	}
	size := d.logSize(t)
	if _, err := bob.Note(ctx, url, room.bob, t2.TipIDString(), noteLate, opts); !errors.Is(err, ErrTipDeleted) {
		t.Fatalf("bob's Note on the deleted tip 2 = %v, want ErrTipDeleted", err)
	}
	if got := d.logSize(t); got != size {
		t.Fatalf("a Note refused locally changed the log size from %d to %d", size, got)
	}
	lateNote, err := bob.WriteEvent(ctx, url, room.bob, noteOn(t2, noteLate), opts)
	step("bob logs a note on the deleted tip 2", lateNote, err)
	i, err = alice.Triage(ctx, url, room.alice, t3.TipIDString(), audit.StatusSpam, []string{tag1}, "", opts)
	step("alice marks tip 3 as spam", i, err)
	i, _, err = bob.Delete(ctx, url, room.bob, t3.TipIDString(), opts)
	step("bob deletes tip 3", i, err)
	secondDelete, err := alice.WriteEvent(ctx, url, room.alice, deleteOf(t3), opts)
	step("alice logs a second delete of tip 3", secondDelete, err)

	edA, edB := d.replay(t, alice, room.alice), d.replay(t, bob, room.bob)
	if a, b := edA.State.Marshal(), edB.State.Marshal(); !bytes.Equal(a, b) {
		t.Fatalf("alice and bob replay different states:\nalice %s\nbob   %s", a, b)
	}
	if edA.State.Digest() != edB.State.Digest() {
		t.Error("same Marshal, different Digest")
	}
	if len(edA.Unreadable)+len(edB.Unreadable)+len(edA.Warnings)+len(edB.Warnings) != 0 {
		t.Errorf("unreadable %v %v, warnings %q %q; want none", edA.Unreadable, edB.Unreadable, edA.Warnings, edB.Warnings)
	}
	wantRefused := []audit.Refusal{
		{Index: badDelete, Editor: "bob", Reason: audit.ReasonDeletePolicy},
		{Index: lateNote, Editor: "bob", Reason: audit.ReasonDeleted},
		{Index: secondDelete, Editor: "alice", Reason: audit.ReasonAlreadyDelete},
	}
	if got := edA.State.Refused(); !slices.Equal(got, wantRefused) {
		t.Errorf("alice's refused events = %+v, want %+v", got, wantRefused)
	}
	if got := edB.State.Refused(); !slices.Equal(got, wantRefused) {
		t.Errorf("bob's refused events = %+v, want %+v", got, wantRefused)
	}
	if len(edA.Events) != 10 {
		t.Errorf("alice opened %d events, want 10", len(edA.Events))
	}
	st := edA.State
	ts1 := st.Tip(t1.TipID)
	if ts1 == nil || ts1.Status != audit.StatusUseful || !slices.Equal(ts1.Tags, slices.Sorted(slices.Values([]string{tag1, tag2}))) ||
		len(ts1.Notes) != 2 || ts1.Notes[0].Text != noteA1 || ts1.Notes[0].Editor != "alice" || ts1.Notes[1].Text != noteB1 || ts1.Notes[1].Editor != "bob" {
		t.Errorf("tip 1 = %+v, want useful, both tags, alice's then bob's note", ts1)
	}
	for n, rc := range []*crypto.Receipt{t2, t3} {
		if ts := st.Tip(rc.TipID); ts == nil || !ts.Deleted || len(ts.Notes) != 0 || len(ts.Tags) != 0 {
			t.Errorf("tip %d = %+v, want deleted, without notes or tags", n+2, ts)
		}
	}

	// Each sync dropped the tip the other deleted (its own left at
	// Delete); DropDeleted finds nothing more.
	for _, c := range []struct {
		cache *Cache
		ed    *Editorial
	}{{alice, edA}, {bob, edB}} {
		dropped, err := c.cache.DropDeleted(c.ed.State)
		if err != nil || len(dropped) != 0 {
			t.Errorf("DropDeleted after a sync = %q, %v; want nothing", dropped, err)
		}
		es, err := c.cache.List()
		if err != nil || len(es) != 1 || es[0].ID != t1.TipIDString() {
			t.Errorf("cache after DropDeleted: %d tips (%v), want tip 1 only", len(es), err)
		}
	}

	// Nothing plaintext on disk, in either cache.
	secrets := append(slices.Clone(tipTexts), tag1, tag2, noteA1, noteB1, noteB2, noteA2, noteLate)
	fieldtiptest.AssertNoPlaintext(t, alice.Dir, secrets...)
	fieldtiptest.AssertNoPlaintext(t, bob.Dir, secrets...)
}

// TestEventsReplayedAndConflict: the server refuses the exact bytes of a
// logged event sent again (replayed, naming its index), and events signed
// over a base that is not a prefix of its log (conflict, naming its size);
// none changes the log. A writer whose view has a wrong root is refused,
// syncs and writes once.
func TestEventsReplayedAndConflict(t *testing.T) {
	room := newEvRoom(t, true)
	d := newEvDesk(t, room, room.alice)
	ctx := context.Background()
	c := d.newCache(t)
	rc := d.send(t, marker("tip"))
	index, err := c.Note(ctx, d.srv.URL, room.alice, rc.TipIDString(), "first look", d.opts)
	if err != nil {
		t.Fatalf("Note: %v", err)
	}
	v, err := c.SyncLog(ctx, d.srv.URL, room.alice, d.opts)
	if err != nil {
		t.Fatal(err)
	}
	entry := v.Entries[index]
	body, err := v.Body(index)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Login(ctx, d.srv.URL, room.alice)
	if err != nil {
		t.Fatal(err)
	}
	size := d.logSize(t)
	if size != v.Tree.N {
		t.Fatalf("log size %d, view %d", size, v.Tree.N)
	}

	pe := postRaw(t, r, entry, body)
	if pe.Code != protocol.CodeReplayed || pe.Index != index {
		t.Errorf("the logged event sent again = %v, want replayed naming index %d", pe, index)
	}
	ev, err := audit.OpenEvent(entry, v.BundleAt(index))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.PostEvent(ctx, &LogView{Tree: ev.Base, Bundle: v.Bundle}, &SignedEvent{Entry: entry, Body: body, Event: ev})
	var re *ReplayedError
	if !errors.As(err, &re) || re.Index != index {
		t.Errorf("PostEvent of the logged event = %v, want a *ReplayedError at %d", err, index)
	}

	// Events over bases that are not prefixes of the log.
	signer, err := room.alice.Signer()
	if err != nil {
		t.Fatal(err)
	}
	wrongRoot := v.Tree
	wrongRoot.Hash[0] ^= 1
	for _, base := range []tlog.Tree{
		wrongRoot,
		{N: v.Tree.N + 1, Hash: v.Tree.Hash},
		{N: v.Tree.N + 100, Hash: v.Tree.Hash},
	} {
		sealed, err := audit.SealEventBody(noteOn(rc, "over a base the log never had"), v.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := sealed.Event(crypto.Day(time.Now()), base)
		if err != nil {
			t.Fatal(err)
		}
		entry, err := audit.SignEvent(ev, signer)
		if err != nil {
			t.Fatal(err)
		}
		pe := postRaw(t, r, entry, sealed.Ciphertext)
		if pe.Code != protocol.CodeConflict || pe.Offset != size {
			t.Errorf("event over base (%d, %s) = %v, want conflict at offset %d", base.N, base.Hash, pe, size)
		}
	}
	if got := d.logSize(t); got != size {
		t.Fatalf("refused events changed the log size from %d to %d", size, got)
	}

	// A writer signing over a root the log never had: refused with
	// conflict, it syncs and signs again, and logs the event once.
	w := syncedSession(t, c, d.srv.URL, room.alice, d.opts)
	w.testOnlySignOver = func(attempt int, v *LogView) *LogView {
		if attempt > 0 {
			return v
		}
		off := *v
		off.Tree = wrongRoot
		return &off
	}
	got, err := w.Write(ctx, noteOn(rc, "after a conflict"))
	if err != nil || got != size {
		t.Fatalf("Write over a wrong root = %d, %v; want index %d after a resync", got, err, size)
	}
	if n := d.logSize(t); n != size+1 {
		t.Errorf("log size %d after one write, want %d", n, size+1)
	}
}

// TestEventsRevokedEditor: once a bundle revokes bob, his new events are
// refused (his session ends and he cannot log in again), and the log does
// not change; alice writes on, even from a writer synced under the older
// bundle; bob's earlier events still count.
func TestEventsRevokedEditor(t *testing.T) {
	room := newEvRoom(t, true)
	d := newEvDesk(t, room, room.alice, room.bob)
	ctx := context.Background()
	alice, bob := d.newCache(t), d.newCache(t)
	rc := d.send(t, marker("tip"))
	bobsNote := marker("bob")
	if _, err := bob.Note(ctx, d.srv.URL, room.bob, rc.TipIDString(), bobsNote, d.opts); err != nil {
		t.Fatalf("bob's Note before the revocation: %v", err)
	}
	bw := syncedSession(t, bob, d.srv.URL, room.bob, d.opts)
	bobsView := bw.View()
	early, err := SignEvent(bobsView, room.bob, noteOn(rc, "signed before the revocation"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bobsRemote, err := bw.Remote(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aw := syncedSession(t, alice, d.srv.URL, room.alice, d.opts)

	d.publish(t, 2, []*crypto.EditorKey{room.alice}, "bob")
	size := d.logSize(t)

	var pe *protocol.Error
	_, err = bob.WriteEvent(ctx, d.srv.URL, room.bob, noteOn(rc, "after the revocation"), d.opts)
	if !errors.Is(err, ErrNotAnEditor) || !strings.Contains(err.Error(), "bundle version 2 revokes bob") {
		t.Errorf("bob's WriteEvent after the revocation = %v, want ErrNotAnEditor saying bundle 2 revokes him", err)
	}
	if _, err := bobsRemote.PostEvent(ctx, bobsView, early); !errors.As(err, &pe) || pe.Code != protocol.CodeUnauthorized {
		t.Errorf("bob's event over his old session = %v, want unauthorized", err)
	}
	if _, err := bw.Write(ctx, noteOn(rc, "from bob's old writer")); err == nil {
		t.Error("bob's old writer logged an event after the revocation")
	}
	if got := d.logSize(t); got != size {
		t.Fatalf("bob's refused events changed the log size from %d to %d", size, got)
	}

	// alice's writer was synced under bundle 1: stale_bundle, then a sync
	// and an event under bundle 2.
	i, err := aw.Write(ctx, noteOn(rc, "alice, after the revocation"))
	if err != nil {
		t.Fatalf("alice's Write from before the revocation: %v", err)
	}
	if aw.View().Bundle.Version != 2 || i != size {
		t.Errorf("alice's event at %d under bundle %d, want %d under 2", i, aw.View().Bundle.Version, size)
	}
	if _, err := alice.Note(ctx, d.srv.URL, room.alice, rc.TipIDString(), "alice again", d.opts); err != nil {
		t.Fatalf("alice's Note after the revocation: %v", err)
	}
	ed := d.replay(t, alice, room.alice)
	ts := ed.State.Tip(rc.TipID)
	if ts == nil || len(ts.Notes) != 3 || ts.Notes[0].Editor != "bob" || ts.Notes[0].Text != bobsNote {
		t.Errorf("the tip after the revocation = %+v, want bob's note then alice's two", ts)
	}
	if len(ed.State.Refused()) != 0 {
		t.Errorf("refused %+v, want none", ed.State.Refused())
	}
}

// TestEventsHandover (hybrid keys): carol, added by bundle 2, cannot read
// the events from before and replays another state; after alice hands
// them over she replays alice's state byte for byte; a second handover
// hands nothing over.
func TestEventsHandover(t *testing.T) {
	room := newEvRoom(t, false)
	d := newEvDesk(t, room, room.alice, room.bob)
	ctx := context.Background()
	url, opts := d.srv.URL, d.opts
	alice, bob, carol := d.newCache(t), d.newCache(t), d.newCache(t)
	t1, t2 := d.send(t, marker("tip1")), d.send(t, marker("tip2"))
	secrets := []string{marker("tag"), marker("note"), marker("note"), marker("note")}

	var before []int64
	add := func(i int64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, i)
	}
	add(alice.Triage(ctx, url, room.alice, t1.TipIDString(), audit.StatusUseful, []string{secrets[0]}, secrets[1], opts))
	add(bob.Note(ctx, url, room.bob, t1.TipIDString(), secrets[2], opts))
	add(bob.Triage(ctx, url, room.bob, t2.TipIDString(), audit.StatusRejected, nil, "", opts))
	i, _, err := alice.Delete(ctx, url, room.alice, t2.TipIDString(), opts)
	add(i, err)
	add(bob.WriteEvent(ctx, url, room.bob, noteOn(t2, secrets[3]), opts)) // refused: deleted

	d.publish(t, 2, []*crypto.EditorKey{room.alice, room.bob, room.carol})
	if _, err := carol.Note(ctx, url, room.carol, t1.TipIDString(), "carol's first", opts); err != nil {
		t.Fatalf("carol's Note: %v", err)
	}
	edC := d.replay(t, carol, room.carol)
	if !slices.Equal(edC.Unreadable, before) {
		t.Errorf("carol's unreadable events = %v, want %v", edC.Unreadable, before)
	}
	edA := d.replay(t, alice, room.alice)
	if bytes.Equal(edC.State.Marshal(), edA.State.Marshal()) {
		t.Fatal("carol replays alice's state before any handover")
	}

	if _, err := alice.Handover(ctx, url, room.alice, "alice", opts); err == nil {
		t.Error("a handover to oneself was logged")
	}
	if _, err := alice.Handover(ctx, url, room.alice, "dave", opts); err == nil {
		t.Error("a handover to an editor not in the bundle was logged")
	}
	hs, err := alice.Handover(ctx, url, room.alice, "carol", opts)
	if err != nil || len(hs) != 1 {
		t.Fatalf("Handover = %v, %v; want one event", hs, err)
	}
	edA, edB, edC := d.replay(t, alice, room.alice), d.replay(t, bob, room.bob), d.replay(t, carol, room.carol)
	if a, c := edA.State.Marshal(), edC.State.Marshal(); !bytes.Equal(a, c) {
		t.Fatalf("after the handover, carol's state differs from alice's:\nalice %s\ncarol %s", a, c)
	}
	if !bytes.Equal(edA.State.Marshal(), edB.State.Marshal()) {
		t.Error("bob's state differs from alice's")
	}
	if len(edC.Unreadable) != 0 || len(edC.Warnings) != 0 {
		t.Errorf("carol after the handover: unreadable %v, warnings %q", edC.Unreadable, edC.Warnings)
	}
	hr := edC.State.Handovers()
	if len(hr) != 1 || hr[0].Index != hs[0] || hr[0].Editor != "alice" || hr[0].To != "carol" || !slices.Equal(hr[0].Indexes, before) {
		t.Errorf("handovers = %+v, want alice's to carol of %v", hr, before)
	}
	for _, o := range edC.Events {
		if slices.Contains(before, o.Index) != (o.Via != nil) {
			t.Errorf("carol's event %d: via a handover %v", o.Index, o.Via != nil)
		}
	}
	size := d.logSize(t)
	if again, err := alice.Handover(ctx, url, room.alice, "carol", opts); err != nil || len(again) != 0 {
		t.Errorf("a second Handover = %v, %v; want nothing handed over", again, err)
	}
	if again, err := bob.Handover(ctx, url, room.bob, "carol", opts); err != nil || len(again) != 0 {
		t.Errorf("bob's Handover after alice's = %v, %v; want nothing handed over", again, err)
	}
	if got := d.logSize(t); got != size {
		t.Errorf("handovers of nothing changed the log size from %d to %d", size, got)
	}
	for _, c := range []*Cache{alice, bob, carol} {
		fieldtiptest.AssertNoPlaintext(t, c.Dir, secrets...)
	}
}

// TestEventsHandoverRekeyed: carol, re-keyed by bundle 3 (same label, a
// new key, as after a lost laptop), cannot open what was sealed or handed
// over to her old key; a handover gives her all of it, and she replays
// alice's state without warnings.
func TestEventsHandoverRekeyed(t *testing.T) {
	room := newEvRoom(t, true)
	d := newEvDesk(t, room, room.alice, room.bob)
	ctx := context.Background()
	url, opts := d.srv.URL, d.opts
	alice := d.newCache(t)
	t1 := d.send(t, marker("tip"))
	var before []int64
	add := func(i int64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, i)
	}
	add(alice.Triage(ctx, url, room.alice, t1.TipIDString(), audit.StatusUseful, nil, "before carol", opts))
	d.publish(t, 2, []*crypto.EditorKey{room.alice, room.bob, room.carol})
	add(alice.Note(ctx, url, room.alice, t1.TipIDString(), "sealed to carol's first key", opts))
	hs, err := alice.Handover(ctx, url, room.alice, "carol", opts)
	if err != nil || len(hs) != 1 {
		t.Fatalf("Handover to carol's first key = %v, %v", hs, err)
	}
	before = append(before, hs[0])

	newKey, err := crypto.GenerateEditorKey("carol", true)
	if err != nil {
		t.Fatal(err)
	}
	d.publish(t, 3, []*crypto.EditorKey{room.alice, room.bob, newKey})
	carol := d.newCache(t)
	edC := d.replay(t, carol, newKey)
	if !slices.Equal(edC.Unreadable, before) || len(edC.Warnings) != 0 {
		t.Errorf("re-keyed carol: unreadable %v, warnings %q; want %v and none", edC.Unreadable, edC.Warnings, before)
	}
	hs, err = alice.Handover(ctx, url, room.alice, "carol", opts)
	if err != nil || len(hs) != 1 {
		t.Fatalf("Handover to carol's new key = %v, %v; want one event", hs, err)
	}
	edA, edC := d.replay(t, alice, room.alice), d.replay(t, carol, newKey)
	if a, c := edA.State.Marshal(), edC.State.Marshal(); !bytes.Equal(a, c) {
		t.Errorf("re-keyed carol's state differs from alice's:\nalice %s\ncarol %s", a, c)
	}
	if len(edC.Unreadable) != 0 || len(edC.Warnings) != 0 {
		t.Errorf("re-keyed carol after the handover: unreadable %v, warnings %q", edC.Unreadable, edC.Warnings)
	}
}

// dbHolds reports which of the server's database file and WAL hold any
// 64-byte piece (at 64-byte steps) of secret.
func (d *evDesk) dbHolds(t testing.TB, secret []byte) []string {
	t.Helper()
	var where []string
	for _, name := range []string{"fieldtip.db", "fieldtip.db-wal"} {
		b, err := os.ReadFile(filepath.Join(d.dataDir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+64 <= len(secret); i += 64 {
			if bytes.Contains(b, secret[i:i+64]) {
				where = append(where, name)
				break
			}
		}
	}
	return where
}

// TestEventsDelete: only a tip triaged rejected or spam can be deleted;
// on the tip's own day the server answers pending, serves and lists it no
// more, and leaves the bytes until the purge after the day's receipts
// root, which takes them out of the database and its WAL; after the root
// a deletion is immediate. The deleted tip leaves the cache; triage marks
// follow the last triage.
func TestEventsDelete(t *testing.T) {
	room := newEvRoom(t, true)
	d := newEvDesk(t, room, room.alice)
	ctx := context.Background()
	url, opts, key := d.srv.URL, d.opts, room.alice
	c := d.newCache(t)
	texts := []string{marker("victim"), marker("kept"), marker("later")}
	victim, kept, later := d.send(t, texts[0]), d.send(t, texts[1]), d.send(t, texts[2])
	if _, err := c.Pull(ctx, url, key, PullOptions{Newsroom: opts.Newsroom}); err != nil {
		t.Fatal(err)
	}
	day := crypto.Day(d.clock.now())
	mark := func(rc *crypto.Receipt) string {
		t.Helper()
		tp, err := d.srv.Store.TipPeriodOf(ctx, rc.TipID)
		if err != nil {
			t.Fatalf("TipPeriodOf: %v", err)
		}
		return tp.RejectedDay
	}
	triage := func(rc *crypto.Receipt, s audit.Status) {
		t.Helper()
		if _, err := c.Triage(ctx, url, key, rc.TipIDString(), s, nil, "", opts); err != nil {
			t.Fatalf("Triage %s: %v", s, err)
		}
	}

	// The policy, checked before anything is logged.
	size := d.logSize(t)
	if _, _, err := c.Delete(ctx, url, key, victim.TipIDString(), opts); !errors.Is(err, ErrDeletePolicy) {
		t.Errorf("Delete of an untriaged tip = %v, want ErrDeletePolicy", err)
	}
	for _, s := range []audit.Status{audit.StatusNew, audit.StatusReviewing, audit.StatusUseful} {
		triage(victim, s)
		size++
		if _, _, err := c.Delete(ctx, url, key, victim.TipIDString(), opts); !errors.Is(err, ErrDeletePolicy) {
			t.Errorf("Delete of a tip triaged %s = %v, want ErrDeletePolicy", s, err)
		}
	}
	if got := d.logSize(t); got != size {
		t.Fatalf("log size %d after three triages and refused deletes, want %d", got, size)
	}

	// Marks: a rejected triage marks, a useful one after it clears.
	triage(kept, audit.StatusRejected)
	if got := mark(kept); got != day {
		t.Errorf("mark after a rejected triage = %q, want %q", got, day)
	}
	triage(kept, audit.StatusUseful)
	if got := mark(kept); got != "" {
		t.Errorf("mark after a rejected then a useful triage = %q, want none", got)
	}

	triage(victim, audit.StatusSpam)
	if got := mark(victim); got != day {
		t.Errorf("mark after a spam triage = %q, want %q", got, day)
	}
	e, err := c.Find(victim.TipIDString())
	if err != nil {
		t.Fatal(err)
	}
	ciphertext, err := e.ciphertext()
	if err != nil {
		t.Fatal(err)
	}
	if where := d.dbHolds(t, ciphertext); len(where) == 0 {
		t.Fatal("the tip's ciphertext is in neither the database nor its WAL before the delete: the check proves nothing")
	}
	index, pending, err := c.Delete(ctx, url, key, victim.TipIDString(), opts)
	if err != nil || !pending {
		t.Fatalf("Delete on the tip's day = %d, pending %v, %v; want pending", index, pending, err)
	}
	if _, err := c.Find(victim.TipIDString()); err == nil {
		t.Error("the deleted tip is still in the cache")
	}
	if where := filesHolding(t, c.Dir, ciphertext); len(where) != 0 {
		t.Errorf("the deleted tip's ciphertext is still in %q", where)
	}
	r, err := Login(ctx, url, key)
	if err != nil {
		t.Fatal(err)
	}
	var pe *protocol.Error
	if _, err := r.FetchTip(ctx, victim.TipIDString()); !errors.As(err, &pe) || pe.Code != protocol.CodeNotFound {
		t.Errorf("FetchTip of the deleted tip = %v, want not_found", err)
	}
	listed, err := r.ListTips(ctx, 0, protocol.MaxTipList)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(listed, func(ti protocol.TipInfo) bool { return ti.ID == victim.TipIDString() }) || len(listed) != 2 {
		t.Errorf("ListTips after the delete: %d tips, want the 2 others", len(listed))
	}
	for _, f := range []func() error{
		func() error { _, _, err := c.Delete(ctx, url, key, victim.TipIDString(), opts); return err },
		func() error { _, err := c.Note(ctx, url, key, victim.TipIDString(), "too late", opts); return err },
		func() error {
			_, err := c.Triage(ctx, url, key, victim.TipIDString(), audit.StatusRejected, nil, "", opts)
			return err
		},
	} {
		if err := f(); !errors.Is(err, ErrTipDeleted) {
			t.Errorf("an act on the deleted tip = %v, want ErrTipDeleted", err)
		}
	}

	// The next day's purge logs the root and deletes the bytes.
	d.clock.advance(24 * time.Hour)
	d.srv.Server.Purge(ctx)
	if _, err := d.srv.Store.TipPeriodOf(ctx, victim.TipID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TipPeriodOf the deleted tip after the purge = %v, want ErrNotFound", err)
	}
	if where := d.dbHolds(t, ciphertext); len(where) != 0 {
		t.Errorf("the deleted tip's ciphertext is still in %v after the purge", where)
	}
	if tp, err := d.srv.Store.TipPeriodOf(ctx, kept.TipID); err != nil || tp.LogIndex < 0 {
		t.Errorf("a kept tip after the purge: %+v, %v; want it stored, its root logged", tp, err)
	}
	// The receipts check accounts for the deleted tip's leaf.
	if _, err := c.SyncLog(ctx, url, key, opts); err != nil {
		t.Fatalf("SyncLog after the purge: %v", err)
	}

	// After the root, a deletion is immediate.
	triage(later, audit.StatusRejected)
	e, err = c.Find(later.TipIDString())
	if err != nil {
		t.Fatal(err)
	}
	if ciphertext, err = e.ciphertext(); err != nil {
		t.Fatal(err)
	}
	if _, pending, err := c.Delete(ctx, url, key, later.TipIDString(), opts); err != nil || pending {
		t.Fatalf("Delete after the root = pending %v, %v; want done", pending, err)
	}
	if where := d.dbHolds(t, ciphertext); len(where) != 0 {
		t.Errorf("the tip deleted after its root is still in %v", where)
	}
	es, err := c.List()
	if err != nil || len(es) != 1 || es[0].ID != kept.TipIDString() {
		t.Errorf("cache after both deletes: %d tips (%v), want the kept one", len(es), err)
	}
	fieldtiptest.AssertNoPlaintext(t, c.Dir, texts...)
}

// filesHolding returns the files under dir that contain b.
func filesHolding(t testing.TB, dir string, b []byte) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEventsRefusedInputs: malformed triages and notes are refused with
// an error that says what was wrong, and log nothing.
func TestEventsRefusedInputs(t *testing.T) {
	room := newEvRoom(t, true)
	d := newEvDesk(t, room, room.alice)
	ctx := context.Background()
	c := d.newCache(t)
	tip := d.send(t, marker("tip")).TipIDString()
	unknown := crypto.FormatTipID([crypto.TipIDSize]byte{1, 2, 3})
	var manyTags []string
	for i := range audit.MaxTags + 1 {
		manyTags = append(manyTags, fmt.Sprintf("t%02d", i))
	}
	if _, err := c.Pull(ctx, d.srv.URL, room.alice, PullOptions{Newsroom: d.opts.Newsroom}); err != nil {
		t.Fatal(err)
	}
	type triage struct {
		status audit.Status
		tags   []string
		text   string
	}
	for _, tc := range []struct {
		name   string
		tip    string
		triage *triage // nil: a note of text
		text   string
		want   string
	}{
		{"triage bad tip id", "not-a-tip-id", &triage{status: audit.StatusUseful}, "", `tip id "not-a-tip-id"`},
		{"triage padded tip id", tip + "=", &triage{status: audit.StatusUseful}, "", "unpadded base64url"},
		{"triage empty tip id", "", &triage{status: audit.StatusUseful}, "", `tip id ""`},
		{"triage unknown tip", unknown, &triage{status: audit.StatusUseful}, "", "sync first"},
		{"bad status", tip, &triage{status: "maybe"}, "", `status "maybe" is not one of`},
		{"empty status", tip, &triage{status: ""}, "", `status "" is not one of`},
		{"status in capitals", tip, &triage{status: "Rejected"}, "", `status "Rejected"`},
		{"tag with a space", tip, &triage{status: audit.StatusUseful, tags: []string{"two words"}}, "", `tag "two words"`},
		{"empty tag", tip, &triage{status: audit.StatusUseful, tags: []string{""}}, "", `tag ""`},
		{"tag with a control character", tip, &triage{status: audit.StatusUseful, tags: []string{"bell\a"}}, "", "control characters"},
		{"tag not UTF-8", tip, &triage{status: audit.StatusUseful, tags: []string{"\xff"}}, "", "tag"},
		{"tag too long", tip, &triage{status: audit.StatusUseful, tags: []string{strings.Repeat("x", audit.MaxTagSize+1)}}, "", "1 to 64 bytes"},
		{"too many tags", tip, &triage{status: audit.StatusUseful, tags: manyTags}, "", "33 tags, at most 32"},
		{"triage note with an escape", tip, &triage{status: audit.StatusUseful, text: "clear\x1b[2J"}, "", "without control characters"},
		{"note bad tip id", "x", nil, "a note", `tip id "x"`},
		{"note unknown tip", unknown, nil, "a note", "sync first"},
		{"empty note", tip, nil, "", "empty note"},
		{"note too long", tip, nil, strings.Repeat("n", audit.MaxTextSize+1), "at most 65536 bytes"},
		{"note not UTF-8", tip, nil, "caf\xe9", "UTF-8"},
		{"note with a NUL", tip, nil, "a\x00b", "without control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := d.logSize(t)
			var err error
			if tc.triage != nil {
				_, err = c.Triage(ctx, d.srv.URL, room.alice, tc.tip, tc.triage.status, tc.triage.tags, tc.triage.text, d.opts)
			} else {
				_, err = c.Note(ctx, d.srv.URL, room.alice, tc.tip, tc.text, d.opts)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
			if got := d.logSize(t); got != size {
				t.Errorf("log size %d after a refused input, was %d", got, size)
			}
		})
	}
	// Tags in any order, one given twice, are one set: sorted, and
	// accepted.
	if _, err := c.Triage(ctx, d.srv.URL, room.alice, tip, audit.StatusReviewing, []string{"zinc", "copper", "zinc"}, "", d.opts); err != nil {
		t.Fatalf("Triage with unsorted tags: %v", err)
	}
	tid, _ := crypto.ParseTipID(tip)
	if ts := d.replay(t, c, room.alice).State.Tip(tid); ts == nil || !slices.Equal(ts.Tags, []string{"copper", "zinc"}) {
		t.Errorf("tip after a triage with unsorted tags = %+v", ts)
	}
}

// BenchmarkEventWrite measures events acknowledged with a verified
// tlog-proof (EventWriter.Write of a note: seal, sign, POST /event, the
// proof and the consistency proof from the tiles checked; WriteEvent's
// sync is done once, as an editor's session does), and, in the same run
// as the baseline, an authenticated round trip listing the tips
// (Remote.ListTips).
func BenchmarkEventWrite(b *testing.B) {
	room := newEvRoom(b, true)
	d := newEvDesk(b, room, room.alice)
	ctx := context.Background()
	c := d.newCache(b)
	rc := d.send(b, "a tip to note")
	w := syncedSession(b, c, d.srv.URL, room.alice, d.opts)
	r, err := w.Remote(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var events, lists time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		if _, err := w.Write(ctx, noteOn(rc, "a note")); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if tips, err := r.ListTips(ctx, 0, protocol.MaxTipList); err != nil || len(tips) != 1 {
			b.Fatalf("ListTips = %d tips, %v", len(tips), err)
		}
		events, lists, n = events+mid.Sub(start), lists+time.Since(mid), n+1
	}
	b.ReportMetric(float64(n)/events.Seconds(), "events/s")
	b.ReportMetric(float64(n)/lists.Seconds(), "lists/s")
	b.ReportMetric(events.Seconds()/lists.Seconds(), "list-trips/event")
}
