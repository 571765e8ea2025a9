package server

// The public pages of published claims (protocol/claims.go;
// docs/log.md, "Publications"): a JSON list, each claim's page, its
// trail, and an Atom feed. No login; on the public listener when there is
// one.
//
// What they show comes from the claim's trail as audit.CheckTrail
// established it (the claim's text and scope, the editors' labels, the
// evidence's grades, clusters and receipt periods, the witnessed
// checkpoint and its cosigners) and from the corrections stored with it.
// The server never holds a tip's content, id or ciphertext hash, nor a
// private part, so no page can show one; every date is a day.
//
// Pages are rendered with html/template (contextual escaping: a claim's
// text is data, whatever it holds) and carry a strict
// Content-Security-Policy: nothing loads but the page itself, its one
// inline style allowed by a nonce drawn per response, and no script runs
// (the JSON-LD block is data). Text is also cleaned of control and format
// characters (bidirectional overrides and the like, refused upstream)
// before it is shown. claimpages_test.go and the browser tests check
// these in headless Chromium.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"fieldtip/audit"
	"fieldtip/protocol"
	"fieldtip/storage"
)

// Page limits.
const (
	// maxFeedEntries caps the entries of the Atom feed.
	maxFeedEntries = 50
	// maxTitle caps a page's title and a feed entry's, in runes.
	maxTitle = 110
)

//go:embed claimpage.tmpl
var claimPageText string

var claimPage = template.Must(template.New("claim").Parse(claimPageText))

// registerClaimPages serves the public pages.
func (s *Server) registerClaimPages(mux *http.ServeMux) {
	mux.HandleFunc("GET "+protocol.PathClaims, s.serveClaimList)
	mux.HandleFunc("GET "+protocol.PathClaims+"/{id}", s.serveClaimPage)
	mux.HandleFunc("GET "+protocol.PathClaims+"/{id}"+protocol.PathTrailSuffix, s.serveClaimTrail)
	mux.HandleFunc("GET "+protocol.PathClaimsFeed, s.serveClaimsFeed)
}

// dataCSP is the Content-Security-Policy of what is not a page (JSON,
// the trail, the feed): nothing may load or run in its context.
const dataCSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox"

// pageCSP is the page's: its own inline style, by nonce, and nothing
// else.
func pageCSP(nonce string) string {
	return "default-src 'none'; style-src 'nonce-" + nonce + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// publicHeaders sets the headers every public answer carries.
func publicHeaders(w http.ResponseWriter, contentType, csp string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
}

// writePublicRefusal answers a public request with err's refusal, with
// the public headers.
func writePublicRefusal(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Security-Policy", dataCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	writeRefusal(w, err)
}

var (
	errClaimID     = protocol.Errorf(protocol.CodeMalformed, "not a claim id")
	errClaimsQuery = protocol.Errorf(protocol.CodeMalformed, "before must be a log index")
	errNoSuchClaim = protocol.Errorf(protocol.CodeNotFound, "no claim published with that id")
)

// pathClaim reads a claim id from the request's path, in its one
// spelling.
func pathClaim(r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if _, err := audit.ParseClaimID(id); err != nil {
		return "", false
	}
	return id, true
}

// serveClaimList answers GET /claims: the published claims, latest
// first.
func (s *Server) serveClaimList(w http.ResponseWriter, r *http.Request) {
	before := int64(0)
	if q := r.URL.Query().Get("before"); q != "" {
		n, err := parseIndex(q)
		if err != nil {
			writePublicRefusal(w, errClaimsQuery)
			return
		}
		before = n
	}
	pubs, err := s.store.AcceptedPublications(r.Context(), before, protocol.MaxClaimList)
	if err != nil {
		writePublicRefusal(w, s.failed("list publications", err))
		return
	}
	list := protocol.ClaimList{Claims: []protocol.ClaimSummary{}}
	for _, p := range pubs {
		list.Claims = append(list.Claims, protocol.ClaimSummary{ID: p.Claim, URL: protocol.ClaimPath(p.Claim), Trail: protocol.ClaimTrailPath(p.Claim),
			Text: p.Text, Scope: p.Scope, Published: p.Day, Updated: p.Updated, Publication: p.Index,
			Corrections: p.Corrections, Retracted: p.Retracted, Clusters: p.Clusters, Approvals: p.Approvals})
	}
	b, err := jsonMarshal(list)
	if err != nil {
		writePublicRefusal(w, s.failed("encode the claim list", err))
		return
	}
	publicHeaders(w, "application/json", dataCSP)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// serveClaimTrail answers GET /claims/<id>/trail: the trail as stored,
// checked when it was built (and again whenever this server reads it
// back for the page).
func (s *Server) serveClaimTrail(w http.ResponseWriter, r *http.Request) {
	id, ok := pathClaim(r)
	if !ok {
		writePublicRefusal(w, errClaimID)
		return
	}
	p, err := s.store.Publication(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) || err == nil && p.Pending {
		writePublicRefusal(w, errNoSuchClaim)
		return
	}
	if err != nil {
		writePublicRefusal(w, s.failed("read a trail", err))
		return
	}
	publicHeaders(w, "application/json", dataCSP)
	// The trail changes only when a correction rebuilds it over a newer
	// head: the head's size names its version.
	w.Header().Set("ETag", fmt.Sprintf(`"%d"`, p.Head))
	if r.Header.Get("If-None-Match") == fmt.Sprintf(`"%d"`, p.Head) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(p.Trail)))
	w.Write(p.Trail)
}

