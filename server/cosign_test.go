package server

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// cosign adds k's tlog-cosignature/v1 line to signed, a note the log key
// signed, as an editor's newsdesk does.
func cosign(tb testing.TB, logKey *crypto.SignerKey, signed []byte, k *crypto.EditorKey) []byte {
	tb.Helper()
	cs, err := k.CosignatureSigner()
	if err != nil {
		tb.Fatal(err)
	}
	return addSignature(tb, logKey, signed, cs)
}

// addSignature adds a signature line by s to signed, which must verify
// with logKey.
func addSignature(tb testing.TB, logKey *crypto.SignerKey, signed []byte, s note.Signer) []byte {
	tb.Helper()
	v, err := note.NewVerifier(logKey.Verifier)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		tb.Fatalf("note.Open(%q) = %v", signed, err)
	}
	out, err := note.Sign(n, s)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// cosignVerifier is the tlog-cosignature verifier of k.
func cosignVerifier(tb testing.TB, k *crypto.EditorKey) note.Verifier {
	tb.Helper()
	v, err := crypto.CosignatureVerifier(k.Public.Cosign)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// postCosignature sends a POST /cosignature with the session token (none
// if empty).
func (r *logRun) postCosignature(tb testing.TB, token string, body []byte) (int, []byte) {
	tb.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return httpDo(tb, http.MethodPost, r.origin+protocol.PathCosignature, auth, body)
}

// cosigned answers GET /cosigned, which must be 200.
func (r *logRun) cosigned(tb testing.TB) string {
	tb.Helper()
	status, body := httpDo(tb, http.MethodGet, r.origin+protocol.PathCosigned, "", nil)
	if status != http.StatusOK {
		tb.Fatalf("GET /cosigned = %d %s", status, body)
	}
	return string(body)
}

// TestCosign: two editors cosign the latest checkpoint and one an older
// one; GET /cosigned counts them, and GET /cosigned/<size> serves a note
// that torchwood verifies with a policy requiring the log key and both
// cosignatures. A later cosignature replaces the editor's earlier one.
func TestCosign(t *testing.T) {
	h := newLogHarness(t, 3)
	r := h.start(nil)
	t0, t1 := r.login(t, h.editors[0]), r.login(t, h.editors[1])
	tree1, cp1 := r.checkpoint(t)
	for range 2 {
		r.logged(t, t0, newEvent(t, h.editors[0], h.bundle, tree1, nil))
	}
	tree3, cp3 := r.checkpoint(t)
	if tree1.N != 1 || tree3.N != 3 {
		t.Fatalf("checkpoints of sizes %d and %d, want 1 and 3", tree1.N, tree3.N)
	}
	if got := r.cosigned(t); got != "" {
		t.Fatalf("GET /cosigned before any cosignature = %q, want empty", got)
	}
	for _, c := range []struct {
		token string
		cp    []byte
		k     *crypto.EditorKey
	}{{t1, cp3, h.editors[1]}, {t0, cp3, h.editors[0]}, {t0, cp1, h.editors[0]}, {t0, cp3, h.editors[0]}} {
		status, body := r.postCosignature(t, c.token, cosign(t, h.logKey, c.cp, c.k))
		if status != http.StatusOK || string(body) != "{}\n" {
			t.Fatalf("POST /cosignature (%s) = %d %s, want 200 {}", c.k.Label, status, body)
		}
	}
	if got, want := r.cosigned(t), "3 2\n1 1\n"; got != want {
		t.Errorf("GET /cosigned = %q, want %q", got, want)
	}

	logV, err := note.NewVerifier(h.logKey.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	logPolicy := torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(logV.Name()), torchwood.SingleVerifierPolicy(logV))
	cosigners := func(ks ...*crypto.EditorKey) torchwood.Policy {
		var ps []torchwood.Policy
		for _, k := range ks {
			ps = append(ps, torchwood.SingleVerifierPolicy(cosignVerifier(t, k)))
		}
		return torchwood.ThresholdPolicy(2, logPolicy, torchwood.ThresholdPolicy(len(ps), ps...))
	}
	status, body := httpDo(t, http.MethodGet, fmt.Sprintf("%s%s/%d", r.origin, protocol.PathCosigned, 3), "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /cosigned/3 = %d %s", status, body)
	}
	c, n, err := torchwood.VerifyCheckpoint(body, cosigners(h.editors[0], h.editors[1]))
	if err != nil || c.Tree != tree3 || len(n.Sigs) != 3 {
		t.Fatalf("GET /cosigned/3 does not verify with the log key and both cosignatures: %v, %v, %d signatures\n%s", err, c.Tree, len(n.Sigs), body)
	}
	if !bytes.HasPrefix(body, cp3) {
		t.Errorf("GET /cosigned/3 does not start with the log's signed checkpoint")
	}
	lines := strings.Split(strings.TrimSuffix(string(body[len(cp3):]), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "— editor-0.cosign ") || !strings.HasPrefix(lines[1], "— editor-1.cosign ") {
		t.Errorf("cosignature lines %q, want editor-0's then editor-1's, one each", lines)
	}
	if _, _, err := torchwood.VerifyCheckpoint(body, cosigners(h.editors[0], h.editors[2])); err == nil {
		t.Errorf("GET /cosigned/3 verifies with a policy requiring editor-2, who never cosigned")
	}
	status, body = httpDo(t, http.MethodGet, r.origin+protocol.PathCosigned+"/1", "", nil)
	if c, _, err := torchwood.VerifyCheckpoint(body, cosigners(h.editors[0])); status != http.StatusOK || err != nil || c.Tree != tree1 {
		t.Errorf("GET /cosigned/1 = %d, %v, %v; want size 1 cosigned by editor-0", status, c.Tree, err)
	}
	for path, want := range map[string]int{
		"/2":    http.StatusNotFound,
		"/0":    http.StatusNotFound,
		"/03":   http.StatusBadRequest,
		"/+3":   http.StatusBadRequest,
		"/size": http.StatusBadRequest,
		"/-1":   http.StatusBadRequest,
	} {
		if status, _ := httpDo(t, http.MethodGet, r.origin+protocol.PathCosigned+path, "", nil); status != want {
			t.Errorf("GET /cosigned%s = %d, want %d", path, status, want)
		}
	}
}

// TestCosignRefusals: every kind of bad cosignature is refused with its
// typed error, and stores nothing.
func TestCosignRefusals(t *testing.T) {
	h := newLogHarness(t, 3)
	r := h.start(nil)
	t0, t2 := r.login(t, h.editors[0]), r.login(t, h.editors[2])
	tree1, cp1 := r.checkpoint(t)
	r.logged(t, t0, newEvent(t, h.editors[0], h.bundle, tree1, nil))
	tree, cp := r.checkpoint(t)
	// One cosignature stored, so "stores nothing" has something to keep.
	if status, body := r.postCosignature(t, t0, cosign(t, h.logKey, cp1, h.editors[0])); status != http.StatusOK {
		t.Fatalf("POST /cosignature = %d %s", status, body)
	}
	before := r.cosigned(t)

	sign := func(text string, k *crypto.SignerKey) []byte {
		return must(note.Sign(&note.Note{Text: text}, k.Signer))
	}
	signTree := func(tr tlog.Tree) []byte { return must(signCheckpoint(h.logKey.Signer, tr)) }
	otherLog := newSignerKey(t, crypto.LogKeyHeader, "other-log")
	sameName := newSignerKey(t, crypto.LogKeyHeader, DefaultLogName)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	strangerSigner := must(torchwood.NewCosignatureSigner(crypto.CosignName(h.editors[0].Label), stranger))
	good := cosign(t, h.logKey, cp, h.editors[0])
	// editor-0's cosignature line of cp1, put under cp.
	oldLine := cosign(t, h.logKey, cp1, h.editors[0])[len(cp1):]
	wrongRoot := tree
	wrongRoot.Hash[0] ^= 1
	text := func(origin string, tr tlog.Tree) string { return fmt.Sprintf("%s\n%d\n%s\n", origin, tr.N, tr.Hash) }

	for _, tc := range []struct {
		name   string
		token  string
		body   []byte
		status int
		code   protocol.Code
	}{
		{"no_session", "", good, http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"bad_token", "AAAA", good, http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"other_editors_key", t0, cosign(t, h.logKey, cp, h.editors[1]), http.StatusForbidden, protocol.CodeUnauthorized},
		{"other_editors_session", t2, good, http.StatusForbidden, protocol.CodeUnauthorized},
		{"stranger_key_same_name", t0, addSignature(t, h.logKey, cp, strangerSigner), http.StatusForbidden, protocol.CodeUnauthorized},
		{"cosignature_of_another_checkpoint", t0, append(bytes.Clone(cp), oldLine...), http.StatusForbidden, protocol.CodeUnauthorized},
		{"wrong_root", t0, cosign(t, h.logKey, signTree(wrongRoot), h.editors[0]), http.StatusConflict, protocol.CodeConflict},
		{"beyond_the_log", t0, cosign(t, h.logKey, signTree(tlog.Tree{N: tree.N + 1, Hash: tree.Hash}), h.editors[0]), http.StatusConflict, protocol.CodeConflict},
		{"size_zero", t0, cosign(t, h.logKey, signTree(tlog.Tree{}), h.editors[0]), http.StatusConflict, protocol.CodeConflict},
		{"other_origin", t0, cosign(t, h.logKey, sign(text("other.example", tree), h.logKey), h.editors[0]), http.StatusConflict, protocol.CodeConflict},
		{"other_log", t0, cosign(t, otherLog, sign(text("other-log", tree), otherLog), h.editors[0]), http.StatusConflict, protocol.CodeConflict},
		{"not_the_log_key", t0, cosign(t, sameName, sign(text(DefaultLogName, tree), sameName), h.editors[0]), http.StatusConflict, protocol.CodeConflict},
		{"extension_line", t0, cosign(t, h.logKey, sign(text(DefaultLogName, tree)+"ext\n", h.logKey), h.editors[0]), http.StatusConflict, protocol.CodeConflict},
		{"log_signature_only", t0, cp, http.StatusBadRequest, protocol.CodeMalformed},
		{"cosignature_only", t0, append([]byte(text(DefaultLogName, tree)+"\n"), oldLine...), http.StatusBadRequest, protocol.CodeMalformed},
		{"two_cosignatures", t0, append(bytes.Clone(good), cosign(t, h.logKey, cp, h.editors[1])[len(cp):]...), http.StatusBadRequest, protocol.CodeMalformed},
		{"garbage", t0, []byte("hello"), http.StatusBadRequest, protocol.CodeMalformed},
		{"empty", t0, nil, http.StatusBadRequest, protocol.CodeMalformed},
		{"no_final_newline", t0, good[:len(good)-1], http.StatusBadRequest, protocol.CodeMalformed},
		{"crlf", t0, bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")), http.StatusBadRequest, protocol.CodeMalformed},
		{"too_large", t0, append(bytes.Clone(good), make([]byte, maxCosignRequest)...), http.StatusRequestEntityTooLarge, protocol.CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := r.postCosignature(t, tc.token, tc.body)
			if e := httpError(t, resp); status != tc.status || e.Code != tc.code {
				t.Errorf("POST /cosignature = %d %v, want %d %s", status, e, tc.status, tc.code)
			}
			if got := r.cosigned(t); got != before {
				t.Errorf("a refused cosignature changed GET /cosigned from %q to %q", before, got)
			}
		})
	}

	// A cosignature whose timestamp is a second of the day (what C2SP
	// allows and torchwood's signer writes; newsdesk writes 00:00:00 UTC)
	// verifies, and is refused for its time: the server would publish
	// when the editor synced.
	status, resp := r.postCosignature(t, t0, addSignature(t, h.logKey, cp, newSecondsCosigner(t, h.editors[0])))
	if e := httpError(t, resp); status != http.StatusBadRequest || e.Code != protocol.CodeMalformed || e.Message != errCosignTime.Message {
		t.Errorf("POST /cosignature of a time of day = %d %v, want 400 %v", status, e, errCosignTime)
	}
	if got := r.cosigned(t); got != before {
		t.Errorf("a cosignature of a time of day changed GET /cosigned from %q to %q", before, got)
	}

	// A revoked editor's session ends: their cosignature is refused.
	v2 := h.makeBundle(2, func(b *crypto.Bundle) {
		b.Editors = b.Editors[:2]
		b.Revoked = []string{h.editors[2].Label}
	})
	if status, body := httpDo(t, http.MethodPost, r.origin+protocol.PathBundle, "", v2.Signed()); status != http.StatusNoContent {
		t.Fatalf("POST /bundle = %d %s", status, body)
	}
	_, cp = r.checkpoint(t)
	status, resp = r.postCosignature(t, t2, cosign(t, h.logKey, cp, h.editors[2]))
	if e := httpError(t, resp); status != http.StatusUnauthorized || e.Code != protocol.CodeUnauthorized {
		t.Errorf("POST /cosignature by a revoked editor = %d %v, want 401 unauthorized", status, e)
	}
	if got := r.cosigned(t); got != before {
		t.Errorf("a revoked editor's cosignature changed GET /cosigned from %q to %q", before, got)
	}
	// The same checkpoint, cosigned by an editor still in force, is taken.
	if status, body := r.postCosignature(t, t0, cosign(t, h.logKey, cp, h.editors[0])); status != http.StatusOK {
		t.Errorf("POST /cosignature after the new bundle = %d %s", status, body)
	}
}

// secondsCosigner signs with an editor's cosigning key as
// tlog-cosignature/v1 and as torchwood's own signer does, with a timestamp
// of the second (here the first second of today, UTC), where the editor's
// newsdesk writes 00:00:00 of the day (crypto.CosignatureSigner).
type secondsCosigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

// newSecondsCosigner reads k's cosigning key from its key file.
func newSecondsCosigner(tb testing.TB, k *crypto.EditorKey) *secondsCosigner {
	tb.Helper()
	for line := range strings.Lines(string(k.Marshal())) {
		skey, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "cosign PRIVATE+KEY+")
		if !ok {
			continue
		}
		// PRIVATE+KEY+<name>+<hash>+<base64>, whose base64 may hold "+".
		_, rest, _ := strings.Cut(skey, "+")
		_, key64, _ := strings.Cut(rest, "+")
		raw, err := base64.StdEncoding.DecodeString(key64)
		if err != nil || len(raw) != 1+ed25519.SeedSize {
			tb.Fatalf("editor key's cosigning key: %v", err)
		}
		key := ed25519.NewKeyFromSeed(raw[1:])
		tw := must(torchwood.NewCosignatureSigner(crypto.CosignName(k.Label), key))
		return &secondsCosigner{name: tw.Name(), hash: tw.KeyHash(), key: key}
	}
	tb.Fatal("no cosigning key in the editor key file")
	return nil
}

