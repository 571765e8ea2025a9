package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
	"fieldtip/storage"
)

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// LogKeyFile is the name of the server's log key in its data directory.
const LogKeyFile = "log.key"

// DefaultLogName is the signed-note key name of a new log key.
const DefaultLogName = "fieldtip-log"

// LoadOrCreateLogKey reads DIR/log.key, creating it (mode 0600, written to
// a temporary file, synced and renamed) if it does not exist. The server
// needs this key to sign receipts, so it is kept in the clear on the
// server's disk: it can sign, never decrypt.
func LoadOrCreateLogKey(dir string) (*crypto.SignerKey, error) {
	path := filepath.Join(dir, LogKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.ParseSignerKey(crypto.LogKeyHeader, b)
		if err != nil {
			return nil, fmt.Errorf("server: log key %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("server: log key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data dir: %w", err)
	}
	k, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, DefaultLogName)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := WriteFileAtomic(path, k.Marshal(), 0o600); err != nil {
		return nil, fmt.Errorf("server: log key: %w", err)
	}
	return k, nil
}

// WriteFileAtomic writes data to path durably (internal/atomicfile). It
// refuses to replace an existing file: keys are never silently replaced.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteNew(path, data, perm)
}

// httpErrorLog receives net/http's own error log. Some of its lines carry
// the client's address ("http: TLS handshake error from 203.0.113.7:4242:
// …"), so it passes on only the kind of error, never the line, and at most
// one line per kind per minute (with the count since the last), so a flood
// of bad handshakes cannot flood the log.
type httpErrorLog struct {
	log *slog.Logger

	mu     sync.Mutex
	last   map[string]time.Time
	counts map[string]int
}

const httpErrorLogEvery = time.Minute

func (l *httpErrorLog) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	kind := "other"
	switch {
	case strings.HasPrefix(line, "http: TLS handshake error"):
		kind = "tls_handshake"
	case strings.HasPrefix(line, "http: panic serving"):
		kind = "handler_panic"
	case strings.HasPrefix(line, "http: Accept error"):
		kind = "accept"
	case strings.HasPrefix(line, "http2:"):
		kind = "http2"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.counts = map[string]time.Time{}, map[string]int{}
	}
	l.counts[kind]++
	if now := time.Now(); now.Sub(l.last[kind]) >= httpErrorLogEvery {
		l.log.Warn("http server error", attrKind, kind, attrCount, l.counts[kind])
		l.last[kind], l.counts[kind] = now, 0
	}
	return len(p), nil
}

// Backup writes a consistent copy of the database in dataDir to out, a new
// file, while fieldtipd may be serving from it (storage.Backup), and
// returns what the copy holds. The copy holds no key: keep log.key apart
// (it never changes). Restoring it is the README's "Backups" drill: the
// log's pinned checkpoint refuses a copy behind it, and --recover-log
// brings the log up to an editor's replica.
func Backup(ctx context.Context, dataDir, out string) (*storage.BackupCounts, error) {
	c, err := storage.Backup(ctx, filepath.Join(dataDir, dbFile), out)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return c, nil
}
