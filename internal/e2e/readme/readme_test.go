package readme

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/internal/testkit/scripttest"
)

// binDir holds the programs TestMain built.
var binDir string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fieldtip-readme-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "readme:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := scripttest.Build(dir, scripttest.Programs...); err != nil {
		fmt.Fprintln(os.Stderr, "readme:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// readmePath is the README, from this package's directory.
const readmePath = "../../../README.md"

// readmeAddr is the address the README's walk-through serves on; the test
// gives it a free port instead, so that runs side by side do not collide.
const readmeAddr = "127.0.0.1:8090"

// readmeMargin is what a run of the README leaves of the test binary's
// deadline (go test -timeout) for reporting: the run itself, key
// derivations and proofs of work at the defaults a reader gets, may take
// all the rest on a loaded machine. A run still going then is killed and
// fails with what it printed, instead of the binary dying without it.
const readmeMargin = 20 * time.Second

// A readmeBlock is one ```sh block of the README.
type readmeBlock struct {
	Section string // the heading it is under
	Line    int    // the line of its opening fence, from 1
	Text    string // its lines, the fence's indentation removed
	Skip    string // why the test does not run it ("README test: not run (why)"), or ""
	Status  int    // the exit status it must end with ("README test: exit N"), 0 by default
}

var (
	readmeHeading = regexp.MustCompile(`^#{2,3} (.+)$`)
	readmeMarker  = regexp.MustCompile(`^\s*<!-- README test: (?:not run \((.+)\)|exit (\d+)) -->\s*$`)
	readmeFence   = regexp.MustCompile("^(\\s*)```(\\S*)\\s*$")
)

// readmeBlocks returns the ```sh blocks of a Markdown text in order. An
// HTML comment line "<!-- README test: not run (why) -->" or
// "<!-- README test: exit N -->" right before a block (blank lines
// between allowed) applies to it; a marker before anything else is an
// error, as is an unknown "README test:" comment or an unclosed block.
func readmeBlocks(md string) ([]readmeBlock, error) {
	var blocks []readmeBlock
	section := "(top)"
	var pending *readmeBlock // a marker waiting for its block
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := readmeHeading.FindStringSubmatch(line); m != nil {
			section = m[1]
		}
		if m := readmeMarker.FindStringSubmatch(line); m != nil {
			if pending != nil {
				return nil, fmt.Errorf("README line %d: a second README test marker before a block", i+1)
			}
			pending = &readmeBlock{Skip: m[1]}
			if m[2] != "" {
				pending.Status, _ = strconv.Atoi(m[2])
			}
			continue
		}
		if strings.Contains(line, "README test:") && strings.Contains(line, "<!--") {
			return nil, fmt.Errorf("README line %d: %q is not \"<!-- README test: not run (why) -->\" or \"<!-- README test: exit N -->\"", i+1, strings.TrimSpace(line))
		}
		m := readmeFence.FindStringSubmatch(line)
		if m == nil {
			if pending != nil && strings.TrimSpace(line) != "" {
				return nil, fmt.Errorf("README line %d: a README test marker must come right before a ```sh block", i+1)
			}
			continue
		}
		indent, lang := m[1], m[2]
		start := i
		var body []string
		for i++; ; i++ {
			if i == len(lines) {
				return nil, fmt.Errorf("README line %d: code block never closed", start+1)
			}
			if strings.TrimSpace(lines[i]) == "```" {
				break
			}
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if lang != "sh" {
			if pending != nil {
				return nil, fmt.Errorf("README line %d: a README test marker before a %q block, not sh", start+1, lang)
			}
			continue
		}
		b := readmeBlock{Section: section, Line: start + 1, Text: strings.Join(body, "\n") + "\n"}
		if pending != nil {
			b.Skip, b.Status = pending.Skip, pending.Status
			pending = nil
		}
		blocks = append(blocks, b)
	}
	if pending != nil {
		return nil, errors.New("README: a README test marker at the end, with no block after it")
	}
	return blocks, nil
}

func TestReadmeBlocks(t *testing.T) {
	md := "# T\n\n```sh\necho top\n```\n\n## One\n\n<!-- README test: not run (needs Tor) -->\n```sh\ntor\n```\n" +
		"### Two\n<!-- README test: exit 1 -->\n\n```sh\nfalse\n```\n```go\nx\n```\n- item:\n\n  ```sh\n  indented\n    more\n  ```\n"
	got, err := readmeBlocks(md)
	if err != nil {
		t.Fatal(err)
	}
	want := []readmeBlock{
		{Section: "(top)", Line: 3, Text: "echo top\n"},
		{Section: "One", Line: 10, Text: "tor\n", Skip: "needs Tor"},
		{Section: "Two", Line: 16, Text: "false\n", Status: 1},
		{Section: "Two", Line: 24, Text: "indented\n  more\n"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("readmeBlocks = %+v\nwant %+v", got, want)
	}
	for name, bad := range map[string]string{
		"unclosed":            "```sh\necho\n",
		"marker then prose":   "<!-- README test: not run (x) -->\nprose\n```sh\nx\n```\n",
		"marker at the end":   "```sh\nx\n```\n<!-- README test: exit 1 -->\n",
		"two markers":         "<!-- README test: exit 1 -->\n<!-- README test: exit 2 -->\n```sh\nx\n```\n",
		"unknown marker":      "<!-- README test: skip -->\n```sh\nx\n```\n",
		"marker before go":    "<!-- README test: exit 1 -->\n```go\nx\n```\n",
		"not run without why": "<!-- README test: not run -->\n```sh\nx\n```\n",
	} {
		if _, err := readmeBlocks(bad); err == nil {
			t.Errorf("readmeBlocks(%s) = nil error", name)
		}
	}
}

// readmeScript turns the blocks into one bash script run in one session:
// the walk-through's address replaced by addr, a readiness wait after each
// line that starts a background process, a mark in the status file before
// and after each block, and every background process stopped at the end
// with SIGTERM (each must exit 0, as a clean shutdown does).
func readmeScript(blocks []readmeBlock, addr, status string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `set -euo pipefail
README_STATUS=%q
readme_wait() { # ADDR PID: wait until ADDR accepts a connection
	{ set +x; } 2>/dev/null
	local host=${1%%:*} port=${1##*:} i
	for ((i = 0; i < 1200; i++)); do
		if (exec 9<>"/dev/tcp/$host/$port") 2>/dev/null; then set -x; return 0; fi
		if ! kill -0 "$2" 2>/dev/null; then echo "README test: the process in the background exited before $1 answered" >&2; return 1; fi
		sleep 0.1
	done
	echo "README test: nothing answers on $1 after 120 s" >&2
	return 1
}
# A failed block ends the session: what runs in the background ends too.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
readme_stop() { # stop what still runs in the background, cleanly
	local pid rc=0
	for pid in $(jobs -p); do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" || { echo "README test: background process $pid exited with status $? after SIGTERM" >&2; rc=1; }
	done
	return $rc
}
`, status)
	listen := regexp.MustCompile(`--listen[ =](\S+)`)
	for i, blk := range blocks {
		if blk.Skip != "" {
			continue
		}
		text := strings.ReplaceAll(blk.Text, readmeAddr, addr)
		fmt.Fprintf(&b, "printf 'start %d\\n' >> \"$README_STATUS\"\n", i)
		if blk.Status != 0 {
			fmt.Fprintf(&b, "set +e\n(\nset -e\n%s)\nreadme_rc=$?\nset -e\n", text)
			fmt.Fprintf(&b, "if [ $readme_rc -ne %d ]; then echo \"README test: the block exited with status $readme_rc, want %d\" >&2; exit 1; fi\n", blk.Status, blk.Status)
		} else {
			for _, line := range strings.SplitAfter(text, "\n") {
				b.WriteString(line)
				if t := strings.TrimSpace(line); strings.HasSuffix(t, " &") {
					if m := listen.FindStringSubmatch(t); m != nil {
						fmt.Fprintf(&b, "readme_wait %s $!\n", m[1])
					}
				}
			}
		}
		fmt.Fprintf(&b, "printf 'done %d\\n' >> \"$README_STATUS\"\n", i)
	}
	b.WriteString("readme_stop\nprintf 'stopped\\n' >> \"$README_STATUS\"\n")
	return b.String()
}

// TestReadme runs the README as written (issue 12): every ```sh block, in
// order, in one bash session (set -euo pipefail), with the built programs
// first on PATH, in a temporary directory that stands for the
// repository's root (docs/ is there), HOME and TMPDIR in it too. The
// walk-through's address, 127.0.0.1:8090, becomes a free port. Markers in
// HTML comments skip a block that needs what a test does not have (a
// terminal, Tor, the repository) or expect a block's exit status; see
// readmeBlocks and readmeScript. Each section is a subtest, reported in
// order: the one that failed shows its block, the command that failed and
// what the session printed; those after it are skipped, since each builds
// on the ones before.
func TestReadme(t *testing.T) {
	md, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readmeBlocks(string(md))
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	for _, b := range blocks {
		if b.Skip == "" {
			runs++
		}
	}
	if runs < 10 {
		t.Fatalf("README has %d blocks to run, fewer than the walk-through's: the markers skip too much", runs)
	}

	root := t.TempDir()
	docs, err := filepath.Abs("../../../docs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(docs, filepath.Join(root, "docs")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"home", "tmp"} {
		if err := os.Mkdir(filepath.Join(root, ".readme-"+d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	port, err := scripttest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	status := filepath.Join(t.TempDir(), "status")
	script := filepath.Join(t.TempDir(), "readme.sh")
	if err := os.WriteFile(script, []byte(readmeScript(blocks, "127.0.0.1:"+port, status)), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	if deadline, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), deadline.Add(-readmeMargin))
	}
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-x", script)
	cmd.Dir = root
	cmd.Env = []string{
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + filepath.Join(root, ".readme-home"),
		"TMPDIR=" + filepath.Join(root, ".readme-tmp"),
		"LANG=C.UTF-8",
		// Each command's trace line names its README block.
		`PS4=+ `,
	}
	// Its own process group, so that a failed or timed-out run leaves no
	// server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A file, not a pipe: a process left in the background by a failed run
	// would hold a pipe open, and Run would wait for it.
	outFile, err := os.Create(filepath.Join(t.TempDir(), "output"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd.Stdout, cmd.Stderr = outFile, outFile
	runErr := cmd.Run()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	outBytes, err := os.ReadFile(outFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	out := string(outBytes)

	st, _ := os.ReadFile(status)
	started, done := map[int]bool{}, map[int]bool{}
	sc := bufio.NewScanner(bytes.NewReader(st))
	for sc.Scan() {
		var n int
		if _, err := fmt.Sscanf(sc.Text(), "start %d", &n); err == nil {
			started[n] = true
		} else if _, err := fmt.Sscanf(sc.Text(), "done %d", &n); err == nil {
			done[n] = true
		}
	}
	stopped := bytes.HasSuffix(st, []byte("stopped\n"))

	var sections []string
	bySection := map[string][]int{}
	for i, b := range blocks {
		if _, ok := bySection[b.Section]; !ok {
			sections = append(sections, b.Section)
		}
		bySection[b.Section] = append(bySection[b.Section], i)
	}
	failed := false
	for _, sec := range sections {
		t.Run(sec, func(t *testing.T) {
			if failed {
				t.Skip("not reached: an earlier section failed")
			}
			for _, i := range bySection[sec] {
				b := blocks[i]
				switch {
				case b.Skip != "":
					t.Logf("README line %d: not run (%s)", b.Line, b.Skip)
				case !done[i]:
					failed = true
					what := "failed"
					if !started[i] {
						what = "was not reached"
					}
					t.Errorf("README line %d: the block %s (%v):\n%s\nthe session's output:\n%s", b.Line, what, runErr, b.Text, tail(out, 60))
					return
				}
			}
		})
	}
	if !failed && (runErr != nil || !stopped) {
		t.Errorf("README run: every block ran, but stopping what ran in the background failed (%v):\n%s", runErr, tail(out, 40))
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[… %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

var updatePhoto = flag.Bool("update-photo", false, "rewrite docs/photo.jpg")

// The README's photo, docs/photo.jpg, is fieldtiptest.PhoneJPEG's: a
// made-up phone photo with GPS position, camera and time in its EXIF, so
// that the walk-through shows them gone. go test ./internal/e2e/readme
// -run TestReadmePhoto -update-photo writes it.
func TestReadmePhoto(t *testing.T) {
	want := fieldtiptest.PhoneJPEG(readmePhotoW, readmePhotoH)
	if *updatePhoto {
		if err := os.WriteFile("../../../docs/photo.jpg", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("../../../docs/photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/photo.jpg is not PhoneJPEG(%d, %d): run go test ./internal/e2e/readme -run TestReadmePhoto -update-photo", readmePhotoW, readmePhotoH)
	}
}

// The size of the README's photo: landscape as stored, portrait once
// turned upright, small enough for the repository.
const readmePhotoW, readmePhotoH = 480, 360
