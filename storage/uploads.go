package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
)

// Upload is an unfinished upload staged on disk (FIELD.md, "Upload protocol
// shape"): every acknowledged frame is in the database before its ack, so
// acknowledged data survives a crash and a restart. Its frames are stored
// once, as chunks, and become the tip's bytes at the commit.
type Upload struct {
	ID            [16]byte
	ResumeHash    [32]byte // SHA-256 of the client's resume secret
	BundleVersion int64
	Length        int64 // total ciphertext bytes, a multiple of FrameSize
	FrameSize     int
	Received      int64  // the server's offset: bytes stored and acknowledged
	Expires       string // YYYY-MM-DD: the first day the upload may be deleted
	// HashState is the caller's SHA-256 state after the received bytes,
	// stored opaque with each write; empty when nothing was received, or
	// for an upload staged before schema version 6.
	HashState []byte
	// ProgressDay is the day (YYYY-MM-DD) the upload opened or last had
	// frames stored.
	ProgressDay string
}

// ConflictError is the refusal of a frame that is not at the upload's
// offset.
type ConflictError struct {
	Offset int64 // the upload's offset
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("storage: frame is not at the upload's offset %d", e.Offset)
}

// UploadWrite is what one session of an upload stores at once: what
// arrived together, in order. Any of its parts may be absent, but not all.
type UploadWrite struct {
	// ID is the upload's id.
	ID [16]byte
	// Open, if set, opens the upload in this write and spends its id for
	// proofs of work of Epoch: Open.ID must be ID and Open.Received 0. An
	// id already spent is ErrDuplicate.
	Open  *Upload
	Epoch int64
	// Evict are unfinished uploads deleted in this write to make room for
	// this one (their chunks go with them); ids no longer stored are
	// skipped.
	Evict [][16]byte
	// Offset is where Frames start, which must be the upload's offset
	// (else *ConflictError).
	Offset int64
	// Frames are consecutive whole frames from Offset. The store keeps
	// them (it does not copy them) until the write returns.
	Frames [][]byte
	// HashState, with Frames, is the caller's SHA-256 state after them.
	HashState []byte
	// Day is the day of this write (YYYY-MM-DD): the upload's progress day.
	Day string
	// Commit, if set, makes the upload, once Frames are stored, the tip
	// Commit: every byte must then be received. Commit.Ciphertext must be
	// nil: the tip is the upload's frames. Commit.Seq is set.
	Commit *Tip
}

// WriteUpload stores w in one transaction of the group-commit writer and
// returns the upload's offset after it. It returns only after the
// transaction committed (synchronous=FULL), so the caller may acknowledge
// every frame of w, and hand out Commit's receipt. On error nothing of w
// is stored: ErrDuplicate (Open of a spent id, or Commit of a tip id that
// exists), ErrNotFound (the upload is not stored, or, with Commit, not
// every byte of it received), *ConflictError, ErrBusy, ErrClosed, or a
// failure.
//
// A write that opens, fills and commits an upload in one (a one-frame
// tip whose upload message, frame and commit arrived together) stores no
// upload row at all: a one-frame tip's ciphertext is its row's, a longer
// one's its chunks.
func (s *Store) WriteUpload(ctx context.Context, w *UploadWrite) (int64, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	var owner [16]byte
	if w.Open != nil {
		// Drawn here, not in the writer: a write the writer runs again
		// (never, today) would then keep its owner.
		if _, err := rand.Read(owner[:]); err != nil {
			return 0, fmt.Errorf("storage: write upload: %w", err)
		}
	}
	var received int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		received, err = s.writeUpload(tx, w, owner)
		return err
	})
	if err != nil {
		// The writer may still run fn after write gave up: never read
		// what it sets then.
		return 0, err
	}
	return received, nil
}

