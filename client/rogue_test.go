package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// rogueSetup is a newsroom whose genuine bundle names a log key the test
// holds, so a rogue server can play an honest one.
type rogueSetup struct {
	nk     *testNewsroom
	logKey *crypto.SignerKey
	bundle []byte
}

func newRogueSetup(t testing.TB) *rogueSetup {
	t.Helper()
	nk := newTestNewsroom(t, true)
	logKey, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "fieldtip-log")
	if err != nil {
		t.Fatal(err)
	}
	return &rogueSetup{nk: nk, logKey: logKey, bundle: nk.bundle(t, 1, logKey.Verifier)}
}

// send runs Send against a rogue server playing script.
func (r *rogueSetup) send(t *testing.T, tip *crypto.Tip, script func(c *rogueConn)) (*Result, error) {
	t.Helper()
	dir := initClient(t, startRogue(t, script), r.nk.key.Verifier)
	return Send(context.Background(), dir, tip, SendOptions{})
}

func TestSendAgainstHonestFake(t *testing.T) {
	// The fake server of the tests below, played honestly, is accepted:
	// their refusals come from what they change, not from the fake.
	r := newRogueSetup(t)
	f := &fakeServer{bundle: r.bundle, signer: r.logKey.Signer}
	tip, _, _ := testTip(t, 40<<10)
	res, err := r.send(t, tip, f.run)
	if err != nil {
		t.Fatalf("Send against an honest fake server: %v", err)
	}
	if _, err := crypto.OpenReceipt(res.ReceiptNote, r.logKey.Verifier); err != nil {
		t.Errorf("receipt: %v", err)
	}
}

func TestSendRefusesMangledBundle(t *testing.T) {
	r := newRogueSetup(t)
	text := r.bundle[:bytes.LastIndex(r.bundle, []byte("\n\n"))+1]
	sig := bytes.LastIndex(r.bundle, []byte(" ")) + 1 // first base64 byte of the signature
	tests := []struct {
		name string
		pos  int
		want []error
	}{
		{"header", 0, []error{crypto.ErrBadSignature}},
		{"version_digit", bytes.Index(r.bundle, []byte("version 1")) + len("version "), []error{crypto.ErrBadSignature}},
		{"editor_recipient", bytes.Index(r.bundle, []byte(" age1")) + 6, []error{crypto.ErrBadSignature}},
		{"last_text_byte", len(text) - 2, []error{crypto.ErrBadSignature}},
		{"signature", sig + 10, []error{crypto.ErrBadSignature}},
		{"signature_key_hash", sig + 1, []error{crypto.ErrBadSignature, crypto.ErrUnknownSigner}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mangled := mangle(r.bundle, tt.pos)
			res, err := r.send(t, &crypto.Tip{Text: "hello"}, func(c *rogueConn) {
				if c.serveBundle(mangled) {
					c.drain()
				}
			})
			mustFail(t, res, err)
			if !isAny(err, tt.want...) {
				t.Errorf("Send with byte %d of the bundle changed = %v, want one of %v", tt.pos, err, tt.want)
			}
		})
	}
}

// mangle returns a copy of b with the byte at i replaced by another
// printable ASCII byte.
func mangle(b []byte, i int) []byte {
	m := bytes.Clone(b)
	switch {
	case m[i] == 'A':
		m[i] = 'B'
	case m[i] == '\n':
		m[i] = ' '
	default:
		m[i] = 'A'
	}
	return m
}

func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func TestVerifyBundleEveryByteChanged(t *testing.T) {
	// Exhaustive over the signed bundle: no single changed byte gets past
	// verifyBundle, and none raises the highest version seen.
	r := newRogueSetup(t)
	dir := initClient(t, "https://tips.example", r.nk.key.Verifier)
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range r.bundle {
		for _, c := range []byte{'A', '0', ' ', '\n'} {
			if r.bundle[i] == c {
				continue
			}
			m := bytes.Clone(r.bundle)
			m[i] = c
			b, err := verifyBundle(dir, cfg, m, now)
			if err == nil || b != nil {
				t.Fatalf("verifyBundle with byte %d changed to %q = %v, %v; want an error and no bundle", i, c, b, err)
			}
			if !isAny(err, crypto.ErrBadSignature, crypto.ErrMalformed, crypto.ErrUnknownSigner) {
				t.Errorf("verifyBundle with byte %d changed to %q = %v, want ErrBadSignature, ErrMalformed or ErrUnknownSigner", i, c, err)
			}
		}
	}
	if got, err := LoadConfig(dir); err != nil || got.HighestBundleVersion != 0 {
		t.Errorf("after refused bundles LoadConfig = %+v, %v; want HighestBundleVersion 0", got, err)
	}
	if _, err := verifyBundle(dir, cfg, r.bundle, now); err != nil {
		t.Errorf("verifyBundle(genuine bundle) = %v", err)
	}
}

