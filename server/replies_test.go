package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"filippo.io/age"
	"github.com/gorilla/websocket"
)

// cheapReplyKDF keeps the tests' key derivations fast; crypto's tests run
// the real cost.
var cheapReplyKDF = crypto.CodenameKDF{MemoryKiB: 64, Time: 1}

func replyKeys(tb testing.TB, codename string) *crypto.ReplyKeys {
	tb.Helper()
	k, err := crypto.DeriveReplyKeys(codename, "newsroom.example+00000000+AAAA", cheapReplyKDF)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// codenames of sources in these tests.
const (
	sourceA = "copper truck mountain harbor velvet quarry nutmeg"
	sourceB = "walnut basin pumice copper truck mountain harbor"
)

// sealReplyTo seals text to k's reply recipient of the server's bundle
// type.
func (ts *testServer) sealReplyTo(tb testing.TB, k *crypto.ReplyKeys, text string) []byte {
	tb.Helper()
	a, err := k.Address(ts.bundle.StanzaType())
	if err != nil {
		tb.Fatal(err)
	}
	r, err := a.AgeRecipient()
	if err != nil {
		tb.Fatal(err)
	}
	ct, err := crypto.SealReply(&crypto.Reply{Text: text}, r)
	if err != nil {
		tb.Fatal(err)
	}
	return ct
}

// putReply writes a reply as the editor token (no header if empty) and
// returns the status and body.
func (ts *testServer) putReply(tb testing.TB, token string, mailbox, id string, ct []byte) (int, []byte) {
	tb.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return httpDo(tb, http.MethodPost, ts.origin()+protocol.PathReplies+"/"+mailbox+"/"+id, auth, ct)
}

func newReplyID() protocol.ReplyID {
	var id protocol.ReplyID
	rand.Read(id[:])
	return id
}

// reply writes a reply to k as editor 0, which must succeed.
func (ts *testServer) reply(tb testing.TB, k *crypto.ReplyKeys, text string) protocol.ReplyID {
	tb.Helper()
	id := newReplyID()
	r := login(tb, ts, ts.editors[0])
	if err := r.PutReply(context.Background(), protocol.MailboxID(k.Mailbox), id, ts.sealReplyTo(tb, k, text)); err != nil {
		tb.Fatalf("PutReply = %v", err)
	}
	return id
}

// fetch asks for a bucket on w and reads the answer and its frames.
func (w *wsConn) fetch(bits, prefix int) (*protocol.Bucket, []*protocol.ReplyFrame) {
	w.tb.Helper()
	w.text(&protocol.RepliesRequest{Version: protocol.Version, Bits: bits, Prefix: prefix})
	b := expect[*protocol.Bucket](w)
	var frames []*protocol.ReplyFrame
	for range b.Count {
		w.c.SetReadDeadline(time.Now().Add(failAfter))
		mt, data, err := w.c.ReadMessage()
		if err != nil || mt != websocket.BinaryMessage {
			w.tb.Fatalf("reading a reply frame: type %d, %v", mt, err)
		}
		f, err := protocol.ParseReplyFrame(data)
		if err != nil {
			w.tb.Fatal(err)
		}
		frames = append(frames, f)
	}
	return b, frames
}

// mine opens the frames k can read.
func mine(k *crypto.ReplyKeys, frames []*protocol.ReplyFrame) map[protocol.ReplyID]string {
	out := map[protocol.ReplyID]string{}
	for _, f := range frames {
		if r, err := crypto.OpenReply(f.Ciphertext, k.Identities()...); err == nil {
			out[f.ID] = r.Text
		}
	}
	return out
}

func deleteMsg(k *crypto.ReplyKeys, id protocol.ReplyID) *protocol.Delete {
	d := &protocol.Delete{ReplyID: id}
	copy(d.MailboxKey[:], k.MailboxKey())
	copy(d.Sig[:], k.SignDelete(id))
	return d
}

// TestReplyRoundTrip: an editor writes a reply; the source fetches the
// bucket, opens its reply, deletes it; it is gone, and another source
// fetching the same bucket could not read it.
func TestReplyRoundTrip(t *testing.T) {
	for _, pq := range []bool{false, true} {
		t.Run(fmt.Sprintf("pq=%v", pq), func(t *testing.T) {
			ts := newTestServer(t, serverOptions{pq: pq})
			a, b := replyKeys(t, sourceA), replyKeys(t, sourceB)
			const text = "Which company's trucks?"
			id := ts.reply(t, a, text)
			ts.reply(t, b, "for B")

			// B fetches the whole store (2 replies: bits 0) and reads
			// only its own.
			wb := ts.dial(t)
			bucket, frames := wb.fetch(0, 0)
			if bucket.Bits != 0 || len(frames) != 2 {
				t.Fatalf("bucket = %+v with %d frames, want bits 0 and 2", bucket, len(frames))
			}
			if got := mine(b, frames); len(got) != 1 {
				t.Fatalf("B reads %d replies, want 1: %v", len(got), got)
			}
			for _, f := range frames {
				if f.ID == id {
					if _, err := crypto.OpenReply(f.Ciphertext, b.Identities()...); !errors.Is(err, crypto.ErrNotForMe) {
						t.Fatalf("B opening A's reply = %v, want ErrNotForMe", err)
					}
				}
			}
			// B cannot delete A's reply: its key is not A's mailbox.
			wb.text(deleteMsg(b, id))
			if e := wb.refusal(); e.Code != protocol.CodeUnauthorized {
				t.Fatalf("B deleting A's reply = %v", e)
			}

			wa := ts.dial(t)
			_, frames = wa.fetch(0, 0)
			got := mine(a, frames)
			if len(got) != 1 || got[id] != text {
				t.Fatalf("A reads %v, want %q", got, text)
			}
			wa.text(deleteMsg(a, id))
			if d := expect[*protocol.Deleted](wa); d.ReplyID != id {
				t.Fatalf("deleted %s, want %s", d.ReplyID, id)
			}
			if _, err := ts.store.ReplyMailbox(context.Background(), id); err == nil {
				t.Fatal("the reply is still stored after its delete")
			}
			_, frames = ts.dial(t).fetch(0, 0)
			if len(mine(a, frames)) != 0 || len(frames) != 1 {
				t.Fatalf("after the delete: %d frames, A reads %d", len(frames), len(mine(a, frames)))
			}
			ts.stop()
			noPlaintext(t, ts.dir, text, "for B")
		})
	}
}

// noPlaintext fails t if any file under dir holds one of texts.
func noPlaintext(t *testing.T, dir string, texts ...string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range texts {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds the reply text %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReplyWriteRefusals(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.MaxMailboxBytes = 2 * protocol.ReplyFrameSize; c.MaxReplies = 4 }})
	a := replyKeys(t, sourceA)
	ct := ts.sealReplyTo(t, a, "hello")
	token := sessionToken(t, ts)
	mb := a.Mailbox.String()
	xi, _ := age.GenerateX25519Identity()
	two := func() []byte {
		ar, _ := a.Address(crypto.StanzaX25519)
		r, _ := ar.AgeRecipient()
		var buf bytes.Buffer
		w, _ := age.Encrypt(&buf, r, xi.Recipient())
		w.Write(make([]byte, protocol.ReplyFrameSize-70-2*98-32))
		w.Close()
		return buf.Bytes()
	}()
	for _, c := range []struct {
		name    string
		token   string
		mailbox string
		id      string
		body    []byte
		status  int
		code    protocol.Code
	}{
		{"no session", "", mb, newReplyID().String(), ct, http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"garbage token", "garbage", mb, newReplyID().String(), ct, http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"mailbox short", token, mb[:42], newReplyID().String(), ct, http.StatusBadRequest, protocol.CodeMalformed},
		{"mailbox padded", token, mb + "=", newReplyID().String(), ct, http.StatusBadRequest, protocol.CodeMalformed},
		{"reply id long", token, mb, newReplyID().String() + "A", ct, http.StatusBadRequest, protocol.CodeMalformed},
		{"one byte short", token, mb, newReplyID().String(), ct[:len(ct)-1], http.StatusBadRequest, protocol.CodeBadCiphertext},
		{"one byte more", token, mb, newReplyID().String(), append(bytes.Clone(ct), 0), http.StatusBadRequest, protocol.CodeBadCiphertext},
		{"zeros", token, mb, newReplyID().String(), make([]byte, protocol.ReplyFrameSize), http.StatusBadRequest, protocol.CodeBadCiphertext},
		{"two recipients", token, mb, newReplyID().String(), two, http.StatusBadRequest, protocol.CodeBadCiphertext},
		{"too large", token, mb, newReplyID().String(), make([]byte, protocol.MaxReplySize+protocol.ReplyFrameSize), http.StatusRequestEntityTooLarge, protocol.CodeTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := ts.putReply(t, c.token, c.mailbox, c.id, c.body)
			if status != c.status || httpError(t, body).Code != c.code {
				t.Fatalf("status %d %s, want %d %s", status, body, c.status, c.code)
			}
		})
	}
	// The mailbox cap: two 4 KiB replies fit, a third is refused.
	id := newReplyID().String()
	for i := range 2 {
		rid := newReplyID().String()
		if i == 0 {
			rid = id
		}
		if status, body := ts.putReply(t, token, mb, rid, ct); status != http.StatusNoContent {
			t.Fatalf("reply %d: %d %s", i, status, body)
		}
	}
	status, body := ts.putReply(t, token, mb, newReplyID().String(), ct)
	if status != http.StatusRequestEntityTooLarge || httpError(t, body).Code != protocol.CodeTooLarge {
		t.Fatalf("a reply over the mailbox's cap: %d %s", status, body)
	}
	// The same id again.
	b := replyKeys(t, sourceB)
	if status, body := ts.putReply(t, token, b.Mailbox.String(), id, ts.sealReplyTo(t, b, "x")); httpError(t, body).Code != protocol.CodeReplayed {
		t.Fatalf("a reply id again: %d %s", status, body)
	}
	// The store's cap (4).
	for i := range 3 {
		var other protocol.MailboxID
		rand.Read(other[:])
		status, body := ts.putReply(t, token, other.String(), newReplyID().String(), ts.sealReplyTo(t, b, "x"))
		want := http.StatusNoContent
		if i == 2 {
			want = http.StatusServiceUnavailable
		}
		if status != want {
			t.Fatalf("reply %d to B: %d %s, want %d", i, status, body, want)
		}
	}
}

