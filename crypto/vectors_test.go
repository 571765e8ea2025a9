package crypto

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/cryptotest"

	"filippo.io/age"
)

// The vectors under testdata/<format>/<case> are written by
// TestGenerateVectors from the lists in this file and the fixed keys of
// testkeys_test.go. Regenerate them with
//
//	go test ./crypto -run '^TestGenerateVectors$' -update
//
//go:generate go test -run ^TestGenerateVectors$ -update

var update = flag.Bool("update", false, "rewrite testdata/ from the vector lists")

// A vector file is a header of "key: value" lines, a blank line, and the
// input bytes:
//
//	expect: <outcome>
//	<format-specific inputs, such as the pinned key>
//	comment: <what the case breaks>
//
//	<input>
//
// The outcomes are the names of expectErrors.
type vector struct {
	name    string
	expect  string
	headers []vheader // between expect and comment
	comment string
	body    []byte
}

type vheader struct{ key, value string }

// expectErrors maps an outcome to the sentinel the error must wrap.
var expectErrors = map[string]error{
	"ok":                   nil,
	"malformed":            ErrMalformed,
	"unknown_signer":       ErrUnknownSigner,
	"bad_signature":        ErrBadSignature,
	"bad_ciphertext":       ErrBadCiphertext,
	"incorrect_passphrase": ErrIncorrectPassphrase,
}

func (v vector) marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "expect: %s\n", v.expect)
	for _, h := range v.headers {
		fmt.Fprintf(&b, "%s: %s\n", h.key, h.value)
	}
	fmt.Fprintf(&b, "comment: %s\n\n", v.comment)
	b.Write(v.body)
	return b.Bytes()
}

// parseVector splits a vector file into its header and its input.
func parseVector(file []byte) (map[string][]string, []byte, error) {
	head, body, ok := bytes.Cut(file, []byte("\n\n"))
	if !ok {
		return nil, nil, errors.New("no blank line after the header")
	}
	h := map[string][]string{}
	for _, line := range strings.Split(string(head), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, nil, fmt.Errorf("header line %q is not \"key: value\"", line)
		}
		h[k] = append(h[k], v)
	}
	if len(h["expect"]) != 1 {
		return nil, nil, errors.New("no single expect line")
	}
	if _, ok := expectErrors[h["expect"][0]]; !ok {
		return nil, nil, fmt.Errorf("unknown outcome %q", h["expect"][0])
	}
	return h, body, nil
}

// formats lists the vector formats, each with its generator and the check
// every vector of that format must pass. A generator that uses randomness
// is not compared with the files (its output depends on how the standard
// library draws randomness, which Go does not promise to keep).
var formats = []struct {
	name          string
	vectors       func() []vector
	deterministic bool
	run           func(h map[string][]string, body []byte) error
}{
	{"bundle", bundleVectors, true, runBundleVector},
	{"receipt", receiptVectors, true, runReceiptVector},
	{"login", loginVectors, true, runLoginVector},
	{"tip", tipVectors, true, runTipVector},
	{"ciphertext", ciphertextVectors, false, runCiphertextVector},
	{"editor-key", editorKeyVectors, true, runEditorKeyVector},
	{"editor-pub", editorPubVectors, true, runEditorPubVector},
	{"signer-key", signerKeyVectors, true, runSignerKeyVector},
	{"key-file", keyFileVectors, false, runKeyFileVector},
}

// checkOutcome compares the result of a vector with its expected outcome.
func checkOutcome(expect string, err error) error {
	want := expectErrors[expect]
	switch {
	case want == nil && err != nil:
		return fmt.Errorf("error %v, want success", err)
	case want != nil && err == nil:
		return fmt.Errorf("success, want an error wrapping %q", want)
	case want != nil && !errors.Is(err, want):
		return fmt.Errorf("error %v, want one wrapping %q", err, want)
	}
	return nil
}

func first(h map[string][]string, key string) string {
	if len(h[key]) == 0 {
		return ""
	}
	return h[key][0]
}