func (w *UploadWrite) check() error {
	if w.Open != nil {
		u := w.Open
		if u.ID != w.ID || u.Length <= 0 || u.FrameSize <= 0 || u.Length%int64(u.FrameSize) != 0 || u.Received != 0 || w.Offset != 0 {
			return fmt.Errorf("storage: open upload: length %d, frame size %d, received %d, offset %d", u.Length, u.FrameSize, u.Received, w.Offset)
		}
		if len(u.Expires) != 10 {
			return fmt.Errorf("storage: open upload: expiry day %q", u.Expires)
		}
	}
	if (w.Open != nil || len(w.Frames) > 0) && len(w.Day) != 10 {
		return fmt.Errorf("storage: write upload: day %q", w.Day)
	}
	if w.Commit != nil && w.Commit.Ciphertext != nil {
		return errors.New("storage: write upload: a committed upload's tip is its frames, not a copy")
	}
	if w.Open == nil && len(w.Frames) == 0 && w.Commit == nil && len(w.Evict) == 0 {
		return errors.New("storage: write upload: nothing to write")
	}
	return nil
}

// writeUpload runs w in the writer's transaction.
func (s *Store) writeUpload(tx *sql.Tx, w *UploadWrite, newOwner [16]byte) (int64, error) {
	st := s.stmts
	for _, id := range w.Evict {
		if id == w.ID {
			continue
		}
		if _, err := tx.Stmt(st.deleteUpload).Exec(id[:]); err != nil {
			return 0, fmt.Errorf("storage: evict upload: %w", err)
		}
	}
	var received, length int64
	var frame int
	var owner []byte
	whole := false // the whole upload is in w: no upload row
	if u := w.Open; u != nil {
		_, err := tx.Stmt(st.insertSpent).Exec(u.ID[:], w.Epoch)
		if isUniqueViolation(err) || isPrimaryKeyViolation(err) {
			return 0, ErrDuplicate
		}
		if err != nil {
			return 0, fmt.Errorf("storage: open upload: %w", err)
		}
		length, frame, owner = u.Length, u.FrameSize, newOwner[:]
		whole = w.Commit != nil && int64(len(w.Frames)*frame) == length
		if !whole {
			_, err = tx.Stmt(st.insertUpload).Exec(u.ID[:], u.ResumeHash[:], u.BundleVersion, u.Length, u.FrameSize, u.Expires, owner, w.Day)
			if isUniqueViolation(err) || isPrimaryKeyViolation(err) {
				return 0, ErrDuplicate
			}
			if err != nil {
				return 0, fmt.Errorf("storage: open upload: %w", err)
			}
		}
	} else if len(w.Frames) > 0 || w.Commit != nil {
		err := tx.Stmt(st.selectUpload).QueryRow(w.ID[:]).Scan(&received, &length, &frame, &owner)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, ErrNotFound
		}
		if err != nil {
			return 0, fmt.Errorf("storage: write upload: %w", err)
		}
	}
	if len(w.Frames) > 0 {
		if w.Offset != received {
			return 0, &ConflictError{Offset: received}
		}
		for _, data := range w.Frames {
			if len(data) != frame || received+int64(frame) > length {
				return 0, fmt.Errorf("storage: append frame: %d bytes at %d of an upload of %d in %d-byte frames", len(data), received, length, frame)
			}
			// A one-frame tip written whole keeps its bytes in its tips
			// row: no chunk.
			if !(whole && len(w.Frames) == 1) {
				if _, err := tx.Stmt(st.insertChunk).Exec(owner, received, data); err != nil {
					return 0, fmt.Errorf("storage: append frame: %w", err)
				}
			}
			received += int64(frame)
		}
		if !whole {
			hashState := w.HashState
			if hashState == nil {
				hashState = []byte{} // NOT NULL: empty is "none"
			}
			if _, err := tx.Stmt(st.updateUpload).Exec(received, hashState, w.Day, w.ID[:]); err != nil {
				return 0, fmt.Errorf("storage: append frame: %w", err)
			}
		}
	}
	if t := w.Commit; t != nil {
		if received != length {
			return 0, fmt.Errorf("storage: commit upload: %d of %d bytes received: %w", received, length, ErrNotFound)
		}
		if t.Length != length {
			return 0, fmt.Errorf("storage: commit upload: a tip of %d bytes for an upload of %d", t.Length, length)
		}
		var ciphertext, chunks []byte
		if whole && len(w.Frames) == 1 {
			ciphertext = w.Frames[0]
		} else {
			chunks = owner
		}
		if err := s.insertTip(tx, t, ciphertext, chunks); err != nil {
			return 0, err
		}
		if !whole {
			// The trigger keeps the chunks: the tip names them now.
			if _, err := tx.Stmt(st.deleteUpload).Exec(w.ID[:]); err != nil {
				return 0, fmt.Errorf("storage: commit upload: %w", err)
			}
		}
	}
	return received, nil
}

