package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/browser"
	"fieldtip/internal/testkit/fieldtiptest"

	"github.com/chromedp/chromedp"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the README's screenshot, docs/console.png, from TestConsoleBrowser")

// hostileText is a tip written to break the page: markup, a script, an
// event handler, a bidirectional override and zero-width characters.
const hostileText = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\"> \u202Egnp.exe \u200Bcopper\u200D & <b>bold</b>"

// pdf is a small PDF whose bytes are unmistakable.
func pdf(mark string) []byte {
	return []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% " + mark + "\ntrailer << /Root 1 0 R >>\n%%EOF\n")
}

// wait polls a JavaScript expression in the page until it is true.
// A navigation in flight (a form submitted) destroys the page's context
// under a poll: poll again in the new page, until the browser's timeout.
func wait(t *testing.T, b *browser.Browser, expr string) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		_, err := browser.Value(b, chromedp.Poll[bool](expr))
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "context") || time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", expr, err)
		}
	}
}

func eval[T any](t *testing.T, b *browser.Browser, expr string) T {
	t.Helper()
	v, err := browser.Eval[T](b, expr)
	if err != nil {
		t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

func fetchInPage[T any](t *testing.T, b *browser.Browser, expr string) T {
	t.Helper()
	v, err := browser.Value(b, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

// TestConsoleBrowser drives alice's console in headless Chromium: the
// printed URL opens it (and leaves no token in the address); hostile tip
// text and attachment names stay text; search finds a tip by a word of
// its text; a triage by keyboard is in the CLI's newsdesk log; a tip sent
// while the page is open appears without a reload; a photo is shown
// re-encoded; a PDF is offered only as a download, with a warning and its
// SHA-256; and the browser sent no request anywhere but the console.
func TestConsoleBrowser(t *testing.T) {
	r := newRoom(t, "alice", "bob")
	word := marker("copperword")
	hostile := r.send(t, hostileText+"\nThe trucks leave at night: "+word)
	photo := fieldtiptest.PhoneJPEG(64, 48)
	photoTip := r.send(t, "The new fence on the river bank.", crypto.Attachment{Name: "photo-1.jpg", Type: "image/jpeg", Data: photo})
	doc := pdf(marker("pdf"))
	pdfName := "\"><img src=x onerror=alert(1)>\u202Efdp.exe"
	pdfTip := r.send(t, "The permit, as issued.", crypto.Attachment{Name: pdfName, Type: "application/pdf", Data: doc})
	c := r.console(t, "alice", "")

	b := browser.Start(t, browser.Options{Hosts: []string{c.host}})
	if err := b.Run(chromedp.EmulateViewport(1100, 560)); err != nil {
		t.Fatal(err)
	}
	if err := b.Navigate(c.url); err != nil {
		t.Fatal(err)
	}
	if loc := eval[string](t, b, "location.href"); loc != c.base+"/" {
		t.Errorf("after the first load the address is %q, want %q (no token)", loc, c.base+"/")
	}
	wait(t, b, `document.querySelectorAll("#rows tr").length === 3`)
	if got := eval[int](t, b, `document.querySelectorAll("script").length`); got != 1 {
		t.Errorf("%d scripts in the inbox, want the console's one", got)
	}
	if got := eval[int](t, b, `document.querySelectorAll("#rows img, #rows b").length`); got != 0 {
		t.Errorf("the hostile first line made %d elements", got)
	}
	// A row: day, size, status, tags, assignee, first line, attachments.
	cells := eval[[]string](t, b, fmt.Sprintf(`Array.from(document.querySelectorAll('#rows tr[data-id="%s"] td')).map(td => td.textContent)`, photoTip))
	if want := []string{c.c.index.Load().Row(photoTip).Day, "16.0 KiB", "new", "", "", "The new fence on the river bank.", "1"}; !slices.Equal(cells, want) {
		t.Errorf("the photo tip's row shows %q, want %q", cells, want)
	}
	if *updateScreenshot {
		png, err := browser.Value(b, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("../../docs/console.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Search: one word of one tip's text.
	if err := b.Run(chromedp.SetValue(chromedp.CSS("#q"), word), chromedp.Submit(chromedp.CSS("#q"))); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `location.search.indexOf("q=") >= 0 && document.querySelectorAll("#rows tr").length === 1`)
	if got := eval[string](t, b, `document.querySelector("#rows tr").dataset.id`); got != hostile {
		t.Errorf("the search found %s, want %s", got, hostile)
	}

	// The hostile tip's page: its text is text.
	if err := b.Navigate(c.base + "/tip/" + hostile); err != nil {
		t.Fatal(err)
	}
	text := eval[string](t, b, `document.getElementById("text").textContent`)
	if !strings.Contains(text, "<script>window.__pwned=1</script>") || strings.ContainsAny(text, "\u202E\u200B\u200D") {
		t.Errorf("the tip's text shows as %q: want the markup as text, the format characters replaced", text)
	}
	if got := eval[bool](t, b, `window.__pwned === undefined && document.querySelectorAll("article img, article b").length === 0`); !got {
		t.Error("the hostile tip ran or made elements")
	}

	// Keyboard triage in the inbox: j selects the newest, u marks it useful.
	if err := b.Navigate(c.base + "/"); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(chromedp.KeyEvent("j"), chromedp.KeyEvent("u")); err != nil {
		t.Fatal(err)
	}
	wait(t, b, fmt.Sprintf(`document.querySelector('#rows tr[data-id="%s"] .status').textContent === "useful"`, pdfTip))
	log := r.cli(t, "bob", "", "log", "--server", r.srv.URL)
	found := false
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, pdfTip) && strings.Contains(line, "triage") && strings.Contains(line, "useful") && strings.Contains(line, "alice") {
			found = true
		}
	}
	if !found {
		t.Errorf("newsdesk log (as bob) has no useful triage of %s by alice:\n%s", pdfTip, log)
	}

	// A new tip while the page is open: it appears, without a reload.
	eval[bool](t, b, "window.__stay = true")
	fresh := r.send(t, "Sent while the console was open.")
	wait(t, b, fmt.Sprintf(`document.querySelector('#rows tr[data-id="%s"]') !== null`, fresh))
	if !eval[bool](t, b, "window.__stay === true") {
		t.Error("the page reloaded to show the new tip")
	}

	// The photo: shown, re-encoded, never the bytes as sent.
	if err := b.Navigate(c.base + "/tip/" + photoTip); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelector("figure img") !== null && document.querySelector("figure img").complete`)
	if w := eval[int](t, b, `document.querySelector("figure img").naturalWidth`); w != 64 {
		t.Errorf("the photo shows %d pixels wide, want 64", w)
	}
	shown := fetchInPage[string](t, b, `fetch(document.querySelector("figure img").src).then(r => r.arrayBuffer()).then(b => Array.from(new Uint8Array(b)).map(x => x.toString(16).padStart(2, "0")).join(""))`)
	if raw, _ := hex.DecodeString(shown); len(raw) == 0 || bytes.Equal(raw, photo) || bytes.Contains(raw, []byte("Exif")) {
		t.Errorf("the image served is %d bytes, the photo as sent or with its EXIF", len(raw))
	}

	// The PDF: a download only, with a warning and its SHA-256.
	if err := b.Navigate(c.base + "/tip/" + pdfTip); err != nil {
		t.Fatal(err)
	}
	if got := eval[int](t, b, `document.querySelectorAll("article img, embed, object, iframe").length`); got != 0 {
		t.Errorf("the PDF's page has %d embedded elements", got)
	}
	sum := sha256.Sum256(doc)
	page := eval[string](t, b, `document.querySelector("article").textContent`)
	if !strings.Contains(page, hex.EncodeToString(sum[:])) || !strings.Contains(page, "malware") {
		t.Errorf("the PDF's page lacks its SHA-256 or the warning:\n%s", page)
	}
	cd := fetchInPage[string](t, b, `fetch(document.querySelector("a.download").href).then(r => r.headers.get("content-disposition") + "|" + r.headers.get("content-type"))`)
	if !strings.HasPrefix(cd, "attachment;") || !strings.HasSuffix(cd, "|application/octet-stream") || strings.ContainsAny(cd, "<>\u202E") {
		t.Errorf("the download is served with %q", cd)
	}

	// Assign it to bob, then find it by its assignee.
	if err := b.Run(chromedp.SetValue(chromedp.CSS("#assignee"), "bob"), chromedp.Submit(chromedp.CSS("#assign button"))); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelector(".flash") !== null && document.querySelector(".flash").textContent.indexOf("assignment logged") >= 0`)
	if err := b.Navigate(c.base + "/?assignee=bob"); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, b, `Array.from(document.querySelectorAll("#rows tr")).map(r => r.dataset.id + ":" + r.querySelector(".assignee").textContent + ":" + r.querySelector(".status").textContent).join(",")`); got != pdfTip+":bob:useful" {
		t.Errorf("the tips assigned to bob: %q, want %s:bob:useful (the assignment keeps the status)", got, pdfTip)
	}

	// The CLI writes the same events: bob unassigns it, and alice's
	// console shows it after its next sync.
	r.cli(t, "bob", "", "assign", pdfTip, "--nobody", "--server", r.srv.URL)
	for deadline := time.Now().Add(failAfter); c.c.index.Load().Row(pdfTip).Assignee != ""; {
		if time.Now().After(deadline) {
			t.Fatal("alice's console still shows the tip assigned after bob's newsdesk assign --nobody")
		}
		time.Sleep(50 * time.Millisecond) // polls the index a background sync replaces
	}

	// The log view names the triage.
	if err := b.Navigate(c.base + "/log"); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, b, `document.querySelector("table.log").textContent`); !strings.Contains(got, pdfTip) || !strings.Contains(got, "useful") {
		t.Errorf("the log view lacks the triage:\n%s", got)
	}
	for _, req := range b.Requests() {
		u, err := url.Parse(req.URL)
		if err != nil || u.Host != c.host {
			t.Errorf("a request to %s", req.URL)
		}
	}
}

// TestConsoleCSRF: a page of another origin on this machine (another
// port: the same site, so SameSite does not stop it) posts a triage form
// to the console in the editor's browser, which holds the cookie. The
// console refuses it; nothing is logged.
func TestConsoleCSRF(t *testing.T) {
	r := newRoom(t, "alice")
	tip := r.send(t, "a tip the attacker wants marked spam")
	c := r.console(t, "alice", "")
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>cat pictures</title>
<form id="f" method="post" action="%s/tip/%s/triage"><input name="status" value="spam"><input name="csrf" value="guess"></form>
<script>document.getElementById("f").submit()</script>`, c.base, tip)
	}))
	t.Cleanup(attacker.Close)
	b := browser.Start(t, browser.Options{Hosts: []string{c.host, attacker.Listener.Addr().String()}})
	if err := b.Navigate(c.url); err != nil {
		t.Fatal(err)
	}
	size := c.c.index.Load().LogSize
	if err := b.Navigate(attacker.URL + "/"); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `location.href.indexOf("/triage") >= 0 && document.body.textContent.indexOf("CSRF") >= 0`)
	if got := c.c.index.Load(); got.LogSize != size || got.Row(tip).Status != "new" {
		t.Errorf("after the forged form: log %d entries (was %d), status %s", got.LogSize, size, got.Row(tip).Status)
	}
}

// TestConsoleBrowserRefuses: in Chromium, the console refuses a page
// without its cookie, the token at another Host name (localhost: a name
// that resolves to 127.0.0.1 like a rebound one), and the token a second
// time; the right URL, once, lets the browser in.
func TestConsoleBrowserRefuses(t *testing.T) {
	r := newRoom(t, "alice")
	r.send(t, "a tip behind the cookie")
	c := r.console(t, "alice", "")
	port := c.host[strings.LastIndex(c.host, ":")+1:]
	b := browser.Start(t, browser.Options{Hosts: []string{c.host, "localhost:" + port}})
	body := func() string { return eval[string](t, b, "document.body.textContent") }
	if err := b.Navigate(c.base + "/"); err != nil {
		t.Fatal(err)
	}
	if got := body(); !strings.Contains(got, "open the console with the link") || strings.Contains(got, "behind the cookie") {
		t.Errorf("without the cookie: %q", got)
	}
	if err := b.Navigate(strings.Replace(c.url, c.host, "localhost:"+port, 1)); err != nil {
		t.Fatal(err)
	}
	if got := body(); !strings.Contains(got, "answers only at") {
		t.Errorf("at Host localhost: %q", got)
	}
	if err := b.Navigate(c.url); err != nil {
		t.Fatal(err)
	}
	if got := body(); !strings.Contains(got, "behind the cookie") {
		t.Errorf("with the printed URL: %q", got)
	}
	if err := b.Navigate(c.url); err != nil {
		t.Fatal(err)
	}
	if got := body(); !strings.Contains(got, "used already") {
		t.Errorf("the token again: %q", got)
	}
}