// TestGenerateVectors rewrites testdata/ (with -update only), drawing all
// randomness from a fixed seed.
func TestGenerateVectors(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/")
	}
	cryptotest.SetGlobalRandom(t, 1)
	for _, f := range formats {
		dir := filepath.Join("testdata", f.name)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, v := range f.vectors() {
			if err := os.WriteFile(filepath.Join(dir, v.name), v.marshal(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestVectorLists runs every vector in memory, from the lists.
func TestVectorLists(t *testing.T) {
	for _, f := range formats {
		seen := map[string]bool{}
		for _, v := range f.vectors() {
			t.Run(f.name+"/"+v.name, func(t *testing.T) {
				if seen[v.name] {
					t.Fatalf("two %s vectors named %q", f.name, v.name)
				}
				seen[v.name] = true
				if !strings.HasPrefix(v.name, v.expect) {
					t.Errorf("vector name %q does not start with its outcome %q", v.name, v.expect)
				}
				h, body, err := parseVector(v.marshal())
				if err != nil {
					t.Fatal(err)
				}
				if err := checkOutcome(v.expect, f.run(h, body)); err != nil {
					t.Errorf("%s %s: %v", f.name, v.name, err)
				}
			})
		}
	}
}

// TestVectors runs every vector file under testdata/.
func TestVectors(t *testing.T) {
	for _, f := range formats {
		files, err := filepath.Glob(filepath.Join("testdata", f.name, "*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("no vectors in testdata/%s", f.name)
		}
		for _, file := range files {
			t.Run(filepath.ToSlash(file), func(t *testing.T) {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				h, body, err := parseVector(b)
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				if err := checkOutcome(h["expect"][0], f.run(h, body)); err != nil {
					t.Errorf("%s: %v", file, err)
				}
			})
		}
	}
}

// TestVectorsUpToDate checks that the deterministic vector files are what
// the lists generate, and that no file is left over from a removed case.
func TestVectorsUpToDate(t *testing.T) {
	for _, f := range formats {
		want := map[string]bool{}
		for _, v := range f.vectors() {
			want[v.name] = true
			if !f.deterministic {
				continue
			}
			file := filepath.Join("testdata", f.name, v.name)
			got, err := os.ReadFile(file)
			if err != nil {
				t.Errorf("%s: %v (run go generate ./crypto)", file, err)
				continue
			}
			if !bytes.Equal(got, v.marshal()) {
				t.Errorf("%s differs from its generator (run go generate ./crypto)", file)
			}
		}
		files, _ := filepath.Glob(filepath.Join("testdata", f.name, "*"))
		for _, file := range files {
			if !want[filepath.Base(file)] {
				t.Errorf("%s is no longer generated (run go generate ./crypto)", file)
			}
		}
	}
}

// Bundles.

func runBundleVector(h map[string][]string, body []byte) error {
	b, err := OpenBundle(body, first(h, "newsroom"))
	if err != nil {
		if b != nil {
			return fmt.Errorf("OpenBundle returned a bundle with its error %w", err)
		}
		return err
	}
	return checkOpenedBundle(b, body)
}

// checkOpenedBundle checks the properties of a bundle OpenBundle accepted:
// it is the input, its text is the canonical formatting of its fields, and
// a signature by the test newsroom key (Ed25519 is deterministic) gives the
// same bytes.
func checkOpenedBundle(b *Bundle, msg []byte) error {
	if !bytes.Equal(b.Signed(), msg) {
		return errors.New("Signed() is not the input")
	}
	text, err := b.text()
	if err != nil || !bytes.HasPrefix(msg, []byte(text+"\n— ")) {
		return fmt.Errorf("formatting the opened bundle gives %q, %v, not the note's text", text, err)
	}
	if b.Newsroom == testNewsroom.vkey {
		again, err := SignBundle(b, testNewsroom.signer())
		if err != nil || !bytes.Equal(again, msg) {
			return fmt.Errorf("re-signing the opened bundle gives %q, %v", again, err)
		}
	}
	return nil
}

func bundleVectors() []vector {
	one := newTestBundle(testAlice)
	three := newTestBundle(testAlice, testBob, testCarol)
	three.Revoked = []string{"dave", "erin"}
	three.Version = 12
	three.Policy = Policy{Clusters: 3, Approvals: 1}
	hybrid := newTestBundle(testHybridAlice, testHybridBob)
	other := newTestBundle(testAlice)
	other.Newsroom = testOtherNewsroom.vkey

	msg := mustSignBundle(one)
	text := bundleText(one)
	threeText := bundleText(three)
	sig := sigLine(msg)
	aliceLine := fmt.Sprintf("editor alice %s %s %s\n", testAlice.Public.Recipient, testAlice.Public.Sign, testAlice.Public.Cosign)
	bobLine := fmt.Sprintf("editor bob %s %s %s\n", testBob.Public.Recipient, testBob.Public.Sign, testBob.Public.Cosign)

	// signed returns text, changed by pairs of old and new strings, signed
	// by the test newsroom key.
	signed := func(text string, oldNew ...string) []byte {
		for i := 0; i < len(oldNew); i += 2 {
			text = replaceOnce(text, oldNew[i], oldNew[i+1])
		}
		return signText(text, testNewsroom)
	}
	// A second signature line by the newsroom key, with the right key hash
	// but a signature of zeros: note.Open does not verify it.
	garbageSig := bogusSigLine(sig)

	vs := []vector{
		{"ok_one_editor", "ok", nil, "one classic (X25519) editor, default policy", msg},
		{"ok_three_editors_revoked", "ok", nil, "three editors, two revoked labels in order, another policy", mustSignBundle(three)},
		{"ok_hybrid", "ok", nil, "two post-quantum (mlkem768x25519) editors", mustSignBundle(hybrid)},

		{"unknown_signer_other_newsroom", "unknown_signer", nil, "a valid bundle of another newsroom, which names its own key", mustSign(other, testOtherNewsroom)},
		{"unknown_signer_same_name", "unknown_signer", nil, "signed by another key with the pinned key's name", signText(text, testImpostor)},
		{"unknown_signer_log_key", "unknown_signer", nil, "signed by the server's log key", signText(text, testLog)},

		{"bad_signature_version_changed", "bad_signature", nil, "version 7 changed to 8 after signing", bytes.Replace(msg, []byte("version 7\n"), []byte("version 8\n"), 1)},
		{"bad_signature_signature_changed", "bad_signature", nil, "one character of the signature changed", flipSigChar(msg, 40)},
		{"bad_signature_no_signature", "bad_signature", nil, "the text alone (sumdb/note reports a malformed note, OpenBundle a bad signature)", []byte(text)},
		{"bad_signature_crlf", "bad_signature", nil, "CRLF line endings: a control character in a note", []byte(strings.ReplaceAll(string(msg), "\n", "\r\n"))},

		{"malformed_two_signatures", "malformed", nil, "signed by the newsroom key and the log key", signText(text, testNewsroom, testLog)},
		{"malformed_two_signatures_same_name", "malformed", nil, "signed by the newsroom key and another key of the same name", signText(text, testNewsroom, testImpostor)},
		{"malformed_repeated_signature", "malformed", nil, "the signature line twice (sumdb/note drops the repeat)", append(slices.Clip(msg), sig...)},
		{"malformed_repeated_signature_garbage", "malformed", nil, "a second line with the newsroom key's hash and a bogus signature (sumdb/note does not check it)", append(slices.Clip(msg), garbageSig...)},
		{"malformed_signature_padding_bits", "malformed", nil, "nonzero unused bits in the signature's last base64 character: the same signature spelled differently", paddingBitsSig(msg)},
		{"malformed_names_other_newsroom", "malformed", nil, "signed by the pinned key but naming another newsroom key", signed(text, testNewsroom.vkey, testOtherNewsroom.vkey)},
		{"malformed_header_receipt", "malformed", nil, "a receipt's first line", signed(text, BundleHeader, ReceiptHeader)},
		{"malformed_header_v2", "malformed", nil, "a future version", signed(text, BundleHeader, "fieldtip/bundle/v2")},
		{"malformed_double_space", "malformed", nil, "two spaces after version", signed(text, "version 7", "version  7")},
		{"malformed_trailing_space", "malformed", nil, "a space at the end of a line", signed(text, "version 7\n", "version 7 \n")},
		{"bad_signature_tab", "bad_signature", nil, "a tab instead of a space: a control character in a note (sumdb/note reports a malformed note, OpenBundle a bad signature)", signed(text, "version 7", "version\t7")},
		{"malformed_blank_line_at_end", "malformed", nil, "the text ends in an empty line", signText(text+"\n", testNewsroom)},
		{"malformed_blank_line_at_start", "malformed", nil, "the text starts with an empty line", signText("\n"+text, testNewsroom)},
		{"malformed_version_plus", "malformed", nil, "+7 is not canonical", signed(text, "version 7", "version +7")},
		{"malformed_version_leading_zero", "malformed", nil, "07 is not canonical", signed(text, "version 7", "version 07")},
		{"malformed_version_plus_leading_zero", "malformed", nil, "+07 is not canonical", signed(text, "version 7", "version +07")},
		{"malformed_version_spaces_inside", "malformed", nil, "a space inside the number", signed(text, "version 7", "version 7 0")},
		{"malformed_version_zero", "malformed", nil, "versions start at 1", signed(text, "version 7", "version 0")},
		{"malformed_version_negative", "malformed", nil, "negative version", signed(text, "version 7", "version -7")},
		{"malformed_version_too_large", "malformed", nil, "2^53+1, past the largest version", signed(text, "version 7", "version 9007199254740993")},
		{"malformed_version_hex", "malformed", nil, "hex is not decimal", signed(text, "version 7", "version 0x7")},
		{"malformed_expires_offset", "malformed", nil, "+00:00 instead of Z", signed(text, "2030-01-01T00:00:00Z", "2030-01-01T00:00:00+00:00")},
		{"malformed_expires_other_zone", "malformed", nil, "the same instant in another zone", signed(text, "2030-01-01T00:00:00Z", "2030-01-01T09:00:00+09:00")},
		{"malformed_expires_fraction", "malformed", nil, "fractional seconds", signed(text, "2030-01-01T00:00:00Z", "2030-01-01T00:00:00.000Z")},
		{"malformed_expires_lowercase", "malformed", nil, "lowercase t and z", signed(text, "2030-01-01T00:00:00Z", "2030-01-01t00:00:00z")},
		{"malformed_expires_date_only", "malformed", nil, "a date without time", signed(text, "2030-01-01T00:00:00Z", "2030-01-01")},
		{"malformed_policy_reordered", "malformed", nil, "approvals before clusters", signed(text, "policy clusters 2 approvals 2", "policy approvals 2 clusters 2")},
		{"malformed_policy_zero_clusters", "malformed", nil, "a claim needs at least one cluster", signed(text, "clusters 2", "clusters 0")},
		{"malformed_policy_clusters_too_many", "malformed", nil, "more than 100 clusters", signed(text, "clusters 2", "clusters 101")},
		{"malformed_policy_approvals_too_many", "malformed", nil, "more approvals than a bundle may list editors", signed(text, "approvals 2", "approvals 65")},
		{"malformed_policy_missing_number", "malformed", nil, "three fields instead of four", signed(text, "policy clusters 2 approvals 2", "policy clusters 2 approvals")},
		{"malformed_no_editors", "malformed", nil, "a bundle lists at least one editor", signed(text, aliceLine, "")},
		{"malformed_editor_line_short", "malformed", nil, "an editor line without its cosigning key", signed(text, " "+testAlice.Public.Cosign+"\n", "\n")},
		{"malformed_editor_label_uppercase", "malformed", nil, "labels are lowercase", signed(text, "editor alice", "editor Alice")},
		{"malformed_editor_sign_key_other_name", "malformed", nil, "alice's line carries bob's signing key", signed(text, testAlice.Public.Sign, testBob.Public.Sign)},
		{"malformed_editor_cosign_is_sign", "malformed", nil, "the cosigning key must be a separate key named alice.cosign", signed(text, testAlice.Public.Cosign, testAlice.Public.Sign)},
		{"malformed_editor_bad_recipient", "malformed", nil, "a recipient with a broken bech32 checksum", signed(text, testAlice.Public.Recipient, testAlice.Public.Recipient[:len(testAlice.Public.Recipient)-1]+"q")},
		{"malformed_editor_secret_key", "malformed", nil, "an age secret key where the recipient belongs (never quoted in the error)", signed(text, testAlice.Public.Recipient, testAgeAlice)},
		{"malformed_mixed_pq_classic", "malformed", nil, "a post-quantum and a classic editor: age cannot encrypt to both", signText(bundleText(newTestBundle(testHybridAlice))+bobLine, testNewsroom)},
		{"malformed_duplicate_label", "malformed", nil, "alice listed twice", signed(text, aliceLine, aliceLine+aliceLine)},
		{"malformed_editor_after_revoke", "malformed", nil, "revoke lines come last", signed(threeText, "revoke dave\n", "", "editor alice", "revoke dave\neditor alice")},
		{"malformed_revoke_unsorted", "malformed", nil, "revoked labels are sorted", signed(threeText, "revoke dave\nrevoke erin\n", "revoke erin\nrevoke dave\n")},
		{"malformed_revoke_duplicate", "malformed", nil, "a label revoked twice", signed(threeText, "revoke erin\n", "revoke dave\n")},
		{"malformed_revoke_listed_editor", "malformed", nil, "a label both listed and revoked", signed(threeText, "revoke dave\nrevoke erin\n", "revoke alice\nrevoke dave\nrevoke erin\n")},
		{"malformed_revoke_invalid_label", "malformed", nil, "a revoked label that no editor could have", signed(threeText, "revoke erin\n", "revoke Erin\n")},
		{"malformed_unknown_line", "malformed", nil, "a line no bundle has", signText(text+"comment hello\n", testNewsroom)},
		{"malformed_lines_reordered", "malformed", nil, "version before newsroom", signed(text, "newsroom "+testNewsroom.vkey+"\nversion 7\n", "version 7\nnewsroom "+testNewsroom.vkey+"\n")},
		{"malformed_missing_log", "malformed", nil, "no log key", signed(text, "log "+testLog.vkey+"\n", "")},
		{"malformed_log_key_invalid", "malformed", nil, "a log key that is not a verifier key", signed(text, "log "+testLog.vkey, "log "+testLog.skey)},
	}
	for i := range vs {
		vs[i].headers = []vheader{{"newsroom", testNewsroom.vkey}}
	}
	return vs
}

// mustSign signs a valid bundle with key, without SignBundle's check that
// key is the bundle's newsroom key.
func mustSign(b *Bundle, key testNoteKey) []byte { return signText(bundleText(b), key) }

// bogusSigLine returns a signature line with the key name and hash of
// line and a signature of zeros.
func bogusSigLine(line string) string {
	prefix, b64, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	name, b64, _ := strings.Cut(b64, " ")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		panic(err)
	}
	clear(raw[4:])
	return prefix + " " + name + " " + base64.StdEncoding.EncodeToString(raw) + "\n"
}

// flipSigChar changes the base64 character i of a note's signature.
func flipSigChar(msg []byte, i int) []byte {
	out := slices.Clone(msg)
	p := bytes.LastIndexByte(out, ' ') + 1 + i
	if out[p] == 'A' {
		out[p] = 'B'
	} else {
		out[p] = 'A'
	}
	return out
}

// paddingBitsSig sets an unused bit in the last base64 character of a
// note's signature, which decoders that are not strict ignore.
func paddingBitsSig(msg []byte) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	out := slices.Clone(msg)
	p := bytes.LastIndexByte(out, '=') - 1 // 68 bytes: one '=', 2 unused bits before it
	out[p] = alphabet[strings.IndexByte(alphabet, out[p])^1]
	return out
}

// Receipts.

var testReceipt = Receipt{
	TipID:  [TipIDSize]byte{0xfb, 0xff, 0xbf, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	SHA256: [32]byte{0: 0xab, 31: 0xcd},
	Length: 16384,
	Day:    "2026-03-14",
}

func mustSignReceipt(r *Receipt, key testNoteKey) []byte {
	msg, err := SignReceipt(r, key.signer())
	if err != nil {
		panic(err)
	}
	return msg
}

func runReceiptVector(h map[string][]string, body []byte) error {
	r, err := OpenReceipt(body, first(h, "log"))
	if err != nil {
		if r != nil {
			return fmt.Errorf("OpenReceipt returned a receipt with its error %w", err)
		}
		return err
	}
	if first(h, "log") == testLog.vkey {
		if again := mustSignReceipt(r, testLog); !bytes.Equal(again, body) {
			return fmt.Errorf("re-signing the opened receipt gives %q", again)
		}
	}
	return nil
}

func receiptVectors() []vector {
	msg := mustSignReceipt(&testReceipt, testLog)
	text := string(msg[:bytes.Index(msg, []byte("\n\n"))+1])
	id := testReceipt.TipIDString()
	hash := fmt.Sprintf("%x", testReceipt.SHA256)
	signed := func(oldNew ...string) []byte {
		t := text
		for i := 0; i < len(oldNew); i += 2 {
			t = replaceOnce(t, oldNew[i], oldNew[i+1])
		}
		return signText(t, testLog)
	}
	max := testReceipt
	max.Length = 1 << 40
	vs := []vector{
		{"ok", "ok", nil, "a receipt for a one-frame tip", msg},
		{"ok_max_length", "ok", nil, "the largest length, 2^40", mustSignReceipt(&max, testLog)},
		{"unknown_signer_other_log", "unknown_signer", nil, "signed by another key named like the log key", signText(text, testOtherLog)},
		{"unknown_signer_newsroom", "unknown_signer", nil, "signed by the newsroom key", signText(text, testNewsroom)},
		{"bad_signature_length_changed", "bad_signature", nil, "length changed after signing", bytes.Replace(msg, []byte("length 16384"), []byte("length 16385"), 1)},
		{"malformed_login_header", "malformed", nil, "a login's first line, signed by the log key", signed(ReceiptHeader, LoginHeader)},
		{"malformed_bundle_header", "malformed", nil, "a bundle's first line", signed(ReceiptHeader, BundleHeader)},
		{"malformed_two_signatures", "malformed", nil, "signed by the log key and the newsroom key", signText(text, testLog, testNewsroom)},
		{"malformed_repeated_signature", "malformed", nil, "the signature line twice", append(slices.Clip(msg), sigLine(msg)...)},
		{"malformed_signature_padding_bits", "malformed", nil, "nonzero unused bits in the signature's base64", paddingBitsSig(msg)},
		{"malformed_tip_padded", "malformed", nil, "base64url with padding", signed(id, id+"==")},
		{"malformed_tip_std_alphabet", "malformed", nil, "the standard base64 alphabet", signed(id, strings.NewReplacer("-", "+", "_", "/").Replace(id))},
		{"malformed_tip_short", "malformed", nil, "15 bytes", signed(id, id[:20])},
		{"malformed_tip_padding_bits", "malformed", nil, "nonzero unused bits in the id's last character", signed(id, id[:21]+"x")},
		{"malformed_sha256_uppercase", "malformed", nil, "uppercase hex", signed(hash, strings.ToUpper(hash))},
		{"malformed_sha256_short", "malformed", nil, "31 bytes", signed(hash, hash[:62])},
		{"malformed_length_zero", "malformed", nil, "a tip has bytes", signed("length 16384", "length 0")},
		{"malformed_length_negative", "malformed", nil, "negative length", signed("length 16384", "length -16384")},
		{"malformed_length_leading_zero", "malformed", nil, "not canonical", signed("length 16384", "length 016384")},
		{"malformed_length_plus", "malformed", nil, "not canonical", signed("length 16384", "length +16384")},
		{"malformed_length_too_large", "malformed", nil, "2^40+1", signed("length 16384", "length 1099511627777")},
		{"malformed_day_not_padded", "malformed", nil, "the month without its zero", signed("2026-03-14", "2026-3-14")},
		{"malformed_day_invalid", "malformed", nil, "February 30", signed("2026-03-14", "2026-02-30")},
		{"malformed_day_with_time", "malformed", nil, "a time, not a day", signed("2026-03-14", "2026-03-14T00:00:00Z")},
		{"malformed_day_slashes", "malformed", nil, "not YYYY-MM-DD", signed("2026-03-14", "2026/03/14")},
		{"malformed_missing_day", "malformed", nil, "no day line", signed("day 2026-03-14\n", "")},
		{"malformed_extra_line", "malformed", nil, "a line no receipt has", signText(text+"note hello\n", testLog)},
		{"malformed_lines_reordered", "malformed", nil, "sha256 before tip", signed("tip "+id+"\nsha256 "+hash+"\n", "sha256 "+hash+"\ntip "+id+"\n")},
		{"malformed_double_space", "malformed", nil, "two spaces", signed("length 16384", "length  16384")},
	}
	for i := range vs {
		vs[i].headers = []vheader{{"log", testLog.vkey}}
	}
	return vs
}

// Logins.

var testLogin = Login{
	Origin:  "https://news.example",
	Nonce:   [NonceSize]byte{0: 0xfb, 1: 0xff, 2: 0xbf, 31: 1},
	Expires: testExpires.AddDate(-4, 0, 0),
}

func mustSignLogin(l *Login, key testNoteKey) []byte {
	msg, err := SignLogin(l, key.signer())
	if err != nil {
		panic(err)
	}
	return msg
}

// loginBundle is a bundle holding only the editors' signing keys, which is
// all OpenLogin reads.
func loginBundle(vkeys []string) *Bundle {
	b := &Bundle{}
	for _, k := range vkeys {
		b.Editors = append(b.Editors, Editor{Label: k[:strings.IndexByte(k, '+')], Sign: k})
	}
	return b
}

func runLoginVector(h map[string][]string, body []byte) error {
	l, err := OpenLogin(body, loginBundle(h["editor"]))
	if err != nil {
		if l != nil {
			return fmt.Errorf("OpenLogin returned a login with its error %w", err)
		}
		return err
	}
	for _, k := range []testNoteKey{newTestNoteKey("alice", ""), newTestNoteKey("bob", "")} {
		if k.name == l.Editor {
			again := *l
			if msg := mustSignLogin(&again, k); !bytes.Equal(msg, body) {
				return fmt.Errorf("re-signing the opened login gives %q", msg)
			}
		}
	}
	return nil
}

func loginVectors() []vector {
	alice, bob, carol := newTestNoteKey("alice", ""), newTestNoteKey("bob", ""), newTestNoteKey("carol", "")
	aliceCosign := newTestNoteKey("alice.cosign", "")
	msg := mustSignLogin(&testLogin, alice)
	text := string(msg[:bytes.Index(msg, []byte("\n\n"))+1])
	nonce := strings.Fields(text)[4]
	signed := func(oldNew ...string) []byte {
		t := text
		for i := 0; i < len(oldNew); i += 2 {
			t = replaceOnce(t, oldNew[i], oldNew[i+1])
		}
		return signText(t, alice)
	}
	vs := []vector{
		{"ok", "ok", nil, "alice's answer to a challenge", msg},
		{"ok_bob", "ok", nil, "bob's answer", mustSignLogin(&testLogin, bob)},
		{"unknown_signer_cosign_key", "unknown_signer", nil, "signed with alice's cosigning key, which is not for logins", signText(text, aliceCosign)},
		{"unknown_signer_not_in_bundle", "unknown_signer", nil, "carol is not an editor of the bundle (or was revoked)", signText(text, carol)},
		{"unknown_signer_log_key", "unknown_signer", nil, "signed by the server's log key", signText(text, testLog)},
		{"bad_signature_origin_changed", "bad_signature", nil, "origin changed after signing", bytes.Replace(msg, []byte("news.example"), []byte("evil.example"), 1)},
		{"malformed_receipt_header", "malformed", nil, "a receipt's first line, signed by alice", signed(LoginHeader, ReceiptHeader)},
		{"malformed_two_signatures", "malformed", nil, "signed by alice and bob", signText(text, alice, bob)},
		{"malformed_repeated_signature", "malformed", nil, "the signature line twice", append(slices.Clip(msg), sigLine(msg)...)},
		{"malformed_nonce_short", "malformed", nil, "31 bytes", signed(nonce, nonce[:41])},
		{"malformed_nonce_padded", "malformed", nil, "base64url with padding", signed(nonce, nonce+"=")},
		{"malformed_nonce_std_alphabet", "malformed", nil, "the standard base64 alphabet", signed(nonce, strings.NewReplacer("-", "+", "_", "/").Replace(nonce))},
		{"malformed_nonce_hex", "malformed", nil, "hex", signed(nonce, fmt.Sprintf("%x", testLogin.Nonce))},
		{"malformed_expires_fraction", "malformed", nil, "fractional seconds", signed("00:00:00Z", "00:00:00.5Z")},
		{"malformed_expires_offset", "malformed", nil, "+00:00 instead of Z", signed("00:00:00Z", "00:00:00+00:00")},
		{"malformed_missing_expires", "malformed", nil, "no expiry", signed("expires 2026-01-01T00:00:00Z\n", "")},
		{"malformed_origin_with_space", "malformed", nil, "an origin is one field", signed("https://news.example", "https://news.example /")},
		{"malformed_origin_empty", "malformed", nil, "an empty field", signed("origin https://news.example", "origin ")},
		{"malformed_extra_line", "malformed", nil, "a line no login has", signText(text+"editor alice\n", alice)},
		{"malformed_lines_reordered", "malformed", nil, "nonce before origin", signed("origin https://news.example\nnonce "+nonce+"\n", "nonce "+nonce+"\norigin https://news.example\n")},
	}
	for i := range vs {
		vs[i].headers = []vheader{{"editor", alice.vkey}, {"editor", bob.vkey}}
	}
	return vs
}

// Tip plaintexts.

func runTipVector(h map[string][]string, body []byte) error {
	tip, err := ParseTip(body)
	if err != nil {
		if tip != nil {
			return fmt.Errorf("ParseTip returned a tip with its error %w", err)
		}
		return err
	}
	return checkParsedTip(tip, body)
}

// checkParsedTip checks that MarshalTip of a parsed tip is a prefix of its
// input and that only zeros follow.
func checkParsedTip(tip *Tip, plain []byte) error {
	again, err := MarshalTip(tip)
	if err != nil {
		return fmt.Errorf("MarshalTip of a parsed tip: %v", err)
	}
	rest, ok := bytes.CutPrefix(plain, again)
	if !ok {
		return fmt.Errorf("MarshalTip of the parsed tip is %q, not a prefix of the input", again)
	}
	if bytes.ContainsFunc(rest, func(r rune) bool { return r != 0 }) {
		return errors.New("non-zero bytes after the tip")
	}
	return nil
}

func tipVectors() []vector {
	h := TipHeader + "\n"
	withAtt := mustMarshalTip(&Tip{Text: "Copper concentrate, Hyesan mine, trucks at night.", Attachments: []Attachment{
		{Name: "truck.jpg", Type: "image/jpeg", Data: []byte("\xff\xd8\xff\xe0 not really a jpeg")},
		{Name: "notes.txt", Type: "text/plain", Data: []byte("3 trucks\n")},
	}})
	manifest := func(m string) []byte { return []byte(h + m + "\n") }
	att := func(name, typ string, size int) string {
		return fmt.Sprintf(`{"text":"","attachments":[{"name":%s,"type":%s,"size":%d}]}`, name, typ, size)
	}
	many := `{"text":"","attachments":[` + strings.TrimSuffix(strings.Repeat(`{"name":"a","type":"b","size":0},`, MaxAttachments+1), ",") + `]}`
	return []vector{
		{"ok_text_only", "ok", nil, "text, no attachment, no padding", mustMarshalTip(&Tip{Text: "Trucks leave the mine at 2am."})},
		{"ok_empty", "ok", nil, "an empty tip", manifest(`{"text":"","attachments":[]}`)},
		{"ok_attachments", "ok", nil, "two attachments, their bytes in manifest order", withAtt},
		{"ok_padded", "ok", nil, "zero bytes of padding after the last attachment", append(slices.Clip(withAtt), make([]byte, 100)...)},
		{"ok_escaped", "ok", nil, "the manifest as Go's encoding/json writes it: <, > and & escaped, non-ASCII as is", mustMarshalTip(&Tip{Text: "<b>혜산</b> & \"more\"\n\t"})},
		{"ok_empty_attachment", "ok", nil, "a zero-byte attachment", manifest(att(`"empty.bin"`, `"application/octet-stream"`, 0))},
		{"malformed_padding_nonzero", "malformed", nil, "a non-zero byte in the padding", append(append(slices.Clip(withAtt), make([]byte, 10)...), 1)},
		{"malformed_size_past_end", "malformed", nil, "an attachment claims more bytes than follow", manifest(att(`"a.jpg"`, `"image/jpeg"`, 1))},
		{"malformed_size_negative", "malformed", nil, "negative size", manifest(att(`"a.jpg"`, `"image/jpeg"`, -1))},
		{"malformed_size_fraction", "malformed", nil, "sizes are integers", manifest(`{"text":"","attachments":[{"name":"a","type":"b","size":0.5}]}`)},
		{"malformed_name_empty", "malformed", nil, "an attachment needs a name", manifest(att(`""`, `"image/jpeg"`, 0))},
		{"malformed_name_slash", "malformed", nil, "a path, not a file name", manifest(att(`"../etc/passwd"`, `"text/plain"`, 0))},
		{"malformed_name_backslash", "malformed", nil, "a Windows path", manifest(att(`"..\\evil.exe"`, `"text/plain"`, 0))},
		{"malformed_name_nul", "malformed", nil, "a NUL byte", manifest(att(`"a\u0000.jpg"`, `"image/jpeg"`, 0))},
		{"malformed_name_dot", "malformed", nil, "the current directory", manifest(att(`"."`, `"text/plain"`, 0))},
		{"malformed_name_dotdot", "malformed", nil, "the parent directory", manifest(att(`".."`, `"text/plain"`, 0))},
		{"malformed_name_too_long", "malformed", nil, "a 256-byte name", manifest(att(`"`+strings.Repeat("a", MaxNameLength+1)+`"`, `"text/plain"`, 0))},
		{"malformed_type_empty", "malformed", nil, "an attachment needs a type", manifest(att(`"a.jpg"`, `""`, 0))},
		{"malformed_too_many_attachments", "malformed", nil, "33 attachments", manifest(many)},
		{"malformed_unknown_field", "malformed", nil, "a manifest field no tip has", manifest(`{"text":"","attachments":[],"place":"Hyesan"}`)},
		{"malformed_attachments_null", "malformed", nil, "attachments is a list, even empty", manifest(`{"text":"","attachments":null}`)},
		{"malformed_attachments_missing", "malformed", nil, "no attachments field", manifest(`{"text":""}`)},
		{"malformed_text_missing", "malformed", nil, "no text field", manifest(`{"attachments":[]}`)},
		{"malformed_manifest_whitespace", "malformed", nil, "a space: not the canonical manifest", manifest(`{"text":"", "attachments":[]}`)},
		{"malformed_manifest_key_case", "malformed", nil, "Text, not text (encoding/json alone would match it)", manifest(`{"Text":"","attachments":[]}`)},
		{"malformed_manifest_repeated_key", "malformed", nil, "text twice (encoding/json alone would keep the last)", manifest(`{"text":"a","text":"","attachments":[]}`)},
		{"malformed_manifest_reordered", "malformed", nil, "attachments before text", manifest(`{"attachments":[],"text":""}`)},
		{"malformed_manifest_trailing_brace", "malformed", nil, "a stray closing brace after the manifest", manifest(`{"text":"","attachments":[]}}`)},
		{"malformed_manifest_unescaped", "malformed", nil, "a raw < where encoding/json writes \\u003c", manifest(`{"text":"<","attachments":[]}`)},
		{"malformed_manifest_escaped_ascii", "malformed", nil, "\\u0061 for a", manifest(`{"text":"\u0061","attachments":[]}`)},
		{"malformed_text_invalid_utf8", "malformed", nil, "invalid UTF-8 in the text", manifest("{\"text\":\"\xff\",\"attachments\":[]}")},
		{"malformed_header_v2", "malformed", nil, "a v2 tip must carry a reply address", []byte("fieldtip/tip/v2\n" + `{"text":"","attachments":[]}` + "\n")},
		{"malformed_header_v3", "malformed", nil, "a future version", []byte("fieldtip/tip/v3\n" + `{"text":"","attachments":[],` + vectorReply + `}` + "\n")},
		{"ok_reply_hybrid", "ok", nil, "v2: a post-quantum reply recipient and the mailbox id", mustMarshalTip(&Tip{Text: "Trucks leave the mine at 2am.", Reply: vectorAddress(StanzaHybrid)})},
		{"ok_reply_x25519", "ok", nil, "v2: a classic reply recipient and the mailbox id", mustMarshalTip(&Tip{Text: "Trucks leave the mine at 2am.", Reply: vectorAddress(StanzaX25519)})},
		{"malformed_reply_in_v1", "malformed", nil, "a v1 manifest has no reply member", manifest(`{"text":"","attachments":[],` + vectorReply + `}`)},
		{"malformed_reply_null", "malformed", nil, "v2: reply is an object", []byte("fieldtip/tip/v2\n" + `{"text":"","attachments":[],"reply":null}` + "\n")},
		{"malformed_reply_mailbox_short", "malformed", nil, "v2: a mailbox id of 31 bytes", []byte("fieldtip/tip/v2\n" + `{"text":"","attachments":[],"reply":{"recipient":"` + vectorAddress(StanzaX25519).Recipient + `","mailbox":"` + vectorAddress(StanzaX25519).Mailbox.String()[:42] + `"}}` + "\n")},
		{"malformed_no_manifest_newline", "malformed", nil, "the manifest line does not end", []byte(h + `{"text":"","attachments":[]}`)},
		{"malformed_crlf", "malformed", nil, "CRLF after the header", []byte(TipHeader + "\r\n" + `{"text":"","attachments":[]}` + "\n")},
		{"malformed_empty", "malformed", nil, "no bytes", nil},
		{"malformed_zeros", "malformed", nil, "only padding", make([]byte, 64)},
	}
}

// vectorAddress is the reply address of the test codename at the example
// newsroom, derived at the tests' cheap cost.
func vectorAddress(stanzaType string) *ReplyAddress {
	a, err := testReplyKeys().Address(stanzaType)
	if err != nil {
		panic(err)
	}
	return a
}

var vectorReply = `"reply":{"recipient":"age14ayc4rw94afalzd0r4duy7chcjhvzepn85pywnp5hd8sag4w0etqjvs5ly","mailbox":"G6FGz0GlNaJcjlra3TjIjUDkDbecmTnzwq7YBzAM__Y"}`

func mustMarshalTip(t *Tip) []byte {
	b, err := MarshalTip(t)
	if err != nil {
		panic(err)
	}
	return b
}

// Sealed tips.

func runCiphertextVector(h map[string][]string, body []byte) error {
	count, err := strconv.Atoi(first(h, "count"))
	if err != nil {
		return fmt.Errorf("vector: count: %v", err)
	}
	checkErr := CheckCiphertext(body, first(h, "stanza"), count)
	if id := first(h, "identity"); id != "" {
		identity, err := age.ParseX25519Identity(id)
		var ids []age.Identity
		if err == nil {
			ids = append(ids, identity)
		} else if hid, err := age.ParseHybridIdentity(id); err == nil {
			ids = append(ids, hid)
		} else {
			return fmt.Errorf("vector: identity: %v", err)
		}
		tip, err := Open(body, ids...)
		switch first(h, "open") {
		case "ok":
			if err != nil {
				return fmt.Errorf("Open: %v, want the tip", err)
			}
			if tip.Text != first(h, "text") {
				return fmt.Errorf("Open: text %q, want %q", tip.Text, first(h, "text"))
			}
		case "error":
			if err == nil || tip != nil {
				return fmt.Errorf("Open = %v, %v, want no tip and an error", tip, err)
			}
		default:
			return fmt.Errorf("vector: open: %q is neither ok nor error", first(h, "open"))
		}
	}
	return checkErr
}

func ciphertextVectors() []vector {
	seal := func(text string, editors ...*EditorKey) []byte {
		ct, err := Seal(&Tip{Text: text}, recipientsOf(editors...), 8192)
		if err != nil {
			panic(err)
		}
		return ct
	}
	encryptTo := func(plain string, rs ...age.Recipient) []byte {
		var b bytes.Buffer
		if err := encrypt(&b, []byte(plain), rs); err != nil {
			panic(err)
		}
		return b.Bytes()
	}
	const text = "Trucks leave the mine at 2am."
	one := seal(text, testAlice)
	three := seal(text, testAlice, testBob, testCarol)
	hybrid := seal(text, testHybridAlice, testHybridBob)
	hdr, err := age.ExtractHeader(bytes.NewReader(one))
	if err != nil {
		panic(err)
	}
	small := encryptTo("x", recipientsOf(testAlice)...)
	scryptR, err := age.NewScryptRecipient("passphrase")
	if err != nil {
		panic(err)
	}
	scryptR.SetWorkFactor(10)
	x25519 := func(count int) []vheader {
		return []vheader{{"stanza", StanzaX25519}, {"count", strconv.Itoa(count)}}
	}
	opens := func(hs []vheader, id, result string) []vheader {
		hs = append(hs, vheader{"identity", id}, vheader{"open", result})
		if result == "ok" {
			hs = append(hs, vheader{"text", text})
		}
		return hs
	}
	return []vector{
		{"ok_x25519_one", "ok", opens(x25519(1), testAgeAlice, "ok"), "one 8 KiB frame for one classic editor", one},
		{"ok_x25519_three", "ok", opens(x25519(3), testAgeCarol, "ok"), "one 8 KiB frame for three classic editors", three},
		{"ok_hybrid_two", "ok", opens([]vheader{{"stanza", StanzaHybrid}, {"count", "2"}}, testAgeHybridBob, "ok"), "one 8 KiB frame for two post-quantum editors", hybrid},
		{"ok_truncated_one_byte", "ok", opens(x25519(1), testAgeAlice, "error"), "a byte short: the structure is fine, decryption fails and Open returns no tip", one[:len(one)-1]},
		{"ok_unpadded", "ok", x25519(1), "an age file that Seal did not pad: structure is all CheckCiphertext sees", small},
		{"bad_ciphertext_wrong_count", "bad_ciphertext", x25519(2), "three stanzas for a bundle of two editors", three},
		{"bad_ciphertext_wrong_type", "bad_ciphertext", x25519(2), "post-quantum stanzas for a classic bundle", hybrid},
		{"bad_ciphertext_classic_for_hybrid", "bad_ciphertext", []vheader{{"stanza", StanzaHybrid}, {"count", "1"}}, "a classic stanza for a post-quantum bundle", small},
		{"bad_ciphertext_scrypt", "bad_ciphertext", x25519(1), "passphrase-encrypted", encryptTo("x", scryptR)},
		{"bad_ciphertext_header_only", "bad_ciphertext", x25519(1), "no payload", hdr},
		{"bad_ciphertext_short_nonce", "bad_ciphertext", x25519(1), "10 bytes of the 16-byte nonce", one[:len(hdr)+10]},
		{"bad_ciphertext_short_tag", "bad_ciphertext", x25519(1), "a nonce and 15 bytes: shorter than one chunk's tag", one[:len(hdr)+16+15]},
		{"bad_ciphertext_empty", "bad_ciphertext", x25519(1), "no bytes", nil},
		{"bad_ciphertext_garbage", "bad_ciphertext", x25519(1), "not an age file", []byte("Trucks leave the mine at 2am.\n")},
		{"bad_ciphertext_armored", "bad_ciphertext", x25519(1), "ASCII armor: uploads are binary", armored(small)},
		{"bad_ciphertext_version", "bad_ciphertext", x25519(1), "a future age version line", bytes.Replace(small, []byte("age-encryption.org/v1"), []byte("age-encryption.org/v2"), 1)},
		{"bad_ciphertext_stanza_double_space", "bad_ciphertext", x25519(1), "two spaces in a stanza line", bytes.Replace(small, []byte("-> X25519 "), []byte("-> X25519  "), 1)},
	}
}

func armored(b []byte) []byte {
	var s strings.Builder
	s.WriteString("-----BEGIN AGE ENCRYPTED FILE-----\n")
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 64 {
		s.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	s.WriteString(enc + "\n-----END AGE ENCRYPTED FILE-----\n")
	return []byte(s.String())
}

// Key files.

func runEditorKeyVector(h map[string][]string, body []byte) error {
	k, err := ParseEditorKey(body)
	if err != nil {
		if k != nil {
			return fmt.Errorf("ParseEditorKey returned a key with its error %w", err)
		}
		return err
	}
	if !bytes.Equal(k.Marshal(), body) {
		return fmt.Errorf("Marshal of the parsed key is %q", k.Marshal())
	}
	if pub := oneLine(MarshalEditorPublic(k.Public)); first(h, "public") != pub {
		return fmt.Errorf("public half %q, want %q", pub, first(h, "public"))
	}
	return nil
}

func editorKeyText(label, ageID, sign, cosign string) []byte {
	return fmt.Appendf(nil, "%s\nlabel %s\nage %s\nsign %s\ncosign %s\n", EditorKeyHeader, label, ageID, sign, cosign)
}

func editorKeyVectors() []vector {
	sign, cosign := newTestNoteKey("alice", ""), newTestNoteKey("alice.cosign", "")
	bob := newTestNoteKey("bob", "")
	classic := editorKeyText("alice", testAgeAlice, sign.skey, cosign.skey)
	mk := func(name, comment string, text []byte) vector {
		return vector{name, "malformed", nil, comment, text}
	}
	change := func(old, new string) []byte { return []byte(replaceOnce(string(classic), old, new)) }
	vs := []vector{
		{"ok_classic", "ok", []vheader{{"public", oneLine(MarshalEditorPublic(testAlice.Public))}}, "an X25519 age identity", classic},
		{"ok_hybrid", "ok", []vheader{{"public", oneLine(MarshalEditorPublic(testHybridAlice.Public))}}, "a post-quantum age identity", editorKeyText("alice", testAgeHybridAlice, sign.skey, cosign.skey)},
		mk("malformed_header_public", "the public key file's first line", change(EditorKeyHeader, EditorPubHeader)),
		mk("malformed_label_invalid", "an uppercase label", change("label alice", "label Alice")),
		mk("malformed_sign_key_other_name", "bob's signing key under label alice", change(sign.skey, bob.skey)),
		mk("malformed_cosign_not_cosign", "the signing key as the cosigning key (named alice, not alice.cosign)", change(cosign.skey, sign.skey)),
		mk("malformed_sign_key_hash", "a signing key whose hash does not match", change(sign.skey, strings.Replace(sign.skey, sign.skey[len("PRIVATE+KEY+alice+"):len("PRIVATE+KEY+alice+")+8], "00000000", 1))),
		mk("malformed_sign_verifier_key", "a verifier key where the signer key belongs", change(sign.skey, sign.vkey)),
		mk("malformed_age_recipient", "a recipient where the identity belongs", change(testAgeAlice, testAlice.Public.Recipient)),
		mk("malformed_age_lowercase", "a lowercase identity", change(testAgeAlice, strings.ToLower(testAgeAlice))),
		mk("malformed_extra_line", "a line no key file has", append(slices.Clip(classic), "comment x\n"...)),
		mk("malformed_missing_cosign", "no cosigning key", change("cosign "+cosign.skey+"\n", "")),
		mk("malformed_double_space", "two spaces", change("label alice", "label  alice")),
		mk("malformed_no_final_newline", "the last line does not end", classic[:len(classic)-1]),
	}
	return vs
}

func oneLine(b []byte) string {
	return strings.ReplaceAll(strings.TrimSuffix(string(b), "\n"), "\n", `\n`)
}

func runEditorPubVector(h map[string][]string, body []byte) error {
	e, err := ParseEditorPublic(body)
	if err != nil {
		return err
	}
	if !bytes.Equal(MarshalEditorPublic(e), body) {
		return fmt.Errorf("MarshalEditorPublic of the parsed key is %q", MarshalEditorPublic(e))
	}
	return nil
}

func editorPubVectors() []vector {
	pub := MarshalEditorPublic(testAlice.Public)
	change := func(old, new string) []byte { return []byte(replaceOnce(string(pub), old, new)) }
	mk := func(name, comment string, text []byte) vector {
		return vector{name, "malformed", nil, comment, text}
	}
	return []vector{
		{"ok_classic", "ok", nil, "alice's public keys, X25519", pub},
		{"ok_hybrid", "ok", nil, "alice's public keys, post-quantum", MarshalEditorPublic(testHybridAlice.Public)},
		mk("malformed_header_secret", "the secret key file's first line", change(EditorPubHeader, EditorKeyHeader)),
		mk("malformed_age_secret_key", "the age secret key pasted where the recipient belongs (never quoted in the error)", change(testAlice.Public.Recipient, testAgeAlice)),
		mk("malformed_sign_secret_key", "the signing secret key pasted where the verifier key belongs", change(testAlice.Public.Sign, newTestNoteKey("alice", "").skey)),
		mk("malformed_sign_other_name", "bob's verifier key under label alice", change(testAlice.Public.Sign, testBob.Public.Sign)),
		mk("malformed_cosign_is_sign", "the signing key as the cosigning key", change(testAlice.Public.Cosign, testAlice.Public.Sign)),
		mk("malformed_label_invalid", "a label with a space is two fields", change("label alice", "label al ice")),
		mk("malformed_bad_recipient", "a broken bech32 checksum", change(testAlice.Public.Recipient, testAlice.Public.Recipient[:len(testAlice.Public.Recipient)-1]+"q")),
	}
}

func runSignerKeyVector(h map[string][]string, body []byte) error {
	k, err := ParseSignerKey(first(h, "header"), body)
	if err != nil {
		return err
	}
	if !bytes.Equal(k.Marshal(), body) {
		return fmt.Errorf("Marshal of the parsed key is %q", k.Marshal())
	}
	if k.Verifier != first(h, "verifier") {
		return fmt.Errorf("verifier %q, want %q", k.Verifier, first(h, "verifier"))
	}
	return nil
}

func signerKeyVectors() []vector {
	newsroom := fmt.Appendf(nil, "%s\nsign %s\n", NewsroomKeyHeader, testNewsroom.skey)
	log := fmt.Appendf(nil, "%s\nsign %s\n", LogKeyHeader, testLog.skey)
	as := func(header, verifier string) []vheader {
		return []vheader{{"header", header}, {"verifier", verifier}}
	}
	return []vector{
		{"ok_newsroom", "ok", as(NewsroomKeyHeader, testNewsroom.vkey), "the newsroom key file's plaintext", newsroom},
		{"ok_log", "ok", as(LogKeyHeader, testLog.vkey), "the server's log key file", log},
		{"malformed_log_as_newsroom", "malformed", as(NewsroomKeyHeader, ""), "a log key file read as the newsroom key", log},
		{"malformed_verifier_key", "malformed", as(LogKeyHeader, ""), "a verifier key, not a signer key", fmt.Appendf(nil, "%s\nsign %s\n", LogKeyHeader, testLog.vkey)},
		{"malformed_extra_line", "malformed", as(LogKeyHeader, ""), "a second key", fmt.Appendf(nil, "%s\nsign %s\nsign %s\n", LogKeyHeader, testLog.skey, testNewsroom.skey)},
		{"malformed_no_key", "malformed", as(LogKeyHeader, ""), "a header alone", []byte(LogKeyHeader + "\n")},
	}
}

// testWorkFactor keeps scrypt cheap in tests (age's default is 18).
const testWorkFactor = 10

func runKeyFileVector(h map[string][]string, body []byte) error {
	plain, err := OpenWithPassphrase(body, first(h, "passphrase"))
	if err != nil {
		return err
	}
	if _, err := ParseEditorKey(plain); err != nil {
		return fmt.Errorf("the opened key file does not parse: %v", err)
	}
	return nil
}

func keyFileVectors() []vector {
	sealed, err := SealWithPassphrase(testAlice.Marshal(), "correct horse battery staple", testWorkFactor)
	if err != nil {
		panic(err)
	}
	return []vector{
		{"ok", "ok", []vheader{{"passphrase", "correct horse battery staple"}}, "alice's editor key file, scrypt work factor 10 (files use 18)", sealed},
		{"incorrect_passphrase", "incorrect_passphrase", []vheader{{"passphrase", "correct horse battery stapler"}}, "one character more", sealed},
	}
}
