package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"fieldtip/protocol"
)

// Values of the test messages, also used by the worked example
// (example_test.go): an upload id of bytes 0x00…0x0f and the SHA-256 of a
// resume secret of bytes 0x10…0x2f.
const (
	testUploadID   = "AAECAwQFBgcICQoLDA0ODw"
	testResumeHash = "icdGBFLt3_EZ_qBBnnhcdN4v-xOdvnQyOspKAeGYpdw"
	// testSHA256 is SHA-256("x").
	testSHA256 = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
)

var (
	testUploadIDBytes   = protocol.UploadID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	testResumeHashBytes = [32]byte{0x89, 0xc7, 0x46, 0x04, 0x52, 0xed, 0xdf, 0xf1, 0x19, 0xfe, 0xa0, 0x41, 0x9e, 0x78, 0x5c, 0x74, 0xde, 0x2f, 0xfb, 0x13, 0x9d, 0xbe, 0x74, 0x32, 0x3a, 0xca, 0x4a, 0x01, 0xe1, 0x98, 0xa5, 0xdc}
	testSHA256Bytes     = [32]byte{0x2d, 0x71, 0x16, 0x42, 0xb7, 0x26, 0xb0, 0x44, 0x01, 0x62, 0x7c, 0xa9, 0xfb, 0xac, 0x32, 0xf5, 0xc8, 0x53, 0x0f, 0xb1, 0x90, 0x3c, 0xc4, 0xdb, 0x02, 0x25, 0x87, 0x17, 0x92, 0x1a, 0x48, 0x81}
)

// uploadJSON is a well-formed upload message; the malformed cases below
// change one thing in it.
const uploadJSON = `{"type":"upload","version":1,"bundle_version":3,"upload_id":"` + testUploadID +
	`","resume_hash":"` + testResumeHash + `","length":32768,"frame_size":16384}`

// with returns uploadJSON with old replaced by new, which must occur once.
func with(s, old, new string) string {
	if strings.Count(s, old) != 1 {
		panic(fmt.Sprintf("%q occurs %d times in %q", old, strings.Count(s, old), s))
	}
	return strings.Replace(s, old, new, 1)
}

// without returns s with the JSON member ,"key":value removed.
func without(s, member string) string { return with(s, ","+member, "") }

// messageTest is one case of a control-message parser: want is the parsed
// message, or nil when the input must be refused as malformed. Every case is
// also a vector under testdata/client or testdata/server (vectors_test.go),
// unless it is larger than maxVectorSize.
type messageTest struct {
	name    string
	in      string
	want    any
	comment string
}

