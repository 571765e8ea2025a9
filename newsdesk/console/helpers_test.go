package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fieldtip "fieldtip/client"
	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/internal/testkit/sourcekit"
	"fieldtip/newsdesk"
)

// The console's tests run everything real: a fieldtipd on loopback over
// SQLite, tips sent by the source client, editors' sessions on their own
// caches, the console's HTTP server, and (browser_test.go) headless
// Chromium.

// failAfter bounds waits that only a failure makes long (a loaded machine
// runs everything slowly); no test waits for time to pass.
const failAfter = 90 * time.Second

const passphrase = "correct horse battery staple"

// room is a newsroom with a real server and editors.
type room struct {
	t        *testing.T
	newsroom *crypto.SignerKey
	srv      *fieldtiptest.Server
	editors  []*crypto.EditorKey
	// keyFiles are each editor's key file, by label (for the CLI).
	keyFiles map[string]string
	passFile string
	phone    *sourcekit.Phone
	version  int64
	// sources are the config dirs of the sources sendAs sent as, by
	// codename.
	sources map[string]string
}

// newRoom starts a server whose bundle lists the editors labelled
// labels (classic keys: fast), each with a key file.
func newRoom(t *testing.T, labels ...string) *room {
	t.Helper()
	n := fieldtiptest.NewNewsroom(t, true)
	r := &room{t: t, newsroom: n.Key, keyFiles: map[string]string{}, version: 1, sources: map[string]string{}}
	dir := t.TempDir()
	r.passFile = filepath.Join(dir, "pass")
	if err := os.WriteFile(r.passFile, []byte(passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, l := range labels {
		r.editors = append(r.editors, r.newEditor(t, l))
	}
	r.srv = fieldtiptest.StartServer(t, func(logKey string) []byte { return r.bundle(t, logKey, r.editors) }, fieldtiptest.ServerOptions{})
	r.phone = sourcekit.New(t, r.srv.URL, r.newsroom.Verifier, sourcekit.Options{})
	return r
}

// newEditor makes an editor key file and returns the key.
func (r *room) newEditor(t *testing.T, label string) *crypto.EditorKey {
	t.Helper()
	path := filepath.Join(t.TempDir(), label+".key")
	if _, err := newsdesk.EditorNew(label, path, passphrase, true, newsdesk.KeyOptions{WorkFactor: 10}); err != nil {
		t.Fatal(err)
	}
	k, err := newsdesk.LoadEditorKey(path, passphrase)
	if err != nil {
		t.Fatal(err)
	}
	r.keyFiles[label] = path
	return k
}

// bundle signs a bundle of r.version listing editors.
func (r *room) bundle(t *testing.T, logKey string, editors []*crypto.EditorKey) []byte {
	t.Helper()
	b := &crypto.Bundle{Newsroom: r.newsroom.Verifier, Version: r.version, Expires: time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second),
		Log: logKey, Policy: crypto.DefaultPolicy}
	for _, e := range editors {
		b.Editors = append(b.Editors, e.Public)
	}
	msg, err := crypto.SignBundle(b, r.newsroom.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// addEditor puts in force a new bundle that adds an editor.
func (r *room) addEditor(t *testing.T, label string) *crypto.EditorKey {
	t.Helper()
	k := r.newEditor(t, label)
	r.editors = append(r.editors, k)
	r.version++
	if err := newsdesk.PublishBundle(context.Background(), r.srv.URL, r.bundle(t, r.srv.LogKey.Verifier, r.editors)); err != nil {
		t.Fatal(err)
	}
	return k
}

func (r *room) editor(label string) *crypto.EditorKey {
	for _, e := range r.editors {
		if e.Label == label {
			return e
		}
	}
	r.t.Fatalf("no editor %s", label)
	return nil
}

// send sends a tip with the real client and returns its id.
func (r *room) send(t *testing.T, text string, atts ...crypto.Attachment) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	res, err := r.phone.Send(ctx, &crypto.Tip{Text: text, Attachments: atts})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return res.Receipt.TipIDString()
}

// cheapKDF is a cheap codename cost for sendAs: real Argon2id, 64 KiB,
// one pass. The editors' side never sees the cost, only the mailbox id
// and reply recipient inside the tip.
var cheapKDF = crypto.CodenameKDF{MemoryKiB: 64, Time: 1}

// sendAs sends a tip the way fieldtip send --codename-file does (init,
// compose with the codename's reply keys, send the outbox), from a config
// dir of the codename's own, and returns its id and the reply keys the
// tip carries the address of.
func (r *room) sendAs(t *testing.T, codename, text string) (string, *crypto.ReplyKeys) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	dir, ok := r.sources[codename]
	if !ok {
		dir = filepath.Join(t.TempDir(), "source")
		r.sources[codename] = dir
	}
	cfg, _, _, err := fieldtip.Init(ctx, dir, r.srv.URL, r.newsroom.Verifier, fieldtip.InitOptions{})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	keys, err := crypto.DeriveReplyKeys(codename, cfg.Newsroom, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	var ob *fieldtip.Outbox
	if ok {
		ob, err = fieldtip.OpenOutbox(fieldtip.OutboxPath(dir), codename, cheapKDF)
	} else {
		ob, err = fieldtip.CreateOutbox(fieldtip.OutboxPath(dir), codename, 0, cheapKDF)
	}
	if err != nil {
		t.Fatal(err)
	}
	it, err := fieldtip.Compose(ctx, cfg, &crypto.Tip{Text: text}, fieldtip.ComposeOptions{Reply: keys})
	if err != nil {
		t.Fatalf("compose: %v", err)
	}
	if err := ob.Add(it); err != nil {
		t.Fatal(err)
	}
	rep, err := fieldtip.SendOutbox(ctx, cfg, ob, fieldtip.SendOptions{Budget: failAfter})
	if err != nil || len(rep.Sent) != 1 {
		t.Fatalf("send: %v (%d sent)", err, len(rep.Sent))
	}
	return rep.Sent[0].Receipt.TipIDString(), keys
}

// session opens and syncs an editor's session on a new cache (or dir).
func (r *room) session(t *testing.T, label, dir string) *newsdesk.Session {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx := context.Background()
	s, err := newsdesk.OpenSession(ctx, newsdesk.SessionConfig{Cache: dir, Server: r.srv.URL, Key: r.editor(label), Newsroom: r.newsroom.Verifier})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Sync(ctx); err != nil {
		t.Fatalf("sync as %s: %v", label, err)
	}
	return s
}

// running is a console serving in the background.
type running struct {
	c    *Console
	url  string // the printed URL, with its one-time token
	base string // http://host:port
	host string
}

// console starts a console over a session of label's, syncing every
// 200 ms (so that a test sees a new tip soon; it waits on what the page
// shows, never on time).
func (r *room) console(t *testing.T, label, cache string) *running {
	t.Helper()
	s := r.session(t, label, cache)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := New(ctx, Config{Session: s, Server: r.srv.URL, SyncEvery: 200 * time.Millisecond})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	l, u, err := c.Listen()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("console of %s: %v", label, err)
		}
	})
	pu, _ := url.Parse(u)
	return &running{c: c, url: u, base: "http://" + pu.Host, host: pu.Host}
}

