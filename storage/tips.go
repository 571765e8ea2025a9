package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
)

// Tip is a committed tip: ciphertext and the receipt the server signed.
type Tip struct {
	TipMeta
	Ciphertext []byte
}

// TipMeta is what an editor lists: everything of a tip but its ciphertext.
type TipMeta struct {
	// Seq is the tip's place in arrival order, the editors' cursor.
	// Assigned by PutTip.
	Seq           int64
	ID            [16]byte
	Day           string // YYYY-MM-DD, UTC
	BundleVersion int64
	SHA256        [32]byte
	Length        int64
	// Receipt is the signed receipt note handed to the source.
	Receipt []byte
}

// PutTip stores a tip durably. It returns nil only after the transaction
// holding the tip committed (synchronous=FULL), so the caller may then hand
// the receipt to the source. A tip whose id exists already is ErrDuplicate.
func (s *Store) PutTip(ctx context.Context, t *Tip) error {
	if int64(len(t.Ciphertext)) != t.Length {
		return fmt.Errorf("storage: put tip: length %d, ciphertext %d bytes", t.Length, len(t.Ciphertext))
	}
	return s.write(ctx, func(tx *sql.Tx) error { return s.insertTip(tx, t, t.Ciphertext, nil) })
}

// insertTip inserts t's row with either its ciphertext or the owner of the
// chunks that hold it, and sets t.Seq.
func (s *Store) insertTip(tx *sql.Tx, t *Tip, ciphertext, chunks []byte) error {
	res, err := tx.Stmt(s.stmts.insertTip).Exec(t.ID[:], t.Day, t.BundleVersion, t.SHA256[:], t.Length, ciphertext, t.Receipt, chunks)
	if isUniqueViolation(err) {
		return ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("storage: put tip: %w", err)
	}
	t.Seq, err = res.LastInsertId()
	return err
}

// ListTips returns up to limit tips with Seq greater than after, in order,
// leaving out tips whose deletion waits for their receipts root.
func (s *Store) ListTips(ctx context.Context, after int64, limit int) ([]TipMeta, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT seq, id, day, bundle_version, sha256, length, receipt
		FROM tips WHERE seq > ? AND seq NOT IN (SELECT seq FROM tip_marks WHERE delete_pending = 1)
		ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: list tips: %w", err)
	}
	defer rows.Close()
	var out []TipMeta
	for rows.Next() {
		var m TipMeta
		var id, sum []byte
		if err := rows.Scan(&m.Seq, &id, &m.Day, &m.BundleVersion, &sum, &m.Length, &m.Receipt); err != nil {
			return nil, fmt.Errorf("storage: list tips: %w", err)
		}
		copy(m.ID[:], id)
		copy(m.SHA256[:], sum)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list tips: %w", err)
	}
	return out, nil
}

// TipCiphertext returns a tip's ciphertext, or ErrNotFound (also for a tip
// whose deletion waits for its receipts root). A tip made of its upload's
// chunks is read in one transaction, so a deletion cannot cut it short.
func (s *Store) TipCiphertext(ctx context.Context, id [16]byte) ([]byte, error) {
	tx, err := s.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("storage: read tip: %w", err)
	}
	defer tx.Rollback()
	var ct, chunks []byte
	var length int64
	err = tx.QueryRowContext(ctx, `SELECT ciphertext, chunks, length FROM tips WHERE id = ?
		AND seq NOT IN (SELECT seq FROM tip_marks WHERE delete_pending = 1)`, id[:]).Scan(&ct, &chunks, &length)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: read tip: %w", err)
	}
	if chunks == nil {
		return ct, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT offset, data FROM chunks WHERE owner = ? ORDER BY offset`, chunks)
	if err != nil {
		return nil, fmt.Errorf("storage: read tip: %w", err)
	}
	r := &chunkReader{rows: rows, what: "read tip"}
	defer r.Close()
	ct = make([]byte, 0, length)
	buf := bytes.NewBuffer(ct)
	if _, err := io.Copy(buf, r); err != nil {
		return nil, err
	}
	if int64(buf.Len()) != length {
		return nil, fmt.Errorf("storage: read tip: %d bytes of chunks for a tip of %d", buf.Len(), length)
	}
	return buf.Bytes(), nil
}

// CountTips returns how many tips the store holds.
func (s *Store) CountTips(ctx context.Context) (int64, error) {
	var n int64
	if err := s.readDB.QueryRowContext(ctx, `SELECT count(*) FROM tips`).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage: count tips: %w", err)
	}
	return n, nil
}

// PutBundle stores a signed bundle the server accepted. Versions only grow:
// a version not above the highest stored is refused.
func (s *Store) PutBundle(ctx context.Context, version int64, signed []byte, day string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var top sql.NullInt64
		if err := tx.QueryRow(`SELECT max(version) FROM bundles`).Scan(&top); err != nil {
			return fmt.Errorf("storage: put bundle: %w", err)
		}
		if top.Valid && version <= top.Int64 {
			return fmt.Errorf("storage: put bundle: version %d is not above stored version %d: %w", version, top.Int64, ErrDuplicate)
		}
		if _, err := tx.Exec(`INSERT INTO bundles (version, signed, day) VALUES (?, ?, ?)`, version, signed, day); err != nil {
			return fmt.Errorf("storage: put bundle: %w", err)
		}
		return nil
	})
}

// LatestBundle returns the signed bundle with the highest version, or
// ErrNotFound.
func (s *Store) LatestBundle(ctx context.Context) ([]byte, error) {
	var signed []byte
	err := s.readDB.QueryRowContext(ctx, `SELECT signed FROM bundles ORDER BY version DESC LIMIT 1`).Scan(&signed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: latest bundle: %w", err)
	}
	return signed, nil
}

// Setting returns a setting's value, or ErrNotFound.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.readDB.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("storage: setting %s: %w", key, err)
	}
	return v, nil
}

// SetSettingOnce stores a setting that must never change (such as the
// pinned newsroom key): it succeeds if the key is unset or already has this
// value, and fails with ErrDuplicate if it has another.
func (s *Store) SetSettingOnce(ctx context.Context, key, value string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var have string
		err := tx.QueryRow(`SELECT value FROM settings WHERE key = ?`, key).Scan(&have)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.Exec(`INSERT INTO settings (key, value) VALUES (?, ?)`, key, value)
			return err
		case err != nil:
			return fmt.Errorf("storage: setting %s: %w", key, err)
		case have != value:
			return fmt.Errorf("storage: setting %s is fixed to another value: %w", key, ErrDuplicate)
		}
		return nil
	})
}

// StoredBundle is a signed bundle and the day the server accepted it.
type StoredBundle struct {
	Version int64
	Signed  []byte
	Day     string // YYYY-MM-DD: the day it was put in force
}

// RecentBundles returns up to n stored bundles, the newest first.
func (s *Store) RecentBundles(ctx context.Context, n int) ([]StoredBundle, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT version, signed, day FROM bundles ORDER BY version DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("storage: recent bundles: %w", err)
	}
	defer rows.Close()
	var out []StoredBundle
	for rows.Next() {
		var b StoredBundle
		if err := rows.Scan(&b.Version, &b.Signed, &b.Day); err != nil {
			return nil, fmt.Errorf("storage: recent bundles: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: recent bundles: %w", err)
	}
	return out, nil
}
