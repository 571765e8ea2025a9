package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/newsdesk"
	"fieldtip/protocol"
)

// maxInboxRows is how many rows the inbox page renders at most: a filter
// or a search narrows it.
const maxInboxRows = 10000

// Handler returns the console's handler: everything behind guard.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.serveInbox)
	mux.HandleFunc("GET /tip/{id}", c.serveTip)
	mux.HandleFunc("GET /tip/{id}/image/{n}", c.serveImage)
	mux.HandleFunc("GET /tip/{id}/file/{n}", c.serveFile)
	mux.HandleFunc("POST /tip/{id}/triage", c.postTriage)
	mux.HandleFunc("POST /tip/{id}/assign", c.postAssign)
	mux.HandleFunc("POST /tip/{id}/note", c.postNote)
	mux.HandleFunc("POST /tip/{id}/link", c.postLink)
	mux.HandleFunc("POST /tip/{id}/unlink", c.postUnlink)
	mux.HandleFunc("POST /tip/{id}/reply", c.postReply)
	mux.HandleFunc("GET /claims", c.serveClaims)
	mux.HandleFunc("POST /claims/new", c.postNewClaim)
	mux.HandleFunc("POST /claims/period", c.postClosePeriod)
	mux.HandleFunc("POST /claims/{id}/signoff", c.postSignoff)
	mux.HandleFunc("POST /claims/{id}/publish", c.postPublish)
	mux.HandleFunc("POST /claims/{id}/correct", c.postCorrect)
	mux.HandleFunc("GET /log", c.serveLog)
	mux.HandleFunc("GET /api/changes", c.serveChanges)
	mux.HandleFunc("POST /sync", c.postSync)
	return c.guard(mux)
}

// inboxView is the inbox page's data.
type inboxView struct {
	view
	Filter   Filter
	Rows     []Row
	RowsHTML template.HTML
	Shown    int
	More     bool
	Statuses []string
	Days     []string
}

func (c *Console) serveInbox(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{Status: q.Get("status"), Tag: q.Get("tag"), Assignee: q.Get("assignee"), Day: q.Get("day"), Query: q.Get("q"), Source: q.Get("source")}
	v := inboxView{view: c.base(r, "inbox"), Filter: f, Statuses: statuses}
	v.Rows = v.Index.Select(f)
	if len(v.Rows) > maxInboxRows {
		v.Rows, v.More = v.Rows[:maxInboxRows], true
	}
	v.Shown = len(v.Rows)
	v.RowsHTML = rowsHTML(v.Rows)
	v.Days = v.Index.Days()
	c.render(w, "inbox", v)
}

// attachmentView is an attachment as the tip page shows it.
type attachmentView struct {
	N          int
	Name, Type string
	Size       int
	Image      bool
	SHA256     string
}

// historyItem is an event about a tip.
type historyItem struct {
	Index       int64
	Day, Editor string
	What, Text  string
}

// linkedView is a claim a tip is linked to.
type linkedView struct {
	Claim, Text, Cluster, Grade string
	Stance                      audit.Stance
	Published                   bool
}

// threadItem is an entry of the thread of a tip's source (as newsdesk
// thread shows it): a tip it sent, or a reply an editor sent it.
type threadItem struct {
	Day string
	// Tip is a tip's id ("" for a reply); Current is set for the tip the
	// page shows.
	Tip     string
	Current bool
	// Editor and Index are a reply's author and event.
	Editor string
	Index  int64
	Text   string
}

type tipView struct {
	view
	Row *Row
	// Thread is the tip's source's tips and replies, in order (issue
	// 13); empty when the tip carries no reply address.
	Thread        []threadItem
	ThreadErr     string
	Prev, Next    string
	Text          string
	Unreadable    string
	Attachments   []attachmentView
	History       []historyItem
	Linked        []linkedView
	Claims        []newsdesk.ClaimSummary
	Statuses      []string
	Reliabilities []string
	Credibilities []int
}

// openTip decrypts a tip in memory, under the session's lock.
func (c *Console) openTip(id string) (*crypto.Tip, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, _, err := c.s.OpenTip(id)
	return t, err
}

