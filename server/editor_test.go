package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/newsdesk"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
	"golang.org/x/mod/sumdb/note"
)

// login logs in with newsdesk, which must succeed.
func login(tb testing.TB, ts *testServer, k *crypto.EditorKey) *newsdesk.Remote {
	tb.Helper()
	r, err := newsdesk.Login(context.Background(), ts.origin(), k)
	if err != nil {
		tb.Fatalf("Login(%s) = %v", k.Label, err)
	}
	if r.Editor != k.Label {
		tb.Errorf("logged in as %q, want %q", r.Editor, k.Label)
	}
	return r
}

// wantUnauthorized checks that err is a typed unauthorized refusal.
func wantUnauthorized(tb testing.TB, what string, err error) {
	tb.Helper()
	var e *protocol.Error
	if !errors.As(err, &e) || e.Code != protocol.CodeUnauthorized {
		tb.Errorf("%s = %v, want a *protocol.Error with code %s", what, err, protocol.CodeUnauthorized)
	}
}

// TestEditorLogin logs in with newsdesk as an editor of the bundle, lists
// the tips and fetches one: its ciphertext is what the source sent.
func TestEditorLogin(t *testing.T) {
	ts := newTestServer(t, serverOptions{editors: 2})
	const text = "three trucks, no plates"
	res := ts.send(t, text)
	r := login(t, ts, ts.editors[1])
	ctx := context.Background()
	tips, err := r.ListTips(ctx, 0, 100)
	if err != nil {
		t.Fatalf("ListTips() = %v", err)
	}
	if len(tips) != 1 {
		t.Fatalf("ListTips() returned %d tips, want 1", len(tips))
	}
	got, rc := tips[0], res.Receipt
	if got.ID != rc.TipIDString() || got.SHA256 != hex.EncodeToString(rc.SHA256[:]) || got.Length != rc.Length ||
		got.Day != rc.Day || got.BundleVersion != 1 || got.Receipt != string(res.ReceiptNote) {
		t.Errorf("listed %+v, want the receipt's %+v", got, rc)
	}
	if more, err := r.ListTips(ctx, got.Seq, 100); err != nil || len(more) != 0 {
		t.Errorf("ListTips(after %d) = %d tips, %v; want none", got.Seq, len(more), err)
	}
	ct, err := r.FetchTip(ctx, got.ID)
	if err != nil {
		t.Fatalf("FetchTip() = %v", err)
	}
	if sha256.Sum256(ct) != rc.SHA256 {
		t.Errorf("fetched ciphertext does not hash to the receipt's sha256")
	}
	tip, err := crypto.Open(ct, ts.editors[1].Identity)
	if err != nil || tip.Text != text {
		t.Errorf("fetched tip opens to %v, %v; want %q", tip, err, text)
	}
}

// challenge asks for a login challenge over plain HTTP.
func challenge(tb testing.TB, ts *testServer) *crypto.Login {
	tb.Helper()
	status, body := httpDo(tb, http.MethodPost, ts.origin()+protocol.PathChallenge, "", nil)
	if status != http.StatusOK {
		tb.Fatalf("challenge: status %d: %s", status, body)
	}
	var c protocol.Challenge
	if err := protocol.DecodeJSON(bytes.NewReader(body), protocol.MaxEditorResponse, &c); err != nil {
		tb.Fatal(err)
	}
	l := &crypto.Login{Origin: c.Origin}
	n, err := base64.RawURLEncoding.DecodeString(c.Nonce)
	if err != nil || len(n) != crypto.NonceSize {
		tb.Fatalf("challenge nonce %q", c.Nonce)
	}
	copy(l.Nonce[:], n)
	if l.Expires, err = time.Parse(time.RFC3339, c.Expires); err != nil {
		tb.Fatal(err)
	}
	return l
}

