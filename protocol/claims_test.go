package protocol_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"fieldtip/protocol"
)

// Revealed events and publish requests: the tables below are the vectors
// of testdata/revealed and testdata/publish (TestGenerateClaimsVectors
// writes them, TestClaimsVectorsUpToDate checks them, the fuzz targets
// start from them).

var (
	testSalt    = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}
	testSaltB64 = base64.RawURLEncoding.EncodeToString(testSalt[:])
	periodPart  = `{"kind":"period"}`
	claimPart   = `{"kind":"claim","claim":"AAECAwQFBgcICQoLDA0ODw","text":"Trucks \u003cb\u003eat night\u003c/b\u003e \u0026 dawn","scope":""}`
	publishPart = `{"kind":"publish","claim":"AAECAwQFBgcICQoLDA0ODw","version":3,"evidence":"` + strings.Repeat("ab", 32) + `","changes":3,"events":5}`
)

func revealedJSON(index int64, salt, public string) string {
	return fmt.Sprintf(`{"index":%d,"salt":%q,"public":%s}`, index, salt, public)
}

type claimsTest struct {
	name    string
	in      string
	want    any // *protocol.RevealedEvent, *protocol.PublishRequest, or nil: malformed
	comment string
}

func revealedTests() []claimsTest {
	big := `{"kind":"claim","text":"` + strings.Repeat("x", protocol.MaxPublicPart-len(`{"kind":"claim","text":""}`)) + `"}`
	return []claimsTest{
		{"period", revealedJSON(12, testSaltB64, periodPart), &protocol.RevealedEvent{Index: 12, Salt: testSalt, Public: []byte(periodPart)}, "a period close"},
		{"claim_escaped", revealedJSON(3, testSaltB64, claimPart), &protocol.RevealedEvent{Index: 3, Salt: testSalt, Public: []byte(claimPart)}, "HTML characters escaped as encoding/json writes them"},
		{"index_max", revealedJSON(1<<53-1, testSaltB64, periodPart), &protocol.RevealedEvent{Index: 1<<53 - 1, Salt: testSalt, Public: []byte(periodPart)}, "the largest index"},
		{"empty_object", revealedJSON(3, testSaltB64, `{}`), &protocol.RevealedEvent{Index: 3, Salt: testSalt, Public: []byte(`{}`)}, "well-formed here; the server refuses it against the commitment and package audit"},
		{"public_max", revealedJSON(3, testSaltB64, big), &protocol.RevealedEvent{Index: 3, Salt: testSalt, Public: []byte(big)}, "a public part of MaxPublicPart bytes"},

		{"index_zero", revealedJSON(0, testSaltB64, periodPart), nil, "entry 0 is a bundle"},
		{"index_negative", revealedJSON(-1, testSaltB64, periodPart), nil, "a negative index"},
		{"index_2_53", revealedJSON(1<<53, testSaltB64, periodPart), nil, "beyond the largest log index"},
		{"index_float", `{"index":1.0,"salt":"` + testSaltB64 + `","public":` + periodPart + `}`, nil, "a fraction"},
		{"index_exponent", `{"index":1e1,"salt":"` + testSaltB64 + `","public":` + periodPart + `}`, nil, "an exponent"},
		{"index_string", `{"index":"12","salt":"` + testSaltB64 + `","public":` + periodPart + `}`, nil, "a string"},
		{"salt_short", revealedJSON(12, testSaltB64[:42], periodPart), nil, "31.5 bytes"},
		{"salt_31", revealedJSON(12, base64.RawURLEncoding.EncodeToString(testSalt[:31]), periodPart), nil, "31 bytes"},
		{"salt_33", revealedJSON(12, base64.RawURLEncoding.EncodeToString(append(testSalt[:], 0)), periodPart), nil, "33 bytes"},
		{"salt_padded", revealedJSON(12, base64.URLEncoding.EncodeToString(testSalt[:]), periodPart), nil, "padded base64url"},
		{"salt_std", revealedJSON(12, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), periodPart), nil, "standard base64"},
		{"public_array", revealedJSON(12, testSaltB64, `[]`), nil, "not an object"},
		{"public_string", revealedJSON(12, testSaltB64, `"{}"`), nil, "a string, not an object"},
		{"public_null", revealedJSON(12, testSaltB64, `null`), nil, "null"},
		{"public_spaces", revealedJSON(12, testSaltB64, `{"kind": "period"}`), nil, "not compact"},
		{"public_raw_html", revealedJSON(12, testSaltB64, `{"text":"<b>"}`), nil, "< unescaped: not as encoding/json writes it"},
		{"public_too_large", revealedJSON(3, testSaltB64, `{"kind":"claim","text":"`+strings.Repeat("x", protocol.MaxPublicPart-len(`{"kind":"claim","text":""}`)+1)+`"}`), nil, "MaxPublicPart + 1 bytes"},
		{"members_reordered", `{"salt":"` + testSaltB64 + `","index":12,"public":` + periodPart + `}`, nil, "members out of order"},
		{"member_missing", `{"index":12,"public":` + periodPart + `}`, nil, "no salt"},
		{"member_extra", `{"index":12,"salt":"` + testSaltB64 + `","public":` + periodPart + `,"claim":"x"}`, nil, "an unknown member"},
		{"member_twice", `{"index":12,"index":12,"salt":"` + testSaltB64 + `","public":` + periodPart + `}`, nil, "a member twice"},
		{"member_case", `{"Index":12,"salt":"` + testSaltB64 + `","public":` + periodPart + `}`, nil, "a member spelled in another case"},
		{"whitespace", `{"index": 12,"salt":"` + testSaltB64 + `","public":` + periodPart + `}`, nil, "whitespace"},
		{"trailing_newline", revealedJSON(12, testSaltB64, periodPart) + "\n", nil, "anything after the object"},
		{"two_objects", revealedJSON(12, testSaltB64, periodPart) + revealedJSON(12, testSaltB64, periodPart), nil, "two objects"},
		{"empty", ``, nil, "nothing"},
		{"escaped_key", `{"\u0069ndex":12,"salt":"` + testSaltB64 + `","public":` + periodPart + `}`, nil, "a key escaped"},
	}
}

