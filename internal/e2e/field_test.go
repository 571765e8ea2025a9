package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldtip/client"
	"fieldtip/crypto"
	"fieldtip/internal/testkit/flakylink"
	"fieldtip/internal/testkit/scripttest"
	"fieldtip/newsdesk"
	"fieldtip/protocol"
)

// desk is a newsroom with one editor, alice, whose keys are files the
// binaries read (cheap scrypt: testWorkFactor), and a server data
// directory whose log key the signed bundle names.
type desk struct {
	dir      string // the test's working directory; keys and bundle in it
	pass     string // alice's passphrase file
	data     string // the server's data directory
	bundle   string // the signed bundle file
	newsroom string // the newsroom's verifier key
}

func newDesk(t *testing.T) *desk {
	t.Helper()
	d := &desk{dir: t.TempDir()}
	d.pass = filepath.Join(d.dir, "pass")
	d.data = filepath.Join(d.dir, "data")
	d.bundle = filepath.Join(d.dir, "bundle.txt")
	writeFile(t, d.pass, []byte(passphrase+"\n"))
	opts := newsdesk.KeyOptions{WorkFactor: testWorkFactor}
	var err error
	if d.newsroom, err = newsdesk.NewsroomInit(filepath.Join(d.dir, "newsroom.key"), "", passphrase, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := newsdesk.EditorNew("alice", filepath.Join(d.dir, "alice.key"), passphrase, false, opts); err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, d.dir, "", 0, "fieldtipd", "--data", d.data, "--print-log-key")
	run(t, d.dir, "", 0, "newsdesk", "bundle", "sign", "--newsroom", "newsroom.key", "--passphrase-file", d.pass,
		"--log", strings.TrimSpace(out), "--editor", "alice.key.pub", "--out", d.bundle)
	return d
}

// start runs fieldtipd on the desk's data directory and bundle, with cheap
// proofs of work and the extra flags given.
func (d *desk) start(t *testing.T, extra ...string) *server {
	t.Helper()
	args := append([]string{"--data", d.data, "--bundle", d.bundle}, cheapPoW...)
	return startServer(t, append(args, extra...)...)
}

// readTip pulls from url as alice, which must bring exactly the tip id,
// reads it with its attachments written to a new directory, and returns
// what read printed and that directory.
func (d *desk) readTip(t *testing.T, url, id string) (out, dir string) {
	t.Helper()
	cache := filepath.Join(d.dir, "alice-cache")
	pulled, _ := run(t, d.dir, "", 0, "newsdesk", "pull", "--server", url, "--key", "alice.key", "--passphrase-file", d.pass, "--cache", cache)
	if pulled != id+"\n" {
		t.Fatalf("newsdesk pull printed %q, want the tip id %s", pulled, id)
	}
	dir = filepath.Join(d.dir, "attachments-"+id)
	out, _ = run(t, d.dir, "", 0, "newsdesk", "read", id, "--key", "alice.key", "--passphrase-file", d.pass, "--cache", cache, "--out", dir)
	return out, dir
}

// tipID returns the one tip id fieldtip send printed, or fails.
func tipID(t *testing.T, stdout string) string {
	t.Helper()
	id := strings.TrimSuffix(stdout, "\n")
	if _, err := crypto.ParseTipID(id); err != nil || strings.Contains(id, "\n") {
		t.Fatalf("fieldtip send: stdout %q is not one tip id", stdout)
	}
	return id
}

var (
	composedRE = regexp.MustCompile(`(?m)^fieldtip: composed a tip of (\d+) bytes \((\d+) frames\)`)
	progressRE = regexp.MustCompile(`^fieldtip: tip 1 of 1: (\d+) of (\d+) bytes acknowledged$`)
	sentRE     = regexp.MustCompile(`(?m)^fieldtip: sent (\d+) tips; (\d+) bytes sent in ([0-9.]+) s connected \((\d+) connections\)$`)
)

// composedSize returns the ciphertext size compose reported.
func composedSize(t *testing.T, stderr string) int64 {
	t.Helper()
	m := composedRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("fieldtip compose: no size on stderr:\n%s", stderr)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	if n%protocol.FrameSize != 0 {
		t.Fatalf("fieldtip compose: %d bytes, not whole %d-byte frames", n, protocol.FrameSize)
	}
	return n
}

// progress returns the acknowledged offsets of fieldtip send's plain
// progress lines for the one tip of an upload of total bytes, in order.
func progress(t *testing.T, stderr string, total int64) []int64 {
	t.Helper()
	var out []int64
	for line := range strings.Lines(stderr) {
		m := progressRE.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
		if m == nil {
			continue
		}
		acked, _ := strconv.ParseInt(m[1], 10, 64)
		if m[2] != strconv.FormatInt(total, 10) {
			t.Fatalf("progress line %q: total is not the %d bytes composed", line, total)
		}
		out = append(out, acked)
	}
	return out
}

