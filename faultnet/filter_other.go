//go:build !linux

package faultnet

import "syscall"

// attachDrop reports ErrUnsupported: socket filters are used on Linux only.
func attachDrop(syscall.RawConn) error { return ErrUnsupported }

// detachDrop reports ErrUnsupported: socket filters are used on Linux only.
func detachDrop(syscall.RawConn) error { return ErrUnsupported }
