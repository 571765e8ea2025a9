package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/cryptotest"

	"fieldtip/crypto"
)

// The vectors under testdata/trail/<case> and testdata/public-part/<case>
// are written by TestGenerateClaimVectors from the tables of the tests
// (tamperedTrails, claimParts, claimBodies), with Go's deterministic test
// randomness. Regenerate them with
//
//	go test ./audit -run '^TestGenerateClaimVectors$' -update-vectors
//
// A vector file is a header of "key: value" lines, a blank line, and the
// input bytes:
//
//	expect: <ok, malformed, or the name of a trail rule>
//	newsroom: <the pinned newsroom key>        (trails)
//	comment: <what the case breaks>
//
//	<input>
//
//go:generate go test -run ^TestGenerateClaimVectors$ -update-vectors

var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/trail and testdata/public-part")

// trailRules names the trail rules in vector files.
var trailRules = map[string]error{
	"format": ErrTrailFormat, "bundle": ErrTrailBundle, "signature": ErrTrailSignature,
	"commitment": ErrTrailCommitment, "part": ErrTrailPart, "checkpoint": ErrTrailCheckpoint,
	"inclusion": ErrTrailInclusion, "consistency": ErrTrailConsistency, "cosigners": ErrTrailCosigners,
	"day": ErrTrailDay, "witnessed": ErrTrailWitnessed, "receipts": ErrTrailReceipts,
	"handle": ErrTrailHandle, "changes": ErrTrailChanges, "replay": ErrTrailReplay, "policy": ErrTrailPolicy,
}

func ruleName(rule error) string {
	if rule == nil {
		return "ok"
	}
	for k, v := range trailRules {
		if v == rule {
			return k
		}
	}
	panic("unnamed rule")
}

func vectorName(s string) string {
	return strings.NewReplacer(" ", "_", "'", "", ",", "", "-", "_").Replace(s)
}

type claimVector struct {
	dir, name, expect, comment string
	headers                    []string
	body                       []byte
}

func (v claimVector) marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "expect: %s\n", v.expect)
	for _, h := range v.headers {
		b.WriteString(h + "\n")
	}
	fmt.Fprintf(&b, "comment: %s\n\n", v.comment)
	b.Write(v.body)
	return b.Bytes()
}

func claimVectors(t *testing.T) []claimVector {
	_, good, cases := tamperedTrails(t)
	news := "newsroom: " + testNewsroom.Verifier
	vs := []claimVector{{dir: "trail", name: "ok", expect: "ok", comment: "the trail of a published claim", headers: []string{news}, body: good}}
	for _, tc := range cases {
		vs = append(vs, claimVector{dir: "trail", name: ruleName(tc.rule) + "_" + vectorName(tc.name), expect: ruleName(tc.rule),
			comment: tc.name, headers: []string{news}, body: mangle(t, good, tc.f)})
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, good[:len(good)-1], "", " "); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		body []byte
	}{
		{"indented", append(pretty.Bytes(), '\n')},
		{"no final newline", good[:len(good)-1]},
		{"CRLF", append(bytes.Clone(good[:len(good)-1]), '\r', '\n')},
		{"version 2", bytes.Replace(good, []byte(TrailHeader), []byte("fieldtip/trail/v2"), 1)},
		{"members reordered", bytes.Replace(good, []byte(`{"trail":"`+TrailHeader+`","claim":"AQIDAAAAAAAAAAAAAAAAAA",`), []byte(`{"trail":"`+TrailHeader+`",`), 1)},
		{"unknown member", bytes.Replace(good, []byte(`"handles":[`), []byte(`"extra":1,"handles":[`), 1)},
		{"null list", bytes.Replace(good, []byte(`"receipts":[{`), []byte(`"receipts":null,"x":[{`), 1)},
		{"index with leading zero", bytes.Replace(good, []byte(`"index":0,`), []byte(`"index":00,`), 1)},
		{"escaped slash", bytes.Replace(good, []byte(`/`), []byte(`\/`), 1)},
		{"trailing document", append(bytes.Clone(good[:len(good)-1]), []byte("{}\n")...)},
		{"claim id padded", bytes.Replace(good, []byte(`"AQIDAAAAAAAAAAAAAAAAAA"`), []byte(`"AQIDAAAAAAAAAAAAAAAAAA=="`), 1)},
		{"public part with a space", bytes.Replace(good, []byte(`"public":{"kind":"claim",`), []byte(`"public":{"kind": "claim",`), 1)},
		{"public part a string", bytes.Replace(good, []byte(`"public":{"kind":"publish",`), []byte(`"public":"{}","x":{"kind":"publish",`), 1)},
	} {
		if bytes.Equal(f.body, good) {
			t.Fatalf("format case %q changes nothing", f.name)
		}
		vs = append(vs, claimVector{dir: "trail", name: "format_" + vectorName(f.name), expect: "format", comment: f.name, headers: []string{news}, body: f.body})
	}
	for i, b := range claimBodies() {
		pub, _ := b.partValues()
		j, err := json.Marshal(pub)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, claimVector{dir: "public-part", name: fmt.Sprintf("ok_%s_%d", b.Kind, i),
			expect: "ok", comment: "a " + string(b.Kind) + " event's public part", body: j})
	}
	for k, p := range claimParts {
		for _, m := range []struct{ name, old, new string }{
			{"space after colon", `"kind":`, `"kind": `},
			{"kind uppercase", `"kind"`, `"Kind"`},
			{"trailing comma", `}`, `,}`},
		} {
			vs = append(vs, claimVector{dir: "public-part", name: "malformed_" + string(k) + "_" + vectorName(m.name), expect: "malformed",
				comment: string(k) + ": " + m.name, body: []byte(strings.Replace(p[0], m.old, m.new, 1))})
		}
	}
	return vs
}