func signLogin(tb testing.TB, l *crypto.Login, signer note.Signer) []byte {
	tb.Helper()
	msg, err := crypto.SignLogin(l, signer)
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

func editorSigner(tb testing.TB, k *crypto.EditorKey) note.Signer {
	tb.Helper()
	s, err := k.Signer()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// postLogin posts a login note and returns the session's token, or the
// typed refusal.
func postLogin(tb testing.TB, ts *testServer, msg []byte) (string, *protocol.Error) {
	tb.Helper()
	status, body := httpDo(tb, http.MethodPost, ts.origin()+protocol.PathLogin, "", msg)
	if status == http.StatusOK {
		var s protocol.Session
		if err := protocol.DecodeJSON(bytes.NewReader(body), protocol.MaxEditorResponse, &s); err != nil {
			tb.Fatal(err)
		}
		if s.Token == "" {
			tb.Fatal("login accepted without a token")
		}
		return s.Token, nil
	}
	// A refusal is a typed error and only that: no token.
	return "", httpError(tb, body)
}

// TestEditorLoginRefused: each refused login answers unauthorized and
// hands out no token.
func TestEditorLoginRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		// note returns the login note to post (after any posts of its
		// own, which must succeed).
		note func(t *testing.T, ts *testServer) []byte
	}{
		{"editor_not_in_bundle", func(t *testing.T, ts *testServer) []byte {
			return signLogin(t, challenge(t, ts), editorSigner(t, newEditorKey(t, "editor-0", true)))
		}},
		{"signed_with_cosigning_key", func(t *testing.T, ts *testServer) []byte {
			cs, err := ts.editors[0].Cosigner()
			if err != nil {
				t.Fatal(err)
			}
			return signLogin(t, challenge(t, ts), cs)
		}},
		{"replayed", func(t *testing.T, ts *testServer) []byte {
			msg := signLogin(t, challenge(t, ts), editorSigner(t, ts.editors[0]))
			if _, e := postLogin(t, ts, msg); e != nil {
				t.Fatalf("first login refused: %v", e)
			}
			return msg
		}},
		{"expired", func(t *testing.T, ts *testServer) []byte {
			msg := signLogin(t, challenge(t, ts), editorSigner(t, ts.editors[0]))
			ts.clock.advance(challengeTTL)
			return msg
		}},
		{"other_origin", func(t *testing.T, ts *testServer) []byte {
			l := challenge(t, ts)
			l.Origin = "https://newsroom.example"
			return signLogin(t, l, editorSigner(t, ts.editors[0]))
		}},
		{"nonce_never_issued", func(t *testing.T, ts *testServer) []byte {
			l := challenge(t, ts)
			rand.Read(l.Nonce[:])
			return signLogin(t, l, editorSigner(t, ts.editors[0]))
		}},
		{"expiry_moved", func(t *testing.T, ts *testServer) []byte {
			l := challenge(t, ts)
			l.Expires = l.Expires.Add(time.Hour)
			return signLogin(t, l, editorSigner(t, ts.editors[0]))
		}},
		{"not_a_note", func(t *testing.T, ts *testServer) []byte { return []byte("let me in\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, serverOptions{})
			token, e := postLogin(t, ts, tc.note(t, ts))
			if token != "" {
				t.Fatalf("login accepted, want a refusal")
			}
			if !protocol.IsError(e, protocol.CodeUnauthorized) {
				t.Errorf("login refused with %v, want code %s", e, protocol.CodeUnauthorized)
			}
		})
	}

	t.Run("newsdesk_editor_not_in_bundle", func(t *testing.T) {
		ts := newTestServer(t, serverOptions{})
		r, err := newsdesk.Login(context.Background(), ts.origin(), newEditorKey(t, "stranger", true))
		if r != nil {
			t.Errorf("Login returned a session for a stranger")
		}
		wantUnauthorized(t, "Login(stranger)", err)
	})
}

// TestEditorRevoked publishes a bundle that revokes an editor: their live
// session stops working at once and they cannot log in again, while the
// other editor's session goes on.
func TestEditorRevoked(t *testing.T) {
	ts := newTestServer(t, serverOptions{editors: 2})
	ts.send(t, "before the revocation")
	ctx := context.Background()
	r0, r1 := login(t, ts, ts.editors[0]), login(t, ts, ts.editors[1])
	tips, err := r1.ListTips(ctx, 0, 10)
	if err != nil || len(tips) != 1 {
		t.Fatalf("ListTips() = %d tips, %v; want 1", len(tips), err)
	}

	v2 := ts.makeBundle(t, 2, func(b *crypto.Bundle) {
		b.Editors = b.Editors[:1]
		b.Revoked = []string{"editor-1"}
	})
	if err := newsdesk.PublishBundle(ctx, ts.origin(), v2.Signed()); err != nil {
		t.Fatalf("PublishBundle(v2) = %v", err)
	}
	_, err = r1.ListTips(ctx, 0, 10)
	wantUnauthorized(t, "revoked editor's ListTips", err)
	_, err = r1.FetchTip(ctx, tips[0].ID)
	wantUnauthorized(t, "revoked editor's FetchTip", err)
	r, err := newsdesk.Login(ctx, ts.origin(), ts.editors[1])
	if r != nil {
		t.Errorf("revoked editor logged in again")
	}
	wantUnauthorized(t, "revoked editor's Login", err)

	if _, err := r0.ListTips(ctx, 0, 10); err != nil {
		t.Errorf("remaining editor's ListTips() = %v", err)
	}
	ts.send(t, "after the revocation")
	ts.intact(t)
}

// TestEditorRekeyed publishes a bundle that lists an editor's label with a
// new key (a key rotated after a theft): sessions made with the old key end
// at once; the new key logs in.
func TestEditorRekeyed(t *testing.T) {
	ts := newTestServer(t, serverOptions{editors: 2})
	ctx := context.Background()
	old := login(t, ts, ts.editors[1])
	rotated := newEditorKey(t, "editor-1", true)
	v2 := ts.makeBundle(t, 2, func(b *crypto.Bundle) { b.Editors[1] = rotated.Public })
	if err := newsdesk.PublishBundle(ctx, ts.origin(), v2.Signed()); err != nil {
		t.Fatalf("PublishBundle(v2) = %v", err)
	}
	_, err := old.ListTips(ctx, 0, 10)
	wantUnauthorized(t, "old key's session after rekeying", err)
	if _, err := login(t, ts, rotated).ListTips(ctx, 0, 10); err != nil {
		t.Errorf("new key's ListTips() = %v", err)
	}
}

// TestEditorSessionExpires: a session is refused once its TTL has passed.
func TestEditorSessionExpires(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ctx := context.Background()
	r := login(t, ts, ts.editors[0])
	if _, err := r.ListTips(ctx, 0, 10); err != nil {
		t.Fatalf("ListTips() = %v", err)
	}
	ts.clock.advance(ts.s.cfg.SessionTTL)
	_, err := r.ListTips(ctx, 0, 10)
	wantUnauthorized(t, "ListTips after the session TTL", err)
}

// TestEditorEndpointRequests: requests to the editors' endpoint without a
// valid session are unauthorized; with one, bad arguments are typed.
func TestEditorEndpointRequests(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	res := ts.send(t, "listed")
	token := sessionToken(t, ts)
	var unknown [32]byte
	rand.Read(unknown[:])
	var noTip [16]byte
	rand.Read(noTip[:])
	id := res.Receipt.TipIDString()
	for _, tc := range []struct {
		name, path, auth string
		status           int
		code             protocol.Code
	}{
		{"list_no_token", protocol.PathTips, "", http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"fetch_no_token", protocol.PathTips + "/" + id, "", http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"list_garbage_token", protocol.PathTips, "Bearer garbage!", http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"fetch_garbage_token", protocol.PathTips + "/" + id, "Bearer garbage!", http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"list_empty_bearer", protocol.PathTips, "Bearer ", http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"list_token_without_bearer", protocol.PathTips, token, http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"list_token_padded", protocol.PathTips, "Bearer " + token + "=", http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"list_unknown_token", protocol.PathTips, "Bearer " + base64.RawURLEncoding.EncodeToString(unknown[:]), http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"list_short_token", protocol.PathTips, "Bearer " + token[:42], http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"list_bad_limit", protocol.PathTips + "?limit=0", "Bearer " + token, http.StatusBadRequest, protocol.CodeMalformed},
		{"list_limit_over_max", protocol.PathTips + "?limit=1001", "Bearer " + token, http.StatusBadRequest, protocol.CodeMalformed},
		{"list_negative_after", protocol.PathTips + "?after=-1", "Bearer " + token, http.StatusBadRequest, protocol.CodeMalformed},
		{"fetch_bad_id", protocol.PathTips + "/not-an-id", "Bearer " + token, http.StatusBadRequest, protocol.CodeMalformed},
		{"fetch_unknown_id", protocol.PathTips + "/" + crypto.FormatTipID(noTip), "Bearer " + token, http.StatusNotFound, protocol.CodeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := httpDo(t, http.MethodGet, ts.origin()+tc.path, tc.auth, nil)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if e := httpError(t, body); !protocol.IsError(e, tc.code) {
				t.Errorf("error %v, want code %s", e, tc.code)
			}
		})
	}
	// The same token in the right form fetches the tip.
	status, body := httpDo(t, http.MethodGet, ts.origin()+protocol.PathTips+"/"+id, "Bearer "+token, nil)
	if status != http.StatusOK {
		t.Fatalf("fetch with the session: status %d, want 200", status)
	}
	if sha256.Sum256(body) != res.Receipt.SHA256 {
		t.Errorf("fetched ciphertext does not hash to the receipt's sha256")
	}
}