// A reply fetch and an upload never share a connection, in either order.
func TestRepliesApartFromUploads(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ct := seal(t, "tip", ts.recipients(t), protocol.FrameSize)

	w := ts.dial(t)
	w.fetch(0, 0)
	w.sendUpload(ts.bundle.Version, ct, protocol.FrameSize)
	if e := w.refusal(); e.Code != protocol.CodeUnexpected {
		t.Fatalf("an upload after a fetch = %v", e)
	}

	w = ts.dial(t)
	w.upload(ts, ct, protocol.FrameSize)
	w.text(&protocol.RepliesRequest{Version: protocol.Version})
	if e := w.refusal(); e.Code != protocol.CodeUnexpected {
		t.Fatalf("a fetch after an upload = %v", e)
	}

	w = ts.dial(t)
	w.fetch(0, 0)
	w.text(&protocol.Resume{Version: protocol.Version, UploadID: newUploadID()})
	if e := w.refusal(); e.Code != protocol.CodeUnexpected {
		t.Fatalf("a resume after a fetch = %v", e)
	}
	w = ts.dial(t)
	w.fetch(0, 0)
	w.fetch(0, 0)
	w.text(&protocol.RepliesRequest{Version: protocol.Version})
	if e := w.refusal(); e.Code != protocol.CodeUnexpected {
		t.Fatalf("a third fetch = %v", e)
	}
}

