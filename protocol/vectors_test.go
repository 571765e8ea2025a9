package protocol_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"fieldtip/protocol"
)

// The vectors under testdata/{client,server,frame}/<case> are the cases of
// clientTests, serverTests and frameTests, written by TestGenerateVectors:
//
//	go test ./protocol -run '^TestGenerateVectors$' -update
//
//go:generate go test -run ^TestGenerateVectors$ -update

var update = flag.Bool("update", false, "rewrite testdata/ from the test tables")

// maxVectorSize keeps the largest cases (the message size limits, the
// largest bundle, 16 KiB frames) out of testdata; the tables still run
// them. It admits the upload messages of MaxProofs and MaxProofs+1 proofs.
const maxVectorSize = 12000

// A vector file is a header of "key: value" lines, a blank line and the
// message bytes:
//
//	expect: ok | <error code>   (malformed, unsupported_version,
//	                              bad_frame_size, bad_checksum)
//	frame_size: <n>      (frames only)
//	offset: <n>          (frames that parse, and bad_checksum)
//	comment: <what the case breaks>
//
//	<message>
type vector struct {
	dir, name string
	file      []byte
}

func vectorFile(expect string, headers []string, comment string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "expect: %s\n", expect)
	for _, h := range headers {
		fmt.Fprintf(&b, "%s\n", h)
	}
	fmt.Fprintf(&b, "comment: %s\n\n", comment)
	b.Write(body)
	return b.Bytes()
}

func allVectors() []vector {
	var vs []vector
	for _, d := range []struct {
		dir   string
		tests []messageTest
	}{{"client", clientTests}, {"server", serverTests}} {
		for _, tt := range d.tests {
			expect := "ok"
			if code := tt.code(); code != "" {
				expect = string(code)
			}
			if len(tt.in) <= maxVectorSize {
				vs = append(vs, vector{d.dir, tt.name, vectorFile(expect, nil, tt.comment, []byte(tt.in))})
			}
		}
	}
	for _, tt := range frameTests() {
		expect := "ok"
		if tt.code != "" {
			expect = string(tt.code)
		}
		headers := []string{fmt.Sprintf("frame_size: %d", tt.frameSize)}
		if tt.code == "" || tt.code == protocol.CodeBadChecksum {
			headers = append(headers, fmt.Sprintf("offset: %d", tt.offset))
		}
		if len(tt.in) <= maxVectorSize {
			vs = append(vs, vector{"frame", tt.name, vectorFile(expect, headers, tt.comment, tt.in)})
		}
	}
	return vs
}

// parseVector splits a vector file into its header and its message.
func parseVector(file []byte) (map[string]string, []byte, error) {
	head, body, ok := bytes.Cut(file, []byte("\n\n"))
	if !ok {
		return nil, nil, errors.New("no blank line after the header")
	}
	h := map[string]string{}
	for _, line := range strings.Split(string(head), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, nil, fmt.Errorf("header line %q is not \"key: value\"", line)
		}
		h[k] = v
	}
	if h["expect"] == "" {
		return nil, nil, errors.New("no expect line")
	}
	return h, body, nil
}

func TestGenerateVectors(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/")
	}
	for _, dir := range []string{"client", "server", "frame"} {
		if err := os.RemoveAll(filepath.Join("testdata", dir)); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join("testdata", dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range allVectors() {
		if err := os.WriteFile(filepath.Join("testdata", v.dir, v.name), v.file, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVectorsUpToDate checks that testdata/ is what the tables generate.
func TestVectorsUpToDate(t *testing.T) {
	want := map[string]bool{}
	for _, v := range allVectors() {
		file := filepath.Join("testdata", v.dir, v.name)
		want[file] = true
		got, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%v (run go generate ./protocol)", err)
			continue
		}
		if !bytes.Equal(got, v.file) {
			t.Errorf("%s differs from its table case (run go generate ./protocol)", file)
		}
	}
	for _, dir := range []string{"client", "server", "frame"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"))
		for _, f := range files {
			if !want[f] {
				t.Errorf("%s is no table case (run go generate ./protocol)", f)
			}
		}
	}
}

// TestVectors checks every vector file on its own, as another
// implementation would: its outcome, and for messages that parse, that
// Marshal gives a message that parses to the same value.
func TestVectors(t *testing.T) {
	for _, dir := range []string{"client", "server", "frame"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("no vectors in testdata/%s", dir)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			h, body, err := parseVector(b)
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			if err := runVector(dir, h, body); err != nil {
				t.Errorf("%s: %v", file, err)
			}
		}
	}
}

func runVector(dir string, h map[string]string, body []byte) error {
	var code protocol.Code
	var offset int64
	var err error
	switch dir {
	case "client", "server":
		parse := protocol.ParseClientMessage
		if dir == "server" {
			parse = protocol.ParseServerMessage
		}
		var m any
		m, err = parse(body)
		if err == nil {
			if again, err := parse(protocol.Marshal(m)); err != nil || !reflect.DeepEqual(again, m) {
				return fmt.Errorf("Marshal(%#v) parses to %#v, %v", m, again, err)
			}
		}
	case "frame":
		size, perr := strconv.Atoi(h["frame_size"])
		if perr != nil {
			return fmt.Errorf("frame_size: %v", perr)
		}
		var f *protocol.DataFrame
		f, err = protocol.ParseDataFrame(body, size)
		if err == nil {
			offset = f.Offset
		}
	}
	var e *protocol.Error
	if errors.As(err, &e) {
		code, offset = e.Code, e.Offset
	} else if err != nil {
		return fmt.Errorf("error %v is not a *protocol.Error", err)
	}
	got := "ok"
	if code != "" {
		got = string(code)
	}
	if got != h["expect"] {
		return fmt.Errorf("outcome %s (%v), want %s", got, err, h["expect"])
	}
	if want, ok := h["offset"]; ok && strconv.FormatInt(offset, 10) != want {
		return fmt.Errorf("offset %d, want %s", offset, want)
	}
	return nil
}
