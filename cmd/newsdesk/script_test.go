package main

import (
	"testing"

	"fieldtip/internal/cli"
	"fieldtip/internal/testkit/scripttest"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain links newsdesk into the test binary, so that the scripts run it
// in-process; scripttest builds the other two programs. Key files the
// scripts make use scrypt work factor 10 (a key file names its own), so
// that each command opens its key in milliseconds, not a second; the
// scripts of internal/e2e run the default.
func TestMain(m *testing.M) {
	testOnlyWorkFactor = 10
	scripttest.Main(m, "newsdesk", main)
}

// TestScripts runs testdata/*.txt, one scenario of newsdesk's command line
// each, with the commands internal/testkit/scripttest describes.
func TestScripts(t *testing.T) {
	scripttest.Run(t, testscript.Params{Dir: "testdata"})
}

// TestCommands checks what newsdesk's commands say about themselves: usage
// lines and --help agree on what is required (cli.CheckCommands).
func TestCommands(t *testing.T) {
	if err := cli.CheckCommands(commands()); err != nil {
		t.Error(err)
	}
}
