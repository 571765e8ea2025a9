package protocol_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"fieldtip/protocol"
)

// The worked example of docs/log.md, "Publications": the requests an
// editor's newsdesk sends and what the server answers, written by the
// protocol's own encoders, compared with the page byte for byte. The
// requests parse back to themselves.
func TestClaimsWireDoc(t *testing.T) {
	salt := func(b byte) [32]byte {
		var s [32]byte
		for i := range s {
			s[i] = b + byte(i)
		}
		return s
	}
	const claim = "KJ0E9CkZQf43QwPyIJ6kUw"
	handle1, handle2 := strings.Repeat("04", 32), strings.Repeat("9c", 32)
	evidence := "6f3b1d0c2a99e2f1bd2f7f64a01c38c1c14d7b21a4f3b3f5d1d3f6c1c6e2a0b7"
	parts := []struct {
		index  int64
		public string
	}{
		{5, `{"kind":"claim","claim":"` + claim + `","text":"Copper concentrate leaves the Hyesan mine by truck at night.","scope":"Hyesan, March 2026"}`},
		{7, `{"kind":"link","claim":"` + claim + `","stance":"supports","cluster":"north gate","reliability":"B","credibility":2,"access":"first-hand","why":"saw the trucks load","handle":"` + handle1 + `","receipts":4}`},
		{8, `{"kind":"link","claim":"` + claim + `","stance":"supports","cluster":"rail yard","reliability":"C","credibility":3,"access":"document","why":"","handle":"` + handle2 + `","receipts":4}`},
		{10, `{"kind":"signoff","claim":"` + claim + `","version":5,"evidence":"` + evidence + `","changes":3,"decision":"approve"}`},
		{11, `{"kind":"signoff","claim":"` + claim + `","version":5,"evidence":"` + evidence + `","changes":3,"decision":"approve"}`},
		{12, `{"kind":"publish","claim":"` + claim + `","version":5,"evidence":"` + evidence + `","changes":3,"events":5}`},
	}
	req := &protocol.PublishRequest{Publish: 12}
	for i, p := range parts {
		req.Events = append(req.Events, protocol.RevealedEvent{Index: p.index, Salt: salt(byte(16 * i)), Public: []byte(p.public)})
	}
	var out strings.Builder
	section := func(title string, body []byte) {
		fmt.Fprintf(&out, "%s\n%s\n\n", title, strings.TrimSuffix(string(body), "\n"))
	}
	reply := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b, err := protocol.MarshalPublishRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := protocol.ParsePublishRequest(b); err != nil || len(again.Events) != len(parts) {
		t.Fatalf("the example request does not parse back: %v", err)
	}
	section("POST /editor/publish (alice, who logged the publication at 12)", b)
	section("202 Accepted: no checkpoint of 12 entries or more is cosigned by 2 editors yet; bob has cosigned one", reply(&protocol.PublishReply{
		Claim: claim, State: protocol.StatePending, URL: protocol.ClaimPath(claim), Page: "https://news.example" + protocol.ClaimPath(claim), Trail: protocol.ClaimTrailPath(claim), Cosigners: []string{},
		Waiting: &protocol.Waiting{Size: 12, Cosigners: 2, Bundle: 3, Have: 1}}))
	section("200 OK: the same request once carol has cosigned too (or at once, had they cosigned before)", reply(&protocol.PublishReply{
		Claim: claim, State: protocol.StateAccepted, URL: protocol.ClaimPath(claim), Page: "https://news.example" + protocol.ClaimPath(claim), Trail: protocol.ClaimTrailPath(claim),
		Head: 13, Witnessed: 13, Cosigners: []string{"bob", "carol"}}))
	policy := &protocol.Error{Code: protocol.CodePolicyNotMet, Rule: protocol.RuleApprovals,
		Message: "the policy is not met: needs an approval from an editor other than alice and bob; alice's approval does not count: alice wrote this version"}
	section("409 Conflict: had alice, the claim's author, been one of the two approvers", protocol.Marshal(policy))
	refused := &protocol.Error{Code: protocol.CodeTrailRefused, Rule: protocol.RuleCommitment, Index: 7,
		Message: "the public part and salt of event 7 do not open its commitment"}
	section("422 Unprocessable Entity: had the request changed a byte of the link at 7", protocol.Marshal(refused))

	correct := &protocol.RevealedEvent{Index: 20, Salt: salt(0xa0),
		Public: []byte(`{"kind":"correct","claim":"` + claim + `","type":"correction","text":"The trucks leave at 2am, not midnight."}`)}
	cb, err := protocol.MarshalRevealedEvent(correct)
	if err != nil {
		t.Fatal(err)
	}
	section("POST /editor/correct (bob, who logged the correction at 20)", cb)
	section("200 OK: the trail rebuilt over the log of 21 entries", reply(&protocol.PublishReply{
		Claim: claim, State: protocol.StateAccepted, URL: protocol.ClaimPath(claim), Page: "https://news.example" + protocol.ClaimPath(claim), Trail: protocol.ClaimTrailPath(claim),
		Head: 21, Witnessed: 13, Cosigners: []string{"bob", "carol"}}))

	period := &protocol.RevealedEvent{Index: 3, Salt: salt(0xc0), Public: []byte(`{"kind":"period"}`)}
	pb, err := protocol.MarshalRevealedEvent(period)
	if err != nil {
		t.Fatal(err)
	}
	section("POST /editor/period/close (alice, who logged the period event at 3, on 2026-03-14)", pb)
	section("200 OK: the root of the period is entry 4; tips from now on are receipted 2026-03-15", reply(&protocol.PeriodClosed{
		Receipts: 4, First: "2026-03-14", Last: "2026-03-14", Next: "2026-03-15"}))

	section("GET /claims", reply(&protocol.ClaimList{Claims: []protocol.ClaimSummary{{ID: claim, URL: protocol.ClaimPath(claim), Trail: protocol.ClaimTrailPath(claim),
		Text: "Copper concentrate leaves the Hyesan mine by truck at night.", Scope: "Hyesan, March 2026", Published: "2026-03-14", Updated: "2026-03-16",
		Publication: 12, Corrections: 1, Clusters: 2, Approvals: 2}}}))

	got := strings.TrimSuffix(out.String(), "\n")
	const file, marker = "../docs/log.md", "<!-- example of TestClaimsWireDoc -->"
	want := docBlock(t, file, marker)
	if *update && got != want {
		doc, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		doc = bytes.Replace(doc, []byte(marker+"\n```text\n"+want+"```\n"), []byte(marker+"\n```text\n"+got+"```\n"), 1)
		if err := os.WriteFile(file, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		want = docBlock(t, file, marker)
	}
	if got != want {
		t.Errorf("docs/log.md, Publications, worked example:\n%s\nthe encoders write:\n%s", want, got)
	}
}
