package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"reflect"
	"strings"
	"testing"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/tlog"
)

// A revealed public part says exactly the public fields of its body, and
// the private part holds the rest.
func TestClaimBodiesPublicPart(t *testing.T) {
	b := testBundle(t, testAlice)
	for _, body := range claimBodies() {
		t.Run(string(body.Kind), func(t *testing.T) {
			sb, err := SealEventBody(body, b)
			if err != nil {
				t.Fatal(err)
			}
			e, err := sb.Event("2026-03-14", tlog.Tree{N: 1})
			if err != nil {
				t.Fatal(err)
			}
			got, parts, err := OpenEventBody(sb.Ciphertext, e, testAlice.Identity)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, body) {
				t.Fatalf("OpenEventBody = %+v, want %+v", got, body)
			}
			pub, err := ParsePublicPart(parts.Public)
			if err != nil {
				t.Fatalf("ParsePublicPart(%s): %v", parts.Public, err)
			}
			if !reflect.DeepEqual(pub, body.Public()) {
				t.Errorf("ParsePublicPart = %+v, want %+v", pub, body.Public())
			}
			if !bytes.HasPrefix(parts.Public, []byte(`{"kind":"`+string(body.Kind)+`"`)) {
				t.Errorf("public part %s does not start with its kind", parts.Public)
			}
			for _, secret := range []string{crypto.FormatTipID(body.Tip), hex32String(body.Ciphertext), body.PrivateWhy, body.Note} {
				if body.Tip == ([16]byte{}) && secret == crypto.FormatTipID(body.Tip) || body.Ciphertext == ([32]byte{}) && secret == hex32String(body.Ciphertext) {
					continue
				}
				if secret != "" && bytes.Contains(parts.Public, []byte(secret)) {
					t.Errorf("public part %s holds the private %q", parts.Public, secret)
				}
			}
		})
	}
}

