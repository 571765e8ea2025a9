package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// A source session is a list of client messages. Its fuzz encoding is a
// sequence of operations, each a kind byte (taken modulo 4) and its
// argument:
//
//	0  text message    uint16 big-endian length, then the bytes
//	1  binary message  uint16 big-endian length, then the bytes
//	2  data frame      one byte: frame index (low 6 bits), 0x40 zero
//	                   chunk, 0x80 flipped CRC-32C
//	3  commit          none: SHA-256 of the frames sent in this upload
//
// A data frame operation sends frame index i of the current upload (the
// last upload message sent, 16 KiB frames before any) at offset i × frame
// size, carrying that slice of the session's sealed ciphertext (or zeros
// past its end, or with 0x40). So the fuzzer reaches every check of an
// upload, up to receipts, without knowing the keys, which are made afresh
// in every process.
//
// Vectors in testdata/session/<case> write the same in text, one message a
// line after a header: comment lines starting with "#", then "expect
// receipt" or "expect error <code>" (the session's last server message):
//
//	text <JSON>
//	binary <hex>
//	zeros <n>                 (a binary message of n zero bytes)
//	frame <i> [zero] [badcrc]
//	commit

const (
	opText = iota
	opBinary
	opFrame
	opCommit
)

const (
	frameZero   = 0x40
	frameBadCRC = 0x80
	// maxOps caps the operations of one fuzz input.
	maxOps = 64
)

type sessionOp struct {
	kind byte
	data []byte // text and binary
	arg  byte   // frame
}

// decodeSession decodes a fuzz input; a truncated last operation is
// dropped.
func decodeSession(in []byte) []sessionOp {
	var ops []sessionOp
	for len(in) > 0 && len(ops) < maxOps {
		op := sessionOp{kind: in[0] % 4}
		in = in[1:]
		switch op.kind {
		case opText, opBinary:
			if len(in) < 2 {
				return ops
			}
			n := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			if len(in) < n {
				return ops
			}
			op.data, in = in[:n], in[n:]
		case opFrame:
			if len(in) < 1 {
				return ops
			}
			op.arg, in = in[0], in[1:]
		}
		ops = append(ops, op)
	}
	return ops
}

func encodeSession(ops []sessionOp) []byte {
	var out []byte
	for _, op := range ops {
		out = append(out, op.kind)
		switch op.kind {
		case opText, opBinary:
			out = binary.BigEndian.AppendUint16(out, uint16(len(op.data)))
			out = append(out, op.data...)
		case opFrame:
			out = append(out, op.arg)
		}
	}
	return out
}

// sessionVector is one file of testdata/session.
type sessionVector struct {
	name string
	// want is "receipt" or an error code.
	want protocol.Code
	ops  []sessionOp
}

const wantReceipt protocol.Code = "receipt"

func loadSessionVectors(tb testing.TB) []sessionVector {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "session", "*"))
	if err != nil {
		tb.Fatal(err)
	}
	var vs []sessionVector
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		v, err := parseSessionVector(b)
		if err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
		v.name = filepath.Base(p)
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		tb.Fatal("no session vectors in testdata/session")
	}
	return vs
}