func TestGenerateClaimVectors(t *testing.T) {
	if !*updateVectors {
		t.Skip("without -update-vectors")
	}
	cryptotest.SetGlobalRandom(t, 9)
	for _, dir := range []string{"trail", "public-part"} {
		if err := os.RemoveAll(filepath.Join("testdata", dir)); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join("testdata", dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range claimVectors(t) {
		if err := os.WriteFile(filepath.Join("testdata", v.dir, v.name), v.marshal(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readClaimVectors reads the vectors of a directory: header and input by
// file name. It fails t if there are none.
func readClaimVectors(t testing.TB, dir string) map[string]struct {
	header map[string]string
	body   []byte
} {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in testdata/%s: %v", dir, err)
	}
	out := map[string]struct {
		header map[string]string
		body   []byte
	}{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		head, body, ok := bytes.Cut(b, []byte("\n\n"))
		if !ok {
			t.Fatalf("%s: no blank line after the header", f)
		}
		h := map[string]string{}
		for _, line := range strings.Split(string(head), "\n") {
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("%s: header line %q", f, line)
			}
			h[k] = v
		}
		out[filepath.Base(f)] = struct {
			header map[string]string
			body   []byte
		}{h, body}
	}
	return out
}

func TestClaimVectors(t *testing.T) {
	for name, v := range readClaimVectors(t, "trail") {
		t.Run("trail/"+name, func(t *testing.T) {
			rep, err := CheckTrail(v.body, v.header["newsroom"])
			want := v.header["expect"]
			if want == "ok" {
				if err != nil || rep == nil {
					t.Fatalf("CheckTrail = %v", err)
				}
				return
			}
			var te *TrailError
			if !errors.As(err, &te) || te.Rule != trailRules[want] || rep != nil {
				t.Fatalf("CheckTrail = %v; want rule %q", err, want)
			}
		})
	}
	for name, v := range readClaimVectors(t, "public-part") {
		t.Run("public-part/"+name, func(t *testing.T) {
			b, err := ParsePublicPart(v.body)
			switch v.header["expect"] {
			case "ok":
				if err != nil {
					t.Fatalf("ParsePublicPart = %v", err)
				}
				if again := marshalPublic(t, b); !bytes.Equal(again, v.body) {
					t.Fatalf("re-encoded as %s", again)
				}
			default:
				if !errors.Is(err, crypto.ErrMalformed) || b != nil {
					t.Fatalf("ParsePublicPart = %+v, %v; want ErrMalformed", b, err)
				}
			}
		})
	}
}

// marshalPublic encodes the public part of a body of public fields.
func marshalPublic(t testing.TB, b *EventBody) []byte {
	pub, _ := b.partValues()
	j, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// Anything ParseTrail accepts is its own one encoding; CheckTrail of any
// input is a report or a *TrailError, never a panic.
func FuzzParseTrail(f *testing.F) {
	vs := readClaimVectors(f, "trail")
	for _, v := range vs {
		f.Add(v.body)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseTrail(data)
		if err != nil {
			if tr != nil {
				t.Fatalf("ParseTrail returned a trail with error %v", err)
			}
			checkSentinel(t, "ParseTrail", err, crypto.ErrMalformed)
		} else {
			again, err := MarshalTrail(tr)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("MarshalTrail(ParseTrail(data)) = %q, %v; want the input", again, err)
			}
			back, err := ParseTrail(again)
			if err != nil || !reflect.DeepEqual(back, tr) {
				t.Fatalf("ParseTrail(MarshalTrail(t)) = %+v, %v", back, err)
			}
		}
		rep, err := CheckTrail(data, testNewsroom.Verifier)
		var te *TrailError
		if err != nil && (rep != nil || !errors.As(err, &te)) {
			t.Fatalf("CheckTrail = %v, %v; want a report or a *TrailError", rep, err)
		}
	})
}

// Anything ParsePublicPart accepts is exactly the encoding of what it
// returns.
func FuzzParsePublicPart(f *testing.F) {
	for _, v := range readClaimVectors(f, "public-part") {
		f.Add(v.body)
	}
	for _, p := range claimParts {
		f.Add([]byte(p[0]))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParsePublicPart(data)
		if err != nil {
			if b != nil {
				t.Fatalf("ParsePublicPart returned a body with error %v", err)
			}
			checkSentinel(t, "ParsePublicPart", err, crypto.ErrMalformed)
			return
		}
		if again := marshalPublic(t, b); !bytes.Equal(again, data) {
			t.Fatalf("encoding of ParsePublicPart(data) = %s, want %s", again, data)
		}
		if !reflect.DeepEqual(b.Public(), b) {
			t.Fatalf("ParsePublicPart returned private fields: %+v", b)
		}
	})
}
