package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Receipts trees, tip marks and tip deletion (docs/audit.md, "Receipts
// tree"; AUDIT.md, "Corroboration model"). Storage knows nothing of the
// trees' format: package server builds, seals and signs them. What it
// promises:
//
//   - Periods are stored in order, without overlap: a period is refused
//     unless it begins after every stored one ends, and while another is
//     pending (stored, its root entry not yet known to be in the log).
//   - A period's tips are read in the transaction that stores the period,
//     so the tree is built over exactly the tips stored at that moment.
//   - A deleted tip's bytes are overwritten (secure_delete, set by Open)
//     and the WAL is checkpointed and truncated before DeleteTip returns,
//     so its ciphertext is in neither the database file nor its WAL.
//
// receipts_test.go proves these on real files.

// Receipts limits.
const (
	// MaxReceiptsTips caps the tips one period's tree is built over: the
	// largest tree package audit builds (2^20 leaves).
	MaxReceiptsTips = 1 << 20
	// maxDeleteBatch caps the tips one DeleteTips call deletes.
	maxDeleteBatch = 512
)

// ReceiptsPeriod is one period's receipts tree as the store keeps it.
type ReceiptsPeriod struct {
	// First and Last are the period's first and last days, YYYY-MM-DD.
	First, Last string
	// LogFrom is the log's size when the period was stored: its root entry
	// is at this index or later.
	LogFrom int64
	// LogIndex is the index of its root entry in the log, or -1 while the
	// period is pending.
	LogIndex int64
	// Entry is the signed root entry, exactly as it is (to be) logged.
	Entry []byte
	// SealedKey is the period key sealed to the editors.
	SealedKey []byte
	// Leaves are the tree's leaves, sorted, 32 bytes each, concatenated.
	Leaves []byte
}

// BuildPeriodFunc builds a period's tree from the SHA-256 of the
// ciphertext of every tip stored with a day in the period (each hash once,
// sorted bytewise) and returns the root entry, the sealed key and the
// leaves to store. It runs inside the write transaction; an error stores
// nothing.
type BuildPeriodFunc func(tips [][32]byte) (entry, sealedKey, leaves []byte, err error)

func checkDay(what, day string) error {
	if t, err := time.Parse("2006-01-02", day); err != nil || t.Format("2006-01-02") != day {
		return fmt.Errorf("%s %q is not a day YYYY-MM-DD", what, clipDay(day))
	}
	return nil
}

func clipDay(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// PutReceiptsPeriod stores the pending period first to last (logFrom: the
// log's size now), built by build over the period's tips. It fails with
// ErrDuplicate if a period is pending or first is not after the last day
// of every stored period.
func (s *Store) PutReceiptsPeriod(ctx context.Context, first, last string, logFrom int64, build BuildPeriodFunc) error {
	if err := checkDay("first day", first); err != nil {
		return fmt.Errorf("storage: put receipts period: %w", err)
	}
	if err := checkDay("last day", last); err != nil {
		return fmt.Errorf("storage: put receipts period: %w", err)
	}
	if last < first || logFrom < 0 {
		return fmt.Errorf("storage: put receipts period: %s to %s from log size %d: bad period", first, last, logFrom)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var pending int64
		var top sql.NullString
		if err := tx.QueryRow(`SELECT count(*) FILTER (WHERE log_index IS NULL), max(last_day) FROM receipts_periods`).Scan(&pending, &top); err != nil {
			return fmt.Errorf("storage: put receipts period: %w", err)
		}
		if pending > 0 {
			return fmt.Errorf("storage: put receipts period %s to %s: a period is pending: %w", first, last, ErrDuplicate)
		}
		if top.Valid && first <= top.String {
			return fmt.Errorf("storage: put receipts period %s to %s: periods stored up to %s: %w", first, last, top.String, ErrDuplicate)
		}
		tips, err := tipHashes(tx, first, last)
		if err != nil {
			return fmt.Errorf("storage: put receipts period: %w", err)
		}
		entry, sealed, leaves, err := build(tips)
		if err != nil {
			return fmt.Errorf("storage: put receipts period %s to %s: %w", first, last, err)
		}
		if !leavesSorted(leaves) {
			return fmt.Errorf("storage: put receipts period %s to %s: leaves are not 32-byte values, sorted and distinct", first, last)
		}
		if _, err := tx.Exec(`INSERT INTO receipts_periods (first_day, last_day, log_from, entry, sealed_key, leaves)
			VALUES (?, ?, ?, ?, ?, ?)`, first, last, logFrom, entry, sealed, leaves); err != nil {
			return fmt.Errorf("storage: put receipts period %s to %s: %w", first, last, err)
		}
		return nil
	})
}

// ReceiptTipHashes returns the SHA-256 of the ciphertext of every tip
// still stored whose receipt day is first to last, each hash once, sorted
// bytewise.
func (s *Store) ReceiptTipHashes(ctx context.Context, first, last string) ([][32]byte, error) {
	var out [][32]byte
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = tipHashes(tx, first, last)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: receipt tip hashes: %w", err)
	}
	return out, nil
}

