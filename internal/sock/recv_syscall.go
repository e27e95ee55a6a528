//go:build linux || freebsd || netbsd || dragonfly

package sock

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvPeek calls recvfrom(2) with MSG_PEEK and no address. unix.Recvfrom
// would move its sockaddr to the heap on every call.
func recvPeek(fd uintptr, buf []byte) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_PEEK, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
