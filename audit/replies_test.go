package audit

import (
	"errors"
	"strings"
	"testing"

	"fieldtip/crypto"
)

func mailbox(b byte) crypto.MailboxID { return crypto.MailboxID{b, 0xaa} }

// linkFrom links tip n of the source of mailbox m.
func (c *claimLog) linkFrom(editor string, id ClaimID, receipts int64, n int, cluster string, m crypto.MailboxID) int64 {
	return c.event(editor, &EventBody{Kind: KindLink, Claim: id, Stance: StanceSupports, Cluster: cluster, Reliability: "B",
		Credibility: 2, Access: AccessFirstHand, Why: "Saw the trucks.", Handle: c.handle(receipts, tipHash(n)), Receipts: receipts,
		Tip: tipID(byte(n)), Ciphertext: tipHash(n), Mailbox: m})
}

// TestSourceClusterRule: on editors' machines, a link of a tip whose
// source (mailbox) is already linked in another cluster is refused; in
// the same cluster it applies; once the other link is withdrawn it
// applies; an auditor replaying public parts cannot see the rule.
func TestSourceClusterRule(t *testing.T) {
	alice, bob := newEditor(t, "alice"), newEditor(t, "bob")
	c := newClaimLog(t, crypto.DefaultPolicy, alice, bob)
	r := c.receipts("2026-03-13", tipHash(1), tipHash(2), tipHash(3), tipHash(4), tipHash(5))
	id := ClaimID{1}
	c.claim("alice", id, "Copper leaves by truck.")
	first := c.linkFrom("alice", id, r, 1, "mine workers", mailbox(1))
	same := c.linkFrom("bob", id, r, 2, "mine workers", mailbox(1))
	other := c.linkFrom("bob", id, r, 3, "customs papers", mailbox(1))
	unrelated := c.linkFrom("bob", id, r, 4, "customs papers", mailbox(2))
	cs := c.state.Claim(id)
	active := map[int64]bool{}
	for _, l := range cs.Links {
		active[l.Index] = true
		if l.Index == first && l.Mailbox != mailbox(1) {
			t.Errorf("link %d's mailbox = %x, want the private part's", l.Index, l.Mailbox[:2])
		}
	}
	if !active[first] || !active[same] || active[other] || !active[unrelated] {
		t.Fatalf("active links %v: want %d, %d, %d and not %d", active, first, same, unrelated, other)
	}
	refused := false
	for _, rf := range c.state.Refused() {
		if rf.Index == other {
			refused = rf.Reason == ReasonSourceCluster
		}
	}
	if !refused {
		t.Fatalf("link %d is not refused with %q: %v", other, ReasonSourceCluster, c.state.Refused())
	}
	// Withdraw both links of the source's first cluster: the other
	// cluster is open to it again.
	c.unlink("alice", id, first)
	c.unlink("alice", id, same)
	again := c.linkFrom("bob", id, r, 5, "customs papers", mailbox(1))
	if last := c.state.Claim(id).Links; last[len(last)-1].Index != again {
		t.Fatalf("a link after the withdrawal is not applied")
	}
	// An auditor, with public parts only, applies the refused link: the
	// rule lives where private parts are.
	pub, _, err := ReplayClaim(c.state.ClaimEvents(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, l := range pub.Links {
		seen = seen || l.Index == other
	}
	if !seen {
		t.Fatal("public replay refused a link on private grounds")
	}
}

func TestReplyEvent(t *testing.T) {
	alice := newEditor(t, "alice")
	c := newClaimLog(t, crypto.DefaultPolicy, alice)
	body := &EventBody{Kind: KindReply, Tip: tipID(7), Mailbox: mailbox(3), Reply: [16]byte{9}, Text: "Which company's trucks?"}
	i := c.event("alice", body)
	got := c.state.Replies()
	if len(got) != 1 || got[0].Index != i || got[0].Tip != tipID(7) || got[0].Mailbox != mailbox(3) || got[0].Reply != [16]byte{9} ||
		got[0].Text != body.Text || got[0].Editor != "alice" {
		t.Fatalf("Replies = %+v", got)
	}
	if pub := string(c.parts[i].Public); pub != `{"kind":"reply"}` {
		t.Errorf("public part = %s, want only the kind", pub)
	}
	priv := string(c.parts[i].Private)
	if !strings.HasPrefix(priv, `{"tip":"`) || !strings.Contains(priv, `"mailbox":"`+mailbox(3).String()+`"`) || !strings.Contains(priv, `"text":"Which company's trucks?"`) {
		t.Errorf("private part = %s", priv)
	}
	if !strings.Contains(string(c.state.Marshal()), `"replies":[`) {
		t.Error("the state's encoding leaves out the replies")
	}
	// A state without replies encodes as before replies existed.
	if strings.Contains(string(NewState().Marshal()), "replies") {
		t.Error("an empty state's encoding names replies")
	}
}

func TestReplyEventMalformed(t *testing.T) {
	ok := EventBody{Kind: KindReply, Tip: tipID(7), Mailbox: mailbox(3), Reply: [16]byte{9}, Text: "a question"}
	for _, c := range []struct {
		name string
		edit func(*EventBody)
	}{
		{"no mailbox", func(b *EventBody) { b.Mailbox = crypto.MailboxID{} }},
		{"no reply id", func(b *EventBody) { b.Reply = [16]byte{} }},
		{"empty text", func(b *EventBody) { b.Text = "" }},
		{"text too long", func(b *EventBody) { b.Text = strings.Repeat("a", crypto.MaxReplyText+1) }},
		{"control character", func(b *EventBody) { b.Text = "a\x07" }},
		{"a claim field", func(b *EventBody) { b.Claim = ClaimID{1} }},
		{"a status", func(b *EventBody) { b.Status = StatusNew }},
	} {
		b := ok
		c.edit(&b)
		if err := b.check(); !errors.Is(err, crypto.ErrMalformed) {
			t.Errorf("%s: check = %v, want ErrMalformed", c.name, err)
		}
	}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
	// Parts in another spelling are refused.
	valid := `{"tip":"` + crypto.FormatTipID(tipID(7)) + `","mailbox":"` + mailbox(3).String() + `","reply":"` + crypto.FormatTipID([16]byte{9}) + `","text":"a"}`
	for _, c := range []struct {
		name, private string
		ok            bool
	}{
		{"ok", valid, true},
		{"members reordered", `{"mailbox":"` + mailbox(3).String() + `","tip":"` + crypto.FormatTipID(tipID(7)) + `","reply":"` + crypto.FormatTipID([16]byte{9}) + `","text":"a"}`, false},
		{"mailbox short", strings.Replace(valid, mailbox(3).String(), mailbox(3).String()[:42], 1), false},
		{"unknown member", strings.Replace(valid, `"text":"a"}`, `"text":"a","day":"x"}`, 1), false},
		{"whitespace", strings.Replace(valid, `","text"`, `", "text"`, 1), false},
	} {
		_, err := parseParts(&Parts{Public: []byte(`{"kind":"reply"}`), Private: []byte(c.private)})
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, crypto.ErrMalformed)) {
			t.Errorf("%s: parseParts = %v", c.name, err)
		}
	}
}

