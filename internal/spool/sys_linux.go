package spool

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocate allocates size bytes of disk for f (fallocate(2)), so that
// a full disk shows here, as ENOSPC, rather than as SIGBUS when a page of
// the mapping is first written. A signal can interrupt fallocate (EINTR:
// the runtime's preemption signal did, in an emulated guest where it runs
// long); it is then called again, which allocates what is left, since
// blocks already allocated stay as they are.
func preallocate(f *os.File, size int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		if err != unix.EINTR {
			return err
		}
	}
}

// lockFile takes an exclusive lock on f that another open file, in this
// process or another, cannot take while it is held (flock(2)); it fails
// at once if the lock is held.
func lockFile(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
}

// madvPopulateWrite is MADV_POPULATE_WRITE (include/uapi/asm-generic/mman-common.h),
// Linux 5.14 and later; x/sys does not define it.
const madvPopulateWrite = 23

// prefault faults in b's pages for writing (madvise MADV_POPULATE_WRITE);
// an older kernel refuses, and the pages fault in as they are written.
func prefault(b []byte) { unix.Madvise(b, madvPopulateWrite) }
