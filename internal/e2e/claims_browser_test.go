package e2e

import (
	"net/url"
	"strings"
	"testing"

	"fieldtip/internal/testkit/browser"
)

// TestClaimPageInChromium publishes a claim with the real binaries (three
// editors, two tips from two sources, links in two clusters, two
// approvals) and opens its public page in a real headless Chromium: the
// page shows the claim's text and "how we know"; after newsdesk correct,
// it shows the correction and still the text; and the browser loaded
// nothing from outside the server (internal/testkit/browser fails the
// test on any request to another host).
func TestClaimPageInChromium(t *testing.T) {
	d := newDesk(t)
	d.withThreeEditors(t)
	srv := d.start(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := browser.Start(t, browser.Options{Hosts: []string{u.Host}})

	as := d.editorAt(t, srv.URL)
	tips := d.sendFromTwoSources(t, srv.URL)
	claimText := "Copper concentrate from the Hyesan mine is smuggled into China by truck."
	claim := as("alice", "claim", "new", "--text", claimText, "--scope", "Hyesan, in March")
	as("bob", "period", "close")
	as("alice", "link", claim, tips[0], "--stance", "supports", "--cluster", "drivers", "--reliability", "B", "--credibility", "2", "--access", "first-hand", "--why", "Saw the trucks loaded.")
	as("alice", "link", claim, tips[1], "--stance", "supports", "--cluster", "customs", "--reliability", "C", "--credibility", "3", "--access", "document", "--why", "A ledger page.", "--private-why")
	as("bob", "signoff", claim, "--decision", "approve")
	as("carol", "signoff", claim, "--decision", "approve")
	as("bob", "sync")
	as("carol", "sync")
	page := as("alice", "publish", claim)
	if want := srv.URL + "/claims/" + claim; page != want {
		t.Fatalf("newsdesk publish printed %q, want %q", page, want)
	}

	text := func() string {
		t.Helper()
		if err := b.Navigate(page); err != nil {
			t.Fatal(err)
		}
		s, err := b.Text("body")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	body := text()
	// innerText follows the style sheet's text-transform: headings may
	// come out in capitals.
	for _, want := range []string{claimText, "Hyesan, in March", "drivers", "customs"} {
		if !strings.Contains(body, want) {
			t.Errorf("the claim page, as Chromium renders it, lacks %q:\n%s", want, body)
		}
	}
	for _, want := range []string{"how we know"} {
		if !strings.Contains(strings.ToLower(body), want) {
			t.Errorf("the claim page, as Chromium renders it, lacks %q:\n%s", want, body)
		}
	}
	correction := "The trucks cross at dawn as well as at night."
	as("carol", "correct", claim, "--kind", "correction", "--text", correction)
	body = text()
	for _, want := range []string{claimText, correction} {
		if !strings.Contains(body, want) {
			t.Errorf("the claim page after newsdesk correct lacks %q:\n%s", want, body)
		}
	}
	for _, secret := range append(tips, "Three trucks", "scrap metal", "A ledger page.") {
		if strings.Contains(body, secret) {
			t.Errorf("the claim page shows %q", secret)
		}
	}
	reqs := b.Requests()
	if len(reqs) == 0 {
		t.Fatal("the browser recorded no request: the check of where it loaded from proves nothing")
	}
	for _, r := range reqs {
		if r.URL != "about:blank" && !strings.HasPrefix(r.URL, srv.URL+"/") {
			t.Errorf("the browser loaded %s %s", r.Type, r.URL)
		}
	}
	srv.stopClean(t)
}