// readTx runs fn in a read-only transaction of the reader pool.
func (s *Store) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.readDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

func tipHashes(tx *sql.Tx, first, last string) ([][32]byte, error) {
	// DISTINCT: two tips of identical ciphertext (a source may send the
	// same bytes twice) are one leaf.
	rows, err := tx.Query(`SELECT DISTINCT sha256 FROM tips WHERE day >= ? AND day <= ? ORDER BY sha256 LIMIT ?`, first, last, MaxReceiptsTips+1)
	if err != nil {
		return nil, fmt.Errorf("tips of %s to %s: %w", first, last, err)
	}
	defer rows.Close()
	var out [][32]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("tips of %s to %s: %w", first, last, err)
		}
		if len(b) != 32 {
			return nil, fmt.Errorf("tips of %s to %s: a hash of %d bytes", first, last, len(b))
		}
		out = append(out, [32]byte(b))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tips of %s to %s: %w", first, last, err)
	}
	if len(out) > MaxReceiptsTips {
		return nil, fmt.Errorf("tips of %s to %s: more than %d", first, last, MaxReceiptsTips)
	}
	return out, nil
}

// SetReceiptsIndex records that the root entry of the pending period that
// begins on first is at index in the log. ErrNotFound if no such period is
// pending.
func (s *Store) SetReceiptsIndex(ctx context.Context, first string, index int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE receipts_periods SET log_index = ? WHERE first_day = ? AND log_index IS NULL AND log_from <= ?`, index, first, index)
		if err != nil {
			return fmt.Errorf("storage: set receipts index of %s: %w", clipDay(first), err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("storage: set receipts index of %s to %d: no such pending period: %w", clipDay(first), index, ErrNotFound)
		}
		return nil
	})
}

const periodColumns = `first_day, last_day, log_from, coalesce(log_index, -1), entry, sealed_key, leaves`

func scanPeriod(row *sql.Row) (*ReceiptsPeriod, error) {
	p := &ReceiptsPeriod{}
	err := row.Scan(&p.First, &p.Last, &p.LogFrom, &p.LogIndex, &p.Entry, &p.SealedKey, &p.Leaves)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// PendingReceiptsPeriod returns the pending period, or ErrNotFound.
func (s *Store) PendingReceiptsPeriod(ctx context.Context) (*ReceiptsPeriod, error) {
	p, err := scanPeriod(s.readDB.QueryRowContext(ctx, `SELECT `+periodColumns+` FROM receipts_periods WHERE log_index IS NULL`))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("storage: pending receipts period: %w", err)
	}
	return p, err
}

// LastReceiptsPeriod returns the stored period that ends last, pending or
// not, or ErrNotFound.
func (s *Store) LastReceiptsPeriod(ctx context.Context) (*ReceiptsPeriod, error) {
	p, err := scanPeriod(s.readDB.QueryRowContext(ctx, `SELECT `+periodColumns+` FROM receipts_periods ORDER BY last_day DESC LIMIT 1`))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("storage: last receipts period: %w", err)
	}
	return p, err
}

// ReceiptsPeriodAt returns the period whose root entry is at index in the
// log, or ErrNotFound.
func (s *Store) ReceiptsPeriodAt(ctx context.Context, index int64) (*ReceiptsPeriod, error) {
	p, err := scanPeriod(s.readDB.QueryRowContext(ctx, `SELECT `+periodColumns+` FROM receipts_periods WHERE log_index = ?`, index))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("storage: receipts period at %d: %w", index, err)
	}
	return p, err
}

// EarliestTipDay returns the receipt day of the earliest stored tip, or
// ErrNotFound if there is none.
func (s *Store) EarliestTipDay(ctx context.Context) (string, error) {
	var day sql.NullString
	if err := s.readDB.QueryRowContext(ctx, `SELECT min(day) FROM tips`).Scan(&day); err != nil {
		return "", fmt.Errorf("storage: earliest tip day: %w", err)
	}
	if !day.Valid {
		return "", ErrNotFound
	}
	return day.String, nil
}

// TipPeriod is where a stored tip stands in the receipts trees.
type TipPeriod struct {
	// Day is the tip's receipt day.
	Day string
	// LogIndex is the index of the root entry of the period holding Day,
	// or -1 if that period is not stored or still pending.
	LogIndex int64
	// RejectedDay is the day the tip was marked rejected, "" if it is not.
	RejectedDay string
}

// TipPeriodOf returns a tip's day, the log index of its period's root and
// its mark, or ErrNotFound for a tip not stored.
func (s *Store) TipPeriodOf(ctx context.Context, id [16]byte) (*TipPeriod, error) {
	var tp TipPeriod
	var rejected sql.NullString
	err := s.readDB.QueryRowContext(ctx, `SELECT t.day, coalesce(p.log_index, -1), m.rejected_day FROM tips t
		LEFT JOIN receipts_periods p ON p.first_day <= t.day AND t.day <= p.last_day
		LEFT JOIN tip_marks m ON m.seq = t.seq WHERE t.id = ?`, id[:]).Scan(&tp.Day, &tp.LogIndex, &rejected)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: tip period: %w", err)
	}
	tp.RejectedDay = rejected.String
	return &tp, nil
}

// MarkTip records that editors rejected a tip on day (YYYY-MM-DD), keeping
// an earlier mark if the tip has one; an empty day clears the mark.
// ErrNotFound for a tip not stored.
func (s *Store) MarkTip(ctx context.Context, id [16]byte, day string) error {
	if day != "" {
		if err := checkDay("mark day", day); err != nil {
			return fmt.Errorf("storage: mark tip: %w", err)
		}
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var seq int64
		err := tx.QueryRow(`SELECT seq FROM tips WHERE id = ?`, id[:]).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("storage: mark tip: %w", err)
		}
		if day == "" {
			// A deletion pending its period's root stays pending.
			_, err = tx.Exec(`DELETE FROM tip_marks WHERE seq = ? AND delete_pending = 0`, seq)
		} else {
			_, err = tx.Exec(`INSERT INTO tip_marks (seq, rejected_day) VALUES (?, ?) ON CONFLICT (seq) DO NOTHING`, seq, day)
		}
		if err != nil {
			return fmt.Errorf("storage: mark tip: %w", err)
		}
		return nil
	})
}

// MarkTipDeleted records that an editor deleted the tip on day while its
// receipts period had no root: PendingDeletions lists it once the root is
// logged, and ListTips no longer does. ErrNotFound for a tip not stored.
func (s *Store) MarkTipDeleted(ctx context.Context, id [16]byte, day string) error {
	if err := checkDay("delete day", day); err != nil {
		return fmt.Errorf("storage: mark tip deleted: %w", err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var seq int64
		err := tx.QueryRow(`SELECT seq FROM tips WHERE id = ?`, id[:]).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("storage: mark tip deleted: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO tip_marks (seq, rejected_day, delete_pending) VALUES (?, ?, 1)
			ON CONFLICT (seq) DO UPDATE SET delete_pending = 1`, seq, day); err != nil {
			return fmt.Errorf("storage: mark tip deleted: %w", err)
		}
		return nil
	})
}

