package newsdesk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The tests of this file put a proxy between the editor and a real server
// (newLogDesk) to lose and forge the server's answers to POST /event.

// wireDesk is a logDesk whose bundle lists alice and bob, with a cache
// for each.
type wireDesk struct {
	*logDesk
	alice, bob   *crypto.EditorKey
	aliceC, bobC *Cache
	opts         SyncOptions
	logKey       string
}

// wireBundle signs a bundle of version listing editors, expiring in a day.
func wireBundle(t *testing.T, nk *testNewsroom, version int64, logKey string, editors ...*crypto.EditorKey) []byte {
	t.Helper()
	b := &crypto.Bundle{
		Newsroom: nk.key.Verifier, Version: version, Expires: time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second),
		Log: logKey, Policy: crypto.DefaultPolicy,
	}
	for _, e := range editors {
		b.Editors = append(b.Editors, e.Public)
	}
	msg, err := crypto.SignBundle(b, nk.key.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func newWireDesk(t *testing.T) *wireDesk {
	t.Helper()
	nk := newTestNewsroom(t, true)
	bob, err := crypto.GenerateEditorKey("bob", true)
	if err != nil {
		t.Fatal(err)
	}
	d := &wireDesk{alice: nk.editor, bob: bob, opts: SyncOptions{Newsroom: nk.key.Verifier}}
	d.logDesk = newLogDesk(t, nk, func(log string) []byte {
		d.logKey = log
		return wireBundle(t, nk, 1, log, nk.editor, bob)
	}, nil)
	d.aliceC, d.bobC = d.cache, &Cache{Dir: t.TempDir()}
	return d
}

// tip sends a tip and returns its id.
func (d *wireDesk) tip(t *testing.T) [crypto.TipIDSize]byte {
	t.Helper()
	return d.send(t, &crypto.Tip{Text: "a tip"}).TipID
}

// publish puts a bundle listing editors in force.
func (d *wireDesk) publish(t *testing.T, version int64, editors ...*crypto.EditorKey) {
	t.Helper()
	if err := PublishBundle(context.Background(), d.url, wireBundle(t, d.nk, version, d.logKey, editors...)); err != nil {
		t.Fatalf("PublishBundle(version %d): %v", version, err)
	}
}

func (d *wireDesk) replay(t *testing.T, c *Cache, key *crypto.EditorKey) *Editorial {
	t.Helper()
	v, err := c.SyncLog(context.Background(), d.url, key, d.opts)
	if err != nil {
		t.Fatalf("SyncLog as %s: %v", key.Label, err)
	}
	ed, err := Replay(v, key)
	if err != nil {
		t.Fatalf("Replay as %s: %v", key.Label, err)
	}
	return ed
}

// TestEventLostAnswer: the server logs the event but its answer is lost
// (a 500 in its place); the writer sends the same event again, is told
// replayed, and finds its entry, once, in the verified log.
func TestEventLostAnswer(t *testing.T) {
	d := newWireDesk(t)
	ctx := context.Background()
	tid := d.tip(t)
	w := syncedSession(t, d.aliceC, d.url, d.alice, d.opts)
	lost := 0
	f := func(rw http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || r.URL.Path != protocol.PathEvent || lost > 0 {
			return false
		}
		lost++
		req, err := http.NewRequest(http.MethodPost, d.srv.URL+r.URL.Path, r.Body)
		if err != nil {
			panic(err)
		}
		req.Header = r.Header.Clone()
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		rw.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(rw).Encode(map[string]string{"type": "error", "code": "internal", "message": "lost"})
		return true
	}
	d.intercept.Store(&f)
	index, err := w.Write(ctx, &audit.EventBody{Kind: audit.KindNote, Tip: tid, Text: "once"})
	d.intercept.Store(nil)
	if err != nil || lost != 1 {
		t.Fatalf("Write with a lost answer = %d, %v (%d answers lost)", index, err, lost)
	}
	ed := d.replay(t, d.aliceC, d.alice)
	if len(ed.Events) != 1 || ed.Events[0].Index != index || ed.Events[0].Body.Text != "once" {
		t.Errorf("events %+v, want the one note at %d", ed.Events, index)
	}
}

// TestEventHandoverPassedOn: a long history goes out in several handover
// events, each under the batch limit; an editor who got bodies by
// handover passes them on, with the handover events themselves, to an
// editor added after her; everyone replays to the same state.
func TestEventHandoverPassedOn(t *testing.T) {
	d := newWireDesk(t)
	ctx := context.Background()
	defer func(n int) { maxHandoverBatch = n }(maxHandoverBatch)
	maxHandoverBatch = 4000 // two re-encrypted bodies of 1 KiB a batch

	id := crypto.FormatTipID(d.tip(t))
	if _, err := d.aliceC.Triage(ctx, d.url, d.alice, id, audit.StatusReviewing, []string{"copper"}, "check it", d.opts); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := d.bobC.Note(ctx, d.url, d.bob, id, "note "+strconv.Itoa(i), d.opts); err != nil {
			t.Fatal(err)
		}
	}
	carol, err := crypto.GenerateEditorKey("carol", true)
	if err != nil {
		t.Fatal(err)
	}
	dave, err := crypto.GenerateEditorKey("dave", true)
	if err != nil {
		t.Fatal(err)
	}
	carolC, daveC := &Cache{Dir: t.TempDir()}, &Cache{Dir: t.TempDir()}
	d.publish(t, 2, d.alice, d.bob, carol)
	hs, err := d.aliceC.Handover(ctx, d.url, d.alice, "carol", d.opts)
	if err != nil || len(hs) != 2 {
		t.Fatalf("Handover of four bodies = %v, %v; want two events", hs, err)
	}
	if _, err := d.bobC.Note(ctx, d.url, d.bob, id, "after carol", d.opts); err != nil {
		t.Fatal(err)
	}
	ea, ec := d.replay(t, d.aliceC, d.alice), d.replay(t, carolC, carol)
	if !bytes.Equal(ea.State.Marshal(), ec.State.Marshal()) || len(ec.Unreadable) != 0 {
		t.Fatalf("carol after the handover (unreadable %v):\n%s\nalice:\n%s", ec.Unreadable, ec.State.Marshal(), ea.State.Marshal())
	}
	for _, o := range ec.Events {
		if o.Body.Kind == audit.KindHandover {
			if n := len(o.Body.Bodies); n > 2 {
				t.Errorf("handover event %d carries %d bodies, more than fit a batch", o.Index, n)
			}
		}
	}

	// A batch too small for one body is an error, not an empty event.
	maxHandoverBatch = 100
	d.publish(t, 3, d.alice, d.bob, carol, dave)
	if hs, err := carolC.Handover(ctx, d.url, carol, "dave", d.opts); err == nil {
		t.Fatalf("a handover with bodies over the batch limit = %v", hs)
	}
	// dave gets everything from carol: the bodies handed over to her,
	// those sealed to her, and the handover events themselves.
	maxHandoverBatch = 1 << 20
	if _, err := carolC.Handover(ctx, d.url, carol, "dave", d.opts); err != nil {
		t.Fatalf("carol's Handover to dave: %v", err)
	}
	ea, ed := d.replay(t, d.aliceC, d.alice), d.replay(t, daveC, dave)
	if !bytes.Equal(ea.State.Marshal(), ed.State.Marshal()) || len(ed.Unreadable) != 0 || len(ed.Warnings) != 0 {
		t.Fatalf("dave after carol's handover (unreadable %v, warnings %q):\n%s\nalice:\n%s", ed.Unreadable, ed.Warnings, ed.State.Marshal(), ea.State.Marshal())
	}
}

