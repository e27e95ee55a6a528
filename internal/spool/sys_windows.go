package spool

import (
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Supported reports whether spools work on this platform.
const Supported = true

// mapHandle is the file mapping object and the view's address.
type mapHandle struct {
	h    windows.Handle
	addr uintptr
}

// preallocate sets f's size; NTFS allocates the blocks of a file that is
// not sparse, so a full disk shows here.
func preallocate(f *os.File, size int64) error { return f.Truncate(size) }

// mapFile maps the first size bytes of f, shared and writable
// (CreateFileMapping, MapViewOfFile): what is copied into the view is in
// the system's cache at once, which survives the process's death.
func mapFile(f *os.File, size int) ([]byte, mapHandle, error) {
	h, err := windows.CreateFileMapping(windows.Handle(f.Fd()), nil, windows.PAGE_READWRITE, uint32(uint64(size)>>32), uint32(size), nil)
	if err != nil {
		return nil, mapHandle{}, os.NewSyscallError("CreateFileMapping", err)
	}
	addr, err := windows.MapViewOfFile(h, windows.FILE_MAP_WRITE, 0, 0, uintptr(size))
	if err != nil {
		windows.CloseHandle(h)
		return nil, mapHandle{}, os.NewSyscallError("MapViewOfFile", err)
	}
	return unsafe.Slice((*byte)(unsafe.Add(nil, addr)), size), mapHandle{h, addr}, nil
}

func unmapFile(_ []byte, m mapHandle) error {
	err := windows.UnmapViewOfFile(m.addr)
	windows.CloseHandle(m.h)
	return err
}

// syncFile writes the view's dirty pages and f's data to the disk.
func syncFile(data []byte, m mapHandle, f *os.File) error {
	if data != nil {
		if err := windows.FlushViewOfFile(m.addr, uintptr(len(data))); err != nil {
			return err
		}
	}
	return f.Sync()
}

// lockFile takes an exclusive lock on f's first byte (LockFileEx), which
// another handle, in this process or another, cannot take while it is
// held; it fails at once if the lock is held.
func lockFile(f *os.File) error {
	var ol windows.Overlapped
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
}

// renameWhileOpen: Windows renames no file that is open without
// FILE_SHARE_DELETE, which os.OpenFile does not ask for.
const renameWhileOpen = false
