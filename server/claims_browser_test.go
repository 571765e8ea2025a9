package server

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fieldtip/audit"
	"fieldtip/internal/testkit/browser"
	"fieldtip/protocol"
)

// hostileText is a claim text an editor could write (HTML is allowed in a
// claim's text; control and format characters are refused upstream): if
// the page rendered it as markup, the script would set window.pwned, the
// image would be requested from another host (on loopback) and its
// handler would run, and the style would hide the page.
const hostileText = `Trucks <script>window.pwned=1</script><img src="http://127.0.0.2:9/x.png" onerror="window.pwned=2"><style>body{display:none}</style> & "quotes" leave at night.`

// TestClaimPageInBrowser loads a published claim's page in headless
// Chromium: it renders the claim's text as text (hostile markup inert)
// and "how we know", its JSON-LD parses and names ReportageNewsArticle,
// a correction posted later shows after a reload, and no request ever
// leaves the server (the kit fails the test otherwise).
func TestClaimPageInBrowser(t *testing.T) {
	r := newClaimRun(t, "trucks at the north gate at 2am", "the rail yard loads copper", "the mine runs a night shift")
	c := r.newClaim(0, hostileText, "Hyesan <b>March</b> 2026")
	c.link(0, 0, "north gate", audit.StanceSupports)
	c.link(0, 1, "rail yard", audit.StanceSupports)
	c.link(0, 2, "rail yard", audit.StanceContradicts)
	c.signoff(1, audit.DecisionApprove)
	c.signoff(2, audit.DecisionApprove)
	req := c.publishEvent(0)
	r.cosignAll(0, 1, 2)
	r.published(0, req, http.StatusOK)

	u, err := url.Parse(r.origin())
	if err != nil {
		t.Fatal(err)
	}
	b := browser.Start(t, browser.Options{Hosts: []string{u.Host}})
	page := r.origin() + protocol.ClaimPath(c.id.String())
	if err := b.Navigate(page); err != nil {
		t.Fatalf("navigate to the claim page: %v", err)
	}
	if dir := os.Getenv("FIELDTIP_SCREENSHOTS"); dir != "" {
		if err := b.Screenshot(filepath.Join(dir, "claim.png")); err != nil {
			t.Log(err)
		}
	}
	h1, err := browser.Eval[string](b, `document.querySelector("#claim").textContent`)
	if err != nil || h1 != hostileText {
		t.Errorf("the claim's text as rendered = %q, %v, want %q as text", h1, err, hostileText)
	}
	if n, err := browser.Eval[int](b, `document.querySelectorAll("script:not([type='application/ld+json']), img, style:not([nonce])").length`); err != nil || n != 0 {
		t.Errorf("the page holds %d script, img or unnonced style elements (%v): markup in the text was not escaped", n, err)
	}
	if p, err := browser.Eval[string](b, `String(window.pwned)`); err != nil || p != "undefined" {
		t.Errorf("window.pwned = %s, %v: the claim's markup ran", p, err)
	}
	if vis, err := browser.Eval[bool](b, `getComputedStyle(document.body).display !== "none"`); err != nil || !vis {
		t.Errorf("the body is hidden (%v): the claim's style applied", err)
	}
	how, err := b.Text("#how-we-know")
	if err != nil {
		t.Fatal(err)
	}
	if h2, err := browser.Eval[string](b, `document.querySelector("#how-we-know h2").textContent`); err != nil || h2 != "How we know" {
		t.Errorf("the section's heading = %q, %v", h2, err)
	}
	for _, want := range []string{"2 independent clusters of supporting evidence", "Cluster “north gate”, 1 tip",
		"usually reliable (B)", "probably true (2)", "knows it first-hand", "contradicts the claim",
		"2 editors approved this version of the claim: editor-1 and editor-2, none of them its author (editor-0)",
		"received on " + r.today(), "cosigned by editor-0, editor-1 and editor-2", "cannot be proved"} {
		if !strings.Contains(how, want) {
			t.Errorf("how we know lacks %q:\n%s", want, how)
		}
	}
	if scope, err := b.Text("#scope"); err != nil || !strings.Contains(scope, "Hyesan <b>March</b> 2026") {
		t.Errorf("scope = %q, %v", scope, err)
	}

	ld, err := browser.Eval[map[string]any](b, `JSON.parse(document.querySelector('script[type="application/ld+json"]').textContent)`)
	if err != nil {
		t.Fatalf("the JSON-LD does not parse: %v", err)
	}
	if ld["@type"] != "ReportageNewsArticle" || ld["@context"] != "https://schema.org" || ld["articleBody"] != hostileText ||
		!strings.Contains(ld["backstory"].(string), "2 independent clusters") || ld["isBasedOn"] != r.origin()+protocol.ClaimTrailPath(c.id.String()) {
		t.Errorf("JSON-LD = %v", ld)
	}
	if corr, ok := ld["correction"].([]any); !ok || len(corr) != 0 {
		t.Errorf("JSON-LD correction = %v, want an empty list", ld["correction"])
	}

	// A correction, posted as newsdesk correct does, shows after a reload.
	corr := c.correctEvent(1, audit.CorrectionCorrection, "The trucks leave at 2am, not midnight.")
	body, _ := protocol.MarshalRevealedEvent(&corr)
	if status, out := r.postJSON(1, protocol.PathCorrect, body); status != http.StatusOK {
		t.Fatalf("POST correct = %d %s", status, out)
	}
	if err := b.Navigate(page); err != nil {
		t.Fatal(err)
	}
	got, err := b.Text("#corrections")
	if err != nil || !strings.Contains(got, "Correction, "+r.today()+", by editor-1: The trucks leave at 2am, not midnight.") {
		t.Errorf("corrections = %q, %v", got, err)
	}
	ld, err = browser.Eval[map[string]any](b, `JSON.parse(document.querySelector('script[type="application/ld+json"]').textContent)`)
	if err != nil {
		t.Fatal(err)
	}
	if corr, ok := ld["correction"].([]any); !ok || len(corr) != 1 || corr[0].(map[string]any)["@type"] != "CorrectionComment" {
		t.Errorf("JSON-LD correction after the correction = %v", ld["correction"])
	}
	// The page, loaded twice, asked the server for itself and nothing else.
	for _, req := range b.Requests() {
		if !strings.HasPrefix(req.URL, page) && req.URL != "about:blank" {
			t.Errorf("the page loaded %s %s (%s)", req.Method, req.URL, req.Type)
		}
	}
	// The trail link leads to the trail, which checks.
	if err := b.Navigate(r.origin() + protocol.ClaimTrailPath(c.id.String())); err != nil {
		t.Fatal(err)
	}
	trail, err := browser.Eval[string](b, `document.body.textContent`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.CheckTrail([]byte(trail), r.newsroom.Verifier); err != nil {
		t.Errorf("the trail as the browser got it: %v", err)
	}
}

func TestCleanText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                      "plain",
		"two\nlines":                 "two\nlines",
		"tab\there":                  "tab\uFFFDhere",
		"bidi \u202eevil\u202c":      "bidi \uFFFDevil\uFFFD",
		"zero\u200dwidth":            "zero\uFFFDwidth",
		"sep\u2028line\u2029par":     "sep\uFFFDline\uFFFDpar",
		"bad \xff utf-8":             "bad \uFFFD utf-8",
		"<script>&amp;</script>":     "<script>&amp;</script>",
		"isolate \u2066x\u2069":      "isolate \uFFFDx\uFFFD",
		"bell\a and nul\x00":         "bell\uFFFD and nul\uFFFD",
		"ok: éàü — “quotes” ← arrow": "ok: éàü — “quotes” ← arrow",
	} {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
}
