package console

import (
	"bytes"
	"embed"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"fieldtip/audit"
)

//go:embed assets
var assets embed.FS

// pages holds the parsed templates and the inline CSS and script.
type pages struct {
	t   *template.Template
	css template.CSS
	js  template.JS
}

func newPages() (*pages, error) {
	t, err := template.New("console").Funcs(template.FuncMap{
		"visible": visible,
		"kb":      kb,
		"sources": sourceTips,
		"join":    func(s []string) string { return strings.Join(s, " ") },
	}).ParseFS(assets, "assets/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	css, err := assets.ReadFile("assets/console.css")
	if err != nil {
		return nil, err
	}
	js, err := assets.ReadFile("assets/console.js")
	if err != nil {
		return nil, err
	}
	// Both are ours, embedded: trusted as CSS and JS.
	return &pages{t: t, css: template.CSS(css), js: template.JS(js)}, nil
}

// visible returns s with every control character but newline and tab,
// and every format character (bidirectional overrides and isolates,
// zero-width joiners: what can make text read other than it is), shown
// as U+FFFD. html/template escapes the rest.
func visible(s string) string {
	if strings.IndexFunc(s, hidden) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if hidden(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func hidden(r rune) bool {
	if r < 0x80 {
		return (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f
	}
	return (unicode.IsControl(r) && r != '\n' && r != '\t') || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// sourceTips says how many tips come from one source, as newsdesk inbox
// does.
func sourceTips(n int) string {
	if n == 1 {
		return "1 tip from this source"
	}
	return strconv.Itoa(n) + " tips from this source"
}

// kb formats a byte count for a person.
func kb(n any) string {
	var v int64
	switch x := n.(type) {
	case int:
		v = int64(x)
	case int64:
		v = x
	}
	switch {
	case v < 1024:
		return fmt.Sprintf("%d B", v)
	case v < 1024*1024:
		return fmt.Sprintf("%.1f KiB", float64(v)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(v)/(1024*1024))
}

// view is what every page template gets.
type view struct {
	Page    string
	Nonce   string
	CSRF    string
	CSS     template.CSS
	JS      template.JS
	Me      string
	LogSize int64
	Version int64
	MaxSeq  int64
	// Alerts are shown in red at the top: sync failures and warnings.
	Alerts []string
	Flash  string
	Index  *Index
}

// statuses are the triage statuses, in the order the forms offer them.
var statuses = []string{string(audit.StatusNew), string(audit.StatusReviewing), string(audit.StatusUseful), string(audit.StatusRejected), string(audit.StatusSpam)}

// base fills the view every page shares.
func (c *Console) base(r *http.Request, page string) view {
	ix := c.index.Load()
	v := view{Page: page, Nonce: nonceOf(r.Context()), CSRF: c.auth.csrf, CSS: c.pages.css, JS: c.pages.js,
		Me: ix.Me, LogSize: ix.LogSize, Version: ix.Version, Index: ix, Flash: r.URL.Query().Get("done")}
	if len(ix.Rows) > 0 {
		v.MaxSeq = ix.Rows[0].Seq
	}
	if e := c.syncError(); e != "" {
		v.Alerts = append(v.Alerts, e)
	}
	v.Alerts = append(v.Alerts, ix.Warnings...)
	return v
}

// render writes a page.
func (c *Console) render(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := c.pages.t.ExecuteTemplate(&b, name, data); err != nil {
		c.log.Error("console render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

// rowsHTML renders the inbox's rows. It is the inbox's hot path (10,000
// rows in well under the 100 ms issue 10 asks), so it writes the HTML
// itself instead of through html/template's per-value escaper: every
// value is escaped here with html.EscapeString (text and quoted
// attributes), the tip id in the link also path-escaped; untrusted text
// passed visible when the index was built. TestRowsHTML compares it with the template's
// escaping of hostile rows.
func rowsHTML(rows []Row) template.HTML {
	var b strings.Builder
	b.Grow(len(rows) * 400)
	esc := func(s string) { b.WriteString(html.EscapeString(s)) }
	for _, r := range rows {
		b.WriteString(`<tr data-id="`)
		esc(r.ID)
		b.WriteString(`" data-seq="`)
		b.WriteString(strconv.FormatInt(r.Seq, 10))
		b.WriteString(`" class="s-`)
		esc(string(r.Status))
		b.WriteString(`"><td>`)
		esc(r.Day)
		b.WriteString(`</td><td class="n">`)
		esc(r.Size)
		b.WriteString(`</td><td class="status">`)
		esc(string(r.Status))
		b.WriteString(`</td><td class="tags">`)
		if len(r.Tags) > 0 {
			// Tags are checked for spaces and control characters, not for
			// format characters.
			esc(visible(strings.Join(r.Tags, " ")))
		}
		b.WriteString(`</td><td class="assignee">`)
		esc(r.Assignee)
		b.WriteString(`</td><td class="first"><a href="/tip/`)
		esc(url.PathEscape(r.ID))
		b.WriteString(`">`)
		switch {
		case r.Unreadable != "":
			b.WriteString("<em>")
			esc(r.Unreadable)
			b.WriteString("</em>")
		case r.FirstLine != "":
			esc(r.FirstLine)
		default:
			b.WriteString("<em>(no text)</em>")
		}
		b.WriteString(`</a>`)
		if r.SourceTips > 1 {
			// The source is named by this tip: its mailbox id stays out
			// of the page.
			b.WriteString(` <a class="source" href="/?source=`)
			esc(url.QueryEscape(r.ID))
			b.WriteString(`">`)
			b.WriteString(sourceTips(r.SourceTips))
			b.WriteString(`</a>`)
		}
		b.WriteString(`</td><td class="n">`)
		if r.Attachments > 0 {
			b.WriteString(strconv.Itoa(r.Attachments))
		}
		b.WriteString("</td></tr>\n")
	}
	// Every value above is escaped.
	return template.HTML(b.String())
}
