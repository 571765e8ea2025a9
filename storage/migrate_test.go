package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// oldTip is the tip an old database holds, written with the old schema.
var oldTip = newTip(1, 3000)

var oldBundle = StoredBundle{Version: 4, Signed: []byte("fieldtip/bundle/v1\nversion 4\n"), Day: "2026-11-20"}

// oldUpload is the upload a database of version 2 or later holds: two of
// its three frames staged.
var oldUpload = newUpload(1, 3, smallFrame)

const oldSeedEpoch = 9

var oldSeed = []byte("fieldtip/pow-seed/v1\n9\n")

// buildOldDatabase writes at path a database of schema version v, as the
// program of that version left it: the first v migrations applied by a
// plain connection, user_version v, WAL mode, and rows in the tables of
// that version.
func buildOldDatabase(t *testing.T, path string, v int) {
	t.Helper()
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) < v {
		t.Fatalf("migrations = %v, %v, want at least %d", names, err, v)
	}
	slices.Sort(names)
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := db.Exec(query, args...); err != nil {
			t.Fatalf("version %d database: %.60q: %v", v, query, err)
		}
	}
	exec("PRAGMA journal_mode = WAL")
	exec("PRAGMA foreign_keys = 1")
	for _, name := range names[:v] {
		body, err := migrations.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		exec(string(body))
	}
	exec(fmt.Sprintf("PRAGMA user_version = %d", v))

	exec(`INSERT INTO tips (id, day, bundle_version, sha256, length, ciphertext, receipt) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		oldTip.ID[:], oldTip.Day, oldTip.BundleVersion, oldTip.SHA256[:], oldTip.Length, oldTip.Ciphertext, oldTip.Receipt)
	// A second tip, deleted: the AUTOINCREMENT counter is past every seq
	// left, and must stay so (seq is never reused).
	gone := newTip(2, 100)
	exec(`INSERT INTO tips (id, day, bundle_version, sha256, length, ciphertext, receipt) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		gone.ID[:], gone.Day, gone.BundleVersion, gone.SHA256[:], gone.Length, gone.Ciphertext, gone.Receipt)
	exec(`DELETE FROM tips WHERE id = ?`, gone.ID[:])
	exec(`INSERT INTO bundles (version, signed, day) VALUES (?, ?, ?)`, oldBundle.Version, oldBundle.Signed, oldBundle.Day)
	exec(`INSERT INTO settings (key, value) VALUES ('newsroom_key', 'key-a')`)
	if v < 2 {
		return
	}
	u := oldUpload
	exec(`INSERT INTO spent_uploads (id, epoch) VALUES (?, ?)`, u.ID[:], oldSeedEpoch)
	if v < 6 {
		exec(`INSERT INTO uploads (id, resume_hash, bundle_version, length, frame_size, received, expires) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			u.ID[:], u.ResumeHash[:], u.BundleVersion, u.Length, u.FrameSize, 2*u.FrameSize, u.Expires)
		for i := range 2 {
			exec(`INSERT INTO upload_frames (upload_id, offset, data) VALUES (?, ?, ?)`, u.ID[:], i*u.FrameSize, frameData(1, i, u.FrameSize))
		}
	} else {
		owner := bytes.Repeat([]byte{0xee}, 16)
		exec(`INSERT INTO uploads (id, resume_hash, bundle_version, length, frame_size, received, expires, owner, progress_day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID[:], u.ResumeHash[:], u.BundleVersion, u.Length, u.FrameSize, 2*u.FrameSize, u.Expires, owner, u.ProgressDay)
		for i := range 2 {
			exec(`INSERT INTO chunks (owner, offset, data) VALUES (?, ?, ?)`, owner, i*u.FrameSize, frameData(1, i, u.FrameSize))
		}
	}
	exec(`INSERT INTO pow_seeds (epoch, signed) VALUES (?, ?)`, oldSeedEpoch, oldSeed)
	if v < 4 {
		return
	}
	exec(`INSERT INTO tip_marks (seq, rejected_day, delete_pending) VALUES (1, '2026-11-29', 0)`)
}

