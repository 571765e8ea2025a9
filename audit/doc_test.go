package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/cryptotest"

	"fieldtip/crypto"
)

// exampleBundle is the bundle of docs/formats.md's worked example
// (ExampleSignBundle in package crypto), entry 0 of this page's example.
const exampleBundle = "fieldtip/bundle/v1\n" +
	"newsroom newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry\n" +
	"version 3\n" +
	"expires 2027-01-01T00:00:00Z\n" +
	"log log.example+974b4a5f+AVf/TKVMWvGsvKl9Tlkop00FsoQ3bWa9Ex07F5nTRF4c\n" +
	"policy clusters 2 approvals 2\n" +
	"editor alice age1d94r9nmwdjz7npjy9n0z47mrcx9a5apa4q6m8scyumzvzz744afs0a7rh0 alice+abd8ab9f+AT9aPesD+0RirXlDijdvDQta5CpC/EAN5ac6bEcRMvgl alice.cosign+694ce601+AVWbDjKK6AlInGNikJD8kcwFRFGK9Da6Sy2KcsA9WY/i\n" +
	"revoke bob\n" +
	"\n" +
	"— newsroom.example t8A7J8mOsCrEBI/ilpjSjQSPFla5C18XR6SVv2586PXRFiVOw0VVd/hCPQgeBbylJOH2HJEps5GIfLDT1J+nC50T8Ak=\n"

// exampleEvent is the event of docs/audit.md's worked example.
const exampleEvent = "fieldtip/event/v1\n" +
	"id KJ0E9CkZQf43QwPyIJ6kUw\n" +
	"bundle 3\n" +
	"day 2026-03-14\n" +
	"base 1 nJKJsLe/A+gzqAsHqJRLPLyfAPHvAwYDrbdsFhsn+Xs=\n" +
	"ciphertext 493c2b8ca7ab951faa2de3600906441196b210bc33aa19153041b7355d1de641\n" +
	"public 63d901c29c2f9f35d5f263be8c4befb34d17af136fe908dea430c018284c64fc\n" +
	"private 29a8e15762f6eabb2d9c1935eacf948a4bb359d7d65fa4dcaaa1779ebf248834\n" +
	"\n" +
	"— alice q9irn5pFQbWDHNt8vAA3zrO9sP7UcCovov2y2WBor652Tc53hIccB/AUx+TR6QGWi94RWTDwXqDk23VgSNtXHCRH+w4=\n"

// exampleTipHash is the SHA-256 of the upload of docs/formats.md's receipt
// example.
const exampleTipHash = "4fe7b59af6de3b665b67788cc2f99892ab827efae3a467342b3bb4e3bc8e5bfe"

