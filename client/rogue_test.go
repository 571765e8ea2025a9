package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// rogueSetup is a newsroom whose genuine bundle names a log key the test
// holds, so a rogue server can play an honest one.
type rogueSetup struct {
	nk     *testNewsroom
	logKey *crypto.SignerKey
	bundle []byte
	// seed is the current epoch's seed, signed by logKey.
	seed []byte
}

func newRogueSetup(t testing.TB) *rogueSetup {
	t.Helper()
	nk := newTestNewsroom(t, true)
	logKey, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "fieldtip-log")
	if err != nil {
		t.Fatal(err)
	}
	return &rogueSetup{nk: nk, logKey: logKey, bundle: nk.bundle(t, 1, logKey.Verifier), seed: signSeed(t, logKey, currentEpoch(), 1)}
}

// send composes tip into a phone whose server, after Init's session,
// plays script on the next session and closes later ones at once, and
// runs SendOutbox.
func (r *rogueSetup) send(t *testing.T, tip *crypto.Tip, script func(c *rogueConn)) (*phone, *SendReport, error) {
	t.Helper()
	p := r.rogueSessions(t, func(c *rogueConn, session int) {
		if session == 1 {
			script(c)
			return
		}
		c.conn.Close()
	})
	p.compose(t, tip)
	rep, err := p.send(t, context.Background(), SendOptions{})
	return p, rep, err
}

// initAgainst runs Init against a server playing script and checks that,
// when it fails, it wrote nothing.
func (r *rogueSetup) initAgainst(t *testing.T, script func(c *rogueConn)) error {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fieldtip")
	_, _, _, err := Init(context.Background(), dir, startRogue(t, script), r.nk.key.Verifier, InitOptions{})
	if err != nil {
		if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
			t.Errorf("Init = %v, and it created %s (%v): a failed Init must change nothing", err, dir, serr)
		}
	}
	return err
}

func TestSendAgainstHonestFake(t *testing.T) {
	// The fake server of the tests below, played honestly, is accepted:
	// their refusals come from what they change, not from the fake.
	r := newRogueSetup(t)
	f := &fakeServer{bundle: r.bundle, seed: r.seed, signer: r.logKey.Signer}
	tip, _, _ := testTip(t, 40<<10)
	_, rep, err := r.send(t, tip, f.run)
	if err != nil || len(rep.Sent) != 1 {
		t.Fatalf("SendOutbox against an honest fake server = %+v, %v", rep, err)
	}
	if _, err := crypto.OpenReceipt(rep.Sent[0].ReceiptNote, r.logKey.Verifier); err != nil {
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
			err := r.initAgainst(t, func(c *rogueConn) {
				if c.serveBundle(mangled, r.seed) {
					c.drain()
				}
			})
			if !isAny(err, tt.want...) {
				t.Errorf("Init with byte %d of the bundle changed = %v, want one of %v", tt.pos, err, tt.want)
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
	// verifyBundle, and none changes the config (highest version seen,
	// stored bundle).
	r := newRogueSetup(t)
	cfg := offlineConfig(t, "https://tips.example", r.nk.key.Verifier)
	before := *cfg
	now := time.Now()
	for i := range r.bundle {
		for _, c := range []byte{'A', '0', ' ', '\n'} {
			if r.bundle[i] == c {
				continue
			}
			m := bytes.Clone(r.bundle)
			m[i] = c
			b, err := verifyBundle(cfg, m, now)
			if err == nil || b != nil {
				t.Fatalf("verifyBundle with byte %d changed to %q = %v, %v; want an error and no bundle", i, c, b, err)
			}
			if !isAny(err, crypto.ErrBadSignature, crypto.ErrMalformed, crypto.ErrUnknownSigner) {
				t.Errorf("verifyBundle with byte %d changed to %q = %v, want ErrBadSignature, ErrMalformed or ErrUnknownSigner", i, c, err)
			}
		}
	}
	if !reflect.DeepEqual(*cfg, before) {
		t.Errorf("after refused bundles the config is %+v, want it unchanged: %+v", *cfg, before)
	}
	if _, err := verifyBundle(cfg, r.bundle, now); err != nil {
		t.Errorf("verifyBundle(genuine bundle) = %v", err)
	}
	if cfg.HighestBundleVersion != 1 || cfg.Bundle != string(r.bundle) {
		t.Errorf("after the genuine bundle: highest version %d, bundle stored %t; want 1 and true", cfg.HighestBundleVersion, cfg.Bundle == string(r.bundle))
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
		{"signed_by_impostor_log_key", &fakeServer{bundle: r.bundle, seed: r.seed, signer: impostor.Signer}, crypto.ErrUnknownSigner},
		{"signed_by_other_key", &fakeServer{bundle: r.bundle, seed: r.seed, signer: stranger.Signer}, crypto.ErrUnknownSigner},
		{"signed_by_newsroom_key", &fakeServer{bundle: r.bundle, seed: r.seed, signer: r.nk.key.Signer}, crypto.ErrUnknownSigner},
		{"hash_of_other_bytes", &fakeServer{bundle: r.bundle, seed: r.seed, signer: r.logKey.Signer, receipt: func(rc *crypto.Receipt) { rc.SHA256[0] ^= 1 }}, nil},
		{"other_length", &fakeServer{bundle: r.bundle, seed: r.seed, signer: r.logKey.Signer, receipt: func(rc *crypto.Receipt) { rc.Length += protocol.FrameSize }}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rep, err := r.send(t, &crypto.Tip{Text: "hello"}, tt.f.run)
			mustNotSend(t, p, rep, err)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("SendOutbox = %v, want %v", err, tt.want)
			}
			if rep.Sessions != 1 {
				t.Errorf("SendOutbox made %d sessions after a bad receipt, want 1: a forged receipt is no progress", rep.Sessions)
			}
		})
	}
}

