package console

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/newsdesk"
)

// benchConsole is a console serving an index of n tips, built from n tip
// summaries and a replayed state with a triage of every third, behind the
// real handler (guard, headers, templates) on a loopback server.
func benchConsole(b *testing.B, n int) (*httptest.Server, http.Header) {
	b.Helper()
	st := audit.NewState()
	tips := make([]newsdesk.TipSummary, n)
	texts := map[string]string{}
	ev := &audit.Event{Editor: "alice", Day: "2026-03-14"}
	for i := range tips {
		var id [crypto.TipIDSize]byte
		id[0], id[1], id[2] = byte(i), byte(i>>8), byte(i>>16)
		tid := crypto.FormatTipID(id)
		line := fmt.Sprintf("Tip %d: trucks of copper concentrate leave the Hyesan mine <at night> & cross at Changbai", i)
		tips[i] = newsdesk.TipSummary{ID: tid, Seq: int64(i + 1), Day: fmt.Sprintf("2026-03-%02d", 1+i%28), Length: 16384, FirstLine: line, TextBytes: 400,
			Attachments: []newsdesk.AttachmentInfo{{Name: "photo-1.jpg", Type: "image/jpeg", Size: 150000}}}
		texts[tid] = fold(line + strings.Repeat(" more words of the tip's text", 10))
		if i%3 == 0 {
			who := "bob"
			if err := st.Apply(int64(i+1), ev, &audit.EventBody{Kind: audit.KindTriage, Tip: id, Status: audit.StatusReviewing, Tags: []string{"copper", "hyesan"}, Assignee: &who}); err != nil {
				b.Fatal(err)
			}
		}
	}
	bundle := &crypto.Bundle{Editors: []crypto.Editor{{Label: "alice"}, {Label: "bob"}, {Label: "carol"}}}
	p, err := newPages()
	if err != nil {
		b.Fatal(err)
	}
	c := &Console{pages: p}
	srv := httptest.NewServer(nil)
	a, err := newAuth(srv.Listener.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c.auth = a
	v, _ := a.exchange(a.token)
	c.index.Store(buildIndex(tips, st, texts, bundle, "alice", nil, nil))
	srv.Config.Handler = c.Handler()
	b.Cleanup(srv.Close)
	return srv, http.Header{"Cookie": {a.cookie + "=" + v}}
}

// benchGet gets path over and over; besides the wall time (ns/op, which
// a loaded machine stretches) it reports the page's size and the
// process's CPU time a page (cpu-ms/page: the console's handler and the
// loopback client that reads the page, both in this process).
func benchGet(b *testing.B, srv *httptest.Server, h http.Header, path string) {
	b.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header = h
	var bytes int64
	cpu0 := cpuTime(b)
	n := 0
	for b.Loop() {
		n++
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		bytes = n
	}
	b.ReportMetric(float64(bytes), "page-bytes")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1e3/float64(n), "cpu-ms/page")
}

// cpuTime returns the CPU time (user and system) this process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConsoleInbox: the inbox page of 10,000 tips, served over
// loopback HTTP from the in-memory index (issue 10: at most 100 ms), and
// a search of the text of all of them; against the baseline, the same
// page of one tip through the same handler, measured in the same run.
func BenchmarkConsoleInbox(b *testing.B) {
	b.Run("baseline-1", func(b *testing.B) {
		srv, h := benchConsole(b, 1)
		benchGet(b, srv, h, "/")
	})
	srv, h := benchConsole(b, 10000)
	b.Run("tips-10000", func(b *testing.B) { benchGet(b, srv, h, "/") })
	b.Run("search-10000", func(b *testing.B) { benchGet(b, srv, h, "/?q=tip+9999+changbai") })
	b.Run("filter-10000", func(b *testing.B) { benchGet(b, srv, h, "/?status=reviewing&assignee=bob") })
}
