//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package spool

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocate allocates size bytes of disk for f by writing zeros (these
// systems have no fallocate(2) in x/sys), so that a full disk shows here
// rather than as SIGBUS when a page of the mapping is first written.
func preallocate(f *os.File, size int64) error { return zeroFill(f, size) }

// lockFile takes an exclusive lock on f that another open file, in this
// process or another, cannot take while it is held (flock(2)); it fails
// at once if the lock is held.
func lockFile(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
}
