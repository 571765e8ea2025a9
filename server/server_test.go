package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/sourcekit"
	"fieldtip/protocol"

	"filippo.io/age"
	"github.com/gorilla/websocket"
)

const fs16, fs8 = protocol.FrameSize, protocol.LowBandwidthFrameSz

// twoFrameText seals to two 16 KiB frames.
var twoFrameText = strings.Repeat("copper trucks at the river crossing. ", 540)

// sealFor seals a tip to ts's editors, checking it fills frames frames.
func sealFor(tb testing.TB, ts *testServer, text string, frameSize, frames int) []byte {
	tb.Helper()
	ct := seal(tb, text, ts.recipients(tb), frameSize)
	if len(ct) != frames*frameSize {
		tb.Fatalf("sealed %d bytes, want %d frames of %d", len(ct), frames, frameSize)
	}
	return ct
}

// hybridRecipients returns n fresh post-quantum recipients.
func hybridRecipients(tb testing.TB, n int) []age.Recipient {
	var rs []age.Recipient
	for range n {
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			tb.Fatal(err)
		}
		rs = append(rs, id.Recipient())
	}
	return rs
}

// x25519Recipients returns n fresh classic recipients.
func x25519Recipients(tb testing.TB, n int) []age.Recipient {
	var rs []age.Recipient
	for range n {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			tb.Fatal(err)
		}
		rs = append(rs, id.Recipient())
	}
	return rs
}

// refusalCase is one refused source session.
type refusalCase struct {
	name string
	// server is "" for the shared server (classic keys, two editors, two
	// uploads per connection), "pq" for one with post-quantum keys,
	// "staging" for one with two frames of staging space, "unfinished" for
	// one that keeps one unfinished upload.
	server string
	// run sends the refused input on c and returns the session's typed
	// error, usually c.refusal().
	run  func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error
	want protocol.Code
	// offset is the server offset a conflict or bad_checksum must carry.
	offset int64
}

// lazyMsg is a control message built for the server a case runs on: an
// upload message needs proofs of work for its seed.
type lazyMsg func(t *testing.T, ts *testServer) any

// build returns msg, or what it builds if it is a lazyMsg.
func build(t *testing.T, ts *testServer, msg any) any {
	if l, ok := msg.(lazyMsg); ok {
		return l(t, ts)
	}
	return msg
}

// sendText returns a run that sends one control message.
func sendText(msg any) func(*testing.T, *testServer, *wsConn) *protocol.Error {
	return func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		c.text(build(t, ts, msg))
		return c.refusal()
	}
}

// sendBinary returns a run that sends one binary message.
func sendBinary(b []byte) func(*testing.T, *testServer, *wsConn) *protocol.Error {
	return func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		c.binary(b)
		return c.refusal()
	}
}

// withUpload returns a run that opens an upload of frames frames of
// frameSize bytes, then sends msgs right behind it: a []byte as a binary
// message, anything else as a control message.
func withUpload(frames, frameSize int, msgs ...any) func(*testing.T, *testServer, *wsConn) *protocol.Error {
	return func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		c.text(ts.newUpload(t, ts.s.Bundle().Version, int64(frames*frameSize), frameSize))
		for _, m := range msgs {
			if b, ok := m.([]byte); ok {
				c.binary(b)
			} else {
				c.text(build(t, ts, m))
			}
		}
		return c.refusal()
	}
}

// uploadCiphertext returns a run that uploads what mk seals and commits it
// with its own hash.
func uploadCiphertext(mk func(t *testing.T, ts *testServer) []byte) func(*testing.T, *testServer, *wsConn) *protocol.Error {
	return func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		ct := mk(t, ts)
		if len(ct)%fs16 != 0 {
			t.Fatalf("ciphertext of %d bytes is not whole frames", len(ct))
		}
		c.sendUpload(ts.s.Bundle().Version, ct, fs16)
		c.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
		return c.refusal()
	}
}

// frameAt is a data frame of size zero bytes at offset, with a good CRC.
func frameAt(offset int64, size int) []byte {
	return protocol.AppendDataFrame(nil, offset, make([]byte, size))
}

// badCRC is frameAt with its checksum flipped.
func badCRC(offset int64, size int) []byte {
	f := frameAt(offset, size)
	binary.BigEndian.PutUint32(f[8:], ^binary.BigEndian.Uint32(f[8:]))
	return f
}

