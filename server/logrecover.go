package server

// Rebuilding the editorial log from an editor's replica (docs/log.md,
// "Recovery").

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// LogRecovery is what RecoverLog did.
type LogRecovery struct {
	// Database is the number of entries the database held before, Pinned
	// the pinned checkpoint's size (-1 without one), Recovered the size of
	// the log now in the database and pinned.
	Database, Pinned, Recovered int64
	// Bodies is how many event bodies the log holds now; MissingBodies
	// the indexes of events whose body neither the replica nor the old
	// database had.
	Bodies        int64
	MissingBodies []int64
}

// OpenReplica opens an editor's replica of the log for RecoverLog: an
// http:// or https:// URL serving the log's read endpoints, or a directory
// laid out the same way (docs/log.md, "Recovery"): checkpoint,
// tile/entries/… and event-body/<index>.
func OpenReplica(spec string) (torchwood.TileReader, error) {
	if strings.HasPrefix(spec, "http://") || strings.HasPrefix(spec, "https://") {
		tr, err := torchwood.NewTileFetcher(spec, torchwood.WithUserAgent("fieldtipd"))
		if err != nil {
			return nil, fmt.Errorf("server: replica %s: %w", spec, err)
		}
		return tr, nil
	}
	root, err := os.OpenRoot(spec)
	if err != nil {
		return nil, fmt.Errorf("server: replica: %w", err)
	}
	tr, err := torchwood.NewTileFS(root.FS())
	if err != nil {
		return nil, fmt.Errorf("server: replica %s: %w", spec, err)
	}
	return tr, nil
}