func newUploadID() protocol.UploadID {
	var id protocol.UploadID
	rand.Read(id[:])
	return id
}

// TestBucketSuggestion: past 8 stored replies the server asks for a
// longer prefix, and the bucket then holds the replies of its mailboxes
// only.
func TestBucketSuggestion(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	a, other := replyKeys(t, sourceA), replyKeys(t, sourceB)
	token := sessionToken(t, ts)
	// 9 replies: 1 to a, 8 to random mailboxes.
	ids := map[protocol.ReplyID]protocol.MailboxID{}
	aid := newReplyID()
	ids[aid] = protocol.MailboxID(a.Mailbox)
	if status, body := ts.putReply(t, token, a.Mailbox.String(), aid.String(), ts.sealReplyTo(t, a, "to a")); status != http.StatusNoContent {
		t.Fatalf("%d %s", status, body)
	}
	for range 8 {
		var mb protocol.MailboxID
		rand.Read(mb[:])
		id := newReplyID()
		ids[id] = mb
		if status, body := ts.putReply(t, token, mb.String(), id.String(), ts.sealReplyTo(t, other, "x")); status != http.StatusNoContent {
			t.Fatalf("%d %s", status, body)
		}
	}
	w := ts.dial(t)
	b, frames := w.fetch(0, 0)
	if b.Bits != 1 || b.Count != 0 || len(frames) != 0 {
		t.Fatalf("9 replies, bits 0: %+v, want bits 1 and no replies", b)
	}
	prefix := protocol.BucketPrefix(protocol.MailboxID(a.Mailbox), 1)
	b, frames = w.fetch(1, prefix)
	if b.Bits != 1 {
		t.Fatalf("bucket bits = %d, want 1", b.Bits)
	}
	found := false
	for _, f := range frames {
		if protocol.BucketPrefix(ids[f.ID], 1) != prefix {
			t.Errorf("bucket %d/1 holds a reply of mailbox %x…", prefix, ids[f.ID][0])
		}
		found = found || f.ID == aid
	}
	if !found {
		t.Fatal("a's reply is not in a's bucket")
	}
	// A longer prefix than suggested is served too (up to the bound).
	b, frames = ts.dial(t).fetch(5, protocol.BucketPrefix(protocol.MailboxID(a.Mailbox), 5))
	if b.Bits != 1 || len(mine(a, frames)) != 1 {
		t.Fatalf("5 bits: %+v, a reads %d", b, len(mine(a, frames)))
	}
}

