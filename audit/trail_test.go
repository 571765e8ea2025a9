package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"fieldtip/crypto"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestTrailGood(t *testing.T) {
	c, id := publishedClaim(t)
	data := c.trail(id)
	rep, err := CheckTrail(data, testNewsroom.Verifier)
	if err != nil {
		t.Fatalf("CheckTrail: %v\n%s", err, data)
	}
	if rep.Claim != id || rep.Text != "Copper concentrate leaves the Hyesan mine by truck at night." {
		t.Errorf("report claim %s %q", rep.Claim, rep.Text)
	}
	if got, want := rep.Cosigners, []string{"bob", "carol"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cosigners %v, want %v", got, want)
	}
	if got, want := rep.Policy.Approvers, []string{"bob", "carol"}; !reflect.DeepEqual(got, want) {
		t.Errorf("approvers %v, want %v", got, want)
	}
	if len(rep.Policy.Clusters) != 2 || len(rep.Policy.Others) != 1 {
		t.Errorf("clusters %+v, others %+v", rep.Policy.Clusters, rep.Policy.Others)
	}
	if !reflect.DeepEqual(rep.Periods, []Period{OneDay("2026-03-13")}) {
		t.Errorf("periods %v", rep.Periods)
	}
	var te *TrailError
	if _, err := CheckTrail(data[:len(data)-2], testNewsroom.Verifier); !errors.As(err, &te) || !errors.Is(err, ErrTrailFormat) {
		t.Errorf("truncated trail: %v", err)
	}
	t.Logf("%d bytes", len(data))
}