func (c *Console) serveTip(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v := tipView{view: c.base(r, "tip"), Statuses: statuses,
		Reliabilities: []string{"A", "B", "C", "D", "E", "F"}, Credibilities: []int{1, 2, 3, 4, 5, 6}}
	ix := v.Index
	for i := range ix.Rows {
		if ix.Rows[i].ID == id {
			v.Row = &ix.Rows[i]
			if i > 0 {
				v.Prev = ix.Rows[i-1].ID
			}
			if i+1 < len(ix.Rows) {
				v.Next = ix.Rows[i+1].ID
			}
		}
	}
	if v.Row == nil {
		refuse(w, http.StatusNotFound, "no such tip in this cache")
		return
	}
	tip, err := c.openTip(id)
	if err != nil {
		v.Unreadable = err.Error()
	} else {
		v.Text = tip.Text
		for i, a := range tip.Attachments {
			sum := sha256.Sum256(a.Data)
			v.Attachments = append(v.Attachments, attachmentView{N: i + 1, Name: a.Name, Type: a.Type, Size: len(a.Data),
				Image: IsImage(a.Data), SHA256: hex.EncodeToString(sum[:])})
		}
	}
	c.mu.Lock()
	ed := c.s.Editorial()
	tid, _ := crypto.ParseTipID(id)
	for _, o := range ed.Events {
		if o.Body.Tip != tid {
			continue
		}
		h := historyItem{Index: o.Index, Day: o.Event.Day, Editor: o.Event.Editor}
		switch o.Body.Kind {
		case audit.KindTriage:
			h.What = "triage: " + string(o.Body.Status)
			if len(o.Body.Tags) > 0 {
				h.What += ", tags " + strings.Join(o.Body.Tags, " ")
			}
			if a := o.Body.Assignee; a != nil {
				if *a == "" {
					h.What += ", assigned to nobody"
				} else {
					h.What += ", assigned to " + *a
				}
			}
			h.Text = o.Body.Text
		case audit.KindNote:
			h.What, h.Text = "note", o.Body.Text
		case audit.KindLink:
			h.What = "linked to claim " + o.Body.Claim.String()
		case audit.KindUnlink:
			h.What = "unlinked from claim " + o.Body.Claim.String()
		default:
			h.What = string(o.Body.Kind)
		}
		v.History = append(v.History, h)
	}
	if v.Row.source != "" {
		items, err := c.s.Thread(id)
		if err != nil {
			v.ThreadErr = err.Error()
		}
		for _, it := range items {
			ti := threadItem{Day: it.Day, Text: it.Text}
			if it.Tip != nil {
				ti.Tip, ti.Current = it.Tip.ID, it.Tip.ID == id
			} else {
				ti.Editor, ti.Index = it.Reply.Editor, it.Reply.Index
			}
			v.Thread = append(v.Thread, ti)
		}
	}
	st := c.s.State()
	for _, cid := range st.Claims() {
		cs := st.Claim(cid)
		for _, l := range cs.ActiveLinks() {
			if l.Tip == tid {
				v.Linked = append(v.Linked, linkedView{Claim: cid.String(), Text: cs.Version().Text, Cluster: l.Cluster,
					Grade: l.Reliability + strconv.Itoa(l.Credibility), Stance: l.Stance, Published: cs.Published != nil})
			}
		}
	}
	claims, err := c.desk.Claims()
	c.mu.Unlock()
	if err == nil {
		for _, cl := range claims {
			if cl.Publication == 0 {
				v.Claims = append(v.Claims, cl)
			}
		}
	}
	c.render(w, "tip", v)
}

// attachment returns attachment n (from 1) of a tip, decrypted in memory.
func (c *Console) attachment(w http.ResponseWriter, r *http.Request) (*crypto.Attachment, bool) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 || strconv.Itoa(n) != r.PathValue("n") {
		refuse(w, http.StatusNotFound, "no such attachment")
		return nil, false
	}
	tip, err := c.openTip(r.PathValue("id"))
	if err != nil {
		refuse(w, http.StatusNotFound, "no such tip in this cache, or it does not open")
		return nil, false
	}
	if n > len(tip.Attachments) {
		refuse(w, http.StatusNotFound, "no such attachment")
		return nil, false
	}
	return &tip.Attachments[n-1], true
}

