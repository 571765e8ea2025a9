package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Replies to sources (docs/replies.md, "The server's storage"): ciphertext
// under a mailbox id, with a day. The store checks sizes and caps; what a
// mailbox id or a reply means is the server's business.

// Reply is one stored reply.
type Reply struct {
	ID      [16]byte
	Mailbox [32]byte
	// Day is when it was written, YYYY-MM-DD (UTC).
	Day string
	// Ciphertext is the sealed reply: a multiple of 4 KiB, 4 to 32 KiB.
	Ciphertext []byte
}

// maxDeleteReplies caps the replies DeleteReplies takes at once.
const maxDeleteReplies = 512

// Errors of PutReply.
var (
	// ErrRepliesFull: the store holds as many replies as the caller allows;
	// nothing was written.
	ErrRepliesFull = errors.New("storage: too many replies stored")
)

// MailboxFullError: the reply would take its mailbox over its cap.
// Nothing was written.
type MailboxFullError struct {
	// Held is the bytes the mailbox holds; Max its cap.
	Held, Max int64
}

func (e *MailboxFullError) Error() string {
	return fmt.Sprintf("storage: the mailbox holds %d bytes of replies, at most %d", e.Held, e.Max)
}

// PutReply stores a reply durably (nil only after its transaction
// committed), unless the mailbox would hold more than maxMailbox bytes
// with it (*MailboxFullError) or the store already holds maxReplies
// replies (ErrRepliesFull). A reply whose id exists is ErrDuplicate.
func (s *Store) PutReply(ctx context.Context, r *Reply, maxMailbox, maxReplies int64) error {
	if err := checkDay("reply", r.Day); err != nil {
		return fmt.Errorf("storage: put reply: %w", err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var held, count int64
		if err := tx.QueryRow(`SELECT coalesce(sum(length(ciphertext)), 0) FROM replies WHERE mailbox = ?`, r.Mailbox[:]).Scan(&held); err != nil {
			return fmt.Errorf("storage: put reply: %w", err)
		}
		if held+int64(len(r.Ciphertext)) > maxMailbox {
			return &MailboxFullError{Held: held, Max: maxMailbox}
		}
		if err := tx.QueryRow(`SELECT count(*) FROM replies`).Scan(&count); err != nil {
			return fmt.Errorf("storage: put reply: %w", err)
		}
		if count >= maxReplies {
			return ErrRepliesFull
		}
		_, err := tx.Exec(`INSERT INTO replies (id, mailbox, day, ciphertext) VALUES (?, ?, ?, ?)`, r.ID[:], r.Mailbox[:], r.Day, r.Ciphertext)
		if isPrimaryKeyViolation(err) || isUniqueViolation(err) {
			return ErrDuplicate
		}
		if err != nil {
			return fmt.Errorf("storage: put reply: %w", err)
		}
		return nil
	})
}

// CountReplies returns how many replies are stored.
func (s *Store) CountReplies(ctx context.Context) (int64, error) {
	var n int64
	if err := s.readDB.QueryRowContext(ctx, `SELECT count(*) FROM replies`).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage: count replies: %w", err)
	}
	return n, nil
}

// ReplyBucket returns up to limit replies whose mailbox id starts with the
// first bits bits of prefix (0 to 8; 0 for every reply), by day, then id.
func (s *Store) ReplyBucket(ctx context.Context, bits int, prefix byte, limit int) ([]Reply, error) {
	if bits < 0 || bits > 8 || limit < 1 || (bits < 8 && prefix>>bits != 0) {
		return nil, fmt.Errorf("storage: reply bucket: %d bits of prefix %d, limit %d", bits, prefix, limit)
	}
	q := `SELECT id, mailbox, day, ciphertext FROM replies`
	var args []any
	if bits > 0 {
		// The bucket is the range of ids from prefix‖0… up to, not
		// including, (prefix+1)‖0…; SQLite compares blobs with memcmp.
		lo := prefix << (8 - bits)
		q += ` WHERE mailbox >= ?`
		args = append(args, []byte{lo})
		if hi := int(lo) + 1<<(8-bits); hi < 256 {
			q += ` AND mailbox < ?`
			args = append(args, []byte{byte(hi)})
		}
	}
	q += ` ORDER BY day, id LIMIT ?`
	args = append(args, limit)
	rows, err := s.readDB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: reply bucket: %w", err)
	}
	defer rows.Close()
	var out []Reply
	for rows.Next() {
		var r Reply
		var id, mb []byte
		if err := rows.Scan(&id, &mb, &r.Day, &r.Ciphertext); err != nil {
			return nil, fmt.Errorf("storage: reply bucket: %w", err)
		}
		copy(r.ID[:], id)
		copy(r.Mailbox[:], mb)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: reply bucket: %w", err)
	}
	return out, nil
}

// ReplyMailbox returns the mailbox id of a stored reply, or ErrNotFound.
func (s *Store) ReplyMailbox(ctx context.Context, id [16]byte) ([32]byte, error) {
	var mb []byte
	err := s.readDB.QueryRowContext(ctx, `SELECT mailbox FROM replies WHERE id = ?`, id[:]).Scan(&mb)
	if errors.Is(err, sql.ErrNoRows) {
		return [32]byte{}, ErrNotFound
	}
	if err != nil {
		return [32]byte{}, fmt.Errorf("storage: reply mailbox: %w", err)
	}
	return [32]byte(mb), nil
}

// DeleteReplies deletes the replies with these ids (1 to 512; ids not
// stored are skipped) and then checkpoints and truncates the WAL, as
// DeleteTips does, so that with secure_delete no copy of the ciphertext
// remains in the database file or the WAL. It returns how many it deleted.
func (s *Store) DeleteReplies(ctx context.Context, ids [][16]byte) (int64, error) {
	if len(ids) == 0 || len(ids) > maxDeleteReplies {
		return 0, fmt.Errorf("storage: delete replies: %d ids, want 1 to %d", len(ids), maxDeleteReplies)
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		n = 0
		for _, id := range ids {
			res, err := tx.Exec(`DELETE FROM replies WHERE id = ?`, id[:])
			if err != nil {
				return fmt.Errorf("storage: delete replies: %w", err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("storage: delete replies: %w", err)
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := s.CheckpointWAL(ctx); err != nil {
		return n, fmt.Errorf("storage: delete replies: %d deleted, but %w", n, err)
	}
	return n, nil
}

// DeleteRepliesBefore deletes the replies written before day (YYYY-MM-DD),
// unread past their expiry, then checkpoints the WAL if it deleted any.
func (s *Store) DeleteRepliesBefore(ctx context.Context, day string) (int64, error) {
	if err := checkDay("expiry", day); err != nil {
		return 0, fmt.Errorf("storage: expire replies: %w", err)
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM replies WHERE day < ?`, day)
		if err != nil {
			return fmt.Errorf("storage: expire replies: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil || n == 0 {
		return n, err
	}
	if err := s.CheckpointWAL(ctx); err != nil {
		return n, fmt.Errorf("storage: expire replies: %d deleted, but %w", n, err)
	}
	return n, nil
}
