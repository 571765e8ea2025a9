//go:build unix

package server

import "syscall"

// openFileLimit returns the process's open-file limit (the Go runtime
// raised the soft limit to the hard one at start), or false.
func openFileLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return uint64(r.Cur), true
}
