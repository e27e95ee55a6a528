//go:build aix || illumos || solaris

package spool

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocate allocates size bytes of disk for f by writing zeros, so
// that a full disk shows here rather than as SIGBUS when a page of the
// mapping is first written.
func preallocate(f *os.File, size int64) error { return zeroFill(f, size) }

// lockFile takes an exclusive record lock on f (fcntl(2) F_SETLK; these
// systems have no flock in x/sys). Such a lock belongs to the process: the
// spool's registry of open directories keeps a second spool of the same
// process out.
func lockFile(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	return unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
}
