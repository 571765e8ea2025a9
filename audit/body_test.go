package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"reflect"
	"strings"
	"testing"

	"fieldtip/crypto"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/tlog"
)

func testBodies() []*EventBody {
	bodies := []*EventBody{
		{Kind: KindTriage, Tip: tipID(1), Status: StatusUseful, Tags: []string{"hyesan", "copper"}, Text: "Matches the\ttruck count.\nSecond line."},
		{Kind: KindTriage, Tip: tipID(2), Status: StatusNew},
		{Kind: KindNote, Tip: tipID(1), Text: "Called back <&> \u2028 ✓"},
		{Kind: KindDelete, Tip: tipID(3), Ciphertext: [32]byte{3}},
		{Kind: KindHandover, To: "carol", Bodies: []HandedOver{{Index: 1, Ciphertext: []byte("age…")}, {Index: 7, Ciphertext: []byte{0, 1, 2}}}},
		{Kind: KindReply, Tip: tipID(4), Mailbox: crypto.MailboxID{4, 4}, Reply: [16]byte{5}, Text: "Which company's trucks?\n\tThe <blue> ones?"},
		// Assignments and handed-over tips (issue 10).
		{Kind: KindTriage, Tip: tipID(1), Status: StatusReviewing, Tags: []string{"copper"}, Assignee: ptr("bob")},
		{Kind: KindTriage, Tip: tipID(1), Status: StatusReviewing, Assignee: ptr("")},
		{Kind: KindHandover, To: "carol", Tips: []HandedOverTip{{Tip: tipID(1), Ciphertext: [32]byte{1}, Sealed: [32]byte{2}, Length: 16384},
			{Tip: tipID(2), Ciphertext: [32]byte{3}, Sealed: [32]byte{4}, Length: crypto.MaxTipSize}}},
		{Kind: KindHandover, To: "carol", Bodies: []HandedOver{{Index: 1, Ciphertext: []byte{1}}},
			Tips: []HandedOverTip{{Tip: tipID(1), Ciphertext: [32]byte{1}, Sealed: [32]byte{2}, Length: 1}}},
	}
	return append(bodies, claimBodies()...)
}

func ptr(s string) *string { return &s }

// claimBodies are valid bodies of every kind of event on claims.
func claimBodies() []*EventBody {
	id := ClaimID{7, 7, 7}
	return []*EventBody{
		{Kind: KindClaim, Claim: id, Text: "Copper leaves <Hyesan> by truck & at night.\nTwice a week.", Scope: "Hyesan, March 2026"},
		{Kind: KindClaim, Claim: id, Text: "x"},
		{Kind: KindLink, Claim: id, Stance: StanceSupports, Cluster: "mine workers", Reliability: "B", Credibility: 2,
			Access: AccessFirstHand, Why: "Saw the trucks.", Handle: Leaf{1}, Receipts: 4, Tip: tipID(1), Ciphertext: [32]byte{9}},
		{Kind: KindLink, Claim: id, Stance: StanceContext, Cluster: "é", Reliability: "F", Credibility: 6,
			Access: AccessDocument, PrivateWhy: "Same cousin as tip 3.", Handle: Leaf{2}, Receipts: 1 << 52, Tip: tipID(2), Ciphertext: [32]byte{8}},
		{Kind: KindUnlink, Claim: id, Link: 9, Tip: tipID(1)},
		{Kind: KindSignoff, Claim: id, Version: 3, Evidence: [32]byte{5}, Changes: 4, Decision: DecisionApprove},
		{Kind: KindSignoff, Claim: id, Version: 3, Evidence: [32]byte{5}, Changes: MaxClaimEvents, Decision: DecisionNeedsWork, Note: "Call the driver."},
		{Kind: KindPublish, Claim: id, Version: 3, Evidence: [32]byte{5}, Changes: 4, Events: 7},
		{Kind: KindCorrect, Claim: id, Correction: CorrectionRetraction, Text: "The trucks carried zinc."},
		{Kind: KindPeriod},
		{Kind: KindLink, Claim: id, Stance: StanceSupports, Cluster: "mine workers", Reliability: "C", Credibility: 3,
			Access: AccessSecondHand, Why: "Same source as tip 1.", Handle: Leaf{3}, Receipts: 4, Tip: tipID(3), Ciphertext: [32]byte{7}, Mailbox: crypto.MailboxID{1, 2}},
	}
}