var clientTests = []messageTest{
	{"bundle_request", `{"type":"bundle","version":1}`, &protocol.BundleRequest{Version: 1}, "the first message of a client that needs the bundle"},
	{"bundle_request_future_version", `{"type":"bundle","version":2}`, &protocol.BundleRequest{Version: 2}, "well-formed: the server, not the parser, refuses an unknown version"},
	{"bundle_request_whitespace", " {\"type\" : \"bundle\",\n\t\"version\" : 1 } ", &protocol.BundleRequest{Version: 1}, "JSON whitespace between tokens does not change the message"},
	{"bundle_request_escaped_type", `{"type":"\u0062undle","version":1}`, &protocol.BundleRequest{Version: 1}, "a JSON string escape does not change the value"},
	{"upload", uploadJSON, &protocol.Upload{Version: 1, BundleVersion: 3, UploadID: testUploadIDBytes, ResumeHash: testResumeHashBytes, Length: 32768, FrameSize: protocol.FrameSize}, "two 16 KiB frames"},
	{"upload_low_bandwidth", with(with(uploadJSON, `"frame_size":16384`, `"frame_size":8192`), `"length":32768`, `"length":24576`), &protocol.Upload{Version: 1, BundleVersion: 3, UploadID: testUploadIDBytes, ResumeHash: testResumeHashBytes, Length: 24576, FrameSize: protocol.LowBandwidthFrameSz}, "three 8 KiB frames"},
	{"upload_one_frame", with(uploadJSON, `"length":32768`, `"length":16384`), &protocol.Upload{Version: 1, BundleVersion: 3, UploadID: testUploadIDBytes, ResumeHash: testResumeHashBytes, Length: 16384, FrameSize: protocol.FrameSize}, "the smallest upload"},
	{"upload_members_reordered", `{"frame_size":16384,"length":32768,"resume_hash":"` + testResumeHash + `","upload_id":"` + testUploadID + `","bundle_version":3,"version":1,"type":"upload"}`, &protocol.Upload{Version: 1, BundleVersion: 3, UploadID: testUploadIDBytes, ResumeHash: testResumeHashBytes, Length: 32768, FrameSize: protocol.FrameSize}, "members may come in any order"},
	{"commit", `{"type":"commit","sha256":"` + testSHA256 + `"}`, &protocol.Commit{SHA256: testSHA256Bytes}, "SHA-256 of the whole ciphertext, lowercase hex"},

	{"empty", ``, nil, "no JSON value"},
	{"not_json", `hello`, nil, "not JSON"},
	{"json_null", `null`, nil, "not an object"},
	{"json_array", `[{"type":"bundle","version":1}]`, nil, "not an object"},
	{"json_string", `"bundle"`, nil, "not an object"},
	{"truncated", `{"type":"bundle","version":1`, nil, "unterminated object"},
	{"missing_type", `{"version":1}`, nil, "no type"},
	{"unknown_type", `{"type":"hello","version":1}`, nil, "unknown type"},
	{"type_wrong_case", `{"type":"Bundle","version":1}`, nil, "type values are case-sensitive"},
	{"type_null", `{"type":null,"version":1}`, nil, "no type"},
	{"server_type", `{"type":"offset","offset":0}`, nil, "a server message is not a client message"},
	{"key_wrong_case", `{"type":"bundle","Version":1}`, nil, "keys are case-sensitive (encoding/json alone would match Version)"},
	{"type_key_wrong_case", `{"TYPE":"bundle","version":1}`, nil, "keys are case-sensitive"},
	{"key_repeated", `{"type":"bundle","version":1,"version":1}`, nil, "a repeated key, even with the same value"},
	{"type_repeated", `{"type":"commit","type":"bundle","version":1}`, nil, "a repeated type (encoding/json alone would keep the last)"},
	{"unknown_field", `{"type":"bundle","version":1,"extra":true}`, nil, "a field no message has"},
	{"field_of_other_type", `{"type":"bundle","version":1,"offset":0}`, nil, "a field that is not the type's"},
	{"upload_with_sha256", with(uploadJSON, `"frame_size":16384`, `"frame_size":16384,"sha256":"`+testSHA256+`"`), nil, "a commit field in an upload"},
	{"commit_with_length", `{"type":"commit","sha256":"` + testSHA256 + `","length":16384}`, nil, "an upload field in a commit"},
	{"trailing_object", `{"type":"bundle","version":1}{}`, nil, "a second JSON value"},
	{"trailing_garbage", `{"type":"bundle","version":1}x`, nil, "trailing bytes"},
	{"trailing_brace", `{"type":"bundle","version":1}}`, nil, "a stray closing brace"},
	{"trailing_bracket", `{"type":"bundle","version":1}]`, nil, "a stray closing bracket"},
	{"missing_version", `{"type":"bundle"}`, nil, "bundle request without version"},
	{"version_null", `{"type":"bundle","version":null}`, nil, "null is not a number"},
	{"version_zero", `{"type":"bundle","version":0}`, nil, "versions start at 1"},
	{"version_negative", `{"type":"bundle","version":-1}`, nil, "negative version"},
	{"version_fraction", `{"type":"bundle","version":1.0}`, nil, "integers have no fraction"},
	{"version_exponent", `{"type":"bundle","version":1e0}`, nil, "integers have no exponent"},
	{"version_string", `{"type":"bundle","version":"1"}`, nil, "a string is not a number"},
	{"version_leading_zero", `{"type":"bundle","version":01}`, nil, "not JSON"},
	{"version_plus", `{"type":"bundle","version":+1}`, nil, "not JSON"},
	{"version_overflow", `{"type":"bundle","version":9223372036854775808}`, nil, "past int64"},
	{"upload_missing_version", without(uploadJSON, `"version":1`), nil, "upload without version"},
	{"upload_missing_bundle_version", without(uploadJSON, `"bundle_version":3`), nil, "upload without bundle_version"},
	{"upload_missing_upload_id", without(uploadJSON, `"upload_id":"`+testUploadID+`"`), nil, "upload without upload_id"},
	{"upload_missing_resume_hash", without(uploadJSON, `"resume_hash":"`+testResumeHash+`"`), nil, "upload without resume_hash"},
	{"upload_missing_length", without(uploadJSON, `"length":32768`), nil, "upload without length"},
	{"upload_missing_frame_size", without(uploadJSON, `"frame_size":16384`), nil, "upload without frame_size"},
	{"upload_version_zero", with(uploadJSON, `"version":1`, `"version":0`), nil, "versions start at 1"},
	{"upload_bundle_version_zero", with(uploadJSON, `"bundle_version":3`, `"bundle_version":0`), nil, "bundle versions start at 1"},
	{"upload_bundle_version_negative", with(uploadJSON, `"bundle_version":3`, `"bundle_version":-3`), nil, "negative bundle version"},
	{"upload_id_padded", with(uploadJSON, testUploadID, testUploadID+"=="), nil, "base64url without padding"},
	{"resume_hash_std_alphabet", with(uploadJSON, testResumeHash, strings.NewReplacer("_", "/", "-", "+").Replace(testResumeHash)), nil, "the URL alphabet, not the standard one"},
	{"upload_id_short", with(uploadJSON, testUploadID, testUploadID[:20]), nil, "15 bytes"},
	{"upload_id_long", with(uploadJSON, testUploadID, testUploadID+"AA"), nil, "17 bytes"},
	{"upload_id_padding_bits", with(uploadJSON, testUploadID, testUploadID[:21]+"x"), nil, "nonzero unused bits in the last character: a second spelling of an id"},
	{"upload_id_newline", with(uploadJSON, testUploadID, testUploadID+`\n`), nil, "a newline after the id (Go's base64 decoder alone skips it)"},
	{"resume_hash_crlf", with(uploadJSON, testResumeHash, testResumeHash[:20]+`\r\n`+testResumeHash[20:]), nil, "CR LF inside the hash (Go's base64 decoder alone skips them)"},
	{"upload_id_hex", with(uploadJSON, testUploadID, "000102030405060708090a0b0c0d0e0f"), nil, "hex is not base64url"},
	{"upload_id_number", with(uploadJSON, `"`+testUploadID+`"`, `0`), nil, "a number is not a string"},
	{"resume_hash_hex", with(uploadJSON, testResumeHash, testSHA256), nil, "hex is not base64url"},
	{"resume_hash_short", with(uploadJSON, testResumeHash, testResumeHash[:40]), nil, "30 bytes"},
	{"length_zero", with(uploadJSON, `"length":32768`, `"length":0`), nil, "empty upload"},
	{"length_negative", with(uploadJSON, `"length":32768`, `"length":-16384`), nil, "negative length"},
	{"length_frame_minus_one", with(uploadJSON, `"length":32768`, `"length":16383`), nil, "not a multiple of the frame size"},
	{"length_frame_plus_one", with(uploadJSON, `"length":32768`, `"length":16385`), nil, "not a multiple of the frame size"},
	{"length_low_bandwidth_multiple", with(uploadJSON, `"length":32768`, `"length":8192`), nil, "a multiple of 8 KiB but not of the declared 16 KiB frame"},
	{"length_fraction", with(uploadJSON, `"length":32768`, `"length":32768.0`), nil, "integers have no fraction"},
	{"length_overflow", with(uploadJSON, `"length":32768`, `"length":18446744073709551616`), nil, "past int64"},
	{"frame_size_other", with(uploadJSON, `"frame_size":16384`, `"frame_size":4096`), nil, "only 16 KiB and 8 KiB frames"},
	{"frame_size_zero", with(uploadJSON, `"frame_size":16384`, `"frame_size":0`), nil, "only 16 KiB and 8 KiB frames"},
	{"frame_size_negative", with(uploadJSON, `"frame_size":16384`, `"frame_size":-16384`), nil, "only 16 KiB and 8 KiB frames"},
	{"commit_missing_sha256", `{"type":"commit"}`, nil, "commit without hash"},
	{"commit_uppercase_hex", `{"type":"commit","sha256":"` + strings.ToUpper(testSHA256) + `"}`, nil, "lowercase hex only"},
	{"commit_short", `{"type":"commit","sha256":"` + testSHA256[:62] + `"}`, nil, "31 bytes"},
	{"commit_odd_length", `{"type":"commit","sha256":"` + testSHA256[:63] + `"}`, nil, "63 hex digits"},
	{"commit_long", `{"type":"commit","sha256":"` + testSHA256 + `00"}`, nil, "33 bytes"},
	{"commit_not_hex", `{"type":"commit","sha256":"` + testSHA256[:63] + `g"}`, nil, "not a hex digit"},
	{"commit_base64url", `{"type":"commit","sha256":"LXEWQrcmsEQBYnyp-6wy9chTD7GQPMTbAiWHF5IaSIE"}`, nil, "the hash is hex, not base64url"},
	{"size_max", padTo(`{"type":"bundle","version":1}`, protocol.MaxClientMessage), &protocol.BundleRequest{Version: 1}, "exactly MaxClientMessage bytes"},
	{"size_max_plus_one", padTo(`{"type":"bundle","version":1}`, protocol.MaxClientMessage+1), nil, "one byte past MaxClientMessage"},
}

