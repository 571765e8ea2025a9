package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Editors' cosignatures of the log's checkpoints (docs/log.md,
// "Cosignatures"): for each cosigned size, the checkpoint the log key
// signed, and each editor's latest cosignature line of it. Package server
// verifies both before storing them; storage checks only sizes.

// Cosignature limits, as the schema has them.
const (
	// MaxCosignedCheckpoint caps a stored signed checkpoint: the schema's
	// CHECK (migration 0005), which is audit.MaxCheckpointSize (storage
	// imports none of ours; server's TestCheckpointCaps holds them equal).
	MaxCosignedCheckpoint = 4096
	// MaxCosignatureLine caps a stored cosignature line.
	MaxCosignatureLine = 256
	// maxCosignEditor and maxCosignName cap the editor's label and the
	// key's name.
	maxCosignEditor = 32
	maxCosignName   = 64
)

// Cosignature is one editor's cosignature of one checkpoint.
type Cosignature struct {
	// Editor is the label of the editor who sent it, 1 to 32 bytes.
	Editor string
	// Name is the cosigning key's name, 1 to 64 bytes.
	Name string
	// Line is the signature line as it appears in the signed note,
	// "— <name> <base64>\n", 1 to MaxCosignatureLine bytes.
	Line []byte
}

// CosignedSize is a cosigned size and how many editors cosigned it.
type CosignedSize struct {
	Size      int64
	Cosigners int64
}

// PutCosignature stores c, an editor's cosignature of the checkpoint of
// size size (signed: the checkpoint with the log's signature line),
// replacing that editor's earlier cosignature of that size. The checkpoint
// of a size is stored with its first cosignature and kept: the log key
// signs a tree once, so later ones carry the same bytes. It returns once
// the write is committed.
func (s *Store) PutCosignature(ctx context.Context, size int64, signed []byte, c Cosignature) error {
	switch {
	case size < 1:
		return fmt.Errorf("storage: put cosignature: size %d, want at least 1", size)
	case len(signed) == 0 || len(signed) > MaxCosignedCheckpoint:
		return fmt.Errorf("storage: put cosignature: checkpoint of %d bytes, want 1 to %d", len(signed), MaxCosignedCheckpoint)
	case len(c.Editor) == 0 || len(c.Editor) > maxCosignEditor:
		return fmt.Errorf("storage: put cosignature: editor label of %d bytes, want 1 to %d", len(c.Editor), maxCosignEditor)
	case len(c.Name) == 0 || len(c.Name) > maxCosignName:
		return fmt.Errorf("storage: put cosignature: key name of %d bytes, want 1 to %d", len(c.Name), maxCosignName)
	case len(c.Line) == 0 || len(c.Line) > MaxCosignatureLine:
		return fmt.Errorf("storage: put cosignature: line of %d bytes, want 1 to %d", len(c.Line), MaxCosignatureLine)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO cosigned_checkpoints (size, signed) VALUES (?, ?) ON CONFLICT (size) DO NOTHING`,
			size, signed); err != nil {
			return fmt.Errorf("storage: put cosignature: checkpoint: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO cosignatures (size, editor, name, line) VALUES (?, ?, ?, ?)
			ON CONFLICT (size, editor) DO UPDATE SET name = excluded.name, line = excluded.line`,
			size, c.Editor, c.Name, c.Line); err != nil {
			return fmt.Errorf("storage: put cosignature: %w", err)
		}
		return nil
	})
}

// CosignedSizes returns the cosigned sizes, largest first, at most limit
// of them, each with its number of cosigners.
func (s *Store) CosignedSizes(ctx context.Context, limit int) ([]CosignedSize, error) {
	if limit < 1 {
		return nil, fmt.Errorf("storage: cosigned sizes: limit %d, want at least 1", limit)
	}
	rows, err := s.readDB.QueryContext(ctx, `SELECT size, count(*) FROM cosignatures GROUP BY size ORDER BY size DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: cosigned sizes: %w", err)
	}
	defer rows.Close()
	var out []CosignedSize
	for rows.Next() {
		var c CosignedSize
		if err := rows.Scan(&c.Size, &c.Cosigners); err != nil {
			return nil, fmt.Errorf("storage: cosigned sizes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: cosigned sizes: %w", err)
	}
	return out, nil
}

// Cosigned returns the signed checkpoint of size and its cosignatures,
// sorted by key name (then editor), or ErrNotFound if nobody cosigned it.
func (s *Store) Cosigned(ctx context.Context, size int64) ([]byte, []Cosignature, error) {
	tx, err := s.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, fmt.Errorf("storage: cosigned: %w", err)
	}
	defer tx.Rollback()
	var signed []byte
	err = tx.QueryRowContext(ctx, `SELECT signed FROM cosigned_checkpoints WHERE size = ?`, size).Scan(&signed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("storage: cosigned: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT editor, name, line FROM cosignatures WHERE size = ? ORDER BY name, editor`, size)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: cosigned: %w", err)
	}
	defer rows.Close()
	var out []Cosignature
	for rows.Next() {
		var c Cosignature
		if err := rows.Scan(&c.Editor, &c.Name, &c.Line); err != nil {
			return nil, nil, fmt.Errorf("storage: cosigned: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("storage: cosigned: %w", err)
	}
	if len(out) == 0 {
		return nil, nil, ErrNotFound
	}
	return signed, out, nil
}
