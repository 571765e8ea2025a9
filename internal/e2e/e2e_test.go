package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/sourcekit"
	"fieldtip/newsdesk"
	"fieldtip/protocol"
)

// testWorkFactor is the scrypt work factor of key files the Go tests make:
// the binaries read any work factor, and a second per key buys nothing
// here (the scripts use the default).
const testWorkFactor = 10

const passphrase = "e2e passphrase, not secret"

// TestNoMarkerOnServer sends a tip whose text and attachment each carry a
// random marker through the real programs, then searches every file of the
// server's data directory and its TMPDIR (while it runs and after it
// stopped) and all it logged for the markers, raw, hex and base64: the
// server is trusted for availability only (DESIGN.md §2). It also checks
// that the server logged no client address, user agent or tip id, and that
// the source's config dir (config, outbox and codename file, after compose
// and after send) and the editor's cache hold no plaintext either.
func TestNoMarkerOnServer(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	writeFile(t, pass, []byte(passphrase+"\n"))
	opts := newsdesk.KeyOptions{WorkFactor: testWorkFactor}
	newsroom, err := newsdesk.NewsroomInit(filepath.Join(dir, "newsroom.key"), "", passphrase, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newsdesk.EditorNew("alice", filepath.Join(dir, "alice.key"), passphrase, false, opts); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	out, _ := run(t, dir, "", 0, "fieldtipd", "--data", data, "--print-log-key")
	logKey := strings.TrimSpace(out)
	bundle := filepath.Join(data, "bundle.txt")
	run(t, dir, "", 0, "newsdesk", "bundle", "sign", "--newsroom", "newsroom.key", "--passphrase-file", pass,
		"--log", logKey, "--editor", "alice.key.pub", "--out", bundle)
	srv := startServer(t, append([]string{"--data", data, "--bundle", bundle, "--log-level", "debug"}, cheapPoW...)...)

	textMarker, attMarker := randomMarker(), randomMarker()
	var needles [][]byte
	for _, m := range []string{textMarker, attMarker} {
		needles = append(needles, encodings([]byte(m))...)
	}
	att := append(append(randomBytes(3000), attMarker...), randomBytes(3000)...)
	writeFile(t, filepath.Join(dir, "evidence.bin"), att)
	text := "Copper concentrate leaves the Hyesan mine by truck at night. " + textMarker

	run(t, dir, "", 0, "fieldtip", "init", "--config", "src", "--server", srv.URL, "--newsroom", newsroom)
	// Composed first, so the outbox holds the tip before the send.
	run(t, dir, "", 0, "fieldtip", "compose", "--config", "src", "--codename-file", "src/codename", "--text", text, "--attach", "evidence.bin", "--keep-original")
	searchTree(t, filepath.Join(dir, "src"), needles)
	out, _ = run(t, dir, "", 0, "fieldtip", "send", "--config", "src", "--codename-file", "src/codename")
	id := strings.TrimSuffix(out, "\n")
	if _, err := crypto.ParseTipID(id); err != nil {
		t.Fatalf("fieldtip send: stdout %q is not one tip id: %v", out, err)
	}
	out, _ = run(t, dir, "", 0, "newsdesk", "pull", "--server", srv.URL, "--key", "alice.key", "--passphrase-file", pass, "--cache", "cache")
	if out != id+"\n" {
		t.Fatalf("newsdesk pull printed %q, want the tip id %q", out, id)
	}
	out, _ = run(t, dir, "", 0, "newsdesk", "read", id, "--key", "alice.key", "--passphrase-file", pass, "--cache", "cache", "--out", "plain")
	// Positive controls: the search finds the markers where they belong,
	// and in base64 at any alignment.
	for pad := range 3 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
			b := append(append(randomBytes(pad), textMarker...), randomBytes(pad)...)
			if !containsAny([]byte(enc.EncodeToString(b)), needles) {
				t.Fatalf("the search misses the marker in base64 after %d bytes", pad)
			}
		}
	}
	if !containsAny([]byte(out), needles) || !strings.Contains(out, text) {
		t.Fatalf("newsdesk read printed no marker:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "plain", "evidence.bin"))
	if err != nil || !bytes.Equal(got, att) || !containsAny(got, needles) {
		t.Fatalf("newsdesk read --out: attachment differs or missing (%v)", err)
	}

	// While the server runs, the tip's rows may sit in the write-ahead log.
	running := searchTree(t, data, needles)
	for _, name := range []string{"fieldtip.db", "fieldtip.db-wal", "log.key", "bundle.txt"} {
		if !slices.Contains(running, name) {
			t.Errorf("data directory holds %v, want %s among them", running, name)
		}
	}
	searchTree(t, srv.TmpDir, needles)
	// Nor does the source's config, outbox or codename file, or the
	// editor's cache hold plaintext.
	searchTree(t, filepath.Join(dir, "src"), needles)
	searchTree(t, filepath.Join(dir, "cache"), needles)

	srv.stopClean(t)
	searchTree(t, data, needles)
	searchTree(t, srv.TmpDir, needles)
	for name, b := range map[string]string{"stdout": srv.stdout.String(), "stderr": srv.stderr.String()} {
		if containsAny([]byte(b), needles) {
			t.Errorf("fieldtipd %s holds a plaintext marker:\n%s", name, b)
		}
	}
	log := srv.stdout.String() + srv.stderr.String()
	if !strings.Contains(log, `msg="editor logged in"`) {
		t.Errorf("fieldtipd log is missing the editor's login, the search covered too little:\n%s", log)
	}
	checkNoSourceInLog(t, log, srv.Addr, id)
	t.Logf("searched %v and the server's log", running)
}

// checkNoSourceInLog fails unless every address in log is the server's own
// listen address and nothing identifying a request or a tip appears.
func checkNoSourceInLog(t *testing.T, log, listen, tipID string) {
	t.Helper()
	addrRE := regexp.MustCompile(`\d{1,3}(\.\d{1,3}){3}:\d+|\[[0-9A-Fa-f:.]*\]:\d+`)
	for _, a := range addrRE.FindAllString(log, -1) {
		if a != listen {
			t.Errorf("fieldtipd logged address %s, which is not its listen address %s", a, listen)
		}
	}
	for _, s := range []string{"Go-http-client", "User-Agent", "user_agent", "gorilla", tipID} {
		if strings.Contains(log, s) {
			t.Errorf("fieldtipd logged %q:\n%s", s, log)
		}
	}
}

// searchTree fails the test for every file under root that holds a needle,
// and returns the names of the files searched, relative to root.
func searchTree(t *testing.T, root string, needles [][]byte) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		names = append(names, rel)
		if containsAny(b, needles) {
			t.Errorf("%s holds a plaintext marker", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// encodings returns secret and the forms it could take in a file: hex,
// and standard and URL base64 at each of the three alignments (only the
// characters that depend on the secret alone).
func encodings(secret []byte) [][]byte {
	h := hex.EncodeToString(secret)
	out := [][]byte{secret, []byte(h), []byte(strings.ToUpper(h))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for pad := range 3 {
			s := enc.EncodeToString(append(make([]byte, pad), secret...))
			// The first ceil(8·pad/6) characters carry bits of the bytes
			// before the secret; the last 4 may carry bits of those after.
			out = append(out, []byte(s[(8*pad+5)/6:len(s)-4]))
		}
	}
	return out
}

func containsAny(b []byte, needles [][]byte) bool {
	for _, n := range needles {
		if bytes.Contains(b, n) {
			return true
		}
	}
	return false
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randomMarker() string {
	return "marker" + hex.EncodeToString(randomBytes(16))
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// fixture is a newsroom with one editor and a server data directory whose
// log key the signed bundle names; its keys live in memory.
type fixture struct {
	dir, data, bundle string
	newsroom          *crypto.SignerKey
	editor            *crypto.EditorKey
	log               string // the server's log verifier key
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	f.data = filepath.Join(f.dir, "data")
	var err error
	if f.newsroom, err = crypto.GenerateSignerKey(crypto.NewsroomKeyHeader, newsdesk.DefaultNewsroomName); err != nil {
		t.Fatal(err)
	}
	if f.editor, err = crypto.GenerateEditorKey("alice", false); err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, f.dir, "", 0, "fieldtipd", "--data", f.data, "--print-log-key")
	f.log = strings.TrimSpace(out)
	msg, err := crypto.SignBundle(&crypto.Bundle{
		Newsroom: f.newsroom.Verifier,
		Version:  1,
		Expires:  time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second),
		Log:      f.log,
		Policy:   crypto.DefaultPolicy,
		Editors:  []crypto.Editor{f.editor.Public},
	}, f.newsroom.Signer)
	if err != nil {
		t.Fatal(err)
	}
	f.bundle = filepath.Join(f.dir, "bundle.txt")
	writeFile(t, f.bundle, msg)
	return f
}

func (f *fixture) start(t *testing.T) *server {
	return startServer(t, append([]string{"--data", f.data, "--bundle", f.bundle}, cheapPoW...)...)
}

// sources makes n sources' phones pinned to the fixture's newsroom for
// the server at url.
func (f *fixture) sources(t *testing.T, n int, url string) []*sourcekit.Phone {
	t.Helper()
	phones := make([]*sourcekit.Phone, n)
	for i := range phones {
		phones[i] = sourcekit.New(t, url, f.newsroom.Verifier, sourcekit.Options{})
	}
	return phones
}

// sentTip is a tip whose receipt a source got and verified.
type sentTip struct {
	text    string
	receipt *crypto.Receipt
}

// maxFailuresBeforeStop bounds the sends that may fail while the server
// is meant to be up, so a broken setup fails the test instead of spinning.
const maxFailuresBeforeStop = 200

// sendUntil runs one sender goroutine per source phone, each sending
// distinct tips in a loop, until n receipts came back; then it calls stop,
// which must end the server, lets the sends in flight finish, and returns
// every tip acknowledged, including those answered while stop ran. Sends
// are never cancelled: a cancelled send may drop a receipt the server did
// send, and the tests count receipts exactly.
func sendUntil(t *testing.T, srv *server, phones []*sourcekit.Phone, label string, n int, stop func()) []sentTip {
	t.Helper()
	var done atomic.Bool
	results := make(chan sentTip)
	var failures atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i, phone := range phones {
		wg.Go(func() {
			for j := 0; !done.Load(); j++ {
				text := fmt.Sprintf("%s, source %d, tip %d", label, i, j)
				res, err := phone.Send(context.Background(), &crypto.Tip{Text: text})
				if err != nil {
					if failures.Add(1) == 1 {
						errMu.Lock()
						firstErr = err
						errMu.Unlock()
					}
					continue
				}
				results <- sentTip{text: text, receipt: res.Receipt}
			}
		})
	}
	go func() { wg.Wait(); close(results) }()
	var acked []sentTip
	stopped := false
	halt := func() {
		stopped = true
		stop()
		done.Store(true)
	}
	check := time.NewTicker(50 * time.Millisecond)
	defer check.Stop()
	for {
		select {
		case r, ok := <-results:
			if !ok {
				return acked
			}
			acked = append(acked, r)
			if !stopped && len(acked) >= n {
				failed := failures.Load()
				errMu.Lock()
				first := firstErr
				errMu.Unlock()
				halt()
				t.Logf("%s: stopped the server after %d receipts; %d sends had failed (the first: %v)", label, n, failed, first)
			}
		case <-check.C:
			// Not a timing assertion: a liveness guard against a server
			// that died by itself or a setup where every send fails.
			if stopped {
				continue
			}
			select {
			case <-srv.done:
				halt()
				t.Errorf("%s: fieldtipd exited by itself: %v", label, srv.err)
				continue
			default:
			}
			if failures.Load() > maxFailuresBeforeStop {
				halt()
				errMu.Lock()
				t.Errorf("%s: %d sends failed before %d receipts; the first with: %v", label, failures.Load(), n, firstErr)
				errMu.Unlock()
			}
		}
	}
}

// checkStore logs in to the server as the fixture's editor, fetches every
// tip and checks that each is whole (its ciphertext matches the signed
// receipt's length and SHA-256 and decrypts), and that every acknowledged
// tip is there with its text. It returns the stored tips' texts by id. It
// also checks that no id starts with '-' (with 150 ids, a server that drew
// ids without that rule would fail it 9 times in 10).
func checkStore(t *testing.T, f *fixture, url string, acked []sentTip) map[string]string {
	t.Helper()
	ctx := context.Background()
	r, err := newsdesk.Login(ctx, url, f.editor)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	var after int64
	for {
		tips, err := r.ListTips(ctx, after, protocol.MaxTipList)
		if err != nil {
			t.Fatal(err)
		}
		if len(tips) == 0 {
			break
		}
		for _, ti := range tips {
			if ti.Seq <= after {
				t.Fatalf("tip %s listed with sequence %d after %d", ti.ID, ti.Seq, after)
			}
			after = ti.Seq
			if strings.HasPrefix(ti.ID, "-") {
				// Regression: newsdesk read read such an id as flags.
				t.Errorf("tip id %s starts with '-', which a command line reads as a flag", ti.ID)
			}
			rc, err := crypto.OpenReceipt([]byte(ti.Receipt), f.log)
			if err != nil {
				t.Errorf("tip %s: stored receipt: %v", ti.ID, err)
				continue
			}
			ct, err := r.FetchTip(ctx, ti.ID)
			if err != nil {
				t.Errorf("tip %s: %v", ti.ID, err)
				continue
			}
			sum := sha256.Sum256(ct)
			if int64(len(ct)) != rc.Length || ti.Length != rc.Length || rc.TipIDString() != ti.ID {
				t.Errorf("tip %s: %d bytes stored, listed as %d, receipt says %d: a partial tip", ti.ID, len(ct), ti.Length, rc.Length)
				continue
			}
			if sum != rc.SHA256 || hex.EncodeToString(sum[:]) != ti.SHA256 {
				t.Errorf("tip %s: ciphertext does not match its receipt's SHA-256", ti.ID)
				continue
			}
			tip, err := crypto.Open(ct, f.editor.Identity)
			if err != nil {
				t.Errorf("tip %s: %v", ti.ID, err)
				continue
			}
			stored[ti.ID] = tip.Text
		}
	}
	for _, a := range acked {
		id := a.receipt.TipIDString()
		text, ok := stored[id]
		switch {
		case !ok:
			t.Errorf("acknowledged tip %s (%q) is missing", id, a.text)
		case text != a.text:
			t.Errorf("acknowledged tip %s reads %q, want %q", id, text, a.text)
		}
	}
	return stored
}

// crashCycles, crashReceipts and crashSenders size the crash and SIGTERM
// tests: 32 senders keep many uploads and commits in flight when the
// server stops, and 40 receipts a cycle keep each cycle well under a second.
const (
	crashCycles   = 3
	crashReceipts = 40
	crashSenders  = 32
)

// TestCrashKeepsAcknowledgedTips kills fieldtipd with SIGKILL while 32
// sources send, restarts it on the same data directory, and checks as an
// editor that every tip a source got a receipt for is there and whole, and
// that no stored tip is partial; three times, each on top of the last.
func TestCrashKeepsAcknowledgedTips(t *testing.T) {
	f := newFixture(t)
	srv := f.start(t)
	var acked []sentTip
	for cycle := range crashCycles {
		phones := f.sources(t, crashSenders, srv.URL)
		got := sendUntil(t, srv, phones, fmt.Sprintf("crash %d", cycle), crashReceipts, srv.kill)
		acked = append(acked, got...)
		srv = f.start(t)
		stored := checkStore(t, f, srv.URL, acked)
		t.Logf("crash %d: %d tips acknowledged in all, %d stored", cycle, len(acked), len(stored))
		if t.Failed() {
			break
		}
	}
	srv.stopClean(t)
}

// TestSIGTERMFinishesInFlight stops fieldtipd with SIGTERM while 32
// sources send: it must exit 0 after a clean shutdown, and because every
// commit in flight finishes and is answered, the tips stored are exactly
// those acknowledged.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	f := newFixture(t)
	srv := f.start(t)
	phones := f.sources(t, crashSenders, srv.URL)
	acked := sendUntil(t, srv, phones, "sigterm", crashReceipts, func() { srv.stopClean(t) })
	srv = f.start(t)
	stored := checkStore(t, f, srv.URL, acked)
	if len(stored) != len(acked) {
		t.Errorf("%d tips stored, %d acknowledged: a commit was not answered", len(stored), len(acked))
	}
	srv.stopClean(t)
}

// TestSourceRefusesRogueServer runs the real fieldtip binary against a
// server that is not fieldtipd (a compromised server, or a proxy in the
// middle). A bundle with one byte changed is refused by init, which stores
// nothing, so compose has nothing to encrypt to and nothing is uploaded. A
// receipt the bundle's log key did not sign, or that does not match the
// ciphertext sent, is refused: no tip id is printed and the tip stays in
// the outbox (exit 3).
func TestSourceRefusesRogueServer(t *testing.T) {
	logKey, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "fieldtip-log")
	if err != nil {
		t.Fatal(err)
	}
	otherLog, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "fieldtip-log")
	if err != nil {
		t.Fatal(err)
	}
	newsroom, err := crypto.GenerateSignerKey(crypto.NewsroomKeyHeader, newsdesk.DefaultNewsroomName)
	if err != nil {
		t.Fatal(err)
	}
	editor, err := crypto.GenerateEditorKey("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := crypto.SignBundle(&crypto.Bundle{
		Newsroom: newsroom.Verifier,
		Version:  1,
		Expires:  time.Now().Add(time.Hour).UTC().Truncate(time.Second),
		Log:      logKey.Verifier,
		Policy:   crypto.DefaultPolicy,
		Editors:  []crypto.Editor{editor.Public},
	}, newsroom.Signer)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(bundle, []byte("editor alice "), []byte("editor alicf "), 1)
	if bytes.Equal(tampered, bundle) {
		t.Fatal("found no byte to change in the bundle")
	}
	seed := signedSeed(t, logKey)
	t.Run("tampered bundle", func(t *testing.T) {
		dir := t.TempDir()
		r := &rogue{bundle: tampered, seed: seed, receiptKey: logKey}
		url := r.serve(t)
		_, errOut := run(t, dir, "", 1, "fieldtip", "init", "--config", "src", "--server", url, "--newsroom", newsroom.Verifier)
		want := "fieldtip: init: bundle from server refused: bundle: signature does not verify"
		if !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("init: stderr = %q, want one line starting %q", errOut, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "src")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("config dir after a refused bundle: %v, want none written", err)
		}
		_, errOut = run(t, dir, "", 1, "fieldtip", "send", "--config", "src", "--codename-file", "codename", "--text", "a tip for a rogue server")
		if want := "fieldtip: send: not initialized: run fieldtip init first\n"; errOut != want {
			t.Errorf("send: stderr = %q, want %q", errOut, want)
		}
		if got := r.uploads.Load(); got != 0 {
			t.Errorf("the rogue server saw %d uploads, want 0", got)
		}
	})
	for _, tc := range []struct {
		name   string
		rogue  *rogue
		stderr string
	}{
		{"receipt by another log key", &rogue{bundle: bundle, seed: seed, receiptKey: otherLog},
			"fieldtip: send: receipt refused: "},
		{"receipt for other bytes", &rogue{bundle: bundle, seed: seed, receiptKey: logKey, wrongHash: true},
			"fieldtip: send: receipt refused: it does not match the ciphertext sent; 1 tips "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			url := tc.rogue.serve(t)
			run(t, dir, "", 0, "fieldtip", "init", "--config", "src", "--server", url, "--newsroom", newsroom.Verifier)
			out, errOut := run(t, dir, "", 3, "fieldtip", "send", "--config", "src", "--codename-file", "codename", "--text", "a tip for a rogue server")
			t.Logf("fieldtip send: %s", errOut)
			if out != "" {
				t.Errorf("stdout = %q, want nothing: no tip id without a verified receipt", out)
			}
			if last := lastLine(errOut); !strings.HasPrefix(last, tc.stderr) || !strings.HasSuffix(last, "wait in the outbox: run fieldtip send again later") {
				t.Errorf("last stderr line = %q, want it to start %q and say the tip waits", last, tc.stderr)
			}
			if !strings.Contains(errOut, "fieldtip: sent 0 tips; ") {
				t.Errorf("stderr does not report 0 tips sent:\n%s", errOut)
			}
			if got := tc.rogue.uploads.Load(); got != 1 {
				t.Errorf("the rogue server saw %d uploads, want 1", got)
			}
			if got := tc.rogue.commits.Load(); got < 1 {
				t.Errorf("the rogue server saw %d commits, want at least 1", got)
			}
		})
	}
}
