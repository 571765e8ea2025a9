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
	"sort"
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

// Main runs the program: it picks the subcommand from args (or the only
// command, when single is set), parses its flags and runs it with a context
// cancelled on SIGINT or SIGTERM. It returns the exit status.
func Main(prog string, commands []Command, single bool, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &Env{Prog: prog, Stdin: stdin, Stdout: stdout, Stderr: stderr}
	var cmd Command
	rest := args
	if single {
		cmd = commands[0]
	} else {
		if len(args) == 0 {
			printCommands(stderr, prog, commands)
			return 2
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			printCommands(stdout, prog, commands)
			return 0
		}
		for _, c := range commands {
			words := strings.Fields(c.Name())
			if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.Name() {
				cmd, rest = c, args[len(words):]
				break
			}
		}
		if cmd == nil {
			fmt.Fprintf(stderr, "%s: unknown command %q (see %s --help)\n", prog, strings.Join(args[:min(2, len(args))], " "), prog)
			return 2
		}
	}
	fs := pflag.NewFlagSet(prog+" "+cmd.Name(), pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	cmd.Flags(fs)
	help := fs.BoolP("help", "h", false, "show this help")
	// A single-command program's command has no name the user types.
	name := prog
	if !single {
		name += ": " + cmd.Name()
	}
	if err := fs.Parse(rest); err != nil {
		fmt.Fprintf(stderr, "%s: %v (see --help)\n", name, err)
		return 2
	}
	if *help {
		printUsage(stdout, prog, cmd, fs, single)
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
		fmt.Fprintf(stderr, "%s: %s (see --help)\n", name, usage.Msg)
		return 2
	case errors.As(err, &exit):
		if exit.Msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", name, exit.Msg)
		}
		return exit.Code
	default:
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err.Error()))
		return 1
	}
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func printCommands(w io.Writer, prog string, commands []Command) {
	fmt.Fprintf(w, "Usage: %s <command> [flags] [arguments]\n\nCommands:\n", prog)
	cs := append([]Command(nil), commands...)
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Name() < cs[j].Name() })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-16s %s\n", c.Name(), c.Summary())
	}
	fmt.Fprintf(w, "\nFlags may come before or after arguments. Run %s <command> --help for its flags.\n", prog)
}

func printUsage(w io.Writer, prog string, c Command, fs *pflag.FlagSet, single bool) {
	name := prog
	if !single {
		name += " " + c.Name()
	}
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n\nFlags:\n%s", name, c.Usage(), c.Summary(), fs.FlagUsages())
}

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
