package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"fieldtip/crypto"
	"fieldtip/protocol"
)

// The sizes protocol and crypto both hold must agree.
func TestReplyConstantsAgree(t *testing.T) {
	for _, c := range []struct {
		name string
		p, c int
	}{
		{"frame", protocol.ReplyFrameSize, crypto.ReplyFrameSize},
		{"max", protocol.MaxReplySize, crypto.MaxReplySize},
		{"reply id", protocol.IDSize, crypto.ReplyIDSize},
		{"mailbox key", protocol.MailboxKeySize, crypto.MailboxKeySize},
		{"signature", protocol.DeleteSigSize, crypto.ReplyDeleteSigSize},
		{"mailbox id", protocol.MailboxIDSize, len(crypto.MailboxID{})},
	} {
		if c.p != c.c {
			t.Errorf("%s: protocol %d, crypto %d", c.name, c.p, c.c)
		}
	}
	for n := -1; n <= protocol.MaxReplySize+protocol.ReplyFrameSize; n += 1 {
		if protocol.ValidReplySize(n) != crypto.ValidReplySize(n) {
			t.Fatalf("ValidReplySize(%d) differs", n)
		}
	}
}

var (
	key32 = strings.Repeat("A", 43)
	sig64 = strings.Repeat("A", 86)
	id16  = strings.Repeat("A", 22)
)

// repliesClientCases are client messages of the replies exchange, valid
// ("" want) or not (want the code).
var repliesClientCases = []struct {
	name string
	in   string
	want protocol.Code
}{
	{"replies", fmt.Sprintf(`{"type":"replies","version":%d,"bits":0,"prefix":0}`, protocol.Version), ""},
	{"replies 5 bits", fmt.Sprintf(`{"type":"replies","version":%d,"bits":5,"prefix":31}`, protocol.Version), ""},
	{"replies 6 bits", fmt.Sprintf(`{"type":"replies","version":%d,"bits":6,"prefix":0}`, protocol.Version), protocol.CodeMalformed},
	{"replies prefix too large", fmt.Sprintf(`{"type":"replies","version":%d,"bits":2,"prefix":4}`, protocol.Version), protocol.CodeMalformed},
	{"replies prefix 1 of 0 bits", fmt.Sprintf(`{"type":"replies","version":%d,"bits":0,"prefix":1}`, protocol.Version), protocol.CodeMalformed},
	{"replies negative bits", fmt.Sprintf(`{"type":"replies","version":%d,"bits":-1,"prefix":0}`, protocol.Version), protocol.CodeMalformed},
	{"replies negative prefix", fmt.Sprintf(`{"type":"replies","version":%d,"bits":1,"prefix":-1}`, protocol.Version), protocol.CodeMalformed},
	{"replies without prefix", fmt.Sprintf(`{"type":"replies","version":%d,"bits":0}`, protocol.Version), protocol.CodeMalformed},
	{"replies with count", fmt.Sprintf(`{"type":"replies","version":%d,"bits":0,"prefix":0,"count":1}`, protocol.Version), protocol.CodeMalformed},
	{"replies bits fraction", fmt.Sprintf(`{"type":"replies","version":%d,"bits":1.0,"prefix":0}`, protocol.Version), protocol.CodeMalformed},
	{"replies bits string", fmt.Sprintf(`{"type":"replies","version":%d,"bits":"1","prefix":0}`, protocol.Version), protocol.CodeMalformed},
	{"replies bits null", fmt.Sprintf(`{"type":"replies","version":%d,"bits":null,"prefix":0}`, protocol.Version), protocol.CodeMalformed},
	{"replies other version", `{"type":"replies","version":1,"bits":0,"prefix":0}`, protocol.CodeUnsupportedVersion},
	{"replies future version with members unknown", `{"type":"replies","version":99,"bits":0,"prefix":0,"window":3}`, protocol.CodeUnsupportedVersion},
	{"replies without version", `{"type":"replies","bits":0,"prefix":0}`, protocol.CodeMalformed},
	{"delete", `{"type":"delete","reply_id":"` + id16 + `","mailbox_key":"` + key32 + `","sig":"` + sig64 + `"}`, ""},
	{"delete short sig", `{"type":"delete","reply_id":"` + id16 + `","mailbox_key":"` + key32 + `","sig":"` + sig64[:85] + `"}`, protocol.CodeMalformed},
	{"delete padded key", `{"type":"delete","reply_id":"` + id16 + `","mailbox_key":"` + key32 + `=","sig":"` + sig64 + `"}`, protocol.CodeMalformed},
	{"delete std alphabet", `{"type":"delete","reply_id":"` + id16[:21] + `+","mailbox_key":"` + key32 + `","sig":"` + sig64 + `"}`, protocol.CodeMalformed},
	{"delete with version", fmt.Sprintf(`{"type":"delete","version":%d,"reply_id":"`+id16+`","mailbox_key":"`+key32+`","sig":"`+sig64+`"}`, protocol.Version), protocol.CodeMalformed},
	{"delete without sig", `{"type":"delete","reply_id":"` + id16 + `","mailbox_key":"` + key32 + `"}`, protocol.CodeMalformed},
	{"delete key twice", `{"type":"delete","reply_id":"` + id16 + `","mailbox_key":"` + key32 + `","mailbox_key":"` + key32 + `","sig":"` + sig64 + `"}`, protocol.CodeMalformed},
	{"deleted from a client", `{"type":"deleted","reply_id":"` + id16 + `"}`, protocol.CodeMalformed},
	{"bucket from a client", `{"type":"bucket","bits":0,"count":0}`, protocol.CodeMalformed},
}