// uploadMsg is the first message of a one-frame upload sealed to bundle
// version 1, with proofs of work, in protocol version v, changed by mutate
// if set.
func uploadMsg(v int, mutate func(*protocol.Upload)) lazyMsg {
	return func(t *testing.T, ts *testServer) any {
		up := ts.newUpload(t, 1, fs16, fs16)
		up.Version = v
		if mutate != nil {
			mutate(up)
		}
		return up
	}
}

var refusalCases = []refusalCase{
	{name: "malformed_json", run: sendText([]byte(`{"type":`)), want: protocol.CodeMalformed},
	{name: "not_json", run: sendText([]byte(`hello`)), want: protocol.CodeMalformed},
	{name: "long_number", run: sendText([]byte(`{"type":"bundle","version":2` + strings.Repeat("0", 2000) + `}`)), want: protocol.CodeMalformed},
	{name: "unknown_type", run: sendText([]byte(`{"type":"hello","version":2}`)), want: protocol.CodeMalformed},
	// Acknowledgements flow from the server only: a client's "ack" (in
	// order or not) is not a client message and applies nothing.
	{name: "client_sends_ack", run: withUpload(2, fs16, frameAt(0, fs16), &protocol.Ack{Offset: 2 * fs16}), want: protocol.CodeMalformed},
	{name: "bundle_request_version_1", run: sendText(&protocol.BundleRequest{Version: 1}), want: protocol.CodeUnsupportedVersion},
	{name: "bundle_request_version_3", run: sendText(&protocol.BundleRequest{Version: protocol.Version + 1}), want: protocol.CodeUnsupportedVersion},
	{name: "upload_version_1", run: sendText(uploadMsg(1, nil)), want: protocol.CodeUnsupportedVersion},
	{name: "upload_version_3", run: sendText(uploadMsg(protocol.Version+1, nil)), want: protocol.CodeUnsupportedVersion},
	{name: "upload_newer_bundle", run: sendText(uploadMsg(protocol.Version, func(u *protocol.Upload) { u.BundleVersion = 2 })), want: protocol.CodeStaleBundle},
	{name: "upload_over_max_size", run: func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		c.text(ts.newUpload(t, 1, ts.s.cfg.MaxUploadSize+fs16, fs16))
		return c.refusal()
	}, want: protocol.CodeTooLarge},
	{name: "upload_at_max_size_then_binary_over_limit", run: func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		c.text(ts.newUpload(t, 1, ts.s.cfg.MaxUploadSize, fs16))
		c.readOffset(0)
		c.binary(make([]byte, 20<<10))
		return c.refusal()
	}, want: protocol.CodeTooLarge},
	{name: "binary_over_read_limit", run: sendBinary(make([]byte, 20<<10)), want: protocol.CodeTooLarge},
	{name: "text_over_read_limit", run: sendText([]byte(`{"type":"bundle","version":2}` + strings.Repeat(" ", 20<<10))), want: protocol.CodeTooLarge},
	{name: "frame_without_upload", run: sendBinary(frameAt(0, fs16)), want: protocol.CodeUnexpected},
	{name: "frame_shorter_than_header", run: withUpload(1, fs16, make([]byte, protocol.FrameHeaderSize-1)), want: protocol.CodeMalformed},
	{name: "frame_header_only", run: withUpload(1, fs16, frameAt(0, 0)), want: protocol.CodeBadFrameSize},
	{name: "frame_ahead_of_offset", run: withUpload(2, fs16, frameAt(fs16, fs16)), want: protocol.CodeConflict, offset: 0},
	{name: "frame_repeated", run: withUpload(2, fs16, frameAt(0, fs16), frameAt(0, fs16)), want: protocol.CodeConflict, offset: fs16},
	{name: "frames_out_of_order", run: withUpload(3, fs16, frameAt(0, fs16), frameAt(2*fs16, fs16), frameAt(fs16, fs16)), want: protocol.CodeConflict, offset: fs16},
	{name: "frame_after_last", run: withUpload(1, fs16, frameAt(0, fs16), frameAt(fs16, fs16)), want: protocol.CodeUnexpected},
	{name: "bad_checksum_first_frame", run: withUpload(2, fs16, badCRC(0, fs16)), want: protocol.CodeBadChecksum, offset: 0},
	{name: "bad_checksum_second_frame", run: withUpload(2, fs16, frameAt(0, fs16), badCRC(fs16, fs16)), want: protocol.CodeBadChecksum, offset: fs16},
	{name: "chunk_8k_minus_1", run: withUpload(1, fs8, frameAt(0, fs8-1)), want: protocol.CodeBadFrameSize},
	{name: "chunk_8k_plus_1", run: withUpload(1, fs8, frameAt(0, fs8+1)), want: protocol.CodeBadFrameSize},
	{name: "chunk_16k_minus_1", run: withUpload(1, fs16, frameAt(0, fs16-1)), want: protocol.CodeBadFrameSize},
	// A 16 KiB frame one byte over is a message over the protocol's
	// limit, refused as such before it is parsed as a frame.
	{name: "chunk_16k_plus_1", run: withUpload(1, fs16, frameAt(0, fs16+1)), want: protocol.CodeTooLarge},
	{name: "chunk_8k_in_16k_upload", run: withUpload(1, fs16, frameAt(0, fs8)), want: protocol.CodeBadFrameSize},
	{name: "commit_without_upload", run: sendText(&protocol.Commit{}), want: protocol.CodeUnexpected},
	{name: "commit_before_any_frame", run: withUpload(1, fs16, &protocol.Commit{}), want: protocol.CodeUnexpected},
	{name: "commit_before_last_frame", run: func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		ct := sealFor(t, ts, twoFrameText, fs16, 2)
		c.text(ts.newUpload(t, 1, int64(len(ct)), fs16))
		c.frame(ct, 0, fs16)
		c.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
		return c.refusal()
	}, want: protocol.CodeUnexpected},
	{name: "commit_wrong_sha256", run: func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		ct := sealFor(t, ts, "the hash will not match", fs16, 1)
		c.sendUpload(1, ct, fs16)
		c.text(&protocol.Commit{SHA256: sha256.Sum256(append(ct, 0))})
		return c.refusal()
	}, want: protocol.CodeBadHash},
	{name: "ciphertext_to_one_of_two_editors", run: uploadCiphertext(func(t *testing.T, ts *testServer) []byte {
		return seal(t, "only one editor", ts.recipients(t)[:1], fs16)
	}), want: protocol.CodeBadCiphertext},
	{name: "ciphertext_to_an_extra_recipient", run: uploadCiphertext(func(t *testing.T, ts *testServer) []byte {
		return seal(t, "a third reader", append(ts.recipients(t), x25519Recipients(t, 1)...), fs16)
	}), want: protocol.CodeBadCiphertext},
	{name: "ciphertext_pq_to_classic_bundle", run: uploadCiphertext(func(t *testing.T, ts *testServer) []byte {
		return seal(t, "hybrid stanzas", hybridRecipients(t, 2), fs16)
	}), want: protocol.CodeBadCiphertext},
	{name: "ciphertext_classic_to_pq_bundle", server: "pq", run: uploadCiphertext(func(t *testing.T, ts *testServer) []byte {
		return seal(t, "X25519 stanzas", x25519Recipients(t, 2), fs16)
	}), want: protocol.CodeBadCiphertext},
	{name: "ciphertext_random_bytes", run: uploadCiphertext(func(t *testing.T, ts *testServer) []byte {
		ct := make([]byte, fs16)
		rand.Read(ct)
		return ct
	}), want: protocol.CodeBadCiphertext},
	{name: "second_upload_while_open", run: withUpload(2, fs16, frameAt(0, fs16), uploadMsg(protocol.Version, nil)), want: protocol.CodeUnexpected},
	{name: "too_many_uploads", run: func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		ct := sealFor(t, ts, "one of several", fs16, 1)
		for range ts.s.cfg.MaxUploadsPerConn {
			c.upload(ts, ct, fs16)
		}
		c.text(ts.newUpload(t, 1, int64(len(ct)), fs16))
		return c.refusal()
	}, want: protocol.CodeTooManyUploads},
	{name: "commit_replayed", run: func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		ct := sealFor(t, ts, "committed once", fs16, 1)
		c.upload(ts, ct, fs16)
		c.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
		return c.refusal()
	}, want: protocol.CodeUnexpected},
	{name: "staging_space_full", server: "staging", run: func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		// Staging space is taken as frames arrive. The holder's frame
		// takes one of the two; of an upload of two frames, the first
		// fits and the second does not.
		ts.resyncCounts(t)
		holder := ts.dial(t)
		ct := sealFor(t, ts, "holding staging space", fs16, 1)
		holder.text(ts.newUpload(t, 1, int64(len(ct)), fs16))
		holder.frame(ct, 0, fs16)
		// The frame, the last, waits for the commit; the bundle request
		// behind it is answered once the frame took its space.
		holder.text(&protocol.BundleRequest{Version: protocol.Version})
		holder.readOffset(0)
		expect[*protocol.BundleReply](holder)
		c.text(ts.newUpload(t, 1, 2*fs16, fs16))
		c.binary(frameAt(0, fs16))
		c.binary(frameAt(fs16, fs16))
		e := c.refusal()
		// The holder still completes, and its frame's space comes back
		// with its receipt; the refused upload's first frame, stored as
		// its session ended, stays staged for a resume.
		holder.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
		holder.readAck(fs16)
		ts.openReceipt(t, expect[*protocol.ReceiptReply](holder).Receipt)
		if got := ts.s.staging.Load(); got != fs16 {
			t.Errorf("staging after the holder's receipt = %d, want %d", got, fs16)
		}
		return e
	}, want: protocol.CodeBusy},
	{name: "unfinished_uploads_full", server: "unfinished", run: func(t *testing.T, ts *testServer, c *wsConn) *protocol.Error {
		// The holder's upload is the one unfinished upload the server
		// keeps; another cannot open until it finishes.
		ts.resyncCounts(t)
		holder := ts.dial(t)
		ct := sealFor(t, ts, "holding the unfinished slot", fs16, 1)
		holder.text(ts.newUpload(t, 1, int64(len(ct)), fs16))
		holder.readOffset(0)
		c.text(ts.newUpload(t, 1, fs16, fs16))
		e := c.refusal()
		holder.frame(ct, 0, fs16)
		holder.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
		holder.readAck(fs16)
		ts.openReceipt(t, expect[*protocol.ReceiptReply](holder).Receipt)
		if got := ts.s.slots.count(); got != 0 {
			t.Errorf("unfinished uploads after the holder's receipt = %d, want 0", got)
		}
		return e
	}, want: protocol.CodeBusy},
}