// serveImage serves an image attachment re-encoded, never as sent.
func (c *Console) serveImage(w http.ResponseWriter, r *http.Request) {
	a, ok := c.attachment(w, r)
	if !ok {
		return
	}
	img, ctype, err := Reencode(a.Data)
	if err != nil {
		refuse(w, http.StatusUnsupportedMediaType, "this attachment is not shown as an image: download it")
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", "inline")
	w.Write(img)
}

// serveFile sends an attachment as a download only: a generic type, a
// name made plain, Content-Disposition: attachment, and a sandbox so
// that nothing in it runs even if the browser shows it.
func (c *Console) serveFile(w http.ResponseWriter, r *http.Request) {
	a, ok := c.attachment(w, r)
	if !ok {
		return
	}
	name := newsdesk.SafeFileName(a.Name)
	cd := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	if cd == "" {
		cd = "attachment; filename=attachment"
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", cd)
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
	w.Header().Set("Content-Length", strconv.Itoa(len(a.Data)))
	w.Write(a.Data)
}

// done answers a POST: JSON for the script, a redirect with a message for
// a form.
func (c *Console) done(w http.ResponseWriter, r *http.Request, back, msg string, index int64, err error) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"index": index, "message": msg})
		return
	}
	if err != nil {
		msg = "refused: " + err.Error()
	}
	u, _ := url.Parse(back)
	q := u.Query()
	q.Set("done", msg)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// write runs a write through the session under its lock, then brings the
// index up to it.
func (c *Console) write(ctx context.Context, f func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f()
	if ierr := c.reindex(ctx); ierr != nil && err == nil {
		err = ierr
	}
	return err
}

// errClaimChanged refuses a sign-off of a claim that changed after the
// page the editor signed off from was drawn.
var errClaimChanged = errors.New("the claim changed since this page showed it (a new version, or evidence linked or withdrawn, synced from another editor): nothing was logged; look at it again and sign off what you see")

// seenChanges checks that the claim claim has had exactly seen change
// events (the count the board showed the editor), so that a sign-off is
// over the version and evidence the editor saw, not over a change a
// background sync brought in while the page was open. Called with c.mu
// held.
func (c *Console) seenChanges(claim, seen string) error {
	n, err := strconv.ParseInt(seen, 10, 64)
	if err != nil {
		return fmt.Errorf("the sign-off form does not say which state of the claim it was drawn over (changes %q): reload the board", clipForm(seen))
	}
	cid, err := audit.ParseClaimID(claim)
	if err != nil {
		return err
	}
	cs := c.s.State().Claim(cid)
	if cs == nil {
		return fmt.Errorf("no claim %s in the log", cid)
	}
	if cs.Changes != n {
		return errClaimChanged
	}
	return nil
}

// clipForm shortens a form value for an error message.
func clipForm(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// words splits a form's list of tags.
func words(s string) []string { return strings.Fields(s) }

func (c *Console) postTriage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ch := newsdesk.TriageChange{Status: audit.Status(r.PostFormValue("status")), AddTags: words(r.PostFormValue("add_tag")),
		RemoveTags: words(r.PostFormValue("remove_tag")), Note: r.PostFormValue("note")}
	var index int64
	err := c.write(r.Context(), func() (err error) { index, err = c.s.Triage(r.Context(), id, ch); return err })
	c.done(w, r, "/tip/"+id, fmt.Sprintf("triage logged as event %d", index), index, err)
}

func (c *Console) postAssign(w http.ResponseWriter, r *http.Request) {
	id, to := r.PathValue("id"), r.PostFormValue("to")
	var index int64
	err := c.write(r.Context(), func() (err error) { index, err = c.s.Assign(r.Context(), id, to); return err })
	c.done(w, r, "/tip/"+id, fmt.Sprintf("assignment logged as event %d", index), index, err)
}

func (c *Console) postNote(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	text := strings.ReplaceAll(r.PostFormValue("text"), "\r\n", "\n")
	var index int64
	err := c.write(r.Context(), func() (err error) { index, err = c.s.Note(r.Context(), id, text); return err })
	c.done(w, r, "/tip/"+id, fmt.Sprintf("note logged as event %d", index), index, err)
}