// brief returns fieldtip's stderr with each run of progress lines cut
// to its first and last.
func brief(stderr string) string {
	var out, run []string
	flush := func() {
		if len(run) > 2 {
			run = []string{run[0], fmt.Sprintf("\t(%d progress lines)\n", len(run)-2), run[len(run)-1]}
		}
		out, run = append(out, run...), nil
	}
	for line := range strings.Lines(stderr) {
		if progressRE.MatchString(strings.TrimSuffix(line, "\n")) {
			run = append(run, line)
			continue
		}
		flush()
		out = append(out, line)
	}
	flush()
	return strings.Join(out, "")
}

// resentBound is the most a run may relay upstream to finish an upload of
// total bytes that the server holds from offset from: the frames from
// there with their headers and WebSocket framing, and 8 KiB for the
// WebSocket handshake, the resume and the commit.
func resentBound(total, from int64) int64 {
	frames := (total - from) / protocol.FrameSize
	return frames*(protocol.FrameSize+protocol.FrameHeaderSize+14) + 8<<10
}

// budgetLink is slow enough that the budget test's tip cannot finish
// within its budget (1.1 MiB at 50 kB/s is over 20 s), fast enough that
// many frames are acknowledged before the budget ends.
var budgetLink = flakylink.Profile{Name: "budget test", UpBitsPerSec: 400_000, DownBitsPerSec: 400_000, RTT: 100 * time.Millisecond}

const (
	budgetTipSize = 1 << 20
	budget        = 3 * time.Second
	// budgetSlack is how long after the budget the connection may still
	// count as connected: closing it is immediate, the slack is for a
	// loaded machine.
	budgetSlack = 2 * time.Second
)

// partialRE matches fieldtipd uploads' row of partial uploads when it
// holds one upload (of any age: a run may cross midnight); its group is
// the bytes held.
var partialRE = regexp.MustCompile(`(?m)^partial(?: +\d+){4} +1 +(\d+)$`)

