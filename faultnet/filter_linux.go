package faultnet

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/reconn/reconn/internal/sock"
)

// attachDrop attaches a filter to the socket that drops every packet it
// receives, before TCP processes it: nothing is acknowledged any more.
func attachDrop(rc syscall.RawConn) error { return sock.DropIncoming(rc) }

// detachDrop removes the filter attached by attachDrop, if any.
func detachDrop(rc syscall.RawConn) error { return sock.AcceptIncoming(rc) }

// shutdownBoth shuts the socket down in both directions: it sends a FIN,
// and from then on the kernel answers new data with a reset instead of
// acknowledging it.
func shutdownBoth(rc syscall.RawConn) error {
	return setsockopt(rc, "shutdown", func(fd int) error {
		return unix.Shutdown(fd, unix.SHUT_RDWR)
	})
}

func setsockopt(rc syscall.RawConn, name string, f func(fd int) error) error {
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = f(int(fd)) }); err != nil {
		return err
	}
	return os.NewSyscallError(name, serr)
}

// acceptQueue returns how many connections wait in the accept queue of a
// listening socket: TCP_INFO's tcpi_unacked counts them for a socket in
// the LISTEN state (tcp_get_info, net/ipv4/tcp.c).
func acceptQueue(rc syscall.RawConn) (int, error) {
	var n int
	err := setsockopt(rc, "getsockopt TCP_INFO", func(fd int) error {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			n = int(info.Unacked)
		}
		return err
	})
	return n, err
}
