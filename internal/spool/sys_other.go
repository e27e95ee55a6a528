//go:build !unix && !windows

package spool

import "os"

// Supported reports whether spools work on this platform: not on js,
// wasip1 and plan9, which cannot map a file into memory.
const Supported = false

type mapHandle struct{}

func preallocate(f *os.File, size int64) error { return errUnsupported }
func mapFile(f *os.File, size int) ([]byte, mapHandle, error) {
	return nil, mapHandle{}, errUnsupported
}
func unmapFile(data []byte, m mapHandle) error            { return errUnsupported }
func syncFile(data []byte, m mapHandle, f *os.File) error { return errUnsupported }
func lockFile(f *os.File) error                           { return errUnsupported }

const renameWhileOpen = false
