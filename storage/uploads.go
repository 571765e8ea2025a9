package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Upload is an unfinished upload staged on disk (FIELD.md, "Upload protocol
// shape"): every acknowledged frame is in the database before its ack, so
// acknowledged data survives a crash and a restart.
type Upload struct {
	ID            [16]byte
	ResumeHash    [32]byte // SHA-256 of the client's resume secret
	BundleVersion int64
	Length        int64 // total ciphertext bytes, a multiple of FrameSize
	FrameSize     int
	Received      int64  // the server's offset: bytes stored and acknowledged
	Expires       string // YYYY-MM-DD: the first day the upload may be deleted
}

// ConflictError is AppendFrame's refusal of a frame that is not at the
// upload's offset.
type ConflictError struct {
	Offset int64 // the upload's offset
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("storage: frame is not at the upload's offset %d", e.Offset)
}

// OpenUpload records a new upload and spends its upload id for proof of
// work of the given epoch, in one transaction. An id already spent (an
// upload opened before, finished or not) is ErrDuplicate: its proofs of
// work cannot be used twice.
func (s *Store) OpenUpload(ctx context.Context, u *Upload, epoch int64) error {
	if u.Length <= 0 || u.FrameSize <= 0 || u.Length%int64(u.FrameSize) != 0 || u.Received != 0 {
		return fmt.Errorf("storage: open upload: length %d, frame size %d, received %d", u.Length, u.FrameSize, u.Received)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO spent_uploads (id, epoch) VALUES (?, ?)`, u.ID[:], epoch)
		if isUniqueViolation(err) || isPrimaryKeyViolation(err) {
			return ErrDuplicate
		}
		if err != nil {
			return fmt.Errorf("storage: open upload: %w", err)
		}
		_, err = tx.Exec(`INSERT INTO uploads (id, resume_hash, bundle_version, length, frame_size, expires)
			VALUES (?, ?, ?, ?, ?, ?)`, u.ID[:], u.ResumeHash[:], u.BundleVersion, u.Length, u.FrameSize, u.Expires)
		if isUniqueViolation(err) || isPrimaryKeyViolation(err) {
			return ErrDuplicate
		}
		if err != nil {
			return fmt.Errorf("storage: open upload: %w", err)
		}
		return nil
	})
}

// GetUpload returns an unfinished upload, or ErrNotFound.
func (s *Store) GetUpload(ctx context.Context, id [16]byte) (*Upload, error) {
	u := &Upload{ID: id}
	var hash []byte
	err := s.readDB.QueryRowContext(ctx, `SELECT resume_hash, bundle_version, length, frame_size, received, expires
		FROM uploads WHERE id = ?`, id[:]).Scan(&hash, &u.BundleVersion, &u.Length, &u.FrameSize, &u.Received, &u.Expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: get upload: %w", err)
	}
	copy(u.ResumeHash[:], hash)
	return u, nil
}

// AppendFrame stores one frame of an upload at offset, which must be the
// upload's offset (else *ConflictError), and returns the new offset. It
// returns only after the frame is durable, so the caller may acknowledge it.
func (s *Store) AppendFrame(ctx context.Context, id [16]byte, offset int64, data []byte) (int64, error) {
	var received int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var length int64
		var frame int
		err := tx.QueryRow(`SELECT received, length, frame_size FROM uploads WHERE id = ?`, id[:]).Scan(&received, &length, &frame)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("storage: append frame: %w", err)
		}
		if offset != received {
			return &ConflictError{Offset: received}
		}
		if len(data) != frame || received+int64(frame) > length {
			return fmt.Errorf("storage: append frame: %d bytes at %d of an upload of %d in %d-byte frames", len(data), offset, length, frame)
		}
		if _, err := tx.Exec(`INSERT INTO upload_frames (upload_id, offset, data) VALUES (?, ?, ?)`, id[:], offset, data); err != nil {
			return fmt.Errorf("storage: append frame: %w", err)
		}
		received += int64(len(data))
		if _, err := tx.Exec(`UPDATE uploads SET received = ? WHERE id = ?`, received, id[:]); err != nil {
			return fmt.Errorf("storage: append frame: %w", err)
		}
		return nil
	})
	if err != nil {
		// The writer may still run fn after write gave up: never read
		// what it sets then.
		return 0, err
	}
	return received, nil
}

// UploadData returns the bytes an upload has received, in order.
func (s *Store) UploadData(ctx context.Context, id [16]byte) ([]byte, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT offset, data FROM upload_frames WHERE upload_id = ? ORDER BY offset`, id[:])
	if err != nil {
		return nil, fmt.Errorf("storage: upload data: %w", err)
	}
	defer rows.Close()
	var buf bytes.Buffer
	for rows.Next() {
		var off int64
		var data []byte
		if err := rows.Scan(&off, &data); err != nil {
			return nil, fmt.Errorf("storage: upload data: %w", err)
		}
		if off != int64(buf.Len()) {
			return nil, fmt.Errorf("storage: upload data: frame at %d after %d bytes", off, buf.Len())
		}
		buf.Write(data)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: upload data: %w", err)
	}
	return buf.Bytes(), nil
}

// CommitUpload turns a finished upload into the tip t in one transaction:
// the tip is stored and the staged upload deleted (its id stays spent).
// ErrNotFound if the upload is gone (expired, or committed by another
// connection), ErrDuplicate if the tip id exists.
func (s *Store) CommitUpload(ctx context.Context, id [16]byte, t *Tip) error {
	if int64(len(t.Ciphertext)) != t.Length {
		return fmt.Errorf("storage: commit upload: length %d, ciphertext %d bytes", t.Length, len(t.Ciphertext))
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM uploads WHERE id = ? AND received = length`, id[:])
		if err != nil {
			return fmt.Errorf("storage: commit upload: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return ErrNotFound
		}
		return putTip(tx, t)
	})
}

// DeleteExpiredUploads deletes every unfinished upload whose expiry day is
// today or earlier (days compare as YYYY-MM-DD strings) and returns how
// many it deleted. secure_delete overwrites their frames.
func (s *Store) DeleteExpiredUploads(ctx context.Context, today string) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM uploads WHERE expires <= ?`, today)
		if err != nil {
			return fmt.Errorf("storage: delete expired uploads: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// ForgetSpentBefore forgets spent upload ids of epochs before epoch: their
// proofs of work are refused as stale anyway.
func (s *Store) ForgetSpentBefore(ctx context.Context, epoch int64) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM spent_uploads WHERE epoch < ? AND id NOT IN (SELECT id FROM uploads)`, epoch)
		if err != nil {
			return fmt.Errorf("storage: forget spent uploads: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Staged returns how many unfinished uploads there are and how many bytes
// they have received: the staging space they use. An upload that never
// sent a byte costs no staging space, only its row.
func (s *Store) Staged(ctx context.Context) (uploads, bytes int64, err error) {
	if err := s.readDB.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(received), 0) FROM uploads`).Scan(&uploads, &bytes); err != nil {
		return 0, 0, fmt.Errorf("storage: staged: %w", err)
	}
	return uploads, bytes, nil
}

// UploadIDSpent reports whether an upload with this id was opened before:
// a cheap read to refuse a replayed upload message before checking its
// proofs of work. OpenUpload's insert remains the authoritative check.
func (s *Store) UploadIDSpent(ctx context.Context, id [16]byte) (bool, error) {
	var n int
	if err := s.readDB.QueryRowContext(ctx, `SELECT count(*) FROM spent_uploads WHERE id = ?`, id[:]).Scan(&n); err != nil {
		return false, fmt.Errorf("storage: upload id spent: %w", err)
	}
	return n > 0, nil
}

// DeleteUpload deletes an unfinished upload and its frames (its id stays
// spent). Deleting one that is gone is not an error.
func (s *Store) DeleteUpload(ctx context.Context, id [16]byte) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM uploads WHERE id = ?`, id[:]); err != nil {
			return fmt.Errorf("storage: delete upload: %w", err)
		}
		return nil
	})
}

// PutPoWSeed stores the signed proof-of-work seed of an epoch, once: the
// server must hand every source of an epoch the same seed (FIELD.md), so a
// second seed for an epoch is ErrDuplicate and the first one stays.
func (s *Store) PutPoWSeed(ctx context.Context, epoch int64, signed []byte) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO pow_seeds (epoch, signed) VALUES (?, ?)`, epoch, signed)
		if isUniqueViolation(err) || isPrimaryKeyViolation(err) {
			return ErrDuplicate
		}
		if err != nil {
			return fmt.Errorf("storage: put pow seed: %w", err)
		}
		return nil
	})
}

// PoWSeed returns the signed proof-of-work seed of an epoch, or ErrNotFound.
func (s *Store) PoWSeed(ctx context.Context, epoch int64) ([]byte, error) {
	var signed []byte
	err := s.readDB.QueryRowContext(ctx, `SELECT signed FROM pow_seeds WHERE epoch = ?`, epoch).Scan(&signed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: pow seed: %w", err)
	}
	return signed, nil
}
