package newsdesk

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/protocol"
	"fieldtip/server"
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

// benchLine is a seeded server behind a proxy that counts logins, and
// three editors' key files.
type benchLine struct {
	srv  *testServer
	url  string // the proxy's: the server's origin
	dir  string // key files and the passphrase file
	keys []string
	eds  []*crypto.EditorKey // alice, bob, carol
	cts  [][]byte            // the tips' ciphertexts, for age's own rate
	// logins counts POST /editor/login through the proxy.
	logins atomic.Int64
}

var (
	benchLines  = map[[2]int]*benchLine{}
	benchLineMu sync.Mutex
)

// benchWorkFactor keeps opening a key file cheap in the child.
const benchWorkFactor = 10

// newBenchLine returns a line with n tips and, after them, events notes
// on the first tip, by alice.
func newBenchLine(b testing.TB, n, events int) *benchLine {
	benchLineMu.Lock()
	defer benchLineMu.Unlock()
	if l := benchLines[[2]int{n, events}]; l != nil {
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
	l.eds = editors
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
	}, fieldtiptest.ServerOptions{Config: func(c *server.Config) { c.Origin = l.proxy(b) }})
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
	if events > 0 {
		l.seedEvents(b, events)
	}
	benchLines[[2]int{n, events}] = l
	return l
}

// proxy starts the counting proxy in front of the server (whose URL is
// known only once it started) and returns its URL.
func (l *benchLine) proxy(b testing.TB) string {
	var rp *httputil.ReverseProxy
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == protocol.PathLogin {
			l.logins.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	b.Cleanup(ps.Close)
	rp = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		u, _ := url.Parse(l.srv.URL)
		r.SetURL(u)
	}}
	l.url = ps.URL
	return ps.URL
}