func parseSessionVector(b []byte) (sessionVector, error) {
	var v sessionVector
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		verb, rest, _ := strings.Cut(line, " ")
		switch verb {
		case "expect":
			if rest == "receipt" {
				v.want = wantReceipt
			} else if code, ok := strings.CutPrefix(rest, "error "); ok {
				v.want = protocol.Code(code)
			} else {
				return v, fmt.Errorf("bad expect line %q", line)
			}
		case "text":
			v.ops = append(v.ops, sessionOp{kind: opText, data: []byte(rest)})
		case "binary":
			d, err := hex.DecodeString(rest)
			if err != nil {
				return v, fmt.Errorf("binary: %v", err)
			}
			v.ops = append(v.ops, sessionOp{kind: opBinary, data: d})
		case "zeros":
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 || n > 0xffff {
				return v, fmt.Errorf("bad zeros line %q", line)
			}
			v.ops = append(v.ops, sessionOp{kind: opBinary, data: make([]byte, n)})
		case "frame":
			f := strings.Fields(rest)
			if len(f) == 0 {
				return v, fmt.Errorf("frame without index")
			}
			i, err := strconv.Atoi(f[0])
			if err != nil || i < 0 || i >= frameZero {
				return v, fmt.Errorf("bad frame index %q", f[0])
			}
			arg := byte(i)
			for _, flag := range f[1:] {
				switch flag {
				case "zero":
					arg |= frameZero
				case "badcrc":
					arg |= frameBadCRC
				default:
					return v, fmt.Errorf("unknown frame flag %q", flag)
				}
			}
			v.ops = append(v.ops, sessionOp{kind: opFrame, arg: arg})
		case "commit":
			v.ops = append(v.ops, sessionOp{kind: opCommit})
		default:
			return v, fmt.Errorf("unknown line %q", line)
		}
	}
	if v.want == "" {
		return v, fmt.Errorf("no expect line")
	}
	return v, sc.Err()
}

// sessionServer is a server for running encoded sessions against, with a
// sentinel tip stored at setup and a count of error-level log records.
type sessionServer struct {
	ts       *testServer
	ct       []byte // one 16 KiB frame, sealed to the bundle
	sentinel *crypto.Receipt
	errors   *atomic.Int64
	log      *lockedBuffer
}

func newSessionServer(tb testing.TB) *sessionServer {
	ss := &sessionServer{errors: &atomic.Int64{}, log: &lockedBuffer{}}
	h := &countingHandler{Handler: slog.NewTextHandler(ss.log, nil), errors: ss.errors}
	ss.ts = newTestServer(tb, serverOptions{logger: slog.New(h)})
	ss.ct = sealFor(tb, ss.ts, "sealed once per process", fs16, 1)
	c := ss.ts.dial(tb)
	ss.sentinel = c.upload(ss.ts, seal(tb, "the sentinel", ss.ts.recipients(tb), fs16), fs16)
	c.c.Close()
	return ss
}