func (c *Console) postLink(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cred, _ := strconv.Atoi(r.PostFormValue("credibility"))
	spec := newsdesk.LinkSpec{Stance: audit.Stance(r.PostFormValue("stance")), Cluster: r.PostFormValue("cluster"),
		Reliability: r.PostFormValue("reliability"), Credibility: cred, Access: audit.Access(r.PostFormValue("access")),
		Why: r.PostFormValue("why"), PrivateWhy: r.PostFormValue("private") != ""}
	var index int64
	err := c.write(r.Context(), func() error {
		res, err := c.desk.Link(r.Context(), r.PostFormValue("claim"), id, spec)
		if res != nil {
			index = res.Index
		}
		return err
	})
	c.done(w, r, "/tip/"+id, fmt.Sprintf("link logged as event %d", index), index, err)
}

func (c *Console) postUnlink(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var index int64
	err := c.write(r.Context(), func() (err error) { index, err = c.desk.Unlink(r.Context(), r.PostFormValue("claim"), id); return err })
	c.done(w, r, "/tip/"+id, fmt.Sprintf("unlink logged as event %d", index), index, err)
}

// postReply answers a tip's source: the same event and stored reply as
// newsdesk reply, through Session.Reply.
func (c *Console) postReply(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	text := strings.ReplaceAll(r.PostFormValue("text"), "\r\n", "\n")
	var res *newsdesk.ReplyResult
	err := c.write(r.Context(), func() (err error) { res, err = c.s.Reply(r.Context(), id, text); return err })
	msg, index := "", int64(0)
	if res != nil {
		index = res.Index
		msg = fmt.Sprintf("reply logged as event %d (%s sealed): it waits on the server until the source fetches it", res.Index, kb(res.Size))
	}
	c.done(w, r, "/tip/"+id+"#thread", msg, index, err)
}

// claimView is a claim on the board.
type claimView struct {
	newsdesk.ClaimSummary
	Evidence []evidenceGroup
	Signoffs []string
	// Page is the published page's URL (on the server), once published.
	Page string
	// Changes counts the claim's change events as the page shows it: the
	// sign-off form carries it back (seenChanges).
	Changes int64
}

// evidenceGroup is a claim's active links of one stance and cluster.
type evidenceGroup struct {
	Stance  audit.Stance
	Cluster string
	Links   []evidenceLink
}

type evidenceLink struct {
	Tip, Grade, Editor, Day, Why string
	Access                       audit.Access
}

type claimsView struct {
	view
	Claims []claimView
}

func (c *Console) serveClaims(w http.ResponseWriter, r *http.Request) {
	v := claimsView{view: c.base(r, "claims")}
	c.mu.Lock()
	sums, err := c.desk.Claims()
	st := c.s.State()
	for _, s := range sums {
		cv := claimView{ClaimSummary: s}
		cid, perr := audit.ParseClaimID(s.ID)
		if perr != nil {
			continue
		}
		cs := st.Claim(cid)
		if cs == nil {
			continue
		}
		cv.Changes = cs.Changes
		for _, l := range cs.ActiveLinks() {
			k := slices.IndexFunc(cv.Evidence, func(g evidenceGroup) bool { return g.Stance == l.Stance && g.Cluster == l.Cluster })
			if k < 0 {
				cv.Evidence = append(cv.Evidence, evidenceGroup{Stance: l.Stance, Cluster: l.Cluster})
				k = len(cv.Evidence) - 1
			}
			el := evidenceLink{Grade: l.Reliability + strconv.Itoa(l.Credibility), Editor: l.Editor, Day: l.Day, Why: l.Why, Access: l.Access}
			if l.Why == "" && l.PrivateWhy != "" {
				el.Why = l.PrivateWhy + " (private)"
			}
			if l.Tip != [crypto.TipIDSize]byte{} {
				el.Tip = crypto.FormatTipID(l.Tip)
			}
			cv.Evidence[k].Links = append(cv.Evidence[k].Links, el)
		}
		for _, so := range cs.Signoffs {
			cv.Signoffs = append(cv.Signoffs, fmt.Sprintf("%s %s on %s (event %d)", so.Editor, so.Decision, so.Day, so.Index))
		}
		if s.Publication != 0 && c.origin != "" {
			cv.Page = c.origin + protocol.ClaimPath(s.ID)
		}
		v.Claims = append(v.Claims, cv)
	}
	c.mu.Unlock()
	if err != nil {
		v.Alerts = append(v.Alerts, "claims: "+err.Error())
	}
	c.render(w, "claims", v)
}