// seedEvents logs n notes by alice on the first tip, 32 at a time, all
// signed over one checkpoint (a prefix of the log, as the server
// requires).
func (l *benchLine) seedEvents(b testing.TB, n int) {
	ctx := context.Background()
	s, err := OpenSession(ctx, SessionConfig{Cache: b.TempDir(), Server: l.url, Key: l.eds[0], NoCosign: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	tips, err := s.Tips()
	if err != nil || len(tips) == 0 {
		b.Fatalf("no tip to note: %v", err)
	}
	tip, err := crypto.ParseTipID(tips[0].ID)
	if err != nil {
		b.Fatal(err)
	}
	r, err := s.Remote(ctx)
	if err != nil {
		b.Fatal(err)
	}
	v := s.View()
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				ev, err := SignEvent(v, l.eds[0], &audit.EventBody{Kind: audit.KindNote, Tip: tip, Text: "note " + strconv.Itoa(i)}, time.Now())
				if err == nil {
					_, err = r.PostEvent(ctx, v, ev)
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
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
	Work   string // "first-sync", "sync", "note"
	Tip    string // the tip of a note
	Server string
	Key    string
	Pass   string
	Cache  string
}

// benchChildEnv names the environment variable that makes TestBenchChild
// run a benchChild.
const benchChildEnv = "FIELDTIP_NEWSDESK_BENCH_CHILD"

// TestBenchChild is the child process of the benchmarks of this file; it
// does nothing unless a benchmark started it. When the work is done it
// prints its own peak RSS (benchHWM), which the parent reads.
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
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Printf("%s %s\n", benchHWM, strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
}

// benchHWM starts the child's line saying its peak RSS in KiB: the
// VmHWM of its own memory since its exec. (The rusage of a child is no
// measure of it: Go starts a child sharing the parent's memory until
// exec, and Linux counts that memory's peak, the benchmark's own with
// its server and 10,000 ciphertexts, in the child's ru_maxrss.)
const benchHWM = "fieldtip-bench-child-vmhwm-kib"

// benchRunCPU runs the child and returns its wall time, the CPU time it
// used (user and system: what a loaded machine does not stretch) and its
// peak RSS in bytes.
func benchRunCPU(b *testing.B, c benchChild) (time.Duration, time.Duration, int64) {
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
	var hwm int64 = -1
	for line := range strings.Lines(out.String()) {
		if v, ok := strings.CutPrefix(line, benchHWM+" "); ok {
			hwm, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatalf("child's peak RSS %q: %v", v, err)
			}
		}
	}
	if hwm < 0 {
		b.Fatalf("the child did not say its peak RSS:\n%s", out.Bytes())
	}
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), hwm << 10
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

// ownStanza is an age identity that unwraps only the stanza at position
// i: what age costs when it knows which stanza is the editor's (one
// hybrid decapsulation a file), the floor of any decryption of the tips.
type ownStanza struct {
	id age.Identity
	i  int
}

func (o ownStanza) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	if o.i >= len(stanzas) {
		return nil, age.ErrIncorrectIdentity
	}
	return o.id.Unwrap(stanzas[o.i : o.i+1])
}

// selfCPU returns the CPU time (user and system) this process used so
// far.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ageFloor decrypts every tip with age, one after the other, trying only
// the editor's own stanza (the i-th), and returns the time it took.
func ageFloor(b *testing.B, cts [][]byte, key string, i int) time.Duration {
	k, err := LoadEditorKey(key, "correct horse")
	if err != nil {
		b.Fatal(err)
	}
	id := ownStanza{k.Identity, i}
	start := time.Now()
	for _, ct := range cts {
		r, err := age.Decrypt(bytes.NewReader(ct), id)
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
// wall and CPU time, its peak RSS and tips/s, and age's tips/s; and the
// floor: age decrypting the same files on one core trying only this
// editor's stanza (one decapsulation a tip, as the sync's hint does), in
// the same run (floor-s, and x-floor: the floor's time over the sync's),
// with the CPU time it took (floor-cpu-s: this process's, whose server is
// idle meanwhile), the figure to hold cpu-s/sync against on a loaded
// machine. server-cpu-s is this process's CPU time while the child syncs:
// the server's work (and the test's), which shares the machine's cores
// with the child.
func BenchmarkFirstSync(b *testing.B) {
	l := newBenchLine(b, benchTips, 0)
	var work, cpu, srvCPU, ages, floor, floorCPU time.Duration
	var rss int64
	n := 0
	for b.Loop() {
		s0 := selfCPU(b)
		d, c, r := benchRunCPU(b, benchChild{Work: "first-sync", Server: l.url, Key: l.keys[2], Pass: filepath.Join(l.dir, "pass"), Cache: filepath.Join(b.TempDir(), "cache")})
		srvCPU += selfCPU(b) - s0
		work, cpu, rss, n = work+d, cpu+c, max(rss, r), n+1
		ages += ageRate(b, l.cts, l.keys[2])
		c0 := selfCPU(b)
		floor += ageFloor(b, l.cts, l.keys[2], 2)
		floorCPU += selfCPU(b) - c0
	}
	b.ReportMetric(work.Seconds()/float64(n), "s/sync")
	b.ReportMetric(cpu.Seconds()/float64(n), "cpu-s/sync")
	b.ReportMetric(srvCPU.Seconds()/float64(n), "server-cpu-s")
	b.ReportMetric(float64(benchTips*n)/work.Seconds(), "tips/s")
	b.ReportMetric(float64(benchTips*n)/ages.Seconds(), "age-tips/s")
	b.ReportMetric(ages.Seconds()/work.Seconds(), "x-age")
	b.ReportMetric(floor.Seconds()/float64(n), "floor-s")
	b.ReportMetric(floor.Seconds()/work.Seconds(), "x-floor")
	b.ReportMetric(floorCPU.Seconds()/float64(n), "floor-cpu-s")
	b.ReportMetric(float64(rss)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(runtime.NumCPU()), "cpus")
}

// benchEvents is the size of the log of BenchmarkNote.
const benchEvents = 10_000

// BenchmarkNote measures newsdesk note, as the CLI runs it (a child
// process: key, session, note, close), on a log of 10,000 events that the
// editor synced before (in a first child, whose time is reported as
// replay-s: a first sync decrypting 10,000 event bodies), as carol, one of
// three hybrid post-quantum editors. Against it, in the same run: one
// event written and verified over an open session (Session.Write, no
// process, no session to open). It reports the seconds per note command,
// the logins per command (which must be 1), and the ratio.
func BenchmarkNote(b *testing.B) {
	l := newBenchLine(b, 1, benchEvents)
	cache := filepath.Join(b.TempDir(), "cache")
	child := benchChild{Server: l.url, Key: l.keys[2], Pass: filepath.Join(l.dir, "pass"), Cache: cache}
	child.Work = "sync"
	replay, replayCPU, _ := benchRunCPU(b, child)
	ctx := context.Background()
	s, err := OpenSession(ctx, SessionConfig{Cache: filepath.Join(b.TempDir(), "writer"), Server: l.url, Key: l.eds[1]})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	tips, err := s.Tips()
	if err != nil {
		b.Fatal(err)
	}
	tip, _ := crypto.ParseTipID(tips[0].ID)
	child.Work, child.Tip = "note", tips[0].ID
	var notes, cpu, writes time.Duration
	var rss int64
	n := 0
	l.logins.Store(0)
	for b.Loop() {
		d, c, r := benchRunCPU(b, child)
		notes, cpu, rss, n = notes+d, cpu+c, max(rss, r), n+1
		start := time.Now()
		if _, err := s.Write(ctx, &audit.EventBody{Kind: audit.KindNote, Tip: tip, Text: "baseline"}); err != nil {
			b.Fatal(err)
		}
		writes += time.Since(start)
	}
	// The baseline session logged in before the loop; its token lasts.
	logins := l.logins.Load()
	b.ReportMetric(notes.Seconds()/float64(n), "s/note")
	b.ReportMetric(cpu.Seconds()/float64(n), "cpu-s/note")
	b.ReportMetric(replayCPU.Seconds(), "replay-cpu-s")
	b.ReportMetric(writes.Seconds()/float64(n), "s/write")
	b.ReportMetric(notes.Seconds()/writes.Seconds(), "x-write")
	b.ReportMetric(float64(logins)/float64(n), "logins/note")
	b.ReportMetric(replay.Seconds(), "replay-s")
	b.ReportMetric(float64(rss)/(1<<20), "peak-MiB")
}
