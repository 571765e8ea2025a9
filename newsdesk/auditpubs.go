package newsdesk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"fieldtip/audit"
	"fieldtip/protocol"

	"golang.org/x/mod/sumdb/tlog"
)

// PublicationAudit is one published claim as `newsdesk audit verify`
// re-evaluated it from its trail.
type PublicationAudit struct {
	Claim audit.ClaimID
	// Index is the publication's log index; Report what its trail
	// established, the policy evaluated by audit.EvaluatePolicy (through
	// audit.CheckTrail), the function newsdesk and the server run.
	Index  int64
	Report *audit.TrailReport
}

// maxClaimPages bounds how many pages of GET /claims an audit reads:
// protocol.MaxClaimList claims each.
const maxClaimPages = 1000

// auditPublications fetches the server's list of published claims and,
// for each, its trail; it checks each trail with the pinned newsroom key
// (audit.CheckTrail: every signature, commitment, proof and cosignature,
// and the policy re-evaluated at the publication), and that the trail is
// of the log v verified: its head a tree of that log, each of its entries
// the log's entry at that index. Without a decryption key an auditor
// cannot tell a publication the server does not list from any other
// event: the list is the server's word, the trails are not. A server
// that serves no list (a static mirror of the log) has none to check.
func auditPublications(ctx context.Context, server string, v *LogView) ([]PublicationAudit, error) {
	u, err := protocol.ParseServerURL(server)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: requestTimeout}
	defer hc.CloseIdleConnections()
	var out []PublicationAudit
	before := int64(0)
	for range maxClaimPages {
		q := ""
		if before > 0 {
			q = "?" + url.Values{"before": {strconv.FormatInt(before, 10)}}.Encode()
		}
		var list protocol.ClaimList
		b, err := getClaimList(ctx, hc, u.Origin+protocol.PathClaims+q)
		if errors.Is(err, errNoClaimList) && before == 0 {
			// A static mirror of the log (docs/log.md, "Recovery")
			// serves no list: nothing to re-evaluate.
			return nil, nil
		}
		if err == nil {
			err = protocol.DecodeJSON(bytes.NewReader(b), maxClaimListAnswer, &list)
		}
		if err != nil {
			return out, fmt.Errorf("published claims: %w", err)
		}
		for _, s := range list.Claims {
			if before > 0 && s.Publication >= before {
				return out, fmt.Errorf("published claims: the list after %d names publication %d again: not latest first", before, s.Publication)
			}
			p, err := auditPublication(ctx, hc, u.Origin, v, s)
			if err != nil {
				return out, err
			}
			out = append(out, *p)
			before = s.Publication
		}
		if len(list.Claims) < protocol.MaxClaimList {
			return out, nil
		}
	}
	return out, fmt.Errorf("published claims: more than %d pages", maxClaimPages)
}

// errNoClaimList: the server answered GET /claims with 404.
var errNoClaimList = errors.New("the server serves no list of published claims")

// getClaimList fetches one page of GET /claims; a 404 is errNoClaimList.
func getClaimList(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server unreachable: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNoClaimList
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("server answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxClaimListAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxClaimListAnswer {
		return nil, fmt.Errorf("list of more than %d bytes", maxClaimListAnswer)
	}
	return b, nil
}

// maxClaimListAnswer bounds GET /claims: MaxClaimList summaries whose
// texts may all be escaped.
const maxClaimListAnswer = protocol.MaxClaimList * (6*(4096+1024) + 1024)

// auditPublication checks one published claim's trail against v.
func auditPublication(ctx context.Context, hc *http.Client, origin string, v *LogView, s protocol.ClaimSummary) (*PublicationAudit, error) {
	id, err := audit.ParseClaimID(s.ID)
	if err != nil {
		return nil, fmt.Errorf("published claims: %w", err)
	}
	data, err := get(ctx, hc, origin+protocol.ClaimTrailPath(id.String()), audit.MaxTrailSize)
	if err != nil {
		return nil, fmt.Errorf("claim %s: fetch its trail: %w", id, err)
	}
	rep, err := audit.CheckTrail(data, v.newsroom)
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", id, err)
	}
	if rep.Claim != id || rep.Published.Index != s.Publication {
		return nil, fmt.Errorf("claim %s: the server lists its publication at %d, and serves the trail of claim %s published at %d", id, s.Publication, rep.Claim, rep.Published.Index)
	}
	if rep.Head.N > v.Tree.N {
		return nil, fmt.Errorf("claim %s: its trail's head (%d entries) is ahead of the log verified (%d): run the audit again", id, rep.Head.N, v.Tree.N)
	}
	root, err := tlog.TreeHash(rep.Head.N, v.verifier)
	if err != nil {
		return nil, err
	}
	if root != rep.Head.Hash {
		return nil, &ForkError{Reason: fmt.Sprintf("the trail of claim %s is proved against a tree of size %d that is not the verified log's", id, rep.Head.N), Stored: v.Signed}
	}
	t, err := audit.ParseTrail(data)
	if err != nil {
		return nil, err
	}
	for _, e := range append(append(append([]audit.TrailEntry{}, t.Bundles...), t.Receipts...), eventEntries(t)...) {
		if !bytes.Equal(e.Entry, v.Entries[e.Index]) {
			return nil, fmt.Errorf("claim %s: its trail's entry %d is not the log's", id, e.Index)
		}
	}
	return &PublicationAudit{Claim: id, Index: rep.Published.Index, Report: rep}, nil
}

func eventEntries(t *audit.Trail) []audit.TrailEntry {
	out := make([]audit.TrailEntry, len(t.Events))
	for i, e := range t.Events {
		out[i] = e.TrailEntry
	}
	return out
}
