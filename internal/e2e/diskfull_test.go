//go:build linux

package e2e

import (
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// setFileSizeLimit sets the RLIMIT_FSIZE of process pid (prlimit(2)): a
// write that would take any file of the process past max bytes fails with
// EFBIG, as a full disk fails it with ENOSPC. A size-limited file system
// needs privileges; this needs none.
func setFileSizeLimit(t *testing.T, pid int, max uint64) {
	t.Helper()
	lim := struct{ cur, max uint64 }{max, ^uint64(0)}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, uintptr(unsafe.Pointer(&lim)), 0, 0, 0); e != 0 {
		t.Fatalf("prlimit(%d, RLIMIT_FSIZE, %d): %v", pid, max, e)
	}
}

// Issue 11: a server out of room refuses uploads with a typed error
// (busy: try again later), loses nothing it acknowledged, and takes them
// again once there is room. The room is taken away with RLIMIT_FSIZE on
// the fieldtipd process: no file may grow at all.
func TestDiskFull(t *testing.T) {
	d := newDesk(t)
	srv := d.start(t)
	pid := srv.cmd.Process.Pid
	send := func(config, text string, want int) (string, string) {
		t.Helper()
		run(t, d.dir, "", 0, "fieldtip", "compose", "--config", config, "--codename-file", config+".codename", "--text", text)
		return run(t, d.dir, "", want, "fieldtip", "send", "--config", config, "--codename-file", config+".codename")
	}
	for _, c := range []string{"a", "b"} {
		run(t, d.dir, "", 0, "fieldtip", "init", "--config", c, "--server", srv.URL, "--newsroom", d.newsroom)
	}
	out, _ := send("a", "stored before the disk filled", 0)
	before := tipID(t, out)

	setFileSizeLimit(t, pid, 1)
	out, errOut := send("b", "sent while the disk is full", 3)
	if out != "" || !strings.Contains(errOut, "the server has no room to store this now; try again later (busy)") {
		t.Errorf("fieldtip send to a full server: stdout %q, stderr:\n%s\nwant the typed refusal and the tip kept", out, errOut)
	}
	// The editor still reads what was stored, from a server that is up.
	cache := "alice-cache"
	pulled, _ := run(t, d.dir, "", 0, "newsdesk", "pull", "--server", srv.URL, "--key", "alice.key", "--passphrase-file", d.pass, "--cache", cache)
	if pulled != before+"\n" {
		t.Errorf("newsdesk pull from the full server printed %q, want %s", pulled, before)
	}

	setFileSizeLimit(t, pid, ^uint64(0))
	out, _ = run(t, d.dir, "", 0, "fieldtip", "send", "--config", "b", "--codename-file", "b.codename")
	after := tipID(t, out)
	read, _ := d.readTip(t, srv.URL, after)
	if !strings.Contains(read, "sent while the disk is full") {
		t.Errorf("the tip sent again once there was room reads:\n%s", read)
	}
	if !strings.Contains(srv.stderr.String(), "no room to write") {
		t.Errorf("fieldtipd did not log the full disk:\n%s", srv.stderr.String())
	}
	if err := srv.stop(t); err != nil {
		t.Errorf("fieldtipd after SIGTERM: %v", err)
	}
}