// padTo pads a JSON message with trailing spaces to n bytes.
func padTo(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }

var testNote = "fieldtip/receipt/v1\ntip AAECAwQFBgcICQoLDA0ODw\n\n— log.example +abcdef==\n"

var serverTests = []messageTest{
	{"bundle_reply", `{"type":"bundle","bundle":"fieldtip/bundle/v1\nversion 3\n\n— newsroom.example AAAA\n"}`, &protocol.BundleReply{Bundle: []byte("fieldtip/bundle/v1\nversion 3\n\n— newsroom.example AAAA\n")}, "the bundle is opaque here: crypto.OpenBundle checks it"},
	{"bundle_reply_escaped", `{"type":"bundle","bundle":"a\u2014\n\"b\""}`, &protocol.BundleReply{Bundle: []byte("a—\n\"b\"")}, "JSON escapes in the bundle string"},
	{"bundle_reply_empty", `{"type":"bundle","bundle":""}`, &protocol.BundleReply{Bundle: []byte{}}, "well-formed; crypto.OpenBundle refuses it"},
	{"offset_zero", `{"type":"offset","offset":0}`, &protocol.Offset{Offset: 0}, "a new upload"},
	{"offset", `{"type":"offset","offset":49152}`, &protocol.Offset{Offset: 49152}, "a resumed upload"},
	{"ack", `{"type":"ack","offset":16384}`, &protocol.Ack{Offset: 16384}, "one frame stored"},
	{"ack_max", `{"type":"ack","offset":9223372036854775807}`, &protocol.Ack{Offset: 1<<63 - 1}, "the largest offset JSON can carry here"},
	{"receipt_reply", `{"type":"receipt","receipt":` + quote(testNote) + `}`, &protocol.ReceiptReply{Receipt: []byte(testNote)}, "the receipt is opaque here: crypto.OpenReceipt checks it"},
	{"receipt_max", `{"type":"receipt","receipt":"` + strings.Repeat("r", protocol.MaxReceiptSize) + `"}`, &protocol.ReceiptReply{Receipt: bytes.Repeat([]byte("r"), protocol.MaxReceiptSize)}, "MaxReceiptSize bytes"},
	{"error_busy", `{"type":"error","code":"busy","message":"the server is busy"}`, &protocol.Error{Code: protocol.CodeBusy, Message: "the server is busy"}, "an error is a message, not a parse failure"},
	{"error_empty_message", `{"type":"error","code":"internal","message":""}`, &protocol.Error{Code: protocol.CodeInternal}, "the text may be empty"},
	{"error_conflict", `{"type":"error","code":"conflict","message":"resume at 16384","offset":16384}`, &protocol.Error{Code: protocol.CodeConflict, Message: "resume at 16384", Offset: 16384}, "conflict carries the server's offset"},
	{"error_bad_checksum", `{"type":"error","code":"bad_checksum","message":"checksum","offset":0}`, &protocol.Error{Code: protocol.CodeBadChecksum, Message: "checksum"}, "bad_checksum carries the server's offset"},
	{"error_message_max", `{"type":"error","code":"busy","message":"` + strings.Repeat("m", protocol.MaxMessageLength) + `"}`, &protocol.Error{Code: protocol.CodeBusy, Message: strings.Repeat("m", protocol.MaxMessageLength)}, "MaxMessageLength bytes of text"},

	{"client_type", `{"type":"commit","sha256":"` + testSHA256 + `"}`, nil, "a client message is not a server message"},
	{"bundle_request_as_reply", `{"type":"bundle","version":1}`, nil, "the client's bundle request has no bundle"},
	{"bundle_reply_with_version", `{"type":"bundle","bundle":"b","version":1}`, nil, "a field of the request in the reply"},
	{"bundle_reply_null", `{"type":"bundle","bundle":null}`, nil, "null is not a string"},
	{"bundle_reply_bytes", `{"type":"bundle","bundle":[1,2]}`, nil, "the bundle is a string"},
	{"offset_missing", `{"type":"offset"}`, nil, "offset without offset"},
	{"offset_negative", `{"type":"offset","offset":-1}`, nil, "negative offset"},
	{"ack_negative", `{"type":"ack","offset":-16384}`, nil, "negative offset"},
	{"ack_fraction", `{"type":"ack","offset":16384.5}`, nil, "integers have no fraction"},
	{"ack_string", `{"type":"ack","offset":"16384"}`, nil, "a string is not a number"},
	{"ack_overflow", `{"type":"ack","offset":9223372036854775808}`, nil, "past int64"},
	{"ack_with_code", `{"type":"ack","offset":0,"code":"busy"}`, nil, "an error field in an ack"},
	{"key_wrong_case", `{"type":"ack","Offset":16384}`, nil, "keys are case-sensitive"},
	{"key_repeated", `{"type":"ack","offset":16384,"offset":32768}`, nil, "a repeated key (encoding/json alone would keep the last)"},
	{"receipt_too_large", `{"type":"receipt","receipt":"` + strings.Repeat("r", protocol.MaxReceiptSize+1) + `"}`, nil, "one byte past MaxReceiptSize"},
	{"error_unknown_code", `{"type":"error","code":"teapot","message":"no"}`, nil, "a client treats an unknown code as a malformed message"},
	{"error_code_wrong_case", `{"type":"error","code":"Busy","message":"no"}`, nil, "codes are case-sensitive"},
	{"error_without_code", `{"type":"error","message":"no"}`, nil, "an error needs a code"},
	{"error_without_message", `{"type":"error","code":"busy"}`, nil, "an error needs a text, even empty"},
	{"error_conflict_without_offset", `{"type":"error","code":"conflict","message":"no"}`, nil, "conflict must carry the server's offset"},
	{"error_bad_checksum_without_offset", `{"type":"error","code":"bad_checksum","message":"no"}`, nil, "bad_checksum must carry the server's offset"},
	{"error_busy_with_offset", `{"type":"error","code":"busy","message":"no","offset":0}`, nil, "only conflict and bad_checksum carry an offset"},
	{"error_conflict_negative_offset", `{"type":"error","code":"conflict","message":"no","offset":-1}`, nil, "negative offset"},
	{"error_message_too_long", `{"type":"error","code":"busy","message":"` + strings.Repeat("m", protocol.MaxMessageLength+1) + `"}`, nil, "one byte past MaxMessageLength"},
	{"error_message_number", `{"type":"error","code":"busy","message":1}`, nil, "the text is a string"},
	{"trailing_data", `{"type":"ack","offset":0} {}`, nil, "a second JSON value"},
	{"bundle_max", `{"type":"bundle","bundle":"` + strings.Repeat("b", protocol.MaxBundleSize) + `"}`, &protocol.BundleReply{Bundle: bytes.Repeat([]byte("b"), protocol.MaxBundleSize)}, "MaxBundleSize bytes"},
	{"bundle_too_large", `{"type":"bundle","bundle":"` + strings.Repeat("b", protocol.MaxBundleSize+1) + `"}`, nil, "one byte past MaxBundleSize"},
	{"bundle_max_escaped", `{"type":"bundle","bundle":"` + strings.Repeat(`\u0062`, protocol.MaxBundleSize) + `"}`, &protocol.BundleReply{Bundle: bytes.Repeat([]byte("b"), protocol.MaxBundleSize)}, "every byte escaped still fits MaxServerMessage"},
	{"size_max_plus_one", padTo(`{"type":"ack","offset":0}`, protocol.MaxServerMessage+1), nil, "one byte past MaxServerMessage"},
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\n':
			b.WriteString(`\n`)
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// checkMalformed reports whether err is a *protocol.Error of code
// CodeMalformed, both through errors.As and errors.Is.
func checkMalformed(t *testing.T, call string, err error) {
	t.Helper()
	var e *protocol.Error
	if !errors.As(err, &e) || e.Code != protocol.CodeMalformed {
		t.Errorf("%s error = %v, want a *protocol.Error of code %s", call, err, protocol.CodeMalformed)
		return
	}
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeMalformed}) || !protocol.IsError(err, protocol.CodeMalformed) {
		t.Errorf("errors.Is(%s error, malformed) = false, want true", call)
	}
}

