package server

import (
	"context"
	"fmt"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
)

// graceBundle is the bundle the one in force replaced, while uploads
// encrypted to it are still accepted: sources compose days before they can
// send (FIELD.md), and a tip sealed to the editors of the previous bundle
// is still readable by them.
type graceBundle struct {
	bundle *crypto.Bundle
	until  string // YYYY-MM-DD: the last day uploads to it are accepted
}

// graceFor returns the grace of prev, replaced by cur on day replaced, or
// nil when there is none. There is none when the newer bundle revokes,
// removes or re-keys any editor of the older one: a tip sealed to a key
// the newsroom no longer trusts must not be accepted.
func graceFor(prev, cur *crypto.Bundle, replaced string, grace time.Duration) *graceBundle {
	if prev == nil || grace <= 0 || prev.StanzaType() != cur.StanzaType() {
		return nil
	}
	for _, e := range prev.Editors {
		if ce := cur.Editor(e.Label); ce == nil || ce.Recipient != e.Recipient {
			return nil
		}
		for _, r := range cur.Revoked {
			if r == e.Label {
				return nil
			}
		}
	}
	day, err := time.Parse(crypto.DateLayout, replaced)
	if err != nil {
		return nil
	}
	return &graceBundle{bundle: prev, until: crypto.Day(day.Add(grace))}
}

// loadGrace sets the grace bundle from the two newest stored bundles.
func (s *Server) loadGrace(ctx context.Context) error {
	recent, err := s.store.RecentBundles(ctx, 2)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	cur := s.bundle.Load()
	if len(recent) < 2 || recent[0].Version != cur.Version {
		s.grace.Store(nil)
		return nil
	}
	prev, err := crypto.OpenBundleSelfSigned(recent[1].Signed)
	if err != nil {
		return fmt.Errorf("server: stored bundle %d: %w", recent[1].Version, err)
	}
	s.grace.Store(graceFor(prev, cur, recent[0].Day, s.cfg.BundleGrace))
	return nil
}

// acceptedBundle returns the bundle an upload encrypted to version may use:
// the bundle in force, or the one it replaced during its grace period.
func (s *Server) acceptedBundle(version int64) (*crypto.Bundle, *protocol.Error) {
	cur := s.bundle.Load()
	if version == cur.Version {
		return cur, nil
	}
	if g := s.grace.Load(); g != nil && g.bundle.Version == version && crypto.Day(s.now()) <= g.until {
		return g.bundle, nil
	}
	return nil, protocol.Errorf(protocol.CodeStaleBundle, "encrypted to bundle version %d; the bundle in force is version %d", version, cur.Version)
}