// The refused sessions above are run, with the rest of the catalogue of
// hostile inputs, by TestHostileInputs (hostile_test.go).

// TestCiphertextStructureOnly pins what the server cannot check: it holds
// no key, so an age file of the right shape to the wrong keys is stored
// (DESIGN.md §4 step 3: structure only).
func TestCiphertextStructureOnly(t *testing.T) {
	ts := newTestServer(t, serverOptions{editors: 2})
	c := ts.dial(t)
	r := c.upload(ts, seal(t, "right count, wrong keys", x25519Recipients(t, 2), fs16), fs16)
	if r.Length != fs16 {
		t.Errorf("receipt length %d, want %d", r.Length, fs16)
	}
	ts.intact(t)
}

// waitConnsIdle waits until no source connection holds a slot.
func (ts *testServer) waitConnsIdle(tb testing.TB) {
	tb.Helper()
	ts.waitSlots(tb, 0)
}

// TestMaxConns fills the connection limit with real connections: a new
// source is not refused while a connection sits idle, the one idle
// longest is closed with a typed busy error instead (issue 11: idle
// connections must not lock sources out); and only when every slot is
// handling a message is the newcomer refused before the upgrade with
// HTTP 503 busy.
func TestMaxConns(t *testing.T) {
	g := newGate(t)
	var parked atomic.Int32
	ts := newTestServer(t, serverOptions{
		config: func(c *Config) { c.MaxConns = 2 },
		beforeServe: func(s *Server) {
			s.testOnlyBeforeStore = func() {
				if parked.Add(1) <= 2 {
					g.park()
				}
			}
		},
	})
	ts.waitConnsIdle(t)
	h1 := ts.dial(t)
	ts.waitWaiting(t, 1, 0)
	h2 := ts.dial(t)
	// h2 has sent a message since: h1 is idle longest.
	h2.text(&protocol.BundleRequest{Version: protocol.Version})
	expect[*protocol.BundleReply](h2)

	// Both slots held by idle connections: a source still gets through,
	// and h1 makes room.
	ts.waitWaiting(t, 2, 0)
	parked.Store(2) // the hook lets this one through
	ts.send(t, "at the limit")
	if e := h1.refusal(); !protocol.IsError(e, protocol.CodeBusy) {
		t.Errorf("the connection idle longest got %v, want code %s", e, protocol.CodeBusy)
	}
	if n := ts.s.sources.evictions.Load(); n != 1 {
		t.Errorf("%d connections evicted, want 1", n)
	}
	h2.c.Close()
	ts.waitConnsIdle(t)

	// Both slots handling a message (parked in their commits): the
	// newcomer is refused before the upgrade.
	parked.Store(0)
	var busy []*wsConn
	cts := [][]byte{sealFor(t, ts, "parked 1", fs16, 1), sealFor(t, ts, "parked 2", fs16, 1)}
	ts.seedNote(t) // fetched now, not on a third connection
	ts.waitConnsIdle(t)
	for _, ct := range cts {
		c := ts.dial(t)
		c.sendUpload(1, ct, fs16)
		c.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
		busy = append(busy, c)
	}
	g.waitEntered(t)
	for parked.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	c, resp, err := testDialer.Dial(ts.wsURL(), nil)
	if err == nil {
		c.Close()
		t.Fatal("third connection upgraded while both slots handle a message, want a refusal")
	}
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
		t.Fatalf("Dial() = %v, want %v with a response", err, websocket.ErrBadHandshake)
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want %d", resp.StatusCode, http.StatusServiceUnavailable)
	}
	body, _ := io.ReadAll(resp.Body)
	if e := httpError(t, body); !protocol.IsError(e, protocol.CodeBusy) {
		t.Errorf("body error %v, want code %s", e, protocol.CodeBusy)
	}
	g.release()
	for _, c := range busy {
		ts.openReceipt(t, c.readUpload(fs16, fs16))
		c.c.Close()
	}
	ts.waitConnsIdle(t)
	ts.send(t, "after the limit")
	ts.intact(t)
}

