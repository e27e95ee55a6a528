//go:build unix && !(linux || freebsd || netbsd || dragonfly)

package sock

import "golang.org/x/sys/unix"

// recvPeek calls recv with MSG_PEEK. On these systems system calls go
// through libc, and unix.Recvfrom allocates its sockaddr on each call.
func recvPeek(fd uintptr, buf []byte) (int, error) {
	n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_PEEK)
	return n, err
}
