package newsdesk

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// runBenchChild does the child's work: what the CLI does for the same
// command, with the key file opened once. FIELDTIP_BENCH_PROFILE names a
// file for the child's CPU profile (suffixed with the work), and
// FIELDTIP_BENCH_MEMPROFILE one for its heap profile, written when the
// run ends (what it held at the last collection, and every allocation it
// made).
func runBenchChild(ctx context.Context, c benchChild) (err error) {
	if p := os.Getenv("FIELDTIP_BENCH_PROFILE"); p != "" {
		f, err := os.Create(p + "." + c.Work)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if p := os.Getenv("FIELDTIP_BENCH_MEMPROFILE"); p != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if f, ferr := os.Create(p + "." + c.Work); ferr == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	key, err := LoadEditorKey(c.Key, "correct horse")
	if err != nil {
		return err
	}
	s, err := OpenSession(ctx, SessionConfig{Cache: c.Cache, Server: c.Server, Key: key})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}()
	switch c.Work {
	case "first-sync":
		if _, err := s.Sync(ctx); err != nil {
			return err
		}
		_, err = s.Tips()
		return err
	case "sync":
		_, err = s.Sync(ctx)
		return err
	case "note":
		_, err = s.Note(ctx, c.Tip, "a note from the benchmark")
		return err
	}
	return fmt.Errorf("no work %q", c.Work)
}
