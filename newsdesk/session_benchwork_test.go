package newsdesk

import (
	"context"
)

func runBenchChild(ctx context.Context, c benchChild) error {
	key, err := LoadEditorKey(c.Key, "correct horse")
	if err != nil {
		return err
	}
	s, err := OpenSession(ctx, SessionConfig{Cache: c.Cache, Server: c.Server, Key: key})
	if err != nil {
		return err
	}
	if _, err := s.Sync(ctx); err != nil {
		return err
	}
	if _, err := s.Tips(); err != nil {
		return err
	}
	return s.Close()
}
