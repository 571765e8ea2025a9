package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// The editorial log (docs/log.md): entries by index, the tlog stored hashes
// of their Merkle tree, the latest signed checkpoint, and for editorial
// events their ids and encrypted bodies. Storage knows nothing of the
// entries' formats: package server checks them and signs the checkpoint.
//
// Appending entries, storing their hashes and storing the checkpoint signed
// over the new tree happen in one transaction (AUDIT.md, promise 1): a
// reader never sees entries without the checkpoint that covers them.

// Log limits.
const (
	// MaxLogEntrySize caps an entry: the tlog-tiles limit, whose entry
	// bundles prefix each entry with a 2-byte length.
	MaxLogEntrySize = 65535
	// MaxEventIDSize caps an event id.
	MaxEventIDSize = 64
	// MaxAppend caps the entries of one AppendEntries.
	MaxAppend = 4096
)

// LogEntry is one entry to append.
type LogEntry struct {
	// Data is the exact entry, 1 to MaxLogEntrySize bytes.
	Data []byte
	// EventID, for an editorial event, is its id (1 to MaxEventIDSize
	// bytes); nil otherwise. A log never holds an id twice.
	EventID []byte
	// Body, for an event, is its encrypted body, stored by the entry's
	// index; nil for none.
	Body []byte
}

func (e *LogEntry) check() error {
	if len(e.Data) == 0 || len(e.Data) > MaxLogEntrySize {
		return fmt.Errorf("entry of %d bytes, want 1 to %d", len(e.Data), MaxLogEntrySize)
	}
	if e.EventID != nil && (len(e.EventID) == 0 || len(e.EventID) > MaxEventIDSize) {
		return fmt.Errorf("event id of %d bytes, want 1 to %d", len(e.EventID), MaxEventIDSize)
	}
	if e.Body != nil && len(e.Body) == 0 {
		return errors.New("empty event body")
	}
	return nil
}

// LogSizeError is AppendEntries' refusal when the log does not have the
// size the caller expected: another writer appended, or an append whose
// outcome the caller did not learn committed after all.
type LogSizeError struct {
	// Want is the size the caller expected, Have the log's.
	Want, Have int64
}

func (e *LogSizeError) Error() string {
	return fmt.Sprintf("storage: append entries: the log has %d entries, the append expected %d", e.Have, e.Want)
}

// SignFunc signs (or, for ReplaceLog, vouches for) the tree the log has
// once the entries are in, and returns the signed checkpoint to store with
// them. It runs inside the transaction; an error rolls everything back.
type SignFunc func(tree tlog.Tree) ([]byte, error)

// AppendEntries appends entries at index at, which must be the log's size
// (else *LogSizeError), computes and stores their stored hashes, calls sign
// with the new tree and stores the checkpoint it returns, all in one
// transaction. It returns the new tree and checkpoint only after that
// transaction committed (synchronous=FULL), so the caller may then
// acknowledge the entries. An event id already logged, or twice in
// entries, fails the whole append with ErrDuplicate.
func (s *Store) AppendEntries(ctx context.Context, at int64, entries []LogEntry, sign SignFunc) (tlog.Tree, []byte, error) {
	if len(entries) == 0 || len(entries) > MaxAppend {
		return tlog.Tree{}, nil, fmt.Errorf("storage: append entries: %d entries, want 1 to %d", len(entries), MaxAppend)
	}
	for i := range entries {
		if err := entries[i].check(); err != nil {
			return tlog.Tree{}, nil, fmt.Errorf("storage: append entries: entry %d of %d: %w", i, len(entries), err)
		}
	}
	var tree tlog.Tree
	var signed []byte
	err := s.write(ctx, func(tx *sql.Tx) error {
		size, err := logSize(tx)
		if err != nil {
			return fmt.Errorf("storage: append entries: %w", err)
		}
		if size != at {
			return &LogSizeError{Want: at, Have: size}
		}
		a, err := newLogAppender(tx)
		if err != nil {
			return fmt.Errorf("storage: append entries: %w", err)
		}
		defer a.close()
		for i := range entries {
			if err := a.append(size+int64(i), &entries[i]); err != nil {
				return fmt.Errorf("storage: append entries: %w", err)
			}
		}
		tree, signed, err = a.finish(size+int64(len(entries)), sign)
		if err != nil {
			return fmt.Errorf("storage: append entries: %w", err)
		}
		return nil
	})
	if err != nil {
		return tlog.Tree{}, nil, err
	}
	return tree, signed, nil
}

