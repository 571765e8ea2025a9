package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Published claims and their corrections (docs/claims.md; docs/log.md,
// "Publications"). Storage knows nothing of their formats: package server
// builds each trail from its own log and checks it before storing it.
// What it promises:
//
//   - A claim has one publication, by one publish event; a pending
//     publication may be stored again (or accepted) by the same event
//     only, and an accepted one is never replaced, only its trail and head
//     when a correction is added.
//   - A correction is stored with the trail that includes it and that
//     trail's head, in one transaction, and only on an accepted
//     publication.
//   - Nothing here is private: every column is public once the
//     publication is accepted; days only.
//
// claims_test.go proves these on real files.

// Claims limits, as the schema has them.
const (
	// ClaimIDLength is a claim id's text: 16 bytes in unpadded base64url.
	ClaimIDLength = 22
	// MaxTrailSize caps a stored trail and a publication's revealed parts.
	MaxTrailSize = 32 << 20
	// maxCorrectionRequest caps a correction's revealed part as stored.
	maxCorrectionRequest = 70000
)

// Publication is a claim's publication as the store keeps it.
type Publication struct {
	// Claim is the claim id; Index the log index of the publish event;
	// Day its day, YYYY-MM-DD.
	Claim string
	Index int64
	Day   string
	// Revealed is the publish request's revealed events, exactly as the
	// editor sent them (2 bytes to MaxTrailSize).
	Revealed []byte
	// Pending is true until a trail is accepted; NeedSize and
	// NeedCosigners say what a pending one waits for.
	Pending                 bool
	NeedSize, NeedCosigners int64
	// Head is the size of the log the trail's proofs are against, and
	// Trail the trail (fieldtip/trail/v1): 0 and nil while pending.
	Head  int64
	Trail []byte
	// Text and Scope are the claim's as published; Clusters and
	// Approvals how many supporting clusters and approving editors the
	// trail shows ("" and 0 while pending).
	Text, Scope         string
	Clusters, Approvals int64

	// Set by AcceptedPublications only: how many corrections the claim
	// has, whether one is a retraction, and the day of the latest (the
	// publication's day if none).
	Corrections int64
	Retracted   bool
	Updated     string
}

func (p *Publication) check() error {
	switch {
	case len(p.Claim) != ClaimIDLength:
		return fmt.Errorf("claim id of %d bytes, want %d", len(p.Claim), ClaimIDLength)
	case p.Index < 1:
		return fmt.Errorf("publication index %d, want at least 1", p.Index)
	case len(p.Revealed) < 2 || len(p.Revealed) > MaxTrailSize:
		return fmt.Errorf("revealed parts of %d bytes, want 2 to %d", len(p.Revealed), MaxTrailSize)
	case p.NeedSize < 0 || p.NeedCosigners < 0 || p.Clusters < 0 || p.Approvals < 0:
		return errors.New("a negative count")
	case p.Pending && (p.Trail != nil || p.Head != 0):
		return errors.New("a pending publication with a trail")
	case !p.Pending && (len(p.Trail) == 0 || len(p.Trail) > MaxTrailSize || p.Head <= p.Index):
		return fmt.Errorf("an accepted publication with a trail of %d bytes at head %d, want 1 to %d bytes at a head above %d",
			len(p.Trail), p.Head, MaxTrailSize, p.Index)
	}
	return checkDay("publication day", p.Day)
}

// PutPublication stores a publication, pending or accepted. A claim that
// has none gets p; one whose stored publication is pending, by the same
// publish event, has it replaced by p. Anything else (an accepted
// publication, or another publish event of the claim or another claim's)
// is refused with ErrDuplicate. It returns once committed.
func (s *Store) PutPublication(ctx context.Context, p *Publication) error {
	if err := p.check(); err != nil {
		return fmt.Errorf("storage: put publication: %w", err)
	}
	state, head, trail := "accepted", any(p.Head), any(p.Trail)
	if p.Pending {
		state, head, trail = "pending", nil, nil
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var oldIndex int64
		var oldState string
		err := tx.QueryRow(`SELECT publication, state FROM publications WHERE claim = ?`, p.Claim).Scan(&oldIndex, &oldState)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.Exec(`INSERT INTO publications (claim, publication, day, revealed, state, need_size, need_cosigners, head, trail, text, scope, clusters, approvals)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				p.Claim, p.Index, p.Day, p.Revealed, state, p.NeedSize, p.NeedCosigners, head, trail, p.Text, p.Scope, p.Clusters, p.Approvals)
			if isUniqueViolation(err) || isPrimaryKeyViolation(err) {
				return fmt.Errorf("storage: put publication: publish event %d is another claim's: %w", p.Index, ErrDuplicate)
			}
		case err != nil:
		case oldState != "pending" || oldIndex != p.Index:
			return fmt.Errorf("storage: put publication: the claim has a %s publication at %d: %w", oldState, oldIndex, ErrDuplicate)
		default:
			_, err = tx.Exec(`UPDATE publications SET day = ?, revealed = ?, state = ?, need_size = ?, need_cosigners = ?, head = ?, trail = ?,
				text = ?, scope = ?, clusters = ?, approvals = ? WHERE claim = ?`,
				p.Day, p.Revealed, state, p.NeedSize, p.NeedCosigners, head, trail, p.Text, p.Scope, p.Clusters, p.Approvals, p.Claim)
		}
		if err != nil {
			return fmt.Errorf("storage: put publication: %w", err)
		}
		return nil
	})
}

const publicationColumns = `claim, publication, day, revealed, state = 'pending', need_size, need_cosigners, coalesce(head, 0), trail, text, scope, clusters, approvals`

func scanPublication(sc interface{ Scan(...any) error }) (*Publication, error) {
	p := &Publication{}
	err := sc.Scan(&p.Claim, &p.Index, &p.Day, &p.Revealed, &p.Pending, &p.NeedSize, &p.NeedCosigners, &p.Head, &p.Trail,
		&p.Text, &p.Scope, &p.Clusters, &p.Approvals)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Publication returns a claim's publication, pending or accepted, or
// ErrNotFound.
func (s *Store) Publication(ctx context.Context, claim string) (*Publication, error) {
	p, err := scanPublication(s.readDB.QueryRowContext(ctx, `SELECT `+publicationColumns+` FROM publications WHERE claim = ?`, claim))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("storage: publication: %w", err)
	}
	return p, err
}

// PendingPublications returns the pending publications, oldest publish
// event first, at most limit of them.
func (s *Store) PendingPublications(ctx context.Context, limit int) ([]*Publication, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT `+publicationColumns+` FROM publications WHERE state = 'pending' ORDER BY publication LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: pending publications: %w", err)
	}
	defer rows.Close()
	var out []*Publication
	for rows.Next() {
		p, err := scanPublication(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: pending publications: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: pending publications: %w", err)
	}
	return out, nil
}

// CountPendingPublications returns how many publications are pending.
func (s *Store) CountPendingPublications(ctx context.Context) (int64, error) {
	var n int64
	if err := s.readDB.QueryRowContext(ctx, `SELECT count(*) FROM publications WHERE state = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage: count pending publications: %w", err)
	}
	return n, nil
}

// AcceptedPublications returns accepted publications whose publish event
// is before index before (all, if before ≤ 0), latest first, at most
// limit, without their revealed parts and trail, with their corrections'
// count, whether one retracts the claim, and the day of the latest.
func (s *Store) AcceptedPublications(ctx context.Context, before int64, limit int) ([]*Publication, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := s.readDB.QueryContext(ctx, `SELECT p.claim, p.publication, p.day, p.head, p.text, p.scope, p.clusters, p.approvals,
			(SELECT count(*) FROM corrections c WHERE c.claim = p.claim),
			EXISTS (SELECT 1 FROM corrections c WHERE c.claim = p.claim AND c.type = 'retraction'),
			coalesce((SELECT c.day FROM corrections c WHERE c.claim = p.claim ORDER BY c.idx DESC LIMIT 1), p.day)
		FROM publications p WHERE p.state = 'accepted' AND p.publication < ? ORDER BY p.publication DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: accepted publications: %w", err)
	}
	defer rows.Close()
	var out []*Publication
	for rows.Next() {
		p := &Publication{}
		if err := rows.Scan(&p.Claim, &p.Index, &p.Day, &p.Head, &p.Text, &p.Scope, &p.Clusters, &p.Approvals,
			&p.Corrections, &p.Retracted, &p.Updated); err != nil {
			return nil, fmt.Errorf("storage: accepted publications: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: accepted publications: %w", err)
	}
	return out, nil
}

// Correction is a correct event of a published claim as the store keeps
// it.
type Correction struct {
	// Index is the log index of the correct event; Claim the claim it
	// corrects; Day its day.
	Index int64
	Claim string
	Day   string
	// Type is correction, clarification or retraction; Text is not empty.
	Type, Text string
	// Revealed is the correction request, exactly as the editor sent it.
	Revealed []byte
}

func (c *Correction) check() error {
	switch {
	case c.Index < 1:
		return fmt.Errorf("correction index %d, want at least 1", c.Index)
	case len(c.Claim) != ClaimIDLength:
		return fmt.Errorf("claim id of %d bytes, want %d", len(c.Claim), ClaimIDLength)
	case c.Type != "correction" && c.Type != "clarification" && c.Type != "retraction":
		return fmt.Errorf("correction type %q", clipDay(c.Type))
	case c.Text == "":
		return errors.New("empty correction text")
	case len(c.Revealed) < 2 || len(c.Revealed) > maxCorrectionRequest:
		return fmt.Errorf("revealed part of %d bytes, want 2 to %d", len(c.Revealed), maxCorrectionRequest)
	}
	return checkDay("correction day", c.Day)
}

// PutCorrection stores a correction of an accepted publication together
// with the claim's new trail and its head (a head above the stored one
// and the correction), in one transaction. ErrNotFound if the claim has
// no accepted publication; ErrDuplicate if the correction is stored
// already; an error if the head does not grow.
func (s *Store) PutCorrection(ctx context.Context, c *Correction, head int64, trail []byte) error {
	if err := c.check(); err != nil {
		return fmt.Errorf("storage: put correction: %w", err)
	}
	if len(trail) == 0 || len(trail) > MaxTrailSize || head <= c.Index {
		return fmt.Errorf("storage: put correction: a trail of %d bytes at head %d, want 1 to %d bytes at a head above %d", len(trail), head, MaxTrailSize, c.Index)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var oldHead int64
		err := tx.QueryRow(`SELECT head FROM publications WHERE claim = ? AND state = 'accepted'`, c.Claim).Scan(&oldHead)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("storage: put correction: no accepted publication of the claim: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("storage: put correction: %w", err)
		}
		if head < oldHead {
			return fmt.Errorf("storage: put correction: head %d is below the stored trail's %d", head, oldHead)
		}
		_, err = tx.Exec(`INSERT INTO corrections (idx, claim, day, type, text, revealed) VALUES (?, ?, ?, ?, ?, ?)`,
			c.Index, c.Claim, c.Day, c.Type, c.Text, c.Revealed)
		if isPrimaryKeyViolation(err) || isUniqueViolation(err) {
			return fmt.Errorf("storage: put correction %d: %w", c.Index, ErrDuplicate)
		}
		if err != nil {
			return fmt.Errorf("storage: put correction: %w", err)
		}
		if _, err := tx.Exec(`UPDATE publications SET head = ?, trail = ? WHERE claim = ?`, head, trail, c.Claim); err != nil {
			return fmt.Errorf("storage: put correction: trail: %w", err)
		}
		return nil
	})
}

// Corrections returns a claim's corrections in log order.
func (s *Store) Corrections(ctx context.Context, claim string) ([]*Correction, error) {
	return s.corrections(ctx, `SELECT idx, claim, day, type, text, revealed FROM corrections WHERE claim = ? ORDER BY idx`, claim)
}

// RecentCorrections returns the latest corrections of all claims, latest
// first, at most limit, without their revealed parts.
func (s *Store) RecentCorrections(ctx context.Context, limit int) ([]*Correction, error) {
	return s.corrections(ctx, `SELECT idx, claim, day, type, text, x'' FROM corrections ORDER BY idx DESC LIMIT ?`, limit)
}

func (s *Store) corrections(ctx context.Context, query string, arg any) ([]*Correction, error) {
	rows, err := s.readDB.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: corrections: %w", err)
	}
	defer rows.Close()
	var out []*Correction
	for rows.Next() {
		c := &Correction{}
		if err := rows.Scan(&c.Index, &c.Claim, &c.Day, &c.Type, &c.Text, &c.Revealed); err != nil {
			return nil, fmt.Errorf("storage: corrections: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: corrections: %w", err)
	}
	return out, nil
}

// ReadEntriesAt returns the log entries at these indexes, in the order
// asked: exactly len(indexes) of them, or an error (ErrNotFound if one is
// missing).
func (s *Store) ReadEntriesAt(ctx context.Context, indexes []int64) ([][]byte, error) {
	found := make(map[int64][]byte, len(indexes))
	for start := 0; start < len(indexes); start += hashQueryBatch {
		batch := indexes[start:min(len(indexes), start+hashQueryBatch)]
		args := make([]any, len(batch))
		for i, x := range batch {
			args[i] = x
		}
		q := `SELECT idx, data FROM log_entries WHERE idx IN (?` + strings.Repeat(`, ?`, len(batch)-1) + `)`
		if err := func() error {
			rows, err := s.readDB.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var idx int64
				var data []byte
				if err := rows.Scan(&idx, &data); err != nil {
					return err
				}
				found[idx] = data
			}
			return rows.Err()
		}(); err != nil {
			return nil, fmt.Errorf("storage: read entries: %w", err)
		}
	}
	out := make([][]byte, len(indexes))
	for i, x := range indexes {
		e, ok := found[x]
		if !ok {
			return nil, fmt.Errorf("storage: read entries: entry %d: %w", x, ErrNotFound)
		}
		out[i] = e
	}
	return out, nil
}

// CosignedSizesBetween returns the cosigned sizes from min to max, largest
// first, at most limit of them, each with its number of cosigners.
func (s *Store) CosignedSizesBetween(ctx context.Context, min, max int64, limit int) ([]CosignedSize, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT size, count(*) FROM cosignatures WHERE size >= ? AND size <= ?
		GROUP BY size ORDER BY size DESC LIMIT ?`, min, max, limit)
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
