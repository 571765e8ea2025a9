package server

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"filippo.io/age"
)

// A tip handed over: stored for another editor of the bundle, served to
// that editor only, replaced by a second handover, refused in the order
// protocol/handover.go gives, and gone with the tip.
func TestTipHandover(t *testing.T) {
	r := newReceiptsRun(t, nil)
	ctx := context.Background()
	tip := r.send(t, "handed over later").Receipt
	id := tip.TipIDString()
	alice, bob := r.editors[0], r.editors[1]
	tokenA, tokenB := r.lr.login(t, alice), r.lr.login(t, bob)
	toBob := func(t *testing.T, text string, rs ...age.Recipient) []byte {
		if len(rs) == 0 {
			rs = []age.Recipient{rcpt(t, bob)}
		}
		return seal(t, text, rs, 1024)
	}
	sealed := toBob(t, "the tip, for bob")
	var unknown [16]byte
	unknown[0] = 1
	other, err := crypto.GenerateEditorKey("other", r.s.Bundle().StanzaType() == crypto.StanzaHybrid)
	if err != nil {
		t.Fatal(err)
	}
	put := func(token, tip, label string, body []byte) (int, []byte) {
		auth := ""
		if token != "" {
			auth = "Bearer " + token
		}
		return httpDo(t, http.MethodPut, r.origin()+protocol.TipHandoverPath(tip, label), auth, body)
	}
	for _, tt := range []struct {
		name   string
		token  string
		tip    string
		label  string
		body   []byte
		status int
		code   protocol.Code
	}{
		{"no_session", "", id, bob.Label, sealed, 401, protocol.CodeUnauthorized},
		{"bad_tip_id", tokenA, "not-a-tip-id", bob.Label, sealed, 400, protocol.CodeMalformed},
		{"to_oneself", tokenA, id, alice.Label, sealed, 400, protocol.CodeMalformed},
		{"to_no_editor", tokenA, id, "mallory", sealed, 400, protocol.CodeMalformed},
		{"too_large", tokenA, id, bob.Label, make([]byte, protocol.MaxTipHandover+1), 413, protocol.CodeTooLarge},
		{"not_age", tokenA, id, bob.Label, []byte("plaintext, not an age file"), 400, protocol.CodeMalformed},
		{"two_recipients", tokenA, id, bob.Label, toBob(t, "x", rcpt(t, bob), rcpt(t, alice)), 400, protocol.CodeMalformed},
		{"another_recipient_type", tokenA, id, bob.Label, toBob(t, "x", rcpt(t, other)), 400, protocol.CodeMalformed},
		{"unknown_tip", tokenA, crypto.FormatTipID(unknown), bob.Label, sealed, 404, protocol.CodeNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, b := put(tt.token, tt.tip, tt.label, tt.body)
			if status != tt.status {
				t.Fatalf("status %d %s, want %d", status, b, tt.status)
			}
			if e := httpError(t, b); e.Code != tt.code {
				t.Errorf("code %s, want %s", e.Code, tt.code)
			}
		})
	}
	get := func(token, tip string) (int, []byte) {
		auth := ""
		if token != "" {
			auth = "Bearer " + token
		}
		return httpDo(t, http.MethodGet, r.origin()+protocol.TipHandoverPath(tip, ""), auth, nil)
	}
	if status, b := get(tokenB, id); status != 404 || httpError(t, b).Code != protocol.CodeNotFound {
		t.Errorf("GET before any handover: %d %s", status, b)
	}
	if status, b := put(tokenA, id, bob.Label, toBob(t, "first")); status != 200 || string(b) != "{}\n" {
		t.Fatalf("PUT: %d %s", status, b)
	}
	if status, b := put(tokenA, id, bob.Label, sealed); status != 200 {
		t.Fatalf("PUT again: %d %s", status, b)
	}
	status, b := get(tokenB, id)
	if status != 200 || !bytes.Equal(b, sealed) {
		t.Fatalf("GET as bob: %d, %d bytes, want the second handover's %d", status, len(b), len(sealed))
	}
	got, err := crypto.Open(b, bob.Identity)
	if err != nil || got.Text != "the tip, for bob" {
		t.Errorf("bob opens %+v, %v", got, err)
	}
	for _, c := range []struct {
		name, token, tip string
		status           int
	}{
		{"no_session", "", id, 401},
		{"another_editor", tokenA, id, 404},
		{"bad_tip_id", tokenB, "x", 400},
		{"unknown_tip", tokenB, crypto.FormatTipID(unknown), 404},
	} {
		if status, b := get(c.token, c.tip); status != c.status {
			t.Errorf("GET %s: %d %s, want %d", c.name, status, b, c.status)
		}
	}
	if err := r.store.DeleteTip(ctx, tip.TipID); err != nil {
		t.Fatal(err)
	}
	r.forget(tip.TipID)
	if status, _ := get(tokenB, id); status != 404 {
		t.Errorf("GET after the tip's deletion: %d, want 404", status)
	}
	if held := dbFilesHold(t, r.dir, sealed); len(held) != 0 {
		t.Errorf("after the tip's deletion, %s still hold its handover", strings.Join(held, ", "))
	}
}

// rcpt returns an editor's age recipient.
func rcpt(t testing.TB, k *crypto.EditorKey) age.Recipient {
	t.Helper()
	rc, err := crypto.ParseRecipient(k.Public.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// FuzzTipHandover: a handover the server accepts names a tip id in its
// one spelling, another editor of the bundle, and is an age file with
// exactly one stanza of the bundle's type (what CheckCiphertext checks).
func FuzzTipHandover(f *testing.F) {
	alice, bob := newEditorKey(f, "alice", true), newEditorKey(f, "bob", true)
	b := &crypto.Bundle{Editors: []crypto.Editor{alice.Public, bob.Public}, Revoked: []string{"carol"}}
	id := crypto.FormatTipID([16]byte{9})
	good := seal(f, "for bob", []age.Recipient{rcpt(f, bob)}, 1024)
	two := seal(f, "for both", []age.Recipient{rcpt(f, bob), rcpt(f, alice)}, 1024)
	for _, c := range []struct {
		id, to string
		body   []byte
	}{{id, "bob", good}, {id, "bob", two}, {id, "alice", good}, {id, "carol", good}, {"x", "bob", good}, {id, "bob", good[:len(good)-1]}, {id, "bob", nil}} {
		f.Add(c.id, c.to, c.body)
	}
	f.Fuzz(func(t *testing.T, id, to string, body []byte) {
		tip, err := checkTipHandoverPath(id, to, "alice", b)
		if err != nil {
			return
		}
		if crypto.FormatTipID(tip) != id || to != "bob" {
			t.Fatalf("checkTipHandoverPath(%q, %q) accepted", id, to)
		}
		if err := checkTipHandoverBody(body, b); err == nil {
			if crypto.CheckCiphertext(body, b.StanzaType(), 1) != nil || crypto.CheckCiphertext(body, b.StanzaType(), 2) == nil {
				t.Fatalf("checkTipHandoverBody accepted %q", body)
			}
		}
	})
}