// TestSendReceipt sends a tip with the real client: the receipt names the
// stored row, and the stored ciphertext opens with every editor's identity
// to the text sent.
func TestSendReceipt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pq        bool
		frameSize int
	}{
		{"classic", false, fs16},
		{"classic_low_bandwidth", false, fs8},
		{"pq", true, fs16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, serverOptions{pq: tc.pq, editors: 2})
			const text = "Copper concentrate from the Hyesan mine leaves by truck at night."
			res := ts.sendWith(t, text, sourcekit.Options{FrameSize: tc.frameSize})
			r := res.Receipt
			if res.BundleVersion != 1 {
				t.Errorf("sealed to bundle version %d, want 1", res.BundleVersion)
			}
			if r.Length%int64(tc.frameSize) != 0 {
				t.Errorf("receipt length %d is not whole frames of %d", r.Length, tc.frameSize)
			}
			metas, err := ts.store.ListTips(context.Background(), 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(metas) != 1 {
				t.Fatalf("%d tips stored, want 1", len(metas))
			}
			m := metas[0]
			if m.ID != r.TipID || m.SHA256 != r.SHA256 || m.Length != r.Length || m.BundleVersion != 1 {
				t.Errorf("stored %s sha256 %x length %d bundle %d; receipt %s %x %d", crypto.FormatTipID(m.ID), m.SHA256, m.Length, m.BundleVersion, r.TipIDString(), r.SHA256, r.Length)
			}
			if len(m.Day) != 10 || m.Day != r.Day {
				t.Errorf("stored day %q, receipt day %q, want the same YYYY-MM-DD", m.Day, r.Day)
			}
			if string(m.Receipt) != string(res.ReceiptNote) {
				t.Errorf("stored receipt differs from the one handed to the source")
			}
			ct, err := ts.store.TipCiphertext(context.Background(), r.TipID)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range ts.editors {
				tip, err := crypto.Open(ct, k.Identity)
				if err != nil {
					t.Fatalf("Open with %s's identity: %v", k.Label, err)
				}
				if tip.Text != text {
					t.Errorf("%s decrypts %q, want %q", k.Label, tip.Text, text)
				}
			}
			ts.intact(t)
		})
	}
}

