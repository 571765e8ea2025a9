package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"fieldtip/internal/testkit/scripttest"
)

// TestPublishPrintsPublicURL: newsdesk publish prints the claim page's URL
// as the server's answer gives it, not one made from --server (a defect
// noted at issue 9's landing). fieldtipd runs with --public-listen: the
// sources on one listener, the editors and the pages on the other. The
// printed URL is the public listener's, it serves the page (the sources'
// listener does not), and the page's JSON-LD names the same URL. Run
// again with --public-origin (readers reach the pages at another name
// than the one editors post to; here localhost for 127.0.0.1), newsdesk
// publish prints the page on that origin, for the publisher and for
// another editor, and the page and the feed link there.
func TestPublishPrintsPublicURL(t *testing.T) {
	d := newDesk(t)
	d.withThreeEditors(t)
	port, err := scripttest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	public := "127.0.0.1:" + port
	editors := "http://" + public
	srv := d.start(t, "--public-listen", public)

	as := d.editorAt(t, editors)
	tips := d.sendFromTwoSources(t, srv.URL)
	claim := as("alice", "claim", "new", "--text", "Copper concentrate from the Hyesan mine is smuggled into China by truck.")
	as("bob", "period", "close")
	as("alice", "link", claim, tips[0], "--stance", "supports", "--cluster", "drivers", "--reliability", "B", "--credibility", "2", "--access", "first-hand", "--why", "Saw the trucks loaded.")
	as("alice", "link", claim, tips[1], "--stance", "supports", "--cluster", "customs", "--reliability", "C", "--credibility", "3", "--access", "document", "--why", "A ledger page.")
	as("bob", "signoff", claim, "--decision", "approve")
	as("carol", "signoff", claim, "--decision", "approve")
	as("bob", "sync")
	as("carol", "sync")

	path := "/claims/" + claim
	page := as("alice", "publish", claim)
	if want := editors + path; page != want {
		t.Fatalf("newsdesk publish printed %q, want %q (the public listener's)", page, want)
	}
	if ld := pageURLOf(t, page); ld != page {
		t.Errorf("the page's JSON-LD url is %q, want %q", ld, page)
	}
	if code := getStatus(t, srv.URL+path); code != http.StatusNotFound {
		t.Errorf("GET %s on the sources' listener = %d, want 404", path, code)
	}
	srv.stopClean(t)

	// Readers reach the pages at localhost; editors still post to
	// 127.0.0.1. The publication is posted again and answered with the
	// page on the public origin.
	readers := "http://localhost:" + port
	srv = d.start(t, "--public-listen", public, "--public-origin", readers)
	want := readers + path
	if page := as("alice", "publish", claim); page != want {
		t.Errorf("newsdesk publish with --public-origin printed %q, want %q", page, want)
	}
	if page := as("bob", "publish", claim); page != want {
		t.Errorf("newsdesk publish by another editor printed %q, want %q", page, want)
	}
	if ld := pageURLOf(t, editors+path); ld != want {
		t.Errorf("the page's JSON-LD url is %q, want %q", ld, want)
	}
	if feed := string(get(t, editors+"/claims.atom")); !strings.Contains(feed, `href="`+want+`"`) || strings.Contains(feed, editors) {
		t.Errorf("the feed does not link the page on the public origin only:\n%s", feed)
	}
	srv.stopClean(t)
}

// get fetches url and fails the test unless it answers 200.
func get(t *testing.T, url string) []byte {
	t.Helper()
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, %v", url, resp.StatusCode, err)
	}
	return b
}

// getStatus returns the status of GET url.
func getStatus(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var jsonLDRE = regexp.MustCompile(`(?s)<script type="application/ld\+json">(.*?)</script>`)

// pageURLOf fetches a claim page and returns the url its JSON-LD names.
func pageURLOf(t *testing.T, url string) string {
	t.Helper()
	m := jsonLDRE.FindSubmatch(get(t, url))
	if m == nil {
		t.Fatalf("%s has no JSON-LD block", url)
	}
	var ld struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(m[1], &ld); err != nil {
		t.Fatalf("%s: JSON-LD: %v", url, err)
	}
	return ld.URL
}
