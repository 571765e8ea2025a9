package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// A tip handed over is a tip's plaintext re-encrypted by an editor to one
// editor a later bundle added (docs/log.md, "Tips handed over"): stored
// beside the tip, one per tip and editor, served to that editor only, and
// deleted with the tip.

// PutTipHandover stores ct as tip id's ciphertext for the editor labelled
// editor, replacing the one stored for them before, and returns once the
// transaction committed. ErrNotFound if the tip is not stored (or waits
// for its deletion).
func (s *Store) PutTipHandover(ctx context.Context, id [16]byte, editor string, ct []byte) error {
	if len(ct) == 0 || editor == "" || len(editor) > 32 {
		return fmt.Errorf("storage: put tip handover: %d bytes for editor of %d bytes", len(ct), len(editor))
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var seq int64
		err := tx.QueryRow(`SELECT seq FROM tips WHERE id = ?
			AND seq NOT IN (SELECT seq FROM tip_marks WHERE delete_pending = 1)`, id[:]).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("storage: put tip handover: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO tip_handovers (seq, editor, length, ciphertext) VALUES (?, ?, ?, ?)
			ON CONFLICT (seq, editor) DO UPDATE SET length = excluded.length, ciphertext = excluded.ciphertext`,
			seq, editor, len(ct), ct); err != nil {
			return fmt.Errorf("storage: put tip handover: %w", err)
		}
		return nil
	})
}

// TipHandover returns the ciphertext of tip id handed over to editor, or
// ErrNotFound (no such tip, none for that editor, or the tip waits for its
// deletion).
func (s *Store) TipHandover(ctx context.Context, id [16]byte, editor string) ([]byte, error) {
	var ct []byte
	err := s.readDB.QueryRowContext(ctx, `SELECT h.ciphertext FROM tip_handovers h JOIN tips t ON t.seq = h.seq
		WHERE t.id = ? AND h.editor = ? AND t.seq NOT IN (SELECT seq FROM tip_marks WHERE delete_pending = 1)`, id[:], editor).Scan(&ct)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: read tip handover: %w", err)
	}
	return ct, nil
}