// mangle parses a trail, changes it and marshals it again.
func mangle(t *testing.T, data []byte, f func(tr *Trail)) []byte {
	t.Helper()
	tr, err := ParseTrail(data)
	if err != nil {
		t.Fatal(err)
	}
	f(tr)
	out, err := MarshalTrail(tr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventAt returns the position of the trail's event at log index i.
func eventAt(t *testing.T, tr *Trail, i int64) int {
	for j, e := range tr.Events {
		if e.Index == i {
			return j
		}
	}
	t.Fatalf("no event %d in the trail", i)
	return -1
}

// tamperCase is one way of tampering with the good trail of
// publishedClaim, and the rule and entry CheckTrail must name (rule nil:
// still a good trail).
type tamperCase struct {
	name  string
	f     func(tr *Trail)
	rule  error
	index int64
}

// tamperedTrails builds publishedClaim's log, with an earlier cosigned
// checkpoint, and returns its good trail and the ways of tampering with
// it.
func tamperedTrails(t *testing.T) (*claimLog, []byte, []tamperCase) {
	c, id := publishedClaim(t)
	// Entries: 0 bundle, 1 receipts, 2 claim, 3 link (tip 1), 4 link (tip
	// 2), 5 link contradicts (tip 3), 6 and 7 approvals, 8 publish.
	early := c.cosignAt(5, "bob", "carol")
	good := c.trail(id)
	eve := newEditor(t, "eve")
	other := newClaimLog(t, crypto.DefaultPolicy, testAlice)
	bundle2 := other.bundle(2, crypto.DefaultPolicy, []*crypto.EditorKey{testAlice, c.editors["bob"], c.editors["carol"]})
	lowered := *c.testLog.bundle
	lowered.Policy = crypto.Policy{Clusters: 1, Approvals: 1}
	loweredMsg, err := crypto.SignBundle(&lowered, testNewsroom.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return c, good, []tamperCase{
		{"a public part altered", func(tr *Trail) {
			e := &tr.Events[eventAt(t, tr, 3)]
			e.Public = bytes.Replace(e.Public, []byte("mine workers"), []byte("mine Workers"), 1)
		}, ErrTrailCommitment, 3},
		{"a salt altered", func(tr *Trail) { tr.Events[0].Salt[0] ^= 1 }, ErrTrailCommitment, 2},
		{"an event's inclusion proof altered", func(tr *Trail) { tr.Events[eventAt(t, tr, 6)].Proof[0][0] ^= 1 }, ErrTrailInclusion, 6},
		{"a bundle's inclusion proof altered", func(tr *Trail) { tr.Bundles[0].Proof[1][31] ^= 1 }, ErrTrailInclusion, 0},
		{"a cosignature removed", func(tr *Trail) {
			lines := strings.SplitAfter(string(tr.Witnessed), "\n")
			tr.Witnessed = []byte(strings.Join(lines[:len(lines)-2], ""))
		}, ErrTrailCosigners, -1},
		{"a cosignature by someone not an editor", func(tr *Trail) {
			tr.Witnessed = cosignNote(t, logSigned(t, tr.Witnessed), []string{"bob", "eve"}, map[string]*crypto.EditorKey{"bob": c.editors["bob"], "eve": eve})
		}, ErrTrailCosigners, -1},
		{"a cosignature by the author counts", func(tr *Trail) {
			tr.Witnessed = cosignNote(t, logSigned(t, tr.Witnessed), []string{"alice", "bob"}, c.editors)
			tr.Witnessed = sortSigs(t, tr.Witnessed)
		}, nil, 0},
		{"a cosignature to the second", func(tr *Trail) {
			tr.Witnessed = append(tr.Witnessed[:len(tr.Witnessed):len(tr.Witnessed)], secondCosignature(t, tr.Witnessed, c.editors["alice"])...)
			tr.Witnessed = sortSigs(t, tr.Witnessed)
		}, ErrTrailDay, -1},
		{"a handle swapped for another tip's", func(tr *Trail) {
			tr.Handles[0].Leaf, tr.Handles[0].Proof = tr.Handles[1].Leaf, tr.Handles[1].Proof
		}, ErrTrailHandle, 3},
		{"a handle's proof altered", func(tr *Trail) { tr.Handles[1].Proof[2][0] ^= 1 }, ErrTrailHandle, 4},
		{"a handle missing", func(tr *Trail) { tr.Handles = tr.Handles[1:] }, ErrTrailHandle, -1},
		{"the receipts root missing", func(tr *Trail) { tr.Receipts = nil }, ErrTrailReceipts, 3},
		{"the bundle swapped for another version", func(tr *Trail) { tr.Bundles[0].Entry = bundle2.Signed() }, ErrTrailBundle, 2},
		{"the bundle swapped for one with a lower policy", func(tr *Trail) { tr.Bundles[0].Entry = loweredMsg }, ErrTrailInclusion, 0},
		{"a sign-off removed", func(tr *Trail) {
			tr.Events = slices.Delete(tr.Events, eventAt(t, tr, 7), eventAt(t, tr, 7)+1)
		}, ErrTrailChanges, 8},
		{"a contradicting link removed", func(tr *Trail) {
			tr.Events = slices.Delete(tr.Events, eventAt(t, tr, 5), eventAt(t, tr, 5)+1)
			tr.Handles = tr.Handles[:2]
		}, ErrTrailChanges, 8},
		{"the claim event removed", func(tr *Trail) { tr.Events = tr.Events[1:] }, ErrTrailChanges, 3},
		{"the publication removed", func(tr *Trail) { tr.Events = tr.Events[:len(tr.Events)-1] }, ErrTrailReplay, -1},
		{"an earlier witnessed checkpoint", func(tr *Trail) {
			tr.Witnessed = early
			p, err := tlog.ProveTree(9, 5, c)
			if err != nil {
				t.Fatal(err)
			}
			tr.Consistency = p
		}, ErrTrailWitnessed, 5},
		{"a consistency proof altered", func(tr *Trail) { tr.Consistency[0][0] ^= 1 }, ErrTrailConsistency, -1},
		{"the head signed by another key", func(tr *Trail) {
			tr.Head = signCheckpoint(t, tr.Head, testAlice)
		}, ErrTrailCheckpoint, -1},
		{"a head with a second signature", func(tr *Trail) {
			tr.Head = cosignNote(t, tr.Head, []string{"bob"}, c.editors)
		}, ErrTrailCheckpoint, -1},
	}
}

// Each way of tampering with a trail fails CheckTrail with the rule it
// breaks, and the entry.
func TestTrailTampered(t *testing.T) {
	_, good, cases := tamperedTrails(t)
	if _, err := CheckTrail(good, testNewsroom.Verifier); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := mangle(t, good, tc.f)
			rep, err := CheckTrail(data, testNewsroom.Verifier)
			if tc.rule == nil {
				if err != nil {
					t.Fatalf("CheckTrail = %v", err)
				}
				return
			}
			var te *TrailError
			if !errors.As(err, &te) || rep != nil {
				t.Fatalf("CheckTrail = %v, %v; want a *TrailError", rep, err)
			}
			if !errors.Is(err, tc.rule) || te.Rule != tc.rule || te.Index != tc.index {
				t.Fatalf("CheckTrail = %v (rule %v, index %d); want rule %v, index %d", err, te.Rule, te.Index, tc.rule, tc.index)
			}
		})
	}
	if _, err := CheckTrail(good, testNewsroom.Verifier+"x"); err == nil {
		t.Error("CheckTrail with a bad newsroom key passed")
	}
	newsroom2, err := crypto.GenerateSignerKey(crypto.NewsroomKeyHeader, "newsroom.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckTrail(good, newsroom2.Verifier); !errors.Is(err, ErrTrailBundle) {
		t.Errorf("CheckTrail with another newsroom's key = %v, want ErrTrailBundle", err)
	}
}

