package newsdesk

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/protocol"
	"fieldtip/storage"

	"filippo.io/age"
)

// The benchmarks of this file measure an editor's first sync of a busy
// tip line: 10,000 tips sealed to three editors with hybrid post-quantum
// age keys, stored in a real server, pulled, decrypted and indexed by the
// third editor (the one whose stanza age tries last). The work runs in a
// child process (this test binary again, TestBenchChild), so that its
// peak RSS is the editor's alone, not the server's.

// benchTips is the size of the busy tip line.
const benchTips = 10_000

// benchLine is a seeded server and three editors' key files.
type benchLine struct {
	srv  *testServer
	dir  string   // key files and the passphrase file
	keys []string // the editors' key files, alice, bob, carol
	cts  [][]byte // the tips' ciphertexts, for age's own rate
}

var (
	benchLines  = map[int]*benchLine{}
	benchLineMu sync.Mutex
)

// benchWorkFactor keeps opening a key file cheap in the child.
const benchWorkFactor = 10

func newBenchLine(b testing.TB, n int) *benchLine {
	benchLineMu.Lock()
	defer benchLineMu.Unlock()
	if l := benchLines[n]; l != nil {
		return l
	}
	l := &benchLine{dir: b.TempDir()}
	var editors []*crypto.EditorKey
	pass := filepath.Join(l.dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, label := range []string{"alice", "bob", "carol"} {
		p := filepath.Join(l.dir, label+".key")
		e, err := EditorNew(label, p, "correct horse", false, KeyOptions{WorkFactor: benchWorkFactor})
		if err != nil {
			b.Fatal(err)
		}
		k, err := LoadEditorKey(p, "correct horse")
		if err != nil {
			b.Fatal(err)
		}
		if e.Recipient != k.Public.Recipient {
			b.Fatal("key file round trip")
		}
		editors, l.keys = append(editors, k), append(l.keys, p)
	}
	nk := fieldtiptest.NewNewsroom(b, false)
	l.srv = fieldtiptest.StartServer(b, func(logKey string) []byte {
		bd := &crypto.Bundle{Newsroom: nk.Key.Verifier, Version: 1, Expires: time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second),
			Log: logKey, Policy: crypto.DefaultPolicy}
		for _, e := range editors {
			bd.Editors = append(bd.Editors, e.Public)
		}
		msg, err := crypto.SignBundle(bd, nk.Key.Signer)
		if err != nil {
			b.Fatal(err)
		}
		return msg
	}, fieldtiptest.ServerOptions{})
	var rs []age.Recipient
	for _, e := range editors {
		r, err := crypto.ParseRecipient(e.Public.Recipient)
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, r)
	}
	l.cts = make([][]byte, n)
	day := crypto.Day(time.Now())
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				if err := l.seed(ctx, i, day, rs); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	benchLines[n] = l
	return l
}

// seed stores tip i: a short text, two in ten with a small attachment.
func (l *benchLine) seed(ctx context.Context, i int, day string, rs []age.Recipient) error {
	t := &crypto.Tip{Text: fmt.Sprintf("Tip %d: trucks leave the Hyesan mine at night.\nMore below.", i)}
	if i%10 < 2 {
		t.Attachments = []crypto.Attachment{{Name: "note.txt", Type: "text/plain", Data: []byte("attached " + strconv.Itoa(i))}}
	}
	ct, err := crypto.Seal(t, rs, protocol.FrameSize)
	if err != nil {
		return err
	}
	rc := &crypto.Receipt{SHA256: sha256.Sum256(ct), Length: int64(len(ct)), Day: day}
	rand.Read(rc.TipID[:])
	msg, err := crypto.SignReceipt(rc, l.srv.LogKey.Signer)
	if err != nil {
		return err
	}
	l.cts[i] = ct
	return l.srv.Store.PutTip(ctx, &storage.Tip{TipMeta: storage.TipMeta{ID: rc.TipID, Day: day, BundleVersion: 1,
		SHA256: rc.SHA256, Length: rc.Length, Receipt: msg}, Ciphertext: ct})
}

// benchChild is what the parent asks of the child process.
type benchChild struct {
	Work   string // "first-sync"
	Server string
	Key    string
	Pass   string
	Cache  string
}

// benchChildEnv names the environment variable that makes TestBenchChild
// run a benchChild.
const benchChildEnv = "FIELDTIP_NEWSDESK_BENCH_CHILD"

// TestBenchChild is the child process of the benchmarks of this file; it
// does nothing unless a benchmark started it.
func TestBenchChild(t *testing.T) {
	spec := os.Getenv(benchChildEnv)
	if spec == "" {
		t.Skip("the child process of BenchmarkFirstSync")
	}
	var c benchChild
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		t.Fatal(err)
	}
	if err := runBenchChild(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// benchRun runs the child and returns its wall time and peak RSS.
func benchRun(b *testing.B, c benchChild) (time.Duration, int64) {
	spec, err := json.Marshal(c)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchChildEnv+"="+string(spec))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("child: %v\n%s", err, out.Bytes())
	}
	d := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return d, ru.Maxrss << 10 // KiB on Linux
}

// ageRate decrypts every tip with age alone, one after the other (as the
// age command does), and returns the time it took.
func ageRate(b *testing.B, cts [][]byte, key string) time.Duration {
	k, err := LoadEditorKey(key, "correct horse")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, ct := range cts {
		r, err := age.Decrypt(bytes.NewReader(ct), k.Identity)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkFirstSync measures an editor's first sync of 10,000 tips sealed
// to three hybrid post-quantum editors, with every tip decrypted and
// indexed (the inbox), as the third editor; against age decrypting the
// same files one after the other in the same run. It reports the child's
// wall time, its peak RSS and tips/s, and age's tips/s.
func BenchmarkFirstSync(b *testing.B) {
	l := newBenchLine(b, benchTips)
	var work, ages time.Duration
	var rss int64
	n := 0
	for b.Loop() {
		d, r := benchRun(b, benchChild{Work: "first-sync", Server: l.srv.URL, Key: l.keys[2], Pass: filepath.Join(l.dir, "pass"), Cache: filepath.Join(b.TempDir(), "cache")})
		work, rss, n = work+d, max(rss, r), n+1
		ages += ageRate(b, l.cts, l.keys[2])
	}
	b.ReportMetric(work.Seconds()/float64(n), "s/sync")
	b.ReportMetric(float64(benchTips*n)/work.Seconds(), "tips/s")
	b.ReportMetric(float64(benchTips*n)/ages.Seconds(), "age-tips/s")
	b.ReportMetric(ages.Seconds()/work.Seconds(), "x-age")
	b.ReportMetric(float64(rss)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(runtime.NumCPU()), "cpus")
}