// serveClaimPage answers GET /claims/<id>: the claim's page.
func (s *Server) serveClaimPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathClaim(r)
	if !ok {
		writePublicRefusal(w, errClaimID)
		return
	}
	ctx := r.Context()
	v, perr := s.claimView(ctx, id)
	if perr != nil {
		if perr == errClaimNotPublished {
			perr = errNoSuchClaim
		}
		writePublicRefusal(w, perr)
		return
	}
	corrections, err := s.store.Corrections(ctx, id)
	if err != nil {
		writePublicRefusal(w, s.failed("read corrections", err))
		return
	}
	var nonce [18]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		writePublicRefusal(w, s.failed("draw a nonce", err))
		return
	}
	page := s.claimPageData(id, v, corrections)
	page.Nonce = base64.RawURLEncoding.EncodeToString(nonce[:])
	var buf bytes.Buffer
	if err := claimPage.Execute(&buf, page); err != nil {
		writePublicRefusal(w, s.failed("render a claim page", err))
		return
	}
	publicHeaders(w, "text/html; charset=utf-8", pageCSP(page.Nonce))
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

// claimPageData is what the claim page template shows.
type claimPageData struct {
	Nonce               string
	Title, Text, Scope  string
	Published, Updated  string
	Publisher           string
	Versions            int
	Retraction          *pageCorrection
	Corrections         []pageCorrection
	How                 []howParagraph
	TrailPath, TrailURL string
	JSONLD              *claimJSONLD
}

type pageCorrection struct {
	Index                         int64
	Label, Day, Editor, Text, Typ string
}

// howParagraph is one paragraph of "how we know": a sentence and, for a
// list, its items.
type howParagraph struct {
	Text  string
	Items []string
}

// claimJSONLD is the page's schema.org ReportageNewsArticle: the claim,
// its dates, the "how we know" as its backstory, its corrections, and
// the trail it is based on.
type claimJSONLD struct {
	Context            string             `json:"@context"`
	Type               string             `json:"@type"`
	ID                 string             `json:"@id"`
	URL                string             `json:"url"`
	Headline           string             `json:"headline"`
	ArticleBody        string             `json:"articleBody"`
	Abstract           string             `json:"abstract,omitempty"`
	DatePublished      string             `json:"datePublished"`
	DateModified       string             `json:"dateModified"`
	Backstory          string             `json:"backstory"`
	Correction         []correctionJSONLD `json:"correction"`
	IsBasedOn          string             `json:"isBasedOn"`
	CreativeWorkStatus string             `json:"creativeWorkStatus,omitempty"`
}