// A link's private part has two forms: without the mailbox (a tip with no
// reply address, and links logged before replies) and with it.
func TestLinkPrivateMailbox(t *testing.T) {
	pub := `{"kind":"link","claim":"` + ClaimID{1}.String() + `","stance":"supports","cluster":"c","reliability":"B","credibility":2,"access":"first-hand","why":"w","handle":"` + strings.Repeat("ab", 32) + `","receipts":1}`
	base := `{"tip":"` + crypto.FormatTipID(tipID(1)) + `","ciphertext":"` + strings.Repeat("cd", 32) + `","why":""`
	for _, c := range []struct {
		name, private string
		mailbox       crypto.MailboxID
		ok            bool
	}{
		{"without", base + `}`, crypto.MailboxID{}, true},
		{"with", base + `,"mailbox":"` + mailbox(5).String() + `"}`, mailbox(5), true},
		{"mailbox first", `{"mailbox":"` + mailbox(5).String() + `",` + base[1:] + `}`, crypto.MailboxID{}, false},
		{"mailbox zero", base + `,"mailbox":"` + crypto.MailboxID{}.String() + `"}`, crypto.MailboxID{}, false},
		{"mailbox empty", base + `,"mailbox":""}`, crypto.MailboxID{}, false},
		{"mailbox null", base + `,"mailbox":null}`, crypto.MailboxID{}, false},
	} {
		b, err := parseParts(&Parts{Public: []byte(pub), Private: []byte(c.private)})
		if c.ok != (err == nil) {
			t.Errorf("%s: parseParts = %v", c.name, err)
			continue
		}
		if err == nil && b.Mailbox != c.mailbox {
			t.Errorf("%s: mailbox %x", c.name, b.Mailbox[:2])
		}
		if err == nil {
			// Re-encoding gives the same private part.
			_, priv, err := b.marshalParts()
			if err != nil || string(priv) != c.private {
				t.Errorf("%s: re-encodes to %s, %v", c.name, priv, err)
			}
		}
	}
}
