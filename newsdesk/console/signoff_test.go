package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/internal/testkit/browser"

	"github.com/chromedp/chromedp"
)

// TestConsoleSignoffOverWhatItShowed: bob opens the claim board; while
// the page is open, alice links more evidence (with the CLI) and bob's
// console syncs it in the background. bob's sign-off from the page he
// opened before is refused, nothing is logged; from the board drawn
// again it is logged, over the state he now sees.
func TestConsoleSignoffOverWhatItShowed(t *testing.T) {
	r := newRoom(t, "alice", "bob")
	tips := []string{r.send(t, "Customs ledger: 40 trucks of concentrate."), r.send(t, "A driver: we load at the mine at night.")}
	cb := r.console(t, "bob", "")
	srvHost := strings.TrimPrefix(r.srv.URL, "http://")
	b := browser.Start(t, browser.Options{Hosts: []string{cb.host, srvHost}})

	alice := t.TempDir()
	r.cli(t, "alice", alice, "period", "close", "--server", r.srv.URL)
	out := r.cli(t, "alice", alice, "claim", "new", "--text", "Concentrate leaves by truck at night.", "--server", r.srv.URL)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	id := strings.TrimSpace(lines[len(lines)-1])
	cid, err := audit.ParseClaimID(id)
	if err != nil {
		t.Fatalf("newsdesk claim new printed %q: %v", out, err)
	}
	link := func(tip, cluster string) {
		r.cli(t, "alice", alice, "link", id, tip, "--stance", "supports", "--cluster", cluster, "--reliability", "B",
			"--credibility", "2", "--access", "first-hand", "--why", "seen by "+cluster, "--server", r.srv.URL)
	}
	link(tips[0], "customs")

	if err := b.Navigate(cb.url); err != nil {
		t.Fatal(err)
	}
	// The background sync brings the claim with its first link; then the
	// board is drawn over it.
	deadline := time.Now().Add(failAfter)
	for c := cb.c.s.State().Claim(cid); c == nil || len(c.ActiveLinks()) != 1; c = cb.c.s.State().Claim(cid) {
		if time.Now().After(deadline) {
			t.Fatal("bob's console never synced the claim and its link")
		}
		time.Sleep(50 * time.Millisecond) // a poll of the console's sync, not a race
	}
	if err := b.Navigate(cb.base + "/claims"); err != nil {
		t.Fatal(err)
	}
	form := fmt.Sprintf(`#c-%s form[action$="/signoff"]`, id)
	shown := eval[string](t, b, `document.querySelector('`+form+` input[name="changes"]').value`)
	if shown != fmt.Sprint(cb.c.s.State().Claim(cid).Changes) {
		t.Fatalf("the sign-off form carries changes %q, the claim has %d", shown, cb.c.s.State().Claim(cid).Changes)
	}

	// While bob's page is open, alice links a second tip; bob's console
	// syncs it.
	link(tips[1], "drivers")
	deadline = time.Now().Add(failAfter)
	for len(cb.c.s.State().Claim(cid).ActiveLinks()) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("bob's console never synced alice's second link")
		}
		time.Sleep(50 * time.Millisecond) // a poll of the console's sync, not a race
	}

	// The page bob still has open was drawn over one link: refused.
	if err := b.Run(chromedp.Evaluate[chromedp.Void](`window.__before = true`), chromedp.Submit(chromedp.CSS(form+" button"))); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `window.__before === undefined && document.readyState === "complete"`)
	msg := eval[string](t, b, `(document.querySelector(".flash") || {}).textContent || ""`)
	if !strings.Contains(msg, "refused") || !strings.Contains(msg, "changed since this page showed it") {
		t.Errorf("a sign-off from a page drawn before the change: the console says %q", msg)
	}
	if n := len(cb.c.s.State().Claim(cid).Signoffs); n != 0 {
		t.Fatalf("the refused sign-off logged %d sign-offs", n)
	}

	// Drawn again, the page shows both links, and the sign-off is over them.
	if err := b.Navigate(cb.base + "/claims"); err != nil {
		t.Fatal(err)
	}
	submit(t, b, form, nil)
	c := cb.c.s.State().Claim(cid)
	if len(c.Signoffs) != 1 || c.Signoffs[0].Changes != c.Changes || c.Signoffs[0].Editor != "bob" {
		t.Fatalf("after the sign-off from the page drawn again: sign-offs %+v, claim changes %d", c.Signoffs, c.Changes)
	}
}