func TestSendRefusesBadReceipt(t *testing.T) {
	r := newRogueSetup(t)
	impostor, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "fieldtip-log") // same name, other key
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "stranger-log")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    *fakeServer
		want error // nil: any error
	}{
		{"signed_by_impostor_log_key", &fakeServer{bundle: r.bundle, signer: impostor.Signer}, crypto.ErrUnknownSigner},
		{"signed_by_other_key", &fakeServer{bundle: r.bundle, signer: stranger.Signer}, crypto.ErrUnknownSigner},
		{"signed_by_newsroom_key", &fakeServer{bundle: r.bundle, signer: r.nk.key.Signer}, crypto.ErrUnknownSigner},
		{"hash_of_other_bytes", &fakeServer{bundle: r.bundle, signer: r.logKey.Signer, receipt: func(rc *crypto.Receipt) { rc.SHA256[0] ^= 1 }}, nil},
		{"other_length", &fakeServer{bundle: r.bundle, signer: r.logKey.Signer, receipt: func(rc *crypto.Receipt) { rc.Length += protocol.FrameSize }}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.send(t, &crypto.Tip{Text: "hello"}, tt.f.run)
			mustFail(t, res, err)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Send = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSendSurfacesServerErrors(t *testing.T) {
	r := newRogueSetup(t)
	busy := &protocol.Error{Code: protocol.CodeBusy, Message: "the server is overloaded; try again later"}
	tests := []struct {
		name   string
		script func(c *rogueConn)
		want   protocol.Code
	}{
		{"at_bundle_request", func(c *rogueConn) {
			if _, ok := c.control(); ok {
				c.refuse(busy)
			}
		}, protocol.CodeBusy},
		{"at_upload", func(c *rogueConn) {
			if !c.serveBundle(r.bundle) {
				return
			}
			if _, ok := c.upload(); ok {
				c.refuse(busy)
			}
		}, protocol.CodeBusy},
		{"after_offset_and_ack", func(c *rogueConn) {
			if !c.serveBundle(r.bundle) {
				return
			}
			up, ok := c.upload()
			if !ok {
				return
			}
			// Read every frame the client sends up front, then answer
			// all at once: an offset, an ack, the refusal and a close
			// are queued together on the client's side.
			for range min(Window, up.Length/int64(up.FrameSize)) {
				if _, ok := c.frame(up); !ok {
					return
				}
			}
			c.send(&protocol.Offset{Offset: 0})
			c.send(&protocol.Ack{Offset: int64(up.FrameSize)})
			c.refuse(&protocol.Error{Code: protocol.CodeConflict, Message: "data frame is not at the server's offset", Offset: int64(up.FrameSize)})
		}, protocol.CodeConflict},
		{"at_commit", func(c *rogueConn) {
			if !c.serveBundle(r.bundle) {
				return
			}
			up, ok := c.upload()
			if !ok {
				return
			}
			if _, ok := c.frames(up); !ok {
				return
			}
			if _, ok := c.commit(); ok {
				c.refuse(protocol.Errorf(protocol.CodeBadCiphertext, "not an age file encrypted to the editors"))
			}
		}, protocol.CodeBadCiphertext},
	}
	tip, _, _ := testTip(t, 40<<10)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Repeated: the refusal races the close behind it on the
			// client's side, and must win every time.
			for range 10 {
				res, err := r.send(t, tip, tt.script)
				mustFail(t, res, err)
				if e, ok := isProtocolError(err); !ok || e.Code != tt.want {
					t.Fatalf("Send = %v, want *protocol.Error %s", err, tt.want)
				}
			}
		})
	}
}

