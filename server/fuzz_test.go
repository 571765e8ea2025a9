package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// A source session is a list of client messages, on one connection or,
// across reconnects, several. Its fuzz encoding is a sequence of
// operations, each a kind byte (taken modulo 7) and its argument:
//
//	0  text message    uint16 big-endian length, then the bytes
//	1  binary message  uint16 big-endian length, then the bytes
//	2  data frame      one byte: frame index (low 6 bits), 0x40 zero
//	                   chunk, 0x80 flipped CRC-32C
//	3  commit          none: SHA-256 of the frames sent in this upload
//	4  upload          one byte of flags, then the frame count as a
//	                   uint16 big-endian: a well-formed upload message
//	                   with proofs of work for the server's seed
//	5  resume          one byte: upload index (low 2 bits), 0x04 wrong
//	                   resume secret
//	6  reconnect       none: close the connection cleanly, read it to
//	                   its end, and go on on a new one
//
// An upload's flags are its upload index (low 2 bits), 0x04 for 8 KiB
// frames, 0x08 for the bundle version after the one in force, and the
// proofs (bits 4 to 6, uploadPoW*). Upload index i names the session's
// i-th upload id and resume secret, drawn afresh for every run, so runs do
// not spend each other's ids and a session can open, replay and resume
// the same upload.
//
// A data frame operation sends frame index i of the current upload (the
// last one opened or resumed, 16 KiB frames before any) at offset i ×
// frame size, carrying that slice of the session's sealed ciphertext (or
// zeros past its end, or with 0x40). So the fuzzer reaches every check of
// an upload, up to receipts, without knowing the keys or the seed, which
// are made afresh in every process.
//
// Vectors in testdata/session/<case> write the same in text, one message a
// line after a header: comment lines starting with "#", then "expect
// receipt" or "expect error <code>" (the last server message of the last
// connection):
//
//	text <JSON>
//	binary <hex>
//	zeros <n>                 (a binary message of n zero bytes)
//	frame <i> [zero] [badcrc]
//	commit
//	upload <i> <frames> [lowbw] [next_bundle] [pow=<proofs>]
//	resume <i> [wrong_secret]
//	reconnect
//
// where <proofs> is one of the names of uploadPoWNames.

const (
	opText = iota
	opBinary
	opFrame
	opCommit
	opUpload
	opResume
	opReconnect
	numOps
)

const (
	frameZero   = 0x40
	frameBadCRC = 0x80
	// maxOps caps the operations of one fuzz input.
	maxOps = 64
	// uploadIndexes is how many upload ids and resume secrets a session
	// has.
	uploadIndexes = 4
)

// Upload and resume flags.
const (
	uploadLowBandwidth = 0x04
	uploadNextBundle   = 0x08
	uploadPoWShift     = 4
	uploadPoWMask      = 0x70
	resumeWrongSecret  = 0x04
)

// The proofs an upload operation carries.
const (
	uploadPoWGood        = iota // one valid proof per started 64 KiB
	uploadPoWNone               // pow ""
	uploadPoWTooFew             // the last proof left out
	uploadPoWTooMany            // one proof more
	uploadPoWBadNonce           // the first proof replaced by one that fails
	uploadPoWStaleEpoch         // valid proofs, labelled two epochs back
	uploadPoWFutureEpoch        // valid proofs, labelled one epoch ahead
	uploadPoWBadPre             // valid proofs, a pre-proof that fails
)

// uploadPoWNames are the vector names of the proofs, by value.
var uploadPoWNames = []string{"good", "none", "too_few", "too_many", "bad_nonce", "stale_epoch", "future_epoch", "bad_pre"}

type sessionOp struct {
	kind   byte
	data   []byte // text and binary
	arg    byte   // frame, upload and resume
	frames uint16 // upload
}

