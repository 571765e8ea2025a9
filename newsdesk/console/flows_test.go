package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/browser"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/newsdesk"

	"filippo.io/age"

	"github.com/chromedp/chromedp"
)

// submit fills the fields of the form sel (CSS selectors relative to it,
// to values) and submits it, then waits for the page it leads to.
func submit(t *testing.T, b *browser.Browser, form string, fields map[string]string) {
	t.Helper()
	var actions []chromedp.Action[chromedp.Void]
	for f, v := range fields {
		actions = append(actions, chromedp.SetValue(chromedp.CSS(form+" "+f), v))
	}
	actions = append(actions, chromedp.Evaluate[chromedp.Void](`window.__before = true`))
	if err := b.Run(actions...); err != nil {
		page, _ := browser.Eval[string](b, "location.href + '\\n' + document.body.textContent")
		t.Fatalf("fill %s: %v\n%s", form, err, page)
	}
	if err := b.Run(chromedp.Submit(chromedp.CSS(form + " button"))); err != nil {
		t.Fatalf("submit %s: %v", form, err)
	}
	wait(t, b, `window.__before === undefined && document.readyState === "complete"`)
	if msg := eval[string](t, b, `(document.querySelector(".flash") || {}).textContent || ""`); strings.HasPrefix(msg, "refused") {
		t.Fatalf("%s: %s", form, msg)
	}
}

// TestConsoleClaims: alice links two tips to a claim in her console (the
// board says what the policy lacks; a link undone from a tip's page and
// made again); bob and carol sign it off in theirs (two consoles, one
// browser); bob publishes; the published page is there, linked from the
// board; bob's correction from the board is on it.
func TestConsoleClaims(t *testing.T) {
	r := newRoom(t, "alice", "bob", "carol")
	tips := []string{r.send(t, "Customs ledger: 40 trucks of concentrate."), r.send(t, "A driver: we load at the mine at night.")}
	ca, cb, cc := r.console(t, "alice", ""), r.console(t, "bob", ""), r.console(t, "carol", "")
	srvHost := strings.TrimPrefix(r.srv.URL, "http://")
	b := browser.Start(t, browser.Options{Hosts: []string{ca.host, cb.host, cc.host, srvHost}})

	// alice: today's period closed (so today's tips can be linked), a
	// claim, and both tips linked in two clusters.
	if err := b.Navigate(ca.url); err != nil {
		t.Fatal(err)
	}
	if err := b.Navigate(ca.base + "/claims"); err != nil {
		t.Fatal(err)
	}
	submit(t, b, `form[action="/claims/period"]`, nil)
	claimText := "Copper concentrate leaves the Hyesan mine by truck at night."
	submit(t, b, "form.newclaim", map[string]string{`input[name="text"]`: claimText, `input[name="scope"]`: "Hyesan"})
	for i, cluster := range []string{"customs", "drivers"} {
		if err := b.Navigate(ca.base + "/tip/" + tips[i]); err != nil {
			t.Fatal(err)
		}
		submit(t, b, "#link", map[string]string{`input[name="cluster"]`: cluster, `input[name="why"]`: "independent of the other"})
	}
	if err := b.Navigate(ca.base + "/claims"); err != nil {
		t.Fatal(err)
	}
	id := eval[string](t, b, `document.querySelector("section.claim").id.slice(2)`)
	board := eval[string](t, b, `document.querySelector("section.claim").textContent`)
	for _, want := range []string{"customs", "drivers", "supports", "A1", "first-hand"} {
		if !strings.Contains(board, want) {
			t.Errorf("the board lacks %q:\n%s", want, board)
		}
	}
	// Before any sign-off the board says what the policy still lacks.
	if lack := eval[string](t, b, `(document.querySelector("section.claim .lacking") || {}).textContent || ""`); !strings.Contains(lack, "still lacks") {
		t.Errorf("the board says nothing of what the policy lacks:\n%s", board)
	}
	// Unlink the second tip from its page, see the board without its
	// cluster, and link it again.
	if err := b.Navigate(ca.base + "/tip/" + tips[1]); err != nil {
		t.Fatal(err)
	}
	submit(t, b, `section.claims form[action$="/unlink"]`, nil)
	if err := b.Navigate(ca.base + "/claims"); err != nil {
		t.Fatal(err)
	}
	if board := eval[string](t, b, `document.querySelector("section.claim").textContent`); strings.Contains(board, "drivers") || !strings.Contains(board, "customs") {
		t.Errorf("after the unlink the board shows:\n%s", board)
	}
	if err := b.Navigate(ca.base + "/tip/" + tips[1]); err != nil {
		t.Fatal(err)
	}
	submit(t, b, "#link", map[string]string{`input[name="cluster"]`: "drivers", `input[name="why"]`: "independent of the other"})

	// bob and carol sign off, each in their console, once its background
	// sync brought the links (a sign-off is over the claim as the board
	// shows it: one over an older state would not count).
	size := ca.c.index.Load().LogSize
	for _, c := range []*running{cb, cc} {
		for deadline := time.Now().Add(failAfter); c.c.index.Load().LogSize < size; {
			if time.Now().After(deadline) {
				t.Fatalf("%s's console never reached alice's log of %d entries", c.c.index.Load().Me, size)
			}
			time.Sleep(50 * time.Millisecond) // polls the index a background sync replaces
		}
		if err := b.Navigate(c.url); err != nil {
			t.Fatal(err)
		}
		if err := b.Navigate(c.base + "/claims"); err != nil {
			t.Fatal(err)
		}
		wait(t, b, fmt.Sprintf(`document.getElementById("c-%s") !== null`, id))
		submit(t, b, fmt.Sprintf(`#c-%s form[action$="/signoff"]`, id), nil)
	}
	// bob publishes.
	if err := b.Navigate(cb.base + "/claims"); err != nil {
		t.Fatal(err)
	}
	submit(t, b, fmt.Sprintf(`#c-%s form[action$="/publish"]`, id), nil)
	// The server accepts it once editors cosigned a checkpoint holding
	// it: the consoles' background syncs cosign.
	page := r.srv.URL + "/claims/" + id
	deadline := time.Now().Add(failAfter)
	for {
		status, _, _ := do(t, "GET", page, "", nil, "")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the claim page is %d after the publication", status)
		}
		time.Sleep(100 * time.Millisecond) // a poll of the server, not a race
	}
	if err := b.Navigate(cb.base + "/claims"); err != nil {
		t.Fatal(err)
	}
	href := eval[string](t, b, fmt.Sprintf(`document.querySelector("#c-%s a.published").href`, id))
	if href != page {
		t.Errorf("the board links %q, want %q", href, page)
	}
	if err := b.Navigate(href); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, b, `document.body.textContent`); !strings.Contains(got, claimText) {
		t.Errorf("the published page lacks the claim:\n%s", got)
	}

	// bob publishes a correction from the board; the published page
	// shows it, and still the claim.
	if err := b.Navigate(cb.base + "/claims"); err != nil {
		t.Fatal(err)
	}
	correction := "The trucks leave at dawn, not at night."
	submit(t, b, fmt.Sprintf(`#c-%s form[action$="/correct"]`, id), map[string]string{`input[name="text"]`: correction})
	for deadline := time.Now().Add(failAfter); ; {
		_, _, body := do(t, "GET", page, "", nil, "")
		if strings.Contains(body, correction) && strings.Contains(body, "Hyesan mine") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the published page lacks the correction:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond) // a poll of the server, not a race
	}
}

