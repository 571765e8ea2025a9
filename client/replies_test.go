package client

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/newsdesk"
	"fieldtip/protocol"
)

// cheapReplyKDF keeps the tests' derivations fast (crypto's tests run the
// real cost).
var cheapReplyKDF = crypto.CodenameKDF{MemoryKiB: 64, Time: 1}

func (p *phone) replyKeys(t testing.TB, codename string) *crypto.ReplyKeys {
	t.Helper()
	k, err := crypto.DeriveReplyKeys(codename, p.cfg(t).Newsroom, cheapReplyKDF)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// answer plays the editor: it logs in, opens every tip with the editor
// key and writes text to each tip's reply address. It returns the
// addresses it found, in arrival order.
func answer(t testing.TB, srv *fieldtiptest.Server, nk *testNewsroom, text string) []*crypto.ReplyAddress {
	t.Helper()
	ctx := context.Background()
	r, err := newsdesk.Login(ctx, srv.URL, nk.editor)
	if err != nil {
		t.Fatal(err)
	}
	tips, err := r.ListTips(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	id := nk.editor.Identity
	var out []*crypto.ReplyAddress
	for _, ti := range tips {
		ct, err := r.FetchTip(ctx, ti.ID)
		if err != nil {
			t.Fatal(err)
		}
		tip, err := crypto.Open(ct, id)
		if err != nil {
			t.Fatal(err)
		}
		if tip.Reply == nil {
			t.Fatal("the tip carries no reply address")
		}
		out = append(out, tip.Reply)
		to, err := tip.Reply.AgeRecipient()
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := crypto.SealReply(&crypto.Reply{Text: text}, to)
		if err != nil {
			t.Fatal(err)
		}
		var rid protocol.ReplyID
		rand.Read(rid[:])
		if err := r.PutReply(ctx, protocol.MailboxID(tip.Reply.Mailbox), rid, sealed); err != nil {
			t.Fatalf("PutReply: %v", err)
		}
	}
	return out
}

// TestFetchRepliesRoundTrip: a tip carries the reply address; the editor
// answers it; the source reads the answer and it leaves the server; a
// wrong codename reads nothing.
func TestFetchRepliesRoundTrip(t *testing.T) {
	for _, classic := range []bool{true, false} {
		t.Run(map[bool]string{true: "classic", false: "post-quantum"}[classic], func(t *testing.T) {
			nk := newTestNewsroom(t, classic)
			srv := fieldtiptest.StartServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, fieldtiptest.ServerOptions{})
			p := newPhone(t, srv.URL, nk.key.Verifier, nil)
			keys := p.replyKeys(t, p.codename)
			p.sendWithReply(t, keys, "trucks at 2am")
			const text = "Which company's trucks?"
			addrs := answer(t, srv, nk, text)
			if len(addrs) != 1 || addrs[0].Mailbox != keys.Mailbox {
				t.Fatalf("the tip's reply address is not the source's: %v", addrs)
			}

			// A wrong codename: the same bucket, nothing readable, nothing
			// deleted.
			wrong, _ := crypto.GenerateCodename()
			rep, err := FetchReplies(context.Background(), p.cfg(t), p.replyKeys(t, wrong), FetchOptions{})
			if err != nil || len(rep.Replies) != 0 || rep.Bucket != 1 {
				t.Fatalf("wrong codename: %+v, %v; want a bucket of 1 and nothing read", rep, err)
			}

			var shown []string
			rep, err = FetchReplies(context.Background(), p.cfg(t), keys, FetchOptions{Reply: func(r *Reply) { shown = append(shown, r.Text) }})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Replies) != 1 || rep.Replies[0].Text != text || !rep.Replies[0].Deleted || len(shown) != 1 {
				t.Fatalf("FetchReplies = %+v, shown %v", rep, shown)
			}
			if rep.Bits != 0 || rep.RoundTrips != 2 || rep.BytesReceived < crypto.ReplyFrameSize {
				t.Errorf("report: bits %d, round trips %d, %d bytes received", rep.Bits, rep.RoundTrips, rep.BytesReceived)
			}
			if n, _ := srv.Store.CountReplies(context.Background()); n != 0 {
				t.Fatalf("%d replies on the server after the read", n)
			}
			rep, err = FetchReplies(context.Background(), p.cfg(t), keys, FetchOptions{})
			if err != nil || len(rep.Replies) != 0 || rep.Bucket != 0 {
				t.Fatalf("second fetch: %+v, %v", rep, err)
			}
			fieldtiptest.AssertNoPlaintext(t, srv.Dir, text, "trucks at 2am")
		})
	}
}

// A server that asks for a longer bucket than the bound is refused: the
// client never reveals more than protocol.MaxReplyBits bits.
func TestFetchRepliesRefusesNarrowBucket(t *testing.T) {
	nk := newTestNewsroom(t, true)
	var asked []*protocol.RepliesRequest
	url := startRogue(t, func(c *rogueConn) {
		for {
			m, ok := c.control()
			if !ok {
				return
			}
			req, ok := m.(*protocol.RepliesRequest)
			if !ok {
				return
			}
			asked = append(asked, req)
			// 6 bits: over the bound.
			c.write(1, []byte(`{"type":"bucket","bits":6,"count":0}`))
		}
	})
	cfg := offlineConfig(t, url, nk.key.Verifier)
	k, _ := crypto.DeriveReplyKeys("copper truck mountain harbor velvet quarry nutmeg", cfg.Newsroom, cheapReplyKDF)
	_, err := FetchReplies(context.Background(), cfg, k, FetchOptions{})
	if !errors.Is(err, ErrBadServerMessage) {
		t.Fatalf("FetchReplies = %v, want ErrBadServerMessage", err)
	}
	for _, r := range asked {
		if r.Bits != 0 {
			t.Fatalf("the client asked with %d bits", r.Bits)
		}
	}
}

// A tip composed without reply keys (an outbox filled by a client older
// than replies) is a v1 tip: the server takes it and editors read it; it
// has no reply address, and its source no mailbox.
func TestTipWithoutReplyAddressStillDelivered(t *testing.T) {
	nk := newTestNewsroom(t, true)
	srv := fieldtiptest.StartServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, fieldtiptest.ServerOptions{})
	p := newPhone(t, srv.URL, nk.key.Verifier, nil)
	p.compose(t, &crypto.Tip{Text: "composed before replies"})
	rep, err := p.send(t, context.Background(), SendOptions{})
	if err != nil || len(rep.Sent) != 1 {
		t.Fatalf("SendOutbox = %+v, %v", rep, err)
	}
	ct := checkDelivered(t, srv, nk, rep.Sent[0], "composed before replies")
	tip, err := crypto.Open(ct, nk.editor.Identity)
	if err != nil || tip.Reply != nil {
		t.Fatalf("the tip opens as %+v, %v; want no reply address", tip, err)
	}
}