func TestSealClaimBodyRefuses(t *testing.T) {
	b := testBundle(t, testAlice)
	id := ClaimID{1}
	link := func(f func(*EventBody)) EventBody {
		l := EventBody{Kind: KindLink, Claim: id, Stance: StanceSupports, Cluster: "c", Reliability: "A", Credibility: 1,
			Access: AccessHearsay, Why: "w", Handle: Leaf{1}, Receipts: 1, Tip: tipID(1), Ciphertext: [32]byte{1}}
		f(&l)
		return l
	}
	signoff := func(f func(*EventBody)) EventBody {
		s := EventBody{Kind: KindSignoff, Claim: id, Version: 1, Evidence: [32]byte{1}, Changes: 1, Decision: DecisionReject}
		f(&s)
		return s
	}
	for _, c := range []struct {
		name string
		body EventBody
	}{
		{"claim without text", EventBody{Kind: KindClaim, Claim: id}},
		{"claim text too long", EventBody{Kind: KindClaim, Claim: id, Text: strings.Repeat("x", MaxClaimText+1)}},
		{"claim scope too long", EventBody{Kind: KindClaim, Claim: id, Text: "x", Scope: strings.Repeat("x", MaxScope+1)}},
		{"claim text bidi override", EventBody{Kind: KindClaim, Claim: id, Text: "abc\u202edcb"}},
		{"claim text zero-width joiner", EventBody{Kind: KindClaim, Claim: id, Text: "a\u200db"}},
		{"claim text tab", EventBody{Kind: KindClaim, Claim: id, Text: "a\tb"}},
		{"claim text CR", EventBody{Kind: KindClaim, Claim: id, Text: "a\r\nb"}},
		{"claim text line separator", EventBody{Kind: KindClaim, Claim: id, Text: "a\u2028b"}},
		{"claim text invalid UTF-8", EventBody{Kind: KindClaim, Claim: id, Text: "a\xffb"}},
		{"claim text escape", EventBody{Kind: KindClaim, Claim: id, Text: "\x1b[2J"}},
		{"claim with a tip", EventBody{Kind: KindClaim, Claim: id, Text: "x", Tip: tipID(1)}},
		{"claim with a decision", EventBody{Kind: KindClaim, Claim: id, Text: "x", Decision: DecisionApprove}},
		{"link bad stance", link(func(l *EventBody) { l.Stance = "Supports" })},
		{"link no cluster", link(func(l *EventBody) { l.Cluster = "" })},
		{"link cluster too long", link(func(l *EventBody) { l.Cluster = strings.Repeat("c", MaxClusterName+1) })},
		{"link cluster newline", link(func(l *EventBody) { l.Cluster = "a\nb" })},
		{"link cluster leading space", link(func(l *EventBody) { l.Cluster = " a" })},
		{"link cluster trailing NBSP", link(func(l *EventBody) { l.Cluster = "a\u00a0" })},
		{"link reliability G", link(func(l *EventBody) { l.Reliability = "G" })},
		{"link reliability lowercase", link(func(l *EventBody) { l.Reliability = "a" })},
		{"link reliability two letters", link(func(l *EventBody) { l.Reliability = "AB" })},
		{"link credibility 0", link(func(l *EventBody) { l.Credibility = 0 })},
		{"link credibility 7", link(func(l *EventBody) { l.Credibility = 7 })},
		{"link bad access", link(func(l *EventBody) { l.Access = "firsthand" })},
		{"link two whys", link(func(l *EventBody) { l.PrivateWhy = "p" })},
		{"link no why", link(func(l *EventBody) { l.Why = "" })},
		{"link why too long", link(func(l *EventBody) { l.Why = strings.Repeat("w", MaxWhy+1) })},
		{"link no handle", link(func(l *EventBody) { l.Handle = Leaf{} })},
		{"link receipts 0", link(func(l *EventBody) { l.Receipts = 0 })},
		{"link receipts 2^53", link(func(l *EventBody) { l.Receipts = 1 << 53 })},
		{"link no ciphertext", link(func(l *EventBody) { l.Ciphertext = [32]byte{} })},
		{"link with a note", link(func(l *EventBody) { l.Note = "n" })},
		{"unlink link 0", EventBody{Kind: KindUnlink, Claim: id, Tip: tipID(1)}},
		{"unlink negative", EventBody{Kind: KindUnlink, Claim: id, Link: -1, Tip: tipID(1)}},
		{"unlink with a text", EventBody{Kind: KindUnlink, Claim: id, Link: 2, Text: "x"}},
		{"signoff no decision", signoff(func(s *EventBody) { s.Decision = "" })},
		{"signoff bad decision", signoff(func(s *EventBody) { s.Decision = "approved" })},
		{"signoff version 0", signoff(func(s *EventBody) { s.Version = 0 })},
		{"signoff no evidence", signoff(func(s *EventBody) { s.Evidence = [32]byte{} })},
		{"signoff changes 0", signoff(func(s *EventBody) { s.Changes = 0 })},
		{"signoff changes over the cap", signoff(func(s *EventBody) { s.Changes = MaxClaimEvents + 1 })},
		{"signoff with events", signoff(func(s *EventBody) { s.Events = 1 })},
		{"signoff note escape", signoff(func(s *EventBody) { s.Note = "\x07" })},
		{"publish no events", EventBody{Kind: KindPublish, Claim: id, Version: 1, Evidence: [32]byte{1}, Changes: 1}},
		{"publish with a decision", EventBody{Kind: KindPublish, Claim: id, Version: 1, Evidence: [32]byte{1}, Changes: 1, Events: 1, Decision: DecisionApprove}},
		{"publish events over the cap", EventBody{Kind: KindPublish, Claim: id, Version: 1, Evidence: [32]byte{1}, Changes: 1, Events: MaxClaimEvents + 1}},
		{"correct no type", EventBody{Kind: KindCorrect, Claim: id, Text: "x"}},
		{"correct bad type", EventBody{Kind: KindCorrect, Claim: id, Correction: "erratum", Text: "x"}},
		{"correct no text", EventBody{Kind: KindCorrect, Claim: id, Correction: CorrectionCorrection}},
		{"period with a claim", EventBody{Kind: KindPeriod, Claim: id}},
		{"period with a text", EventBody{Kind: KindPeriod, Text: "x"}},
		{"triage with a claim", EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusNew, Claim: id}},
	} {
		if sb, err := SealEventBody(&c.body, b); !errors.Is(err, crypto.ErrMalformed) {
			t.Errorf("%s: SealEventBody = %v, %v; want ErrMalformed", c.name, sb, err)
		}
	}
	ok := []EventBody{
		{Kind: KindClaim, Claim: id, Text: strings.Repeat("x", MaxClaimText), Scope: strings.Repeat("s", MaxScope)},
		link(func(l *EventBody) {
			l.Cluster = strings.Repeat("c", MaxClusterName)
			l.Why = strings.Repeat("w", MaxWhy)
		}),
		link(func(l *EventBody) { l.Receipts = 1<<53 - 1 }),
		signoff(func(s *EventBody) { s.Changes = MaxClaimEvents; s.Note = strings.Repeat("n", MaxWhy) }),
	}
	for _, body := range ok {
		if _, err := SealEventBody(&body, b); err != nil {
			t.Errorf("SealEventBody at a limit: %v", err)
		}
	}
}