var repliesServerCases = []struct {
	name string
	in   string
	want protocol.Code
}{
	{"bucket", `{"type":"bucket","bits":0,"count":0}`, ""},
	{"bucket full", `{"type":"bucket","bits":5,"count":64}`, ""},
	{"bucket 65", `{"type":"bucket","bits":5,"count":65}`, protocol.CodeMalformed},
	{"bucket 6 bits", `{"type":"bucket","bits":6,"count":0}`, protocol.CodeMalformed},
	{"bucket negative count", `{"type":"bucket","bits":0,"count":-1}`, protocol.CodeMalformed},
	{"bucket without count", `{"type":"bucket","bits":0}`, protocol.CodeMalformed},
	{"bucket with prefix", `{"type":"bucket","bits":0,"prefix":0,"count":0}`, protocol.CodeMalformed},
	{"bucket trailing", `{"type":"bucket","bits":0,"count":0} x`, protocol.CodeMalformed},
	{"deleted", `{"type":"deleted","reply_id":"` + id16 + `"}`, ""},
	{"deleted short", `{"type":"deleted","reply_id":"` + id16[:21] + `"}`, protocol.CodeMalformed},
	{"replies from a server", fmt.Sprintf(`{"type":"replies","version":%d,"bits":0,"prefix":0}`, protocol.Version), protocol.CodeMalformed},
}

func TestRepliesMessages(t *testing.T) {
	for _, side := range []struct {
		name  string
		parse func([]byte) (any, error)
		cases []struct {
			name string
			in   string
			want protocol.Code
		}
	}{
		{"client", protocol.ParseClientMessage, repliesClientCases},
		{"server", protocol.ParseServerMessage, repliesServerCases},
	} {
		for _, c := range side.cases {
			t.Run(side.name+"/"+c.name, func(t *testing.T) {
				m, err := side.parse([]byte(c.in))
				if c.want == "" {
					if err != nil {
						t.Fatalf("parse = %v", err)
					}
					if out := protocol.Marshal(m); string(out) != c.in {
						t.Fatalf("Marshal = %s, want %s", out, c.in)
					}
					return
				}
				if !protocol.IsError(err, c.want) || m != nil {
					t.Fatalf("parse = %#v, %v, want %s", m, err, c.want)
				}
			})
		}
	}
}

