//go:build unix && !aix

package faultnet

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// drain appends to dst what the kernel holds in the socket's receive
// queue, without blocking, until the queue is empty, the peer's FIN or an
// error is reached, or dst holds limit bytes.
func drain(rc syscall.RawConn, dst []byte, limit int) ([]byte, error) {
	var rerr error
	err := rc.Control(func(fd uintptr) {
		for len(dst) < limit {
			if cap(dst)-len(dst) < 16<<10 {
				dst = append(dst, make([]byte, 64<<10)...)[:len(dst)]
			}
			n, _, err := unix.Recvfrom(int(fd), dst[len(dst):cap(dst)], unix.MSG_DONTWAIT)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN || err == unix.EWOULDBLOCK:
				return
			case err != nil:
				rerr = os.NewSyscallError("recvfrom", err)
				return
			case n == 0:
				return
			}
			dst = dst[:len(dst)+n]
		}
	})
	if err != nil {
		return dst, err
	}
	return dst, rerr
}