// cosignAt has editors cosign a checkpoint of the log's first n entries.
func (c *claimLog) cosignAt(n int64, editors ...string) []byte {
	c.t.Helper()
	h, err := tlog.TreeHash(n, c)
	if err != nil {
		c.t.Fatal(err)
	}
	text := torchwood.Checkpoint{Origin: "log.example", Tree: tlog.Tree{N: n, Hash: h}}.String()
	msg, err := note.Sign(&note.Note{Text: text}, testLogKey.Signer)
	if err != nil {
		c.t.Fatal(err)
	}
	msg = cosignNote(c.t, msg, editors, c.editors)
	c.cosigned = append(c.cosigned, msg)
	return msg
}

// logSigned returns a checkpoint note with its log signature only.
func logSigned(t *testing.T, msg []byte) []byte {
	lines := strings.SplitAfter(string(msg), "\n")
	i := slices.Index(lines, "\n")
	return []byte(strings.Join(lines[:i+2], ""))
}

// signCheckpoint returns the checkpoint text of msg signed by an editor's
// signing key instead of the log's.
func signCheckpoint(t *testing.T, msg []byte, k *crypto.EditorKey) []byte {
	text, _, _ := strings.Cut(string(msg), "\n\n")
	out, err := note.Sign(&note.Note{Text: text + "\n"}, signer(t, k))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// secondCosignature returns a cosignature line by k over msg's checkpoint
// made by torchwood's signer, which writes the second.
func secondCosignature(t *testing.T, msg []byte, k *crypto.EditorKey) []byte {
	tw, err := torchwood.NewCosignatureSigner(crypto.CosignName(k.Label), cosignKey(t, k))
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(msg), "\n\n")
	for {
		signed, err := note.Sign(&note.Note{Text: text + "\n"}, tw)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(signed), "\n")
		line := lines[len(lines)-2]
		n, _ := note.Open(signed, note.VerifierList(mustCosignVerifier(t, k)))
		if ts, _ := torchwood.CosignatureTimestamp(n.Sigs[0]); ts%86400 != 0 {
			return []byte(line)
		}
	}
}

// cosignKey returns the Ed25519 key of an editor's cosigning key, read
// from its key file.
func cosignKey(t *testing.T, k *crypto.EditorKey) ed25519.PrivateKey {
	for _, line := range strings.Split(string(k.Marshal()), "\n") {
		if v, ok := strings.CutPrefix(line, "cosign PRIVATE+KEY+"); ok {
			parts := strings.SplitN(v, "+", 3)
			raw, err := base64.StdEncoding.DecodeString(parts[2])
			if err != nil {
				t.Fatal(err)
			}
			return ed25519.NewKeyFromSeed(raw[1:])
		}
	}
	t.Fatal("no cosigning key")
	return nil
}

