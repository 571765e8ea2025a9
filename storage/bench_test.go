package storage

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

const benchTipSize = 4 << 10

// BenchmarkPutTipGroupCommit measures PutTip under load: 64 goroutines
// putting 4 KiB tips, committed by the writer in groups. Compare with
// BenchmarkInsertOneRowPerTx, which pays one fsync per row.
func BenchmarkPutTipGroupCommit(b *testing.B) {
	s, _ := openTest(b, Options{})
	ctx := context.Background()
	// Read after the puts returned: each put's answer, sent after the
	// hook ran, orders these writes before the read.
	var batches, rows int
	s.testOnlyBeforeCommit = func(n int) { batches++; rows += n }

	const workers = 64
	var next atomic.Int64
	b.SetBytes(benchTipSize)
	b.ResetTimer()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := s.PutTip(ctx, newTip(uint64(i), benchTipSize)); err != nil {
					b.Errorf("PutTip(%d) = %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	if batches > 0 {
		b.ReportMetric(float64(rows)/float64(batches), "rows/commit")
	}
}

// BenchmarkInsertOneRowPerTx is the baseline: one 4 KiB row per
// transaction, on the store's own write connection, so with the same
// pragmas (WAL, synchronous=FULL).
func BenchmarkInsertOneRowPerTx(b *testing.B) {
	s, _ := openTest(b, Options{})
	// The writer goroutine is idle (nothing is queued): this benchmark has
	// the write connection to itself.
	db := s.writeDB
	if _, err := db.Exec(`CREATE TABLE bench (id INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT`); err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xa5}, benchTipSize)
	b.SetBytes(benchTipSize)
	b.ResetTimer()
	for i := range b.N {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO bench (id, data) VALUES (?, ?)`, i, data); err != nil {
			tx.Rollback()
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