// sessionToken logs editor 0 in over plain HTTP and returns the token.
func sessionToken(tb testing.TB, ts *testServer) string {
	tb.Helper()
	token, e := postLogin(tb, ts, signLogin(tb, challenge(tb, ts), editorSigner(tb, ts.editors[0])))
	if e != nil {
		tb.Fatalf("login refused: %v", e)
	}
	return token
}

// TestSourceListenerServesOnlySource: with PublicListen set, the sources'
// listener serves the WebSocket path and nothing else, and the public
// listener everything but it.
func TestSourceListenerServesOnlySource(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.PublicListen = "127.0.0.1:0" }})
	res := ts.send(t, "through the source listener")
	token := sessionToken(t, ts) // through the public listener
	source := "http://" + ts.addr
	for _, tc := range []struct{ method, path, auth string }{
		{http.MethodGet, protocol.PathBundle, ""},
		{http.MethodPost, protocol.PathBundle, ""},
		{http.MethodGet, protocol.PathTips, ""},
		{http.MethodGet, protocol.PathTips, "Bearer " + token},
		{http.MethodGet, protocol.PathTips + "/" + res.Receipt.TipIDString(), "Bearer " + token},
		{http.MethodPost, protocol.PathChallenge, ""},
		{http.MethodPost, protocol.PathLogin, ""},
		{http.MethodGet, protocol.PathHealth, ""},
	} {
		if status, _ := httpDo(t, tc.method, source+tc.path, tc.auth, nil); status != http.StatusNotFound {
			t.Errorf("%s %s on the source listener: status %d, want 404", tc.method, tc.path, status)
		}
	}
	// And the source endpoint is not on the public listener.
	c, resp, err := testDialer.Dial("ws://"+ts.public+protocol.DefaultSourcePath, nil)
	if err == nil {
		c.Close()
		t.Errorf("WebSocket upgraded on the public listener")
	} else if !errors.Is(err, websocket.ErrBadHandshake) || resp.StatusCode != http.StatusNotFound {
		t.Errorf("WebSocket on the public listener: %v, want a 404", err)
	}
	if status, body := httpDo(t, http.MethodGet, ts.origin()+protocol.PathBundle, "", nil); status != http.StatusOK || !bytes.Equal(body, ts.bundle.Signed()) {
		t.Errorf("GET /bundle on the public listener: status %d", status)
	}
	if _, err := login(t, ts, ts.editors[0]).ListTips(context.Background(), 0, 10); err != nil {
		t.Errorf("ListTips() on the public listener = %v", err)
	}
}
