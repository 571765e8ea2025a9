package server

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// The benchmarks measure the server's own CPU time, from the process's
// rusage. Their clients therefore run in a child process: this test
// binary, started again with benchClientEnv naming a job file, runs
// TestBenchClientProcess and nothing else. The parent starts it, waits
// until it has dialled, reads its own CPU time, tells it to go, and reads
// its CPU time again when the child reports the work done: the difference
// is the server's (and the parent's idle test framework's).

// benchClientEnv names the job file of a client child process.
const benchClientEnv = "FIELDTIP_BENCH_CLIENT"

// benchJob is what a client child process does.
type benchJob struct {
	// Mode is "ingest" (Conns connections submit Uploads, one-frame tips,
	// each upload message, Frame and Commit sent without waiting, then
	// the offset, ack and receipt read), "large" (one upload: Uploads[0]
	// and the frames of Ciphertext, Window in flight, Commit right behind
	// the last), "stream" (Ciphertext as FrameSize-byte binary messages on
	// one connection to a sink that answers once at the end) or "flood"
	// (Uploads sent one per connection on Conns connections at a time,
	// each refusal read to its close).
	Mode       string
	URL        string
	Conns      int
	Uploads    [][]byte
	Frame      []byte
	Commit     []byte
	Ciphertext []byte
	// CiphertextFile, if set, names a file the child reads Ciphertext
	// from, so that the parent need not hold it.
	CiphertextFile string
	FrameSize      int
	Window         int
}

// benchResult is what the child reports.
type benchResult struct {
	// Latencies are each tip's upload message sent → receipt read (ingest).
	Latencies []time.Duration
	// Refused counts the typed refusals read (flood), by code, and the
	// uploads the server opened as "opened".
	Refused map[string]int
	// CPU is the child's own CPU time while it worked.
	CPU time.Duration
	Err string
}

// benchRun is a measured run of a client child.
type benchRun struct {
	benchResult
	// Elapsed is go to done, ServerCPU the parent's CPU time over it.
	Elapsed   time.Duration
	ServerCPU time.Duration
	// PeakRSSGrowth is the parent's peak resident set over the run less
	// its resident set at go, in bytes (measureRSS only).
	PeakRSSGrowth int64
}

// runBenchClient runs job in a child process and measures it.
func runBenchClient(tb testing.TB, job *benchJob, measureRSS bool) *benchRun {
	tb.Helper()
	dir := tb.TempDir()
	jobFile := filepath.Join(dir, "job")
	f, err := os.Create(jobFile)
	if err != nil {
		tb.Fatal(err)
	}
	if err := gob.NewEncoder(f).Encode(job); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	cmd := osexec.Command(os.Args[0], "-test.run=^TestBenchClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchClientEnv+"="+jobFile)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	waitLine := func(want string) {
		tb.Helper()
		for lines.Scan() {
			if lines.Text() == want {
				return
			}
		}
		tb.Fatalf("client process ended before %q: %v", want, lines.Err())
	}
	waitLine("ready")
	var rssBefore int64
	if measureRSS {
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS(tb)
		rssBefore = procStatusBytes(tb, "VmRSS")
	}
	cpu0 := processCPU(tb)
	start := time.Now()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		tb.Fatal(err)
	}
	waitLine("done")
	run := &benchRun{Elapsed: time.Since(start), ServerCPU: processCPU(tb) - cpu0}
	if measureRSS {
		run.PeakRSSGrowth = procStatusBytes(tb, "VmHWM") - rssBefore
	}
	stdin.Close()
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("client process: %v", err)
	}
	rf, err := os.Open(jobFile + ".out")
	if err != nil {
		tb.Fatal(err)
	}
	defer rf.Close()
	if err := gob.NewDecoder(rf).Decode(&run.benchResult); err != nil {
		tb.Fatal(err)
	}
	if run.Err != "" {
		tb.Fatalf("client process: %s", run.Err)
	}
	return run
}

// processCPU is this process's user and system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS resets the process's peak resident set (VmHWM) to its
// current one (proc(5), /proc/pid/clear_refs, value 5).
func resetPeakRSS(tb testing.TB) {
	tb.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		tb.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// procStatusBytes reads a "kB" line of /proc/self/status, in bytes.
func procStatusBytes(tb testing.TB, key string) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatalf("/proc/self/status %s: %v", key, err)
			}
			return n << 10
		}
	}
	tb.Fatalf("/proc/self/status has no %s", key)
	return 0
}

// TestBenchClientProcess is the client child of runBenchClient; it does
// nothing in a normal test run.
func TestBenchClientProcess(t *testing.T) {
	jobFile := os.Getenv(benchClientEnv)
	if jobFile == "" {
		t.Skip("only run as a benchmark's client process")
	}
	res := benchClientMain(jobFile)
	f, err := os.Create(jobFile + ".out")
	if err != nil {
		t.Fatal(err)
	}
	if err := gob.NewEncoder(f).Encode(res); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
}

