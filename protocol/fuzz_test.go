package protocol_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"fieldtip/protocol"
)

// seed is one vector file: its header and its message.
type seed struct {
	h    map[string]string
	body []byte
}

// seeds returns the vectors of testdata/<dir>, failing f if there are none.
func seeds(f *testing.F, dir string) []seed {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil {
		f.Fatal(err)
	}
	var out []seed
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		h, body, err := parseVector(b)
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		out = append(out, seed{h, body})
	}
	if len(out) == 0 {
		f.Fatalf("no seed vectors in testdata/%s", dir)
	}
	return out
}

// fuzzMessages checks the parser's property: anything it accepts, Marshal
// writes as a message it parses to an equal value, within the size limit;
// anything it refuses is a *protocol.Error of code malformed, or, where
// refused(b) allows it, of another code.
func fuzzMessages(f *testing.F, parse func([]byte) (any, error), limit int, refused func(b []byte, code protocol.Code) bool) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parse(b)
		if err != nil {
			var e *protocol.Error
			if !errors.As(err, &e) || (e.Code != protocol.CodeMalformed && !refused(b, e.Code)) {
				t.Fatalf("error %v is not a *protocol.Error of code malformed, nor of a code this input may get", err)
			}
			if m != nil {
				t.Fatalf("a message %#v with error %v", m, err)
			}
			return
		}
		out := protocol.Marshal(m)
		if len(out) > limit {
			t.Fatalf("Marshal(%#v) is %d bytes, more than %d", m, len(out), limit)
		}
		again, err := parse(out)
		if err != nil {
			t.Fatalf("Marshal(%#v) = %s, which does not parse: %v", m, out, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("Marshal(%#v) = %s, which parses to %#v", m, out, again)
		}
	})
}

// otherVersion reports whether b is a JSON object whose "version" member
// is an integer ≥ 1 other than protocol.Version: the only input a client
// parser may refuse as unsupported_version.
func otherVersion(b []byte, code protocol.Code) bool {
	var members map[string]json.RawMessage
	if code != protocol.CodeUnsupportedVersion || json.Unmarshal(b, &members) != nil {
		return false
	}
	v, err := strconv.ParseInt(string(members["version"]), 10, 64)
	return err == nil && v >= 1 && v != protocol.Version
}

func onlyMalformed([]byte, protocol.Code) bool { return false }

func FuzzParseClientMessage(f *testing.F) {
	expects := map[string]int{}
	for _, s := range seeds(f, "client") {
		f.Add(s.body)
		if m, err := protocol.ParseClientMessage(s.body); err == nil {
			expects[fmt.Sprintf("%T", m)]++
		}
		expects[s.h["expect"]]++
	}
	// The corpus must reach every message type and the version refusal.
	for _, k := range []string{"*protocol.BundleRequest", "*protocol.Upload", "*protocol.Resume", "*protocol.Commit", "malformed", "unsupported_version"} {
		if expects[k] == 0 {
			f.Fatalf("no seed vector in testdata/client is %s", k)
		}
	}
	fuzzMessages(f, protocol.ParseClientMessage, protocol.MaxClientMessage, otherVersion)
}

func FuzzParseServerMessage(f *testing.F) {
	for _, s := range seeds(f, "server") {
		f.Add(s.body)
	}
	fuzzMessages(f, protocol.ParseServerMessage, protocol.MaxServerMessage, onlyMalformed)
}

// Any proofs and epoch Marshal writes parse back to the same values when
// they are within range (at most MaxProofs proofs, epoch ≥ 0), and are
// refused as malformed otherwise; the pow member is exactly the nonces'
// bytes in unpadded base64url.
func FuzzUploadPoW(f *testing.F) {
	n := 0
	for _, s := range seeds(f, "client") {
		if m, err := protocol.ParseClientMessage(s.body); err == nil {
			if u, ok := m.(*protocol.Upload); ok {
				f.Add(proofBytes(u.PoW), u.PoWEpoch)
				n++
			}
		}
	}
	if n == 0 {
		f.Fatal("no upload vector in testdata/client")
	}
	f.Fuzz(func(t *testing.T, raw []byte, epoch int64) {
		raw = raw[:len(raw)/protocol.ProofSize*protocol.ProofSize]
		pow := make([]uint64, len(raw)/protocol.ProofSize)
		for i := range pow {
			pow[i] = binary.BigEndian.Uint64(raw[i*protocol.ProofSize:])
		}
		u := testUpload(32768, protocol.FrameSize, pow...)
		u.PoWEpoch = epoch
		b := protocol.Marshal(u)
		if want := `"pow":"` + base64.RawURLEncoding.EncodeToString(raw) + `"`; !bytes.Contains(b, []byte(want)) {
			t.Fatalf("Marshal(%d proofs) = %s, want it to carry %s", len(pow), b, want)
		}
		m, err := protocol.ParseClientMessage(b)
		if len(pow) > protocol.MaxProofs || epoch < 0 {
			if !protocol.IsError(err, protocol.CodeMalformed) {
				t.Fatalf("ParseClientMessage(upload of %d proofs, epoch %d) = %#v, %v; want a malformed error", len(pow), epoch, m, err)
			}
			return
		}
		if err != nil || !reflect.DeepEqual(m, u) {
			t.Fatalf("ParseClientMessage(Marshal(%d proofs, epoch %d)) = %#v, %v; want the same upload", len(pow), epoch, m, err)
		}
	})
}

func proofBytes(pow []uint64) []byte {
	b := make([]byte, 0, len(pow)*protocol.ProofSize)
	for _, n := range pow {
		b = binary.BigEndian.AppendUint64(b, n)
	}
	return b
}

// A frame ParseDataFrame accepts is exactly AppendDataFrame of its offset
// and chunk; a refusal is a *protocol.Error of code malformed,
// bad_frame_size or bad_checksum, the last carrying the frame's offset.
func FuzzParseDataFrame(f *testing.F) {
	for _, s := range seeds(f, "frame") {
		size, err := strconv.Atoi(s.h["frame_size"])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.body, uint16(size))
	}
	f.Fuzz(func(t *testing.T, b []byte, frameSize uint16) {
		fr, err := protocol.ParseDataFrame(b, int(frameSize))
		if err != nil {
			if fr != nil {
				t.Fatalf("a frame with error %v", err)
			}
			var e *protocol.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not a *protocol.Error", err)
			}
			switch e.Code {
			case protocol.CodeMalformed, protocol.CodeBadFrameSize:
			case protocol.CodeBadChecksum:
				if want := int64(binary.BigEndian.Uint64(b)); e.Offset != want {
					t.Fatalf("bad_checksum error offset %d, want the frame's %d", e.Offset, want)
				}
			default:
				t.Fatalf("error code %s, want malformed, bad_frame_size or bad_checksum", e.Code)
			}
			return
		}
		if len(fr.Chunk) != int(frameSize) || fr.Offset < 0 || fr.Offset > 1<<62 {
			t.Fatalf("frame at offset %d with %d bytes, frame size %d", fr.Offset, len(fr.Chunk), frameSize)
		}
		if again := protocol.AppendDataFrame(nil, fr.Offset, fr.Chunk); !bytes.Equal(again, b) {
			t.Fatalf("AppendDataFrame(%d, chunk) = %x, want the input %x", fr.Offset, again, b)
		}
	})
}
