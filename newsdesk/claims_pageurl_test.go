package newsdesk

import (
	"net/url"
	"strings"
	"testing"
)

// pageURLCases are page URLs a server's publication answer may give for
// the path /claims/abc, and whether newsdesk takes them.
var pageURLCases = []struct {
	name, page string
	ok         bool
}{
	{"http", "http://127.0.0.1:8080/claims/abc", true},
	{"https", "https://news.example/claims/abc", true},
	{"onion", "http://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuv.onion/claims/abc", true},
	{"empty", "", false},
	{"path only", "/claims/abc", false},
	{"other path", "https://news.example/claims/abd", false},
	{"path prefix", "https://news.example/x/claims/abc", false},
	{"trailing slash", "https://news.example/claims/abc/", false},
	{"javascript", "javascript:alert(1)//claims/abc", false},
	{"ftp", "ftp://news.example/claims/abc", false},
	{"no host", "https:///claims/abc", false},
	{"user", "https://u:p@news.example/claims/abc", false},
	{"query", "https://news.example/claims/abc?x=1", false},
	{"empty query", "https://news.example/claims/abc?", false},
	{"fragment", "https://news.example/claims/abc#x", false},
	{"escaped path", "https://news.example/claims/%61bc", false},
	{"upper scheme", "HTTPS://news.example/claims/abc", false},
	{"newline", "https://news.example/claims/abc\n", false},
	{"terminal escape", "https://news.example\x1b[2J/claims/abc", false},
}

func TestIsPageURL(t *testing.T) {
	for _, c := range pageURLCases {
		if got := isPageURL(c.page, "/claims/abc"); got != c.ok {
			t.Errorf("%s: isPageURL(%q) = %v, want %v", c.name, c.page, got, c.ok)
		}
	}
}

// TestPageJSONLDURL: the url of a claim page's JSON-LD block, as
// html/template writes it, and "" for a page without one.
func TestPageJSONLDURL(t *testing.T) {
	for _, c := range []struct{ page, want string }{
		{`<head><script type="application/ld+json">{"@type":"ReportageNewsArticle","url":"https://news.example/claims/abc","headline":"a \u003c b"}</script></head>`, "https://news.example/claims/abc"},
		{`<head></head>`, ""},
		{`<script type="application/ld+json">{"url":`, ""},
		{`<script type="application/ld+json">not json</script>`, ""},
		{`<script type="application/ld+json">{"url":7}</script>`, ""},
	} {
		if got := pageJSONLDURL([]byte(c.page)); got != c.want {
			t.Errorf("pageJSONLDURL(%q) = %q, want %q", c.page, got, c.want)
		}
	}
}

// FuzzIsPageURL: a page URL newsdesk takes is exactly an http or https
// origin followed by the path, and parses back to them.
func FuzzIsPageURL(f *testing.F) {
	for _, c := range pageURLCases {
		f.Add(c.page, "/claims/abc")
	}
	f.Fuzz(func(t *testing.T, page, path string) {
		if !isPageURL(page, path) {
			return
		}
		u, err := url.Parse(page)
		if err != nil {
			t.Fatalf("isPageURL(%q, %q) but it does not parse: %v", page, path, err)
		}
		if origin, ok := strings.CutSuffix(page, path); !ok || origin != u.Scheme+"://"+u.Host || (u.Scheme != "http" && u.Scheme != "https") {
			t.Fatalf("isPageURL(%q, %q) but it is not an http(s) origin followed by the path", page, path)
		}
	})
}