func runMessageTests(t *testing.T, fn string, parse func([]byte) (any, error), tests []messageTest) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse([]byte(tt.in))
			call := fmt.Sprintf("%s(%s)", fn, clipped(tt.in))
			if tt.want == nil {
				if err == nil {
					t.Fatalf("%s = %#v, want a malformed error", call, got)
				}
				if got != nil {
					t.Errorf("%s returned %#v with its error, want nil", call, got)
				}
				checkMalformed(t, call, err)
				return
			}
			if err != nil {
				t.Fatalf("%s error = %v, want %#v", call, err, tt.want)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", call, got, tt.want)
			}
		})
	}
}

func clipped(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q…(%d bytes)", s[:80], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func TestParseClientMessage(t *testing.T) {
	runMessageTests(t, "ParseClientMessage", protocol.ParseClientMessage, clientTests)
}

func TestParseServerMessage(t *testing.T) {
	runMessageTests(t, "ParseServerMessage", protocol.ParseServerMessage, serverTests)
}

// allCodes are the error codes of errors.go when this test was written.
var allCodes = []protocol.Code{
	protocol.CodeMalformed, protocol.CodeUnsupportedVersion, protocol.CodeUnexpected,
	protocol.CodeTooLarge, protocol.CodeBadFrameSize, protocol.CodeConflict,
	protocol.CodeBadChecksum, protocol.CodeBadHash, protocol.CodeBadCiphertext,
	protocol.CodeStaleBundle, protocol.CodeBusy, protocol.CodeTooManyUploads,
	protocol.CodeShuttingDown, protocol.CodeInternal,
}

