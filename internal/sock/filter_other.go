//go:build !linux

package sock

import (
	"errors"
	"syscall"
)

// DropIncoming fails with errors.ErrUnsupported: socket filters are used
// on Linux only.
func DropIncoming(syscall.RawConn) error { return errors.ErrUnsupported }

// AcceptIncoming fails with errors.ErrUnsupported: socket filters are
// used on Linux only.
func AcceptIncoming(syscall.RawConn) error { return errors.ErrUnsupported }