// TestSendBudgetResumes sends a 1 MiB tip (composed offline) through a
// throttled flakylink relay with fieldtip send --budget 3s: the session
// stops when the budget is spent, with exit status 3, the tip still in the
// outbox and the frames acknowledged so far kept by the server. The next
// fieldtip send resumes: it starts from the server's offset (its first
// progress line), the relay counts about the remainder going up rather
// than the whole tip, and it ends with exit status 0 and the tip id. In
// between, fieldtipd uploads (the binary, beside the running server)
// counts the one partial upload and its bytes, not stalled; after, none.
// The editor then reads the tip, its attachment intact.
func TestSendBudgetResumes(t *testing.T) {
	d := newDesk(t)
	srv := d.start(t)
	relay, err := flakylink.Start(srv.Addr, flakylink.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	run(t, d.dir, "", 0, "fieldtip", "init", "--config", "phone", "--server", relay.URL("http"), "--newsroom", d.newsroom)
	evidence := randomBytes(budgetTipSize)
	writeFile(t, filepath.Join(d.dir, "evidence.bin"), evidence)
	_, errOut := run(t, d.dir, "", 0, "fieldtip", "compose", "--config", "phone", "--codename-file", "codename",
		"--text", "the ledger of the border post, every page", "--attach", "evidence.bin", "--keep-original")
	total := composedSize(t, errOut)
	if fi, err := os.Stat(filepath.Join(d.dir, "codename")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("codename file: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}

	if err := relay.SetConfig(flakylink.Config{Profile: budgetLink}); err != nil {
		t.Fatal(err)
	}
	before := relay.Stats()
	out, errOut := run(t, d.dir, "", 3, "fieldtip", "send", "--config", "phone", "--codename-file", "codename", "--budget", budget.String())
	first := relay.Stats()
	t.Logf("first fieldtip send:\n%s", brief(errOut))
	if out != "" {
		t.Errorf("first send printed %q, want no tip id", out)
	}
	want := fmt.Sprintf("fieldtip: send: the time budget is spent; 1 tips (%d bytes) wait in the outbox: run fieldtip send again later", total)
	if last := lastLine(errOut); last != want {
		t.Errorf("first send's last line = %q, want %q", last, want)
	}
	if m := sentRE.FindStringSubmatch(errOut); m == nil {
		t.Errorf("first send reports no bytes and time connected")
	} else if s, _ := strconv.ParseFloat(m[3], 64); m[1] != "0" || time.Duration(s*float64(time.Second)) > budget+budgetSlack {
		t.Errorf("first send: %s tips sent, %s s connected; want 0 tips and at most %v", m[1], m[3], budget+budgetSlack)
	}
	acks := progress(t, errOut, total)
	if len(acks) == 0 || acks[len(acks)-1] < 2*protocol.FrameSize || acks[len(acks)-1] >= total {
		t.Fatalf("first send acknowledged %v of %d bytes; want at least 2 frames and not all: the link profile does not fit the budget", acks, total)
	}
	acked := acks[len(acks)-1]

	// The operator's view, from the real binary beside the running
	// server: one partial upload, holding at least what was
	// acknowledged, and not stalled (its lifetime grows with its bytes).
	uploads, _ := run(t, d.dir, "", 0, "fieldtipd", "uploads", "--data", d.data)
	if m := partialRE.FindStringSubmatch(uploads); m == nil {
		t.Errorf("fieldtipd uploads after the cut session shows no one partial upload:\n%s", uploads)
	} else if held, _ := strconv.ParseInt(m[1], 10, 64); held < acked || held > total {
		t.Errorf("fieldtipd uploads: the partial upload holds %d bytes; %d were acknowledged of %d", held, acked, total)
	}
	if !strings.Contains(uploads, "\nstalled: 0\n") {
		t.Errorf("fieldtipd uploads counts the cut upload as stalled:\n%s", uploads)
	}

	// The link got better; the next session finishes.
	if err := relay.SetConfig(flakylink.Config{}); err != nil {
		t.Fatal(err)
	}
	out, errOut = run(t, d.dir, "", 0, "fieldtip", "send", "--config", "phone", "--codename-file", "codename")
	second := relay.Stats()
	t.Logf("second fieldtip send:\n%s", brief(errOut))
	id := tipID(t, out)
	checkResumed(t, errOut, total, acked, first.BytesUp-before.BytesUp, second.BytesUp-first.BytesUp)

	if uploads, _ := run(t, d.dir, "", 0, "fieldtipd", "uploads", "--data", d.data); !regexp.MustCompile(`(?m)^total +0 +0 +0 +0 +0 +0$`).MatchString(uploads) {
		t.Errorf("fieldtipd uploads after the tip was committed:\n%s", uploads)
	}

	read, dir := d.readTip(t, srv.URL, id)
	if !strings.Contains(read, "the ledger of the border post, every page") {
		t.Errorf("newsdesk read printed:\n%s", read)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "evidence.bin")); err != nil || !bytes.Equal(got, evidence) {
		t.Errorf("attachment after two sessions: %v, equal: %t", err, bytes.Equal(got, evidence))
	}
	srv.stopClean(t)
}

// checkResumed checks the stderr of a send that resumed an upload of
// total bytes of which acked were acknowledged to the client before: its
// first progress line is the server's offset, which holds every
// acknowledged frame and at most the frames that were in flight beyond
// them; and it relayed upstream (up2) no more than the rest from there,
// while the earlier session(s) relayed up1.
func checkResumed(t *testing.T, errOut string, total, acked, up1, up2 int64) {
	t.Helper()
	acks := progress(t, errOut, total)
	if len(acks) == 0 {
		t.Fatalf("the resuming send printed no progress")
	}
	from := acks[0]
	if from < acked || from > acked+client.Window*protocol.FrameSize {
		t.Errorf("the resuming send started at offset %d; want from the %d bytes acknowledged before to at most %d frames more", from, acked, client.Window)
	}
	if acks[len(acks)-1] != total {
		t.Errorf("the resuming send ended at %d of %d bytes", acks[len(acks)-1], total)
	}
	if bound := resentBound(total, acked); up2 > bound || up2 < total-from {
		t.Errorf("the resuming send relayed %d bytes up for %d left; want %d to %d", up2, total-from, total-from, bound)
	}
	t.Logf("upload of %d bytes: %d relayed up before (%d acknowledged), %d to finish from offset %d", total, up1, acked, up2, from)
}

// killLink is slow enough that an upload of killTipSize is far from done
// when its second frame is acknowledged.
var killLink = flakylink.Profile{Name: "kill test", UpBitsPerSec: 200_000, DownBitsPerSec: 200_000, RTT: 100 * time.Millisecond}

const killTipSize = 512 << 10

// TestServerKilledMidUploadResumes kills fieldtipd with SIGKILL while
// fieldtip send uploads through a slow relay, once the client has seen at
// least two frames acknowledged. That send ends with exit status 3 (it
// cannot reconnect). The server restarts on the same data directory and
// port, and the next fieldtip send resumes from the last acknowledged
// offset (acknowledged frames survived the crash), relays only the rest,
// and completes; the editor reads the tip intact.
func TestServerKilledMidUploadResumes(t *testing.T) {
	d := newDesk(t)
	port, err := scripttest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + port
	srv := d.start(t, "--listen", listen)
	relay, err := flakylink.Start(listen, flakylink.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	run(t, d.dir, "", 0, "fieldtip", "init", "--config", "phone", "--server", relay.URL("http"), "--newsroom", d.newsroom)
	evidence := randomBytes(killTipSize)
	writeFile(t, filepath.Join(d.dir, "evidence.bin"), evidence)
	_, errOut := run(t, d.dir, "", 0, "fieldtip", "compose", "--config", "phone", "--codename-file", "codename",
		"--text", "the list of names", "--attach", "evidence.bin", "--keep-original")
	total := composedSize(t, errOut)
	if err := relay.SetConfig(flakylink.Config{Profile: killLink}); err != nil {
		t.Fatal(err)
	}

	before := relay.Stats()
	send := startSend(t, d.dir, "send", "--config", "phone", "--codename-file", "codename", "--budget", "60s")
	// Not a timing assertion: a guard against a send that never gets two
	// frames acknowledged, which fails the test instead of hanging it.
	deadline := time.After(60 * time.Second)
	for waiting := true; waiting; {
		select {
		case line, ok := <-send.lines:
			if !ok {
				t.Fatalf("fieldtip send ended before two frames were acknowledged: %v\n%s", send.wait(), send.stderr.String())
			}
			if m := progressRE.FindStringSubmatch(line); m != nil {
				if acked, _ := strconv.ParseInt(m[1], 10, 64); acked >= 2*protocol.FrameSize {
					waiting = false
				}
			}
		case <-deadline:
			t.Fatalf("no two frames acknowledged within 60 s:\n%s", send.stderr.String())
		}
	}
	srv.kill()
	for range send.lines {
	}
	err = send.wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("fieldtip send with its server killed: %v, want exit status 3\n%s", err, send.stderr.String())
	}
	killed := relay.Stats()
	errOut = send.stderr.String()
	t.Logf("fieldtip send, server killed:\n%s", brief(errOut))
	if send.stdout.String() != "" {
		t.Errorf("stdout = %q, want no tip id", send.stdout.String())
	}
	if !strings.Contains(lastLine(errOut), fmt.Sprintf("1 tips (%d bytes) wait in the outbox", total)) {
		t.Errorf("last line = %q, want it to say the tip waits", lastLine(errOut))
	}
	acks := progress(t, errOut, total)
	acked := acks[len(acks)-1]
	if acked >= total {
		t.Fatalf("all %d bytes were acknowledged before the kill: the link is too fast for the test", total)
	}

	srv = d.start(t, "--listen", listen)
	if err := relay.SetConfig(flakylink.Config{}); err != nil {
		t.Fatal(err)
	}
	out, errOut := run(t, d.dir, "", 0, "fieldtip", "send", "--config", "phone", "--codename-file", "codename")
	done := relay.Stats()
	t.Logf("fieldtip send after the restart:\n%s", brief(errOut))
	id := tipID(t, out)
	checkResumed(t, errOut, total, acked, killed.BytesUp-before.BytesUp, done.BytesUp-killed.BytesUp)

	read, dir := d.readTip(t, srv.URL, id)
	if !strings.Contains(read, "the list of names") {
		t.Errorf("newsdesk read printed:\n%s", read)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "evidence.bin")); err != nil || !bytes.Equal(got, evidence) {
		t.Errorf("attachment after the crash: %v, equal: %t", err, bytes.Equal(got, evidence))
	}
	srv.stopClean(t)
}

// proc is a fieldtip process running in the background, its stderr
// delivered line by line as it comes.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr lockedBuffer
	lines  chan string // closed at the end of stderr
}

// startSend starts fieldtip with args in dir; the process is killed when
// the test ends, if it still runs.
func startSend(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin("fieldtip"), args...), lines: make(chan string, 1024)}
	p.cmd.Dir = dir
	p.cmd.Stdout = &p.stdout
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() })
	go func() {
		defer close(p.lines)
		r := bufio.NewReader(pipe)
		for {
			line, err := r.ReadString('\n')
			p.stderr.Write([]byte(line))
			if line != "" {
				p.lines <- strings.TrimSuffix(line, "\n")
			}
			if err != nil {
				if err != io.EOF {
					p.stderr.Write([]byte(err.Error()))
				}
				return
			}
		}
	}()
	return p
}

// wait waits for the process, once its stderr has been read to the end.
func (p *proc) wait() error { return p.cmd.Wait() }