// sorted returns b with its tags sorted, as every encoding has them.
func sorted(b *EventBody) *EventBody {
	c := *b
	c.Tags = append([]string(nil), b.Tags...)
	if len(c.Tags) == 0 {
		c.Tags = nil
	}
	for i := range c.Tags {
		for j := i + 1; j < len(c.Tags); j++ {
			if c.Tags[j] < c.Tags[i] {
				c.Tags[i], c.Tags[j] = c.Tags[j], c.Tags[i]
			}
		}
	}
	return &c
}

func TestEventBodyRoundTrip(t *testing.T) {
	bob := newEditor(t, "bob")
	b := testBundle(t, testAlice, bob)
	for _, body := range testBodies() {
		t.Run(string(body.Kind), func(t *testing.T) {
			sb, err := SealEventBody(body, b)
			if err != nil {
				t.Fatal(err)
			}
			if sb.Bundle != b.Version {
				t.Errorf("SealEventBody(…).Bundle = %d, want %d", sb.Bundle, b.Version)
			}
			if err := crypto.CheckCiphertext(sb.Ciphertext, b.StanzaType(), len(b.Editors)); err != nil {
				t.Errorf("CheckCiphertext(sealed body) = %v", err)
			}
			e, err := sb.Event("2026-03-14", tlog.Tree{N: 1})
			if err != nil {
				t.Fatal(err)
			}
			if e.Ciphertext != sha256.Sum256(sb.Ciphertext) || e.Public != sb.Parts.PublicCommitment() || e.Private != sb.Parts.PrivateCommitment() {
				t.Fatal("Event does not commit to the sealed body")
			}
			for _, k := range []*crypto.EditorKey{testAlice, bob} {
				got, parts, err := OpenEventBody(sb.Ciphertext, e, k.Identity)
				if err != nil {
					t.Fatalf("%s: OpenEventBody: %v", k.Label, err)
				}
				if !reflect.DeepEqual(got, sorted(body)) {
					t.Errorf("%s: OpenEventBody = %+v, want %+v", k.Label, got, sorted(body))
				}
				if !reflect.DeepEqual(parts, &sb.Parts) {
					t.Errorf("%s: parts differ from the sealed ones", k.Label)
				}
				if !CheckPublic(e, parts.Public, parts.PublicSalt) || CheckPublic(e, parts.Public, parts.PrivateSalt) {
					t.Errorf("%s: CheckPublic does not open the public commitment with its salt alone", k.Label)
				}
			}
		})
	}
}

// Two seals of one body share nothing an observer can compare.
func TestSealEventBodyFreshSalts(t *testing.T) {
	b := testBundle(t, testAlice)
	body := testBodies()[3]
	s1, err := SealEventBody(body, b)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := SealEventBody(body, b)
	if err != nil {
		t.Fatal(err)
	}
	if s1.Parts.PublicCommitment() == s2.Parts.PublicCommitment() || s1.Parts.PrivateCommitment() == s2.Parts.PrivateCommitment() ||
		s1.Parts.PublicSalt == s1.Parts.PrivateSalt {
		t.Error("commitments repeat across seals of one body, or a salt is reused")
	}
	if len(s1.Ciphertext) != len(s2.Ciphertext) {
		t.Errorf("sealed sizes %d and %d differ for one body", len(s1.Ciphertext), len(s2.Ciphertext))
	}
}

