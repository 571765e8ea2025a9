package newsdesk

import (
	"context"
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

// testNewsroom is a newsroom key and one editor, made fresh for a test.
type testNewsroom struct {
	key    *crypto.SignerKey
	editor *crypto.EditorKey
}

// newTestNewsroom makes a newsroom key and one editor. classic selects an
// X25519 editor key (fast); otherwise it is the hybrid post-quantum default.
func newTestNewsroom(t testing.TB, classic bool) *testNewsroom {
	t.Helper()
	k, err := crypto.GenerateSignerKey(crypto.NewsroomKeyHeader, "test-newsroom")
	if err != nil {
		t.Fatal(err)
	}
	e, err := crypto.GenerateEditorKey("alice", classic)
	if err != nil {
		t.Fatal(err)
	}
	return &testNewsroom{key: k, editor: e}
}

// bundle signs a bundle of version naming the log key, expiring a day from
// now.
func (n *testNewsroom) bundle(t testing.TB, version int64, logKey string) []byte {
	t.Helper()
	return n.bundleExpiring(t, version, logKey, time.Now().Add(24*time.Hour))
}

func (n *testNewsroom) bundleExpiring(t testing.TB, version int64, logKey string, expires time.Time) []byte {
	t.Helper()
	b := &crypto.Bundle{
		Newsroom: n.key.Verifier,
		Version:  version,
		Expires:  expires.UTC().Truncate(time.Second),
		Log:      logKey,
		Policy:   crypto.DefaultPolicy,
		Editors:  []crypto.Editor{n.editor.Public},
	}
	msg, err := crypto.SignBundle(b, n.key.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// testServer is a real fieldtipd serving on a loopback port.
type testServer struct {
	URL    string
	Store  *storage.Store
	LogKey *crypto.SignerKey
	Server *server.Server
}

// serverOptions tune startServer. The zero value is valid.
type serverOptions struct {
	// logKey, if set, is the log key the server uses instead of a new one.
	logKey *crypto.SignerKey
	// config, if set, adjusts the configuration before the server is built.
	config func(*server.Config)
}

// startServer runs a real server over a SQLite file in a temporary
// directory, with the bundle bundleFor returns for its log key in force.
// It stops the server and closes the store when the test ends.
func startServer(t *testing.T, bundleFor func(logKey string) []byte, opts serverOptions) *testServer {
	t.Helper()
	dir := t.TempDir()
	if opts.logKey != nil {
		if err := server.WriteFileAtomic(filepath.Join(dir, server.LogKeyFile), opts.logKey.Marshal(), 0o600); err != nil {
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
	logger := slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
	store, err := storage.Open(filepath.Join(dir, "fieldtip.db"), storage.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("store.Close: %v", err)
		}
	})
	cfg := server.Config{DataDir: dir, Listen: "127.0.0.1:0", BundleFile: bundleFile, Logger: logger}
	if opts.config != nil {
		opts.config(&cfg)
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
	return &testServer{URL: "http://" + l.Main.Addr().String(), Store: store, LogKey: logKey, Server: s}
}

// testLogWriter routes a logger's lines to t.Log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
