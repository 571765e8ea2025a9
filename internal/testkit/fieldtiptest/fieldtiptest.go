// Package fieldtiptest starts real fieldtip parts for other packages'
// tests: a newsroom with fresh keys, and a real server on a loopback port
// over a SQLite file in a temporary directory. It is imported by tests
// only; no shipped program links it.
package fieldtiptest

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/server"
	"fieldtip/storage"
)

// Newsroom is a newsroom key and one editor, made fresh for a test.
type Newsroom struct {
	Key    *crypto.SignerKey
	Editor *crypto.EditorKey
}

// NewNewsroom makes a newsroom key and one editor, "alice". classic selects
// an X25519 editor key (fast); otherwise it is the hybrid post-quantum
// default.
func NewNewsroom(t testing.TB, classic bool) *Newsroom {
	t.Helper()
	k, err := crypto.GenerateSignerKey(crypto.NewsroomKeyHeader, "test-newsroom")
	if err != nil {
		t.Fatal(err)
	}
	e, err := crypto.GenerateEditorKey("alice", classic)
	if err != nil {
		t.Fatal(err)
	}
	return &Newsroom{Key: k, Editor: e}
}

// Bundle signs a bundle of version naming the log key, expiring a day from
// now.
func (n *Newsroom) Bundle(t testing.TB, version int64, logKey string) []byte {
	t.Helper()
	return n.BundleExpiring(t, version, logKey, time.Now().Add(24*time.Hour))
}

// BundleExpiring signs a bundle of version naming the log key, expiring at
// expires.
func (n *Newsroom) BundleExpiring(t testing.TB, version int64, logKey string, expires time.Time) []byte {
	t.Helper()
	b := &crypto.Bundle{
		Newsroom: n.Key.Verifier,
		Version:  version,
		Expires:  expires.UTC().Truncate(time.Second),
		Log:      logKey,
		Policy:   crypto.DefaultPolicy,
		Editors:  []crypto.Editor{n.Editor.Public},
	}
	msg, err := crypto.SignBundle(b, n.Key.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// Server is a real fieldtipd serving on a loopback port.
type Server struct {
	URL string
	// Dir is the server's data dir.
	Dir    string
	Store  *storage.Store
	LogKey *crypto.SignerKey
	Server *server.Server
}

// ServerOptions tune StartServer. The zero value is valid.
type ServerOptions struct {
	// LogKey, if set, is the log key the server uses instead of a new one.
	LogKey *crypto.SignerKey
	// Config, if set, adjusts the configuration before the server is built.
	Config func(*server.Config)
}

// CheapPoW is the proof-of-work cost test servers use: real Argon2id, a
// few tries, so tests that send many tips stay fast. One test per package
// that cares runs the default cost.
var CheapPoW = crypto.PoWParams{MemoryKiB: 64, Time: 1, Bits: 2}

// StartServer runs a real server over a SQLite file in a temporary
// directory, with the bundle bundleFor returns for its log key in force.
// It stops the server and closes the store when the test ends.
func StartServer(t testing.TB, bundleFor func(logKey string) []byte, opts ServerOptions) *Server {
	t.Helper()
	dir := t.TempDir()
	if opts.LogKey != nil {
		if err := server.WriteFileAtomic(filepath.Join(dir, server.LogKeyFile), opts.LogKey.Marshal(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logKey, err := server.LoadOrCreateLogKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	bundleFile := filepath.Join(dir, "bundle.txt")
	if err := os.WriteFile(bundleFile, bundleFor(logKey.Verifier), 0o644); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(LogWriter{t}, nil))
	store, err := storage.Open(filepath.Join(dir, "fieldtip.db"), storage.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("store.Close: %v", err)
		}
	})
	cfg := server.Config{DataDir: dir, Listen: "127.0.0.1:0", BundleFile: bundleFile, Logger: logger, PoWParams: CheapPoW}
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg, store, logKey)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	l, err := s.Bind()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &Server{URL: "http://" + l.Main.Addr().String(), Dir: dir, Store: store, LogKey: logKey, Server: s}
}

// LogWriter routes a logger's lines to t.Log.
type LogWriter struct{ T testing.TB }

func (w LogWriter) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// AssertNoPlaintext fails t if any file under dir contains one of markers,
// and if there is no file at all (a scan of nothing proves nothing).
func AssertNoPlaintext(t testing.TB, dir string, markers ...string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("%s holds plaintext %q", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no files under %s: the scan proves nothing", dir)
	}
}