func TestDeleteRefusals(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	a, b := replyKeys(t, sourceA), replyKeys(t, sourceB)
	id := ts.reply(t, a, "to a")
	for _, c := range []struct {
		name  string
		fetch bool
		msg   *protocol.Delete
		code  protocol.Code
	}{
		{"not fetched on this connection", false, deleteMsg(a, id), protocol.CodeNotFound},
		{"not in the bucket", true, deleteMsg(a, newReplyID()), protocol.CodeNotFound},
		{"another mailbox's key", true, deleteMsg(b, id), protocol.CodeUnauthorized},
		{"signature over another reply", true, func() *protocol.Delete {
			d := deleteMsg(a, newReplyID())
			d.ReplyID = id
			return d
		}(), protocol.CodeUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := ts.dial(t)
			if c.fetch {
				w.fetch(0, 0)
			}
			w.text(c.msg)
			if e := w.refusal(); e.Code != c.code {
				t.Fatalf("delete = %v, want %s", e, c.code)
			}
		})
	}
	if _, err := ts.store.ReplyMailbox(context.Background(), id); err != nil {
		t.Fatalf("the reply is gone after refused deletes: %v", err)
	}
}

// Unread replies expire with the purge.
func TestReplyExpiry(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.ReplyExpiry = 48 * time.Hour }})
	a := replyKeys(t, sourceA)
	id := ts.reply(t, a, "to a")
	ts.s.Purge(context.Background())
	if _, err := ts.store.ReplyMailbox(context.Background(), id); err != nil {
		t.Fatalf("a fresh reply was purged: %v", err)
	}
	ts.clock.advance(4 * 24 * time.Hour)
	ts.s.Purge(context.Background())
	if _, err := ts.store.ReplyMailbox(context.Background(), id); err == nil {
		t.Fatal("a reply past its expiry is still stored")
	}
}

// FuzzPutReply: whatever path and body an editor sends, the reply write
// answers 204 only for a well-formed reply (which is then stored), and
// otherwise a typed 4xx refusal; never a 5xx.
func FuzzPutReply(f *testing.F) {
	// The logger must not call f.Log from inside the fuzz function.
	ts := newTestServer(f, serverOptions{logger: slog.New(slog.DiscardHandler),
		config: func(c *Config) { c.MaxReplies = 1 << 20; c.MaxMailboxBytes = 1 << 30 }})
	token := sessionToken(f, ts)
	k := replyKeys(f, sourceA)
	ct := ts.sealReplyTo(f, k, "hello")
	f.Add(k.Mailbox.String()+"/"+newReplyID().String(), ct)
	f.Add(k.Mailbox.String()+"/"+newReplyID().String(), ct[:100])
	f.Add("x/y", []byte("age-encryption.org/v1\n"))
	f.Add(k.Mailbox.String(), ct)
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		parts := strings.Split(path, "/")
		for i := range parts {
			parts[i] = url.PathEscape(parts[i])
		}
		status, resp := httpDo(t, http.MethodPost, ts.origin()+protocol.PathReplies+"/"+strings.Join(parts, "/"), "Bearer "+token, body)
		switch {
		case status == http.StatusNoContent:
			if err := crypto.CheckReplyCiphertext(body); err != nil {
				t.Fatalf("stored a reply that is not one: %v", err)
			}
		case status >= 500:
			t.Fatalf("status %d %s", status, resp)
		case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
			// The mux's answer to a path with more or fewer parts.
		default:
			if m, err := protocol.ParseServerMessage(bytes.TrimSuffix(resp, []byte("\n"))); err != nil {
				t.Fatalf("status %d with a body that is not a typed error: %q", status, resp)
			} else if _, ok := m.(*protocol.Error); !ok {
				t.Fatalf("status %d with %T", status, m)
			}
		}
	})
}
