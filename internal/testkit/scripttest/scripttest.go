// Package scripttest runs fieldtip's command-line scripts: testscript files
// (one scenario each, inputs inline) in which fieldtip, fieldtipd and
// newsdesk behave exactly as the programs a user runs. It is imported by
// tests only; no shipped program links it (.ci/run checks).
//
// A cmd package's tests link their own program into the test binary, as
// age's cmd/age tests do, and run it in-process (testscript re-executes the
// test binary under the program's name, so exit status, signals and
// standard streams are real):
//
//	func TestMain(m *testing.M) { scripttest.Main(m, "newsdesk", main) }
//
//	func TestScripts(t *testing.T) {
//		scripttest.Run(t, testscript.Params{Dir: "testdata"})
//	}
//
// Go cannot import one main package from another, so the two programs the
// package does not link are built from this module, once per test binary,
// into a directory first on the scripts' PATH (fieldtip with
// CGO_ENABLED=0, as a phone build would be). Every script sees all three.
//
// Scripts run `exec PROG` (never the bare name, so every process a script
// starts is visible), get $PORT, a free loopback port for their servers,
// and have, besides testscript's own commands, those [Commands] lists.
package scripttest

import (
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// Programs are fieldtip's programs, by the name a user types.
var Programs = []string{"fieldtip", "fieldtipd", "newsdesk"}

// BuildTags are the tags the programs are built with (README.md: SQLite's
// extension loading left out).
const BuildTags = "sqlite_omit_load_extension"

var (
	// linked is the program Main linked into this test binary, "" if none.
	linked string
	// tmp is the directory Main created for built programs; Main removes it.
	tmp string

	buildOnce sync.Once
	binDir    string // where Run finds the programs it built
	buildErr  error
)

// Main is the TestMain of a cmd package: it registers main under prog's
// name, so that scripts run it in-process, and runs the tests. It does not
// return.
func Main(m *testing.M, prog string, main func()) {
	if !slices.Contains(Programs, prog) {
		panic(fmt.Sprintf("scripttest: %q is not one of %v", prog, Programs))
	}
	linked = prog
	testscript.Main(cleanupM{m}, map[string]func(){prog: main})
}

// cleanupM removes the built programs once the tests ran.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	d, err := os.MkdirTemp("", "fieldtip-scripttest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "scripttest:", err)
		return 1
	}
	tmp = d
	defer os.RemoveAll(d)
	return c.m.Run()
}

// Run runs the scripts p.Dir names, with the program Main linked in and
// the other two built, and [Commands] added to p.Cmds. p.Setup, if set,
// runs after the kit's own setup.
func Run(t *testing.T, p testscript.Params) {
	t.Helper()
	if linked == "" {
		t.Fatal("scripttest.Run: call scripttest.Main from TestMain first")
	}
	buildOnce.Do(func() {
		var others []string
		for _, prog := range Programs {
			if prog != linked {
				others = append(others, prog)
			}
		}
		binDir = filepath.Join(tmp, "bin")
		buildErr = Build(binDir, others...)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	testscript.Run(t, Params(binDir, p))
}

// RunBuilt runs the scripts p.Dir names with the three programs taken from
// binDir (see [Build]), as internal/e2e does.
func RunBuilt(t *testing.T, binDir string, p testscript.Params) {
	t.Helper()
	testscript.Run(t, Params(binDir, p))
}

// Params completes p: binDir first on PATH, $PORT, [Commands], explicit
// exec and unique script names.
func Params(binDir string, p testscript.Params) testscript.Params {
	setup := p.Setup
	p.Setup = func(env *testscript.Env) error {
		env.Setenv("PATH", binDir+string(os.PathListSeparator)+env.Getenv("PATH"))
		port, err := FreePort()
		if err != nil {
			return err
		}
		env.Setenv("PORT", port)
		env.Values[socksKey{}] = &socksProxy{}
		if setup != nil {
			if err := setup(env); err != nil {
				return err
			}
		}
		var names []string
		for _, kv := range env.Vars {
			if name, _, ok := strings.Cut(kv, "="); ok {
				names = append(names, name)
			}
		}
		env.Values[ttyEnvKey{}] = names
		return nil
	}
	cmds := Commands()
	for name, f := range p.Cmds {
		cmds[name] = f
	}
	p.Cmds = cmds
	p.RequireExplicitExec = true
	p.RequireUniqueNames = true
	return p
}

// Build builds the named programs into dir: fieldtipd and newsdesk with
// SQLite, fieldtip with CGO_ENABLED=0, which proves the static phone build
// DESIGN.md §3 promises (on Linux, the binary must have no interpreter).
// Go's build cache makes a second build cheap.
func Build(dir string, progs ...string) error {
	var cgo, static []string
	for _, prog := range progs {
		switch prog {
		case "fieldtip":
			static = append(static, "fieldtip/cmd/fieldtip")
		case "fieldtipd", "newsdesk":
			cgo = append(cgo, "fieldtip/cmd/"+prog)
		default:
			return fmt.Errorf("scripttest: build %q: not one of %v", prog, Programs)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, b := range []struct {
		env  []string
		pkgs []string
	}{{nil, cgo}, {[]string{"CGO_ENABLED=0"}, static}} {
		if len(b.pkgs) == 0 {
			continue
		}
		args := append([]string{"build", "-tags", BuildTags, "-o", dir + string(os.PathSeparator)}, b.pkgs...)
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s go %s: %w\n%s", strings.Join(b.env, " "), strings.Join(args, " "), err, out)
		}
	}
	if len(static) > 0 && runtime.GOOS == "linux" {
		f, err := elf.Open(filepath.Join(dir, "fieldtip"))
		if err != nil {
			return err
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return errors.New("fieldtip built with CGO_ENABLED=0 is dynamically linked")
			}
		}
	}
	return nil
}

// FreePort returns a loopback TCP port that was free a moment ago. A
// script's servers listen on it one after another; the kernel hands out
// ephemeral ports in turn, so another process taking it in between is
// unlikely, and would fail the script's waitserver rather than pass it.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}
