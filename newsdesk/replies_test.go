package newsdesk

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
)

func TestSourceCounts(t *testing.T) {
	a, b := crypto.MailboxID{1}.String(), crypto.MailboxID{2}.String()
	got := SourceCounts([]TipSummary{{ID: "t1", Mailbox: a}, {ID: "t2", Mailbox: b}, {ID: "t3", Mailbox: a}, {ID: "t4", Mailbox: a}, {ID: "t5"}})
	for tip, want := range map[string]int{"t1": 3, "t2": 1, "t3": 3, "t4": 3, "t5": 0} {
		if got[tip] != want {
			t.Errorf("SourceCounts[%s] = %d, want %d", tip, got[tip], want)
		}
	}
	if len(SourceCounts(nil)) != 0 {
		t.Error("SourceCounts(nil) is not empty")
	}
}

func TestCheckSourceCluster(t *testing.T) {
	a, b := crypto.MailboxID{1}, crypto.MailboxID{2}
	c := &audit.ClaimState{Links: []audit.Link{
		{Index: 3, Cluster: "drivers", Mailbox: a},
		{Index: 4, Cluster: "customs", Mailbox: b, Withdrawn: 9},
		{Index: 5, Cluster: "ledger"},
	}}
	for _, tc := range []struct {
		name    string
		cluster string
		mailbox crypto.MailboxID
		link    int64
	}{
		{"same source, same cluster", "drivers", a, 0},
		{"same source, another cluster", "customs", a, 3},
		{"a source whose link was withdrawn", "ledger", b, 0},
		{"another source", "customs", crypto.MailboxID{3}, 0},
		{"a tip without a reply address", "customs", crypto.MailboxID{}, 0},
	} {
		err := checkSourceCluster(c, "TIP", tc.cluster, tc.mailbox)
		var sm *SourceMismatchError
		switch {
		case tc.link == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.link != 0 && (!errors.As(err, &sm) || sm.Link != tc.link || sm.Other != "drivers"):
			t.Errorf("%s: %v, want a SourceMismatchError naming link %d", tc.name, err, tc.link)
		}
	}
}

// TestReplyOnlyEditors (issue 13: only editors can write): a key the
// bundle in force does not list cannot log in; a request without a
// session is refused; an editor logged in before the bundle that revokes
// him can no longer store a reply over that session. An editor of the
// bundle in force stores the same reply, and the server then holds that
// one only.
func TestReplyOnlyEditors(t *testing.T) {
	room := newEvRoom(t, true)
	d := newEvDesk(t, room, room.alice, room.bob)
	ctx := context.Background()
	keys, err := crypto.DeriveReplyKeys("copper truck mountain harbor velvet quarry nutmeg", room.key.Verifier, crypto.CodenameKDF{MemoryKiB: 64, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := keys.Address(crypto.StanzaX25519)
	if err != nil {
		t.Fatal(err)
	}
	to, err := addr.AgeRecipient()
	if err != nil {
		t.Fatal(err)
	}
	put := func(r *Remote) error {
		t.Helper()
		sealed, err := crypto.SealReply(&crypto.Reply{Text: "Which company owns the trucks?"}, to)
		if err != nil {
			t.Fatal(err)
		}
		var id protocol.ReplyID
		rand.Read(id[:])
		return r.PutReply(ctx, protocol.MailboxID(keys.Mailbox), id, sealed)
	}
	refused := func(who string, err error) {
		t.Helper()
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != protocol.CodeUnauthorized {
			t.Errorf("a reply stored by %s = %v, want refused as unauthorized", who, err)
		}
	}

	bob, err := Login(ctx, d.srv.URL, room.bob)
	if err != nil {
		t.Fatal(err)
	}
	d.publish(t, 2, []*crypto.EditorKey{room.alice}, "bob")
	refused("bob, revoked since his login", put(bob))
	refused("nobody logged in", put(&Remote{url: bob.url, http: bob.http}))
	if _, err := Login(ctx, d.srv.URL, room.carol); err == nil {
		t.Error("carol, whom no bundle lists, logged in")
	}
	alice, err := Login(ctx, d.srv.URL, room.alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := put(alice); err != nil {
		t.Fatalf("alice's reply: %v", err)
	}
	if n, err := d.srv.Store.CountReplies(ctx); err != nil || n != 1 {
		t.Fatalf("the server holds %d replies (%v), want alice's one", n, err)
	}
}