// ReplaceLog replaces the whole log, in one transaction, with the entries
// the sequence yields (stopping at the first error it yields), then calls
// check with the rebuilt tree: check returns the signed checkpoint to store
// (one the log key signed over exactly that tree) or an error, which rolls
// everything back and leaves the old log as it was. Event ids and bodies
// are those of the new entries; a body the sequence does not give is gone.
// It is the log recovery's (package server, RecoverLog), run while no
// server uses the store; the sequence runs inside the write transaction,
// and may read the old log through the store's readers.
func (s *Store) ReplaceLog(ctx context.Context, entries iter.Seq2[LogEntry, error], check SignFunc) (tlog.Tree, error) {
	var tree tlog.Tree
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{`DELETE FROM event_bodies`, `DELETE FROM event_ids`, `DELETE FROM log_hashes`,
			`DELETE FROM log_entries`, `DELETE FROM log_checkpoint`} {
			if _, err := tx.Exec(q); err != nil {
				return fmt.Errorf("storage: replace log: %w", err)
			}
		}
		a, err := newLogAppender(tx)
		if err != nil {
			return fmt.Errorf("storage: replace log: %w", err)
		}
		defer a.close()
		var n int64
		for e, err := range entries {
			if err != nil {
				return fmt.Errorf("storage: replace log: entry %d: %w", n, err)
			}
			if err := e.check(); err != nil {
				return fmt.Errorf("storage: replace log: entry %d: %w", n, err)
			}
			if err := a.append(n, &e); err != nil {
				return fmt.Errorf("storage: replace log: %w", err)
			}
			n++
		}
		if tree, _, err = a.finish(n, check); err != nil {
			return fmt.Errorf("storage: replace log: %w", err)
		}
		return nil
	})
	if err != nil {
		return tlog.Tree{}, err
	}
	return tree, nil
}