func publishJSON(publish int64, events ...string) string {
	return fmt.Sprintf(`{"publish":%d,"events":[%s]}`, publish, strings.Join(events, ","))
}

func publishTests() []claimsTest {
	ev3, ev7 := revealedJSON(3, testSaltB64, claimPart), revealedJSON(7, testSaltB64, publishPart)
	r3 := protocol.RevealedEvent{Index: 3, Salt: testSalt, Public: []byte(claimPart)}
	r7 := protocol.RevealedEvent{Index: 7, Salt: testSalt, Public: []byte(publishPart)}
	many := make([]string, protocol.MaxRevealedEvents+1)
	for i := range many {
		many[i] = revealedJSON(int64(i+1), testSaltB64, `{}`)
	}
	manyEmpty := `{"publish":1001,"events":[` + strings.Repeat(`{},`, protocol.MaxRevealedEvents) + `{}]}`
	return []claimsTest{
		{"two_events", publishJSON(7, ev3, ev7), &protocol.PublishRequest{Publish: 7, Events: []protocol.RevealedEvent{r3, r7}}, "a claim event and its publication"},
		{"max_events", publishJSON(1000, many[:protocol.MaxRevealedEvents]...), nil, ""}, // replaced below
		{"publish_not_last", publishJSON(3, ev3, ev7), nil, "the publication is the last event revealed"},
		{"publish_absent", publishJSON(5, ev3, ev7), nil, "the publication is not among the events"},
		{"events_decreasing", publishJSON(3, ev7, ev3), nil, "events by increasing index"},
		{"events_twice", publishJSON(7, ev3, ev3, ev7), nil, "an event twice"},
		{"no_events", publishJSON(7), nil, "no event"},
		{"events_null", `{"publish":7,"events":null}`, nil, "null for the list"},
		{"too_many_events", publishJSON(1001, many...), nil, "MaxRevealedEvents + 1 events"},
		{"too_many_empty_objects", manyEmpty, nil, "MaxRevealedEvents + 1 empty objects: refused before decoding them all"},
		{"bad_event", publishJSON(7, revealedJSON(3, "x", claimPart), ev7), nil, "an event whose salt is not 32 bytes"},
		{"whitespace", `{"publish":7, "events":[` + ev3 + `,` + ev7 + `]}`, nil, "whitespace"},
		{"members_reordered", `{"events":[` + ev3 + `,` + ev7 + `],"publish":7}`, nil, "members out of order"},
		{"member_extra", `{"publish":7,"events":[` + ev3 + `,` + ev7 + `],"claim":"AAECAwQFBgcICQoLDA0ODw"}`, nil, "an unknown member"},
		{"trailing", publishJSON(7, ev3, ev7) + " ", nil, "anything after the object"},
		{"not_object", `[` + ev3 + `]`, nil, "not an object"},
	}
}

