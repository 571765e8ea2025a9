package cli

import (
	"bytes"
	"context"
	"maps"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// cmd is a test command with a usage line and flags of every kind help
// shows.
type cmd struct {
	name, usage string
	flags       func(fs *pflag.FlagSet)
}

func (c *cmd) Name() string  { return c.name }
func (c *cmd) Usage() string { return c.usage }
func (c *cmd) Summary() string {
	return "Do " + c.name + " to the thing named on the command line, carefully."
}
func (c *cmd) Flags(fs *pflag.FlagSet) {
	if c.flags != nil {
		c.flags(fs)
	}
}
func (c *cmd) Run(ctx context.Context, env *Env, args []string) error { return nil }

func testCommands() []Command {
	flags := func(fs *pflag.FlagSet) {
		fs.String("key", "", "editor key file")
		fs.Bool("classic", false, "use an X25519 age key instead of the hybrid post-quantum one, which is the default for every new key")
		fs.String("cache", "", "local cache of ciphertext (default: fieldtip-newsdesk in the user cache dir)")
		fs.Duration("expires", 0, "how long sources trust the bundle")
	}
	return []Command{
		&cmd{name: "bundle sign", usage: "--key FILE [--classic] [--cache DIR]", flags: flags},
		&cmd{name: "bundle publish", usage: "--key FILE BUNDLE", flags: flags},
		&cmd{name: "pull", usage: "[--key FILE]", flags: flags},
		&cmd{name: "sync", usage: "--key FILE", flags: flags},
	}
}

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main("prog", testCommands(), false, args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// A group's first word alone lists the group's commands, as the program
// alone lists all (issue 12: "newsdesk bundle").
func TestMainGroup(t *testing.T) {
	code, stdout, stderr := run(t, "bundle")
	if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "Usage: prog bundle <command> [flags] [arguments]\n") ||
		!strings.Contains(stderr, "\n  bundle publish ") || !strings.Contains(stderr, "\n  bundle sign ") || strings.Contains(stderr, "pull") {
		t.Errorf("Main(bundle) = %d, stdout %q, stderr %q; want 2 and bundle's commands on stderr", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "bundle", "--help")
	if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "Usage: prog bundle <command>") {
		t.Errorf("Main(bundle --help) = %d, stdout %q, stderr %q; want 0 and bundle's commands on stdout", code, stdout, stderr)
	}
}

// A mistyped command or flag gets the nearest one (issue 12).
func TestMainSuggests(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"pul"}, `prog: unknown command "pul", did you mean "pull"? (see prog --help)` + "\n"},
		{[]string{"sycn", "--key", "k"}, `prog: unknown command "sycn", did you mean "sync"? (see prog --help)` + "\n"},
		{[]string{"bundle", "sing"}, `prog: unknown command "bundle sing", did you mean "bundle sign"? (see prog --help)` + "\n"},
		{[]string{"bundel", "sign"}, `prog: unknown command "bundel", did you mean "bundle sign"? (see prog --help)` + "\n"},
		{[]string{"frobnicate"}, `prog: unknown command "frobnicate" (see prog --help)` + "\n"},
		{[]string{"ls"}, `prog: unknown command "ls" (see prog --help)` + "\n"},
		{[]string{"sync", "--kye", "k"}, "prog: sync: unknown flag: --kye, did you mean --key? (see --help)\n"},
		{[]string{"sync", "--frobnicate"}, "prog: sync: unknown flag: --frobnicate (see --help)\n"},
	} {
		code, stdout, stderr := run(t, tc.args...)
		if code != 2 || stdout != "" || stderr != tc.wantStderr {
			t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, stdout, stderr, tc.wantStderr)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"pull", "pull", 0}, {"pul", "pull", 1}, {"sycn", "sync", 1},
		{"bundle sing", "bundle sign", 1}, {"inbx", "inbox", 1}, {"ls", "log", 2}, {"", "abc", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// --help says "(required)" of exactly the flags the usage line requires,
// shows booleans as --classic, and wraps at the width (issue 12).
func TestHelp(t *testing.T) {
	for _, cols := range []string{"", "60", "100", "30"} {
		t.Setenv("COLUMNS", cols)
		width := map[string]int{"": 80, "60": 60, "100": 100, "30": minWidth}[cols]
		code, stdout, _ := run(t, "bundle", "sign", "--help")
		if code != 0 {
			t.Fatalf("--help exited %d", code)
		}
		for _, line := range strings.Split(stdout, "\n") {
			if len([]rune(line)) > width {
				t.Errorf("COLUMNS=%q: line of %d columns, more than %d:\n%s", cols, len([]rune(line)), width, stdout)
			}
		}
		if strings.Contains(stdout, "[=true|false]") || !regexp.MustCompile(`\n      --classic\s`).MatchString(stdout) {
			t.Errorf("COLUMNS=%q: --classic not shown as a plain flag:\n%s", cols, stdout)
		}
		flat := strings.Join(strings.Fields(stdout), " ")
		if !strings.Contains(flat, "--key string editor key file (required)") ||
			strings.Count(flat, "(required)") != 1 {
			t.Errorf("COLUMNS=%q: want --key alone marked required:\n%s", cols, stdout)
		}
	}
	_, stdout, _ := run(t, "pull", "--help")
	if strings.Contains(stdout, "(required)") {
		t.Errorf("pull [--key FILE] --help marks a flag required:\n%s", stdout)
	}
	t.Setenv("COLUMNS", "")
	_, stdout, _ = run(t, "--help")
	for _, line := range strings.Split(stdout, "\n") {
		if len(line) > defaultWidth {
			t.Errorf("command list: line of %d columns, more than %d:\n%s", len(line), defaultWidth, stdout)
		}
	}
}

func TestRequiredFlags(t *testing.T) {
	for _, tc := range []struct {
		usage string
		want  []string
	}{
		{"--name LABEL --out FILE [--classic] [--passphrase-file F]", []string{"name", "out"}},
		{"[--server URL] --key FILE [--cache DIR]", []string{"key"}},
		{"TIP --status new|reviewing|useful|spam|rejected [--tag T]... [--note TEXT] --server URL", []string{"server", "status"}},
		{"--editor A.key.pub [--editor B.key.pub]... [--revoke LABEL]...", []string{"editor"}},
		{"[--text TEXT [--attach FILE]...]", nil},
		{"[--data DIR] [--listen ADDR] [--bundle FILE] [flags] | --dev | --print-log-key", nil},
	} {
		got := slices.Sorted(maps.Keys(RequiredFlags(tc.usage)))
		if !slices.Equal(got, tc.want) {
			t.Errorf("RequiredFlags(%q) = %q, want %q", tc.usage, got, tc.want)
		}
	}
}

func TestCheckCommands(t *testing.T) {
	if err := CheckCommands(testCommands()); err != nil {
		t.Errorf("CheckCommands(good) = %v", err)
	}
	for name, c := range map[string]Command{
		"unknown flag in usage": &cmd{name: "x", usage: "--nope V"},
		"required by hand, optional in usage": &cmd{name: "x", usage: "[--server URL]", flags: func(fs *pflag.FlagSet) {
			fs.String("server", "", "the server's URL (required)")
		}},
		"required; by hand, optional in usage": &cmd{name: "x", usage: "[--out FILE]", flags: func(fs *pflag.FlagSet) {
			fs.String("out", "", "where to write (required; never replaced)")
		}},
	} {
		if err := CheckCommands([]Command{c}); err == nil {
			t.Errorf("CheckCommands(%s) = nil, want an error", name)
		}
	}
	if err := CheckCommands([]Command{&cmd{name: "x", usage: "[--bundle F]", flags: func(fs *pflag.FlagSet) {
		fs.String("bundle", "", "a bundle (required on first start)")
	}}}); err != nil {
		t.Errorf("CheckCommands(conditionally required) = %v", err)
	}
	if err := CheckCommands([]Command{&cmd{name: "x"}, &cmd{name: "x"}}); err == nil {
		t.Errorf("CheckCommands(two named x) = nil, want an error")
	}
}

func TestVersion(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"stamped", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "fieldtip", Version: "v0.0.0-20261207033021-0a31fd20bd4e"},
			Settings: vcs("vcs", "git", "vcs.revision", "0a31fd20bd4efb63623f6a2e503e8d1f997f3fb9", "vcs.modified", "false")},
			"newsdesk v0.0.0-20261207033021-0a31fd20bd4e (revision 0a31fd20bd4efb63623f6a2e503e8d1f997f3fb9, go1.26.8)"},
		{"modified", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261207033021-0a31fd20bd4e+dirty"},
			Settings: vcs("vcs.revision", "0a31fd20bd4efb63623f6a2e503e8d1f997f3fb9", "vcs.modified", "true")},
			"newsdesk v0.0.0-20261207033021-0a31fd20bd4e+dirty (revision 0a31fd20bd4efb63623f6a2e503e8d1f997f3fb9, modified, go1.26.8)"},
		{"tagged", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}}, "newsdesk v1.2.0 (revision unknown, go1.26.8)"},
		{"no vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "newsdesk (devel) (revision unknown, go1.26.8)"},
	} {
		if got := version("newsdesk", tc.bi); got != tc.want {
			t.Errorf("version(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if v := Version("fieldtipd"); !strings.HasPrefix(v, "fieldtipd ") {
		t.Errorf("Version(fieldtipd) = %q", v)
	}
}

// --version: the first argument of a program with commands, a flag of a
// single-command one.
func TestMainVersion(t *testing.T) {
	code, stdout, _ := run(t, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "prog ") {
		t.Errorf("Main(--version) = %d, %q", code, stdout)
	}
	var o, e bytes.Buffer
	code = Main("fieldtipd", []Command{&cmd{name: "serve"}}, true, []string{"--version"}, strings.NewReader(""), &o, &e)
	if code != 0 || !strings.HasPrefix(o.String(), "fieldtipd ") {
		t.Errorf("Main(fieldtipd --version) = %d, %q, %q", code, o.String(), e.String())
	}
}