func mustCosignVerifier(t *testing.T, k *crypto.EditorKey) note.Verifier {
	v, err := crypto.CosignatureVerifier(k.Public.Cosign)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sortSigs sorts the cosignature lines of a checkpoint note by key name,
// after the log's.
func sortSigs(t *testing.T, msg []byte) []byte {
	text, sigs, _ := strings.Cut(string(msg), "\n\n")
	lines := strings.SplitAfter(sigs, "\n")
	lines = lines[:len(lines)-1]
	rest := lines[1:]
	slices.Sort(rest)
	return []byte(text + "\n\n" + lines[0] + strings.Join(rest, ""))
}

// The server's side: BuildTrail refuses what CheckTrail would, with the
// same rules, and waits for cosignatures.
func TestBuildTrailRefuses(t *testing.T) {
	ctx := context.Background()
	// Published, but nobody cosigned yet: the publication waits.
	c := newClaimLog(t, crypto.Policy{Clusters: 1, Approvals: 1}, testAlice, newEditor(t, "bob"), newEditor(t, "carol"))
	r := c.receipts("2026-03-13", tipHash(1))
	id := ClaimID{9}
	c.claim("alice", id, "A claim.")
	c.link("alice", id, r, 1, StanceSupports, "x")
	c.signoff("bob", id, DecisionApprove)
	// Cosigned, but too early (before the approval), and then with a
	// second-precision cosignature only: neither will do.
	c.cosignAt(4, "bob", "carol")
	sec := append(logSigned(t, c.checkpoint()), secondCosignature(t, c.checkpoint(), c.editors["carol"])...)
	c.cosigned = append(c.cosigned, sec)
	c.publish("alice", id)
	build := func(rv []Revealed) error {
		_, err := BuildTrail(ctx, c, testNewsroom.Verifier, c.checkpoint(), id, rv)
		return err
	}
	if err := build(c.revealed(id)); !errors.Is(err, ErrTrailCosigners) {
		t.Fatalf("BuildTrail before cosignatures = %v, want ErrTrailCosigners", err)
	}
	c.cosign("carol")
	if err := build(c.revealed(id)); err != nil {
		t.Fatalf("BuildTrail once cosigned: %v", err)
	}
	rv := c.revealed(id)
	rv[1].Public = bytes.Replace(rv[1].Public, []byte(`"x"`), []byte(`"y"`), 1)
	if err := build(rv); !errors.Is(err, ErrTrailCommitment) {
		t.Errorf("BuildTrail with an altered part = %v, want ErrTrailCommitment", err)
	}
	rv = c.revealed(id)
	if err := build(append(rv[:2:2], rv[3:]...)); !errors.Is(err, ErrTrailChanges) {
		t.Errorf("BuildTrail without the sign-off = %v, want ErrTrailChanges", err)
	}
	rv[1].Salt = rv[0].Salt
	if err := build(rv); !errors.Is(err, ErrTrailCommitment) {
		t.Errorf("BuildTrail with another event's salt = %v, want ErrTrailCommitment", err)
	}
	if err := build(nil); !errors.Is(err, ErrTrailFormat) {
		t.Errorf("BuildTrail of nothing = %v", err)
	}

	// A publication the policy refused: no trail.
	c2 := newClaimLog(t, crypto.DefaultPolicy, testAlice, newEditor(t, "bob"))
	r2 := c2.receipts("2026-03-13", tipHash(1))
	c2.claim("alice", id, "A claim.")
	c2.link("alice", id, r2, 1, StanceSupports, "x")
	c2.signoff("bob", id, DecisionApprove)
	c2.cosign("alice", "bob")
	c2.publish("alice", id)
	if _, err := BuildTrail(ctx, c2, testNewsroom.Verifier, c2.checkpoint(), id, c2.revealed(id)); !errors.Is(err, ErrTrailPolicy) {
		t.Errorf("BuildTrail of a refused publication = %v, want ErrTrailPolicy", err)
	}
}

// A bundle logged after the cosigned checkpoint and before the
// publication (whose policy the publication is held to) must be
// witnessed too.
func TestTrailBundleBeforePublication(t *testing.T) {
	c := newClaimLog(t, crypto.DefaultPolicy, testAlice, newEditor(t, "bob"), newEditor(t, "carol"))
	r := c.receipts("2026-03-13", tipHash(1), tipHash(2))
	id := ClaimID{5}
	c.claim("alice", id, "A claim.")
	c.link("alice", id, r, 1, StanceSupports, "a")
	c.link("alice", id, r, 2, StanceSupports, "b")
	c.signoff("bob", id, DecisionApprove)
	c.signoff("carol", id, DecisionApprove)
	c.cosign("bob", "carol")
	c.bundle(2, crypto.DefaultPolicy, []*crypto.EditorKey{testAlice, c.editors["bob"], c.editors["carol"]})
	c.publish("alice", id)
	if _, err := BuildTrail(context.Background(), c, testNewsroom.Verifier, c.checkpoint(), id, c.revealed(id)); !errors.Is(err, ErrTrailCosigners) {
		t.Fatalf("BuildTrail = %v, want ErrTrailCosigners", err)
	}
	c.cosign("bob", "carol")
	rep, err := CheckTrail(c.trail(id), testNewsroom.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Bundle != 2 {
		t.Errorf("publication under bundle %d", rep.Bundle)
	}
}

// Corrections follow the publication into the trail, under a newer head;
// a bundle that changes after the publication joins the trail for the
// head.
func TestTrailCorrections(t *testing.T) {
	c, id := publishedClaim(t)
	c.event("bob", &EventBody{Kind: KindCorrect, Claim: id, Correction: CorrectionClarification, Text: "Twice a week, not nightly."})
	c.bundle(2, crypto.DefaultPolicy, []*crypto.EditorKey{testAlice, c.editors["bob"]}, "carol")
	c.event("alice", &EventBody{Kind: KindCorrect, Claim: id, Correction: CorrectionRetraction, Text: "The trucks carried zinc."})
	data := c.trail(id)
	rep, err := CheckTrail(data, testNewsroom.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrections) != 2 || rep.Corrections[1].Type != CorrectionRetraction || rep.Corrections[1].Editor != "alice" {
		t.Errorf("corrections %+v", rep.Corrections)
	}
	tr, _ := ParseTrail(data)
	if len(tr.Bundles) != 2 || rep.Bundle != 1 || rep.Head.N != int64(len(c.entries)) {
		t.Errorf("%d bundles, publication bundle %d, head %d", len(tr.Bundles), rep.Bundle, rep.Head.N)
	}
}

// A marshalled trail holds no tip id, no ciphertext hash of a tip, no
// private part and no private salt, in any of the encodings they are
// written in anywhere; and no cosignature time finer than a day.
func TestTrailRevealsNothingPrivate(t *testing.T) {
	c, id := publishedClaim(t)
	c.event("alice", &EventBody{Kind: KindLink, Claim: id, Stance: StanceContext, Cluster: "late", Reliability: "C", Credibility: 3,
		Access: AccessHearsay, PrivateWhy: "refused, after the publication", Handle: c.handle(1, tipHash(2)), Receipts: 1,
		Tip: tipID(2), Ciphertext: tipHash(2)})
	c.event("bob", &EventBody{Kind: KindCorrect, Claim: id, Correction: CorrectionCorrection, Text: "A correction."})
	data := c.trail(id)
	if _, err := CheckTrail(data, testNewsroom.Verifier); err != nil {
		t.Fatal(err)
	}
	var secrets [][]byte
	encodings := func(b []byte) {
		secrets = append(secrets, b, []byte(hex.EncodeToString(b)), []byte(base64.StdEncoding.EncodeToString(b)),
			[]byte(base64.RawURLEncoding.EncodeToString(b)), []byte(base64.RawStdEncoding.EncodeToString(b)))
	}
	for n := 1; n <= 3; n++ {
		id, h := tipID(byte(n)), tipHash(n)
		encodings(id[:])
		encodings(h[:])
	}
	for i, p := range c.parts {
		if len(p.Private) > 2 {
			secrets = append(secrets, p.Private)
		}
		encodings(p.PrivateSalt[:])
		if b := c.events[i]; b != nil {
			encodings(b.Ciphertext[:]) // the body's hash is in the entry: not a tip's
		}
	}
	for k := range c.keys {
		pk := c.keys[k]
		encodings(pk[:])
	}
	secrets = append(secrets, []byte("private note of"), []byte("refused, after the publication"))
	// The scan finds what the editors' state holds.
	if st := c.state.Marshal(); !bytes.Contains(st, []byte("private note of")) || !bytes.Contains(st, []byte(`"Tip":[1,2,3`)) {
		t.Fatal("the state lacks the private fields the scan looks for")
	}
	for _, s := range secrets {
		if bytes.Contains(data, s) {
			if isBodyHash(c, s) {
				continue
			}
			t.Errorf("the trail holds %q", s)
		}
	}
	tr, _ := ParseTrail(data)
	n, err := note.Open(tr.Witnessed, note.VerifierList(mustCosignVerifier(t, c.editors["bob"]), mustCosignVerifier(t, c.editors["carol"]), logVerifier(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range n.Sigs[1:] {
		if ts, _ := torchwood.CosignatureTimestamp(s); ts%86400 != 0 {
			t.Errorf("cosignature by %s at %d, not the start of a day", s.Name, ts)
		}
	}
}

// isBodyHash reports whether s is the hex of an event body's ciphertext
// hash, which event entries carry (a hash of the encrypted body, not of
// any tip).
func isBodyHash(c *claimLog, s []byte) bool {
	for _, e := range c.events {
		if string(s) == hex.EncodeToString(e.Ciphertext[:]) {
			return true
		}
	}
	return false
}

func logVerifier(t *testing.T) note.Verifier {
	v, err := note.NewVerifier(testLogKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
