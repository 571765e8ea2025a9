package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// suggestCommand returns `, did you mean "NAME"?` for the command nearest
// to what args start with, or "" if none is near: within editDistance 2,
// and less than half the name (so "log" is not offered for "ls").
func suggestCommand(commands []Command, args []string) string {
	best, bestD := "", 3
	for _, c := range commands {
		name := c.Name()
		n := len(strings.Fields(name))
		if len(args) < n {
			continue
		}
		got := strings.Join(args[:n], " ")
		d := editDistance(got, name)
		if d < bestD && 2*d < len(name) {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(", did you mean %q?", best)
}

// suggestFlag returns `, did you mean --NAME?` when err is pflag's
// unknown-flag error and a flag of fs is near the one given.
func suggestFlag(fs *pflag.FlagSet, err error) string {
	given, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return ""
	}
	best, bestD := "", 3
	fs.VisitAll(func(f *pflag.Flag) {
		if d := editDistance(given, f.Name); d < bestD && 2*d < len(f.Name) {
			best, bestD = f.Name, d
		}
	})
	if best == "" {
		return ""
	}
	return ", did you mean --" + best + "?"
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// letters ("sycn" is one from "sync") each cost 1.
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	d := make([][]int, len(s)+1)
	for i := range d {
		d[i] = make([]int, len(t)+1)
		d[i][0] = i
	}
	for j := range t {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(s)][len(t)]
}
