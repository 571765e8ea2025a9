package cli

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is what --version prints: the program, the main module's version
// and the version-control revision it was built from, as the Go toolchain
// recorded them (debug.ReadBuildInfo), and the Go version. For example
//
//	newsdesk v0.0.0-20260512093000-3c4e855a1b2c+dirty (revision 3c4e855a1b2c…, modified, go1.26.8)
//
// A build outside a Git checkout (or with -buildvcs=false) has revision
// "unknown"; `go run` and `go build` in a checkout record it.
func Version(prog string) string {
	bi, _ := debug.ReadBuildInfo()
	return version(prog, bi)
}

func version(prog string, bi *debug.BuildInfo) string {
	v, rev, modified, goVersion := "(unknown)", "unknown", false, runtime.Version()
	if bi != nil {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	details := []string{"revision " + rev}
	if modified {
		details = append(details, "modified")
	}
	details = append(details, goVersion)
	return prog + " " + v + " (" + strings.Join(details, ", ") + ")"
}
