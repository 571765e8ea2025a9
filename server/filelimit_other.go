//go:build !unix

package server

// openFileLimit: no limit this server knows of.
func openFileLimit() (uint64, bool) { return 0, false }