func TestReplyFrame(t *testing.T) {
	id := protocol.ReplyID{1, 2, 3}
	for _, c := range []struct {
		size int
		ok   bool
	}{
		{0, false}, {1, false}, {4095, false}, {4096, true}, {4097, false}, {8192, true},
		{protocol.MaxReplySize - 1, false}, {protocol.MaxReplySize, true}, {protocol.MaxReplySize + 1, false},
		{protocol.MaxReplySize + protocol.ReplyFrameSize, false},
	} {
		ct := bytes.Repeat([]byte{7}, c.size)
		b := protocol.AppendReplyFrame(nil, &protocol.ReplyFrame{ID: id, Ciphertext: ct})
		f, err := protocol.ParseReplyFrame(b)
		if c.ok != (err == nil) {
			t.Errorf("%d bytes: ParseReplyFrame = %v", c.size, err)
			continue
		}
		if err != nil {
			if !protocol.IsError(err, protocol.CodeMalformed) {
				t.Errorf("%d bytes: error %v is not malformed", c.size, err)
			}
			continue
		}
		if f.ID != id || !bytes.Equal(f.Ciphertext, ct) {
			t.Errorf("%d bytes: parsed to another frame", c.size)
		}
	}
	for _, b := range [][]byte{nil, make([]byte, 15), make([]byte, 16)} {
		if _, err := protocol.ParseReplyFrame(b); err == nil {
			t.Errorf("ParseReplyFrame(%d bytes): no error", len(b))
		}
	}
}

func TestSuggestBits(t *testing.T) {
	for _, c := range []struct {
		stored int64
		want   int
	}{{0, 0}, {1, 0}, {8, 0}, {9, 1}, {16, 1}, {17, 2}, {32, 2}, {33, 3}, {64, 3}, {65, 4}, {128, 4}, {129, 5}, {256, 5}, {257, 5}, {1 << 40, 5}} {
		if got := protocol.SuggestBits(c.stored); got != c.want {
			t.Errorf("SuggestBits(%d) = %d, want %d", c.stored, got, c.want)
		}
	}
	m := protocol.MailboxID{0b10110111}
	for bits, want := range []int{0, 1, 2, 5, 11, 22} {
		if got := protocol.BucketPrefix(m, bits); got != want {
			t.Errorf("BucketPrefix(%08b, %d) = %d, want %d", m[0], bits, got, want)
		}
	}
}

func TestParseReplyAndMailboxIDs(t *testing.T) {
	id := protocol.ReplyID{0xff, 0xfe}
	if got, err := protocol.ParseReplyID(id.String()); err != nil || got != id {
		t.Errorf("ParseReplyID(%s) = %v, %v", id, got, err)
	}
	mb := protocol.MailboxID{0xfb}
	if got, err := protocol.ParseMailboxID(mb.String()); err != nil || got != mb {
		t.Errorf("ParseMailboxID(%s) = %v, %v", mb, got, err)
	}
	for _, bad := range []string{"", id.String() + "A", id.String()[:21], id.String() + "=="} {
		if _, err := protocol.ParseReplyID(bad); !protocol.IsError(err, protocol.CodeMalformed) {
			t.Errorf("ParseReplyID(%q) = %v", bad, err)
		}
	}
	if _, err := protocol.ParseMailboxID(id.String()); err == nil {
		t.Error("a reply id parsed as a mailbox id")
	}
	if p := protocol.ReplyPath(mb, id); p != protocol.PathReplies+"/"+mb.String()+"/"+id.String() {
		t.Errorf("ReplyPath = %s", p)
	}
}

// FuzzRepliesMessages: whatever the parsers accept of the replies
// exchange re-encodes to a message that parses to the same value.
func FuzzRepliesMessages(f *testing.F) {
	for _, c := range repliesClientCases {
		f.Add([]byte(c.in))
	}
	for _, c := range repliesServerCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) (any, error){protocol.ParseClientMessage, protocol.ParseServerMessage} {
			m, err := parse(b)
			if err != nil {
				var e *protocol.Error
				if !errors.As(err, &e) || m != nil {
					t.Fatalf("error %v is not a *protocol.Error, or came with %#v", err, m)
				}
				continue
			}
			again, err := parse(protocol.Marshal(m))
			if err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("%#v re-encodes to %s, which parses to %#v, %v", m, protocol.Marshal(m), again, err)
			}
		}
	})
}

// FuzzParseReplyFrame: an accepted frame re-encodes to its input.
func FuzzParseReplyFrame(f *testing.F) {
	f.Add(append(make([]byte, 16), make([]byte, 4096)...))
	f.Add(make([]byte, 17))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := protocol.ParseReplyFrame(b)
		if err != nil {
			if !protocol.IsError(err, protocol.CodeMalformed) || fr != nil {
				t.Fatalf("ParseReplyFrame = %v, %v", fr, err)
			}
			return
		}
		if out := protocol.AppendReplyFrame(nil, fr); !bytes.Equal(out, b) {
			t.Fatal("an accepted frame re-encodes to other bytes")
		}
	})
}