func (c *Console) postNewClaim(w http.ResponseWriter, r *http.Request) {
	var index int64
	var id audit.ClaimID
	err := c.write(r.Context(), func() (err error) {
		id, index, err = c.desk.NewClaim(r.Context(), r.PostFormValue("text"), r.PostFormValue("scope"))
		return err
	})
	c.done(w, r, "/claims", fmt.Sprintf("claim %s logged as event %d", id, index), index, err)
}

func (c *Console) postClosePeriod(w http.ResponseWriter, r *http.Request) {
	var res *newsdesk.PeriodResult
	err := c.write(r.Context(), func() (err error) { res, err = c.desk.ClosePeriod(r.Context()); return err })
	msg := ""
	var index int64
	if res != nil {
		index = res.Index
		msg = fmt.Sprintf("today's receipts period is closed (event %d): today's tips can be linked", res.Index)
	}
	c.done(w, r, "/claims", msg, index, err)
}

func (c *Console) postSignoff(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var res *newsdesk.SignoffResult
	err := c.write(r.Context(), func() (err error) {
		if err := c.seenChanges(id, r.PostFormValue("changes")); err != nil {
			return err
		}
		res, err = c.desk.Signoff(r.Context(), id, audit.Decision(r.PostFormValue("decision")), r.PostFormValue("note"))
		return err
	})
	msg, index := "", int64(0)
	if res != nil {
		index = res.Index
		msg = fmt.Sprintf("sign-off logged as event %d", res.Index)
		if len(res.Notes) > 0 {
			msg += ": " + strings.Join(res.Notes, "; ")
		}
	}
	c.done(w, r, "/claims#c-"+id, msg, index, err)
}

func (c *Console) postPublish(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var res *newsdesk.PublishResult
	err := c.write(r.Context(), func() (err error) { res, err = c.desk.Publish(r.Context(), id); return err })
	msg, index := "", int64(0)
	if res != nil {
		index = res.Index
		switch {
		case res.Pending():
			msg = fmt.Sprintf("publication logged as event %d; the server waits for cosignatures: %s must sync (their console does, every %s), then publish again", res.Index, strings.Join(res.Others, ", "), c.cfg.SyncEvery)
		default:
			msg = fmt.Sprintf("published: %s", res.URL)
		}
	}
	c.done(w, r, "/claims#c-"+id, msg, index, err)
}

func (c *Console) postCorrect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var res *newsdesk.CorrectResult
	err := c.write(r.Context(), func() (err error) {
		res, err = c.desk.Correct(r.Context(), id, audit.CorrectionType(r.PostFormValue("type")), r.PostFormValue("text"))
		return err
	})
	msg, index := "", int64(0)
	if res != nil {
		index = res.Index
		msg = fmt.Sprintf("correction logged as event %d", res.Index)
		if res.Pending {
			msg += "; the server shows it once the publication is accepted"
		}
	}
	c.done(w, r, "/claims#c-"+id, msg, index, err)
}

// logEvent is a row of the log view.
type logEvent struct {
	Index                     int64
	Day, Editor, Kind         string
	Tip, Claim, What, Refused string
}

// checkpointView is the log's checkpoint and its cosigners.
type checkpointView struct {
	Size         int64
	Root         string
	Signed       string
	Cosigners    []string
	CosignedSize int64
}

type logView struct {
	view
	Checkpoint *checkpointView
	Events     []logEvent
	Unreadable []int64
}

func (c *Console) serveLog(w http.ResponseWriter, r *http.Request) {
	v := logView{view: c.base(r, "log")}
	c.mu.Lock()
	ed := c.s.Editorial()
	lv := c.s.View()
	refused := map[int64]string{}
	for _, f := range ed.State.Refused() {
		refused[f.Index] = f.Reason
	}
	for _, o := range ed.Events {
		e := logEvent{Index: o.Index, Day: o.Event.Day, Editor: o.Event.Editor, Kind: string(o.Body.Kind), Refused: refused[o.Index]}
		if o.Body.Tip != [crypto.TipIDSize]byte{} {
			e.Tip = crypto.FormatTipID(o.Body.Tip)
		}
		if o.Body.Claim != (audit.ClaimID{}) {
			e.Claim = o.Body.Claim.String()
		}
		e.What = describe(o.Body)
		v.Events = append(v.Events, e)
	}
	v.Unreadable = slices.Clone(ed.Unreadable)
	if lv != nil {
		v.Checkpoint = &checkpointView{Size: lv.Tree.N, Root: lv.Tree.Hash.String(), Signed: string(lv.Signed)}
	}
	c.mu.Unlock()
	if v.Checkpoint != nil {
		v.Checkpoint.Cosigners, v.Checkpoint.CosignedSize = c.cosigners(r.Context(), v.Checkpoint.Size)
	}
	c.render(w, "log", v)
}