// forgedLog is a log a test builds to impersonate the server: its
// entries' stored hashes; checkpoints signed with the real log key.
type forgedLog struct {
	t      *testing.T
	key    note.Signer
	hashes []tlog.Hash
	n      int64
}

func newForgedLog(t *testing.T, key note.Signer, entries [][]byte) *forgedLog {
	t.Helper()
	f := &forgedLog{t: t, key: key}
	for _, e := range entries {
		hs, err := tlog.StoredHashes(f.n, e, f)
		if err != nil {
			t.Fatal(err)
		}
		f.hashes, f.n = append(f.hashes, hs...), f.n+1
	}
	return f
}

func (f *forgedLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for j, x := range idx {
		out[j] = f.hashes[x]
	}
	return out, nil
}

// proof returns the tlog-proof of entry index in the whole forged log.
func (f *forgedLog) proof(index int64) []byte {
	root, err := tlog.TreeHash(f.n, f)
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := tlog.ProveRecord(f.n, index, f)
	if err != nil {
		f.t.Fatal(err)
	}
	cp := torchwood.Checkpoint{Origin: f.key.Name(), Tree: tlog.Tree{N: f.n, Hash: root}}
	signed, err := note.Sign(&note.Note{Text: cp.String()}, f.key)
	if err != nil {
		f.t.Fatal(err)
	}
	return torchwood.FormatProof(index, p, signed)
}

