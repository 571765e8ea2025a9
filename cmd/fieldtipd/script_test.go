package main

import (
	"testing"

	"fieldtip/internal/cli"
	"fieldtip/internal/testkit/scripttest"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain links fieldtipd into the test binary, so that the scripts run it
// in-process; scripttest builds the other two programs.
func TestMain(m *testing.M) { scripttest.Main(m, "fieldtipd", main) }

// TestScripts runs testdata/*.txt, one scenario of fieldtipd's command line
// each, with the commands internal/testkit/scripttest describes.
func TestScripts(t *testing.T) {
	scripttest.Run(t, testscript.Params{Dir: "testdata"})
}

// TestCommands checks what fieldtipd's commands say about themselves: usage
// lines and --help agree on what is required (cli.CheckCommands).
func TestCommands(t *testing.T) {
	if err := cli.CheckCommands(commands()); err != nil {
		t.Error(err)
	}
}
