package console

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestRowsHTML: rows made of hostile values (markup, quotes breaking
// out of attributes, format characters) render as text: the only
// elements are the row's own (the link to the tips of the row's source
// among them), and every value reads back as it was (with
// control and format characters as U+FFFD).
func TestRowsHTML(t *testing.T) {
	hostile := []string{`"><script>alert(1)</script>`, "<img src=x onerror=alert(1)>", "a\u202Eb\u200Bc\x1bd", `' onmouseover='x`, "&amp; &lt;"}
	var rows []Row
	for i, h := range hostile {
		// ID, Day, Size and Assignee are checked upstream (a receipt's
		// id and day, a number, a bundle's label): escaped, not filtered.
		v := visible(h)
		rows = append(rows, Row{ID: v, Seq: int64(i), Day: v, Size: v, Status: "new", Tags: []string{h}, Assignee: v, FirstLine: v, SourceTips: 2})
	}
	rows = append(rows, Row{ID: "x", Unreadable: visible(hostile[0])})
	z := html.NewTokenizer(strings.NewReader("<table><tbody>" + string(rowsHTML(rows)) + "</tbody></table>"))
	var texts []string
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		switch tt {
		case html.StartTagToken, html.EndTagToken:
			switch tok.Data {
			case "table", "tbody", "tr", "td", "a", "em":
			default:
				t.Errorf("rowsHTML made a <%s> element", tok.Data)
			}
			for _, a := range tok.Attr {
				if a.Key != "data-id" && a.Key != "data-seq" && a.Key != "class" && a.Key != "href" {
					t.Errorf("rowsHTML made an attribute %s=%q", a.Key, a.Val)
				}
			}
		case html.TextToken:
			texts = append(texts, tok.Data)
		}
	}
	all := strings.Join(texts, "|")
	for _, h := range hostile {
		if !strings.Contains(all, visible(h)) {
			t.Errorf("the text %q does not read back from %q", visible(h), all)
		}
	}
	if n := strings.Count(all, "2 tips from this source"); n != len(hostile) {
		t.Errorf("%d rows link to their source's tips, want %d", n, len(hostile))
	}
	if strings.ContainsAny(all, "\u202E\u200B\x1b") {
		t.Error("a format or control character reached the page")
	}
}

func TestVisible(t *testing.T) {
	for in, want := range map[string]string{"plain text\nand\ttab": "plain text\nand\ttab", "a\u202Eb": "a\uFFFDb", "\x1b[2J": "\uFFFD[2J", "zero\u200Bwidth": "zero\uFFFDwidth", "line\u2028sep": "line\uFFFDsep", "é ✓": "é ✓"} {
		if got := visible(in); got != want {
			t.Errorf("visible(%q) = %q, want %q", in, got, want)
		}
	}
}