// countingHandler counts records at error level or above.
type countingHandler struct {
	slog.Handler
	errors *atomic.Int64
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

// sessionResult is what a session got back.
type sessionResult struct {
	msgs []any
	// closed: the session ended with a close frame from the server.
	closed bool
}

// run plays ops on a fresh connection, then closes its side and reads to
// the end. Every server message must parse; an error message may come
// only last, and only once.
func (ss *sessionServer) run(t *testing.T, ops []sessionOp) sessionResult {
	t.Helper()
	errsBefore := ss.errors.Load()
	c, _, err := testDialer.Dial(ss.ts.wsURL(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetReadLimit(protocol.MaxServerMessage)

	frameSize, length := fs16, int64(0)
	chunks := map[int64][]byte{}
	write := func(mt int, b []byte) bool {
		c.SetWriteDeadline(time.Now().Add(failAfter))
		// A write fails once the server has refused and closed: the
		// rest of the session is moot.
		return c.WriteMessage(mt, b) == nil
	}
	for _, op := range ops {
		ok := true
		switch op.kind {
		case opText:
			if m, err := protocol.ParseClientMessage(op.data); err == nil {
				if up, isUp := m.(*protocol.Upload); isUp {
					frameSize, length = up.FrameSize, up.Length
					clear(chunks)
				}
			}
			ok = write(websocket.TextMessage, op.data)
		case opBinary:
			ok = write(websocket.BinaryMessage, op.data)
		case opFrame:
			off := int64(op.arg&(frameZero-1)) * int64(frameSize)
			chunk := make([]byte, frameSize)
			if op.arg&frameZero == 0 && off+int64(frameSize) <= int64(len(ss.ct)) {
				chunk = ss.ct[off : off+int64(frameSize)]
			}
			chunks[off] = chunk
			f := protocol.AppendDataFrame(nil, off, chunk)
			if op.arg&frameBadCRC != 0 {
				f[8] ^= 0xff
			}
			ok = write(websocket.BinaryMessage, f)
		case opCommit:
			h := sha256.New()
			zero := make([]byte, frameSize)
			for off := int64(0); off < length && off < maxOps*int64(frameSize); off += int64(frameSize) {
				if ch, ok := chunks[off]; ok {
					h.Write(ch)
				} else {
					h.Write(zero)
				}
			}
			var m protocol.Commit
			h.Sum(m.SHA256[:0])
			ok = write(websocket.TextMessage, protocol.Marshal(&m))
		}
		if !ok {
			break
		}
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(failAfter))

	var res sessionResult
	errs := 0
	for {
		c.SetReadDeadline(time.Now().Add(failAfter))
		mt, data, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			res.closed = errors.As(err, &ce)
			break
		}
		if mt != websocket.TextMessage {
			t.Fatalf("server sent a message of type %d", mt)
		}
		m, err := protocol.ParseServerMessage(data)
		if err != nil {
			t.Fatalf("server message %q does not parse: %v", data, err)
		}
		if errs > 0 {
			t.Fatalf("server sent %T after its error message", m)
		}
		if _, ok := m.(*protocol.Error); ok {
			errs++
		}
		res.msgs = append(res.msgs, m)
	}
	if n := ss.errors.Load() - errsBefore; n > 0 {
		t.Fatalf("server logged %d errors:\n%s", n, ss.log.String())
	}
	return res
}

// checkSentinel checks the tip stored at setup is whole.
func (ss *sessionServer) checkSentinel(t *testing.T) {
	t.Helper()
	ct, err := ss.ts.store.TipCiphertext(context.Background(), ss.sentinel.TipID)
	if err != nil {
		t.Fatalf("sentinel tip: %v", err)
	}
	if sha256.Sum256(ct) != ss.sentinel.SHA256 {
		t.Fatal("sentinel tip changed")
	}
}

// TestSessionVectors plays each vector and checks its last message.
func TestSessionVectors(t *testing.T) {
	ss := newSessionServer(t)
	for _, v := range loadSessionVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			// The vector's ops survive the fuzz encoding unchanged.
			if got := decodeSession(encodeSession(v.ops)); len(got) != len(v.ops) {
				t.Fatalf("%d ops decode from the encoding of %d", len(got), len(v.ops))
			}
			res := ss.run(t, v.ops)
			if len(res.msgs) == 0 {
				t.Fatalf("no server message, want %s", v.want)
			}
			for _, m := range res.msgs {
				if r, ok := m.(*protocol.ReceiptReply); ok {
					ss.ts.openReceipt(t, r.Receipt)
				}
			}
			last := res.msgs[len(res.msgs)-1]
			switch m := last.(type) {
			case *protocol.ReceiptReply:
				if v.want != wantReceipt {
					t.Fatalf("got a receipt, want %s", v.want)
				}
			case *protocol.Error:
				if !protocol.IsError(m, v.want) {
					t.Fatalf("got %v, want %s", m, v.want)
				}
				if !res.closed {
					t.Errorf("no close frame after %s", m.Code)
				}
			default:
				t.Fatalf("last message %T, want %s", last, v.want)
			}
			ss.checkSentinel(t)
		})
	}
	ss.ts.intact(t)
}

// FuzzSourceSession plays arbitrary sessions against one server per
// process. Property: every server message parses as a server message, at
// most one is an error and it comes last, the server logs no error, and
// the sentinel tip stored at setup stays whole.
func FuzzSourceSession(f *testing.F) {
	for _, v := range loadSessionVectors(f) {
		f.Add(encodeSession(v.ops))
	}
	ss := newSessionServer(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		ss.run(t, decodeSession(in))
		ss.checkSentinel(t)
	})
}
