//go:build unix

package main

import (
	"net"
	"syscall"
)

// drainNow appends to dst what nc's socket holds unread at this moment,
// without waiting for more: the socket is non-blocking, and the reads
// end at EAGAIN.
func drainNow(nc net.Conn, dst []byte) []byte {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return drainQuiet(nc, dst)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return drainQuiet(nc, dst)
	}
	chunk := make([]byte, 64<<10)
	rc.Read(func(fd uintptr) bool {
		for len(dst) < maxRequest {
			n, err := syscall.Read(int(fd), chunk)
			if n <= 0 || err != nil {
				break
			}
			dst = append(dst, chunk[:n]...)
		}
		return true
	})
	return dst
}
