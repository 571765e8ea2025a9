package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
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
// anything it refuses is a *protocol.Error of code malformed.
func fuzzMessages(f *testing.F, parse func([]byte) (any, error), limit int) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parse(b)
		if err != nil {
			var e *protocol.Error
			if !errors.As(err, &e) || e.Code != protocol.CodeMalformed {
				t.Fatalf("error %v is not a *protocol.Error of code malformed", err)
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

func FuzzParseClientMessage(f *testing.F) {
	for _, s := range seeds(f, "client") {
		f.Add(s.body)
	}
	fuzzMessages(f, protocol.ParseClientMessage, protocol.MaxClientMessage)
}

func FuzzParseServerMessage(f *testing.F) {
	for _, s := range seeds(f, "server") {
		f.Add(s.body)
	}
	fuzzMessages(f, protocol.ParseServerMessage, protocol.MaxServerMessage)
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
