package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"fieldtip/crypto"
)

// cosignOnDay adds cosignature lines by editors to a checkpoint the log
// key signed, dated the start of day: what crypto's CosignatureSigner
// writes on that day (a test cannot set its clock from this package).
func cosignOnDay(t *testing.T, signed []byte, day string, editors ...*crypto.EditorKey) []byte {
	t.Helper()
	d, err := time.Parse(crypto.DateLayout, day)
	if err != nil {
		t.Fatal(err)
	}
	ts := uint64(d.Unix())
	text, _, _ := strings.Cut(string(signed), "\n\n")
	out := signed
	for _, k := range editors {
		v := mustCosignVerifier(t, k)
		sig := binary.BigEndian.AppendUint32(nil, v.KeyHash())
		sig = binary.BigEndian.AppendUint64(sig, ts)
		sig = append(sig, ed25519.Sign(cosignKey(t, k), fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s\n", ts, text))...)
		out = append(out, fmt.Sprintf("— %s %s\n", v.Name(), base64.StdEncoding.EncodeToString(sig))...)
	}
	return sortSigs(t, out)
}

// claimsDocExample builds docs/claims.md's worked example and returns its
// blocks by name. It needs deterministic randomness (the caller's
// cryptotest.SetGlobalRandom).
func claimsDocExample(t *testing.T) map[string]string {
	bob, carol := newEditor(t, "bob"), newEditor(t, "carol")
	c := newClaimLog(t, crypto.DefaultPolicy, testAlice, bob, carol)
	var tipA [32]byte
	if _, err := hex.Decode(tipA[:], []byte(exampleTipHash)); err != nil {
		t.Fatal(err)
	}
	tipB := sha256.Sum256([]byte("another tip's ciphertext"))
	r := c.receipts("2026-03-13", tipA, tipB)
	id, err := GenerateClaimID()
	if err != nil {
		t.Fatal(err)
	}
	tipAID, err := crypto.ParseTipID("UFFSU1RVVldYWVpbXF1eXw")
	if err != nil {
		t.Fatal(err)
	}
	c.event("alice", &EventBody{Kind: KindClaim, Claim: id, Text: "Copper concentrate leaves the Hyesan mine by truck at night.", Scope: "Hyesan, March 2026"})
	l1 := c.event("alice", &EventBody{Kind: KindLink, Claim: id, Stance: StanceSupports, Cluster: "mine workers", Reliability: "B", Credibility: 2,
		Access: AccessFirstHand, Why: "Works the night shift; names the loading bay.", Handle: c.handle(r, tipA), Receipts: r, Tip: tipAID, Ciphertext: tipA})
	c.event("bob", &EventBody{Kind: KindLink, Claim: id, Stance: StanceSupports, Cluster: "customs papers", Reliability: "A", Credibility: 1,
		Access: AccessDocument, PrivateWhy: "Sent by the clerk who sent the permits in January.", Handle: c.handle(r, tipB), Receipts: r,
		Tip: tipID(9), Ciphertext: tipB})
	c.signoff("bob", id, DecisionApprove)
	c.signoff("carol", id, DecisionApprove)
	c.cosigned = append(c.cosigned, cosignOnDay(t, c.checkpoint(), "2026-03-14", bob, carol))
	c.publish("alice", id)
	data := c.trail(id)
	rep, err := CheckTrail(data, testNewsroom.Verifier)
	if err != nil {
		t.Fatal(err)
	}

	out := map[string]string{}
	var parts strings.Builder
	for _, ev := range c.state.ClaimEvents(id) {
		fmt.Fprintf(&parts, "%d %s %s\n", ev.Index, ev.Editor, c.parts[ev.Index].Public)
	}
	out["public parts"] = parts.String()
	out["private part"] = string(c.parts[l1].Private) + "\n"
	cs := c.state.Claim(id)
	ev := cs.Evidence()
	out["evidence"] = fmt.Sprintf("%s\n%d\n%d\n\nSHA-256 %s\n", EvidenceHeader, cs.Links[0].Index, cs.Links[1].Index, hex.EncodeToString(ev[:]))
	out["trail"] = string(data)
	out["report"] = formatReport(rep)
	return out
}

// formatReport writes what CheckTrail established, as newsdesk audit
// trail might.
func formatReport(rep *TrailReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "claim %s: %q\nscope %q\n", rep.Claim, rep.Text, rep.Scope)
	for _, v := range rep.Versions {
		fmt.Fprintf(&b, "version %d by %s on %s\n", v.Index, v.Editor, v.Day)
	}
	fmt.Fprintf(&b, "published at %d by %s on %s, under bundle %d (policy: %d clusters, %d approvals)\n",
		rep.Published.Index, rep.Published.Editor, rep.Published.Day, rep.Bundle, rep.Policy.Policy.Clusters, rep.Policy.Policy.Approvals)
	for _, cl := range rep.Policy.Clusters {
		fmt.Fprintf(&b, "supporting cluster %q:", cl.Name)
		for _, l := range cl.Links {
			fmt.Fprintf(&b, " link %d by %s, %s%d %s", l.Index, l.Editor, l.Reliability, l.Credibility, l.Access)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "approved by %s\n", strings.Join(rep.Policy.Approvers, ", "))
	for _, p := range rep.Periods {
		fmt.Fprintf(&b, "evidence receipted %s to %s\n", p.First, p.Last)
	}
	fmt.Fprintf(&b, "witnessed: %s size %d, cosigned by %s\nhead: size %d\n", rep.Origin, rep.Witnessed.N, strings.Join(rep.Cosigners, ", "), rep.Head.N)
	for _, c := range rep.Corrections {
		fmt.Fprintf(&b, "%s at %d by %s on %s: %q\n", c.Type, c.Index, c.Editor, c.Day, c.Text)
	}
	return b.String()
}

// The worked example of docs/claims.md is, byte for byte, what
// claimsDocExample prints. go test -run TestClaimsDoc -update-doc
// rewrites it.
func TestClaimsDoc(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	blocks := claimsDocExample(t)
	doc := checkDocBlocks(t, "claims.md", "TestClaimsDoc in audit/claims_doc_test.go", []string{"public parts", "private part", "evidence", "trail", "report"}, blocks)
	// The trail of the page is a good trail.
	trail := docBlock(t, doc, "<!-- trail of TestClaimsDoc in audit/claims_doc_test.go -->")
	if _, err := CheckTrail([]byte(trail), testNewsroom.Verifier); err != nil {
		t.Errorf("the trail of docs/claims.md: %v", err)
	}
}