func TestSendSurfacesServerErrors(t *testing.T) {
	r := newRogueSetup(t)
	busy := &protocol.Error{Code: protocol.CodeBusy, Message: "the server is overloaded; try again later"}
	t.Run("at_bundle_request", func(t *testing.T) {
		err := r.initAgainst(t, func(c *rogueConn) {
			if _, ok := c.control(); ok {
				c.refuse(busy)
			}
		})
		if e, ok := isProtocolError(err); !ok || e.Code != protocol.CodeBusy {
			t.Fatalf("Init = %v, want *protocol.Error %s", err, protocol.CodeBusy)
		}
	})
	tests := []struct {
		name   string
		script func(c *rogueConn)
		want   protocol.Code
	}{
		{"at_upload", func(c *rogueConn) {
			if _, ok := c.upload(); ok {
				c.refuse(busy)
			}
		}, protocol.CodeBusy},
		{"at_upload_then_reset", func(c *rogueConn) {
			// The refusal, then a reset instead of a close: the client's
			// frames, written behind its upload message, fail (broken
			// pipe, connection reset), perhaps before its reader has read
			// the refusal, which must still be what it reports.
			if _, ok := c.upload(); !ok {
				return
			}
			if c.send(busy) {
				if tc, ok := c.conn.UnderlyingConn().(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				c.conn.UnderlyingConn().Close()
			}
		}, protocol.CodeBusy},
		{"after_offset_and_ack", func(c *rogueConn) {
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
			c.send(&protocol.Offset{Offset: 0, Seed: r.seed})
			c.send(&protocol.Ack{Offset: int64(up.FrameSize)})
			c.refuse(busy)
		}, protocol.CodeBusy},
		{"at_commit", func(c *rogueConn) {
			up, ok := c.upload()
			if !ok {
				return
			}
			if _, ok := c.frames(up, r.seed); !ok {
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
			// client's side, and must win every time. Later sessions
			// refuse the same way (r.send would close them, which reads
			// as a lost connection).
			for range 10 {
				p := r.rogueSessions(t, func(c *rogueConn, session int) {
					if session == 1 {
						tt.script(c)
						return
					}
					if _, ok := c.control(); ok {
						c.refuse(busy)
					}
				})
				p.compose(t, tip)
				rep, err := p.send(t, context.Background(), SendOptions{})
				mustNotSend(t, p, rep, err)
				if e, ok := isProtocolError(err); !ok || e.Code != tt.want {
					t.Fatalf("SendOutbox = %v, want *protocol.Error %s", err, tt.want)
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
			dir := filepath.Join(t.TempDir(), "fieldtip")
			_, _, _, err := Init(context.Background(), dir, url, r.nk.key.Verifier, InitOptions{})
			e, ok := isProtocolError(err)
			switch {
			case err == nil:
				t.Fatalf("Init against a server that does not upgrade succeeded")
			case tt.want == "" && ok:
				t.Errorf("Init = %v, a *protocol.Error; want a plain error", err)
			case tt.want != "" && (!ok || e.Code != tt.want):
				t.Errorf("Init = %v, want *protocol.Error %s", err, tt.want)
			}
		})
	}
}

func TestSendRefusesMalformedReplies(t *testing.T) {
	r := newRogueSetup(t)
	// uploadThen reads the upload and the frames the client sends before
	// waiting, then plays reply.
	uploadThen := func(reply func(c *rogueConn, up *protocol.Upload)) func(c *rogueConn) {
		return func(c *rogueConn) {
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
			if c.serveBundle(nil, r.seed) {
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
		{"offset_not_zero", uploadThen(msgs(&protocol.Offset{Offset: F, Seed: r.seed}))},
		{"ack_zero", uploadThen(msgs(&protocol.Offset{Offset: 0, Seed: r.seed}, &protocol.Ack{Offset: 0}))},
		{"ack_beyond_sent", uploadThen(func(c *rogueConn, up *protocol.Upload) {
			c.send(&protocol.Offset{Offset: 0, Seed: r.seed})
			c.send(&protocol.Ack{Offset: min(up.Length, Window*F) + F})
		})},
		{"ack_not_increasing", uploadThen(msgs(&protocol.Offset{Offset: 0, Seed: r.seed}, &protocol.Ack{Offset: F}, &protocol.Ack{Offset: F}))},
		{"ack_going_back", uploadThen(msgs(&protocol.Offset{Offset: 0, Seed: r.seed}, &protocol.Ack{Offset: 2 * F}, &protocol.Ack{Offset: F}))},
		{"ack_inside_frame", uploadThen(msgs(&protocol.Offset{Offset: 0, Seed: r.seed}, &protocol.Ack{Offset: F / 2}))},
		{"receipt_instead_of_ack", uploadThen(msgs(&protocol.Offset{Offset: 0, Seed: r.seed}, &protocol.ReceiptReply{Receipt: receipt}))},
		{"bundle_during_upload", uploadThen(msgs(&protocol.BundleReply{Bundle: r.bundle}))},
		{"closed_during_upload", uploadThen(func(c *rogueConn, _ *protocol.Upload) {
			c.send(&protocol.Offset{Offset: 0, Seed: r.seed})
			c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
		})},
		{"dropped_during_upload", uploadThen(func(c *rogueConn, _ *protocol.Upload) {
			c.send(&protocol.Offset{Offset: 0, Seed: r.seed})
			c.conn.NetConn().Close()
		})},
		{"commit_answered_with_ack", func(c *rogueConn) {
			up, ok := c.upload()
			if !ok {
				return
			}
			if _, ok := c.frames(up, r.seed); !ok {
				return
			}
			if _, ok := c.commit(); ok {
				c.send(&protocol.Ack{Offset: up.Length})
				c.drain()
			}
		}},
		{"commit_answered_with_garbage_receipt", func(c *rogueConn) {
			up, ok := c.upload()
			if !ok {
				return
			}
			if _, ok := c.frames(up, r.seed); !ok {
				return
			}
			if _, ok := c.commit(); ok {
				c.send(&protocol.ReceiptReply{Receipt: []byte("fieldtip/receipt/v1\nthanks\n")})
				c.drain()
			}
		}},
		{"commit_answered_by_close", func(c *rogueConn) {
			up, ok := c.upload()
			if !ok {
				return
			}
			if _, ok := c.frames(up, r.seed); !ok {
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
			// The bundle's replies are Init's to refuse; the rest,
			// SendOutbox's.
			if strings.Contains(tt.name, "bundle") && !strings.Contains(tt.name, "during_upload") {
				if err := r.initAgainst(t, tt.script); err == nil {
					t.Fatal("Init succeeded")
				}
				return
			}
			p, rep, err := r.send(t, tip, tt.script)
			mustNotSend(t, p, rep, err)
		})
	}
}

func TestSendRefusesBadSeeds(t *testing.T) {
	r := newRogueSetup(t)
	stranger, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "fieldtip-log") // same name, other key
	if err != nil {
		t.Fatal(err)
	}
	cur := currentEpoch()
	costly := func(p crypto.PoWParams) []byte {
		return signPoWSeed(t, r.logKey, &crypto.PoWSeed{Epoch: cur, EpochSeconds: seedEpochSeconds, Params: p})
	}
	day := signPoWSeed(t, r.logKey, &crypto.PoWSeed{Epoch: crypto.EpochAt(time.Now(), 86400), EpochSeconds: 86400, Params: fieldtiptest.CheapPoW})
	tests := []struct {
		name string
		// bundleSeed comes with the bundle; offsetSeed, if set, with the
		// offset (else bundleSeed).
		bundleSeed, offsetSeed []byte
		want                   error // nil: Send succeeds
	}{
		{"genuine", r.seed, nil, nil},
		{"previous_epoch", signSeed(t, r.logKey, cur-1, 1), nil, nil},
		{"offset_brings_previous_epoch", r.seed, signSeed(t, r.logKey, cur-1, 2), nil},
		{"bundle_seed_signed_by_other_log_key", signSeed(t, stranger, cur, 1), nil, ErrBadSeed},
		{"bundle_seed_signed_by_newsroom_key", signSeed(t, r.nk.key, cur, 1), nil, ErrBadSeed},
		{"bundle_seed_two_epochs_back", signSeed(t, r.logKey, cur-2, 1), nil, ErrBadSeed},
		{"bundle_seed_next_epoch", signSeed(t, r.logKey, cur+1, 1), nil, ErrBadSeed},
		{"bundle_seed_empty", []byte{}, nil, ErrBadSeed},
		{"bundle_seed_unsigned", []byte("fieldtip/pow-seed/v1\nepoch 1\n"), nil, ErrBadSeed},
		{"bundle_seed_mangled", mangle(r.seed, len(r.seed)-10), nil, ErrBadSeed},
		{"bundle_seed_too_much_memory", costly(crypto.PoWParams{MemoryKiB: MaxPoWMemoryKiB * 2, Time: 1, Bits: 1}), nil, ErrBadSeed},
		{"bundle_seed_too_many_passes", costly(crypto.PoWParams{MemoryKiB: 64, Time: MaxPoWTime + 1, Bits: 1}), nil, ErrBadSeed},
		{"bundle_seed_too_many_bits", costly(crypto.PoWParams{MemoryKiB: 64, Time: 1, Bits: MaxPoWBits + 1}), nil, ErrBadSeed},
		{"offset_seed_signed_by_other_log_key", r.seed, signSeed(t, stranger, cur, 1), ErrBadSeed},
		{"offset_seed_two_epochs_back", r.seed, signSeed(t, r.logKey, cur-2, 1), ErrBadSeed},
		{"offset_seed_empty", r.seed, []byte{}, ErrBadSeed},
		{"offset_seed_other_for_same_epoch", r.seed, signSeed(t, r.logKey, cur, 2), ErrSeedEquivocation},
		{"offset_seed_other_epoch_length", r.seed, day, ErrSeedEquivocation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.offsetSeed == nil {
				// The seed that comes with the bundle is Init's to check.
				err := r.initAgainst(t, func(c *rogueConn) {
					if c.serveBundle(r.bundle, tt.bundleSeed) {
						c.drain()
					}
				})
				if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
					t.Fatalf("Init = %v, want %v", err, tt.want)
				}
				return
			}
			p := r.rogueSessions(t, func(c *rogueConn, _ int) {
				if up, ok := c.upload(); ok {
					c.accept(up, tt.offsetSeed, r.logKey.Signer, nil)
				}
			})
			p.compose(t, &crypto.Tip{Text: "hello"})
			rep, err := p.send(t, context.Background(), SendOptions{})
			if tt.want == nil {
				if err != nil || len(rep.Sent) != 1 {
					t.Fatalf("SendOutbox = %+v, %v; want it sent", rep, err)
				}
				return
			}
			mustNotSend(t, p, rep, err)
			if !errors.Is(err, tt.want) {
				t.Errorf("SendOutbox = %v, want %v", err, tt.want)
			}
			for _, s := range p.cfg(t).Seeds {
				if s == string(tt.offsetSeed) {
					t.Errorf("the refused seed was stored")
				}
			}
		})
	}
}

func TestSeedEquivocationAcrossSessions(t *testing.T) {
	// A server that hands one session one seed and a later session
	// another, for the same epoch, could link the two (FIELD.md): the
	// client stops, whether the second seed comes with the bundle or with
	// an offset. Init's session gets the first seed.
	r := newRogueSetup(t)
	other := signSeed(t, r.logKey, currentEpoch(), 2)
	for _, via := range []string{"bundle", "offset"} {
		t.Run(via, func(t *testing.T) {
			p := r.rogueSessions(t, func(c *rogueConn, session int) {
				m, ok := c.control()
				if !ok {
					return
				}
				switch m := m.(type) {
				case *protocol.BundleRequest:
					if c.send(&protocol.BundleReply{Bundle: r.bundle, Seed: other}) {
						c.drain()
					}
				case *protocol.Upload:
					if via == "bundle" {
						// Makes the client fetch the bundle and seed.
						c.refuse(protocol.Errorf(protocol.CodeStalePoW, "stale"))
						return
					}
					c.accept(m, other, r.logKey.Signer, nil)
				default:
					c.t.Errorf("rogue: client sent %T", m)
				}
			})
			p.compose(t, &crypto.Tip{Text: "second"})
			rep, err := p.send(t, context.Background(), SendOptions{})
			mustNotSend(t, p, rep, err)
			if !errors.Is(err, ErrSeedEquivocation) {
				t.Fatalf("a later session with another seed for the epoch = %v, want ErrSeedEquivocation", err)
			}
			if seeds := p.cfg(t).Seeds; len(seeds) != 1 || seeds[0] != string(r.seed) {
				t.Errorf("stored seeds after the equivocation: %d, want only the first", len(seeds))
			}
		})
	}
}

// rogueSessions starts a rogue server whose first session serves the
// bundle and seed (the phone's Fetch) and whose later sessions, numbered
// from 1, play script; it returns the phone.
func (r *rogueSetup) rogueSessions(t *testing.T, script func(c *rogueConn, session int)) *phone {
	t.Helper()
	var n atomic.Int32
	url := startRogue(t, func(c *rogueConn) {
		i := int(n.Add(1)) - 1
		if i == 0 {
			if c.serveBundle(r.bundle, r.seed) {
				c.drain()
			}
			return
		}
		script(c, i)
	})
	return newPhone(t, url, r.nk.key.Verifier, nil)
}

// resume reads the client's resume message.
func (c *rogueConn) resume() (*protocol.Resume, bool) {
	m, ok := c.control()
	if !ok {
		return nil, false
	}
	rs, isResume := m.(*protocol.Resume)
	if !isResume {
		c.t.Errorf("rogue: client sent %T, want a resume", m)
		return nil, false
	}
	return rs, true
}

// startedItem composes a tip into p's outbox as an item whose upload may
// have reached the server.
func startedItem(t *testing.T, p *phone) *OutboxItem {
	t.Helper()
	it := p.compose(t, &crypto.Tip{Text: "started before the link dropped", Attachments: []crypto.Attachment{{Name: "a", Type: "text/plain", Data: make([]byte, 20<<10)}}})
	it.Started = true
	if err := p.ob.Update(it); err != nil {
		t.Fatal(err)
	}
	return it
}

func TestSendOutboxRefusesBadResumeOffset(t *testing.T) {
	r := newRogueSetup(t)
	stranger, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "fieldtip-log")
	if err != nil {
		t.Fatal(err)
	}
	const F = protocol.FrameSize
	tests := []struct {
		name  string
		reply func(total int64) any
		want  error
	}{
		{"offset_beyond_length", func(total int64) any { return &protocol.Offset{Offset: total + F, Seed: r.seed} }, ErrBadServerMessage},
		{"offset_one_past_length", func(total int64) any { return &protocol.Offset{Offset: total + 1, Seed: r.seed} }, ErrBadServerMessage},
		{"offset_far_beyond", func(int64) any { return &protocol.Offset{Offset: 1 << 50, Seed: r.seed} }, ErrBadServerMessage},
		{"offset_inside_frame", func(int64) any { return &protocol.Offset{Offset: F / 2, Seed: r.seed} }, ErrBadServerMessage},
		{"offset_seed_of_other_key", func(int64) any { return &protocol.Offset{Offset: F, Seed: signSeed(t, stranger, currentEpoch(), 1)} }, ErrBadSeed},
		{"ack_instead_of_offset", func(int64) any { return &protocol.Ack{Offset: F} }, ErrBadServerMessage},
		{"bundle_instead_of_offset", func(int64) any { return &protocol.BundleReply{Bundle: r.bundle, Seed: r.seed} }, ErrBadServerMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var it *OutboxItem
			p := r.rogueSessions(t, func(c *rogueConn, _ int) {
				rs, ok := c.resume()
				if !ok {
					return
				}
				if rs.UploadID != it.UploadID || rs.ResumeSecret != it.ResumeSecret {
					t.Errorf("rogue: resume of another upload or with another secret")
				}
				c.send(tt.reply(int64(len(it.Ciphertext))))
				c.drain()
			})
			it = startedItem(t, p)
			rep, err := p.send(t, context.Background(), SendOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("SendOutbox = %v, want %v", err, tt.want)
			}
			if len(rep.Sent) != 0 || rep.Sessions != 1 || rep.Remaining != 1 {
				t.Errorf("report = %+v, want nothing sent in one session and the item left", rep)
			}
			left := p.reopen(t).Items
			if len(left) != 1 || left[0].UploadID != it.UploadID || !left[0].Started {
				t.Errorf("outbox after the bad reply: %d items, want the started item unchanged", len(left))
			}
		})
	}
}

func TestSendOutboxRefusalsOnResume(t *testing.T) {
	// What the client does when the server refuses a resume: start anew
	// under a new upload id (proofs recomputed offline), resume again, or
	// stop with the item kept.
	r := newRogueSetup(t)
	tests := []struct {
		code protocol.Code
		then string // "new": a new upload; "resume": a resume of the same; "stop"
	}{
		{protocol.CodeExpired, "new"},
		{protocol.CodeNotFound, "new"},
		{protocol.CodeUnauthorized, "new"},
		{protocol.CodeReplayed, "new"},
		{protocol.CodeConflict, "resume"},
		{protocol.CodeBadChecksum, "resume"},
		{protocol.CodeBusy, "stop"},
		{protocol.CodeShuttingDown, "stop"},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			var it *OutboxItem
			var second any
			p := r.rogueSessions(t, func(c *rogueConn, session int) {
				if session == 1 {
					if _, ok := c.resume(); ok {
						c.refuse(&protocol.Error{Code: tt.code, Message: "no"})
					}
					return
				}
				m, ok := c.control()
				if !ok {
					return
				}
				second = m
				var up *protocol.Upload
				switch m := m.(type) {
				case *protocol.Upload:
					up = m
				case *protocol.Resume:
					up = &protocol.Upload{UploadID: m.UploadID, Length: int64(len(it.Ciphertext)), FrameSize: it.FrameSize}
				default:
					c.t.Errorf("rogue: second session opened with %T", m)
					return
				}
				c.accept(up, r.seed, r.logKey.Signer, nil)
			})
			it = startedItem(t, p)
			old := *it
			rep, err := p.send(t, context.Background(), SendOptions{})
			if tt.then == "stop" {
				if e, ok := isProtocolError(err); !ok || e.Code != tt.code {
					t.Fatalf("SendOutbox = %v, want the %s refusal", err, tt.code)
				}
				if rep.Sessions != 1 || rep.Remaining != 1 || len(p.reopen(t).Items) != 1 {
					t.Errorf("report = %+v, want one session and the item kept", rep)
				}
				return
			}
			if err != nil || len(rep.Sent) != 1 || rep.Sessions != 2 || rep.Remaining != 0 {
				t.Fatalf("SendOutbox = %+v, %v; want the item sent in a second session", rep, err)
			}
			switch m := second.(type) {
			case *protocol.Upload:
				if tt.then != "new" {
					t.Fatalf("after %s the client started a new upload, want a resume", tt.code)
				}
				if m.UploadID == old.UploadID || m.ResumeHash == sha256.Sum256(old.ResumeSecret[:]) {
					t.Errorf("the new upload reuses the refused upload's id or resume secret")
				}
				if err := crypto.CheckPoWs(fieldtiptest.CheapPoW, seedOf(t, r), m.UploadID, m.Length, m.PoW, m.PrePoW); err != nil || m.PoWEpoch != currentEpoch() {
					t.Errorf("the new upload's proofs of work (epoch %d) do not check for its id: %v", m.PoWEpoch, err)
				}
			case *protocol.Resume:
				if tt.then != "resume" {
					t.Fatalf("after %s the client resumed, want a new upload", tt.code)
				}
				if m.UploadID != old.UploadID || m.ResumeSecret != old.ResumeSecret {
					t.Errorf("the second resume is of another upload")
				}
			}
		})
	}
}

