package newsdesk

// Session.Assign, for the console's "assign" (issue 10): a separate
// addition to the Session of session_ops.go, which it reuses.

import (
	"context"
	"fmt"
	"slices"

	"fieldtip/audit"
)

// Assign logs a triage assigning a tip to the editor labelled to ("" for
// nobody), keeping its status and tags as the replayed state has them
// (new for a tip never triaged), and returns the event's index. to must
// be an editor of the bundle in force, not revoked. The tip must be in
// the cache or named by an event, and not deleted (as for Triage).
func (s *Session) Assign(ctx context.Context, tip, to string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(ctx, ""); err != nil {
		return 0, err
	}
	if to != "" {
		b := s.currentBundle()
		if b == nil || b.Editor(to) == nil || slices.Contains(b.Revoked, to) {
			return 0, fmt.Errorf("assign: %q is not an editor of the bundle in force", clipUntrusted(to))
		}
	}
	id, ts, err := s.knownTip(ctx, tip)
	if err != nil {
		return 0, err
	}
	body := &audit.EventBody{Kind: audit.KindTriage, Tip: id, Status: audit.StatusNew, Assignee: &to}
	if ts != nil {
		if ts.Status != "" {
			body.Status = ts.Status
		}
		body.Tags = slices.Clone(ts.Tags)
	}
	return s.write(ctx, body)
}