func TestRoundTrip(t *testing.T) {
	client := []any{
		&protocol.BundleRequest{Version: protocol.Version},
		&protocol.Upload{Version: protocol.Version, BundleVersion: 1, UploadID: testUploadIDBytes, ResumeHash: testResumeHashBytes, Length: protocol.FrameSize, FrameSize: protocol.FrameSize},
		&protocol.Upload{Version: protocol.Version, BundleVersion: 1 << 53, UploadID: protocol.UploadID{0xff, 0xfe}, ResumeHash: [32]byte{31: 0xff}, Length: 4096 * protocol.LowBandwidthFrameSz, FrameSize: protocol.LowBandwidthFrameSz},
		&protocol.Commit{SHA256: testSHA256Bytes},
		&protocol.Commit{},
	}
	server := []any{
		&protocol.BundleReply{Bundle: []byte("fieldtip/bundle/v1\n<>&\u2028\"\\\x00\x1f\n\n— k AAAA\n")},
		&protocol.BundleReply{Bundle: []byte{}},
		&protocol.Offset{Offset: 0},
		&protocol.Offset{Offset: 1 << 40},
		&protocol.Ack{Offset: 16384},
		&protocol.ReceiptReply{Receipt: []byte(testNote)},
	}
	for _, c := range allCodes {
		e := &protocol.Error{Code: c, Message: "text for " + string(c)}
		if c == protocol.CodeConflict || c == protocol.CodeBadChecksum {
			e.Offset = 3 * protocol.FrameSize
		}
		server = append(server, e)
	}
	check := func(fn string, parse func([]byte) (any, error), msg any) {
		b := protocol.Marshal(msg)
		got, err := parse(b)
		if err != nil {
			t.Errorf("%s(Marshal(%#v)) error = %v", fn, msg, err)
			return
		}
		if !reflect.DeepEqual(got, msg) {
			t.Errorf("%s(Marshal(%#v)) = %#v, want the same", fn, msg, got)
		}
		// A message parses only on its own side.
		other, otherFn := protocol.ParseServerMessage, "ParseServerMessage"
		if fn == otherFn {
			other, otherFn = protocol.ParseClientMessage, "ParseClientMessage"
		}
		if m, err := other(b); err == nil {
			t.Errorf("%s(%s) = %#v, want a malformed error", otherFn, b, m)
		}
	}
	for _, m := range client {
		check("ParseClientMessage", protocol.ParseClientMessage, m)
	}
	for _, m := range server {
		check("ParseServerMessage", protocol.ParseServerMessage, m)
	}
}