// maxEventsTest is the request of MaxRevealedEvents events, which parses.
func maxEventsTest() claimsTest {
	evs := make([]string, protocol.MaxRevealedEvents)
	req := &protocol.PublishRequest{Publish: protocol.MaxRevealedEvents}
	for i := range evs {
		evs[i] = revealedJSON(int64(i+1), testSaltB64, `{}`)
		req.Events = append(req.Events, protocol.RevealedEvent{Index: int64(i + 1), Salt: testSalt, Public: []byte(`{}`)})
	}
	return claimsTest{"max_events", publishJSON(protocol.MaxRevealedEvents, evs...), req, "MaxRevealedEvents events"}
}

func allPublishTests() []claimsTest {
	ts := publishTests()
	ts[1] = maxEventsTest()
	return ts
}

func parseRevealedAny(b []byte) (any, error) { return protocol.ParseRevealedEvent(b) }
func parsePublishAny(b []byte) (any, error)  { return protocol.ParsePublishRequest(b) }

func marshalAny(v any) ([]byte, error) {
	switch m := v.(type) {
	case *protocol.RevealedEvent:
		return protocol.MarshalRevealedEvent(m)
	case *protocol.PublishRequest:
		return protocol.MarshalPublishRequest(m)
	}
	return nil, fmt.Errorf("marshal %T", v)
}

// TestClaimsRequests runs the tables: each case parses to its value (and
// Marshal writes its exact bytes back) or is refused as malformed.
func TestClaimsRequests(t *testing.T) {
	for _, d := range []struct {
		dir   string
		tests []claimsTest
		parse func([]byte) (any, error)
	}{{"revealed", revealedTests(), parseRevealedAny}, {"publish", allPublishTests(), parsePublishAny}} {
		for _, tt := range d.tests {
			got, err := d.parse([]byte(tt.in))
			if tt.want == nil {
				if !protocol.IsError(err, protocol.CodeMalformed) {
					t.Errorf("%s/%s: parse = %v, want a malformed error", d.dir, tt.name, err)
				}
				continue
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s/%s: parse = %+v, %v, want %+v", d.dir, tt.name, got, err, tt.want)
				continue
			}
			if out, err := marshalAny(got); err != nil || string(out) != tt.in {
				t.Errorf("%s/%s: Marshal = %s, %v, want the input", d.dir, tt.name, out, err)
			}
		}
	}
	// Sizes at the limits of the whole request.
	if _, err := protocol.ParseRevealedEvent(make([]byte, protocol.MaxRevealedRequest+1)); !protocol.IsError(err, protocol.CodeMalformed) {
		t.Errorf("a revealed event of MaxRevealedRequest + 1 bytes: %v", err)
	}
	if _, err := protocol.ParsePublishRequest(make([]byte, protocol.MaxPublishRequest+1)); !protocol.IsError(err, protocol.CodeMalformed) {
		t.Errorf("a publish request of MaxPublishRequest + 1 bytes: %v", err)
	}
	// Marshal refuses what Parse would.
	for name, e := range map[string]*protocol.RevealedEvent{
		"index 0":          {Index: 0, Public: []byte(periodPart)},
		"not an object":    {Index: 1, Public: []byte(`[]`)},
		"not compact":      {Index: 1, Public: []byte(`{ }`)},
		"HTML not escaped": {Index: 1, Public: []byte(`{"a":"<"}`)},
		"invalid JSON":     {Index: 1, Public: []byte(`{"a":}`)},
		"no public part":   {Index: 1},
	} {
		if b, err := protocol.MarshalRevealedEvent(e); !protocol.IsError(err, protocol.CodeMalformed) {
			t.Errorf("MarshalRevealedEvent(%s) = %s, %v, want a malformed error", name, b, err)
		}
	}
}