// decodeSession decodes a fuzz input; a truncated last operation is
// dropped.
func decodeSession(in []byte) []sessionOp {
	var ops []sessionOp
	for len(in) > 0 && len(ops) < maxOps {
		op := sessionOp{kind: in[0] % numOps}
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
		case opFrame, opResume:
			if len(in) < 1 {
				return ops
			}
			op.arg, in = in[0], in[1:]
		case opUpload:
			if len(in) < 3 {
				return ops
			}
			op.arg, op.frames, in = in[0], binary.BigEndian.Uint16(in[1:]), in[3:]
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
		case opFrame, opResume:
			out = append(out, op.arg)
		case opUpload:
			out = append(out, op.arg)
			out = binary.BigEndian.AppendUint16(out, op.frames)
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
		case "upload":
			op, err := parseUploadLine(rest)
			if err != nil {
				return v, fmt.Errorf("%q: %v", line, err)
			}
			v.ops = append(v.ops, op)
		case "resume":
			f := strings.Fields(rest)
			if len(f) == 0 {
				return v, fmt.Errorf("resume without index")
			}
			i, err := strconv.Atoi(f[0])
			if err != nil || i < 0 || i >= uploadIndexes {
				return v, fmt.Errorf("bad upload index %q", f[0])
			}
			op := sessionOp{kind: opResume, arg: byte(i)}
			for _, flag := range f[1:] {
				if flag != "wrong_secret" {
					return v, fmt.Errorf("unknown resume flag %q", flag)
				}
				op.arg |= resumeWrongSecret
			}
			v.ops = append(v.ops, op)
		case "reconnect":
			v.ops = append(v.ops, sessionOp{kind: opReconnect})
		default:
			return v, fmt.Errorf("unknown line %q", line)
		}
	}
	if v.want == "" {
		return v, fmt.Errorf("no expect line")
	}
	return v, sc.Err()
}