func TestOpenEventBodyRefuses(t *testing.T) {
	bob, eve := newEditor(t, "bob"), newEditor(t, "eve")
	b := testBundle(t, testAlice, bob)
	body := testBodies()[0]
	sb, err := SealEventBody(body, b)
	if err != nil {
		t.Fatal(err)
	}
	e, err := sb.Event("2026-03-14", tlog.Tree{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	// A second body whose event alice signs, but whose ciphertext she
	// swaps for the first body's, changing the hash to match: the parts
	// no longer open the commitments.
	other, err := SealEventBody(testBodies()[2], b)
	if err != nil {
		t.Fatal(err)
	}
	swappedPublic := *e
	swappedPublic.Public = other.Parts.PublicCommitment()
	swappedPrivate := *e
	swappedPrivate.Private = other.Parts.PrivateCommitment()
	changed := bytes.Clone(sb.Ciphertext)
	changed[len(changed)-1] ^= 1
	rehashed := *e
	rehashed.Ciphertext = sha256.Sum256(changed)
	for _, c := range []struct {
		name string
		ct   []byte
		e    *Event
		id   age.Identity
		part string
	}{
		{"ciphertext changed", changed, e, testAlice.Identity, "ciphertext"},
		{"ciphertext truncated", sb.Ciphertext[:len(sb.Ciphertext)-1], e, testAlice.Identity, "ciphertext"},
		{"public commitment of another body", sb.Ciphertext, &swappedPublic, bob.Identity, "public"},
		{"private commitment of another body", sb.Ciphertext, &swappedPrivate, bob.Identity, "private"},
		{"changed ciphertext with its hash", changed, &rehashed, testAlice.Identity, ""},
		{"not an editor", sb.Ciphertext, e, eve.Identity, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, parts, err := OpenEventBody(c.ct, c.e, c.id)
			if got != nil || parts != nil || err == nil {
				t.Fatalf("OpenEventBody = %v, %v, %v; want an error and nothing else", got, parts, err)
			}
			var ce *CommitmentError
			if c.part == "" {
				if errors.As(err, &ce) {
					t.Fatalf("OpenEventBody = %v, want a decryption error", err)
				}
				return
			}
			if !errors.As(err, &ce) || ce.Part != c.part {
				t.Fatalf("OpenEventBody = %v, want a *CommitmentError for %q", err, c.part)
			}
		})
	}
	if _, _, err := OpenEventBody(make([]byte, MaxSealedBodySize+1), e, testAlice.Identity); !errors.Is(err, crypto.ErrMalformed) {
		t.Errorf("OpenEventBody of %d bytes = %v, want ErrMalformed", MaxSealedBodySize+1, err)
	}
}

func TestSealEventBodyRefuses(t *testing.T) {
	b := testBundle(t, testAlice)
	long := strings.Repeat("x", MaxTextSize+1)
	tags := make([]string, MaxTags+1)
	for i := range tags {
		tags[i] = string(rune('a'+i%26)) + strings.Repeat("z", i/26)
	}
	for _, c := range []struct {
		name string
		body EventBody
	}{
		{"no kind", EventBody{Tip: tipID(1)}},
		{"unknown kind", EventBody{Kind: "claim", Tip: tipID(1)}},
		{"triage without status", EventBody{Kind: KindTriage, Tip: tipID(1)}},
		{"triage bad status", EventBody{Kind: KindTriage, Tip: tipID(1), Status: "Useful"}},
		{"triage duplicate tag", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Tags: []string{"a", "a"}}},
		{"triage empty tag", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Tags: []string{""}}},
		{"triage tag with space", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Tags: []string{"a b"}}},
		{"triage tag with NBSP", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Tags: []string{"a\u00a0b"}}},
		{"triage tag too long", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Tags: []string{strings.Repeat("t", MaxTagSize+1)}}},
		{"triage too many tags", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Tags: tags}},
		{"triage note with escape", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Text: "\x1b[2Jcleared"}},
		{"triage handover field", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, To: "bob"}},
		{"note empty", EventBody{Kind: KindNote, Tip: tipID(1)}},
		{"note too long", EventBody{Kind: KindNote, Tip: tipID(1), Text: long}},
		{"note invalid UTF-8", EventBody{Kind: KindNote, Tip: tipID(1), Text: "\xff"}},
		{"note carriage return", EventBody{Kind: KindNote, Tip: tipID(1), Text: "a\rb"}},
		{"note with status", EventBody{Kind: KindNote, Tip: tipID(1), Text: "x", Status: StatusNew}},
		{"delete with text", EventBody{Kind: KindDelete, Tip: tipID(1), Ciphertext: [32]byte{1}, Text: "x"}},
		{"delete with tags", EventBody{Kind: KindDelete, Tip: tipID(1), Ciphertext: [32]byte{1}, Tags: []string{"a"}}},
		{"delete without its ciphertext", EventBody{Kind: KindDelete, Tip: tipID(1)}},
		{"note with a ciphertext", EventBody{Kind: KindNote, Tip: tipID(1), Text: "x", Ciphertext: [32]byte{1}}},
		{"handover with tip", EventBody{Kind: KindHandover, Tip: tipID(1), To: "bob", Bodies: []HandedOver{{Index: 1, Ciphertext: []byte{1}}}}},
		{"handover bad label", EventBody{Kind: KindHandover, To: "Bob", Bodies: []HandedOver{{Index: 1, Ciphertext: []byte{1}}}}},
		{"handover no bodies", EventBody{Kind: KindHandover, To: "bob"}},
		{"handover empty ciphertext", EventBody{Kind: KindHandover, To: "bob", Bodies: []HandedOver{{Index: 1}}}},
		{"handover negative index", EventBody{Kind: KindHandover, To: "bob", Bodies: []HandedOver{{Index: -1, Ciphertext: []byte{1}}}}},
		{"handover indexes repeat", EventBody{Kind: KindHandover, To: "bob", Bodies: []HandedOver{{Index: 2, Ciphertext: []byte{1}}, {Index: 2, Ciphertext: []byte{1}}}}},
		{"handover indexes decrease", EventBody{Kind: KindHandover, To: "bob", Bodies: []HandedOver{{Index: 3, Ciphertext: []byte{1}}, {Index: 2, Ciphertext: []byte{1}}}}},
		{"triage assignee not a label", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Assignee: ptr("Bob")}},
		{"triage assignee with space", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Assignee: ptr("b b")}},
		{"note with assignee", EventBody{Kind: KindNote, Tip: tipID(1), Text: "x", Assignee: ptr("bob")}},
		{"triage with handed-over tips", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Tips: []HandedOverTip{{Tip: tipID(1), Length: 1}}}},
		{"handover tips repeat", EventBody{Kind: KindHandover, To: "bob", Tips: []HandedOverTip{{Tip: tipID(1), Length: 1}, {Tip: tipID(1), Length: 1}}}},
		{"handover tips decrease", EventBody{Kind: KindHandover, To: "bob", Tips: []HandedOverTip{{Tip: tipID(2), Length: 1}, {Tip: tipID(1), Length: 1}}}},
		{"handover tip empty", EventBody{Kind: KindHandover, To: "bob", Tips: []HandedOverTip{{Tip: tipID(1)}}}},
		{"handover tip over the tip limit", EventBody{Kind: KindHandover, To: "bob", Tips: []HandedOverTip{{Tip: tipID(1), Length: crypto.MaxTipSize + 1}}}},
	} {
		if sb, err := SealEventBody(&c.body, b); !errors.Is(err, crypto.ErrMalformed) {
			t.Errorf("%s: SealEventBody = %v, %v; want ErrMalformed", c.name, sb, err)
		}
	}
	// The limits themselves are allowed.
	ok := []EventBody{
		{Kind: KindNote, Tip: tipID(1), Text: long[1:]},
		{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Tags: tags[1:]},
		{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Tags: []string{strings.Repeat("t", MaxTagSize)}},
	}
	for _, body := range ok {
		if _, err := SealEventBody(&body, b); err != nil {
			t.Errorf("SealEventBody at a limit: %v", err)
		}
	}
}