// marker returns a unique word for a test to find.
func marker(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// client is an HTTP client that keeps no cookies and follows no
// redirects.
var client = &http.Client{Timeout: failAfter, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// do sends one request and returns the status, headers and body.
func do(t *testing.T, method, u, host string, header http.Header, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// login exchanges the console's token and returns the cookie.
func (c *running) login(t *testing.T) *http.Cookie {
	t.Helper()
	status, h, body := do(t, "GET", c.url, "", nil, "")
	if status != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Fatalf("login: %d %q %s", status, h.Get("Location"), body)
	}
	resp := http.Response{Header: h}
	for _, ck := range resp.Cookies() {
		if strings.HasPrefix(ck.Name, cookiePrefix) {
			return ck
		}
	}
	t.Fatalf("login set no cookie: %v", h)
	return nil
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// newsdeskCLI builds the real newsdesk binary, once per test run.
func newsdeskCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "console-cli")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "newsdesk")
		out, err := exec.Command("go", "build", "-tags", "sqlite_omit_load_extension", "-o", cliPath, "fieldtip/cmd/newsdesk").CombinedOutput()
		if err != nil {
			cliErr = err
			cliPath = string(out)
		}
	})
	if cliErr != nil {
		t.Fatalf("build newsdesk: %v\n%s", cliErr, cliPath)
	}
	return cliPath
}

// cli runs the newsdesk binary as an editor, with a fresh cache unless
// cache is given, and returns its standard output.
func (r *room) cli(t *testing.T, label, cache string, args ...string) string {
	t.Helper()
	if cache == "" {
		cache = t.TempDir()
	}
	args = append(args, "--key", r.keyFiles[label], "--passphrase-file", r.passFile, "--cache", cache)
	if slices.Contains(args, "--server") {
		args = append(args, "--newsroom", r.newsroom.Verifier)
	}
	cmd := exec.Command(newsdeskCLI(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("newsdesk %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