// readReplicaEntries reads entries start to end−1 of a replica whose
// checkpoint has size entries, tile by tile; a full tile stands in for a
// missing partial one.
func readReplicaEntries(ctx context.Context, tr torchwood.TileReader, start, end, size int64) ([][]byte, error) {
	var out [][]byte
	for n := start / torchwood.TileWidth; n*torchwood.TileWidth < end; n++ {
		t := tlog.Tile{H: torchwood.TileHeight, L: -1, N: n, W: int(min(torchwood.TileWidth, size-n*torchwood.TileWidth))}
		data, err := tr.ReadTiles(ctx, []tlog.Tile{t})
		if err != nil && t.W < torchwood.TileWidth {
			full := t
			full.W = torchwood.TileWidth
			data, err = tr.ReadTiles(ctx, []tlog.Tile{full})
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", torchwood.TilePath(t), err)
		}
		rest := data[0]
		for i := n * torchwood.TileWidth; i < n*torchwood.TileWidth+int64(t.W); i++ {
			var e []byte
			if e, rest, err = torchwood.ReadTileEntry(rest); err != nil {
				return nil, fmt.Errorf("%s: entry %d: %w", torchwood.TilePath(t), i, err)
			}
			if i >= start && i < end {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// batchReader serves the entries of one batch to an audit.Verifier.
type batchReader struct {
	start   int64
	entries [][]byte
}

func (b batchReader) ReadEntries(_ context.Context, start, end int64) ([][]byte, error) {
	if start < b.start || end > b.start+int64(len(b.entries)) || end < start {
		return nil, fmt.Errorf("entries %d to %d are not in the batch", start, end-1)
	}
	return b.entries[start-b.start : end-b.start], nil
}

// RecoverLog rebuilds the log of the server whose data directory is
// dataDir from an editor's replica (OpenReplica), with the server stopped.
// It reads the replica's checkpoint, which must verify with the server's
// log key and be at least as large as the pinned checkpoint; reads every
// entry up to it and audits them (package audit, with the pinned newsroom
// key); takes each event's body from the replica, or else from the old
// database, where its hash matches; and replaces the database's log in one
// transaction that commits only if the rebuilt tree is the replica's
// checkpoint and, at the pinned size, the pinned one. Then it pins the
// replica's checkpoint. A log that needs no recovery is ErrLogIntact, and
// is left alone.
func RecoverLog(ctx context.Context, dataDir string, replica torchwood.TileReader) (*LogRecovery, error) {
	keyFile, err := os.ReadFile(filepath.Join(dataDir, LogKeyFile))
	if err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	key, err := crypto.ParseSignerKey(crypto.LogKeyHeader, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server: recover log: log key: %w", err)
	}
	v, err := logVerifier(key.Verifier)
	if err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	pinPath := filepath.Join(dataDir, CheckpointFile)
	pinned, err := readPin(pinPath, v)
	if err != nil {
		return nil, &LogCheckError{DataDir: dataDir, Database: -1, Pinned: -1, Err: ErrBadPin,
			Detail: fmt.Sprintf("was the file replaced? (%v) Put back the one this server wrote; if it is lost, move it aside before recovering", err)}
	}
	rc := &LogRecovery{Pinned: -1}
	if pinned != nil {
		rc.Pinned = pinned.tree.N
	}
	dbPath := filepath.Join(dataDir, dbFile)
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	st, err := storage.Open(dbPath, storage.Options{})
	if err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	defer st.Close()
	if rc.Database, err = st.LogSize(ctx); err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}

	signed, err := replica.ReadEndpoint(ctx, strings.TrimPrefix(protocol.PathCheckpoint, "/"))
	if err != nil {
		return nil, fmt.Errorf("server: recover log: replica checkpoint: %w", err)
	}
	target, err := openCheckpoint(signed, v)
	if err != nil {
		return nil, fmt.Errorf("server: recover log: the replica's checkpoint is not this log's: %w", err)
	}
	if pinned != nil && target.N < pinned.tree.N {
		return nil, fmt.Errorf("server: recover log: the replica's checkpoint has %d entries, fewer than the pinned checkpoint's %d: find a newer replica", target.N, pinned.tree.N)
	}
	if sc, err := scanLog(ctx, st, v); err == nil && checkAgainstPin(dataDir, sc, pinned) == nil && sc.size >= target.N {
		return nil, fmt.Errorf("server: recover log: %w (%d entries, the replica has %d)", ErrLogIntact, sc.size, target.N)
	}

	newsroom, err := st.Setting(ctx, newsroomSetting)
	if errors.Is(err, storage.ErrNotFound) {
		// A database without even its settings: entry 0, authenticated by
		// the signed tree, names the newsroom key.
		newsroom, err = replicaNewsroom(ctx, replica, target.N)
	}
	if err != nil {
		return nil, fmt.Errorf("server: recover log: newsroom key: %w", err)
	}
	av, err := audit.NewVerifier(newsroom)
	if err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	bodyPath := strings.TrimPrefix(protocol.PathEventBodies, "/")
	entries := func(yield func(storage.LogEntry, error) bool) {
		for start := int64(0); start < target.N; start += torchwood.TileWidth {
			end := min(target.N, start+torchwood.TileWidth)
			batch, err := readReplicaEntries(ctx, replica, start, end, target.N)
			if err == nil {
				err = av.Verify(ctx, batchReader{start: start, entries: batch}, end)
			}
			if err != nil {
				yield(storage.LogEntry{}, fmt.Errorf("replica: %w", err))
				return
			}
			for j, e := range batch {
				i := start + int64(j)
				le := storage.LogEntry{Data: e}
				if bytes.HasPrefix(e, []byte(audit.EventHeader+"\n")) {
					ev, err := audit.OpenEvent(e, av.BundleAt(i))
					if err != nil {
						yield(storage.LogEntry{}, fmt.Errorf("replica: entry %d: %w", i, err))
						return
					}
					le.EventID = ev.ID[:]
					if b, err := replica.ReadEndpoint(ctx, bodyPath+strconv.FormatInt(i, 10)); err == nil && sha256.Sum256(b) == ev.Ciphertext {
						le.Body = b
					} else if b, err := st.EventBody(ctx, i); err == nil && sha256.Sum256(b) == ev.Ciphertext {
						le.Body = b
					}
					if le.Body != nil {
						rc.Bodies++
					} else {
						rc.MissingBodies = append(rc.MissingBodies, i)
					}
				}
				if !yield(le, nil) {
					return
				}
			}
		}
	}
	tree, err := st.ReplaceLog(ctx, iter.Seq2[storage.LogEntry, error](entries), func(tree tlog.Tree) ([]byte, error) {
		if tree != target {
			return nil, fmt.Errorf("the rebuilt tree (%d entries, root %s) is not the replica's checkpoint's (%d, %s)", tree.N, tree.Hash, target.N, target.Hash)
		}
		if pinned != nil {
			h, err := tlog.TreeHash(pinned.tree.N, av)
			if err != nil {
				return nil, err
			}
			if h != pinned.tree.Hash {
				return nil, fmt.Errorf("the replica's tree of size %d has root %s, the pinned checkpoint's is %s", pinned.tree.N, h, pinned.tree.Hash)
			}
		}
		return signed, nil
	})
	if err != nil {
		return nil, fmt.Errorf("server: recover log: %w", err)
	}
	if err := pin(pinPath, signed); err != nil {
		return nil, fmt.Errorf("server: recover log: the log is rebuilt but %w; fieldtipd pins it at its next start", err)
	}
	rc.Recovered = tree.N
	return rc, nil
}

// replicaNewsroom returns the newsroom key named by entry 0 of a replica.
func replicaNewsroom(ctx context.Context, replica torchwood.TileReader, size int64) (string, error) {
	if size < 1 {
		return "", errors.New("the replica's log is empty")
	}
	e, err := readReplicaEntries(ctx, replica, 0, 1, size)
	if err != nil {
		return "", err
	}
	b, err := crypto.OpenBundleSelfSigned(e[0])
	if err != nil {
		return "", fmt.Errorf("entry 0: %w", err)
	}
	return b.Newsroom, nil
}