// An offset on an error whose code carries none is not sent.
func TestMarshalErrorOffset(t *testing.T) {
	b := protocol.Marshal(&protocol.Error{Code: protocol.CodeBusy, Message: "busy", Offset: 7})
	if want := `{"type":"error","code":"busy","message":"busy"}`; string(b) != want {
		t.Errorf("Marshal(busy with offset 7) = %s, want %s", b, want)
	}
	b = protocol.Marshal(&protocol.Error{Code: protocol.CodeConflict, Message: "c"})
	if want := `{"type":"error","offset":0,"code":"conflict","message":"c"}`; string(b) != want {
		t.Errorf("Marshal(conflict at 0) = %s, want %s", b, want)
	}
}

func TestMarshalPanicsOnForeignType(t *testing.T) {
	for _, v := range []any{nil, "bundle", protocol.BundleRequest{Version: 1}, &protocol.DataFrame{}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Marshal(%#v) did not panic", v)
				}
			}()
			protocol.Marshal(v)
		}()
	}
}

func TestErrorIs(t *testing.T) {
	err := fmt.Errorf("upload: %w", protocol.Errorf(protocol.CodeConflict, "at %d", 5))
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeConflict}) {
		t.Errorf("errors.Is(%v, conflict) = false, want true", err)
	}
	if errors.Is(err, &protocol.Error{Code: protocol.CodeBusy}) {
		t.Errorf("errors.Is(%v, busy) = true, want false", err)
	}
	if !protocol.IsError(err, protocol.CodeConflict) || protocol.IsError(err, protocol.CodeBusy) || protocol.IsError(errors.New("x"), protocol.CodeBusy) {
		t.Errorf("IsError(%v, …) answers wrongly", err)
	}
}

