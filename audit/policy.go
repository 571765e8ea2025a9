package audit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"fieldtip/crypto"
)

// PolicyResult is the publication policy evaluated for one claim at one
// point of the log (docs/claims.md, "The policy").
type PolicyResult struct {
	// Met reports whether the claim may be published: Lacking is empty.
	Met bool
	// Lacking says what the policy still lacks, one sentence each, in the
	// order of docs/claims.md ("needs 1 more supporting cluster", "needs an
	// approval from an editor other than alice", …).
	Lacking []string
	// Policy and Bundle are the numbers and the version of the bundle it
	// was evaluated against.
	Policy crypto.Policy
	Bundle int64
	// Claim and Version are the claim and its version in force; Changes
	// and Evidence its count of change events and evidence hash.
	Claim    ClaimID
	Version  ClaimVersion
	Changes  int64
	Evidence [32]byte
	// Clusters are the supporting clusters, by name, each with its active
	// supports links in log order.
	Clusters []Cluster
	// Others are the active contradicts and context links, in log order:
	// shown, never counted.
	Others []Link
	// Approvers are the editors whose approvals count, sorted.
	Approvers []string
	// Objections are the standing rejects and needs-work sign-offs, by
	// editor label.
	Objections []Signoff
}

// Cluster is one supporting cluster: the active supports links that name
// it.
type Cluster struct {
	Name  string
	Links []Link
}

// EvaluatePolicy evaluates the publication policy of bundle (its policy
// line, its editors and revocations: the bundle in force at the
// publication, the one a publish event names) for one claim whose events,
// public parts only, are events (starting with the claim event that
// created it, by increasing index, as ReplayClaim takes them), at log
// index at: the events before at count (docs/claims.md, "The policy").
// newsdesk, the server and auditors all call it. It errs only on events
// ReplayClaim refuses to take.
func EvaluatePolicy(bundle *crypto.Bundle, events []ClaimEvent, at int64) (*PolicyResult, error) {
	if bundle == nil {
		return nil, errors.New("audit: evaluate policy: no bundle")
	}
	r, err := replayClaim(events, bundle, at)
	if err != nil {
		return nil, err
	}
	if len(r.c.Versions) == 0 {
		return nil, fmt.Errorf("audit: evaluate policy: the claim has no version before index %d", at)
	}
	return r.evaluate(bundle), nil
}

// evaluate evaluates the policy on the claim as replayed so far.
func (r *claimReplay) evaluate(b *crypto.Bundle) *PolicyResult {
	c := r.c
	v := c.Version()
	res := &PolicyResult{Policy: b.Policy, Bundle: b.Version, Claim: c.ID, Version: v, Changes: c.Changes, Evidence: c.Evidence()}
	byName := map[string]int{}
	for _, l := range c.ActiveLinks() {
		if l.Stance != StanceSupports {
			res.Others = append(res.Others, l)
			continue
		}
		i, ok := byName[l.Cluster]
		if !ok {
			i = len(res.Clusters)
			byName[l.Cluster] = i
			res.Clusters = append(res.Clusters, Cluster{Name: l.Cluster})
		}
		res.Clusters[i].Links = append(res.Clusters[i].Links, l)
	}
	slices.SortFunc(res.Clusters, func(a, b Cluster) int { return strings.Compare(a.Name, b.Name) })

	// Each editor's latest sign-off, by label.
	latest := map[string]Signoff{}
	for _, s := range c.Signoffs {
		latest[s.Editor] = s
	}
	labels := make([]string, 0, len(latest))
	for l := range latest {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	var explain []string
	for _, label := range labels {
		s := latest[label]
		listed := b.Editor(label) != nil
		current := s.Changes == c.Changes
		switch {
		case s.Decision != DecisionApprove:
			if listed && current {
				res.Objections = append(res.Objections, s)
			}
		case !listed && slices.Contains(b.Revoked, label):
			explain = append(explain, fmt.Sprintf("%s's approval does not count: %s is revoked", label, label))
		case !listed:
			explain = append(explain, fmt.Sprintf("%s's approval does not count: %s is not an editor of bundle %d", label, label, b.Version))
		case label == v.Editor:
			explain = append(explain, fmt.Sprintf("%s's approval does not count: %s wrote this version", label, label))
		case !current:
			last := r.history[len(r.history)-1]
			what := string(last.kind)
			if last.kind == KindClaim {
				what = "edit"
			}
			explain = append(explain, fmt.Sprintf("%s's approval predates the last change (%s at %d)", label, what, last.index))
		default:
			res.Approvers = append(res.Approvers, label)
		}
	}

	if n := b.Policy.Clusters - int64(len(res.Clusters)); n > 0 {
		res.Lacking = append(res.Lacking, fmt.Sprintf("needs %d more supporting %s", n, plural(n, "cluster", "clusters")))
	}
	for _, s := range res.Objections {
		if s.Decision == DecisionReject {
			res.Lacking = append(res.Lacking, s.Editor+" rejected this version")
		} else {
			res.Lacking = append(res.Lacking, s.Editor+" asked for more work on this version")
		}
	}
	if n := b.Policy.Approvals - int64(len(res.Approvers)); n > 0 {
		others := joinLabels(append([]string{v.Editor}, res.Approvers...))
		if n == 1 {
			res.Lacking = append(res.Lacking, "needs an approval from an editor other than "+others)
		} else {
			res.Lacking = append(res.Lacking, fmt.Sprintf("needs %d more approvals from editors other than %s", n, others))
		}
		res.Lacking = append(res.Lacking, explain...)
	}
	res.Met = len(res.Lacking) == 0
	return res
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// joinLabels writes "a", "a and b", "a, b and c".
func joinLabels(ls []string) string {
	if len(ls) == 1 {
		return ls[0]
	}
	return strings.Join(ls[:len(ls)-1], ", ") + " and " + ls[len(ls)-1]
}
