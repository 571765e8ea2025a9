package cli

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Help text is wrapped to the width of the terminal it goes to; to
// $COLUMNS when it goes elsewhere (a pipe, a file) and that is set; and to
// defaultWidth otherwise. Below minWidth wrapping makes things worse.
const (
	defaultWidth = 80
	minWidth     = 40
)

// width returns the columns help text written to w may use.
func width(w io.Writer) int {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return max(cols, minWidth)
		}
	}
	if cols, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && cols > 0 {
		return max(cols, minWidth)
	}
	return defaultWidth
}

// wrap breaks text into lines of at most cols columns at spaces (a word
// longer than cols gets a line of its own), the first line starting after
// first columns already used, the others indented by indent spaces. Newlines
// in text start a new line.
func wrap(text string, first, indent, cols int) string {
	var b strings.Builder
	col := first
	for i, para := range strings.Split(text, "\n") {
		if i > 0 {
			b.WriteString("\n" + strings.Repeat(" ", indent))
			col = indent
		}
		lineStart := true
		for _, word := range strings.Fields(para) {
			n := len([]rune(word))
			if !lineStart && col+1+n > cols {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col, lineStart = indent, true
			}
			if !lineStart {
				b.WriteByte(' ')
				col++
			}
			b.WriteString(word)
			col += n
			lineStart = false
		}
	}
	return b.String()
}

// printCommands lists the commands (those of group only, if set).
func printCommands(w io.Writer, prog, group string, commands []Command) {
	cols := width(w)
	var cs []Command
	for _, c := range commands {
		if group == "" || strings.HasPrefix(c.Name(), group+" ") {
			cs = append(cs, c)
		}
	}
	slices.SortStableFunc(cs, func(a, b Command) int { return strings.Compare(a.Name(), b.Name()) })
	name := prog
	if group != "" {
		name += " " + group
	}
	fmt.Fprintf(w, "Usage: %s <command> [flags] [arguments]\n\nCommands:\n", name)
	nameCol := 16
	for _, c := range cs {
		nameCol = max(nameCol, len(c.Name()))
	}
	indent := 2 + nameCol + 1
	if cols-indent < minWidth/2 {
		indent = 6
	}
	for _, c := range cs {
		line := fmt.Sprintf("  %-*s ", nameCol, c.Name())
		if len(line) > indent {
			line = "  " + c.Name() + "\n" + strings.Repeat(" ", indent)
		}
		fmt.Fprintf(w, "%s%s\n", line, wrap(c.Summary(), indent, indent, cols))
	}
	fmt.Fprintf(w, "\n%s\n", wrap(fmt.Sprintf("Flags may come before or after arguments. Run %s <command> --help for its flags, %s --version for the version.", name, prog), 0, 0, cols))
}

// printUsage is a command's --help: its usage line, summary and flags.
func printUsage(w io.Writer, prog string, c Command, fs *pflag.FlagSet, single bool) {
	cols := width(w)
	name := prog
	if !single {
		name += " " + c.Name()
	}
	head := "Usage: " + name + " "
	indent := len(head)
	if cols-indent < minWidth/2 {
		indent = 4
	}
	fmt.Fprintf(w, "%s%s\n\n%s\n\nFlags:\n%s", head, wrapUsage(c.Usage(), len(head), indent, cols),
		wrap(c.Summary(), 0, 0, cols), flagUsages(fs, RequiredFlags(c.Usage()), cols))
}