func logSize(tx *sql.Tx) (int64, error) {
	var n int64
	if err := tx.QueryRow(`SELECT coalesce(max(idx) + 1, 0) FROM log_entries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("log size: %w", err)
	}
	return n, nil
}

// logAppender writes entries in a transaction. It keeps the hashes it
// wrote in memory, so that tlog reads the right edge of the tree without a
// query for each.
type logAppender struct {
	tx                              *sql.Tx
	entry, hash, id, body, readHash *sql.Stmt
	written                         map[int64]tlog.Hash
}

func newLogAppender(tx *sql.Tx) (*logAppender, error) {
	a := &logAppender{tx: tx, written: map[int64]tlog.Hash{}}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&a.entry, `INSERT INTO log_entries (idx, data) VALUES (?, ?)`},
		{&a.hash, `INSERT INTO log_hashes (idx, hash) VALUES (?, ?)`},
		{&a.id, `INSERT INTO event_ids (id, idx) VALUES (?, ?)`},
		{&a.body, `INSERT INTO event_bodies (idx, ciphertext) VALUES (?, ?)`},
		{&a.readHash, `SELECT hash FROM log_hashes WHERE idx = ?`},
	} {
		st, err := tx.Prepare(p.q)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
		*p.dst = st
	}
	return a, nil
}

func (a *logAppender) close() {
	for _, st := range []*sql.Stmt{a.entry, a.hash, a.id, a.body, a.readHash} {
		if st != nil {
			st.Close()
		}
	}
}

// ReadHashes reads stored hashes from what this transaction wrote, then
// from the table.
func (a *logAppender) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if h, ok := a.written[x]; ok {
			out[i] = h
			continue
		}
		var b []byte
		if err := a.readHash.QueryRow(x).Scan(&b); err != nil {
			return nil, fmt.Errorf("read stored hash %d: %w", x, err)
		}
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("stored hash %d has %d bytes", x, len(b))
		}
		out[i] = tlog.Hash(b)
	}
	return out, nil
}

func (a *logAppender) append(idx int64, e *LogEntry) error {
	if _, err := a.entry.Exec(idx, e.Data); err != nil {
		return fmt.Errorf("entry %d: %w", idx, err)
	}
	hs, err := tlog.StoredHashes(idx, e.Data, a)
	if err != nil {
		return fmt.Errorf("entry %d: hashes: %w", idx, err)
	}
	base := tlog.StoredHashIndex(0, idx)
	for j, h := range hs {
		if _, err := a.hash.Exec(base+int64(j), h[:]); err != nil {
			return fmt.Errorf("entry %d: stored hash %d: %w", idx, base+int64(j), err)
		}
		a.written[base+int64(j)] = h
	}
	if e.EventID != nil {
		_, err := a.id.Exec(e.EventID, idx)
		if isUniqueViolation(err) || isPrimaryKeyViolation(err) {
			return fmt.Errorf("entry %d: event id logged before: %w", idx, ErrDuplicate)
		}
		if err != nil {
			return fmt.Errorf("entry %d: event id: %w", idx, err)
		}
	}
	if e.Body != nil {
		if _, err := a.body.Exec(idx, e.Body); err != nil {
			return fmt.Errorf("entry %d: event body: %w", idx, err)
		}
	}
	return nil
}

// finish computes the tree of the first n entries, has it signed and
// stores the checkpoint.
func (a *logAppender) finish(n int64, sign SignFunc) (tlog.Tree, []byte, error) {
	h, err := tlog.TreeHash(n, a)
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("tree hash: %w", err)
	}
	tree := tlog.Tree{N: n, Hash: h}
	signed, err := sign(tree)
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("sign tree of size %d: %w", n, err)
	}
	if _, err := a.tx.Exec(`INSERT INTO log_checkpoint (id, size, signed) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET size = excluded.size, signed = excluded.signed`, n, signed); err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("store checkpoint: %w", err)
	}
	return tree, signed, nil
}

// LogSize returns the number of entries in the log.
func (s *Store) LogSize(ctx context.Context) (int64, error) {
	var n int64
	if err := s.readDB.QueryRowContext(ctx, `SELECT coalesce(max(idx) + 1, 0) FROM log_entries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage: log size: %w", err)
	}
	return n, nil
}

// LogCheckpoint returns the stored checkpoint and the size it was stored
// with, or ErrNotFound for a log that never had one.
func (s *Store) LogCheckpoint(ctx context.Context) (int64, []byte, error) {
	var n int64
	var signed []byte
	err := s.readDB.QueryRowContext(ctx, `SELECT size, signed FROM log_checkpoint WHERE id = 1`).Scan(&n, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, ErrNotFound
	}
	if err != nil {
		return 0, nil, fmt.Errorf("storage: log checkpoint: %w", err)
	}
	return n, signed, nil
}

// ReadEntries returns the entries with indexes start to end−1, in order:
// exactly end−start of them, or an error (ErrNotFound if one is missing).
// It makes the store an audit.EntryReader.
func (s *Store) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	if start < 0 || end < start {
		return nil, fmt.Errorf("storage: read entries %d to %d: bad range", start, end-1)
	}
	rows, err := s.readDB.QueryContext(ctx, `SELECT idx, data FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx`, start, end)
	if err != nil {
		return nil, fmt.Errorf("storage: read entries: %w", err)
	}
	defer rows.Close()
	out := make([][]byte, 0, end-start)
	for rows.Next() {
		var idx int64
		var data []byte
		if err := rows.Scan(&idx, &data); err != nil {
			return nil, fmt.Errorf("storage: read entries: %w", err)
		}
		if want := start + int64(len(out)); idx != want {
			return nil, fmt.Errorf("storage: read entries: entry %d: %w", want, ErrNotFound)
		}
		out = append(out, data)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: read entries: %w", err)
	}
	if int64(len(out)) != end-start {
		return nil, fmt.Errorf("storage: read entries: entry %d: %w", start+int64(len(out)), ErrNotFound)
	}
	return out, nil
}

