package newsdesk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"fieldtip/audit"

	"filippo.io/torchwood"
)

// LoadLog returns the log as the cache's replica holds it from the last
// SyncLog, checked again offline: the stored checkpoint must verify with
// the cached bundle's log key, and the stored entries must pass
// audit.Verifier and make its tree. It returns nil and no error when the
// cache has no replica yet.
func (c *Cache) LoadLog(ctx context.Context) (*LogView, error) {
	dir := filepath.Join(c.Dir, "log")
	signed, err := os.ReadFile(filepath.Join(dir, replicaCheckpoint))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b, err := c.Bundle()
	if err != nil {
		return nil, err
	}
	_, policy, err := logPolicy(b.Log)
	if err != nil {
		return nil, err
	}
	cp, _, err := torchwood.VerifyCheckpoint(signed, policy)
	if err != nil {
		return nil, fmt.Errorf("log: the replica's checkpoint does not verify: %w", err)
	}
	entries, err := readReplicaEntries(dir, cp.N)
	if err != nil {
		return nil, fmt.Errorf("log: replica: %w", err)
	}
	vr, err := audit.NewVerifier(b.Newsroom)
	if err != nil {
		return nil, err
	}
	if err := vr.Verify(ctx, audit.SliceReader(entries), cp.N); err != nil {
		return nil, fmt.Errorf("log: replica: %w", err)
	}
	if vr.Tree() != cp.Tree {
		return nil, fmt.Errorf("log: the replica's entries do not hash to its checkpoint (%s changed?)", dir)
	}
	return &LogView{Tree: cp.Tree, Signed: signed, Bundle: vr.BundleAt(cp.N), Entries: entries, Replica: dir, verifier: vr, newsroom: b.Newsroom}, nil
}