func TestUploadIDString(t *testing.T) {
	if got := testUploadIDBytes.String(); got != testUploadID {
		t.Errorf("UploadID(%x).String() = %q, want %q", testUploadIDBytes[:], got, testUploadID)
	}
}

// frame returns a data frame at offset carrying n bytes of pattern.
func frame(offset int64, n int) []byte {
	chunk := make([]byte, n)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	return protocol.AppendDataFrame(nil, offset, chunk)
}

// frameTest is one case of ParseDataFrame; the code is "" when the frame
// parses. Each case is also a vector under testdata/frame.
type frameTest struct {
	name      string
	in        []byte
	frameSize int
	code      protocol.Code
	offset    int64 // the parsed offset, or the one a bad_checksum error carries
	comment   string
}

func frameTests() []frameTest {
	var tests []frameTest
	for _, fs := range []int{protocol.LowBandwidthFrameSz, protocol.FrameSize} {
		k := fs >> 10
		tests = append(tests,
			frameTest{fmt.Sprintf("chunk_%dk", k), frame(int64(3*fs), fs), fs, "", int64(3 * fs), "a whole frame at the fourth frame's offset"},
			frameTest{fmt.Sprintf("chunk_%dk_minus_one", k), frame(0, fs-1), fs, protocol.CodeBadFrameSize, 0, "one byte short"},
			frameTest{fmt.Sprintf("chunk_%dk_plus_one", k), frame(0, fs+1), fs, protocol.CodeBadFrameSize, 0, "one byte long"},
		)
	}
	bad := frame(16384, protocol.LowBandwidthFrameSz)
	bad[protocol.FrameHeaderSize+100] ^= 1
	badCRC := frame(8192, protocol.LowBandwidthFrameSz)
	badCRC[11] ^= 0x80
	short := frame(0, 100)
	tests = append(tests,
		frameTest{"bad_checksum_chunk", bad, protocol.LowBandwidthFrameSz, protocol.CodeBadChecksum, 16384, "one chunk bit flipped: the error carries the frame's offset"},
		frameTest{"bad_checksum_crc", badCRC, protocol.LowBandwidthFrameSz, protocol.CodeBadChecksum, 8192, "one checksum bit flipped"},
		frameTest{"bad_checksum_last_byte", append(frame(0, 100)[:protocol.FrameHeaderSize+99:protocol.FrameHeaderSize+99], 0xff), 100, protocol.CodeBadChecksum, 0, "the chunk's last byte changed"},
		frameTest{"bad_size_and_checksum", append(frame(0, 100)[:protocol.FrameHeaderSize+99:protocol.FrameHeaderSize+99], 0xff), 99, protocol.CodeBadFrameSize, 0, "the size is checked before the checksum"},
		frameTest{"small_frame", short, 100, "", 0, "ParseDataFrame takes any frame size; the protocol uses two"},
		frameTest{"small_frame_wrong_size", short, 99, protocol.CodeBadFrameSize, 0, "size is checked before the checksum"},
		frameTest{"empty", nil, protocol.FrameSize, protocol.CodeMalformed, 0, "no header"},
		frameTest{"header_minus_one", make([]byte, protocol.FrameHeaderSize-1), 0, protocol.CodeMalformed, 0, "11 bytes: shorter than the header"},
		frameTest{"header_only", protocol.AppendDataFrame(nil, 0, nil), 0, "", 0, "an empty chunk parses when the frame size is 0"},
		frameTest{"header_only_frame_size", protocol.AppendDataFrame(nil, 0, nil), protocol.FrameSize, protocol.CodeBadFrameSize, 0, "an empty chunk"},
		frameTest{"offset_max", frame(1<<62, 16), 16, "", 1 << 62, "the largest offset"},
		frameTest{"offset_max_plus_one", frame(1<<62+1, 16), 16, protocol.CodeMalformed, 0, "past the largest offset"},
		frameTest{"offset_negative", frame(-16, 16), 16, protocol.CodeMalformed, 0, "the top bit set: negative as int64"},
	)
	return tests
}

