package protocol_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"fieldtip/protocol"
)

// Values of the test messages, also used by the worked example
// (example_test.go): an upload id of bytes 0x00…0x0f, a resume secret of
// bytes 0x10…0x2f and its SHA-256, and one proof of work, the nonce
// 0x0102030405060708 (the parser does not check proofs: the server does).
const (
	testUploadID     = "AAECAwQFBgcICQoLDA0ODw"
	testResumeHash   = "icdGBFLt3_EZ_qBBnnhcdN4v-xOdvnQyOspKAeGYpdw"
	testResumeSecret = "EBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8"
	testPoW          = "AQIDBAUGBwg"
	testPrePoW       = "AAAAAAAAMDk" // nonce 12345
	// testSHA256 is SHA-256("x").
	testSHA256 = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
)

var (
	testUploadIDBytes     = protocol.UploadID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	testResumeSecretBytes = [32]byte{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f}
	testResumeHashBytes   = [32]byte{0x89, 0xc7, 0x46, 0x04, 0x52, 0xed, 0xdf, 0xf1, 0x19, 0xfe, 0xa0, 0x41, 0x9e, 0x78, 0x5c, 0x74, 0xde, 0x2f, 0xfb, 0x13, 0x9d, 0xbe, 0x74, 0x32, 0x3a, 0xca, 0x4a, 0x01, 0xe1, 0x98, 0xa5, 0xdc}
	testSHA256Bytes       = [32]byte{0x2d, 0x71, 0x16, 0x42, 0xb7, 0x26, 0xb0, 0x44, 0x01, 0x62, 0x7c, 0xa9, 0xfb, 0xac, 0x32, 0xf5, 0xc8, 0x53, 0x0f, 0xb1, 0x90, 0x3c, 0xc4, 0xdb, 0x02, 0x25, 0x87, 0x17, 0x92, 0x1a, 0x48, 0x81}
	testPoWProofs         = []uint64{0x0102030405060708}
)

// uploadJSON is a well-formed upload message of two 16 KiB frames (one
// proof of work); the malformed cases below change one thing in it.
const uploadJSON = `{"type":"upload","version":3,"bundle_version":3,"upload_id":"` + testUploadID +
	`","resume_hash":"` + testResumeHash + `","length":32768,"frame_size":16384,"pow_epoch":2932,"pow":"` + testPoW + `","pre_pow":"` + testPrePoW + `"}`

// uploadV2JSON is the upload message of a version 2 client: no pre-proof
// of work.
const uploadV2JSON = `{"type":"upload","version":2,"bundle_version":3,"upload_id":"` + testUploadID +
	`","resume_hash":"` + testResumeHash + `","length":32768,"frame_size":16384,"pow_epoch":2932,"pow":"` + testPoW + `"}`

// uploadV1JSON is the upload message of a version 1 client: no proof of
// work.
const uploadV1JSON = `{"type":"upload","version":1,"bundle_version":3,"upload_id":"` + testUploadID +
	`","resume_hash":"` + testResumeHash + `","length":32768,"frame_size":16384}`

// resumeJSON is a well-formed resume message for the upload of uploadJSON.
const resumeJSON = `{"type":"resume","version":3,"upload_id":"` + testUploadID + `","resume_secret":"` + testResumeSecret + `"}`

// testUpload returns the message of uploadJSON with length and proofs
// changed.
func testUpload(length int64, frameSize int, pow ...uint64) *protocol.Upload {
	if pow == nil {
		pow = []uint64{}
	}
	return &protocol.Upload{Version: 3, BundleVersion: 3, UploadID: testUploadIDBytes, ResumeHash: testResumeHashBytes,
		Length: length, FrameSize: frameSize, PoWEpoch: 2932, PoW: pow, PrePoW: 12345}
}

var testResume = &protocol.Resume{Version: 3, UploadID: testUploadIDBytes, ResumeSecret: testResumeSecretBytes}

// with returns s with old replaced by new, which must occur once.
func with(s, old, new string) string {
	if strings.Count(s, old) != 1 {
		panic(fmt.Sprintf("%q occurs %d times in %q", old, strings.Count(s, old), s))
	}
	return strings.Replace(s, old, new, 1)
}

// without returns s with the JSON member ,"key":value removed.
func without(s, member string) string { return with(s, ","+member, "") }