// auditDocExample builds docs/audit.md's worked example and returns its
// blocks by name. It needs deterministic randomness (the caller's
// cryptotest.SetGlobalRandom) for the salts, the event id, age and the
// period key.
func auditDocExample(t *testing.T) map[string]string {
	b, err := crypto.OpenBundle([]byte(exampleBundle), testNewsroom.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLog(t)
	l.append([]byte(exampleBundle))
	l.bundle = b

	tip, err := crypto.ParseTipID("UFFSU1RVVldYWVpbXF1eXw")
	if err != nil {
		t.Fatal(err)
	}
	body := &EventBody{Kind: KindTriage, Tip: tip, Status: StatusUseful, Tags: []string{"hyesan", "copper"},
		Text: "Three trucks on the 14th, as the source said."}
	sb, err := SealEventBody(body, b)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := sb.Event("2026-03-14", l.tree())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := SignEvent(ev, signer(t, testAlice))
	if err != nil {
		t.Fatal(err)
	}
	l.append(msg)
	if _, err := l.verify(); err != nil {
		t.Fatal(err)
	}
	got, parts, err := OpenEventBody(sb.Ciphertext, ev, testAlice.Identity)
	if err != nil || got.Text != body.Text {
		t.Fatalf("OpenEventBody = %+v, %v", got, err)
	}

	out := map[string]string{}
	out["public and private parts"] = string(parts.Public) + "\n" + string(parts.Private) + "\n"
	pc, prc := parts.PublicCommitment(), parts.PrivateCommitment()
	unpadded := fmt.Sprintf("%s\npublic %s %d\nprivate %s %d\n%s%s",
		EventBodyHeader, b64url(parts.PublicSalt[:]), len(parts.Public), b64url(parts.PrivateSalt[:]), len(parts.Private),
		parts.Public, parts.Private)
	out["body"] = unpadded + "\n\n" +
		fmt.Sprintf("padded plaintext: %d bytes\n", crypto.Bucket(int64(len(unpadded)), bodyFrame)) +
		fmt.Sprintf("age file: %d bytes, SHA-256 %x\n", len(sb.Ciphertext), ev.Ciphertext) +
		fmt.Sprintf("public commitment %s\nprivate commitment %s\n", hex.EncodeToString(pc[:]), hex.EncodeToString(prc[:]))
	out["event"] = string(msg)

	k, err := GeneratePeriodKey()
	if err != nil {
		t.Fatal(err)
	}
	var th [32]byte
	if _, err := hex.Decode(th[:], []byte(exampleTipHash)); err != nil {
		t.Fatal(err)
	}
	tree, err := BuildReceiptsTree(k, [][32]byte{th}, 0)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := SealPeriodKey(k, OneDay("2026-03-14"), b)
	if err != nil {
		t.Fatal(err)
	}
	root := &ReceiptsRoot{Period: OneDay("2026-03-14"), Size: tree.Size(), Root: tree.Root(), Key: sha256.Sum256(sealed)}
	rmsg, err := SignReceiptsRoot(root, testLogKey.Signer)
	if err != nil {
		t.Fatal(err)
	}
	leaf := TipLeaf(k, th)
	index, proof, err := tree.Prove(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckLeaf(root, index, leaf, proof); err != nil {
		t.Fatal(err)
	}
	out["receipts"] = string(rmsg) + "\n" +
		fmt.Sprintf("period key %s\ntip leaf %s, index %d\n", b64url(k[:]), leaf, index)
	return out
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

var updateDoc = flag.Bool("update-doc", false, "rewrite the worked example of docs/audit.md")

// The worked example of docs/audit.md is, byte for byte, what
// auditDocExample prints. go test -run TestAuditDoc -update-doc rewrites
// it (after a change of format, or of how age or Go draws randomness).
func TestAuditDoc(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	blocks := auditDocExample(t)
	checkDocBlocks(t, "audit.md", "TestAuditDoc in audit/doc_test.go", []string{"public and private parts", "body", "event", "receipts"}, blocks)
	if blocks["event"] != exampleEvent {
		t.Errorf("exampleEvent differs from the worked example's event:\n%s", blocks["event"])
	}
}

// checkDocBlocks compares the code blocks of docs/<file> that follow the
// markers "<!-- <name> of <test> -->" with blocks, or rewrites them with
// -update-doc.
func checkDocBlocks(t *testing.T, file, test string, names []string, blocks map[string]string) string {
	t.Helper()
	path := "../docs/" + file
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, name := range names {
		marker := "<!-- " + name + " of " + test + " -->"
		got := docBlock(t, doc, marker)
		if *updateDoc {
			doc = strings.Replace(doc, marker+"\n```text\n"+got+"```\n", marker+"\n```text\n"+blocks[name]+"```\n", 1)
		} else if got != blocks[name] {
			t.Errorf("docs/%s after %s:\n%s\nwant:\n%s", file, marker, got, blocks[name])
		}
	}
	if *updateDoc {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return doc
}

// docBlock returns the fenced code block that follows marker in a
// Markdown file.
func docBlock(t *testing.T, doc, marker string) string {
	t.Helper()
	_, after, ok := strings.Cut(doc, marker+"\n")
	if !ok {
		t.Fatalf("the doc has no %q", marker)
	}
	fence, after, ok := strings.Cut(after, "\n")
	if !ok || !strings.HasPrefix(fence, "```") {
		t.Fatalf("no code block right after %q", marker)
	}
	block, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("the code block after %q does not end", marker)
	}
	return block
}

// The parts of docs/audit.md's examples of the two members issue 10
// added: an assigned triage and a handover of tips. go test -run
// TestAuditDocIssue10 -update-doc rewrites them.
func TestAuditDocIssue10(t *testing.T) {
	tip, err := crypto.ParseTipID("UFFSU1RVVldYWVpbXF1eXw")
	if err != nil {
		t.Fatal(err)
	}
	bob := "bob"
	triage := &EventBody{Kind: KindTriage, Tip: tip, Status: StatusReviewing, Tags: []string{"copper"}, Assignee: &bob}
	var ct, sealed [32]byte
	if _, err := hex.Decode(ct[:], []byte(exampleTipHash)); err != nil {
		t.Fatal(err)
	}
	sealed = sha256.Sum256([]byte("the re-encryption"))
	handover := &EventBody{Kind: KindHandover, To: "carol", Tips: []HandedOverTip{{Tip: tip, Ciphertext: ct, Sealed: sealed, Length: 16252}}}
	block := ""
	for _, b := range []*EventBody{triage, handover} {
		_, priv, err := b.marshalParts()
		if err != nil {
			t.Fatal(err)
		}
		block += string(priv) + "\n"
		got, _, err := parseEventBody(bodyPlain(t, b))
		if err != nil || !reflect.DeepEqual(got, sorted(b)) {
			t.Errorf("parse(marshal(%+v)) = %+v, %v", b, got, err)
		}
	}
	checkDocBlocks(t, "audit.md", "TestAuditDocIssue10 in audit/doc_test.go", []string{"assignee and handed-over tips"}, map[string]string{"assignee and handed-over tips": block})
}