// wrapUsage wraps a usage line at the spaces outside brackets, so that
// "[--tag T]" stays on one line.
func wrapUsage(usage string, first, indent, cols int) string {
	var parts []string
	depth, start := 0, 0
	for i, r := range usage {
		switch r {
		case '[':
			depth++
		case ']':
			depth--
		case ' ':
			if depth == 0 {
				parts = append(parts, usage[start:i])
				start = i + 1
			}
		}
	}
	parts = append(parts, usage[start:])
	for _, p := range parts {
		if indent+len(p) > cols {
			// A part does not fit beside the command's name: continue
			// under "Usage:" instead.
			indent = 4
		}
	}
	var b strings.Builder
	col := first
	for i, p := range parts {
		if p == "" {
			continue
		}
		if i > 0 && col+1+len(p) > cols && col > indent {
			b.WriteString("\n" + strings.Repeat(" ", indent))
			col = indent
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(p)
		col += len(p)
	}
	return b.String()
}

// flagUsages lists fs's flags as pflag does, with three differences: a
// boolean flag shows as --classic (pflag prints --classic[=true|false],
// which nobody types), a flag the usage line requires says "(required)",
// and descriptions wrap at cols.
func flagUsages(fs *pflag.FlagSet, required map[string]bool, cols int) string {
	type row struct{ left, desc string }
	var rows []row
	leftCol := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		varname, desc := pflag.UnquoteUsage(f)
		if f.Value.Type() == "bool" {
			varname = ""
		}
		if varname != "" {
			left += " " + varname
		}
		if !isZeroDefault(f) {
			if f.Value.Type() == "string" {
				desc += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				desc += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		if required[f.Name] && !handRequired.MatchString(desc) {
			desc += " (required)"
		}
		rows = append(rows, row{left, desc})
		leftCol = max(leftCol, len(left))
	})
	descCol := leftCol + 3
	below := cols-descCol < minWidth/2
	if below {
		// Too little room beside the flags: descriptions go below them.
		descCol = 10
	}
	var b strings.Builder
	for _, r := range rows {
		if below {
			fmt.Fprintf(&b, "%s\n%s%s\n", r.left, strings.Repeat(" ", descCol), wrap(r.desc, descCol, descCol, cols))
			continue
		}
		fmt.Fprintf(&b, "%-*s%s\n", descCol, r.left, wrap(r.desc, descCol, descCol, cols))
	}
	return b.String()
}

// isZeroDefault reports whether f's default is its type's zero value, which
// help does not print (as pflag does not).
func isZeroDefault(f *pflag.Flag) bool {
	switch f.DefValue {
	case "", "0", "0s", "false", "[]", "<nil>":
		return true
	}
	return false
}

// handRequired matches a flag description that says by hand that the flag
// is required: "(required)" or "(required; …)". "(required on first
// start)" is a condition, not a requirement of every run.
var handRequired = regexp.MustCompile(`\(required[);]`)

// usageFlag is a flag named in a usage line.
var usageFlag = regexp.MustCompile(`--[a-z0-9][a-z0-9-]*`)

// RequiredFlags returns the flags a usage line requires: those it names
// outside square brackets, unless the line offers alternatives (" | ",
// as in "[--data DIR] … | --dev"), where no flag is required of every run.
// Help marks these "(required)", so that the usage line and --help cannot
// disagree (issue 12).
func RequiredFlags(usage string) map[string]bool {
	req := map[string]bool{}
	var outside strings.Builder
	depth := 0
	for _, r := range usage {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			outside.WriteRune(r)
		}
	}
	if strings.Contains(outside.String(), " | ") {
		return req
	}
	for _, f := range usageFlag.FindAllString(outside.String(), -1) {
		req[strings.TrimPrefix(f, "--")] = true
	}
	return req
}

// CheckCommands checks what a program's commands say about themselves, for
// its tests: names are unique, a summary is one line, the usage line names
// only flags the command has, and no description says "(required)" of a
// flag the usage line does not require (help adds "(required)" from the
// usage line itself).
func CheckCommands(commands []Command) error {
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c.Name()] {
			return fmt.Errorf("two commands named %q", c.Name())
		}
		seen[c.Name()] = true
		if strings.Contains(c.Summary(), "\n") {
			return fmt.Errorf("%s: the summary is more than one line", c.Name())
		}
		fs := pflag.NewFlagSet(c.Name(), pflag.ContinueOnError)
		c.Flags(fs)
		fs.BoolP("help", "h", false, "")
		for _, f := range usageFlag.FindAllString(c.Usage(), -1) {
			if fs.Lookup(strings.TrimPrefix(f, "--")) == nil {
				return fmt.Errorf("%s: the usage line names %s, which the command does not have", c.Name(), f)
			}
		}
		required := RequiredFlags(c.Usage())
		var err error
		fs.VisitAll(func(f *pflag.Flag) {
			if err == nil && handRequired.MatchString(f.Usage) && !required[f.Name] {
				err = fmt.Errorf("%s: --%s says it is required, but the usage line %q has it optional", c.Name(), f.Name, c.Usage())
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// printOthers lists, after the first command's help, a single-command
// program's other commands.
func printOthers(w io.Writer, prog string, others []Command) {
	cols := width(w)
	fmt.Fprintf(w, "\n%s\n", wrap(fmt.Sprintf("Other commands (%s <command> --help for their flags):", prog), 0, 0, cols))
	indent := 2 + 16 + 1
	if cols-indent < minWidth/2 {
		indent = 6
	}
	for _, c := range others {
		line := fmt.Sprintf("  %-16s ", c.Name())
		if len(line) > indent {
			line = "  " + c.Name() + "\n" + strings.Repeat(" ", indent)
		}
		fmt.Fprintf(w, "%s%s\n", line, wrap(c.Summary(), indent, indent, cols))
	}
}