// describe says in a few words what an event did.
func describe(b *audit.EventBody) string {
	switch b.Kind {
	case audit.KindTriage:
		s := string(b.Status)
		if len(b.Tags) > 0 {
			s += " [" + strings.Join(b.Tags, " ") + "]"
		}
		if b.Assignee != nil {
			s += " → " + *b.Assignee
		}
		if b.Text != "" {
			s += ": " + newsdesk.FirstLine(b.Text, 80)
		}
		return s
	case audit.KindNote:
		return newsdesk.FirstLine(b.Text, 80)
	case audit.KindHandover:
		return fmt.Sprintf("to %s: %d bodies, %d tips", b.To, len(b.Bodies), len(b.Tips))
	case audit.KindClaim:
		return newsdesk.FirstLine(b.Text, 80)
	case audit.KindLink:
		return fmt.Sprintf("%s, cluster %q, %s%d", b.Stance, b.Cluster, b.Reliability, b.Credibility)
	case audit.KindSignoff:
		return string(b.Decision)
	case audit.KindCorrect:
		return string(b.Correction) + ": " + newsdesk.FirstLine(b.Text, 80)
	}
	return ""
}

// cosigners reads, from the server's public /cosigned endpoints, the
// editors who cosigned the newest cosigned checkpoint at or below size.
func (c *Console) cosigners(ctx context.Context, size int64) ([]string, int64) {
	if c.origin == "" {
		return nil, 0
	}
	get := func(path string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.origin+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.httpc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", path, resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	}
	list, err := get(protocol.PathCosigned)
	if err != nil {
		return nil, 0
	}
	var best int64
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		n, _, _ := strings.Cut(sc.Text(), " ")
		if v, err := strconv.ParseInt(n, 10, 64); err == nil && v <= size && v > best {
			best = v
		}
	}
	if best == 0 {
		return nil, 0
	}
	cp, err := get(protocol.PathCosigned + "/" + itoa(best))
	if err != nil {
		return nil, best
	}
	var out []string
	for _, line := range strings.Split(string(cp), "\n") {
		name, ok := strings.CutPrefix(line, "— ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		if label, ok := strings.CutSuffix(name, ".cosign"); ok {
			out = append(out, label)
		}
	}
	return out, best
}

// changes is what the script polls: the index's version, and the tips
// that arrived after the page's newest.
type changes struct {
	Version int64       `json:"version"`
	Tips    []changeTip `json:"tips"`
	Alert   string      `json:"alert,omitempty"`
}

type changeTip struct {
	ID          string   `json:"id"`
	Seq         int64    `json:"seq"`
	Day         string   `json:"day"`
	Size        string   `json:"size"`
	Status      string   `json:"status"`
	Tags        []string `json:"tags"`
	Assignee    string   `json:"assignee"`
	FirstLine   string   `json:"first_line"`
	Attachments int      `json:"attachments"`
	// SourceTips is Row.SourceTips: the source itself is not named.
	SourceTips int `json:"source_tips,omitempty"`
}

func (c *Console) serveChanges(w http.ResponseWriter, r *http.Request) {
	ix := c.index.Load()
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	out := changes{Version: ix.Version, Tips: []changeTip{}, Alert: c.syncError()}
	for _, row := range ix.Rows {
		if row.Seq <= after {
			break
		}
		first := row.FirstLine
		if row.Unreadable != "" {
			first = row.Unreadable
		}
		out.Tips = append(out.Tips, changeTip{ID: row.ID, Seq: row.Seq, Day: row.Day, Size: row.Size, Status: string(row.Status),
			Tags: append([]string{}, row.Tags...), Assignee: row.Assignee, FirstLine: first, Attachments: row.Attachments, SourceTips: row.SourceTips})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (c *Console) postSync(w http.ResponseWriter, r *http.Request) {
	err := c.sync(r.Context())
	if errors.Is(err, context.Canceled) {
		return
	}
	c.done(w, r, "/", "synced", 0, err)
}