// PendingDeletions returns up to limit tips deleted by an editor before
// their period's root whose root entry is now at an index below
// rootedBelow (the published log's size).
func (s *Store) PendingDeletions(ctx context.Context, rootedBelow int64, limit int) ([][16]byte, error) {
	return s.markedTips(ctx, `SELECT t.id FROM tip_marks m JOIN tips t ON t.seq = m.seq
		JOIN receipts_periods p ON p.first_day <= t.day AND t.day <= p.last_day
		WHERE m.delete_pending = 1 AND p.log_index IS NOT NULL AND p.log_index < ?
		ORDER BY m.seq LIMIT ?`, rootedBelow, limit)
}

// RejectedTipsBefore returns up to limit tips marked rejected on a day
// before day whose period's root entry is at an index below rootedBelow
// (the published log's size): those the retention purge may delete.
func (s *Store) RejectedTipsBefore(ctx context.Context, day string, rootedBelow int64, limit int) ([][16]byte, error) {
	return s.markedTips(ctx, `SELECT t.id FROM tip_marks m JOIN tips t ON t.seq = m.seq
		JOIN receipts_periods p ON p.first_day <= t.day AND t.day <= p.last_day
		WHERE m.rejected_day < ? AND p.log_index IS NOT NULL AND p.log_index < ?
		ORDER BY m.seq LIMIT ?`, day, rootedBelow, limit)
}