// claimParts are the parts of one valid body of each claim kind, as JSON
// text, for mangling.
var claimParts = map[Kind][2]string{
	KindClaim:   {`{"kind":"claim","claim":"BwcHAAAAAAAAAAAAAAAAAA","text":"x","scope":""}`, `{}`},
	KindLink:    {`{"kind":"link","claim":"BwcHAAAAAAAAAAAAAAAAAA","stance":"supports","cluster":"c","reliability":"B","credibility":2,"access":"first-hand","why":"w","handle":"` + strings.Repeat("01", 32) + `","receipts":4}`, `{"tip":"AQIDBAUGBwgJCgsMDQ4PEA","ciphertext":"` + strings.Repeat("09", 32) + `","why":""}`},
	KindUnlink:  {`{"kind":"unlink","claim":"BwcHAAAAAAAAAAAAAAAAAA","link":9}`, `{"tip":"AQIDBAUGBwgJCgsMDQ4PEA"}`},
	KindSignoff: {`{"kind":"signoff","claim":"BwcHAAAAAAAAAAAAAAAAAA","version":3,"evidence":"` + strings.Repeat("05", 32) + `","changes":4,"decision":"approve"}`, `{"note":""}`},
	KindPublish: {`{"kind":"publish","claim":"BwcHAAAAAAAAAAAAAAAAAA","version":3,"evidence":"` + strings.Repeat("05", 32) + `","changes":4,"events":7}`, `{}`},
	KindCorrect: {`{"kind":"correct","claim":"BwcHAAAAAAAAAAAAAAAAAA","type":"correction","text":"x"}`, `{}`},
	KindPeriod:  {`{"kind":"period"}`, `{}`},
}

