package console

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"fieldtip/internal/testkit/browser"

	"github.com/chromedp/chromedp"
)

// TestConsoleKeyboard drives the inbox and a tip's page by keyboard in
// headless Chromium, and checks what the views show: j and k move the
// selection; u sets the status; t opens the selected tip at its tag
// field, m at its note field, a at its assignee; the tip's page shows its
// notes and triage history; the inbox filters by status, tag and day; i
// and l go to the inbox and the log; the log view shows the checkpoint
// and who cosigned it.
func TestConsoleKeyboard(t *testing.T) {
	r := newRoom(t, "alice")
	oldest := r.send(t, "The oldest tip.")
	middle := r.send(t, "The middle tip.")
	newest := r.send(t, "The newest tip.")
	c := r.console(t, "alice", "")
	b := browser.Start(t, browser.Options{Hosts: []string{c.host}})
	if err := b.Navigate(c.url); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelectorAll("#rows tr").length === 3`)
	selected := func() string {
		return eval[string](t, b, `(document.querySelector("#rows tr.sel") || {dataset: {}}).dataset.id || ""`)
	}
	// Newest first: j j k selects the newest again.
	if err := b.Run(chromedp.KeyEvent("j"), chromedp.KeyEvent("j")); err != nil {
		t.Fatal(err)
	}
	if got := selected(); got != middle {
		t.Errorf("after j j the selection is %q, want the middle tip %s", got, middle)
	}
	if err := b.Run(chromedp.KeyEvent("k")); err != nil {
		t.Fatal(err)
	}
	if got := selected(); got != newest {
		t.Errorf("after j j k the selection is %q, want the newest tip %s", got, newest)
	}
	// u marks the selected tip useful (and moves on).
	if err := b.Run(chromedp.KeyEvent("u")); err != nil {
		t.Fatal(err)
	}
	wait(t, b, fmt.Sprintf(`document.querySelector('#rows tr[data-id="%s"] .status').textContent === "useful"`, newest))

	// t on the oldest: its page, the tag field focused.
	if err := b.Run(chromedp.KeyEvent("j")); err != nil { // the selection moved to the middle tip
		t.Fatal(err)
	}
	if got := selected(); got != oldest {
		t.Fatalf("the selection is %q, want the oldest tip %s", got, oldest)
	}
	if err := b.Run(chromedp.KeyEvent("t")); err != nil {
		t.Fatal(err)
	}
	wait(t, b, fmt.Sprintf(`location.pathname === "/tip/%s" && document.activeElement && document.activeElement.id === "tag"`, oldest))
	submit(t, b, "#triage", map[string]string{"#tag": "mining"})
	note := marker("notetext")
	if err := b.Run(chromedp.KeyEvent("m")); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.activeElement && document.activeElement.id === "notetext"`)
	submit(t, b, "#note", map[string]string{"#notetext": note})
	if err := b.Run(chromedp.KeyEvent("a")); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.activeElement && document.activeElement.id === "assignee"`)
	history := eval[string](t, b, `document.querySelector("section.history").textContent`)
	if !strings.Contains(history, note) || !strings.Contains(history, "mining") {
		t.Errorf("the tip's notes and triage history lack the note or the tag:\n%s", history)
	}

	// i: the inbox; its filters.
	eval[bool](t, b, "document.activeElement.blur(), true")
	if err := b.Run(chromedp.KeyEvent("i")); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `location.pathname === "/" && document.querySelectorAll("#rows tr").length === 3`)
	ids := func(query string) string {
		t.Helper()
		if err := b.Navigate(c.base + "/?" + query); err != nil {
			t.Fatal(err)
		}
		return eval[string](t, b, `Array.from(document.querySelectorAll("#rows tr")).map(r => r.dataset.id).join(",")`)
	}
	day := c.c.index.Load().Row(oldest).Day
	for query, want := range map[string]string{
		"status=useful":          newest,
		"tag=mining":             oldest,
		"day=" + day:             newest + "," + middle + "," + oldest,
		"day=2001-01-01":         "",
		"status=new&tag=mining":  oldest,
		"status=useful&tag=none": "",
	} {
		if got := ids(query); got != want {
			t.Errorf("the inbox at ?%s shows %q, want %q", query, got, want)
		}
	}

	// l: the log, with the checkpoint and its cosigner (the background
	// sync cosigns).
	if err := b.Run(chromedp.KeyEvent("l")); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `location.pathname === "/log"`)
	for deadline := time.Now().Add(failAfter); ; {
		text := eval[string](t, b, `document.querySelector("main").textContent`)
		if strings.Contains(text, "Checkpoint:") && strings.Contains(text, "Cosigned by: alice") && strings.Contains(text, oldest) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log view shows no checkpoint cosigned by alice, or lacks the events:\n%s", text)
		}
		time.Sleep(100 * time.Millisecond) // the background sync cosigns; reload to see it
		if err := b.Navigate(c.base + "/log"); err != nil {
			t.Fatal(err)
		}
	}
}
