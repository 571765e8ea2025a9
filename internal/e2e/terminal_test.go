package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/sourcekit"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// evilText carries what a rogue server, or a CDN or proxy in its path,
// would put in front of a source or an editor: a screen clear (ESC), a
// carriage return to overwrite the line, an OSC window title, a C1 CSI,
// a zero-width space and a right-to-left override (U+202E) that reverses
// what follows.
const evilText = "\x1b[2J\x1b[H\rfieldtip: sent 1 tips\x1b]0;all is well\x07 \u009b31m\u200b txt.\u202eexe"

// evilOrigin is a login challenge's origin carrying the same.
const evilOrigin = "http://newsroom.example\x1b]0;pwned\x07\r\u202e"

// terminalRogue is a server whose every answer carries evilText: it
// refuses the sources' upload with it (and their bundle request too,
// unless seed is set: then it answers with bundle and seed, so that a
// source can compose), answers a login challenge with evilOrigin, and
// refuses every other request with it, but serves bundle, the newsroom's
// real signed bundle, so that an editor's tool gets as far as logging in.
func terminalRogue(t *testing.T, bundle, seed []byte) string {
	t.Helper()
	refuse := protocol.Marshal(&protocol.Error{Code: protocol.CodeBusy, Message: evilText})
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+protocol.DefaultSourcePath, func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if m, err := protocol.ParseClientMessage(msg); err == nil && seed != nil {
			if _, ok := m.(*protocol.BundleRequest); ok {
				c.WriteMessage(websocket.TextMessage, protocol.Marshal(&protocol.BundleReply{Bundle: bundle, Seed: seed}))
				return
			}
		}
		c.WriteMessage(websocket.TextMessage, refuse)
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "busy"))
	})
	mux.HandleFunc("GET "+protocol.PathBundle, func(w http.ResponseWriter, r *http.Request) { w.Write(bundle) })
	mux.HandleFunc("POST "+protocol.PathChallenge, func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(&protocol.Challenge{Origin: evilOrigin, Nonce: strings.Repeat("A", 43), Expires: "2099-01-01T00:00:00Z"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write(refuse)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// checkTerminalSafe fails if out holds a control character (but newline
// and tab), a Unicode format character or a line or paragraph separator.
func checkTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	for i, r := range out {
		if (unicode.IsControl(r) && r != '\n' && r != '\t') || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			t.Errorf("%s printed %U at byte %d:\n%q", what, r, i, out)
			return
		}
	}
}

// Issue 11: what a rogue server says reaches the terminals of fieldtip
// and newsdesk escaped (cli.TerminalSafe), never raw.
func TestRogueTextIsEscaped(t *testing.T) {
	d := newDesk(t)
	srv := d.start(t)
	bundle, err := os.ReadFile(d.bundle)
	if err != nil {
		t.Fatal(err)
	}
	rogue := terminalRogue(t, bundle, nil)
	// A rogue that holds the log key (a seized server) hands out the
	// bundle and a seed it signs, and refuses the upload.
	keyFile, err := os.ReadFile(filepath.Join(d.data, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	logKey, err := crypto.ParseSignerKey(crypto.LogKeyHeader, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	uploadRogue := terminalRogue(t, bundle, signedSeed(t, logKey))

	check := func(what, stdout, stderr string) {
		t.Helper()
		checkTerminalSafe(t, what+" (stdout)", stdout)
		checkTerminalSafe(t, what+" (stderr)", stderr)
		// The text is shown, escaped: the source or editor learns what the
		// server said, and cannot be fooled by it.
		if !strings.Contains(stdout+stderr, `\x1b`) && !strings.Contains(stdout+stderr, `\u202e`) {
			t.Errorf("%s shows nothing of the server's words:\n%s%s", what, stdout, stderr)
		}
	}
	out, errOut := run(t, d.dir, "", 1, "fieldtip", "init", "--config", "phone", "--server", rogue, "--newsroom", d.newsroom)
	check("fieldtip init", out, errOut)
	run(t, d.dir, "", 0, "fieldtip", "init", "--config", "phone2", "--server", uploadRogue, "--newsroom", d.newsroom)
	run(t, d.dir, "", 0, "fieldtip", "compose", "--config", "phone2", "--codename-file", "codename", "--text", "a tip for a rogue")
	out, errOut = run(t, d.dir, "", 3, "fieldtip", "send", "--config", "phone2", "--codename-file", "codename")
	check("fieldtip send", out, errOut)

	cache := filepath.Join(d.dir, "alice-cache")
	out, errOut = run(t, d.dir, "", 1, "newsdesk", "pull", "--server", rogue, "--key", "alice.key", "--passphrase-file", d.pass, "--cache", cache)
	check("newsdesk pull", out, errOut)
	if !strings.Contains(errOut, `newsroom.example\x1b]0;pwned\x07\x0d\u202e`) {
		t.Errorf("newsdesk pull does not show the rogue origin escaped:\n%s", errOut)
	}
	out, errOut = run(t, d.dir, "", 1, "newsdesk", "audit", "verify", "--server", rogue, "--state", filepath.Join(d.dir, "audit"))
	check("newsdesk audit verify", out, errOut)

	// A tip's author is a stranger too: its text and an attachment's name
	// reach newsdesk read escaped. (fieldtip compose refuses such a name;
	// this tip is made with the client library.)
	res, err := sourcekit.New(t, srv.URL, d.newsroom, sourcekit.Options{}).Send(context.Background(), &crypto.Tip{Text: evilText,
		Attachments: []crypto.Attachment{{Name: "photo\u202egpj.exe", Type: "image/jpeg", Data: []byte("not a photo")}}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ = d.readTip(t, srv.URL, res.Receipt.TipIDString())
	check("newsdesk read --out", out, "")
	// Without --out, read names the attachment as the tip does.
	out, errOut = run(t, d.dir, "", 0, "newsdesk", "read", res.Receipt.TipIDString(), "--key", "alice.key", "--passphrase-file", d.pass, "--cache", cache)
	check("newsdesk read", out, errOut)
	if !strings.Contains(out, `photo\u202egpj.exe`) {
		t.Errorf("newsdesk read does not show the attachment's name escaped:\n%s", out)
	}
	srv.stop(t)
}