func TestSendHandshakeRefusals(t *testing.T) {
	r := newRogueSetup(t)
	tests := []struct {
		name   string
		status int
		body   string
		want   protocol.Code // "": an error that is not a *protocol.Error
	}{
		{"503_json_busy", http.StatusServiceUnavailable, string(protocol.Marshal(protocol.Errorf(protocol.CodeBusy, "too many connections; try again later"))) + "\n", protocol.CodeBusy},
		{"503_json_shutting_down", http.StatusServiceUnavailable, string(protocol.Marshal(protocol.Errorf(protocol.CodeShuttingDown, "the server is stopping"))), protocol.CodeShuttingDown},
		{"503_html", http.StatusServiceUnavailable, "<html>Service Unavailable</html>", ""},
		{"404_empty", http.StatusNotFound, "", ""},
		{"200_not_websocket", http.StatusOK, "hello", ""},
		{"503_json_unknown_code", http.StatusServiceUnavailable, `{"type":"error","code":"later","message":"x"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := startHTTP(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			})
			dir := initClient(t, url, r.nk.key.Verifier)
			res, err := Send(context.Background(), dir, &crypto.Tip{Text: "hello"}, SendOptions{})
			mustFail(t, res, err)
			e, ok := isProtocolError(err)
			switch {
			case tt.want == "" && ok:
				t.Errorf("Send = %v, a *protocol.Error; want a plain error", err)
			case tt.want != "" && (!ok || e.Code != tt.want):
				t.Errorf("Send = %v, want *protocol.Error %s", err, tt.want)
			}
		})
	}
}

func TestSendRefusesMalformedReplies(t *testing.T) {
	r := newRogueSetup(t)
	// uploadThen serves the bundle, reads the upload and the frames the
	// client sends before waiting, then plays reply.
	uploadThen := func(reply func(c *rogueConn, up *protocol.Upload)) func(c *rogueConn) {
		return func(c *rogueConn) {
			if !c.serveBundle(r.bundle) {
				return
			}
			up, ok := c.upload()
			if !ok {
				return
			}
			for range min(Window, up.Length/int64(up.FrameSize)) {
				if _, ok := c.frame(up); !ok {
					return
				}
			}
			reply(c, up)
			c.drain()
		}
	}
	text := func(s string) func(c *rogueConn, _ *protocol.Upload) {
		return func(c *rogueConn, _ *protocol.Upload) { c.write(websocket.TextMessage, []byte(s)) }
	}
	msgs := func(ms ...any) func(c *rogueConn, _ *protocol.Upload) {
		return func(c *rogueConn, _ *protocol.Upload) {
			for _, m := range ms {
				c.send(m)
			}
		}
	}
	const F = protocol.FrameSize
	receipt := func(t *testing.T) []byte {
		msg, err := crypto.SignReceipt(&crypto.Receipt{Length: F, Day: "2026-01-01"}, r.logKey.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}(t)
	tests := []struct {
		name   string
		script func(c *rogueConn)
	}{
		{"bundle_reply_garbage_text", func(c *rogueConn) {
			if _, ok := c.control(); ok {
				c.write(websocket.TextMessage, []byte("hello"))
				c.drain()
			}
		}},
		{"bundle_reply_binary", func(c *rogueConn) {
			if _, ok := c.control(); ok {
				c.write(websocket.BinaryMessage, protocol.Marshal(&protocol.BundleReply{Bundle: r.bundle}))
				c.drain()
			}
		}},
		{"bundle_reply_is_ack", func(c *rogueConn) {
			if _, ok := c.control(); ok {
				c.send(&protocol.Ack{Offset: 0})
				c.drain()
			}
		}},
		{"bundle_reply_is_receipt", func(c *rogueConn) {
			if _, ok := c.control(); ok {
				c.send(&protocol.ReceiptReply{Receipt: receipt})
				c.drain()
			}
		}},
		{"bundle_reply_empty_bundle", func(c *rogueConn) {
			if c.serveBundle(nil) {
				c.drain()
			}
		}},
		{"bundle_reply_oversized", func(c *rogueConn) {
			if _, ok := c.control(); ok {
				c.write(websocket.TextMessage, []byte(`{"type":"bundle","bundle":"`+strings.Repeat("\\u0000", protocol.MaxServerMessage/6)+`"}`))
				c.drain()
			}
		}},
		{"bundle_reply_extra_field", func(c *rogueConn) {
			if _, ok := c.control(); ok {
				c.write(websocket.TextMessage, []byte(`{"type":"bundle","bundle":"x","offset":0}`))
				c.drain()
			}
		}},
		{"closed_before_bundle", func(c *rogueConn) {
			if _, ok := c.control(); ok {
				c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				c.drain()
			}
		}},
		{"dropped_before_bundle", func(c *rogueConn) {
			if _, ok := c.control(); ok {
				c.conn.NetConn().Close()
			}
		}},
		{"garbage_text", uploadThen(text("garbage"))},
		{"json_not_object", uploadThen(text(`["ack",16384]`))},
		{"ack_with_trailing_data", uploadThen(text(`{"type":"ack","offset":16384} {}`))},
		{"ack_uppercase_key", uploadThen(text(`{"type":"ack","Offset":16384}`))},
		{"ack_negative", uploadThen(text(`{"type":"ack","offset":-16384}`))},
		{"unknown_type", uploadThen(text(`{"type":"thanks"}`))},
		{"unknown_error_code", uploadThen(text(`{"type":"error","code":"nope","message":"x"}`))},
		{"binary_message", uploadThen(func(c *rogueConn, _ *protocol.Upload) {
			c.write(websocket.BinaryMessage, protocol.Marshal(&protocol.Ack{Offset: F}))
		})},
		{"offset_not_zero", uploadThen(msgs(&protocol.Offset{Offset: F}))},
		{"ack_zero", uploadThen(msgs(&protocol.Offset{Offset: 0}, &protocol.Ack{Offset: 0}))},
		{"ack_beyond_sent", uploadThen(func(c *rogueConn, up *protocol.Upload) {
			c.send(&protocol.Offset{Offset: 0})
			c.send(&protocol.Ack{Offset: min(up.Length, Window*F) + F})
		})},
		{"ack_not_increasing", uploadThen(msgs(&protocol.Offset{Offset: 0}, &protocol.Ack{Offset: F}, &protocol.Ack{Offset: F}))},
		{"ack_going_back", uploadThen(msgs(&protocol.Offset{Offset: 0}, &protocol.Ack{Offset: 2 * F}, &protocol.Ack{Offset: F}))},
		{"ack_inside_frame", uploadThen(msgs(&protocol.Offset{Offset: 0}, &protocol.Ack{Offset: F / 2}))},
		{"receipt_instead_of_ack", uploadThen(msgs(&protocol.Offset{Offset: 0}, &protocol.ReceiptReply{Receipt: receipt}))},
		{"bundle_during_upload", uploadThen(msgs(&protocol.BundleReply{Bundle: r.bundle}))},
		{"closed_during_upload", uploadThen(func(c *rogueConn, _ *protocol.Upload) {
			c.send(&protocol.Offset{Offset: 0})
			c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
		})},
		{"dropped_during_upload", uploadThen(func(c *rogueConn, _ *protocol.Upload) {
			c.send(&protocol.Offset{Offset: 0})
			c.conn.NetConn().Close()
		})},
		{"commit_answered_with_ack", func(c *rogueConn) {
			if !c.serveBundle(r.bundle) {
				return
			}
			up, ok := c.upload()
			if !ok {
				return
			}
			if _, ok := c.frames(up); !ok {
				return
			}
			if _, ok := c.commit(); ok {
				c.send(&protocol.Ack{Offset: up.Length})
				c.drain()
			}
		}},
		{"commit_answered_with_garbage_receipt", func(c *rogueConn) {
			if !c.serveBundle(r.bundle) {
				return
			}
			up, ok := c.upload()
			if !ok {
				return
			}
			if _, ok := c.frames(up); !ok {
				return
			}
			if _, ok := c.commit(); ok {
				c.send(&protocol.ReceiptReply{Receipt: []byte("fieldtip/receipt/v1\nthanks\n")})
				c.drain()
			}
		}},
		{"commit_answered_by_close", func(c *rogueConn) {
			if !c.serveBundle(r.bundle) {
				return
			}
			up, ok := c.upload()
			if !ok {
				return
			}
			if _, ok := c.frames(up); !ok {
				return
			}
			if _, ok := c.commit(); ok {
				c.conn.NetConn().Close()
			}
		}},
	}
	tip, _, _ := testTip(t, 40<<10) // three frames: room for acks to go wrong
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.send(t, tip, tt.script)
			mustFail(t, res, err)
		})
	}
}