// bodyPlain returns the plaintext of body with zero salts.
func bodyPlain(t *testing.T, body *EventBody) []byte {
	t.Helper()
	plain, err := marshalEventBody(body, &Parts{})
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// pad pads an unpadded plaintext as marshalEventBody does.
func pad(unpadded string) []byte {
	n := crypto.Bucket(int64(len(unpadded)), bodyFrame)
	return append([]byte(unpadded), make([]byte, n-int64(len(unpadded)))...)
}

// rawBody builds an unpadded plaintext around the given parts, with zero
// salts.
func rawBody(public, private string) string {
	const zero = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	return EventBodyHeader + "\npublic " + zero + " " + itoa(len(public)) + "\nprivate " + zero + " " + itoa(len(private)) + "\n" + public + private
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func TestParseEventBodyMalformed(t *testing.T) {
	const tip = `"AQIDBAUGBwgJCgsMDQ4PEA"`
	valid := rawBody(`{"kind":"note"}`, `{"tip":`+tip+`,"text":"x"}`)
	if _, _, err := parseEventBody(pad(valid)); err != nil {
		t.Fatalf("the table's valid body does not parse: %v", err)
	}
	triage := func(rest string) []byte {
		return pad(rawBody(`{"kind":"triage"}`, `{"tip":`+tip+`,"status":"new",`+rest+`}`))
	}
	note := func(private string) []byte { return pad(rawBody(`{"kind":"note"}`, private)) }
	handover := func(bodies string) []byte {
		return pad(rawBody(`{"kind":"handover"}`, `{"to":"bob","bodies":`+bodies+`}`))
	}
	handoverTips := func(bodies, tips string) []byte {
		return pad(rawBody(`{"kind":"handover"}`, `{"to":"bob","bodies":`+bodies+`,"tips":`+tips+`}`))
	}
	padded := pad(valid)
	for _, c := range []struct {
		name  string
		plain []byte
	}{
		{"empty", nil},
		{"header v2", pad(strings.Replace(valid, EventBodyHeader, "fieldtip/event-body/v2", 1))},
		{"tip header", pad(strings.Replace(valid, EventBodyHeader, crypto.TipHeader, 1))},
		{"no padding", []byte(valid)},
		{"one byte short", padded[:len(padded)-1]},
		{"one byte long", append(bytes.Clone(padded), 0)},
		{"padding of the next bucket", append(bytes.Clone(padded), make([]byte, bodyFrame)...)},
		{"nonzero padding", append(bytes.Clone(padded[:len(padded)-1]), 1)},
		{"length leading zero", pad(strings.Replace(valid, " 15\n", " 015\n", 1))},
		{"length too long", pad(strings.Replace(valid, " 15\n", " 16\n", 1))},
		{"length over the cap", pad(strings.Replace(valid, " 15\n", " 16777217\n", 1))},
		{"salt padded", pad(strings.Replace(valid, "AAA 15", "AAA= 15", 1))},
		{"salt short", pad(strings.Replace(valid, "AAA 15", "A 15", 1))},
		{"lines swapped", pad(strings.Replace(strings.Replace(valid, "\npublic ", "\nPUB ", 1), "\nprivate ", "\npublic ", 1))},
		{"double space", pad(strings.Replace(valid, "public ", "public  ", 1))},
		{"CR in header", pad(strings.Replace(valid, " 15\n", " 15\r\n", 1))},
		{"public with space", pad(rawBody(`{"kind": "note"}`, `{"tip":`+tip+`,"text":"x"}`))},
		{"public key uppercase", pad(rawBody(`{"Kind":"note"}`, `{"tip":`+tip+`,"text":"x"}`))},
		{"public unknown field", pad(rawBody(`{"kind":"note","x":1}`, `{"tip":`+tip+`,"text":"x"}`))},
		{"public key twice", pad(rawBody(`{"kind":"triage","kind":"note"}`, `{"tip":`+tip+`,"text":"x"}`))},
		{"public unknown kind", pad(rawBody(`{"kind":"claim"}`, `{"tip":`+tip+`,"text":"x"}`))},
		{"public trailing data", pad(rawBody(`{"kind":"note"}{}`, `{"tip":`+tip+`,"text":"x"}`))},
		{"public null", pad(rawBody(`null`, `{"tip":`+tip+`,"text":"x"}`))},
		{"delete without ciphertext", pad(rawBody(`{"kind":"delete"}`, `{"tip":`+tip+`}`))},
		{"delete ciphertext uppercase", pad(rawBody(`{"kind":"delete"}`, `{"tip":`+tip+`,"ciphertext":"`+strings.Repeat("AB", 32)+`"}`))},
		{"delete ciphertext short", pad(rawBody(`{"kind":"delete"}`, `{"tip":`+tip+`,"ciphertext":"`+strings.Repeat("ab", 31)+`"}`))},
		{"delete ciphertext zero", pad(rawBody(`{"kind":"delete"}`, `{"tip":`+tip+`,"ciphertext":"`+strings.Repeat("00", 32)+`"}`))},
		{"private of another kind", pad(rawBody(`{"kind":"delete"}`, `{"tip":`+tip+`,"text":"x"}`))},
		{"private fields swapped", note(`{"text":"x","tip":` + tip + `}`)},
		{"private escape not canonical", note(`{"tip":` + tip + `,"text":"\u0078"}`)},
		{"private HTML not escaped", note(`{"tip":` + tip + `,"text":"<"}`)},
		{"private invalid UTF-8", note("{\"tip\":" + tip + ",\"text\":\"\xff\"}")},
		{"private escape character", note(`{"tip":` + tip + `,"text":"\u001b"}`)},
		{"tip padded", note(`{"tip":"AQIDBAUGBwgJCgsMDQ4PEA==","text":"x"}`)},
		{"tip short", note(`{"tip":"AQIDBAUGBwgJCgsMDQ4P","text":"x"}`)},
		{"tags null", triage(`"tags":null,"note":""`)},
		{"tags missing", triage(`"note":""`)},
		{"tags unsorted", triage(`"tags":["b","a"],"note":""`)},
		{"tags repeated", triage(`"tags":["a","a"],"note":""`)},
		{"note missing", triage(`"tags":[]`)},
		{"handover null", handover(`null`)},
		{"handover empty", handover(`[]`)},
		{"handover ciphertext null", handover(`[{"index":1,"ciphertext":null}]`)},
		{"handover ciphertext with newline", handover(`[{"index":1,"ciphertext":"AQ\nID"}]`)},
		{"handover ciphertext unpadded", handover(`[{"index":1,"ciphertext":"AQ"}]`)},
		{"handover index float", handover(`[{"index":1.0,"ciphertext":"AQ=="}]`)},
		{"handover index leading zero", handover(`[{"index":01,"ciphertext":"AQ=="}]`)},
		{"assignee null", triage(`"tags":[],"assignee":null,"note":""`)},
		{"assignee after the note", triage(`"tags":[],"note":"","assignee":"bob"`)},
		{"assignee not a label", triage(`"tags":[],"assignee":"Bob","note":""`)},
		{"assignee a number", triage(`"tags":[],"assignee":1,"note":""`)},
		{"handover tips empty list", handoverTips(`[]`, `[]`)},
		{"handover tips null", handoverTips(`[]`, `null`)},
		{"handover tip hash uppercase", handoverTips(`[]`, `[{"tip":`+tip+`,"ciphertext":"`+strings.Repeat("AB", 32)+`","sealed":"`+strings.Repeat("ab", 32)+`","length":1}]`)},
		{"handover tip sealed short", handoverTips(`[]`, `[{"tip":`+tip+`,"ciphertext":"`+strings.Repeat("ab", 32)+`","sealed":"`+strings.Repeat("ab", 31)+`","length":1}]`)},
		{"handover tip id padded", handoverTips(`[]`, `[{"tip":"AQIDBAUGBwgJCgsMDQ4PEA==","ciphertext":"`+strings.Repeat("ab", 32)+`","sealed":"`+strings.Repeat("ab", 32)+`","length":1}]`)},
		{"handover tip members swapped", handoverTips(`[]`, `[{"ciphertext":"`+strings.Repeat("ab", 32)+`","tip":`+tip+`,"sealed":"`+strings.Repeat("ab", 32)+`","length":1}]`)},
		{"handover tip length zero", handoverTips(`[]`, `[{"tip":`+tip+`,"ciphertext":"`+strings.Repeat("ab", 32)+`","sealed":"`+strings.Repeat("ab", 32)+`","length":0}]`)},
		{"handover tip length float", handoverTips(`[]`, `[{"tip":`+tip+`,"ciphertext":"`+strings.Repeat("ab", 32)+`","sealed":"`+strings.Repeat("ab", 32)+`","length":1.0}]`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, parts, err := parseEventBody(c.plain)
			if !errors.Is(err, crypto.ErrMalformed) || b != nil || parts != nil {
				t.Fatalf("parseEventBody = %+v, %v; want ErrMalformed", b, err)
			}
		})
	}
}

// unpaddedSize returns the size of body's plaintext before padding.
func unpaddedSize(t *testing.T, body *EventBody) int {
	t.Helper()
	pub, priv, err := body.marshalParts()
	if err != nil {
		t.Fatal(err)
	}
	return len(rawBody(string(pub), string(priv)))
}

// Padding lands on the bucket at the edges: 1,024 bytes unpadded is one
// frame, 1,025 is two (PADMÉ(1,025) = 1,088, rounded up).
func TestEventBodyPadding(t *testing.T) {
	for _, c := range []struct{ unpadded, padded int }{{bodyFrame - 1, bodyFrame}, {bodyFrame, bodyFrame}, {bodyFrame + 1, 2 * bodyFrame}} {
		body := &EventBody{Kind: KindNote, Tip: tipID(1)}
		for n := 1; ; n++ {
			body.Text = strings.Repeat("y", n)
			if size := unpaddedSize(t, body); size == c.unpadded {
				break
			} else if size > c.unpadded {
				t.Fatalf("no note text gives %d bytes unpadded", c.unpadded)
			}
		}
		plain := bodyPlain(t, body)
		if len(plain) != c.padded {
			t.Errorf("body of %d bytes padded to %d, want %d", c.unpadded, len(plain), c.padded)
		}
		if _, _, err := parseEventBody(plain); err != nil {
			t.Errorf("body of %d bytes: %v", c.unpadded, err)
		}
		if _, _, err := parseEventBody(plain[:len(plain)-1]); !errors.Is(err, crypto.ErrMalformed) {
			t.Errorf("body of %d bytes, one byte of padding short: %v", c.unpadded, err)
		}
	}
}

func TestHandOver(t *testing.T) {
	bob, carol := newEditor(t, "bob"), newEditor(t, "carol")
	l := newTestLog(t)
	l.addBundle(1, []*crypto.EditorKey{testAlice, bob})
	i := l.addEvent(bob, testBodies()[0])
	l.addBundle(2, []*crypto.EditorKey{testAlice, bob, carol})

	e := l.events[i]
	if _, _, err := OpenEventBody(l.bodies[i], e, carol.Identity); err == nil {
		t.Fatal("carol opened a body sealed before she joined")
	}
	carolRecipient, err := age.ParseX25519Recipient(carol.Public.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	h, err := HandOver(l.bodies[i], e, i, testAlice.Identity, carolRecipient)
	if err != nil {
		t.Fatal(err)
	}
	j := l.addEvent(testAlice, &EventBody{Kind: KindHandover, To: "carol", Bodies: []HandedOver{h}})

	// carol opens the handover event, then the handed-over body.
	hb, _, err := OpenEventBody(l.bodies[j], l.events[j], carol.Identity)
	if err != nil {
		t.Fatal(err)
	}
	if len(hb.Bodies) != 1 || hb.Bodies[0].Index != i {
		t.Fatalf("handover bodies = %+v, want one of index %d", hb.Bodies, i)
	}
	got, _, err := OpenHandedOver(hb.Bodies[0], e, carol.Identity)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sorted(testBodies()[0])) {
		t.Errorf("handed-over body = %+v, want %+v", got, testBodies()[0])
	}
	// A handed-over body checked against another event is refused.
	var ce *CommitmentError
	if _, _, err := OpenHandedOver(hb.Bodies[0], l.events[j], carol.Identity); !errors.As(err, &ce) {
		t.Errorf("OpenHandedOver against another event = %v, want a *CommitmentError", err)
	}
	// bob, who is not the recipient, cannot open it.
	if _, _, err := OpenHandedOver(hb.Bodies[0], e, bob.Identity); err == nil {
		t.Error("bob opened a body handed over to carol")
	}
	// carol passes the body on to dave, added after her; the plaintext
	// still opens the original event's commitments.
	dave := newEditor(t, "dave")
	daveRecipient, err := age.ParseX25519Recipient(dave.Public.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	again, err := HandOverAgain(hb.Bodies[0], e, carol.Identity, daveRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if again.Index != i || bytes.Equal(again.Ciphertext, hb.Bodies[0].Ciphertext) {
		t.Errorf("HandOverAgain = index %d, same ciphertext %v; want index %d, a new ciphertext", again.Index, bytes.Equal(again.Ciphertext, hb.Bodies[0].Ciphertext), i)
	}
	if got, _, err := OpenHandedOver(again, e, dave.Identity); err != nil || !reflect.DeepEqual(got, sorted(testBodies()[0])) {
		t.Errorf("dave's body = %+v, %v", got, err)
	}
	if _, err := HandOverAgain(hb.Bodies[0], l.events[j], carol.Identity, daveRecipient); !errors.As(err, &ce) {
		t.Errorf("HandOverAgain against another event = %v, want a *CommitmentError", err)
	}
	if _, err := HandOverAgain(hb.Bodies[0], e, bob.Identity, daveRecipient); err == nil {
		t.Error("bob passed on a body handed over to carol")
	}
	if _, err := l.verify(); err != nil {
		t.Fatal(err)
	}
}

// A post-quantum bundle seals and opens as well.
func TestEventBodyHybrid(t *testing.T) {
	k, err := crypto.GenerateEditorKey("pq", false)
	if err != nil {
		t.Fatal(err)
	}
	b := testBundle(t, k)
	sb, err := SealEventBody(testBodies()[2], b)
	if err != nil {
		t.Fatal(err)
	}
	if err := crypto.CheckCiphertext(sb.Ciphertext, crypto.StanzaHybrid, 1); err != nil {
		t.Fatal(err)
	}
	e, err := sb.Event("2026-03-14", tlog.Tree{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenEventBody(sb.Ciphertext, e, k.Identity); err != nil {
		t.Fatal(err)
	}
}