func (s *Store) markedTips(ctx context.Context, query string, args ...any) ([][16]byte, error) {
	rows, err := s.readDB.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: rejected tips: %w", err)
	}
	defer rows.Close()
	var out [][16]byte
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("storage: rejected tips: %w", err)
		}
		if len(id) != 16 {
			return nil, fmt.Errorf("storage: rejected tips: an id of %d bytes", len(id))
		}
		out = append(out, [16]byte(id))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: rejected tips: %w", err)
	}
	return out, nil
}

// DeleteTip deletes a tip and, before returning, checkpoints and truncates
// the WAL (DeleteTips). ErrNotFound for a tip not stored.
func (s *Store) DeleteTip(ctx context.Context, id [16]byte) error {
	n, err := s.DeleteTips(ctx, [][16]byte{id})
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteTips deletes the tips with these ids (at most 512; ids not stored
// are skipped) in one transaction, then runs PRAGMA wal_checkpoint(TRUNCATE),
// and returns how many it deleted. With secure_delete on (Open checks it),
// SQLite overwrites the deleted rows and freed pages with zeros; the
// checkpoint copies those pages into the database file and empties the
// WAL, which held the tip's earlier page images. An error from the
// checkpoint (a reader that kept it from finishing) comes after the rows
// are deleted: the bytes may then remain in the WAL until the next
// checkpoint, and the caller should say so.
func (s *Store) DeleteTips(ctx context.Context, ids [][16]byte) (int64, error) {
	if len(ids) == 0 || len(ids) > maxDeleteBatch {
		return 0, fmt.Errorf("storage: delete tips: %d ids, want 1 to %d", len(ids), maxDeleteBatch)
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.Prepare(`DELETE FROM tips WHERE id = ?`)
		if err != nil {
			return fmt.Errorf("storage: delete tips: %w", err)
		}
		defer st.Close()
		n = 0
		for _, id := range ids {
			res, err := st.Exec(id[:])
			if err != nil {
				return fmt.Errorf("storage: delete tips: %w", err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("storage: delete tips: %w", err)
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := s.CheckpointWAL(ctx); err != nil {
		return n, fmt.Errorf("storage: delete tips: %d deleted, but %w", n, err)
	}
	return n, nil
}

// CheckpointWAL copies every page of the WAL into the database file and
// truncates the WAL to zero bytes (PRAGMA wal_checkpoint(TRUNCATE)),
// waiting for readers (busy_timeout) as SQLite does. It fails if a reader
// or writer kept it from completing.
func (s *Store) CheckpointWAL(ctx context.Context) error {
	// The writer's one connection: the checkpoint runs between two of the
	// writer's transactions, never inside one.
	var busy, logPages, done int64
	defer s.wrote()
	if err := s.writeDB.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &done); err != nil {
		return fmt.Errorf("wal checkpoint: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("wal checkpoint: blocked by a reader or writer (%d of %d pages copied)", done, logPages)
	}
	return nil
}

// BundleOfVersion returns the stored signed bundle of a version, or
// ErrNotFound.
func (s *Store) BundleOfVersion(ctx context.Context, version int64) ([]byte, error) {
	var signed []byte
	err := s.readDB.QueryRowContext(ctx, `SELECT signed FROM bundles WHERE version = ?`, version).Scan(&signed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: bundle %d: %w", version, err)
	}
	return signed, nil
}

// leavesSorted reports whether leaves are 32-byte values, sorted and
// distinct, at least one: what a receipts tree's leaves are.
func leavesSorted(leaves []byte) bool {
	if len(leaves) == 0 || len(leaves)%32 != 0 {
		return false
	}
	for i := 32; i < len(leaves); i += 32 {
		if bytes.Compare(leaves[i-32:i], leaves[i:i+32]) >= 0 {
			return false
		}
	}
	return true
}
