package forward

import (
	"net"
	"syscall"

	"github.com/reconn/reconn/internal/sock"
)

// unreadNow freezes nc's socket and returns what it holds unread, without
// waiting; exact reports whether the freeze held, so that nothing more
// was acknowledged meanwhile.
func unreadNow(nc net.Conn) (b []byte, exact bool) {
	tc, ok := nc.(*net.TCPConn) // under TLS the bytes are records: not counted
	if !ok {
		return nil, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, false
	}
	exact = sock.DropIncoming(rc) == nil
	chunk := make([]byte, 64<<10)
	rc.Read(func(fd uintptr) bool {
		for {
			n, err := syscall.Read(int(fd), chunk)
			if n <= 0 || err != nil {
				return true // EAGAIN: nothing more, and no wait for it
			}
			b = append(b, chunk[:n]...)
		}
	})
	return b, exact
}