// parseUploadLine parses the arguments of an upload line.
func parseUploadLine(rest string) (sessionOp, error) {
	op := sessionOp{kind: opUpload}
	f := strings.Fields(rest)
	if len(f) < 2 {
		return op, fmt.Errorf("want an upload index and a frame count")
	}
	i, err := strconv.Atoi(f[0])
	if err != nil || i < 0 || i >= uploadIndexes {
		return op, fmt.Errorf("bad upload index %q", f[0])
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 0 || n > 0xffff {
		return op, fmt.Errorf("bad frame count %q", f[1])
	}
	op.arg, op.frames = byte(i), uint16(n)
	for _, flag := range f[2:] {
		switch {
		case flag == "lowbw":
			op.arg |= uploadLowBandwidth
		case flag == "next_bundle":
			op.arg |= uploadNextBundle
		case strings.HasPrefix(flag, "pow="):
			k := slices.Index(uploadPoWNames, strings.TrimPrefix(flag, "pow="))
			if k < 0 {
				return op, fmt.Errorf("unknown proofs %q", flag)
			}
			op.arg |= byte(k) << uploadPoWShift
		default:
			return op, fmt.Errorf("unknown upload flag %q", flag)
		}
	}
	return op, nil
}

// sessionServer is a server for running encoded sessions against, with a
// sentinel tip stored at setup and a count of error-level log records.
type sessionServer struct {
	ts       *testServer
	ct       []byte // one 16 KiB frame, sealed to the bundle
	seed     *crypto.PoWSeed
	sentinel *crypto.Receipt
	errors   *atomic.Int64
	log      *lockedBuffer
}

// sessionMaxUpload is the session server's upload limit: small, so that
// the proofs of an upload at the limit are quick to compute.
const sessionMaxUpload = 1 << 20

func newSessionServer(tb testing.TB) *sessionServer {
	ss := &sessionServer{errors: &atomic.Int64{}, log: &lockedBuffer{}}
	h := &countingHandler{Handler: slog.NewTextHandler(ss.log, nil), errors: ss.errors}
	ss.ts = newTestServer(tb, serverOptions{logger: slog.New(h), config: func(c *Config) {
		c.MaxUploadSize = sessionMaxUpload
	}})
	ss.ct = sealFor(tb, ss.ts, "sealed once per process", fs16, 1)
	ss.seed = ss.ts.seed(tb)
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

// sessionResult is what one connection of a session got back.
type sessionResult struct {
	msgs []any
	// closed: the connection ended with a close frame from the server.
	closed bool
}

// uploadState is what a session sent of one upload, to hash at a commit.
type uploadState struct {
	frameSize int
	length    int64
	chunks    map[int64][]byte
}

// fuzzSession is one run of a session: its upload ids and resume secrets, what
// it sent of each upload, and its connection.
type fuzzSession struct {
	ss      *sessionServer
	t       *testing.T
	ids     [uploadIndexes]protocol.UploadID
	secrets [uploadIndexes][32]byte
	uploads map[protocol.UploadID]*uploadState
	cur     *uploadState
	// proofs caches valid proofs by upload index and length: a replayed
	// upload carries the same ones.
	proofs map[[2]int64][]uint64
	c      *websocket.Conn
	// broken: a write failed, so the server has refused and closed; the
	// rest of this connection's operations are moot.
	broken  bool
	results []sessionResult
}

// run plays ops on fresh connections, then closes the last one's side and
// reads it to the end. On every connection every server message must
// parse, and an error message may come only last, and only once; the
// server must log no error.
func (ss *sessionServer) run(t *testing.T, ops []sessionOp) []sessionResult {
	t.Helper()
	errsBefore := ss.errors.Load()
	se := &fuzzSession{ss: ss, t: t, uploads: map[protocol.UploadID]*uploadState{}, proofs: map[[2]int64][]uint64{}}
	for i := range se.ids {
		rand.Read(se.ids[i][:])
		rand.Read(se.secrets[i][:])
	}
	se.dial()
	for _, op := range ops {
		if op.kind == opReconnect {
			se.hangUp()
			se.dial()
			continue
		}
		if !se.broken {
			se.broken = !se.play(op)
		}
	}
	se.hangUp()
	if n := ss.errors.Load() - errsBefore; n > 0 {
		t.Fatalf("server logged %d errors:\n%s", n, ss.log.String())
	}
	return se.results
}

func (se *fuzzSession) dial() {
	se.t.Helper()
	c, _, err := testDialer.Dial(se.ss.ts.wsURL(), nil)
	if err != nil {
		se.t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(protocol.MaxServerMessage)
	se.c, se.broken = c, false
}

// write sends one message; it reports false once the server has refused
// and closed.
func (se *fuzzSession) write(mt int, b []byte) bool {
	se.c.SetWriteDeadline(time.Now().Add(failAfter))
	return se.c.WriteMessage(mt, b) == nil
}

// state returns what was sent of upload id, recording its shape the first
// time.
func (se *fuzzSession) state(id protocol.UploadID, frameSize int, length int64) *uploadState {
	u := se.uploads[id]
	if u == nil {
		u = &uploadState{frameSize: frameSize, length: length, chunks: map[int64][]byte{}}
		se.uploads[id] = u
	}
	return u
}

// play sends one operation other than a reconnect.
func (se *fuzzSession) play(op sessionOp) bool {
	se.t.Helper()
	cur := se.cur
	if cur == nil {
		cur = &uploadState{frameSize: fs16, chunks: map[int64][]byte{}}
	}
	switch op.kind {
	case opText:
		if m, err := protocol.ParseClientMessage(op.data); err == nil {
			switch m := m.(type) {
			case *protocol.Upload:
				// A raw upload names its own id: what was sent
				// before under it is its server's business.
				se.cur = &uploadState{frameSize: m.FrameSize, length: m.Length, chunks: map[int64][]byte{}}
				se.uploads[m.UploadID] = se.cur
			case *protocol.Resume:
				se.cur = se.state(m.UploadID, fs16, 0)
			}
		}
		return se.write(websocket.TextMessage, op.data)
	case opBinary:
		return se.write(websocket.BinaryMessage, op.data)
	case opFrame:
		off := int64(op.arg&(frameZero-1)) * int64(cur.frameSize)
		chunk := make([]byte, cur.frameSize)
		if op.arg&frameZero == 0 && off+int64(cur.frameSize) <= int64(len(se.ss.ct)) {
			chunk = se.ss.ct[off : off+int64(cur.frameSize)]
		}
		cur.chunks[off] = chunk
		f := protocol.AppendDataFrame(nil, off, chunk)
		if op.arg&frameBadCRC != 0 {
			f[8] ^= 0xff
		}
		return se.write(websocket.BinaryMessage, f)
	case opCommit:
		h := sha256.New()
		zero := make([]byte, cur.frameSize)
		for off := int64(0); off < cur.length && off < maxOps*int64(cur.frameSize); off += int64(cur.frameSize) {
			if ch, ok := cur.chunks[off]; ok {
				h.Write(ch)
			} else {
				h.Write(zero)
			}
		}
		var m protocol.Commit
		h.Sum(m.SHA256[:0])
		return se.write(websocket.TextMessage, protocol.Marshal(&m))
	case opUpload:
		up := se.upload(op)
		se.cur = se.state(up.UploadID, up.FrameSize, up.Length)
		return se.write(websocket.TextMessage, protocol.Marshal(up))
	case opResume:
		i := op.arg % uploadIndexes
		m := &protocol.Resume{Version: protocol.Version, UploadID: se.ids[i], ResumeSecret: se.secrets[i]}
		if op.arg&resumeWrongSecret != 0 {
			m.ResumeSecret[0] ^= 1
		}
		se.cur = se.state(m.UploadID, fs16, 0)
		return se.write(websocket.TextMessage, protocol.Marshal(m))
	}
	return true
}

// upload builds the message of an upload operation.
func (se *fuzzSession) upload(op sessionOp) *protocol.Upload {
	se.t.Helper()
	i := op.arg % uploadIndexes
	frameSize := fs16
	if op.arg&uploadLowBandwidth != 0 {
		frameSize = fs8
	}
	bundle := se.ss.ts.s.Bundle().Version
	if op.arg&uploadNextBundle != 0 {
		bundle++
	}
	up := &protocol.Upload{Version: protocol.Version, BundleVersion: bundle, UploadID: se.ids[i],
		ResumeHash: sha256.Sum256(se.secrets[i][:]), Length: int64(op.frames) * int64(frameSize),
		FrameSize: frameSize, PoWEpoch: se.ss.seed.Epoch}
	// Proofs are solved only for lengths the server takes: the size is
	// checked before them, and solving thousands would slow fuzzing.
	if up.Length > 0 && up.Length <= sessionMaxUpload {
		key := [2]int64{int64(i), up.Length}
		if se.proofs[key] == nil {
			se.proofs[key] = solve(se.t, se.ss.seed, up.UploadID, up.Length)
		}
		up.PoW = slices.Clone(se.proofs[key])
	} else {
		up.PoW = make([]uint64, min(protocol.Proofs(up.Length), protocol.MaxProofs))
	}
	switch (op.arg & uploadPoWMask) >> uploadPoWShift {
	case uploadPoWNone:
		up.PoW = nil
	case uploadPoWTooFew:
		if len(up.PoW) > 0 {
			up.PoW = up.PoW[:len(up.PoW)-1]
		}
	case uploadPoWTooMany:
		up.PoW = append(up.PoW, 0)
	case uploadPoWBadNonce:
		if len(up.PoW) > 0 && up.Length <= sessionMaxUpload {
			up.PoW[0] = failingNonce(se.ss.seed, up.UploadID, up.Length, 0)
		}
	case uploadPoWStaleEpoch:
		up.PoWEpoch -= 2
	case uploadPoWFutureEpoch:
		up.PoWEpoch++
	}
	// The pre-proof is always the right one for the proofs sent, so that
	// their own check is what a bad proof meets; but with bad_pre.
	up.PrePoW = prePoWOf(se.t, se.ss.seed, up)
	if (op.arg&uploadPoWMask)>>uploadPoWShift == uploadPoWBadPre {
		up.PrePoW = failingPrePoW(se.ss.seed, up)
	}
	return up
}

// failingNonce returns a nonce that is not a proof of work for chunk of an
// upload under seed: with few bits, a random one often is.
func failingNonce(seed *crypto.PoWSeed, id protocol.UploadID, length int64, chunk int) uint64 {
	in := crypto.PoWInput{Seed: seed.Seed, UploadID: id, Length: length, Chunk: chunk}
	n := uint64(1) << 63
	for crypto.CheckPoW(seed.Params, in, n) {
		n++
	}
	return n
}

// hangUp closes the connection's side cleanly and reads it to its end,
// recording what the server sent on it.
func (se *fuzzSession) hangUp() {
	se.t.Helper()
	c := se.c
	defer c.Close()
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
			se.t.Fatalf("server sent a message of type %d", mt)
		}
		m, err := protocol.ParseServerMessage(data)
		if err != nil {
			se.t.Fatalf("server message %q does not parse: %v", data, err)
		}
		if errs > 0 {
			se.t.Fatalf("server sent %T after its error message", m)
		}
		if _, ok := m.(*protocol.Error); ok {
			errs++
		}
		res.msgs = append(res.msgs, m)
	}
	se.results = append(se.results, res)
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
			results := ss.run(t, v.ops)
			for _, res := range results {
				for _, m := range res.msgs {
					if r, ok := m.(*protocol.ReceiptReply); ok {
						ss.ts.openReceipt(t, r.Receipt)
					}
				}
			}
			res := results[len(results)-1]
			if len(res.msgs) == 0 {
				t.Fatalf("no server message on the last connection, want %s", v.want)
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