func (s *secondsCosigner) Name() string    { return s.name }
func (s *secondsCosigner) KeyHash() uint32 { return s.hash }

func (s *secondsCosigner) Sign(msg []byte) ([]byte, error) {
	y, m, d := time.Now().UTC().Date()
	t := uint64(time.Date(y, m, d, 0, 0, 1, 0, time.UTC).Unix())
	sig := binary.BigEndian.AppendUint64(nil, t)
	return append(sig, ed25519.Sign(s.key, fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", t, msg))...), nil
}

// cosignFixture is a log key, an editor and a real cosignature request,
// for the parser tests.
type cosignFixture struct {
	logKey *crypto.SignerKey
	logV   note.Verifier
	editor *crypto.EditorKey
	tree   tlog.Tree
	body   []byte
}

func newCosignFixture(tb testing.TB) *cosignFixture {
	f := &cosignFixture{
		logKey: newSignerKey(tb, crypto.LogKeyHeader, DefaultLogName),
		editor: newEditorKey(tb, "editor-0", true),
		tree:   tlog.Tree{N: 42, Hash: tlog.RecordHash([]byte("entry"))},
	}
	f.logV = must(note.NewVerifier(f.logKey.Verifier))
	f.body = cosign(tb, f.logKey, must(signCheckpoint(f.logKey.Signer, f.tree)), f.editor)
	return f
}

// TestSplitCosignature: the framing of a POST /cosignature body, at and
// around its edges.
func TestSplitCosignature(t *testing.T) {
	f := newCosignFixture(t)
	req, err := splitCosignature(f.body)
	if err != nil {
		t.Fatalf("splitCosignature(good) = %v", err)
	}
	if !bytes.Equal(append(bytes.Clone(req.signed), req.line...), f.body) || req.sig.Name != "editor-0.cosign" {
		t.Fatalf("splitCosignature(good) = %q + %q (%s)", req.signed, req.line, req.sig.Name)
	}
	if _, tree, perr := openCosignature(f.body, f.logV, &f.editor.Public); perr != nil || tree != f.tree {
		t.Fatalf("openCosignature(good) = %v, %v", tree, perr)
	}
	cut := len(req.signed)
	line := string(req.line)
	b64 := strings.TrimSuffix(line[strings.LastIndexByte(line, ' ')+1:], "\n")
	raw := must(base64.StdEncoding.DecodeString(b64))
	pad := func(n int) []byte { // the good body grown to n bytes by its text's key name
		return append(bytes.Clone(f.body[:cut]), []byte("— "+strings.Repeat("a", n-len(f.body)+len("editor-0.cosign"))+" "+b64+"\n")...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"at_limit", pad(maxCosignRequest), true},
		{"over_limit", pad(maxCosignRequest + 1), false},
		{"under_limit", pad(maxCosignRequest - 1), true},
		{"empty", nil, false},
		{"newline", []byte("\n"), false},
		{"no_blank_line", bytes.ReplaceAll(f.body, []byte("\n\n"), []byte("\n")), false},
		{"no_signature", f.body[:bytes.Index(f.body, []byte("\n\n"))+2], false},
		{"one_signature", f.body[:cut], false},
		{"three_signatures", append(bytes.Clone(f.body), req.line...), false},
		{"no_final_newline", f.body[:len(f.body)-1], false},
		{"text_after", append(bytes.Clone(f.body), "x\n"...), false},
		{"no_em_dash", []byte(strings.Replace(string(f.body), "\n— editor", "\n- editor", 1)), false},
		{"no_space_after_name", []byte(string(f.body[:cut]) + "— editor-0.cosign\n"), false},
		{"empty_name", []byte(string(f.body[:cut]) + "—  " + b64 + "\n"), false},
		{"plus_in_name", []byte(string(f.body[:cut]) + "— a+b " + b64 + "\n"), false},
		{"tab_in_name", []byte(string(f.body[:cut]) + "— a\tb " + b64 + "\n"), false},
		{"two_spaces", []byte(string(f.body[:cut]) + "— editor-0.cosign  " + b64 + "\n"), false},
		{"trailing_space", []byte(string(f.body[:cut]) + "— editor-0.cosign " + b64 + " \n"), false},
		{"unpadded_base64", []byte(string(f.body[:cut]) + "— editor-0.cosign " + strings.TrimRight(b64, "=") + "\n"), false},
		{"url_base64", []byte(string(f.body[:cut]) + "— editor-0.cosign " + base64.URLEncoding.EncodeToString(append([]byte{0xfb, 0xff, 0xbf}, raw[3:]...)) + "\n"), false}, // "-_-_…": never the standard spelling
		{"short_signature", []byte(string(f.body[:cut]) + "— editor-0.cosign " + base64.StdEncoding.EncodeToString(raw[:cosignatureSize-1]) + "\n"), false},
		{"long_signature", []byte(string(f.body[:cut]) + "— editor-0.cosign " + base64.StdEncoding.EncodeToString(append(raw, 0)) + "\n"), false},
		{"ed25519_signature", []byte(string(f.body[:cut]) + "— editor-0.cosign " + base64.StdEncoding.EncodeToString(raw[:4+64]) + "\n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := splitCosignature(tc.in)
			if (err == nil) != tc.ok {
				t.Errorf("splitCosignature(%.60q…) = %v, want ok %t", tc.in, err, tc.ok)
			}
			if tc.ok {
				return
			}
			if _, _, perr := openCosignature(tc.in, f.logV, &f.editor.Public); perr == nil || perr.Code != protocol.CodeMalformed {
				t.Errorf("openCosignature(%.60q…) = %v, want malformed", tc.in, perr)
			}
		})
	}
}

// FuzzOpenCosignature: the body parser never panics; whatever it splits
// is the input cut in two, its last line in its one spelling; whatever
// openCosignature accepts, torchwood verifies with the log key and the
// editor's cosigning key, for the same tree; and every refusal is one of
// the three wire refusals.
func FuzzOpenCosignature(f *testing.F) {
	fx := newCosignFixture(f)
	f.Add(fx.body)
	cut := bytes.Index(fx.body, []byte("\n\n"))
	f.Add(fx.body[:cut+2])
	f.Add([]byte("hello\n\n— a b\n— c d\n"))
	f.Add(append(bytes.Clone(fx.body), fx.body[cut+2:]...))
	cv := cosignVerifier(f, fx.editor)
	policy := torchwood.ThresholdPolicy(3, torchwood.OriginPolicy(fx.logV.Name()), torchwood.SingleVerifierPolicy(fx.logV), torchwood.SingleVerifierPolicy(cv))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := splitCosignature(b)
		if err == nil {
			if !bytes.Equal(append(bytes.Clone(req.signed), req.line...), b) {
				t.Fatalf("split %q into %q and %q", b, req.signed, req.line)
			}
			if want := "— " + req.sig.Name + " " + req.sig.Base64 + "\n"; string(req.line) != want {
				t.Fatalf("line %q parsed as %q", req.line, want)
			}
		}
		r, tree, perr := openCosignature(b, fx.logV, &fx.editor.Public)
		if perr != nil {
			if !errors.Is(perr, errCosignMalformed) && !errors.Is(perr, errCosignNotOurs) && !errors.Is(perr, errCosignSigner) {
				t.Fatalf("openCosignature refused with %v, not a wire refusal", perr)
			}
			return
		}
		if err != nil {
			t.Fatalf("openCosignature accepted what splitCosignature refused: %v", err)
		}
		c, _, verr := torchwood.VerifyCheckpoint(b, policy)
		if verr != nil || c.Tree != tree || c.Extension != "" {
			t.Fatalf("openCosignature accepted %q (tree %v), torchwood: %v, %v", b, tree, c.Tree, verr)
		}
		if r.sig.Name != crypto.CosignName(fx.editor.Label) {
			t.Fatalf("accepted a cosignature by %q", r.sig.Name)
		}
	})
}
