package client

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/internal/testkit/flakylink"
	"fieldtip/storage"
)

// sendWithReply composes a tip carrying keys' reply address, as fieldtip
// does, and sends it.
func (p *phone) sendWithReply(t testing.TB, keys *crypto.ReplyKeys, text string) {
	t.Helper()
	it, err := Compose(context.Background(), p.cfg(t), &crypto.Tip{Text: text}, ComposeOptions{Reply: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ob.Add(it); err != nil {
		t.Fatal(err)
	}
	if _, err := p.send(t, context.Background(), SendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// storeReply stores on srv, as its reply write does, a reply to k's
// hybrid address under mailbox (k's own, or another's to fill a bucket).
func storeReply(tb testing.TB, srv *fieldtiptest.Server, k *crypto.ReplyKeys, mailbox [32]byte, text string) {
	tb.Helper()
	a, err := k.Address(crypto.StanzaHybrid)
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
	rp := &storage.Reply{Mailbox: mailbox, Day: crypto.Day(time.Now()), Ciphertext: ct}
	rand.Read(rp.ID[:])
	if err := srv.Store.PutReply(context.Background(), rp, 1<<20, 1<<16); err != nil {
		tb.Fatal(err)
	}
}

// TestFetchRepliesThroughProxy: a reply fetch goes through the SOCKS5
// proxy the config remembers, as sending does, and the proxy (never this
// device) resolves the server's name.
func TestFetchRepliesThroughProxy(t *testing.T) {
	nk := newTestNewsroom(t, true)
	srv := fieldtiptest.StartServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, fieldtiptest.ServerOptions{})
	_, port, err := net.SplitHostPort(hostPort(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr, res := startSOCKS(t)
	dir := filepath.Join(t.TempDir(), "fieldtip")
	if _, _, _, err := Init(context.Background(), dir, "http://"+net.JoinHostPort(unresolvable, port), nk.key.Verifier,
		InitOptions{Proxy: "socks5h://" + proxyAddr}); err != nil {
		t.Fatalf("Init through the proxy: %v", err)
	}
	p := outboxIn(t, dir)
	keys := p.replyKeys(t, p.codename)
	p.sendWithReply(t, keys, "trucks at 2am")
	const text = "Which company's trucks?"
	answer(t, srv, nk, text)
	before := len(res.asked())

	rep, err := FetchReplies(context.Background(), p.cfg(t), keys, FetchOptions{})
	if err != nil || len(rep.Replies) != 1 || rep.Replies[0].Text != text || !rep.Replies[0].Deleted {
		t.Fatalf("FetchReplies through the proxy = %+v, %v", rep, err)
	}
	asked := res.asked()
	if len(asked) != before+1 {
		t.Errorf("the proxy resolved %d names for the fetch, want 1 (one connection)", len(asked)-before)
	}
	for _, name := range asked {
		if name != unresolvable {
			t.Errorf("the proxy was asked to resolve %q, want only %s", name, unresolvable)
		}
	}
}

// TestFetchRepliesBudget: on a GPRS link, a fetch whose bucket takes far
// longer to arrive than the budget (8 padded replies at 20 kbit/s, about
// 13 s of radio time) stops when the budget is spent, says so, and
// deletes nothing: the source's reply waits for the next fetch (and a
// fetch with no signal at all stops at its budget too). The
// relay's bandwidth, not the machine's speed, makes the bucket slow, so a
// loaded machine only makes the stop more certain.
func TestFetchRepliesBudget(t *testing.T) {
	nk := newTestNewsroom(t, false)
	srv := fieldtiptest.StartServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, fieldtiptest.ServerOptions{})
	relay, err := flakylink.Start(hostPort(t, srv.URL), flakylink.Config{Profile: flakylink.GPRS, ChargeHandshake: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	p := newPhone(t, srv.URL, nk.key.Verifier, nil)
	keys := p.replyKeys(t, p.codename)
	others := p.replyKeys(t, "walnut basin pumice copper truck mountain harbor")
	p.sendWithReply(t, keys, "trucks at 2am")
	const text = "Which company's trucks?"
	answer(t, srv, nk, text)
	// Seven replies to other mailboxes fill the bucket (the server hands
	// over every reply while it holds 8 or fewer).
	ctx := context.Background()
	for range 7 {
		var mb [32]byte
		rand.Read(mb[:])
		storeReply(t, srv, others, mb, "for someone else")
	}

	const budget = 4 * time.Second
	rep, err := FetchReplies(ctx, p.cfg(t), keys, FetchOptions{Budget: budget, NetDialContext: dialTo(relay.Addr())})
	if !errors.Is(err, ErrBudgetSpent) {
		t.Fatalf("FetchReplies over GPRS with a budget of %s = %+v, %v; want ErrBudgetSpent", budget, rep, err)
	}
	for _, r := range rep.Replies {
		if r.Deleted {
			t.Errorf("reply %v deleted though the fetch ran out of time", r.ID)
		}
	}
	if n, _ := srv.Store.CountReplies(ctx); n != 8 {
		t.Fatalf("%d replies on the server after a fetch cut by its budget, want all 8", n)
	}

	// No signal at all: the budget is spent connecting, and says so.
	noSignal := func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if _, err := FetchReplies(ctx, p.cfg(t), keys, FetchOptions{Budget: 100 * time.Millisecond, NetDialContext: noSignal}); !errors.Is(err, ErrBudgetSpent) {
		t.Fatalf("FetchReplies with no signal = %v; want ErrBudgetSpent", err)
	}

	// The next fetch, with time enough (here direct), reads it.
	rep, err = FetchReplies(ctx, p.cfg(t), keys, FetchOptions{})
	if err != nil || len(rep.Replies) != 1 || rep.Replies[0].Text != text || !rep.Replies[0].Deleted {
		t.Fatalf("the next fetch = %+v, %v", rep, err)
	}
}