func claimsVectors() map[string][]byte {
	out := map[string][]byte{}
	for _, d := range []struct {
		dir   string
		tests []claimsTest
	}{{"revealed", revealedTests()}, {"publish", allPublishTests()}} {
		for _, tt := range d.tests {
			if len(tt.in) > maxVectorSize {
				continue
			}
			expect := "ok"
			if tt.want == nil {
				expect = string(protocol.CodeMalformed)
			}
			out[filepath.Join("testdata", d.dir, tt.name)] = vectorFile(expect, nil, tt.comment, []byte(tt.in))
		}
	}
	return out
}

func TestGenerateClaimsVectors(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/")
	}
	for _, dir := range []string{"revealed", "publish"} {
		if err := os.RemoveAll(filepath.Join("testdata", dir)); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join("testdata", dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for file, b := range claimsVectors() {
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClaimsVectorsUpToDate checks testdata/revealed and testdata/publish
// against the tables, and runs each file on its own as another
// implementation would.
func TestClaimsVectorsUpToDate(t *testing.T) {
	want := claimsVectors()
	for _, dir := range []string{"revealed", "publish"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"))
		if len(files) == 0 {
			t.Errorf("no vectors in testdata/%s (run go test ./protocol -run GenerateClaimsVectors -update)", dir)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, want[f]) {
				t.Errorf("%s differs from its table case, or is none (run go test ./protocol -run GenerateClaimsVectors -update)", f)
			}
			h, body, err := parseVector(b)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			parse := parseRevealedAny
			if dir == "publish" {
				parse = parsePublishAny
			}
			_, err = parse(body)
			if got := map[bool]string{true: "ok", false: string(protocol.CodeMalformed)}[err == nil]; got != h["expect"] {
				t.Errorf("%s: outcome %s (%v), want %s", f, got, err, h["expect"])
			}
			delete(want, f)
		}
	}
	for f := range want {
		t.Errorf("%s is missing (run go test ./protocol -run GenerateClaimsVectors -update)", f)
	}
}

// fuzzClaims checks a claims parser's property: what it accepts, Marshal
// writes back byte for byte (one encoding); what it refuses is a
// *protocol.Error of code malformed, and no value.
func fuzzClaims(f *testing.F, dir string, parse func([]byte) (any, error)) {
	for _, s := range seeds(f, dir) {
		f.Add(s.body)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parse(b)
		if err != nil {
			var e *protocol.Error
			if !errors.As(err, &e) || e.Code != protocol.CodeMalformed {
				t.Fatalf("error %v is not a *protocol.Error of code malformed", err)
			}
			return
		}
		out, err := marshalAny(v)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("parse(%q) = %+v, which Marshal writes as %q, %v", b, v, out, err)
		}
	})
}

func FuzzParseRevealedEvent(f *testing.F)  { fuzzClaims(f, "revealed", parseRevealedAny) }
func FuzzParsePublishRequest(f *testing.F) { fuzzClaims(f, "publish", parsePublishAny) }
