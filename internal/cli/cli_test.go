package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// echo is a test command: it prints its flag and arguments, or returns the
// error it was told to.
type echo struct {
	name string
	flag string
	err  error
}

func (c *echo) Name() string            { return c.name }
func (c *echo) Usage() string           { return "[--flag V] ARGS..." }
func (c *echo) Summary() string         { return "Echo." }
func (c *echo) Flags(fs *pflag.FlagSet) { fs.StringVar(&c.flag, "flag", "", "a flag") }
func (c *echo) Run(ctx context.Context, env *Env, args []string) error {
	if c.err != nil {
		return c.err
	}
	env.Stdout.Write([]byte(c.flag + "|" + strings.Join(args, ",") + "\n"))
	return nil
}

func TestMainExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		err        error
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"flag_before", []string{"bundle", "sign", "--flag", "x", "a", "b"}, nil, 0, "x|a,b\n", ""},
		{"flag_after", []string{"bundle", "sign", "a", "--flag", "x", "b"}, nil, 0, "x|a,b\n", ""},
		{"flag_equals_last", []string{"bundle", "sign", "a", "b", "--flag=x"}, nil, 0, "x|a,b\n", ""},
		{"double_dash_ends_flags", []string{"bundle", "sign", "--", "-id"}, nil, 0, "|-id\n", ""},
		{"unknown_flag", []string{"bundle", "sign", "--nope"}, nil, 2, "", "prog: bundle sign: unknown flag: --nope (see --help)\n"},
		{"unknown_command", []string{"frobnicate"}, nil, 2, "", `prog: unknown command "frobnicate" (see prog --help)` + "\n"},
		{"usage_error", []string{"bundle", "sign"}, Usagef("want %s", "X"), 2, "", "prog: bundle sign: want X (see --help)\n"},
		{"failure", []string{"bundle", "sign"}, errors.New("open key: no such file\nsecond line"), 1, "", "prog: bundle sign: open key: no such file second line\n"},
		{"documented_status", []string{"bundle", "sign"}, &ExitError{Code: 3, Msg: "2 items remain"}, 3, "", "prog: bundle sign: 2 items remain\n"},
		{"help", []string{"bundle", "sign", "--help"}, nil, 0, "Usage: prog bundle sign [--flag V] ARGS...", ""},
		{"command_list", []string{"--help"}, nil, 0, "Usage: prog <command>", ""},
		{"no_command", nil, nil, 2, "", "Usage: prog <command>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds := []Command{&echo{name: "bundle sign", err: tc.err}, &echo{name: "bundle", err: tc.err}}
			var stdout, stderr bytes.Buffer
			code := Main("prog", cmds, false, tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("Main(%q) = %d, want %d (stderr %q)", tc.args, code, tc.wantCode, stderr.String())
			}
			check := func(what, got, want string) {
				if strings.HasPrefix(want, "Usage:") {
					if !strings.HasPrefix(got, want) {
						t.Errorf("Main(%q) %s = %q, want it to start with %q", tc.args, what, got, want)
					}
					return
				}
				if got != want {
					t.Errorf("Main(%q) %s = %q, want %q", tc.args, what, got, want)
				}
			}
			check("stdout", stdout.String(), tc.wantStdout)
			check("stderr", stderr.String(), tc.wantStderr)
		})
	}
}

// A single-command program names no command in its messages.
func TestMainSingle(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main("fieldtipd", []Command{&echo{name: "serve"}}, true, []string{"--nope"}, strings.NewReader(""), &stdout, &stderr)
	if code != 2 || stderr.String() != "fieldtipd: unknown flag: --nope (see --help)\n" {
		t.Errorf("Main(--nope) = %d, stderr %q; want 2 and a line without the command name", code, stderr.String())
	}
}

// A single-command program with other commands runs its first unless the
// arguments begin with another's name, which its messages then name; its
// help lists the others.
func TestMainDefaultCommand(t *testing.T) {
	for _, tc := range []struct {
		args                   []string
		wantCode               int
		wantStdout, wantStderr string
	}{
		{[]string{"--flag", "x", "a"}, 0, "serve:x|a\n", ""},
		{[]string{"backup", "--flag", "y"}, 0, "backup:y|\n", ""},
		{[]string{"a", "backup"}, 0, "serve:|a,backup\n", ""},
		{[]string{"backup", "--nope"}, 2, "", "fieldtipd: backup: unknown flag: --nope (see --help)\n"},
		{[]string{"--nope"}, 2, "", "fieldtipd: unknown flag: --nope (see --help)\n"},
		{[]string{"backup"}, 1, "", "fieldtipd: backup: refused \\x1b[2J\n"},
	} {
		var stdout, stderr bytes.Buffer
		serve := &named{echo: echo{name: "serve"}}
		backup := &named{echo: echo{name: "backup"}}
		if len(tc.args) == 1 && tc.args[0] == "backup" {
			backup.err = errors.New("refused \x1b[2J")
		}
		code := Main("fieldtipd", []Command{serve, backup}, true, tc.args, strings.NewReader(""), &stdout, &stderr)
		if code != tc.wantCode || stdout.String() != tc.wantStdout || stderr.String() != tc.wantStderr {
			t.Errorf("Main(%q) = %d, %q, %q; want %d, %q, %q", tc.args, code, stdout.String(), stderr.String(), tc.wantCode, tc.wantStdout, tc.wantStderr)
		}
	}
	var stdout bytes.Buffer
	Main("fieldtipd", []Command{&echo{name: "serve"}, &echo{name: "backup"}}, true, []string{"--help"}, strings.NewReader(""), &stdout, io.Discard)
	if !strings.Contains(stdout.String(), "Other commands") || !strings.Contains(stdout.String(), "  backup ") {
		t.Errorf("--help = %q, want it to list backup", stdout.String())
	}
}

// named is an echo that prints its name first.
type named struct{ echo }

func (c *named) Run(ctx context.Context, env *Env, args []string) error {
	if c.err != nil {
		return c.err
	}
	env.Stdout.Write([]byte(c.name + ":"))
	return c.echo.Run(ctx, env, args)
}

func TestPassphraseFile(t *testing.T) {
	env := &Env{}
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want string
		ok                  bool
	}{
		{"first_line", "secret words\nignored\n", "secret words", true},
		{"crlf", "secret words\r\n", "secret words", true},
		{"no_newline", "secret words", "secret words", true},
		{"spaces_kept", "  spaced  \n", "  spaced  ", true},
		{"empty", "\nsecond\n", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dir + "/" + tc.name
			if err := writeFile(p, tc.content); err != nil {
				t.Fatal(err)
			}
			got, err := env.Passphrase(p, "Passphrase", false)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("Passphrase(%q) = %q, %v; want %q, ok %v", tc.content, got, err, tc.want, tc.ok)
			}
		})
	}
	if _, err := env.Passphrase(dir+"/missing", "Passphrase", false); err == nil {
		t.Errorf("Passphrase(missing file) = nil error")
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