type correctionJSONLD struct {
	Type          string `json:"@type"`
	Text          string `json:"text"`
	DatePublished string `json:"datePublished"`
}

var correctionLabels = map[string]string{"correction": "Correction", "clarification": "Clarification", "retraction": "Retraction"}

func (s *Server) claimPageData(id string, v *claimView, corrections []*storage.Correction) *claimPageData {
	rep := v.report
	origin := s.PublicOrigin()
	p := &claimPageData{
		Title: clipRunes(cleanText(rep.Text), maxTitle), Text: cleanText(rep.Text), Scope: cleanText(rep.Scope),
		Published: rep.Published.Day, Updated: rep.Published.Day, Publisher: rep.Published.Editor,
		Versions: len(rep.Versions), TrailPath: protocol.ClaimTrailPath(id), TrailURL: origin + protocol.ClaimTrailPath(id),
	}
	// The corrections the checked trail shows, with their editors; the
	// store's rows are the same events (stored with the trail).
	byIndex := map[int64]audit.Correction{}
	for _, c := range rep.Corrections {
		byIndex[c.Index] = c
	}
	for _, c := range corrections {
		rc, ok := byIndex[c.Index]
		if !ok {
			continue
		}
		pc := pageCorrection{Index: c.Index, Label: correctionLabels[c.Type], Day: rc.Day, Editor: rc.Editor, Text: cleanText(rc.Text), Typ: c.Type}
		p.Corrections = append(p.Corrections, pc)
		p.Updated = max(p.Updated, rc.Day)
		if c.Type == string(audit.CorrectionRetraction) {
			r := pc
			p.Retraction = &r
		}
	}
	p.How = howWeKnow(rep, v.periods)
	var backstory []string
	for _, h := range p.How {
		backstory = append(backstory, strings.Join(append([]string{h.Text}, h.Items...), " "))
	}
	ld := &claimJSONLD{Context: "https://schema.org", Type: "ReportageNewsArticle", ID: origin + protocol.ClaimPath(id), URL: origin + protocol.ClaimPath(id),
		Headline: p.Title, ArticleBody: p.Text, Abstract: p.Scope, DatePublished: p.Published, DateModified: p.Updated,
		Backstory: strings.Join(backstory, " "), Correction: []correctionJSONLD{}, IsBasedOn: p.TrailURL}
	for _, c := range p.Corrections {
		ld.Correction = append(ld.Correction, correctionJSONLD{Type: "CorrectionComment", Text: c.Label + ": " + c.Text, DatePublished: c.Day})
	}
	if p.Retraction != nil {
		ld.CreativeWorkStatus = "Retracted"
	}
	p.JSONLD = ld
	return p
}

// Admiralty grades in words (the NATO scale editors grade with).
var (
	reliabilityWords = map[string]string{"A": "completely reliable", "B": "usually reliable", "C": "fairly reliable",
		"D": "not usually reliable", "E": "unreliable", "F": "of reliability that cannot be judged"}
	credibilityWords = map[int]string{1: "confirmed by other sources", 2: "probably true", 3: "possibly true",
		4: "doubtful", 5: "improbable", 6: "of truth that cannot be judged"}
	accessWords = map[audit.Access]string{audit.AccessFirstHand: "knows it first-hand", audit.AccessSecondHand: "knows it second-hand",
		audit.AccessHearsay: "knows it by hearsay", audit.AccessDocument: "holds a document"}
)

