// Package cli is the command-line frame shared by fieldtip's three
// programs: subcommands, flags on either side of positional arguments
// (spf13/pflag, which does not stop at the first positional as the standard
// flag package does), passphrase input, and the exit status chosen in one
// place (DESIGN.md §7): 0 success, 1 refusal or failure with one stderr line
// "prog: what: why", 2 usage error, or a command's documented status.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Env is what a command may touch of the process.
type Env struct {
	Prog   string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Command is one subcommand.
type Command interface {
	// Name is the subcommand's words, for example "bundle sign".
	Name() string
	// Usage is the synopsis after the program and subcommand names.
	Usage() string
	// Summary is one line saying what it does.
	Summary() string
	// Flags declares the command's flags on fs.
	Flags(fs *pflag.FlagSet)
	// Run runs the command with the positional arguments.
	Run(ctx context.Context, env *Env, args []string) error
}

// UsageError is a mistake in how the program was called: exit status 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ExitError carries a documented exit status other than 0, 1 and 2, with
// an optional message.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// Main runs the program: it picks the subcommand from args (or, when
// single is set, the first command unless args begin with another's
// name), parses its flags and runs it with a context cancelled on SIGINT
// or SIGTERM. It returns the exit status.
//
// Besides the commands, it answers --help (and -h, and help) with the list
// of commands, --version with the build's version (version.go), a group's
// first word alone ("newsdesk bundle") with the group's commands, and a
// mistyped command with the nearest one (suggest.go). Help text wraps at
// the terminal's width (help.go).
func Main(prog string, commands []Command, single bool, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &Env{Prog: prog, Stdin: stdin, Stdout: stdout, Stderr: stderr}
	var cmd Command
	rest := args
	named := !single
	if single {
		// The first command runs unless the arguments begin with the name
		// of another (fieldtipd serves; fieldtipd backup backs up).
		cmd = commands[0]
		if c, r := find(commands[1:], args); c != nil {
			cmd, rest, named = c, r, true
		}
	} else {
		if len(args) == 0 {
			printCommands(stderr, prog, "", commands)
			return 2
		}
		switch args[0] {
		case "-h", "--help", "help":
			printCommands(stdout, prog, "", commands)
			return 0
		case "--version":
			fmt.Fprintln(stdout, Version(prog))
			return 0
		}
		cmd, rest = find(commands, args)
		if cmd == nil {
			if group := groupOf(commands, args[0]); group != "" {
				// "newsdesk bundle" alone, or with --help: the group's
				// commands, as "newsdesk" alone lists all of them.
				if len(args) > 1 && (args[1] == "-h" || args[1] == "--help" || args[1] == "help") {
					printCommands(stdout, prog, group, commands)
					return 0
				}
				if len(args) == 1 || strings.HasPrefix(args[1], "-") {
					printCommands(stderr, prog, group, commands)
					return 2
				}
			}
			fmt.Fprintf(stderr, "%s: unknown command %q%s (see %s --help)\n", prog, typed(commands, args), suggestCommand(commands, args), prog)
			return 2
		}
	}
	fs := pflag.NewFlagSet(prog+" "+cmd.Name(), pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	cmd.Flags(fs)
	help := fs.BoolP("help", "h", false, "show this help")
	var version *bool
	if single && fs.Lookup("version") == nil {
		version = fs.Bool("version", false, "print the version and exit")
	}
	// A single-command program's command has no name the user types.
	name := prog
	if named {
		name += ": " + cmd.Name()
	}
	if err := fs.Parse(rest); err != nil {
		fmt.Fprintf(stderr, "%s: %s%s (see --help)\n", name, TerminalSafe(oneLine(err.Error())), suggestFlag(fs, err))
		return 2
	}
	if *help {
		printUsage(stdout, prog, cmd, fs, !named)
		if single && !named && len(commands) > 1 {
			printOthers(stdout, prog, commands[1:])
		}
		return 0
	}
	if version != nil && *version {
		fmt.Fprintln(stdout, Version(prog))
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.Run(ctx, env, fs.Args())
	var usage *UsageError
	var exit *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %s (see --help)\n", name, TerminalSafe(oneLine(usage.Msg)))
		return 2
	case errors.As(err, &exit):
		if exit.Msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", name, TerminalSafe(oneLine(exit.Msg)))
		}
		return exit.Code
	default:
		// The error may quote a server, a proxy or a tip (TerminalSafe).
		fmt.Fprintf(stderr, "%s: %s\n", name, TerminalSafe(oneLine(err.Error())))
		return 1
	}
}

// find returns the command args start with, the longest name first (so
// that "bundle sign" wins over a command "bundle"), and the rest of args.
func find(commands []Command, args []string) (Command, []string) {
	var best Command
	var n int
	for _, c := range commands {
		words := strings.Fields(c.Name())
		if len(words) > n && len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			best, n = c, len(words)
		}
	}
	return best, args[n:]
}

// groupOf returns word if it is the first word of a command of two or
// more words ("bundle" of "bundle sign"), or "".
func groupOf(commands []Command, word string) string {
	for _, c := range commands {
		if words := strings.Fields(c.Name()); len(words) > 1 && words[0] == word {
			return word
		}
	}
	return ""
}

// typed is the command the user typed, for a message: the first argument,
// and the second too if the first names a group.
func typed(commands []Command, args []string) string {
	if len(args) > 1 && groupOf(commands, args[0]) != "" {
		return args[0] + " " + args[1]
	}
	return args[0]
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// Passphrase returns a passphrase: the first line of file if file is set,
// otherwise asked on the terminal (twice when confirm is set). It never
// comes from a flag value or the environment (DESIGN.md §7).
func (env *Env) Passphrase(file, prompt string, confirm bool) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("passphrase file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			return "", fmt.Errorf("passphrase file %s: first line is empty", file)
		}
		return line, nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", errors.New("no terminal to ask for the passphrase: use --passphrase-file")
	}
	defer tty.Close()
	read := func(p string) (string, error) {
		fmt.Fprint(tty, p)
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return "", fmt.Errorf("read passphrase: %w", err)
		}
		return string(b), nil
	}
	p, err := read(prompt + ": ")
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", errors.New("empty passphrase")
	}
	if confirm {
		again, err := read("Repeat " + strings.ToLower(prompt[:1]) + prompt[1:] + ": ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errors.New("the passphrases differ")
		}
	}
	return p, nil
}