// OpenUpload records a new upload and spends its upload id for proof of
// work of the given epoch, in one transaction: WriteUpload with Open
// alone.
// The upload's progress day is u.ProgressDay.
func (s *Store) OpenUpload(ctx context.Context, u *Upload, epoch int64) error {
	_, err := s.WriteUpload(ctx, &UploadWrite{ID: u.ID, Open: u, Epoch: epoch, Day: u.ProgressDay})
	return err
}

// GetUpload returns an unfinished upload, or ErrNotFound.
func (s *Store) GetUpload(ctx context.Context, id [16]byte) (*Upload, error) {
	u := &Upload{ID: id}
	var hash []byte
	err := s.readDB.QueryRowContext(ctx, `SELECT resume_hash, bundle_version, length, frame_size, received, expires, hash_state, progress_day
		FROM uploads WHERE id = ?`, id[:]).Scan(&hash, &u.BundleVersion, &u.Length, &u.FrameSize, &u.Received, &u.Expires, &u.HashState, &u.ProgressDay)
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
// upload's offset (else *ConflictError), and returns the new offset: a
// WriteUpload of one frame, without a hash state or progress day change
// (tests and tools; the server writes through WriteUpload). It returns
// only after the frame is durable.
func (s *Store) AppendFrame(ctx context.Context, id [16]byte, offset int64, data []byte) (int64, error) {
	u, err := s.GetUpload(ctx, id)
	if err != nil {
		return 0, err
	}
	return s.WriteUpload(ctx, &UploadWrite{ID: id, Offset: offset, Frames: [][]byte{data}, HashState: u.HashState, Day: u.ProgressDay})
}

// UploadReader returns the bytes an upload has received, in order, read
// from the database a chunk at a time as the caller reads (so a large
// upload is never in memory whole). Close releases its read connection.
// An upload not stored reads as empty.
func (s *Store) UploadReader(ctx context.Context, id [16]byte) (io.ReadCloser, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT c.offset, c.data FROM uploads u JOIN chunks c ON c.owner = u.owner
		WHERE u.id = ? ORDER BY c.offset`, id[:])
	if err != nil {
		return nil, fmt.Errorf("storage: upload data: %w", err)
	}
	return &chunkReader{rows: rows, what: "upload data"}, nil
}

// chunkReader reads chunks rows of (offset, data), in offset order,
// checking that each starts where the previous ended.
type chunkReader struct {
	rows *sql.Rows
	what string
	buf  []byte
	off  int64
	err  error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if !r.rows.Next() {
			r.err = r.rows.Err()
			if r.err == nil {
				r.err = io.EOF
			} else {
				r.err = fmt.Errorf("storage: %s: %w", r.what, r.err)
			}
			continue
		}
		var off int64
		if err := r.rows.Scan(&off, &r.buf); err != nil {
			r.err = fmt.Errorf("storage: %s: %w", r.what, err)
			continue
		}
		if off != r.off {
			r.buf, r.err = nil, fmt.Errorf("storage: %s: chunk at %d after %d bytes", r.what, off, r.off)
			continue
		}
		r.off += int64(len(r.buf))
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *chunkReader) Close() error { return r.rows.Close() }

// UploadData returns the bytes an upload has received, in order, all in
// memory: for tests and small uploads (UploadReader streams).
func (s *Store) UploadData(ctx context.Context, id [16]byte) ([]byte, error) {
	r, err := s.UploadReader(ctx, id)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CommitUpload turns a finished upload into the tip t in one transaction:
// the tip is the upload's stored frames (t.Ciphertext must be nil), and
// the upload's row is deleted (its id stays spent). ErrNotFound if the
// upload is gone (expired, or committed by another connection) or not
// every byte was received, ErrDuplicate if the tip id exists.
func (s *Store) CommitUpload(ctx context.Context, id [16]byte, t *Tip) error {
	_, err := s.WriteUpload(ctx, &UploadWrite{ID: id, Commit: t})
	return err
}

// DeleteExpiredUploads deletes every unfinished upload whose expiry day is
// today or earlier (days compare as YYYY-MM-DD strings) and returns how
// many it deleted. secure_delete overwrites their chunks.
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

// UploadProgress is what the store says of an unfinished upload's
// progress: enough to decide whether it is stalled, nothing about its
// source.
type UploadProgress struct {
	ID          [16]byte
	Received    int64
	Length      int64
	ProgressDay string // YYYY-MM-DD
}

// ListUploadProgress returns the progress of every unfinished upload, in
// the order of their random ids.
func (s *Store) ListUploadProgress(ctx context.Context) ([]UploadProgress, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT id, received, length, progress_day FROM uploads ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("storage: list uploads: %w", err)
	}
	defer rows.Close()
	var out []UploadProgress
	for rows.Next() {
		var p UploadProgress
		var id []byte
		if err := rows.Scan(&id, &p.Received, &p.Length, &p.ProgressDay); err != nil {
			return nil, fmt.Errorf("storage: list uploads: %w", err)
		}
		copy(p.ID[:], id)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list uploads: %w", err)
	}
	return out, nil
}

// maxDeleteUploads caps the uploads one DeleteUploads transaction deletes,
// so a large clean-up does not hold the writer long.
const maxDeleteUploads = 512

// DeleteUploads deletes the unfinished uploads with these ids and their
// chunks (their ids stay spent), up to 512 per transaction, and returns
// how many it deleted; ids not stored are skipped.
func (s *Store) DeleteUploads(ctx context.Context, ids [][16]byte) (int64, error) {
	var total int64
	for len(ids) > 0 {
		batch := ids[:min(len(ids), maxDeleteUploads)]
		ids = ids[len(batch):]
		var n int64
		err := s.write(ctx, func(tx *sql.Tx) error {
			n = 0
			del := tx.Stmt(s.stmts.deleteUpload)
			for _, id := range batch {
				res, err := del.Exec(id[:])
				if err != nil {
					return fmt.Errorf("storage: delete uploads: %w", err)
				}
				k, err := res.RowsAffected()
				if err != nil {
					return fmt.Errorf("storage: delete uploads: %w", err)
				}
				n += k
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
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
// proofs of work. WriteUpload's insert remains the authoritative check.
func (s *Store) UploadIDSpent(ctx context.Context, id [16]byte) (bool, error) {
	var n int
	if err := s.readDB.QueryRowContext(ctx, `SELECT count(*) FROM spent_uploads WHERE id = ?`, id[:]).Scan(&n); err != nil {
		return false, fmt.Errorf("storage: upload id spent: %w", err)
	}
	return n > 0, nil
}

// DeleteUpload deletes an unfinished upload and its chunks (its id stays
// spent). Deleting one that is gone is not an error.
func (s *Store) DeleteUpload(ctx context.Context, id [16]byte) error {
	_, err := s.DeleteUploads(ctx, [][16]byte{id})
	return err
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