// howWeKnow says, in words, what the trail established: the supporting
// clusters and their grades, the other evidence, the approving editors,
// the receipt periods, the witnessed checkpoint and its cosigners.
func howWeKnow(rep *audit.TrailReport, periods map[int64]audit.Period) []howParagraph {
	pol := rep.Policy
	var out []howParagraph
	n := len(pol.Clusters)
	out = append(out, howParagraph{Text: fmt.Sprintf("This claim rests on %d independent %s of supporting evidence; the newsroom's policy (bundle %d) asks for at least %d.",
		n, plural(int64(n), "cluster", "clusters"), rep.Bundle, pol.Policy.Clusters)})
	for _, c := range pol.Clusters {
		p := howParagraph{Text: fmt.Sprintf("Cluster “%s”, %d %s:", cleanText(c.Name), len(c.Links), plural(int64(len(c.Links)), "tip", "tips"))}
		for _, l := range c.Links {
			p.Items = append(p.Items, linkWords(l, periods))
		}
		out = append(out, p)
	}
	if len(pol.Others) > 0 {
		p := howParagraph{Text: fmt.Sprintf("The editors also weighed %d %s that %s not count toward the policy:",
			len(pol.Others), plural(int64(len(pol.Others)), "tip", "tips"), plural(int64(len(pol.Others)), "does", "do"))}
		for _, l := range pol.Others {
			what := "gives context"
			if l.Stance == audit.StanceContradicts {
				what = "contradicts the claim"
			}
			p.Items = append(p.Items, fmt.Sprintf("In cluster “%s”, %s, %s", cleanText(l.Cluster), what, linkWords(l, periods)))
		}
		out = append(out, p)
	}
	m := len(pol.Approvers)
	out = append(out, howParagraph{Text: fmt.Sprintf("%d %s approved this version of the claim: %s, none of them its author (%s); the policy asks for at least %d.",
		m, plural(int64(m), "editor", "editors"), joinWords(pol.Approvers), pol.Version.Editor, pol.Policy.Approvals)})
	var received []string
	for _, p := range rep.Periods {
		received = append(received, periodWords(p))
	}
	if len(received) > 0 {
		out = append(out, howParagraph{Text: fmt.Sprintf("The supporting tips were received %s. Each is shown only by a blinded handle in its period's receipts tree, never by its content, its id or anything that could identify its source.",
			joinWords(received))})
	}
	out = append(out, howParagraph{Text: fmt.Sprintf("Every step is in the newsroom's public log, signed by the editor who took it: the log's checkpoint of %d entries (root %s) was cosigned by %s, each having checked that it extends every checkpoint they saw before. The trail's proofs are against the log of %d entries.",
		rep.Witnessed.N, rep.Witnessed.Hash, joinWords(rep.Cosigners), rep.Head.N)})
	out = append(out, howParagraph{Text: "The independence of anonymous sources is asserted and signed by the editors; it cannot be proved: two clusters may rest on one source."})
	return out
}

// linkWords says what one link of evidence is, in words, with the
// receipt period of its receipts root (periods, by the root's index).
func linkWords(l audit.Link, periods map[int64]audit.Period) string {
	period := "in its receipts period"
	if p, ok := periods[l.Receipts]; ok {
		period = periodWords(p)
	}
	s := fmt.Sprintf("a tip received %s: its source %s (%s), the information %s (%d); the source %s",
		period, reliabilityWords[l.Reliability], l.Reliability, credibilityWords[l.Credibility], l.Credibility, accessWords[l.Access])
	if l.Why != "" {
		s += ". Why: “" + cleanText(l.Why) + "”"
	}
	return s + "."
}

