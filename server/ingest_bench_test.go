package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
	_ "github.com/mattn/go-sqlite3"
)

// benchPlaintext is the plaintext size of one benchmark tip; sealed, it is
// one 16 KiB frame (the smallest bucket).
const benchPlaintext = 4 << 10

// BenchmarkIngest measures the source path end to end on loopback over a
// real SQLite file: 64 clients, each on its own WebSocket, submit b.N tips
// in all (first message, frame, commit, wait for the receipt; the
// ciphertext is sealed once and every tip's first message, with its proof
// of work at the test servers' cheap cost, is made before the timed loop,
// as a source's phone does offline; the server's check of the proof is
// timed). It reports tips/s
// and each tip's acknowledgement latency (first message sent → receipt
// read) at the 50th and 99th percentile, then the storage baseline: 4 KiB
// rows inserted one per transaction into a fresh SQLite file with the
// store's pragmas (WAL, synchronous=FULL), and the ratio of the two, which
// is what group commit buys.
func BenchmarkIngest(b *testing.B) {
	const clients = 64
	ts := newTestServer(b, serverOptions{
		logger: testLoggerLevel(b, slog.LevelWarn),
		config: func(c *Config) { c.MaxUploadsPerConn = math.MaxInt32 },
	})
	ct := seal(b, strings.Repeat("x", benchPlaintext), ts.recipients(b), fs16)
	if len(ct) != fs16 {
		b.Fatalf("sealed %d bytes, want one frame", len(ct))
	}
	frame := protocol.AppendDataFrame(nil, 0, ct)
	commit := protocol.Marshal(&protocol.Commit{SHA256: sha256.Sum256(ct)})
	ups := benchUploads(b, ts, b.N, int64(len(ct)))
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = ts.dial(b).c
	}

	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	b.SetBytes(int64(len(ct)))
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				start := time.Now()
				if err := submit(c, ups[n-1], frame, commit); err != nil {
					b.Errorf("client %d: %v", i, err)
					return
				}
				lat[i] = append(lat[i], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()

	all := slices.Concat(lat...)
	if len(all) != b.N {
		b.Fatalf("%d tips acknowledged, want %d", len(all), b.N)
	}
	slices.Sort(all)
	ms := func(q float64) float64 {
		return float64(all[int(q*float64(len(all)-1))]) / float64(time.Millisecond)
	}
	tipsPerSec := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(tipsPerSec, "tips/s")
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	baseline, err := baselineRowsPerSec(benchPlaintext)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(baseline, "baseline-rows/s")
	b.ReportMetric(tipsPerSec/baseline, "ratio")
	// A 4 KiB tip is stored as one 16 KiB frame of ciphertext (FIELD.md's
	// padding floor): the same baseline at the stored size shows what group
	// commit buys row for row.
	baseline16, err := baselineRowsPerSec(protocol.FrameSize)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(baseline16, "baseline16k-rows/s")
	b.ReportMetric(tipsPerSec/baseline16, "ratio16k")
}

// benchUploads returns the first messages of n one-frame uploads of length
// bytes sealed to the bundle in force, with their proofs of work, computed
// on every core.
func benchUploads(b *testing.B, ts *testServer, n int, length int64) [][]byte {
	b.Helper()
	seed := ts.seed(b)
	version := ts.s.Bundle().Version
	ups := make([][]byte, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				up := &protocol.Upload{Version: protocol.Version, BundleVersion: version, Length: length, FrameSize: fs16, PoWEpoch: seed.Epoch}
				rand.Read(up.UploadID[:])
				var secret [32]byte
				rand.Read(secret[:])
				up.ResumeHash = sha256.Sum256(secret[:])
				pow, err := crypto.SolvePoWs(context.Background(), seed.Params, seed.Seed, up.UploadID, length)
				if err != nil {
					b.Error(err)
					return
				}
				up.PoW = pow
				ups[i] = protocol.Marshal(up)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return ups
}

// submit sends one tip on c without waiting between messages, then reads
// the offset, the ack and the receipt.
func submit(c *websocket.Conn, up, frame, commit []byte) error {
	c.SetWriteDeadline(time.Now().Add(failAfter))
	if err := c.WriteMessage(websocket.TextMessage, up); err != nil {
		return err
	}
	if err := c.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		return err
	}
	if err := c.WriteMessage(websocket.TextMessage, commit); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(failAfter))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return err
		}
		m, err := protocol.ParseServerMessage(data)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *protocol.ReceiptReply:
			return nil
		case *protocol.Error:
			return m
		}
	}
}

// baselineRows is how many rows the storage baseline inserts.
const baselineRows = 2000

// baselineRowsPerSec measures, once per process and row size, durable
// inserts of size-byte rows, one row per transaction, into a fresh SQLite
// file opened with the store's pragmas.
func baselineRowsPerSec(size int) (float64, error) {
	baselinesMu.Lock()
	defer baselinesMu.Unlock()
	if r, ok := baselines[size]; ok {
		return r, nil
	}
	r, err := measureBaseline(size)
	if err == nil {
		baselines[size] = r
	}
	return r, err
}

var (
	baselinesMu sync.Mutex
	baselines   = map[int]float64{}
)

func measureBaseline(size int) (float64, error) {
	dir, err := os.MkdirTemp("", "fieldtip-baseline-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	params := url.Values{}
	params.Set("_journal_mode", "WAL")
	params.Set("_synchronous", "FULL")
	params.Set("_foreign_keys", "1")
	params.Set("_secure_delete", "1")
	params.Set("_busy_timeout", "10000")
	params.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: filepath.Join(dir, "baseline.db")}).EscapedPath()+"?"+params.Encode())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for p, want := range map[string]string{"journal_mode": "wal", "synchronous": "2"} {
		var got string
		if err := db.QueryRow("PRAGMA " + p).Scan(&got); err != nil {
			return 0, err
		}
		if got != want {
			return 0, fmt.Errorf("baseline: pragma %s is %q, want %q", p, got, want)
		}
	}
	if _, err := db.Exec(`CREATE TABLE bench (id INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT`); err != nil {
		return 0, err
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	start := time.Now()
	for i := range baselineRows {
		tx, err := db.Begin()
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(`INSERT INTO bench (id, data) VALUES (?, ?)`, i, data); err != nil {
			return 0, errors.Join(err, tx.Rollback())
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	return baselineRows / time.Since(start).Seconds(), nil
}