func benchClientMain(jobFile string) (res *benchResult) {
	res = &benchResult{}
	fail := func(err error) *benchResult {
		res.Err = err.Error()
		fmt.Println("ready")
		return res
	}
	f, err := os.Open(jobFile)
	if err != nil {
		return fail(err)
	}
	var job benchJob
	err = gob.NewDecoder(f).Decode(&job)
	f.Close()
	if err != nil {
		return fail(err)
	}
	if job.CiphertextFile != "" {
		if job.Ciphertext, err = os.ReadFile(job.CiphertextFile); err != nil {
			return fail(err)
		}
	}
	dialer := &websocket.Dialer{HandshakeTimeout: failAfter, ReadBufferSize: 4096, WriteBufferSize: protocol.MaxClientMessage + 64}
	var conns []*websocket.Conn
	if job.Mode != "flood" {
		for range max(job.Conns, 1) {
			c, _, err := dialer.Dial(job.URL, nil)
			if err != nil {
				return fail(err)
			}
			c.SetReadLimit(protocol.MaxServerMessage)
			defer c.Close()
			conns = append(conns, c)
		}
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		res.Err = "no go from the parent"
		return res
	}
	cpu0 := childCPU()
	defer func() { res.CPU = childCPU() - cpu0 }()
	switch job.Mode {
	case "ingest":
		err = benchIngestClients(&job, conns, res)
	case "large":
		err = benchLargeClient(&job, conns[0])
	case "stream":
		err = benchStreamClient(&job, conns[0])
	case "flood":
		err = benchFloodClients(&job, dialer, res)
	default:
		err = fmt.Errorf("unknown mode %q", job.Mode)
	}
	if err != nil {
		res.Err = err.Error()
	}
	return res
}

func childCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchIngestClients(job *benchJob, conns []*websocket.Conn, res *benchResult) error {
	var next atomic.Int64
	lat := make([][]time.Duration, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(len(job.Uploads)); n = next.Add(1) {
				start := time.Now()
				if err := submit(c, job.Uploads[n-1], job.Frame, job.Commit); err != nil {
					errs[i] = fmt.Errorf("client %d: %w", i, err)
					return
				}
				lat[i] = append(lat[i], time.Since(start))
			}
		})
	}
	wg.Wait()
	for _, l := range lat {
		res.Latencies = append(res.Latencies, l...)
	}
	return errors.Join(errs...)
}

// benchLargeClient sends one upload as the real client does: frames with
// at most Window unacknowledged, the commit right behind the last frame.
func benchLargeClient(job *benchJob, c *websocket.Conn) error {
	ct := job.Ciphertext
	frame := int64(job.FrameSize)
	total := int64(len(ct))
	acks := make(chan int64, 1024)
	readErr := make(chan error, 1)
	go func() {
		for {
			c.SetReadDeadline(time.Now().Add(failAfter))
			_, data, err := c.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			m, err := protocol.ParseServerMessage(data)
			if err != nil {
				readErr <- err
				return
			}
			switch m := m.(type) {
			case *protocol.Ack:
				acks <- m.Offset
			case *protocol.ReceiptReply:
				readErr <- nil
				return
			case *protocol.Error:
				readErr <- m
				return
			}
		}
	}()
	write := func(mt int, b []byte) error {
		c.SetWriteDeadline(time.Now().Add(failAfter))
		return c.WriteMessage(mt, b)
	}
	if err := write(websocket.TextMessage, job.Uploads[0]); err != nil {
		return err
	}
	var sent, acked int64
	buf := make([]byte, 0, protocol.FrameHeaderSize+job.FrameSize)
	for sent < total {
		for sent < total && sent-acked < int64(job.Window)*frame {
			buf = protocol.AppendDataFrame(buf[:0], sent, ct[sent:sent+frame])
			if err := write(websocket.BinaryMessage, buf); err != nil {
				return err
			}
			sent += frame
		}
		if sent == total {
			break
		}
		select {
		case a := <-acks:
			acked = a
		case err := <-readErr:
			if err == nil {
				err = errors.New("receipt before the last frame")
			}
			return err
		}
	}
	if err := write(websocket.TextMessage, job.Commit); err != nil {
		return err
	}
	return <-readErr
}

// benchStreamClient writes Ciphertext as data-frame-sized binary messages
// and waits for the sink's one answer.
func benchStreamClient(job *benchJob, c *websocket.Conn) error {
	ct := job.Ciphertext
	buf := make([]byte, 0, protocol.FrameHeaderSize+job.FrameSize)
	for off := 0; off < len(ct); off += job.FrameSize {
		buf = protocol.AppendDataFrame(buf[:0], int64(off), ct[off:off+job.FrameSize])
		c.SetWriteDeadline(time.Now().Add(failAfter))
		if err := c.WriteMessage(websocket.BinaryMessage, buf); err != nil {
			return err
		}
	}
	c.SetReadDeadline(time.Now().Add(failAfter))
	_, _, err := c.ReadMessage()
	return err
}

// benchFloodClients sends each upload message on a connection of its own,
// Conns at a time, and reads each refusal.
func benchFloodClients(job *benchJob, dialer *websocket.Dialer, res *benchResult) error {
	var next atomic.Int64
	var mu sync.Mutex
	res.Refused = map[string]int{}
	errs := make([]error, job.Conns)
	var wg sync.WaitGroup
	for i := range job.Conns {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(len(job.Uploads)); n = next.Add(1) {
				code, err := floodOne(dialer, job.URL, job.Uploads[n-1])
				if err != nil {
					errs[i] = err
					return
				}
				mu.Lock()
				res.Refused[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// floodOne sends one upload message on a new connection and returns the
// code of the refusal that answers it.
func floodOne(dialer *websocket.Dialer, url string, up []byte) (string, error) {
	c, _, err := dialer.Dial(url, nil)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(failAfter))
	if err := c.WriteMessage(websocket.TextMessage, up); err != nil {
		return "", err
	}
	for {
		c.SetReadDeadline(time.Now().Add(failAfter))
		_, data, err := c.ReadMessage()
		if err != nil {
			return "", fmt.Errorf("flood: no refusal: %w", err)
		}
		m, err := protocol.ParseServerMessage(data)
		if err != nil {
			return "", err
		}
		switch m := m.(type) {
		case *protocol.Error:
			return string(m.Code), nil
		case *protocol.Offset:
			return "opened", nil // the proofs passed: the server opened the upload
		}
	}
}