// columnsOf returns the columns of a table, in order.
func columnsOf(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	var cols []string
	rows, err := db.Query(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if len(cols) == 0 {
		t.Fatalf("table %s has no columns", table)
	}
	return cols
}

// dumpColumns returns every row of each table, as dumpTables does, but of
// the columns cols[table] only: an upgrade that adds columns keeps the
// old ones' values.
func dumpColumns(t *testing.T, db *sql.DB, cols map[string][]string) []string {
	t.Helper()
	var out []string
	for _, table := range slices.Sorted(maps.Keys(cols)) {
		var qs []string
		for _, c := range cols[table] {
			qs = append(qs, "quote("+c+")")
		}
		rows, err := db.Query(`SELECT ` + strings.Join(qs, ` || ' ' || `) + ` FROM ` + table + ` ORDER BY 1`)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				t.Fatal(err)
			}
			out = append(out, table+": "+r)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// dumpTables returns every row of the tables, each value as SQLite's
// quote() writes it (blobs in hex): equal dumps are equal bytes.
func dumpTables(t *testing.T, db *sql.DB, tables ...string) []string {
	t.Helper()
	var out []string
	for _, table := range tables {
		var cols []string
		rows, err := db.Query(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, "quote("+c+")")
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		if len(cols) == 0 {
			t.Fatalf("table %s has no columns", table)
		}
		rows, err = db.Query(`SELECT ` + strings.Join(cols, ` || ' ' || `) + ` FROM ` + table + ` ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				t.Fatal(err)
			}
			out = append(out, table+": "+r)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// schemaOf returns the database's schema as SQLite keeps it.
func schemaOf(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tablesOf returns the tables holding the rows buildOldDatabase wrote for
// version v, but upload_frames, whose rows version 6 moved to chunks
// (checkStaged reads them there).
func tablesOf(v int) []string {
	tables := []string{"tips", "bundles", "settings"}
	if v >= 2 {
		tables = append(tables, "uploads", "spent_uploads", "pow_seeds")
	}
	if v >= 4 {
		tables = append(tables, "tip_marks")
	}
	return tables
}

// TestUpgrade opens a database of every older schema version with the
// current code: it reaches the current version, with the schema of a new
// database, keeps every row byte for byte, and the tables added since
// work.
func TestUpgrade(t *testing.T) {
	if SchemaVersion() < 2 {
		t.Fatalf("SchemaVersion() = %d, want at least 2 (uploads)", SchemaVersion())
	}
	_, freshPath := openTest(t, Options{})
	fresh := schemaOf(t, rawOpenReadOnly(t, freshPath))

	for v := 1; v < SchemaVersion(); v++ {
		t.Run(fmt.Sprintf("from%d", v), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "fieldtip.db")
			buildOldDatabase(t, path, v)
			old := rawOpenReadOnly(t, path)
			cols := map[string][]string{}
			for _, table := range tablesOf(v) {
				cols[table] = columnsOf(t, old, table)
			}
			before := dumpColumns(t, old, cols)
			old.Close()

			migrated := time.Now().UTC()
			s := openAt(t, path, Options{})
			raw := rawOpenReadOnly(t, path)
			if got := userVersion(t, raw); got != SchemaVersion() {
				t.Errorf("user_version = %d, want %d", got, SchemaVersion())
			}
			if got := schemaOf(t, raw); !slices.Equal(got, fresh) {
				t.Errorf("upgraded schema =\n%s\nwant, as a new database's,\n%s", strings.Join(got, "\n"), strings.Join(fresh, "\n"))
			}
			if after := dumpColumns(t, raw, cols); !slices.Equal(after, before) {
				t.Errorf("rows after upgrade =\n%s\nwant\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}

			// The old rows read through the current code.
			list, err := s.ListTips(ctx, 0, 10)
			if err != nil || len(list) != 1 || list[0].Seq != 1 || !tipMetaEqual(list[0], withSeq(oldTip.TipMeta, 1)) {
				t.Errorf("ListTips() = %+v, %v, want [%+v]", list, err, withSeq(oldTip.TipMeta, 1))
			}
			if ct, err := s.TipCiphertext(ctx, oldTip.ID); err != nil || !bytes.Equal(ct, oldTip.Ciphertext) {
				t.Errorf("TipCiphertext(old tip) = %d bytes, %v, want %d bytes", len(ct), err, len(oldTip.Ciphertext))
			}
			bundles, err := s.RecentBundles(ctx, 10)
			if err != nil || len(bundles) != 1 || bundles[0].Version != oldBundle.Version ||
				!bytes.Equal(bundles[0].Signed, oldBundle.Signed) || bundles[0].Day != oldBundle.Day {
				t.Errorf("RecentBundles() = %+v, %v, want [%+v]", bundles, err, oldBundle)
			}
			if got, err := s.Setting(ctx, "newsroom_key"); err != nil || got != "key-a" {
				t.Errorf("Setting(newsroom_key) = %q, %v, want key-a", got, err)
			}

			// The upload tables work: an upload staged before the upgrade
			// resumes, or a new one goes through.
			u := oldUpload
			var data []byte
			if v >= 2 {
				// Version 6 gave staged uploads the migration's day as
				// their progress day (UTC; the test may cross midnight).
				staged := *u
				if v < 6 {
					staged.ProgressDay = upgradeDay(t, raw, u.ID, migrated)
				}
				data = append(frameData(1, 0, smallFrame), frameData(1, 1, smallFrame)...)
				checkStaged(t, s, raw, &staged, data)
				if got, err := s.PoWSeed(ctx, oldSeedEpoch); err != nil || !bytes.Equal(got, oldSeed) {
					t.Errorf("PoWSeed(%d) = %q, %v, want %q", oldSeedEpoch, got, err, oldSeed)
				}
			} else {
				mustOpenUpload(t, s, u, oldSeedEpoch)
				data = appendFrames(t, s, u, 1, 0, 2)
				if err := s.PutPoWSeed(ctx, oldSeedEpoch, oldSeed); err != nil {
					t.Errorf("PutPoWSeed() = %v", err)
				}
			}
			if err := s.OpenUpload(ctx, newUpload(1, 1, smallFrame), oldSeedEpoch); !errors.Is(err, ErrDuplicate) {
				t.Errorf("OpenUpload(spent id) = %v, want ErrDuplicate", err)
			}
			data = append(data, appendFrames(t, s, u, 1, 2, 3)...)
			tip := commitOf(3, data)
			if err := s.CommitUpload(ctx, u.ID, tip); err != nil {
				t.Fatalf("CommitUpload() = %v", err)
			}
			// The cursor goes on from the old tips, past the deleted one
			// (sqlite_sequence kept).
			if tip.Seq != 3 {
				t.Errorf("CommitUpload(): Seq = %d, want 3", tip.Seq)
			}
			if ct, err := s.TipCiphertext(ctx, tip.ID); err != nil || !bytes.Equal(ct, data) {
				t.Errorf("TipCiphertext(the staged upload, committed) = %d bytes, %v, want %d bytes", len(ct), err, len(data))
			}
			checkNoOrphanChunks(t, raw)
			// A mark made before the upgrade still names its tip, and
			// goes with it.
			if v >= 4 {
				if n := countRows(t, raw, `SELECT count(*) FROM tip_marks m JOIN tips t ON t.seq = m.seq WHERE t.id = ?`, oldTip.ID[:]); n != 1 {
					t.Errorf("marks of the old tip = %d, want 1", n)
				}
			}
			if _, err := s.DeleteTips(ctx, [][16]byte{oldTip.ID, tip.ID}); err != nil {
				t.Fatalf("DeleteTips() = %v", err)
			}
			for _, q := range []string{`SELECT count(*) FROM tips`, `SELECT count(*) FROM tip_marks`, `SELECT count(*) FROM chunks`} {
				if n := countRows(t, raw, q); n != 0 {
					t.Errorf("%s after deleting every tip = %d, want 0", q, n)
				}
			}
		})
	}
}

// upgradeDay returns the progress day migration 6 gave the upload id,
// which must be the UTC day of the migration, begun at start.
func upgradeDay(t *testing.T, raw *sql.DB, id [16]byte, start time.Time) string {
	t.Helper()
	var day string
	if err := raw.QueryRow(`SELECT progress_day FROM uploads WHERE id = ?`, id[:]).Scan(&day); err != nil {
		t.Fatal(err)
	}
	if day != start.Format(time.DateOnly) && day != time.Now().UTC().Format(time.DateOnly) {
		t.Errorf("progress day after the upgrade = %s, want the day of the upgrade, %s", day, start.Format(time.DateOnly))
	}
	return day
}

func withSeq(m TipMeta, seq int64) TipMeta {
	m.Seq = seq
	return m
}

// TestUpgradeRefusesFutureSchema: a database claiming a version newer than
// this program's is refused, and not touched: no migration runs on it.
func TestUpgradeRefusesFutureSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldtip.db")
	buildOldDatabase(t, path, 1)
	future := SchemaVersion() + 1
	raw := rawOpen(t, path)
	if _, err := raw.Exec(fmt.Sprintf("PRAGMA user_version = %d", future)); err != nil {
		t.Fatal(err)
	}
	schema := schemaOf(t, raw)
	rows := dumpTables(t, raw, tablesOf(1)...)

	s, err := Open(path, Options{Logger: testLogger(t)})
	if err == nil {
		s.Close()
		t.Fatalf("Open(user_version %d) = nil error, want *FutureSchemaError", future)
	}
	var fe *FutureSchemaError
	if !errors.As(err, &fe) || fe.Have != future || fe.Support != SchemaVersion() || fe.Path != path {
		t.Fatalf("Open(user_version %d) = %v, want *FutureSchemaError{Have: %d, Support: %d}", future, err, future, SchemaVersion())
	}
	if got := userVersion(t, raw); got != future {
		t.Errorf("after refused Open: user_version = %d, want %d", got, future)
	}
	if got := schemaOf(t, raw); !slices.Equal(got, schema) {
		t.Errorf("after refused Open: schema =\n%s\nwant it unchanged:\n%s", strings.Join(got, "\n"), strings.Join(schema, "\n"))
	}
	if got := dumpTables(t, raw, tablesOf(1)...); !slices.Equal(got, rows) {
		t.Errorf("after refused Open: rows changed")
	}
}

// TestUpgradeFailsWhole: a migration that fails part way leaves nothing of
// itself behind and the version where it was, so the next Open can retry.
func TestUpgradeFailsWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldtip.db")
	buildOldDatabase(t, path, 1)
	raw := rawOpen(t, path)
	// pow_seeds is the last table migration 2 creates: every statement
	// before it succeeds, then it fails.
	if _, err := raw.Exec(`CREATE TABLE pow_seeds (x)`); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{Logger: testLogger(t)}); err == nil {
		s.Close()
		t.Fatal("Open(migration 2 conflicts) = nil error, want an error")
	} else if !strings.Contains(err.Error(), "0002_") {
		t.Errorf("Open(migration 2 conflicts) = %v, want the error to name the migration", err)
	}
	if got := userVersion(t, raw); got != 1 {
		t.Errorf("after failed migration: user_version = %d, want 1", got)
	}
	for _, table := range []string{"uploads", "upload_frames", "spent_uploads"} {
		if n := countRows(t, raw, `SELECT count(*) FROM sqlite_schema WHERE name = ?`, table); n != 0 {
			t.Errorf("after failed migration: table %s exists, want it rolled back", table)
		}
	}
	if _, err := raw.Exec(`DROP TABLE pow_seeds`); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, path, Options{})
	if ct, err := s.TipCiphertext(context.Background(), oldTip.ID); err != nil || !bytes.Equal(ct, oldTip.Ciphertext) {
		t.Errorf("after retried upgrade: TipCiphertext(old tip) = %d bytes, %v", len(ct), err)
	}
	if got := userVersion(t, raw); got != SchemaVersion() {
		t.Errorf("after retried upgrade: user_version = %d, want %d", got, SchemaVersion())
	}
}