// periodWords says when a period was: "on D", or "from D to E".
func periodWords(p audit.Period) string {
	if p.First == p.Last {
		return "on " + p.First
	}
	return "from " + p.First + " to " + p.Last
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// joinWords writes "a", "a and b", "a, b and c"; "nobody" for none.
func joinWords(ws []string) string {
	switch len(ws) {
	case 0:
		return "nobody"
	case 1:
		return ws[0]
	}
	return strings.Join(ws[:len(ws)-1], ", ") + " and " + ws[len(ws)-1]
}

// cleanText returns s with every control character but the newline, and
// every Unicode format character (category Cf: bidirectional overrides,
// zero-width joiners), and the line and paragraph separators replaced by
// U+FFFD: upstream refuses them (docs/claims.md), and a page shows
// whatever reached it inert.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == utf8RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == '\u2028', r == '\u2029':
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

const utf8RuneError = '\uFFFD'

// clipRunes cuts s to n runes, with an ellipsis if it was longer.
func clipRunes(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// The Atom feed (RFC 4287): one entry per publication and per correction,
// latest first. Dates are days, written at 00:00:00 UTC.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

type atomEntry struct {
	Title     string     `xml:"title"`
	ID        string     `xml:"id"`
	Links     []atomLink `xml:"link"`
	Published string     `xml:"published"`
	Updated   string     `xml:"updated"`
	Category  atomTerm   `xml:"category"`
	Summary   atomText   `xml:"summary"`
	index     int64
}

type atomTerm struct {
	Term string `xml:"term,attr"`
}

func atomDay(day string) string { return day + "T00:00:00Z" }

// serveClaimsFeed answers GET /claims.atom.
func (s *Server) serveClaimsFeed(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	feed, err := s.claimsFeed(ctx)
	if err != nil {
		writePublicRefusal(w, s.failed("build the claims feed", err))
		return
	}
	b, err := xml.Marshal(feed)
	if err != nil {
		writePublicRefusal(w, s.failed("encode the claims feed", err))
		return
	}
	out := append([]byte(xml.Header), b...)
	publicHeaders(w, "application/atom+xml; charset=utf-8", dataCSP)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

func (s *Server) claimsFeed(ctx context.Context) (*atomFeed, error) {
	origin := s.PublicOrigin()
	pubs, err := s.store.AcceptedPublications(ctx, 0, maxFeedEntries)
	if err != nil {
		return nil, err
	}
	corrections, err := s.store.RecentCorrections(ctx, maxFeedEntries)
	if err != nil {
		return nil, err
	}
	name := origin
	if u, err := url.Parse(origin); err == nil && u.Host != "" {
		name = u.Host
	}
	f := &atomFeed{Title: "Published claims", ID: origin + protocol.PathClaimsFeed, Updated: atomDay("1970-01-01"),
		Author: atomPerson{Name: name},
		Links: []atomLink{{Rel: "self", Type: "application/atom+xml", Href: origin + protocol.PathClaimsFeed},
			{Rel: "alternate", Type: "application/json", Href: origin + protocol.PathClaims}}}
	for _, p := range pubs {
		page := origin + protocol.ClaimPath(p.Claim)
		f.Entries = append(f.Entries, atomEntry{index: p.Index, Title: clipRunes(cleanText(p.Text), maxTitle), ID: page,
			Links:     []atomLink{{Rel: "alternate", Type: "text/html", Href: page}, {Rel: "related", Type: "application/json", Href: origin + protocol.ClaimTrailPath(p.Claim)}},
			Published: atomDay(p.Day), Updated: atomDay(p.Day), Category: atomTerm{Term: "publication"},
			Summary: atomText{Type: "text", Text: cleanText(p.Text)}})
	}
	for _, c := range corrections {
		page := origin + protocol.ClaimPath(c.Claim)
		label := correctionLabels[c.Type]
		f.Entries = append(f.Entries, atomEntry{index: c.Index, Title: clipRunes(label+": "+cleanText(c.Text), maxTitle),
			ID:        fmt.Sprintf("%s#correction-%d", page, c.Index),
			Links:     []atomLink{{Rel: "alternate", Type: "text/html", Href: fmt.Sprintf("%s#correction-%d", page, c.Index)}},
			Published: atomDay(c.Day), Updated: atomDay(c.Day), Category: atomTerm{Term: c.Type},
			Summary: atomText{Type: "text", Text: label + ": " + cleanText(c.Text)}})
	}
	slices.SortFunc(f.Entries, func(a, b atomEntry) int { return cmp.Compare(b.index, a.index) })
	if len(f.Entries) > maxFeedEntries {
		f.Entries = f.Entries[:maxFeedEntries]
	}
	for _, e := range f.Entries {
		f.Updated = max(f.Updated, e.Updated)
	}
	return f, nil
}