// TestConsoleSignoffHostileForms posts sign-offs whose "changes" field or
// claim id a hurried user or a hostile page could send: each is refused
// with a message that carries no raw control character, and nothing is
// logged; the form's own value then goes through.
func TestConsoleSignoffHostileForms(t *testing.T) {
	r := newRoom(t, "alice", "bob")
	tip := r.send(t, "Customs ledger: 40 trucks of concentrate.")
	cb := r.console(t, "bob", "")
	alice := t.TempDir()
	r.cli(t, "alice", alice, "period", "close", "--server", r.srv.URL)
	out := r.cli(t, "alice", alice, "claim", "new", "--text", "Concentrate leaves by truck.", "--server", r.srv.URL)
	id := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	cid, err := audit.ParseClaimID(id)
	if err != nil {
		t.Fatalf("newsdesk claim new printed %q: %v", out, err)
	}
	r.cli(t, "alice", alice, "link", id, tip, "--stance", "supports", "--cluster", "customs", "--reliability", "B",
		"--credibility", "2", "--access", "first-hand", "--why", "a ledger", "--server", r.srv.URL)
	deadline := time.Now().Add(failAfter)
	for c := cb.c.s.State().Claim(cid); c == nil || len(c.ActiveLinks()) != 1; c = cb.c.s.State().Claim(cid) {
		if time.Now().After(deadline) {
			t.Fatal("bob's console never synced the claim and its link")
		}
		time.Sleep(50 * time.Millisecond) // a poll of the console's sync, not a race
	}
	changes := fmt.Sprint(cb.c.s.State().Claim(cid).Changes)
	cookie := cb.login(t)
	post := func(claim string, form url.Values) (int, string) {
		t.Helper()
		form.Set(csrfField, cb.c.auth.csrf)
		form.Set("decision", "approve")
		h := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}, "Origin": {cb.base},
			"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}}
		status, _, body := do(t, "POST", cb.base+"/claims/"+claim+"/signoff", "", h, form.Encode())
		return status, body
	}
	for _, tc := range []struct {
		name, claim string
		form        url.Values
	}{
		{"no changes field", id, url.Values{}},
		{"empty", id, url.Values{"changes": {""}}},
		{"not a number", id, url.Values{"changes": {"two"}}},
		{"escape sequence", id, url.Values{"changes": {"\x1b]0;pwned\x07\u202e"}}},
		{"negative", id, url.Values{"changes": {"-1"}}},
		{"an older state", id, url.Values{"changes": {"1"}}},
		{"a later state", id, url.Values{"changes": {"99"}}},
		{"beyond int64", id, url.Values{"changes": {"99999999999999999999"}}},
		{"huge", id, url.Values{"changes": {strings.Repeat("9", 100000)}}},
		{"no such claim", "AAAAAAAAAAAAAAAAAAAAAA", url.Values{"changes": {changes}}},
		{"hostile claim id", url.PathEscape("\x1b[2J" + id), url.Values{"changes": {changes}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(tc.claim, tc.form)
			if status != http.StatusConflict || !strings.Contains(body, `"error"`) {
				t.Fatalf("want the console's refusal (409, an error), got %d: %s", status, body)
			}
			if strings.ContainsAny(body, "\x1b\x07\u202e") {
				t.Errorf("the refusal carries a raw control or format character: %q", body)
			}
			if n := len(cb.c.s.State().Claim(cid).Signoffs); n != 0 {
				t.Fatalf("a refused sign-off logged %d sign-offs", n)
			}
		})
	}
	if status, body := post(id, url.Values{"changes": {changes}}); status != http.StatusOK || !strings.Contains(body, `"index"`) {
		t.Fatalf("the form's own value: %d %s", status, body)
	}
	if n := len(cb.c.s.State().Claim(cid).Signoffs); n != 1 {
		t.Fatalf("after the sign-off with the form's value: %d sign-offs, want 1", n)
	}
}