// filesHolding returns the files under dirs whose bytes hold any of
// needles.
func filesHolding(t *testing.T, dirs []string, needles ...[]byte) []string {
	t.Helper()
	var out []string
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			for _, n := range needles {
				if bytes.Contains(b, n) {
					out = append(out, path)
					break
				}
			}
			return nil
		})
	}
	return out
}

// TestConsoleLeavesNoPlaintext: after a console session in Chromium
// (search, keyboard triage, a photo viewed), no file under the cache, the
// temporary directory (the browser's profile, the server's data and the
// source's config among it) or the working directory holds the tip's
// marker text or the photo's bytes.
func TestConsoleLeavesNoPlaintext(t *testing.T) {
	tmp, err := os.MkdirTemp("", "console-noplain")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	t.Setenv("TMPDIR", tmp)
	work := filepath.Join(tmp, "work")
	os.Mkdir(work, 0o700)
	t.Chdir(work)

	r := newRoom(t, "alice")
	word := marker("secretword")
	photo := fieldtiptest.PhoneJPEG(96, 64)
	tip := r.send(t, "Only in memory: "+word, crypto.Attachment{Name: "photo-1.jpg", Type: "image/jpeg", Data: photo})
	cache := filepath.Join(tmp, "cache")
	c := r.console(t, "alice", cache)
	b := browser.Start(t, browser.Options{Hosts: []string{c.host}})
	if err := b.Navigate(c.url); err != nil {
		t.Fatal(err)
	}
	if err := b.Navigate(c.base + "/?q=" + url.QueryEscape(word)); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelectorAll("#rows tr").length === 1`)
	if err := b.Run(chromedp.KeyEvent("j"), chromedp.KeyEvent("r")); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelector("#rows tr .status").textContent === "reviewing"`)
	if err := b.Navigate(c.base + "/tip/" + tip); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelector("figure img") !== null && document.querySelector("figure img").naturalWidth === 96`)
	if !strings.Contains(eval[string](t, b, `document.getElementById("text").textContent`), word) {
		t.Fatal("the tip's page does not show the marker: the check below would prove nothing")
	}
	// The browser's profile is written as it runs, and flushed on exit;
	// the session's sealed index at Close.
	if err := b.Run(chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Cancel(b.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.c.s.Close(); err != nil {
		t.Fatal(err)
	}
	// The photo's bytes: its scan data, not its JPEG header (which any
	// JPEG of this size may share).
	chunk := photo[len(photo)-200 : len(photo)-2]
	if held := filesHolding(t, []string{cache, tmp, work}, []byte(word), chunk); len(held) > 0 {
		t.Errorf("files hold the tip's plaintext: %s", strings.Join(held, "\n"))
	}
	if len(filesHolding(t, []string{cache}, []byte("fieldtip/newsdesk-index/v1"))) == 0 {
		t.Error("the cache holds no sealed index: the session did not close as expected")
	}
}

// TestConsoleHandover: an editor a new bundle adds cannot read a tip
// sent before; after `newsdesk handover --to dave` (the real binary) they
// read it in the CLI (inbox, read) and in the console.
func TestConsoleHandover(t *testing.T) {
	r := newRoom(t, "alice")
	word := marker("handedover")
	tip := r.send(t, "Sent before dave joined: "+word)
	r.addEditor(t, "dave")
	daveCache := t.TempDir()
	if out := r.cli(t, "dave", daveCache, "inbox", "--server", r.srv.URL); strings.Contains(out, word) {
		t.Fatalf("dave reads the tip before the handover:\n%s", out)
	}
	r.cli(t, "alice", "", "handover", "--to", "dave", "--server", r.srv.URL)
	if out := r.cli(t, "dave", daveCache, "inbox", "--server", r.srv.URL); !strings.Contains(out, word) {
		t.Errorf("dave's inbox after the handover:\n%s", out)
	}
	if out := r.cli(t, "dave", daveCache, "read", tip); !strings.Contains(out, word) {
		t.Errorf("dave's read after the handover:\n%s", out)
	}
	// A fresh cache of dave's fetches it at its first sync, and the
	// console shows it.
	c := r.console(t, "dave", "")
	b := browser.Start(t, browser.Options{Hosts: []string{c.host}})
	if err := b.Navigate(c.url); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, b, `document.getElementById("rows").textContent`); !strings.Contains(got, "Sent before dave joined") {
		t.Errorf("dave's console inbox:\n%s", got)
	}
	if err := b.Navigate(c.base + "/tip/" + tip); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, b, `document.getElementById("text").textContent`); !strings.Contains(got, word) {
		t.Errorf("dave's console tip page:\n%s", got)
	}
	// The server keeps the re-encryption for dave only.
	ctx := context.Background()
	if _, err := r.srv.Store.TipHandover(ctx, mustTipID(t, tip), "alice"); err == nil {
		t.Error("the server stores a handover of the tip for alice")
	}
	// A server that swaps the re-encryption for another (here, a tip of
	// its choosing sealed to dave) is caught: dave's sync refuses it.
	forged, err := crypto.Seal(&crypto.Tip{Text: "a tip the server made up"}, []age.Recipient{mustRecipient(t, r.editor("dave"))}, 16384)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Store.PutTipHandover(ctx, mustTipID(t, tip), "dave", forged); err != nil {
		t.Fatal(err)
	}
	s, err := newsdesk.OpenSession(ctx, newsdesk.SessionConfig{Cache: t.TempDir(), Server: r.srv.URL, Key: r.editor("dave"), Newsroom: r.newsroom.Verifier})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Sync(ctx); !errors.Is(err, newsdesk.ErrHandedOverMismatch) {
		t.Errorf("dave's sync with a swapped re-encryption: %v, want ErrHandedOverMismatch", err)
	}
	if _, _, err := s.OpenTip(tip); err == nil {
		t.Error("dave opens the tip from a swapped re-encryption")
	}
}

func mustRecipient(t *testing.T, k *crypto.EditorKey) age.Recipient {
	t.Helper()
	rc, err := crypto.ParseRecipient(k.Public.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func mustTipID(t *testing.T, s string) [16]byte {
	t.Helper()
	id, err := crypto.ParseTipID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