// seedOf returns the seed bytes of r's seed.
func seedOf(t *testing.T, r *rogueSetup) [32]byte {
	t.Helper()
	s, err := crypto.OpenPoWSeed(r.seed, r.logKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	return s.Seed
}

func TestSendOutboxHoldsUnconfirmedRefusals(t *testing.T) {
	// Refusals are not signed: stale_bundle while the newsroom's newest
	// bundle is the item's, and bad_ciphertext, hold the item (kept in the
	// outbox, not sent again in this call) rather than erase it.
	r := newRogueSetup(t)
	tests := []struct {
		code protocol.Code
		at   string // "upload" or "commit"
	}{
		{protocol.CodeStaleBundle, "upload"},
		{protocol.CodeBadCiphertext, "commit"},
		{protocol.CodeTooLarge, "upload"},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			p := r.rogueSessions(t, func(c *rogueConn, _ int) {
				m, ok := c.control()
				if !ok {
					return
				}
				switch m := m.(type) {
				case *protocol.BundleRequest:
					// The next session's fetch: the same bundle.
					if c.send(&protocol.BundleReply{Bundle: r.bundle, Seed: r.seed}) {
						c.drain()
					}
				case *protocol.Upload:
					if tt.at == "commit" {
						if _, ok := c.frames(m, r.seed); !ok {
							return
						}
						if _, ok := c.commit(); !ok {
							return
						}
					}
					c.refuse(protocol.Errorf(tt.code, "no"))
				default:
					c.t.Errorf("rogue: client sent %T", m)
				}
			})
			it := p.compose(t, &crypto.Tip{Text: "held"})
			rep, _ := p.send(t, context.Background(), SendOptions{})
			if len(rep.Held) != 1 || len(rep.Sent)+len(rep.Dropped) != 0 || rep.Remaining != 1 {
				t.Fatalf("report = %+v, want the item held", rep)
			}
			if rep.Held[0].BundleVersion != 1 {
				t.Errorf("Held = %+v, want bundle version 1", rep.Held[0])
			}
			left := p.reopen(t).Items
			if len(left) != 1 || left[0].UploadID != it.UploadID {
				t.Fatalf("outbox after the refusal: %d items, want the item kept", len(left))
			}
			if tt.code == protocol.CodeStaleBundle {
				if left[0].Refused != "" {
					t.Errorf("an unconfirmed stale_bundle marked the item refused (%s)", left[0].Refused)
				}
				return
			}
			// Refused for good (issue 12): marked in the outbox, and the
			// next call spends no connection on it.
			if left[0].Refused != tt.code {
				t.Errorf("the item is marked refused %q, want %q", left[0].Refused, tt.code)
			}
			p.ob = p.reopen(t)
			rep, err := p.send(t, context.Background(), SendOptions{})
			if err != nil || rep.Sessions != 0 || len(rep.Held) != 1 || rep.Held[0].Code != tt.code || rep.Remaining != 1 {
				t.Errorf("SendOutbox after the refusal = %+v, %v; want no session and the item held", rep, err)
			}
		})
	}
}
