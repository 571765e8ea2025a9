package server

import (
	"io/fs"
	"syscall"
	"time"
)

// accessTime returns a file's access time.
func accessTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Atim.Unix())
	}
	return fi.ModTime()
}