// TestSequentialUploads sends several uploads, of mixed sizes and frame
// sizes, one after another on one connection: each gets its own receipt.
func TestSequentialUploads(t *testing.T) {
	ts := newTestServer(t, serverOptions{editors: 2})
	c := ts.dial(t)
	for i, u := range []struct {
		text              string
		frameSize, frames int
	}{
		{"first", fs16, 1},
		{twoFrameText, fs16, 2},
		{"third, on a bad link", fs8, 1},
		{"fourth", fs16, 1},
	} {
		ct := sealFor(t, ts, u.text, u.frameSize, u.frames)
		r := c.upload(ts, ct, u.frameSize)
		if r.SHA256 != sha256.Sum256(ct) || r.Length != int64(len(ct)) {
			t.Errorf("upload %d: receipt does not match the ciphertext", i)
		}
		stored, err := ts.store.TipCiphertext(context.Background(), r.TipID)
		if err != nil {
			t.Fatal(err)
		}
		tip, err := crypto.Open(stored, ts.editors[1].Identity)
		if err != nil || tip.Text != u.text {
			t.Errorf("upload %d: stored tip opens to %v, %v", i, tip, err)
		}
	}
	if n, err := ts.store.CountTips(context.Background()); err != nil || n != 4 {
		t.Errorf("CountTips() = %d, %v; want 4", n, err)
	}
	ts.intact(t)
}
