//go:build linux

package main

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY returns the two ends of a new pseudo-terminal: what newsdesk
// writes to the second, the first reads.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock pty: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("pty number: %v", e)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// TestTableHeaderOnTerminal: on a terminal a listing gets a header line
// and aligned columns (issue 12); into a pipe or file, tab-separated rows
// and no header, for scripts.
func TestTableHeaderOnTerminal(t *testing.T) {
	master, tty := openPTY(t)
	tb := newTable(tty, "ID", "DAY", "TEXT")
	tb.row("abc", "2026-03-14", "first")
	tb.row("a-much-longer-id", "2026-03-15", "second")
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	got, _ := io.ReadAll(master) // ends with EIO once the tty is closed
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(got), "\r\n", "\n"), "\n"), "\n")
	want := []string{
		"ID                DAY         TEXT",
		"abc               2026-03-14  first",
		"a-much-longer-id  2026-03-15  second",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("on a terminal:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	var buf bytes.Buffer
	tb = newTable(&buf, "ID", "DAY", "TEXT")
	tb.row("abc", "2026-03-14", "first")
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "abc\t2026-03-14\tfirst\n" {
		t.Errorf("into a buffer: %q, want tab-separated and no header", buf.String())
	}
}
