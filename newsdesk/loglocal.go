package newsdesk

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadLog returns the log as the cache's replica holds it from the last
// sync, checked again offline: the stored checkpoint must verify with
// the cached bundle's log key, and the stored entries must pass
// audit.Verifier and make its tree. It returns nil and no error when the
// cache has no replica yet.
func (c *Cache) LoadLog(ctx context.Context) (*LogView, error) {
	dir := filepath.Join(c.Dir, "log")
	if _, err := os.Stat(filepath.Join(dir, replicaCheckpoint)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	b, err := c.Bundle()
	if err != nil {
		return nil, err
	}
	return openReplica(ctx, dir, b.Newsroom, b.Log, nil)
}
