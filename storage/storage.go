// Package storage is fieldtip's SQLite store and the only package that
// speaks SQL. It holds ciphertext, signed public documents and settings;
// never plaintext, never an address, never a time finer than a day.
//
// It promises durability before acknowledgement: a write method returns nil
// only after the transaction holding the write committed with
// synchronous=FULL in WAL mode. All writes go through one writer goroutine
// that commits whatever is queued in one transaction (group commit), each
// write isolated by a savepoint so one failing write fails alone. Open sets
// its pragmas, reads them back and refuses to run if they did not take; it
// applies embedded, numbered migrations and refuses a database written by a
// newer version. storage_test.go proves each of these on real files.
package storage

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Log attribute keys.
const (
	attrBatch = "batch"
	attrErr   = "err"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Errors callers branch on.
var (
	// ErrBusy: the write queue is full; the write was not attempted.
	ErrBusy = errors.New("storage: write queue full")
	// ErrClosed: the store is closing; the write was not attempted.
	ErrClosed = errors.New("storage: closed")
	// ErrNotFound: no such row.
	ErrNotFound = errors.New("storage: not found")
	// ErrDuplicate: a row with that id exists already.
	ErrDuplicate = errors.New("storage: duplicate")
	// ErrFull: the disk, or the file size the process may write
	// (RLIMIT_FSIZE), is full; the batch was rolled back, nothing of it
	// was committed. Writes succeed again once there is room.
	ErrFull = errors.New("storage: no room to write (disk or file size limit full)")
)

// asFull wraps err with ErrFull when SQLite failed for lack of room:
// SQLITE_FULL, or a write that the system refused with ENOSPC or EFBIG
// (which SQLite reports as SQLITE_IOERR_WRITE).
func asFull(err error) error {
	var se sqlite3.Error
	if err == nil || errors.Is(err, ErrFull) || !errors.As(err, &se) {
		return err
	}
	if se.Code == sqlite3.ErrFull || se.SystemErrno == syscall.ENOSPC || se.SystemErrno == syscall.EFBIG {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

// FutureSchemaError is returned by Open for a database whose schema is
// newer than this program knows: opening it could corrupt it.
type FutureSchemaError struct {
	Path          string
	Have, Support int
}

func (e *FutureSchemaError) Error() string {
	return fmt.Sprintf("storage: %s has schema version %d, this program supports up to %d: upgrade fieldtip", e.Path, e.Have, e.Support)
}

// Options tune a Store. The zero value is valid.
type Options struct {
	// QueueSize bounds the writes waiting for the writer (default 4096);
	// past it, writes fail at once with ErrBusy.
	QueueSize int
	// MaxBatch bounds the writes committed in one transaction (default 256).
	MaxBatch int
	// Logger receives the writer's errors (default: discard).
	Logger *slog.Logger
	// AfterWrite, if set, runs after each batch of writes (committed or
	// not), in the writer, and after each CheckpointWAL, in its caller:
	// outside any transaction, possibly at once from both. The server
	// sets its files' times back to the start of the day there
	// (server/filetimes.go).
	AfterWrite func()
}

// Store is an open fieldtip database.
type Store struct {
	path    string
	writeDB *sql.DB
	readDB  *sql.DB
	log     *slog.Logger

	// stmts are the write connection's prepared statements, prepared once
	// and reused by every transaction (Tx.Stmt finds them on the one
	// connection).
	stmts *stmts

	queue      chan *job
	maxBatch   int
	afterWrite func()
	closing    chan struct{}
	closeOne   sync.Once // closes closing: Close may be called concurrently
	done       chan struct{}

	// transactions and writes count the writer's committed transactions
	// and the writes they held (WriterStats).
	transactions, writes atomic.Uint64

	// testOnlyBeforeCommit, when set, runs in the writer after a batch's
	// writes and before its commit, with the batch size.
	testOnlyBeforeCommit func(n int)
}

// WriterStats counts what the group-commit writer committed since Open.
type WriterStats struct {
	// Transactions is the number of transactions committed (each one
	// fsync); Writes the writes they held, failed ones included.
	Transactions, Writes uint64
}

// WriterStats returns the writer's counts so far: how many durable
// transactions the store's writes cost.
func (s *Store) WriterStats() WriterStats {
	return WriterStats{Transactions: s.transactions.Load(), Writes: s.writes.Load()}
}

type job struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

// Open opens (creating if needed) the database at path and starts its
// writer.
func Open(path string, opts Options) (*Store, error) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// Pragmas go in the DSN so that every connection of the pool gets them;
	// the driver's default synchronous is NORMAL, which can lose the last
	// commits on power loss: FULL is set explicitly and checked below.
	params := url.Values{}
	params.Set("_journal_mode", "WAL")
	params.Set("_synchronous", "FULL")
	params.Set("_foreign_keys", "1")
	params.Set("_secure_delete", "1")
	params.Set("_busy_timeout", "10000")
	params.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + params.Encode()
	w, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	// One connection: one writer, and it keeps its pragmas.
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	s := &Store{path: path, writeDB: w, log: opts.Logger, afterWrite: opts.AfterWrite}
	if err := s.checkPragmas(w); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.migrate(); err != nil {
		w.Close()
		return nil, err
	}
	if s.stmts, err = prepareStmts(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	params.Set("_query_only", "1")
	params.Del("_txlock")
	r, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+params.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("storage: open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	s.readDB = r
	if err := s.checkPragmas(r); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	s.queue = make(chan *job, opts.QueueSize)
	s.maxBatch = opts.MaxBatch
	s.closing = make(chan struct{})
	s.done = make(chan struct{})
	go s.writer()
	return s, nil
}

func (s *Store) checkPragmas(db *sql.DB) error {
	want := []struct {
		pragma, value string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"secure_delete", "1"},
	}
	for _, p := range want {
		var got string
		if err := db.QueryRow("PRAGMA " + p.pragma).Scan(&got); err != nil {
			return fmt.Errorf("storage: open %s: read pragma %s: %w", s.path, p.pragma, err)
		}
		if strings.ToLower(got) != p.value {
			return fmt.Errorf("storage: open %s: pragma %s is %q, want %q", s.path, p.pragma, got, p.value)
		}
	}
	return nil
}

// SchemaVersion is the schema version this program writes.
func SchemaVersion() int {
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	return len(names)
}

func (s *Store) migrate() error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("storage: migrations: %w", err)
	}
	slices.Sort(names)
	var have int
	if err := s.writeDB.QueryRow("PRAGMA user_version").Scan(&have); err != nil {
		return fmt.Errorf("storage: open %s: read schema version: %w", s.path, err)
	}
	if have > len(names) {
		return &FutureSchemaError{Path: s.path, Have: have, Support: len(names)}
	}
	for i := have; i < len(names); i++ {
		if want := fmt.Sprintf("migrations/%04d_", i+1); !strings.HasPrefix(names[i], want) {
			return fmt.Errorf("storage: migration %s out of sequence, want %s…", names[i], want)
		}
		body, err := migrations.ReadFile(names[i])
		if err != nil {
			return fmt.Errorf("storage: migration %s: %w", names[i], err)
		}
		tx, err := s.writeDB.Begin()
		if err != nil {
			return fmt.Errorf("storage: migration %s: %w", names[i], err)
		}
		if _, err := tx.Exec(string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("storage: migration %s: %w", names[i], err)
		}
		// user_version cannot be bound as a parameter.
		if _, err := tx.Exec("PRAGMA user_version = " + strconv.Itoa(i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("storage: migration %s: %w", names[i], err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("storage: migration %s: commit: %w", names[i], err)
		}
	}
	return nil
}

// Close stops accepting writes, commits every write already queued, and
// closes the database.
func (s *Store) Close() error {
	s.closeOne.Do(func() { close(s.closing) })
	<-s.done
	return errors.Join(s.stmts.close(), s.writeDB.Close(), s.readDB.Close())
}

// stmts are the statements of the hot write paths (the writer's
// savepoints, an upload's writes, a tip's insert), prepared once on the
// write connection instead of at every Exec.
type stmts struct {
	savepoint, release, rollbackTo *sql.Stmt

	insertSpent, insertUpload, selectUpload, insertChunk, updateUpload, deleteUpload *sql.Stmt
	insertTip                                                                        *sql.Stmt
}

func prepareStmts(db *sql.DB) (*stmts, error) {
	st := &stmts{}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&st.savepoint, `SAVEPOINT job`},
		{&st.release, `RELEASE job`},
		{&st.rollbackTo, `ROLLBACK TO job`},
		{&st.insertSpent, `INSERT INTO spent_uploads (id, epoch) VALUES (?, ?)`},
		{&st.insertUpload, `INSERT INTO uploads (id, resume_hash, bundle_version, length, frame_size, expires, owner, progress_day)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.selectUpload, `SELECT received, length, frame_size, owner FROM uploads WHERE id = ?`},
		{&st.insertChunk, `INSERT INTO chunks (owner, offset, data) VALUES (?, ?, ?)`},
		{&st.updateUpload, `UPDATE uploads SET received = ?, hash_state = ?, progress_day = ? WHERE id = ?`},
		{&st.deleteUpload, `DELETE FROM uploads WHERE id = ?`},
		{&st.insertTip, `INSERT INTO tips (id, day, bundle_version, sha256, length, ciphertext, receipt, chunks)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
	} {
		var err error
		if *p.dst, err = db.Prepare(p.query); err != nil {
			st.close()
			return nil, fmt.Errorf("prepare %.40q: %w", p.query, err)
		}
	}
	return st, nil
}

func (st *stmts) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{st.savepoint, st.release, st.rollbackTo, st.insertSpent, st.insertUpload,
		st.selectUpload, st.insertChunk, st.updateUpload, st.deleteUpload, st.insertTip} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// write queues fn to run in the writer's next transaction and waits until
// that transaction committed (nil) or failed. If ctx ends first the write
// may still commit; the caller must then treat it as unknown, never as done.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	j := &job{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	select {
	case s.queue <- j:
	default:
		return ErrBusy
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("storage: write outcome unknown: %w", context.Cause(ctx))
	case <-s.done:
		// A write that passed the closing check just as Close began can
		// reach the queue after the writer's last look at it. The writer
		// answers every job it took before it stops, so an empty done
		// channel here means the job never ran.
		select {
		case err := <-j.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// writer is the only goroutine that writes. It takes every queued job (up
// to maxBatch) into one transaction: while one commit waits for fsync, the
// next batch gathers.
func (s *Store) writer() {
	defer close(s.done)
	for {
		var first *job
		select {
		case first = <-s.queue:
		case <-s.closing:
			// Drain what was queued before closing.
			for {
				select {
				case j := <-s.queue:
					s.commit(append([]*job{j}, s.take(s.maxBatch-1)...))
					s.wrote()
				default:
					return
				}
			}
		}
		s.commit(append([]*job{first}, s.take(s.maxBatch-1)...))
		s.wrote()
	}
}

// wrote runs the AfterWrite hook.
func (s *Store) wrote() {
	if s.afterWrite != nil {
		s.afterWrite()
	}
}

func (s *Store) take(n int) []*job {
	var js []*job
	for len(js) < n {
		select {
		case j := <-s.queue:
			js = append(js, j)
		default:
			return js
		}
	}
	return js
}

func (s *Store) commit(batch []*job) {
	errs := make([]error, len(batch))
	tx, err := s.writeDB.Begin()
	if err != nil {
		s.fail(batch, fmt.Errorf("storage: begin: %w", err))
		return
	}
	for i, j := range batch {
		if j.ctx.Err() != nil {
			errs[i] = fmt.Errorf("storage: write abandoned: %w", context.Cause(j.ctx))
			continue
		}
		if _, err := tx.Stmt(s.stmts.savepoint).Exec(); err != nil {
			tx.Rollback()
			s.fail(batch, fmt.Errorf("storage: savepoint: %w", err))
			return
		}
		if errs[i] = asFull(j.fn(tx)); errs[i] != nil {
			if _, err := tx.Stmt(s.stmts.rollbackTo).Exec(); err != nil {
				tx.Rollback()
				s.fail(batch, fmt.Errorf("storage: rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := tx.Stmt(s.stmts.release).Exec(); err != nil {
			tx.Rollback()
			s.fail(batch, fmt.Errorf("storage: release savepoint: %w", err))
			return
		}
	}
	if s.testOnlyBeforeCommit != nil {
		s.testOnlyBeforeCommit(len(batch))
	}
	if err := tx.Commit(); err != nil {
		s.log.Error("commit failed", attrBatch, len(batch), attrErr, err)
		s.fail(batch, fmt.Errorf("storage: commit: %w", asFull(err)))
		return
	}
	s.transactions.Add(1)
	s.writes.Add(uint64(len(batch)))
	for i, j := range batch {
		j.done <- errs[i]
	}
}

func (s *Store) fail(batch []*job, err error) {
	for _, j := range batch {
		j.done <- err
	}
}

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

func isPrimaryKeyViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
}
