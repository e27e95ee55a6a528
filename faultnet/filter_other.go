//go:build !linux

package faultnet

import "syscall"

// attachDrop reports ErrUnsupported: socket filters are used on Linux only.
func attachDrop(syscall.RawConn) error { return ErrUnsupported }

// detachDrop reports ErrUnsupported: socket filters are used on Linux only.
func detachDrop(syscall.RawConn) error { return ErrUnsupported }

// shutdownBoth reports ErrUnsupported: the reset that Linux sends for
// data that arrives after a shutdown is not relied on elsewhere, and BSD
// systems discard what the socket holds when its receiving side is shut
// down, so the close is left as it is.
func shutdownBoth(syscall.RawConn) error { return ErrUnsupported }

// acceptQueue reports ErrUnsupported: the accept queue is read on Linux
// only.
func acceptQueue(syscall.RawConn) (int, error) { return 0, ErrUnsupported }