func TestParseDataFrame(t *testing.T) {
	for _, tt := range frameTests() {
		t.Run(tt.name, func(t *testing.T) {
			f, err := protocol.ParseDataFrame(tt.in, tt.frameSize)
			call := fmt.Sprintf("ParseDataFrame(%d bytes, %d)", len(tt.in), tt.frameSize)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("%s error = %v, want a frame", call, err)
				}
				if f.Offset != tt.offset || len(f.Chunk) != tt.frameSize {
					t.Errorf("%s = offset %d, %d bytes, want offset %d, %d bytes", call, f.Offset, len(f.Chunk), tt.offset, tt.frameSize)
				}
				if !bytes.Equal(f.Chunk, tt.in[protocol.FrameHeaderSize:]) {
					t.Errorf("%s chunk differs from the frame's bytes", call)
				}
				if tt.frameSize > 0 && &f.Chunk[0] != &tt.in[protocol.FrameHeaderSize] {
					t.Errorf("%s chunk does not alias its input", call)
				}
				return
			}
			if f != nil {
				t.Errorf("%s returned a frame with its error", call)
			}
			var e *protocol.Error
			if !errors.As(err, &e) || e.Code != tt.code {
				t.Fatalf("%s error = %v, want a *protocol.Error of code %s", call, err, tt.code)
			}
			if e.Offset != tt.offset {
				t.Errorf("%s error offset = %d, want %d", call, e.Offset, tt.offset)
			}
		})
	}
}

func TestAppendDataFrame(t *testing.T) {
	prefix := []byte("keep")
	b := protocol.AppendDataFrame(prefix, 0x0102030405060708, []byte("123456789"))
	// CRC-32C("123456789") is the check value e3069283 (RFC 3720, B.4).
	want := []byte("keep\x01\x02\x03\x04\x05\x06\x07\x08\xe3\x06\x92\x83123456789")
	if !bytes.Equal(b, want) {
		t.Errorf("AppendDataFrame(%q, 0x0102030405060708, %q) = %x, want %x", "keep", "123456789", b, want)
	}
	if got := binary.BigEndian.Uint64(b[4:]); got != 0x0102030405060708 {
		t.Errorf("offset = %#x, want 0x0102030405060708", got)
	}
}

// The sizes the limits are derived from stay consistent.
func TestLimits(t *testing.T) {
	if protocol.MaxClientMessage != protocol.FrameHeaderSize+protocol.FrameSize {
		t.Errorf("MaxClientMessage = %d, want a header and a frame, %d", protocol.MaxClientMessage, protocol.FrameHeaderSize+protocol.FrameSize)
	}
	if protocol.FrameSize%protocol.LowBandwidthFrameSz != 0 {
		t.Errorf("FrameSize %d is not a multiple of LowBandwidthFrameSz %d", protocol.FrameSize, protocol.LowBandwidthFrameSz)
	}
	// Every valid upload message fits the client limit.
	max := &protocol.Upload{Version: 1 << 31, BundleVersion: 1<<63 - 1, Length: 1<<63 - 1 - (1<<63-1)%protocol.FrameSize, FrameSize: protocol.FrameSize}
	if n := len(protocol.Marshal(max)); n > protocol.MaxClientMessage {
		t.Errorf("len(Marshal(largest upload)) = %d, more than %d", n, protocol.MaxClientMessage)
	}
	// The worst-case bundle reply fits the server limit.
	worst := &protocol.BundleReply{Bundle: bytes.Repeat([]byte{0x01}, protocol.MaxBundleSize)}
	if n := len(protocol.Marshal(worst)); n > protocol.MaxServerMessage {
		t.Errorf("len(Marshal(bundle of %d control bytes)) = %d, more than MaxServerMessage %d", protocol.MaxBundleSize, n, protocol.MaxServerMessage)
	}
}