// ReadStoredHashes returns the stored hashes with indexes start to end−1
// (tlog.StoredHashIndex), in order: exactly end−start of them, or an error
// (ErrNotFound if one is missing).
func (s *Store) ReadStoredHashes(ctx context.Context, start, end int64) ([]tlog.Hash, error) {
	if start < 0 || end < start {
		return nil, fmt.Errorf("storage: read stored hashes %d to %d: bad range", start, end-1)
	}
	rows, err := s.readDB.QueryContext(ctx, `SELECT idx, hash FROM log_hashes WHERE idx >= ? AND idx < ? ORDER BY idx`, start, end)
	if err != nil {
		return nil, fmt.Errorf("storage: read stored hashes: %w", err)
	}
	defer rows.Close()
	out := make([]tlog.Hash, 0, end-start)
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, fmt.Errorf("storage: read stored hashes: %w", err)
		}
		if want := start + int64(len(out)); idx != want {
			return nil, fmt.Errorf("storage: read stored hashes: hash %d: %w", want, ErrNotFound)
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("storage: read stored hashes: hash %d has %d bytes", idx, len(h))
		}
		out = append(out, tlog.Hash(h))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: read stored hashes: %w", err)
	}
	if int64(len(out)) != end-start {
		return nil, fmt.Errorf("storage: read stored hashes: hash %d: %w", start+int64(len(out)), ErrNotFound)
	}
	return out, nil
}

// CountStoredHashes returns the number of stored hashes, which for a log
// of n entries must be tlog.StoredHashCount(n).
func (s *Store) CountStoredHashes(ctx context.Context) (int64, error) {
	var n int64
	if err := s.readDB.QueryRowContext(ctx, `SELECT count(*) FROM log_hashes`).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage: count stored hashes: %w", err)
	}
	return n, nil
}

// LogHashes returns a tlog.HashReader over the stored hashes, for proofs,
// tiles and tree hashes of the committed log. Its reads use ctx.
func (s *Store) LogHashes(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return s.readHashes(ctx, indexes)
	})
}

// hashQueryBatch is how many indexes one query asks for: well below
// SQLite's limit of 32,766 parameters.
const hashQueryBatch = 512

func (s *Store) readHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	found := make(map[int64]tlog.Hash, len(indexes))
	for start := 0; start < len(indexes); start += hashQueryBatch {
		batch := indexes[start:min(len(indexes), start+hashQueryBatch)]
		args := make([]any, len(batch))
		for i, x := range batch {
			args[i] = x
		}
		q := `SELECT idx, hash FROM log_hashes WHERE idx IN (?` + strings.Repeat(`, ?`, len(batch)-1) + `)`
		if err := func() error {
			rows, err := s.readDB.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var idx int64
				var h []byte
				if err := rows.Scan(&idx, &h); err != nil {
					return err
				}
				if len(h) != tlog.HashSize {
					return fmt.Errorf("hash %d has %d bytes", idx, len(h))
				}
				found[idx] = tlog.Hash(h)
			}
			return rows.Err()
		}(); err != nil {
			return nil, fmt.Errorf("storage: read hashes: %w", err)
		}
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := found[x]
		if !ok {
			return nil, fmt.Errorf("storage: read hashes: hash %d: %w", x, ErrNotFound)
		}
		out[i] = h
	}
	return out, nil
}

// EventBody returns the encrypted body of the event at index, or
// ErrNotFound.
func (s *Store) EventBody(ctx context.Context, index int64) ([]byte, error) {
	var ct []byte
	err := s.readDB.QueryRowContext(ctx, `SELECT ciphertext FROM event_bodies WHERE idx = ?`, index).Scan(&ct)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: event body: %w", err)
	}
	return ct, nil
}

// EventIndex returns the index of the event with this id, or ErrNotFound.
func (s *Store) EventIndex(ctx context.Context, id []byte) (int64, error) {
	var idx int64
	err := s.readDB.QueryRowContext(ctx, `SELECT idx FROM event_ids WHERE id = ?`, id).Scan(&idx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("storage: event index: %w", err)
	}
	return idx, nil
}
