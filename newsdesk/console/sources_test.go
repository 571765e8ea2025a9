package console

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	fieldtip "fieldtip/client"
	"fieldtip/crypto"
	"fieldtip/internal/testkit/browser"

	"github.com/chromedp/chromedp"
)

// TestConsoleSources drives issue 13's grouping in headless Chromium: two
// tips sent under one codename and one under another (and one from a
// client without a reply address). The inbox says "2 tips from this
// source" on the first two only, and its "same source" filter shows those
// two; the tip page shows the source's thread (its tips, linked, and the
// reply written by newsdesk reply, in order); the console's reply form
// writes a reply that newsdesk thread lists and that the other source,
// and only it, reads; a tip sent while the inbox is open arrives counted;
// no mailbox id reaches a page, and the browser asked nothing of anyone
// but the console.
func TestConsoleSources(t *testing.T) {
	r := newRoom(t, "alice")
	code1, err := crypto.GenerateCodename()
	if err != nil {
		t.Fatal(err)
	}
	code2, err := crypto.GenerateCodename()
	if err != nil {
		t.Fatal(err)
	}
	tip1, keys1 := r.sendAs(t, code1, "Three trucks left the Hyesan mine at night.")
	tip2, _ := r.sendAs(t, code1, "The trucks came back empty at dawn. <b>bold</b>")
	tip3, keys2 := r.sendAs(t, code2, "Customs logged scrap metal.")
	plain := r.send(t, "A tip from a fieldtip without replies.")
	plain2 := r.send(t, "Another one, from the same old phone.")
	asked := marker("Which company owns the trucks? ")
	r.cli(t, "alice", "", "reply", tip1, "--text", asked, "--server", r.srv.URL)
	c := r.console(t, "alice", "")

	b := browser.Start(t, browser.Options{Hosts: []string{c.host}})
	if err := b.Navigate(c.url); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelectorAll("#rows tr").length === 5`)
	sourceLink := func(tip string) string {
		return eval[string](t, b, fmt.Sprintf(`(function () { var a = document.querySelector('#rows tr[data-id="%s"] a.source'); return a ? a.textContent : ""; })()`, tip))
	}
	for tip, want := range map[string]string{tip1: "2 tips from this source", tip2: "2 tips from this source", tip3: "", plain: "", plain2: ""} {
		if got := sourceLink(tip); got != want {
			t.Errorf("the inbox row of %s says %q of its source, want %q", tip, got, want)
		}
	}
	// The mailbox ids stay in the console's memory: pages name a source
	// by one of its tips.
	noMailbox := func(where string) {
		t.Helper()
		page := eval[string](t, b, "document.documentElement.outerHTML + location.href")
		for _, k := range []*crypto.ReplyKeys{keys1, keys2} {
			if m := k.Mailbox.String(); strings.Contains(page, m) || strings.Contains(page, m[:12]) {
				t.Errorf("%s shows a mailbox id", where)
			}
		}
	}
	noMailbox("the inbox")

	// The "same source" filter, from the row's link.
	if err := b.Run(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#rows tr[data-id="%s"] a.source`, tip2)))); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `location.search.indexOf("source=") >= 0 && document.getElementById("source-filter") !== null`)
	rows := func() string {
		return eval[string](t, b, `Array.from(document.querySelectorAll("#rows tr")).map(r => r.dataset.id).sort().join(",")`)
	}
	if got, want := rows(), strings.Join(slices.Sorted(slices.Values([]string{tip1, tip2})), ","); got != want {
		t.Errorf("the tips from the source of %s: %s, want %s", tip2, got, want)
	}
	if err := b.Navigate(c.base + "/?source=" + url.QueryEscape(plain)); err != nil {
		t.Fatal(err)
	}
	if got := rows(); got != plain {
		t.Errorf("the tips from the source of %s (no reply address): %s, want it alone", plain, got)
	}

	// The tip page: the count, and the thread in order, the other tip
	// linked, the hostile text as text.
	if err := b.Navigate(c.base + "/tip/" + tip2); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, b, `document.getElementById("source-tips").textContent`); got != "2 tips from this source" {
		t.Errorf("tip %s's page says %q of its source", tip2, got)
	}
	thread := func() []string {
		return eval[[]string](t, b, `Array.from(document.querySelectorAll("ol.thread li")).map(li => li.className + "|" + (li.querySelector("a") ? li.querySelector("a").getAttribute("href") : "") + "|" + li.querySelector("pre").textContent)`)
	}
	want := []string{
		"from-source|/tip/" + tip1 + "|Three trucks left the Hyesan mine at night.",
		"from-source current||The trucks came back empty at dawn. <b>bold</b>",
		"reply||" + asked,
	}
	if got := thread(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tip %s's thread:\n%s\nwant:\n%s", tip2, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := eval[int](t, b, `document.querySelectorAll("#thread b").length`); n != 0 {
		t.Errorf("the thread made %d <b> elements of a tip's text", n)
	}
	if got := eval[string](t, b, `document.querySelector("ol.thread li.reply .meta").textContent`); !strings.Contains(got, "reply by alice") {
		t.Errorf("the reply is shown as %q, want it by alice", got)
	}
	noMailbox("a tip page")

	// The other source's tip: no count, a thread of one, and the reply
	// form; a POST without the CSRF token is refused.
	if err := b.Navigate(c.base + "/tip/" + tip3); err != nil {
		t.Fatal(err)
	}
	if n := eval[int](t, b, `document.querySelectorAll("#source-tips").length`); n != 0 {
		t.Errorf("tip %s's page counts its source's tips: it sent one", tip3)
	}
	if got := thread(); len(got) != 1 || !strings.HasPrefix(got[0], "from-source current|") {
		t.Errorf("tip %s's thread: %q, want itself alone", tip3, got)
	}
	status := fetchInPage[int](t, b, fmt.Sprintf(`fetch("/tip/%s/reply", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "text=forged"}).then(r => r.status)`, tip3))
	if status != 403 {
		t.Errorf("a reply posted without the CSRF token: status %d, want 403", status)
	}
	answer := marker("Which port? ")
	submit(t, b, "#reply", map[string]string{"textarea": answer})
	if msg := eval[string](t, b, `document.querySelector(".flash").textContent`); !strings.Contains(msg, "reply logged as event") {
		t.Errorf("after the reply form: %q", msg)
	}
	if got := thread(); len(got) != 2 || got[1] != "reply||"+answer {
		t.Errorf("after the console's reply, tip %s's thread: %q", tip3, got)
	}
	if out := r.cli(t, "alice", "", "thread", tip3, "--server", r.srv.URL); !strings.Contains(out, "reply@") || !strings.Contains(out, answer) || strings.Contains(out, "forged") {
		t.Errorf("newsdesk thread %s after the console's reply:\n%s", tip3, out)
	}
	// Each source reads its own reply, and only it.
	for _, k := range []struct {
		keys *crypto.ReplyKeys
		text string
	}{{keys2, answer}, {keys1, asked}} {
		if got := fetchReplies(t, r, k.keys); len(got) != 1 || got[0] != k.text {
			t.Errorf("a source fetched %q, want only %q", got, k.text)
		}
	}

	// A tip sent while the inbox is open arrives counted with its source.
	if err := b.Navigate(c.base + "/"); err != nil {
		t.Fatal(err)
	}
	tip4, _ := r.sendAs(t, code1, "Kangso Trading.")
	wait(t, b, fmt.Sprintf(`document.querySelector('#rows tr[data-id="%s"]') !== null`, tip4))
	if got := sourceLink(tip4); got != "3 tips from this source" {
		t.Errorf("the new tip's row says %q of its source, want 3 tips", got)
	}
	if got := c.c.index.Load().Row(tip1).SourceTips; got != 3 {
		t.Errorf("the index counts %d tips from tip %s's source, want 3", got, tip1)
	}

	for _, req := range b.Requests() {
		u, err := url.Parse(req.URL)
		if err != nil || u.Host != c.host {
			t.Errorf("a request to %s", req.URL)
		}
	}
}

// fetchReplies fetches, as the source of keys (the first source's config
// dir is as good as any: the server cannot tell), the replies that wait
// for it, and returns their texts.
func fetchReplies(t *testing.T, r *room, keys *crypto.ReplyKeys) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	var dir string
	for _, d := range r.sources {
		dir = d
		break
	}
	cfg, _, _, err := fieldtip.Init(ctx, dir, r.srv.URL, r.newsroom.Verifier, fieldtip.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := fieldtip.FetchReplies(ctx, cfg, keys, fieldtip.FetchOptions{Budget: failAfter})
	if err != nil {
		t.Fatalf("fetch replies: %v", err)
	}
	var out []string
	for _, rp := range rep.Replies {
		out = append(out, rp.Text)
	}
	return out
}