// powOf returns proofs of work in their wire encoding: the nonces as
// 8-byte big-endian integers, concatenated, in unpadded base64url.
func powOf(nonces ...uint64) string {
	b := make([]byte, 0, len(nonces)*protocol.ProofSize)
	for _, n := range nonces {
		b = binary.BigEndian.AppendUint64(b, n)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// nonces returns 0, 1, …, n−1.
func nonces(n int) []uint64 {
	p := make([]uint64, n)
	for i := range p {
		p[i] = uint64(i)
	}
	return p
}

// refusal is the want of a case refused with a code other than malformed.
type refusal protocol.Code

// messageTest is one case of a control-message parser: want is the parsed
// message, nil when the input must be refused as malformed, or a refusal
// when it must be refused with another code. Every case is also a vector
// under testdata/client or testdata/server (vectors_test.go), unless it is
// larger than maxVectorSize.
type messageTest struct {
	name    string
	in      string
	want    any
	comment string
}

// code returns the refusal code the case expects, or "" if it parses.
func (tt messageTest) code() protocol.Code {
	switch w := tt.want.(type) {
	case nil:
		return protocol.CodeMalformed
	case refusal:
		return protocol.Code(w)
	}
	return ""
}

const unsupported = refusal(protocol.CodeUnsupportedVersion)

var clientTests = []messageTest{
	{"bundle_request", `{"type":"bundle","version":3}`, &protocol.BundleRequest{Version: 3}, "the first message of a client that needs the bundle"},
	{"bundle_request_whitespace", " {\"type\" : \"bundle\",\n\t\"version\" : 3 } ", &protocol.BundleRequest{Version: 3}, "JSON whitespace between tokens does not change the message"},
	{"bundle_request_escaped_type", `{"type":"\u0062undle","version":3}`, &protocol.BundleRequest{Version: 3}, "a JSON string escape does not change the value"},
	{"upload", uploadJSON, testUpload(32768, protocol.FrameSize, testPoWProofs...), "two 16 KiB frames, one proof of work"},
	{"upload_low_bandwidth", with(with(uploadJSON, `"frame_size":16384`, `"frame_size":8192`), `"length":32768`, `"length":24576`), testUpload(24576, protocol.LowBandwidthFrameSz, testPoWProofs...), "three 8 KiB frames"},
	{"upload_one_frame", with(uploadJSON, `"length":32768`, `"length":16384`), testUpload(16384, protocol.FrameSize, testPoWProofs...), "the smallest upload"},
	{"upload_members_reordered", `{"pre_pow":"` + testPrePoW + `","pow":"` + testPoW + `","pow_epoch":2932,"frame_size":16384,"length":32768,"resume_hash":"` + testResumeHash + `","upload_id":"` + testUploadID + `","bundle_version":3,"version":3,"type":"upload"}`, testUpload(32768, protocol.FrameSize, testPoWProofs...), "members may come in any order"},
	{"resume", resumeJSON, testResume, "picks up the upload of the upload case on a new connection"},
	{"resume_members_reordered", `{"resume_secret":"` + testResumeSecret + `","upload_id":"` + testUploadID + `","version":3,"type":"resume"}`, testResume, "members may come in any order"},
	{"commit", `{"type":"commit","sha256":"` + testSHA256 + `"}`, &protocol.Commit{SHA256: testSHA256Bytes}, "SHA-256 of the whole ciphertext, lowercase hex"},

	// Proofs of work: their count is the server's to check (bad_pow),
	// their encoding the parser's.
	{"pow_empty", with(uploadJSON, `"pow":"`+testPoW+`"`, `"pow":""`), testUpload(32768, protocol.FrameSize), "no proofs is well-formed; the server refuses it with bad_pow"},
	{"pow_several", with(uploadJSON, testPoW, powOf(0xfffffffffffffffe, 0, 1)), testUpload(32768, protocol.FrameSize, 0xfffffffffffffffe, 0, 1), "three proofs, concatenated big-endian nonces; the count is the server's to check"},
	{"pow_max", with(uploadJSON, testPoW, powOf(nonces(protocol.MaxProofs)...)), testUpload(32768, protocol.FrameSize, nonces(protocol.MaxProofs)...), "MaxProofs proofs"},
	{"pow_max_plus_one", with(uploadJSON, testPoW, powOf(nonces(protocol.MaxProofs+1)...)), nil, "one proof past MaxProofs"},
	{"pow_epoch_zero", with(uploadJSON, `"pow_epoch":2932`, `"pow_epoch":0`), &protocol.Upload{Version: 3, BundleVersion: 3, UploadID: testUploadIDBytes, ResumeHash: testResumeHashBytes, Length: 32768, FrameSize: protocol.FrameSize, PoWEpoch: 0, PoW: testPoWProofs, PrePoW: 12345}, "epochs start at 0"},
	{"pow_seven_bytes", with(uploadJSON, testPoW, base64.RawURLEncoding.EncodeToString([]byte{1, 2, 3, 4, 5, 6, 7})), nil, "7 bytes: not a whole proof"},
	{"pow_nine_bytes", with(uploadJSON, testPoW, base64.RawURLEncoding.EncodeToString([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9})), nil, "9 bytes: not a whole number of proofs"},
	{"pow_padded", with(uploadJSON, testPoW, testPoW+"="), nil, "base64url without padding"},
	{"pow_std_alphabet", with(uploadJSON, testPoW, "//////////4"), nil, "the URL alphabet, not the standard one"},
	{"pow_padding_bits", with(uploadJSON, testPoW, testPoW[:len(testPoW)-1]+"h"), nil, "nonzero unused bits in the last character: a second spelling of a proof"},
	{"pow_newline", with(uploadJSON, testPoW, testPoW+`\n`), nil, "a newline after the proofs (Go's base64 decoder alone skips it)"},
	{"pow_hex", with(uploadJSON, testPoW, "0102030405060708"), nil, "hex is not base64url"},
	{"pow_number", with(uploadJSON, `"`+testPoW+`"`, `72623859790382856`), nil, "a number is not a string"},
	{"pow_array", with(uploadJSON, `"`+testPoW+`"`, `["`+testPoW+`"]`), nil, "one string, not a list"},
	{"pow_null", with(uploadJSON, `"`+testPoW+`"`, `null`), nil, "null is not a string"},
	{"pow_missing", without(uploadJSON, `"pow":"`+testPoW+`"`), nil, "upload without pow"},
	{"pre_pow_zero", with(uploadJSON, testPrePoW, "AAAAAAAAAAA"), func() *protocol.Upload {
		u := testUpload(32768, protocol.FrameSize, testPoWProofs...)
		u.PrePoW = 0
		return u
	}(), "nonce 0 is a nonce like any other"},
	{"pre_pow_max", with(uploadJSON, testPrePoW, "__________8"), func() *protocol.Upload {
		u := testUpload(32768, protocol.FrameSize, testPoWProofs...)
		u.PrePoW = 1<<64 - 1
		return u
	}(), "the largest nonce"},
	{"pre_pow_missing", without(uploadJSON, `"pre_pow":"`+testPrePoW+`"`), nil, "upload without pre_pow (a version 3 message needs it)"},
	{"pre_pow_empty", with(uploadJSON, `"pre_pow":"`+testPrePoW+`"`, `"pre_pow":""`), nil, "exactly one nonce, not none"},
	{"pre_pow_two", with(uploadJSON, `"pre_pow":"`+testPrePoW+`"`, `"pre_pow":"`+powOf(1, 2)+`"`), nil, "exactly one nonce, not two"},
	{"pre_pow_seven_bytes", with(uploadJSON, testPrePoW, base64.RawURLEncoding.EncodeToString([]byte{1, 2, 3, 4, 5, 6, 7})), nil, "7 bytes: not a nonce"},
	{"pre_pow_padded", with(uploadJSON, testPrePoW, testPrePoW+"="), nil, "base64url without padding"},
	{"pre_pow_std_alphabet", with(uploadJSON, testPrePoW, "//////////4"), nil, "the URL alphabet, not the standard one"},
	{"pre_pow_padding_bits", with(uploadJSON, testPrePoW, "AAAAAAAAMDl"), nil, "nonzero unused bits in the last character: a second spelling of the nonce"},
	{"pre_pow_newline", with(uploadJSON, testPrePoW, testPrePoW+`\n`), nil, "a newline after the nonce"},
	{"pre_pow_number", with(uploadJSON, `"`+testPrePoW+`"`, `12345`), nil, "a number is not a string"},
	{"pre_pow_null", with(uploadJSON, `"`+testPrePoW+`"`, `null`), nil, "null is not a string"},
	{"pre_pow_in_resume", with(resumeJSON, `"resume_secret"`, `"pre_pow":"`+testPrePoW+`","resume_secret"`), nil, "a resume carries no proof of work"},
	{"pow_epoch_missing", without(uploadJSON, `"pow_epoch":2932`), nil, "upload without pow_epoch"},
	{"pow_epoch_negative", with(uploadJSON, `"pow_epoch":2932`, `"pow_epoch":-1`), nil, "negative epoch"},
	{"pow_epoch_fraction", with(uploadJSON, `"pow_epoch":2932`, `"pow_epoch":2932.5`), nil, "integers have no fraction"},
	{"pow_epoch_string", with(uploadJSON, `"pow_epoch":2932`, `"pow_epoch":"2932"`), nil, "a string is not a number"},
	{"pow_epoch_overflow", with(uploadJSON, `"pow_epoch":2932`, `"pow_epoch":9223372036854775808`), nil, "past int64"},

	// Other versions are refused as unsupported_version before any other
	// member is looked at, so an old client learns why.
	{"bundle_request_version_1", `{"type":"bundle","version":1}`, unsupported, "a version 1 client"},
	{"bundle_request_version_4", `{"type":"bundle","version":4}`, unsupported, "a version this server does not speak yet"},
	{"bundle_request_version_huge", `{"type":"bundle","version":4294967296}`, unsupported, "a version past 32 bits"},
	{"upload_version_1", uploadV1JSON, unsupported, "a version 1 client's upload, which has no proof of work"},
	{"upload_version_2", uploadV2JSON, unsupported, "a version 2 client's upload, which has no pre-proof: the message says to update the client"},
	{"bundle_request_version_2", `{"type":"bundle","version":2}`, unsupported, "a version 2 client's first message"},
	{"resume_version_2", with(resumeJSON, `"version":3`, `"version":2`), unsupported, "a version 2 client resuming an upload it began before the update"},
	{"upload_version_1_with_pow", with(uploadJSON, `"version":3`, `"version":1`), unsupported, "version 1 with the members of version 2"},
	{"upload_version_4", with(uploadJSON, `"version":3`, `"version":4`), unsupported, "a version this server does not speak yet"},
	{"upload_version_1_alone", `{"type":"upload","version":1}`, unsupported, "the version is checked before the missing members"},
	{"upload_version_4_bad_length", with(with(uploadJSON, `"version":3`, `"version":4`), `"length":32768`, `"length":1`), unsupported, "the version is checked before the members' values"},
	{"resume_version_1", with(resumeJSON, `"version":3`, `"version":1`), unsupported, "version 1 had no resume"},
	{"resume_version_4", with(resumeJSON, `"version":3`, `"version":4`), unsupported, "a version this server does not speak yet"},
	{"resume_version_4_alone", `{"type":"resume","version":4}`, unsupported, "the version is checked before the missing members"},

	{"empty", ``, nil, "no JSON value"},
	{"not_json", `hello`, nil, "not JSON"},
	{"json_null", `null`, nil, "not an object"},
	{"json_array", `[{"type":"bundle","version":3}]`, nil, "not an object"},
	{"json_string", `"bundle"`, nil, "not an object"},
	{"truncated", `{"type":"bundle","version":3`, nil, "unterminated object"},
	{"missing_type", `{"version":3}`, nil, "no type"},
	{"unknown_type", `{"type":"hello","version":3}`, nil, "unknown type"},
	{"type_wrong_case", `{"type":"Bundle","version":3}`, nil, "type values are case-sensitive"},
	{"type_null", `{"type":null,"version":3}`, nil, "no type"},
	{"server_type", `{"type":"offset","offset":0,"seed":""}`, nil, "a server message is not a client message"},
	{"key_wrong_case", `{"type":"bundle","Version":2}`, nil, "keys are case-sensitive (encoding/json alone would match Version)"},
	{"type_key_wrong_case", `{"TYPE":"bundle","version":3}`, nil, "keys are case-sensitive"},
	{"key_repeated", `{"type":"bundle","version":3,"version":3}`, nil, "a repeated key, even with the same value"},
	{"type_repeated", `{"type":"commit","type":"bundle","version":3}`, nil, "a repeated type (encoding/json alone would keep the last)"},
	{"unknown_field", `{"type":"bundle","version":3,"extra":true}`, nil, "a field no message has"},
	{"field_of_other_type", `{"type":"bundle","version":3,"offset":0}`, nil, "a field that is not the type's"},
	{"upload_with_sha256", with(uploadJSON, `"frame_size":16384`, `"frame_size":16384,"sha256":"`+testSHA256+`"`), nil, "a commit field in an upload"},
	{"upload_with_resume_secret", with(uploadJSON, `"frame_size":16384`, `"frame_size":16384,"resume_secret":"`+testResumeSecret+`"`), nil, "the upload carries the secret's hash, never the secret"},
	{"commit_with_length", `{"type":"commit","sha256":"` + testSHA256 + `","length":16384}`, nil, "an upload field in a commit"},
	{"commit_with_version", `{"type":"commit","version":3,"sha256":"` + testSHA256 + `"}`, nil, "a commit has no version: it belongs to the upload open on the connection"},
	{"trailing_object", `{"type":"bundle","version":3}{}`, nil, "a second JSON value"},
	{"trailing_garbage", `{"type":"bundle","version":3}x`, nil, "trailing bytes"},
	{"trailing_brace", `{"type":"bundle","version":3}}`, nil, "a stray closing brace"},
	{"trailing_bracket", `{"type":"bundle","version":3}]`, nil, "a stray closing bracket"},
	{"missing_version", `{"type":"bundle"}`, nil, "bundle request without version"},
	{"version_null", `{"type":"bundle","version":null}`, nil, "null is not a number"},
	{"version_zero", `{"type":"bundle","version":0}`, nil, "versions start at 1: not a version at all"},
	{"version_negative", `{"type":"bundle","version":-1}`, nil, "negative version"},
	{"version_fraction", `{"type":"bundle","version":3.0}`, nil, "integers have no fraction"},
	{"version_exponent", `{"type":"bundle","version":3e0}`, nil, "integers have no exponent"},
	{"version_string", `{"type":"bundle","version":"2"}`, nil, "a string is not a number"},
	{"version_leading_zero", `{"type":"bundle","version":02}`, nil, "not JSON"},
	{"version_plus", `{"type":"bundle","version":+2}`, nil, "not JSON"},
	{"version_overflow", `{"type":"bundle","version":9223372036854775808}`, nil, "past int64"},
	{"upload_missing_version", without(uploadJSON, `"version":3`), nil, "upload without version"},
	{"upload_missing_bundle_version", without(uploadJSON, `"bundle_version":3`), nil, "upload without bundle_version"},
	{"upload_missing_upload_id", without(uploadJSON, `"upload_id":"`+testUploadID+`"`), nil, "upload without upload_id"},
	{"upload_missing_resume_hash", without(uploadJSON, `"resume_hash":"`+testResumeHash+`"`), nil, "upload without resume_hash"},
	{"upload_missing_length", without(uploadJSON, `"length":32768`), nil, "upload without length"},
	{"upload_missing_frame_size", without(uploadJSON, `"frame_size":16384`), nil, "upload without frame_size"},
	{"upload_version_zero", with(uploadJSON, `"version":3`, `"version":0`), nil, "versions start at 1"},
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
	{"resume_missing_version", without(resumeJSON, `"version":3`), nil, "resume without version"},
	{"resume_missing_upload_id", without(resumeJSON, `"upload_id":"`+testUploadID+`"`), nil, "resume without upload_id"},
	{"resume_missing_resume_secret", without(resumeJSON, `"resume_secret":"`+testResumeSecret+`"`), nil, "resume without resume_secret"},
	{"resume_version_zero", with(resumeJSON, `"version":3`, `"version":0`), nil, "versions start at 1"},
	{"resume_with_resume_hash", with(resumeJSON, `"resume_secret"`, `"resume_hash":"`+testResumeHash+`","resume_secret"`), nil, "the hash belongs to the upload message"},
	{"resume_with_length", with(resumeJSON, `"resume_secret"`, `"length":32768,"resume_secret"`), nil, "the server knows the length; a resume cannot change it"},
	{"resume_with_pow", with(resumeJSON, `"resume_secret"`, `"pow_epoch":2932,"pow":"`+testPoW+`","resume_secret"`), nil, "a resume carries no proof of work: the upload's were spent when it opened"},
	{"resume_upload_id_short", with(resumeJSON, testUploadID, testUploadID[:20]), nil, "15 bytes"},
	{"resume_secret_padded", with(resumeJSON, testResumeSecret, testResumeSecret+"="), nil, "base64url without padding"},
	{"resume_secret_std_alphabet", with(resumeJSON, testResumeSecret, "/"+testResumeSecret[1:]), nil, "the URL alphabet, not the standard one (\"_\" in base64url)"},
	{"resume_secret_short", with(resumeJSON, testResumeSecret, testResumeSecret[:40]), nil, "30 bytes"},
	{"resume_secret_long", with(resumeJSON, testResumeSecret, testResumeSecret+"AA"), nil, "33 bytes"},
	{"resume_secret_padding_bits", with(resumeJSON, testResumeSecret, testResumeSecret[:42]+"9"), nil, "nonzero unused bits in the last character: a second spelling of a secret"},
	{"resume_secret_crlf", with(resumeJSON, testResumeSecret, testResumeSecret[:20]+`\r\n`+testResumeSecret[20:]), nil, "CR LF inside the secret (Go's base64 decoder alone skips them)"},
	{"resume_secret_hex", with(resumeJSON, testResumeSecret, "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"), nil, "hex is not base64url"},
	{"resume_secret_number", with(resumeJSON, `"`+testResumeSecret+`"`, `0`), nil, "a number is not a string"},
	{"resume_secret_empty", with(resumeJSON, testResumeSecret, ""), nil, "no secret"},
	{"commit_missing_sha256", `{"type":"commit"}`, nil, "commit without hash"},
	{"commit_uppercase_hex", `{"type":"commit","sha256":"` + strings.ToUpper(testSHA256) + `"}`, nil, "lowercase hex only"},
	{"commit_short", `{"type":"commit","sha256":"` + testSHA256[:62] + `"}`, nil, "31 bytes"},
	{"commit_odd_length", `{"type":"commit","sha256":"` + testSHA256[:63] + `"}`, nil, "63 hex digits"},
	{"commit_long", `{"type":"commit","sha256":"` + testSHA256 + `00"}`, nil, "33 bytes"},
	{"commit_not_hex", `{"type":"commit","sha256":"` + testSHA256[:63] + `g"}`, nil, "not a hex digit"},
	{"commit_base64url", `{"type":"commit","sha256":"LXEWQrcmsEQBYnyp-6wy9chTD7GQPMTbAiWHF5IaSIE"}`, nil, "the hash is hex, not base64url"},
	{"size_max", padTo(`{"type":"bundle","version":3}`, protocol.MaxClientMessage), &protocol.BundleRequest{Version: 3}, "exactly MaxClientMessage bytes"},
	{"size_max_plus_one", padTo(`{"type":"bundle","version":3}`, protocol.MaxClientMessage+1), nil, "one byte past MaxClientMessage"},
}

// padTo pads a JSON message with trailing spaces to n bytes.
func padTo(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }

var testNote = "fieldtip/receipt/v1\ntip AAECAwQFBgcICQoLDA0ODw\n\n— log.example +abcdef==\n"

// testSeed stands for a signed proof-of-work seed note, which is opaque
// here: the client opens it with the log key.
var testSeed = "fieldtip/pow-seed/v1\nepoch 2932\n\n— log.example +abcdef==\n"

var serverTests = []messageTest{
	{"bundle_reply", `{"type":"bundle","bundle":"fieldtip/bundle/v1\nversion 3\n\n— newsroom.example AAAA\n","seed":` + quote(testSeed) + `}`, &protocol.BundleReply{Bundle: []byte("fieldtip/bundle/v1\nversion 3\n\n— newsroom.example AAAA\n"), Seed: []byte(testSeed)}, "the bundle and the seed are opaque here: crypto.OpenBundle checks one, the seed's opener the other"},
	{"bundle_reply_escaped", `{"type":"bundle","bundle":"a\u2014\n\"b\"","seed":"\u0073"}`, &protocol.BundleReply{Bundle: []byte("a—\n\"b\""), Seed: []byte("s")}, "JSON escapes in the bundle and seed strings"},
	{"bundle_reply_empty", `{"type":"bundle","bundle":"","seed":""}`, &protocol.BundleReply{Bundle: []byte{}, Seed: []byte{}}, "well-formed; crypto.OpenBundle refuses it, and the client the empty seed"},
	{"bundle_reply_seed_first", `{"seed":` + quote(testSeed) + `,"bundle":"b","type":"bundle"}`, &protocol.BundleReply{Bundle: []byte("b"), Seed: []byte(testSeed)}, "members may come in any order"},
	{"offset_zero", `{"type":"offset","offset":0,"seed":` + quote(testSeed) + `}`, &protocol.Offset{Offset: 0, Seed: []byte(testSeed)}, "a new upload"},
	{"offset", `{"type":"offset","offset":49152,"seed":` + quote(testSeed) + `}`, &protocol.Offset{Offset: 49152, Seed: []byte(testSeed)}, "a resumed upload"},
	{"offset_empty_seed", `{"type":"offset","offset":0,"seed":""}`, &protocol.Offset{Offset: 0, Seed: []byte{}}, "well-formed; the client refuses a seed that does not open"},
	{"offset_seed_max", `{"type":"offset","offset":0,"seed":"` + strings.Repeat("s", protocol.MaxSeedSize) + `"}`, &protocol.Offset{Seed: bytes.Repeat([]byte("s"), protocol.MaxSeedSize)}, "MaxSeedSize bytes"},
	{"ack", `{"type":"ack","offset":16384}`, &protocol.Ack{Offset: 16384}, "one frame stored"},
	{"ack_max", `{"type":"ack","offset":9223372036854775807}`, &protocol.Ack{Offset: 1<<63 - 1}, "the largest offset JSON can carry here"},
	{"receipt_reply", `{"type":"receipt","receipt":` + quote(testNote) + `}`, &protocol.ReceiptReply{Receipt: []byte(testNote)}, "the receipt is opaque here: crypto.OpenReceipt checks it"},
	{"receipt_max", `{"type":"receipt","receipt":"` + strings.Repeat("r", protocol.MaxReceiptSize) + `"}`, &protocol.ReceiptReply{Receipt: bytes.Repeat([]byte("r"), protocol.MaxReceiptSize)}, "MaxReceiptSize bytes"},
	{"error_busy", `{"type":"error","code":"busy","message":"the server is busy"}`, &protocol.Error{Code: protocol.CodeBusy, Message: "the server is busy"}, "an error is a message, not a parse failure"},
	{"error_empty_message", `{"type":"error","code":"internal","message":""}`, &protocol.Error{Code: protocol.CodeInternal}, "the text may be empty"},
	{"error_conflict", `{"type":"error","code":"conflict","message":"resume at 16384","offset":16384}`, &protocol.Error{Code: protocol.CodeConflict, Message: "resume at 16384", Offset: 16384}, "conflict carries the server's offset"},
	{"error_bad_checksum", `{"type":"error","code":"bad_checksum","message":"checksum","offset":0}`, &protocol.Error{Code: protocol.CodeBadChecksum, Message: "checksum"}, "bad_checksum carries the server's offset"},
	{"error_message_max", `{"type":"error","code":"busy","message":"` + strings.Repeat("m", protocol.MaxMessageLength) + `"}`, &protocol.Error{Code: protocol.CodeBusy, Message: strings.Repeat("m", protocol.MaxMessageLength)}, "MaxMessageLength bytes of text"},
	{"error_unsupported_version", `{"type":"error","code":"unsupported_version","message":"protocol version 1 is not supported; this server speaks 2"}`, &protocol.Error{Code: protocol.CodeUnsupportedVersion, Message: "protocol version 1 is not supported; this server speaks 2"}, "what a version 1 client is told"},
	{"error_bad_pow", `{"type":"error","code":"bad_pow","message":"proof of work 0 does not verify"}`, &protocol.Error{Code: protocol.CodeBadPoW, Message: "proof of work 0 does not verify"}, "version 2: compute the proofs again"},
	{"error_stale_pow", `{"type":"error","code":"stale_pow","message":"epoch 2930"}`, &protocol.Error{Code: protocol.CodeStalePoW, Message: "epoch 2930"}, "version 2: compute the proofs again with the current seed"},
	{"error_replayed", `{"type":"error","code":"replayed","message":"upload id already used"}`, &protocol.Error{Code: protocol.CodeReplayed, Message: "upload id already used"}, "version 2: a new upload id and new proofs"},
	{"error_replayed_index", `{"type":"error","index":12,"code":"replayed","message":"event id already logged at index 12"}`, &protocol.Error{Code: protocol.CodeReplayed, Message: "event id already logged at index 12", Index: 12}, "POST /event: the index of the event the log holds"},
	{"error_replayed_index_last", `{"type":"error","code":"replayed","message":"m","index":9223372036854775807}`, &protocol.Error{Code: protocol.CodeReplayed, Message: "m", Index: 1<<63 - 1}, "members in any order; the largest index"},
	{"error_expired", `{"type":"error","code":"expired","message":"the upload expired"}`, &protocol.Error{Code: protocol.CodeExpired, Message: "the upload expired"}, "version 2: send the upload anew under a new id"},
	{"error_not_found", `{"type":"error","code":"not_found","message":"no unfinished upload with this id"}`, &protocol.Error{Code: protocol.CodeNotFound, Message: "no unfinished upload with this id"}, "the answer to a resume of an unknown upload"},
	{"error_policy_not_met", `{"type":"error","code":"policy_not_met","message":"the policy is not met: needs 1 more supporting cluster","rule":"clusters"}`, &protocol.Error{Code: protocol.CodePolicyNotMet, Message: "the policy is not met: needs 1 more supporting cluster", Rule: "clusters"}, "POST /editor/publish: the first unmet rule of the policy"},
	{"error_policy_not_met_no_rule", `{"type":"error","code":"policy_not_met","message":"m"}`, &protocol.Error{Code: protocol.CodePolicyNotMet, Message: "m"}, "the rule may be left out"},
	{"error_trail_refused", `{"type":"error","code":"trail_refused","message":"the public part and salt of event 12 do not open its commitment","index":12,"rule":"commitment"}`, &protocol.Error{Code: protocol.CodeTrailRefused, Message: "the public part and salt of event 12 do not open its commitment", Index: 12, Rule: "commitment"}, "the trail rule broken and the entry concerned"},
	{"error_trail_refused_unknown_rule", `{"type":"error","code":"trail_refused","message":"m","rule":"newrule"}`, &protocol.Error{Code: protocol.CodeTrailRefused, Message: "m", Rule: "newrule"}, "a rule the client does not know is still a rule"},
	{"error_pending", `{"type":"error","code":"pending","message":"wait for cosignatures"}`, &protocol.Error{Code: protocol.CodePending, Message: "wait for cosignatures"}, "a correction of a publication still waiting for cosignatures"},
	{"error_rule_on_busy", `{"type":"error","code":"busy","message":"m","rule":"clusters"}`, nil, "only policy_not_met and trail_refused carry a rule"},
	{"error_rule_uppercase", `{"type":"error","code":"policy_not_met","message":"m","rule":"Clusters"}`, nil, "a rule is lowercase letters"},
	{"error_rule_empty", `{"type":"error","code":"policy_not_met","message":"m","rule":""}`, nil, "an empty rule is left out, not sent"},
	{"error_rule_long", `{"type":"error","code":"trail_refused","message":"m","rule":"` + strings.Repeat("r", 33) + `"}`, nil, "a rule of more than 32 letters"},
	{"error_rule_max", `{"type":"error","code":"trail_refused","message":"m","rule":"` + strings.Repeat("r", 32) + `"}`, &protocol.Error{Code: protocol.CodeTrailRefused, Message: "m", Rule: strings.Repeat("r", 32)}, "a rule of 32 letters"},
	{"error_trail_refused_index_zero", `{"type":"error","code":"trail_refused","message":"m","index":0}`, nil, "index 0 is a bundle: left out, not sent"},
	{"error_policy_not_met_index", `{"type":"error","code":"policy_not_met","message":"m","index":3}`, nil, "policy_not_met carries no index"},

	{"client_type", `{"type":"commit","sha256":"` + testSHA256 + `"}`, nil, "a client message is not a server message"},
	{"resume_as_reply", resumeJSON, nil, "a client message is not a server message"},
	{"bundle_request_as_reply", `{"type":"bundle","version":3}`, nil, "the client's bundle request has no bundle"},
	{"bundle_reply_with_version", `{"type":"bundle","bundle":"b","seed":"s","version":3}`, nil, "a field of the request in the reply"},
	{"bundle_reply_null", `{"type":"bundle","bundle":null,"seed":"s"}`, nil, "null is not a string"},
	{"bundle_reply_bytes", `{"type":"bundle","bundle":[1,2],"seed":"s"}`, nil, "the bundle is a string"},
	{"bundle_reply_missing_seed", `{"type":"bundle","bundle":"b"}`, nil, "a version 1 bundle reply: version 2 carries the seed"},
	{"bundle_reply_missing_bundle", `{"type":"bundle","seed":"s"}`, nil, "a bundle reply without the bundle"},
	{"bundle_reply_seed_null", `{"type":"bundle","bundle":"b","seed":null}`, nil, "null is not a string"},
	{"bundle_reply_seed_number", `{"type":"bundle","bundle":"b","seed":2932}`, nil, "the seed is a string"},
	{"bundle_reply_seed_too_large", `{"type":"bundle","bundle":"b","seed":"` + strings.Repeat("s", protocol.MaxSeedSize+1) + `"}`, nil, "one byte past MaxSeedSize"},
	{"offset_missing", `{"type":"offset","seed":"s"}`, nil, "offset without offset"},
	{"offset_missing_seed", `{"type":"offset","offset":0}`, nil, "a version 1 offset: version 2 carries the seed"},
	{"offset_negative", `{"type":"offset","offset":-1,"seed":"s"}`, nil, "negative offset"},
	{"offset_seed_too_large", `{"type":"offset","offset":0,"seed":"` + strings.Repeat("s", protocol.MaxSeedSize+1) + `"}`, nil, "one byte past MaxSeedSize"},
	{"offset_seed_escaped_too_large", `{"type":"offset","offset":0,"seed":"` + strings.Repeat(`\u0073`, protocol.MaxSeedSize+1) + `"}`, nil, "the limit is on the seed's bytes, not on their JSON spelling"},
	{"offset_with_bundle", `{"type":"offset","offset":0,"seed":"s","bundle":"b"}`, nil, "a field of the bundle reply in an offset"},
	{"ack_with_seed", `{"type":"ack","offset":16384,"seed":"s"}`, nil, "only the first answer of a session carries the seed"},
	{"receipt_with_seed", `{"type":"receipt","receipt":"r","seed":"s"}`, nil, "only the first answer of a session carries the seed"},
	{"error_with_seed", `{"type":"error","code":"stale_pow","message":"no","seed":"s"}`, nil, "an error carries no seed: the client reconnects and gets one"},
	{"ack_negative", `{"type":"ack","offset":-16384}`, nil, "negative offset"},
	{"ack_fraction", `{"type":"ack","offset":16384.5}`, nil, "integers have no fraction"},
	{"ack_string", `{"type":"ack","offset":"16384"}`, nil, "a string is not a number"},
	{"ack_overflow", `{"type":"ack","offset":9223372036854775808}`, nil, "past int64"},
	{"ack_with_code", `{"type":"ack","offset":0,"code":"busy"}`, nil, "an error field in an ack"},
	{"key_wrong_case", `{"type":"ack","Offset":16384}`, nil, "keys are case-sensitive"},
	{"key_repeated", `{"type":"ack","offset":16384,"offset":32768}`, nil, "a repeated key (encoding/json alone would keep the last)"},
	{"seed_key_repeated", `{"type":"offset","offset":0,"seed":"a","seed":"b"}`, nil, "a repeated seed: a second seed must not hide behind the first"},
	{"receipt_too_large", `{"type":"receipt","receipt":"` + strings.Repeat("r", protocol.MaxReceiptSize+1) + `"}`, nil, "one byte past MaxReceiptSize"},
	{"error_unknown_code", `{"type":"error","code":"teapot","message":"no"}`, nil, "a client treats an unknown code as a malformed message"},
	{"error_code_wrong_case", `{"type":"error","code":"Busy","message":"no"}`, nil, "codes are case-sensitive"},
	{"error_without_code", `{"type":"error","message":"no"}`, nil, "an error needs a code"},
	{"error_without_message", `{"type":"error","code":"busy"}`, nil, "an error needs a text, even empty"},
	{"error_conflict_without_offset", `{"type":"error","code":"conflict","message":"no"}`, nil, "conflict must carry the server's offset"},
	{"error_bad_checksum_without_offset", `{"type":"error","code":"bad_checksum","message":"no"}`, nil, "bad_checksum must carry the server's offset"},
	{"error_busy_with_offset", `{"type":"error","code":"busy","message":"no","offset":0}`, nil, "only conflict and bad_checksum carry an offset"},
	{"error_bad_pow_with_offset", `{"type":"error","code":"bad_pow","message":"no","offset":0}`, nil, "only conflict and bad_checksum carry an offset"},
	{"error_conflict_negative_offset", `{"type":"error","code":"conflict","message":"no","offset":-1}`, nil, "negative offset"},
	{"error_replayed_index_zero", `{"type":"error","index":0,"code":"replayed","message":"no"}`, nil, "index 0 is the log's first bundle, never an event: absent means not said"},
	{"error_replayed_index_negative", `{"type":"error","index":-1,"code":"replayed","message":"no"}`, nil, "negative index"},
	{"error_replayed_index_string", `{"type":"error","index":"12","code":"replayed","message":"no"}`, nil, "the index is a number"},
	{"error_replayed_index_null", `{"type":"error","index":null,"code":"replayed","message":"no"}`, nil, "null member"},
	{"error_conflict_with_index", `{"type":"error","offset":0,"index":3,"code":"conflict","message":"no"}`, nil, "only replayed carries an index"},
	{"error_busy_with_index", `{"type":"error","index":3,"code":"busy","message":"no"}`, nil, "only replayed carries an index"},
	{"error_replayed_with_offset", `{"type":"error","offset":3,"code":"replayed","message":"no"}`, nil, "replayed carries an index, not an offset"},
	{"ack_with_index", `{"type":"ack","offset":0,"index":1}`, nil, "only errors carry an index"},
	{"error_message_too_long", `{"type":"error","code":"busy","message":"` + strings.Repeat("m", protocol.MaxMessageLength+1) + `"}`, nil, "one byte past MaxMessageLength"},
	{"error_message_number", `{"type":"error","code":"busy","message":1}`, nil, "the text is a string"},
	{"trailing_data", `{"type":"ack","offset":0} {}`, nil, "a second JSON value"},
	{"bundle_max", `{"type":"bundle","bundle":"` + strings.Repeat("b", protocol.MaxBundleSize) + `","seed":"` + strings.Repeat("s", protocol.MaxSeedSize) + `"}`, &protocol.BundleReply{Bundle: bytes.Repeat([]byte("b"), protocol.MaxBundleSize), Seed: bytes.Repeat([]byte("s"), protocol.MaxSeedSize)}, "MaxBundleSize and MaxSeedSize bytes"},
	{"bundle_too_large", `{"type":"bundle","bundle":"` + strings.Repeat("b", protocol.MaxBundleSize+1) + `","seed":"s"}`, nil, "one byte past MaxBundleSize"},
	{"bundle_max_escaped", `{"type":"bundle","bundle":"` + strings.Repeat(`\u0062`, protocol.MaxBundleSize) + `","seed":""}`, &protocol.BundleReply{Bundle: bytes.Repeat([]byte("b"), protocol.MaxBundleSize), Seed: []byte{}}, "every byte escaped still fits MaxServerMessage"},
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

// checkCode reports whether err is a *protocol.Error of the given code,
// both through errors.As and errors.Is.
func checkCode(t *testing.T, call string, err error, code protocol.Code) {
	t.Helper()
	var e *protocol.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Errorf("%s error = %v, want a *protocol.Error of code %s", call, err, code)
		return
	}
	if !errors.Is(err, &protocol.Error{Code: code}) || !protocol.IsError(err, code) {
		t.Errorf("errors.Is(%s error, %s) = false, want true", call, code)
	}
}

func runMessageTests(t *testing.T, fn string, parse func([]byte) (any, error), tests []messageTest) {
	seen := map[string]bool{}
	for _, tt := range tests {
		if seen[tt.name] {
			t.Errorf("two cases named %s: one vector would overwrite the other", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse([]byte(tt.in))
			call := fmt.Sprintf("%s(%s)", fn, clipped(tt.in))
			if code := tt.code(); code != "" {
				if err == nil {
					t.Fatalf("%s = %#v, want a %s error", call, got, code)
				}
				if got != nil {
					t.Errorf("%s returned %#v with its error, want nil", call, got)
				}
				checkCode(t, call, err, code)
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

// allCodes are the error codes of errors.go, each with the exact string a
// client matches: a code never changes spelling.
var allCodes = map[protocol.Code]string{
	protocol.CodeMalformed: "malformed", protocol.CodeUnsupportedVersion: "unsupported_version",
	protocol.CodeUnexpected: "unexpected_message", protocol.CodeTooLarge: "too_large",
	protocol.CodeBadFrameSize: "bad_frame_size", protocol.CodeConflict: "conflict",
	protocol.CodeBadChecksum: "bad_checksum", protocol.CodeBadHash: "bad_hash",
	protocol.CodeBadCiphertext: "bad_ciphertext", protocol.CodeStaleBundle: "stale_bundle",
	protocol.CodeBusy: "busy", protocol.CodeTooManyUploads: "too_many_uploads",
	protocol.CodeShuttingDown: "shutting_down", protocol.CodeInternal: "internal",
	protocol.CodeTimeout: "timeout", protocol.CodeUnauthorized: "unauthorized",
	protocol.CodeNotFound: "not_found", protocol.CodeBadPoW: "bad_pow",
	protocol.CodeStalePoW: "stale_pow", protocol.CodeReplayed: "replayed",
	protocol.CodeExpired: "expired",
}

func TestCodes(t *testing.T) {
	for c, s := range allCodes {
		if string(c) != s {
			t.Errorf("code %q, want %q", c, s)
		}
		// Every code parses in an error message, which it would not if it
		// were missing from the package's known codes.
		in := `{"type":"error","code":"` + s + `","message":"m"}`
		if c == protocol.CodeConflict || c == protocol.CodeBadChecksum {
			in = `{"type":"error","offset":0,"code":"` + s + `","message":"m"}`
		}
		m, err := protocol.ParseServerMessage([]byte(in))
		if err != nil {
			t.Errorf("ParseServerMessage(%s) error = %v", in, err)
		} else if e, ok := m.(*protocol.Error); !ok || e.Code != c {
			t.Errorf("ParseServerMessage(%s) = %#v, want an error of code %s", in, m, c)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	client := []any{
		&protocol.BundleRequest{Version: protocol.Version},
		&protocol.Upload{Version: protocol.Version, BundleVersion: 1, UploadID: testUploadIDBytes, ResumeHash: testResumeHashBytes, Length: protocol.FrameSize, FrameSize: protocol.FrameSize, PoWEpoch: 2932, PoW: []uint64{7}},
		&protocol.Upload{Version: protocol.Version, BundleVersion: 1 << 53, UploadID: protocol.UploadID{0xff, 0xfe}, ResumeHash: [32]byte{31: 0xff}, Length: 4096 * protocol.LowBandwidthFrameSz, FrameSize: protocol.LowBandwidthFrameSz, PoWEpoch: 1<<63 - 1, PoW: nonces(protocol.Proofs(4096 * protocol.LowBandwidthFrameSz))},
		&protocol.Upload{Version: protocol.Version, BundleVersion: 1, Length: protocol.FrameSize, FrameSize: protocol.FrameSize, PoW: []uint64{}},
		&protocol.Upload{Version: protocol.Version, BundleVersion: 1, Length: protocol.FrameSize, FrameSize: protocol.FrameSize, PoW: []uint64{0, 1<<64 - 1, 0x8000000000000000}},
		testResume,
		&protocol.Resume{Version: protocol.Version, ResumeSecret: [32]byte{0: 0xfb, 31: 0xff}},
		&protocol.Commit{SHA256: testSHA256Bytes},
		&protocol.Commit{},
	}
	server := []any{
		&protocol.BundleReply{Bundle: []byte("fieldtip/bundle/v1\n<>&\u2028\"\\\x00\x1f\n\n— k AAAA\n"), Seed: []byte(testSeed)},
		&protocol.BundleReply{Bundle: []byte{}, Seed: []byte("<>&\u2029\x7f")},
		&protocol.Offset{Offset: 0, Seed: []byte(testSeed)},
		&protocol.Offset{Offset: 1 << 40, Seed: []byte{}},
		&protocol.Ack{Offset: 16384},
		&protocol.ReceiptReply{Receipt: []byte(testNote)},
	}
	for c := range allCodes {
		e := &protocol.Error{Code: c, Message: "text for " + string(c)}
		if c == protocol.CodeConflict || c == protocol.CodeBadChecksum {
			e.Offset = 3 * protocol.FrameSize
		}
		server = append(server, e)
		if c == protocol.CodeReplayed {
			server = append(server, &protocol.Error{Code: c, Message: "logged", Index: 1})
		}
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
	b = protocol.Marshal(&protocol.Error{Code: protocol.CodeBusy, Message: "busy", Index: 7})
	if want := `{"type":"error","code":"busy","message":"busy"}`; string(b) != want {
		t.Errorf("Marshal(busy with index 7) = %s, want %s", b, want)
	}
	b = protocol.Marshal(&protocol.Error{Code: protocol.CodeReplayed, Message: "r"})
	if want := `{"type":"error","code":"replayed","message":"r"}`; string(b) != want {
		t.Errorf("Marshal(replayed without index) = %s, want %s", b, want)
	}
	b = protocol.Marshal(&protocol.Error{Code: protocol.CodeReplayed, Message: "r", Index: 12})
	if want := `{"type":"error","index":12,"code":"replayed","message":"r"}`; string(b) != want {
		t.Errorf("Marshal(replayed at 12) = %s, want %s", b, want)
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
	if protocol.PoWChunkSize%protocol.FrameSize != 0 {
		t.Errorf("PoWChunkSize %d is not a multiple of FrameSize %d: a proof would cover part of a frame", protocol.PoWChunkSize, protocol.FrameSize)
	}
	// Every valid upload message fits the client limit: the largest
	// numbers and MaxProofs proofs.
	max := &protocol.Upload{Version: 1 << 31, BundleVersion: 1<<63 - 1, Length: 1<<63 - 1 - (1<<63-1)%protocol.FrameSize, FrameSize: protocol.FrameSize,
		PoWEpoch: 1<<63 - 1, PoW: nonces(protocol.MaxProofs)}
	if n := len(protocol.Marshal(max)); n > protocol.MaxClientMessage {
		t.Errorf("len(Marshal(largest upload)) = %d, more than %d", n, protocol.MaxClientMessage)
	}
	// MaxProofs proofs cover the largest upload they are meant to allow.
	if got := protocol.Proofs(protocol.MaxProofs * protocol.PoWChunkSize); got != protocol.MaxProofs {
		t.Errorf("Proofs(%d) = %d, want MaxProofs %d", protocol.MaxProofs*protocol.PoWChunkSize, got, protocol.MaxProofs)
	}
	// The worst-case bundle reply fits the server limit.
	worst := &protocol.BundleReply{Bundle: bytes.Repeat([]byte{0x01}, protocol.MaxBundleSize)}
	if n := len(protocol.Marshal(worst)); n > protocol.MaxServerMessage {
		t.Errorf("len(Marshal(bundle of %d control bytes)) = %d, more than MaxServerMessage %d", protocol.MaxBundleSize, n, protocol.MaxServerMessage)
	}
	// The worst-case offset fits too.
	offset := &protocol.Offset{Offset: 1<<63 - 1, Seed: bytes.Repeat([]byte{0x01}, protocol.MaxSeedSize)}
	if n := len(protocol.Marshal(offset)); n > protocol.MaxServerMessage {
		t.Errorf("len(Marshal(offset with a seed of %d control bytes)) = %d, more than MaxServerMessage %d", protocol.MaxSeedSize, n, protocol.MaxServerMessage)
	}
}

// A bundle reply with the largest bundle and the largest seed, every byte
// escaped, must fit MaxServerMessage, or a client refuses a reply whose
// parts are within their limits.
func TestLimitsBundleAndSeed(t *testing.T) {
	worst := &protocol.BundleReply{Bundle: bytes.Repeat([]byte{0x01}, protocol.MaxBundleSize), Seed: bytes.Repeat([]byte{0x01}, protocol.MaxSeedSize)}
	n := len(protocol.Marshal(worst))
	if n > protocol.MaxServerMessage {
		t.Fatalf("len(Marshal(bundle and seed of control bytes)) = %d, more than MaxServerMessage %d", n, protocol.MaxServerMessage)
	}
	if _, err := protocol.ParseServerMessage(protocol.Marshal(worst)); err != nil {
		t.Errorf("ParseServerMessage(worst-case bundle reply) error = %v", err)
	}
}

func TestProofs(t *testing.T) {
	const chunk = protocol.PoWChunkSize
	for _, tt := range []struct {
		length int64
		want   int
	}{
		{-chunk, 0},
		{-1, 0},
		{0, 0},
		{1, 1},
		{protocol.LowBandwidthFrameSz, 1},
		{protocol.FrameSize, 1},
		{chunk - 1, 1},
		{chunk, 1},
		{chunk + 1, 2},
		{chunk + protocol.FrameSize, 2},
		{2 * chunk, 2},
		{2*chunk + 1, 3},
		{protocol.MaxProofs*chunk - protocol.FrameSize, protocol.MaxProofs},
		{protocol.MaxProofs * chunk, protocol.MaxProofs},
		{protocol.MaxProofs*chunk + protocol.FrameSize, protocol.MaxProofs + 1},
		{1 << 62, 1 << 46},
	} {
		if got := protocol.Proofs(tt.length); got != tt.want {
			t.Errorf("Proofs(%d) = %d, want %d", tt.length, got, tt.want)
		}
	}
}

// The largest length an upload message may declare needs 2^47 proofs.
func TestProofsLargestLength(t *testing.T) {
	const largest = 1<<63 - protocol.FrameSize
	if got := protocol.Proofs(largest); got != 1<<47 {
		t.Errorf("Proofs(%d) = %d, want %d (length+PoWChunkSize-1 overflows)", int64(largest), got, 1<<47)
	}
}

// A message of another version is refused as unsupported_version, with a
// text that names the version sent and the one the server speaks.
func TestUnsupportedVersion(t *testing.T) {
	speaks := regexp.MustCompile(`\b` + strconv.Itoa(protocol.Version) + `\b`)
	for _, base := range []string{`{"type":"bundle","version":3}`, uploadJSON, resumeJSON} {
		for _, v := range []int{1, 2, 4, 1 << 40} {
			in := with(base, `"version":3`, `"version":`+strconv.Itoa(v))
			m, err := protocol.ParseClientMessage([]byte(in))
			call := fmt.Sprintf("ParseClientMessage(%s)", clipped(in))
			var e *protocol.Error
			if !errors.As(err, &e) || e.Code != protocol.CodeUnsupportedVersion || m != nil {
				t.Errorf("%s = %#v, %v; want a %s error", call, m, err, protocol.CodeUnsupportedVersion)
				continue
			}
			if !regexp.MustCompile(`\b`+strconv.Itoa(v)+`\b`).MatchString(e.Message) || !speaks.MatchString(e.Message) {
				t.Errorf("%s error text %q does not name versions %d and %d", call, e.Message, v, protocol.Version)
			}
		}
	}
}

// A later version's message with a member version 2 lacks is refused as
// unsupported_version too: a newer client must learn why it is refused.
func TestUnsupportedVersionNewMember(t *testing.T) {
	for _, in := range []string{
		`{"type":"bundle","version":4,"features":["x"]}`,
		with(with(uploadJSON, `"version":3`, `"version":4`), `"pow":`, `"frames":2,"pow":`),
		with(with(resumeJSON, `"version":3`, `"version":4`), `"resume_secret":`, `"nonce":"x","resume_secret":`),
	} {
		_, err := protocol.ParseClientMessage([]byte(in))
		if protocol.IsError(err, protocol.CodeMalformed) {
			t.Errorf("ParseClientMessage(%s) error = %v, want %s", clipped(in), err, protocol.CodeUnsupportedVersion)
		}
		checkCode(t, fmt.Sprintf("ParseClientMessage(%s)", clipped(in)), err, protocol.CodeUnsupportedVersion)
	}
}
