package newsdesk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/protocol"
)

// TrailAudit is what `newsdesk audit trail` established about a published
// claim: the trail's report, and the newsroom key it was checked with.
type TrailAudit struct {
	Report *audit.TrailReport
	// Newsroom is the newsroom verifier key the trail was checked against;
	// FromTrail is set when it was taken from the trail's own first bundle
	// (no key pinned): then the trail is shown consistent, not shown to
	// be the newsroom's.
	Newsroom  string
	FromTrail bool
}

// ReadTrail returns a trail document from a file, or from a URL: the
// trail's own (…/claims/<id>/trail) or a claim page's (…/claims/<id>),
// whose trail it fetches. It reads at most audit.MaxTrailSize bytes and
// one more, so that CheckTrail refuses a larger document.
func ReadTrail(ctx context.Context, src string) ([]byte, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		f, err := os.Open(src)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, audit.MaxTrailSize+1))
	}
	u, err := url.Parse(src)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("trail URL %q is not an http or https URL", clipUntrusted(src))
	}
	if !strings.HasSuffix(u.Path, protocol.PathTrailSuffix) {
		u.Path = strings.TrimSuffix(u.Path, "/") + protocol.PathTrailSuffix
	}
	hc := &http.Client{Timeout: requestTimeout}
	defer hc.CloseIdleConnections()
	b, err := get(ctx, hc, u.String(), audit.MaxTrailSize+1)
	if err != nil {
		return nil, fmt.Errorf("fetch the trail %s: %w", u, err)
	}
	return b, nil
}

// CheckTrail checks a trail document with the newsroom's verifier key
// (audit.CheckTrail): offline, with no decryption key. With newsroom
// empty, it takes the key the trail's first bundle names, and says so
// (TrailAudit.FromTrail).
func CheckTrail(data []byte, newsroom string) (*TrailAudit, error) {
	a := &TrailAudit{Newsroom: newsroom}
	if newsroom == "" {
		t, err := audit.ParseTrail(data)
		if err != nil {
			return nil, &audit.TrailError{Rule: audit.ErrTrailFormat, Index: -1, Err: err}
		}
		if len(t.Bundles) == 0 {
			return nil, &audit.TrailError{Rule: audit.ErrTrailBundle, Index: -1, Err: errors.New("the trail holds no bundle, and no newsroom key was given (--newsroom)")}
		}
		b, err := crypto.OpenBundleSelfSigned(t.Bundles[0].Entry)
		if err != nil {
			return nil, &audit.TrailError{Rule: audit.ErrTrailBundle, Index: t.Bundles[0].Index, Err: err}
		}
		a.Newsroom, a.FromTrail = b.Newsroom, true
	}
	rep, err := audit.CheckTrail(data, a.Newsroom)
	if err != nil {
		return nil, err
	}
	a.Report = rep
	return a, nil
}

// WriteTrailReport writes what a trail check established, for a reader:
// the claim, its publication and policy, the evidence by cluster with its
// grades, the approving editors, the receipt periods, the witnessed
// checkpoint and its cosigners, the head, the corrections, the newsroom
// key. Every string from the trail is made safe for a terminal.
func WriteTrailReport(w io.Writer, a *TrailAudit) error {
	r := a.Report
	p := r.Policy
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("claim %s, published %s by %s (event %d) under bundle %d (policy: %d supporting clusters, %d approvals)",
		r.Claim, r.Published.Day, r.Published.Editor, r.Published.Index, r.Bundle, p.Policy.Clusters, p.Policy.Approvals)
	line("text: %s", indent(r.Text))
	if r.Scope != "" {
		line("scope: %s", indent(r.Scope))
	}
	for i, v := range r.Versions {
		line("version %d: by %s on %s (event %d)", i+1, v.Editor, v.Day, v.Index)
	}
	for _, c := range p.Clusters {
		line("cluster %q: %d piece(s) of supporting evidence", c.Name, len(c.Links))
		for _, l := range c.Links {
			line("  %s", linkText(l))
		}
	}
	for _, l := range p.Others {
		line("%s (cluster %q, not counted): %s", l.Stance, l.Cluster, linkText(l))
	}
	line("independent clusters: %d, asserted and signed by the editors (independence of anonymous sources is never proved)", len(p.Clusters))
	line("approved by: %s", strings.Join(p.Approvers, ", "))
	var periods []string
	for _, pr := range r.Periods {
		if pr.First == pr.Last {
			periods = append(periods, pr.First)
		} else {
			periods = append(periods, pr.First+" to "+pr.Last)
		}
	}
	line("receipt periods of the evidence: %s", strings.Join(periods, ", "))
	line("witnessed checkpoint: %s, %d entries, root %s, cosigned by %s", r.Origin, r.Witnessed.N, r.Witnessed.Hash, strings.Join(r.Cosigners, ", "))
	line("head checkpoint: %d entries, root %s", r.Head.N, r.Head.Hash)
	for _, c := range r.Corrections {
		line("%s on %s by %s (event %d): %s", c.Type, c.Day, c.Editor, c.Index, indent(c.Text))
	}
	if a.FromTrail {
		line("newsroom key: %s (taken from the trail itself: compare it with the key the newsroom publishes, or pass --newsroom)", a.Newsroom)
	} else {
		line("newsroom key: %s (pinned)", a.Newsroom)
	}
	_, err := io.WriteString(w, cli.TerminalSafe(b.String()))
	return err
}

// linkText describes one link of a trail: grades, access, who and when,
// the public why.
func linkText(l audit.Link) string {
	why := "why kept among the editors"
	if l.Why != "" {
		why = "why: " + indent(l.Why)
	}
	return fmt.Sprintf("%s%d, %s, linked by %s on %s (event %d, handle %s…); %s",
		l.Reliability, l.Credibility, l.Access, l.Editor, l.Day, l.Index, l.Handle.String()[:16], why)
}

// indent keeps a multi-line text under its label.
func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }
