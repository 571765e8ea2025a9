package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
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

	"fieldtip/client"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"github.com/gorilla/websocket"
	_ "github.com/mattn/go-sqlite3"
)

// benchPlaintext is the plaintext size of one benchmark tip; sealed, it is
// one 16 KiB frame (the smallest bucket).
const benchPlaintext = 4 << 10

// BenchmarkIngest measures the source path end to end on loopback over a
// real SQLite file: 64 clients, each on its own WebSocket, submit b.N tips
// in all (first message, frame and commit sent together, then the offset,
// ack and receipt read; the ciphertext is sealed once and every tip's
// first message, with its proofs of work, is made before the timed loop,
// as a source's phone does offline; the server's check of the proofs is
// timed). The clients run in a child process (runBenchClient), so that
// this process's CPU time is the server's.
//
// It reports tips/s; each tip's acknowledgement latency (first message
// sent → receipt read) at the 50th and 99th percentile; the server's CPU
// time per tip (server-µs/tip) and the clients' (client-µs/tip); the
// storage baselines, 4 KiB and 16 KiB rows inserted one per transaction
// into a fresh SQLite file with the store's pragmas (WAL,
// synchronous=FULL), and tips/s as a ratio of each (ratio, ratio16k): what
// group commit buys; and storage's own group-commit ceiling at the stored
// row size (64 writers putting one-frame tips, 16 KiB of ciphertext and a
// receipt, into a fresh store: ceiling-rows/s) with tips/s as a fraction
// of it (of-ceiling). pow=test runs the test servers' cheap proof of
// work, pow=default the default cost (Argon2id, 1 MiB, 8 bits), which is
// what honest traffic costs the server; its setup solves every proof, so
// give it a small -benchtime (such as 200x).
func BenchmarkIngest(b *testing.B) {
	b.Run("pow=test", func(b *testing.B) { benchIngest(b, cheapPoW) })
	b.Run("pow=default", func(b *testing.B) { benchIngest(b, crypto.DefaultPoWParams) })
}

func benchIngest(b *testing.B, pow crypto.PoWParams) {
	const clients = 64
	ts := newTestServer(b, serverOptions{
		logger: testLoggerLevel(b, slog.LevelWarn),
		config: func(c *Config) {
			c.MaxUploadsPerConn = math.MaxInt32
			c.PoWParams = pow
			c.MaxUnfinishedUploads = 1 << 20
		},
	})
	ct := seal(b, strings.Repeat("x", benchPlaintext), ts.recipients(b), fs16)
	if len(ct) != fs16 {
		b.Fatalf("sealed %d bytes, want one frame", len(ct))
	}
	job := &benchJob{
		Mode:    "ingest",
		URL:     ts.wsURL(),
		Conns:   clients,
		Uploads: benchUploads(b, ts, b.N, int64(len(ct))),
		Frame:   protocol.AppendDataFrame(nil, 0, ct),
		Commit:  protocol.Marshal(&protocol.Commit{SHA256: sha256.Sum256(ct)}),
	}
	b.SetBytes(int64(len(ct)))
	b.ResetTimer()
	run := runBenchClient(b, job, false)
	b.StopTimer()

	all := run.Latencies
	if len(all) != b.N {
		b.Fatalf("%d tips acknowledged, want %d", len(all), b.N)
	}
	slices.Sort(all)
	ms := func(q float64) float64 {
		return float64(all[int(q*float64(len(all)-1))]) / float64(time.Millisecond)
	}
	tipsPerSec := float64(b.N) / run.Elapsed.Seconds()
	b.ReportMetric(tipsPerSec, "tips/s")
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(float64(run.ServerCPU.Microseconds())/float64(b.N), "server-µs/tip")
	b.ReportMetric(float64(run.CPU.Microseconds())/float64(b.N), "client-µs/tip")
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
	ceiling, err := groupCommitCeiling(b, ct)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ceiling, "ceiling-rows/s")
	b.ReportMetric(tipsPerSec/ceiling, "of-ceiling")
}

// groupCommitCeiling measures, once per process, what storage's group
// commit sustains at the row size of a stored one-frame tip: 64 writers
// putting tips of ct's size with a receipt-sized receipt into a fresh
// store.
func groupCommitCeiling(b *testing.B, ct []byte) (float64, error) {
	baselinesMu.Lock()
	defer baselinesMu.Unlock()
	if ceilingRowsPerSec > 0 {
		return ceilingRowsPerSec, nil
	}
	dir, err := os.MkdirTemp("", "fieldtip-ceiling-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	st, err := storage.Open(filepath.Join(dir, "fieldtip.db"), storage.Options{})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	const writers, rows = 64, 4000
	receipt := bytes.Repeat([]byte("r"), 300)
	var next atomic.Int64
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := next.Add(1); i <= rows; i = next.Add(1) {
				t := &storage.Tip{Ciphertext: ct}
				rand.Read(t.ID[:])
				t.Day, t.BundleVersion, t.Length, t.Receipt = "2026-03-14", 1, int64(len(ct)), receipt
				t.SHA256 = sha256.Sum256(t.ID[:])
				if err := st.PutTip(context.Background(), t); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	ceilingRowsPerSec = rows / time.Since(start).Seconds()
	return ceilingRowsPerSec, nil
}

var ceilingRowsPerSec float64

// BenchmarkLargeUpload measures one upload of the largest tip (32 MiB of
// ciphertext, crypto.MaxTipSize) on loopback as the real client sends it
// (client.Window frames of 16 KiB in flight, the commit right behind the
// last frame), from its first message to its receipt, against a raw
// loopback WebSocket stream of the same frames to a sink that discards
// them, measured in the same run (stream-MB/s, and of-stream: the
// upload's MB/s as a fraction of it). It reports the server's CPU time
// for the upload, its peak resident set's growth over the upload
// (rss-growth-MiB) and the durable transactions (each one fsync) the
// upload cost (fsyncs). Each iteration is one upload; -benchtime=3x is
// plenty.
func BenchmarkLargeUpload(b *testing.B) {
	ts := newTestServer(b, serverOptions{
		logger: testLoggerLevel(b, slog.LevelWarn),
		config: func(c *Config) {
			c.MaxUploadSize = crypto.MaxTipSize
			c.MaxStagingBytes = 2 * crypto.MaxTipSize
		},
	})
	ctFile, size, sum := largeTipFile(b, ts)
	stream := streamSink(b, size)
	var upMBs, streamMBs, rss, cpu, txs float64
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		job := &benchJob{Mode: "large", URL: ts.wsURL(), Conns: 1, FrameSize: fs16, Window: client.Window,
			Uploads:        [][]byte{protocol.Marshal(ts.newUpload(b, ts.s.Bundle().Version, size, fs16))},
			Commit:         protocol.Marshal(&protocol.Commit{SHA256: sum}),
			CiphertextFile: ctFile}
		tx0 := ts.store.WriterStats().Transactions
		b.StartTimer()
		run := runBenchClient(b, job, true)
		b.StopTimer()
		txs += float64(ts.store.WriterStats().Transactions - tx0)
		upMBs += float64(size) / 1e6 / run.Elapsed.Seconds()
		rss = max(rss, float64(run.PeakRSSGrowth)/(1<<20))
		cpu += float64(run.ServerCPU.Milliseconds())
		srun := runBenchClient(b, &benchJob{Mode: "stream", URL: stream, Conns: 1, FrameSize: fs16, CiphertextFile: ctFile}, false)
		streamMBs += float64(size) / 1e6 / srun.Elapsed.Seconds()
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(upMBs/n, "MB/s")
	b.ReportMetric(streamMBs/n, "stream-MB/s")
	b.ReportMetric(upMBs/streamMBs, "of-stream")
	b.ReportMetric(rss, "rss-growth-MiB")
	b.ReportMetric(cpu/n, "server-cpu-ms")
	b.ReportMetric(txs/n, "fsyncs")
}

// largeTipFile seals a tip of the largest size (an attachment of random
// bytes) to ts's editors and writes its ciphertext to a file, whose name,
// size and SHA-256 it returns. The benchmark's client child reads it from
// there: this process, whose resident set is the server's, must not hold
// the tip (nor its plaintext) itself, which would also raise the garbage
// collector's goal by as much and let the server's garbage pile up to it.
func largeTipFile(b *testing.B, ts *testServer) (string, int64, [32]byte) {
	b.Helper()
	big := &crypto.Tip{Text: "large", Attachments: []crypto.Attachment{{Name: "video.bin", Type: "application/octet-stream", Data: make([]byte, crypto.MaxTipSize-(1<<20))}}}
	rand.Read(big.Attachments[0].Data)
	ct, err := crypto.Seal(big, ts.recipients(b), fs16)
	if err != nil {
		b.Fatal(err)
	}
	if len(ct) > crypto.MaxTipSize {
		b.Fatalf("sealed %d bytes, more than %d", len(ct), crypto.MaxTipSize)
	}
	name := filepath.Join(b.TempDir(), "ciphertext")
	if err := os.WriteFile(name, ct, 0o600); err != nil {
		b.Fatal(err)
	}
	return name, int64(len(ct)), sha256.Sum256(ct)
}

// streamSink serves, on loopback, a WebSocket endpoint that reads binary
// messages of up to protocol.MaxClientMessage bytes and discards them, and
// answers one text message once total bytes of chunks arrived. It returns
// its URL.
func streamSink(b *testing.B, total int64) string {
	b.Helper()
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(readBackstop)
		buf := make([]byte, protocol.MaxClientMessage+1)
		var got int64
		for got < total {
			_, rd, err := c.NextReader()
			if err != nil {
				return
			}
			n, _ := io.ReadFull(rd, buf)
			got += int64(n - protocol.FrameHeaderSize)
		}
		c.WriteMessage(websocket.TextMessage, []byte("done"))
	}))
	b.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// BenchmarkRefusedNonce measures what an attacker who computes nothing
// costs the server: upload messages whose proofs of work are random
// nonces, each on a connection of its own (a refusal closes it), 16
// connections at a time, at the default proof-of-work cost. It reports
// the server's CPU time per message (server-µs/msg, connection included),
// that as a fraction of one Argon2id check at the same cost measured in
// the same run (of-argon2), and how many of the messages the server
// nevertheless opened as uploads (opened).
func BenchmarkRefusedNonce(b *testing.B) {
	ts := newTestServer(b, serverOptions{
		logger: testLoggerLevel(b, slog.LevelError),
		config: func(c *Config) {
			c.PoWParams = crypto.DefaultPoWParams
			c.MaxUnfinishedUploads = 1 << 20
		},
	})
	seed := ts.seed(b)
	ups := make([][]byte, b.N)
	for i := range ups {
		up := ts.bareUpload(ts.s.Bundle().Version, fs16, fs16)
		up.PoWEpoch = seed.Epoch
		up.PoW = randomNonces(1)
		ups[i] = protocol.Marshal(up)
	}
	b.ResetTimer()
	run := runBenchClient(b, &benchJob{Mode: "flood", URL: ts.wsURL(), Conns: 16, Uploads: ups}, false)
	b.StopTimer()
	perMsg := run.ServerCPU / time.Duration(b.N)
	b.ReportMetric(float64(perMsg.Nanoseconds())/1e3, "server-µs/msg")
	b.ReportMetric(float64(perMsg)/float64(argon2CheckCPU(b, seed)), "of-argon2")
	b.ReportMetric(float64(run.Refused["opened"]), "opened")
}

// randomNonces returns n random proof-of-work nonces.
func randomNonces(n int) []uint64 {
	p := make([]uint64, n)
	for i := range p {
		var b [8]byte
		rand.Read(b[:])
		p[i] = binary.BigEndian.Uint64(b[:])
	}
	return p
}

// argon2CheckCPU is the CPU time of one proof-of-work check (one Argon2id
// evaluation) under seed's parameters, the mean of 64.
func argon2CheckCPU(tb testing.TB, seed *crypto.PoWSeed) time.Duration {
	tb.Helper()
	const n = 64
	in := crypto.PoWInput{Seed: seed.Seed, Length: fs16}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := processCPU(tb)
	for i := range n {
		in.UploadID[0] = byte(i)
		crypto.CheckPoW(seed.Params, in, uint64(i))
	}
	return (processCPU(tb) - start) / n
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
				if up.PrePoW, err = crypto.SolvePrePoW(context.Background(), seed.Seed, up.UploadID, length, pow); err != nil {
					b.Error(err)
					return
				}
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