// serve makes d's proxy answer POST /event with the proof of entry index,
// and every hash tile, from the forged log.
func (f *forgedLog) serve(d *wireDesk, index int64) {
	proof := f.proof(index)
	h := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Path == protocol.PathEvent {
			w.Write(proof)
			return true
		}
		tile, err := torchwood.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/"))
		if r.Method != http.MethodGet || err != nil || tile.L < 0 {
			return false
		}
		data, err := tlog.ReadTileData(tile, f)
		if err != nil {
			http.NotFound(w, r)
			return true
		}
		w.Write(data)
		return true
	}
	d.intercept.Store(&h)
}

// TestEventForgedAnswer: answers signed by the log key that put the event
// in a log that does not extend the checkpoint it was signed over (served
// consistently, tiles and all) are a *ForkError carrying both signed
// checkpoints; a proof of another entry does not verify.
func TestEventForgedAnswer(t *testing.T) {
	d := newWireDesk(t)
	ctx := context.Background()
	tid := d.tip(t)
	w := syncedSession(t, d.aliceC, d.url, d.alice, d.opts)
	v := w.View()
	ev, err := SignEvent(v, d.alice, &audit.EventBody{Kind: audit.KindNote, Tip: tid, Text: "x"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer d.intercept.Store(nil)
	logV, err := note.NewVerifier(d.srv.LogKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	policy := torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(logV.Name()), torchwood.SingleVerifierPolicy(logV))
	n := v.Tree.N
	for _, c := range []struct {
		name    string
		entries [][]byte
		index   int64
		reason  string
	}{
		// The event in place of the view's last entry: inside its base.
		{"inside the base", append(slices.Clone(v.Entries[:n-1]), ev.Entry), n - 1, "inside the tree"},
		// The event after a changed history.
		{"another history", append(append(slices.Clone(v.Entries[:n-1]), []byte("changed")), ev.Entry), n, "does not extend"},
	} {
		newForgedLog(t, d.srv.LogKey.Signer, c.entries).serve(d, c.index)
		_, err = mustRemote(t, w).PostEvent(ctx, v, ev)
		var fe *ForkError
		if !errors.As(err, &fe) || !bytes.Equal(fe.Stored, v.Signed) || !strings.Contains(fe.Reason, c.reason) {
			t.Fatalf("%s: PostEvent = %v, want a *ForkError (%s) with both checkpoints", c.name, err, c.reason)
		}
		if _, _, err := torchwood.VerifyCheckpoint(fe.Served, policy); err != nil {
			t.Errorf("%s: the fork's served checkpoint does not verify: %v", c.name, err)
		}
	}
	newForgedLog(t, d.srv.LogKey.Signer, append(slices.Clone(v.Entries), []byte("other"))).serve(d, n)
	if _, err := mustRemote(t, w).PostEvent(ctx, v, ev); err == nil {
		t.Fatal("PostEvent accepted a proof of another entry")
	}
	// The real server's answer checks out.
	d.intercept.Store(nil)
	if i, err := mustRemote(t, w).PostEvent(ctx, v, ev); err != nil || i < n {
		t.Fatalf("PostEvent to the real server = %d, %v", i, err)
	}
}

// TestEventBadBody: an event whose body does not open its commitments
// (its author's doing; the server cannot tell) is refused by every editor
// the same way, and the replay goes on past it.
func TestEventBadBody(t *testing.T) {
	d := newWireDesk(t)
	ctx := context.Background()
	tid := d.tip(t)
	w := syncedSession(t, d.aliceC, d.url, d.alice, d.opts)
	sealed, err := audit.SealEventBody(&audit.EventBody{Kind: audit.KindNote, Tip: tid, Text: "bad"}, w.View().Bundle)
	if err != nil {
		t.Fatal(err)
	}
	e, err := sealed.Event(crypto.Day(time.Now()), w.View().Tree)
	if err != nil {
		t.Fatal(err)
	}
	e.Private[0] ^= 1
	signer, err := d.alice.Signer()
	if err != nil {
		t.Fatal(err)
	}
	entry, err := audit.SignEvent(e, signer)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := mustRemote(t, w).PostEvent(ctx, w.View(), &SignedEvent{Entry: entry, Body: sealed.Ciphertext, Event: e})
	if err != nil {
		t.Fatal(err)
	}
	good, err := d.bobC.Note(ctx, d.url, d.bob, crypto.FormatTipID(tid), "good", d.opts)
	if err != nil {
		t.Fatal(err)
	}
	ea, eb := d.replay(t, d.aliceC, d.alice), d.replay(t, d.bobC, d.bob)
	if !bytes.Equal(ea.State.Marshal(), eb.State.Marshal()) {
		t.Fatalf("alice's and bob's states differ:\n%s\n%s", ea.State.Marshal(), eb.State.Marshal())
	}
	want := []audit.Refusal{{Index: bad, Editor: "alice", Reason: audit.ReasonBadBody}}
	if got := ea.State.Refused(); !reflect.DeepEqual(got, want) {
		t.Errorf("refused %+v, want %+v", got, want)
	}
	if len(ea.Events) != 1 || ea.Events[0].Index != good {
		t.Errorf("opened events %+v, want the good note at %d", ea.Events, good)
	}
}

func TestParseProofMalformed(t *testing.T) {
	i, hs, cp, err := parseProof([]byte(goodTlogProof))
	if err != nil || i != 7 || len(hs) != 1 || !strings.HasPrefix(string(cp), "log.example\n8\n") {
		t.Fatalf("parseProof(a good proof) = %d, %d hashes, %q, %v", i, len(hs), cp, err)
	}
	hash := "RV0t0ckqRnjr/DjOJLzYesRxevxtpGY8/cggtt+gebY="
	for _, c := range []struct{ name, in string }{
		{"empty", ""},
		{"header only", "c2sp.org/tlog-proof@v1\n"},
		{"other header", "c2sp.org/tlog-proof@v2\nindex 7\n\ncp\n"},
		{"extra data", "c2sp.org/tlog-proof@v1\nextra AAAA\nindex 7\n\ncp\n"},
		{"no index", "c2sp.org/tlog-proof@v1\n\ncp\n"},
		{"negative index", "c2sp.org/tlog-proof@v1\nindex -1\n\ncp\n"},
		{"leading zero", "c2sp.org/tlog-proof@v1\nindex 07\n\ncp\n"},
		{"plus sign", "c2sp.org/tlog-proof@v1\nindex +7\n\ncp\n"},
		{"index too big", "c2sp.org/tlog-proof@v1\nindex 9223372036854775808\n\ncp\n"},
		{"no blank line", "c2sp.org/tlog-proof@v1\nindex 7\n" + hash + "\n"},
		{"no checkpoint", "c2sp.org/tlog-proof@v1\nindex 7\n" + hash + "\n\n"},
		{"short hash", "c2sp.org/tlog-proof@v1\nindex 7\nRV0t\n\ncp\n"},
		{"unpadded hash", "c2sp.org/tlog-proof@v1\nindex 7\n" + strings.TrimSuffix(hash, "=") + "\n\ncp\n"},
		{"base64url hash", "c2sp.org/tlog-proof@v1\nindex 7\n" + strings.ReplaceAll(hash, "/", "_") + "\n\ncp\n"},
		{"CR in a hash", "c2sp.org/tlog-proof@v1\nindex 7\n" + hash[:10] + "\r" + hash[10:] + "\n\ncp\n"},
		{"CRLF", "c2sp.org/tlog-proof@v1\r\nindex 7\r\n\r\ncp\n"},
		{"64 hashes", "c2sp.org/tlog-proof@v1\nindex 7\n" + strings.Repeat(hash+"\n", 64) + "\ncp\n"},
		{"too large", "c2sp.org/tlog-proof@v1\nindex 7\n\n" + strings.Repeat("x", maxProof)},
	} {
		if i, _, _, err := parseProof([]byte(c.in)); err == nil {
			t.Errorf("parseProof(%s) = %d, want an error", c.name, i)
		}
	}
}

// FuzzParseProof: parseProof never panics, and what it accepts is exactly
// what torchwood.FormatProof writes for what it returned.
func FuzzParseProof(f *testing.F) {
	f.Add([]byte(goodTlogProof))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\nx"))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 12\nRV0t0ckqRnjr/DjOJLzYesRxevxtpGY8/cggtt+gebY=\nRV0t0ckqRnjr/DjOJLzYesRxevxtpGY8/cggtt+gebY=\n\nx\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		i, hs, cp, err := parseProof(in)
		if err != nil {
			return
		}
		if i < 0 || len(hs) > 63 || len(cp) == 0 {
			t.Fatalf("parseProof(%q) = %d, %d hashes, %q", in, i, len(hs), cp)
		}
		if out := torchwood.FormatProof(i, hs, cp); !bytes.Equal(out, in) {
			t.Fatalf("parseProof(%q) accepted what FormatProof writes as %q", in, out)
		}
	})
}

// mustRemote returns the session's login.
func mustRemote(t testing.TB, s *Session) *Remote {
	t.Helper()
	r, err := s.Remote(context.Background())
	if err != nil {
		t.Fatalf("Remote: %v", err)
	}
	return r
}