func TestParseClaimPartsMalformed(t *testing.T) {
	for k, p := range claimParts {
		if _, _, err := parseEventBody(pad(rawBody(p[0], p[1]))); err != nil {
			t.Fatalf("the table's %s does not parse: %v", k, err)
		}
	}
	sub := func(k Kind, old, new string) string { return strings.Replace(claimParts[k][0], old, new, 1) }
	for _, c := range []struct {
		name            string
		public, private string
	}{
		{"claim id padded", sub(KindClaim, `AAAAAA"`, `AAAAAA=="`), `{}`},
		{"claim id short", sub(KindClaim, `BwcHAAAAAAAAAAAAAAAAAA`, `BwcHAAAAAAAAAAAAAAAA`), `{}`},
		{"claim id standard base64", sub(KindClaim, `BwcHAAAAAAAAAAAAAAAAAA`, `BwcH+AAAAAAAAAAAAAAAAA`), `{}`},
		{"claim scope missing", sub(KindClaim, `,"scope":""`, ``), `{}`},
		{"claim members swapped", `{"kind":"claim","text":"x","claim":"BwcHAAAAAAAAAAAAAAAAAA","scope":""}`, `{}`},
		{"claim kind not first", `{"claim":"BwcHAAAAAAAAAAAAAAAAAA","kind":"claim","text":"x","scope":""}`, `{}`},
		{"claim kind twice", `{"kind":"note","kind":"claim","claim":"BwcHAAAAAAAAAAAAAAAAAA","text":"x","scope":""}`, `{}`},
		{"claim empty text", sub(KindClaim, `"text":"x"`, `"text":""`), `{}`},
		{"claim private not empty", claimParts[KindClaim][0], `{"note":""}`},
		{"claim private null", claimParts[KindClaim][0], `null`},
		{"claim text bidi escaped", sub(KindClaim, `"text":"x"`, `"text":"\u202e"`), `{}`},
		{"claim text bidi raw", sub(KindClaim, `"text":"x"`, "\"text\":\"\u202e\""), `{}`},
		{"claim text HTML not escaped", sub(KindClaim, `"text":"x"`, `"text":"<"`), `{}`},
		{"claim unknown member", sub(KindClaim, `"scope":""`, `"scope":"","x":1`), `{}`},
		{"link handle uppercase", sub(KindLink, strings.Repeat("01", 32), strings.Repeat("0A", 32)), claimParts[KindLink][1]},
		{"link handle short", sub(KindLink, strings.Repeat("01", 32), strings.Repeat("01", 31)), claimParts[KindLink][1]},
		{"link credibility string", sub(KindLink, `"credibility":2`, `"credibility":"2"`), claimParts[KindLink][1]},
		{"link credibility float", sub(KindLink, `"credibility":2`, `"credibility":2.0`), claimParts[KindLink][1]},
		{"link credibility exponent", sub(KindLink, `"credibility":2`, `"credibility":2e0`), claimParts[KindLink][1]},
		{"link receipts negative", sub(KindLink, `"receipts":4`, `"receipts":-4`), claimParts[KindLink][1]},
		{"link receipts leading zero", sub(KindLink, `"receipts":4`, `"receipts":04`), claimParts[KindLink][1]},
		{"link reliability number", sub(KindLink, `"reliability":"B"`, `"reliability":2`), claimParts[KindLink][1]},
		{"link no why at all", sub(KindLink, `"why":"w"`, `"why":""`), claimParts[KindLink][1]},
		{"link two whys", claimParts[KindLink][0], strings.Replace(claimParts[KindLink][1], `"why":""`, `"why":"p"`, 1)},
		{"link private ciphertext zero", claimParts[KindLink][0], strings.Replace(claimParts[KindLink][1], strings.Repeat("09", 32), strings.Repeat("00", 32), 1)},
		{"link private tip missing", claimParts[KindLink][0], `{"ciphertext":"` + strings.Repeat("09", 32) + `","why":""}`},
		{"link cluster with newline", sub(KindLink, `"cluster":"c"`, `"cluster":"c\nd"`), claimParts[KindLink][1]},
		{"unlink link zero", sub(KindUnlink, `"link":9`, `"link":0`), claimParts[KindUnlink][1]},
		{"unlink link huge", sub(KindUnlink, `"link":9`, `"link":99999999999999999999`), claimParts[KindUnlink][1]},
		{"unlink private empty", claimParts[KindUnlink][0], `{}`},
		{"signoff evidence short", sub(KindSignoff, strings.Repeat("05", 32), "05"), claimParts[KindSignoff][1]},
		{"signoff decision approved", sub(KindSignoff, `"approve"`, `"approved"`), claimParts[KindSignoff][1]},
		{"signoff changes zero", sub(KindSignoff, `"changes":4`, `"changes":0`), claimParts[KindSignoff][1]},
		{"signoff private missing note", claimParts[KindSignoff][0], `{}`},
		{"publish with a decision", sub(KindPublish, `"events":7`, `"events":7,"decision":"approve"`), `{}`},
		{"publish events zero", sub(KindPublish, `"events":7`, `"events":0`), `{}`},
		{"correct type missing", sub(KindCorrect, `"type":"correction",`, ``), `{}`},
		{"correct type retracted", sub(KindCorrect, `"correction"`, `"retracted"`), `{}`},
		{"period with a claim", `{"kind":"period","claim":"BwcHAAAAAAAAAAAAAAAAAA"}`, `{}`},
		{"period private with a tip", `{"kind":"period"}`, `{"tip":"AQIDBAUGBwgJCgsMDQ4PEA"}`},
		{"kind uppercase", sub(KindPublish, `"publish"`, `"Publish"`), `{}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, parts, err := parseEventBody(pad(rawBody(c.public, c.private)))
			if !errors.Is(err, crypto.ErrMalformed) || b != nil || parts != nil {
				t.Fatalf("parseEventBody = %+v, %v; want ErrMalformed", b, err)
			}
		})
	}
}

func TestParsePublicPart(t *testing.T) {
	for k, p := range claimParts {
		b, err := ParsePublicPart([]byte(p[0]))
		if err != nil || b.Kind != k {
			t.Fatalf("ParsePublicPart(%s) = %+v, %v", p[0], b, err)
		}
	}
	// A public part alone may have its why in the private part: it does
	// not know.
	noWhy := strings.Replace(claimParts[KindLink][0], `"why":"w"`, `"why":""`, 1)
	if _, err := ParsePublicPart([]byte(noWhy)); err != nil {
		t.Errorf("ParsePublicPart of a link with a private why: %v", err)
	}
	for _, bad := range []string{
		"", "{}", "null", `{"kind":"claim"}`, claimParts[KindClaim][0] + " ", " " + claimParts[KindClaim][0],
		claimParts[KindClaim][0] + "{}", `{"kind":"x"}`, `{"kind":"triage","tip":"AQIDBAUGBwgJCgsMDQ4PEA"}`,
		`{"kind":"claim","claim":"BwcHAAAAAAAAAAAAAAAAAA","text":"` + strings.Repeat("x", MaxPublicPart) + `","scope":""}`,
	} {
		if b, err := ParsePublicPart([]byte(bad)); !errors.Is(err, crypto.ErrMalformed) || b != nil {
			t.Errorf("ParsePublicPart(%.40q) = %+v, %v; want ErrMalformed", bad, b, err)
		}
	}
}

func TestEvidenceHash(t *testing.T) {
	if got, want := EvidenceHash(nil), sha256.Sum256([]byte("fieldtip/evidence/v1\n")); got != want {
		t.Errorf("EvidenceHash(nil) = %x, want %x", got, want)
	}
	want := sha256.Sum256([]byte("fieldtip/evidence/v1\n3\n10\n41\n"))
	for _, links := range [][]int64{{3, 10, 41}, {41, 3, 10}} {
		if got := EvidenceHash(links); got != want {
			t.Errorf("EvidenceHash(%v) = %x, want %x", links, got, want)
		}
	}
	if EvidenceHash([]int64{3, 10}) == want {
		t.Error("a link fewer hashes the same")
	}
}

func TestClaimID(t *testing.T) {
	for range 200 {
		id, err := GenerateClaimID()
		if err != nil {
			t.Fatal(err)
		}
		if s := id.String(); s[0] == '-' || len(s) != 22 {
			t.Fatalf("GenerateClaimID = %q", s)
		}
		if back, err := ParseClaimID(id.String()); err != nil || back != id {
			t.Fatalf("ParseClaimID(%s) = %s, %v", id, back, err)
		}
	}
	for _, bad := range []string{"", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAA+A", "AAAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := ParseClaimID(bad); !errors.Is(err, crypto.ErrMalformed) {
			t.Errorf("ParseClaimID(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}
