//go:build unix

package spool

import (
	"os"

	"golang.org/x/sys/unix"
)

// Supported reports whether spools work on this platform.
const Supported = true

// mapHandle is what unmapping needs besides the mapping: nothing here.
type mapHandle struct{}

// mapFile maps the first size bytes of f, shared and writable: what is
// copied into the mapping is in the page cache at once, which survives
// the process's death.
func mapFile(f *os.File, size int) ([]byte, mapHandle, error) {
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	return data, mapHandle{}, err
}

func unmapFile(data []byte, _ mapHandle) error { return unix.Munmap(data) }

// syncFile writes the mapping's dirty pages and f's data to the disk.
func syncFile(data []byte, _ mapHandle, f *os.File) error {
	if data != nil {
		if err := unix.Msync(data, unix.MS_SYNC); err != nil {
			return err
		}
	}
	return f.Sync()
}

// renameWhileOpen: a file may be renamed while it is open and mapped.
const renameWhileOpen = true
