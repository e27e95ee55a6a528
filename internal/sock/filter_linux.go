package sock

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// dropAll is a classic BPF program that accepts no packet.
var dropAll = []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

// DropIncoming attaches a filter to the socket that drops every packet
// it receives before TCP processes it (SO_ATTACH_FILTER): from then on
// the kernel acknowledges nothing more, so that what the socket holds
// unread is exactly what its peer was told arrived. It fails with
// errors.ErrUnsupported on other systems.
func DropIncoming(rc syscall.RawConn) error {
	prog := unix.SockFprog{Len: uint16(len(dropAll)), Filter: &dropAll[0]}
	return control(rc, "setsockopt SO_ATTACH_FILTER", func(fd int) error {
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
	})
}

// AcceptIncoming removes the filter DropIncoming attached, if any.
func AcceptIncoming(rc syscall.RawConn) error {
	err := control(rc, "setsockopt SO_DETACH_FILTER", func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
	})
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func control(rc syscall.RawConn, name string, f func(fd int) error) error {
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = f(int(fd)) }); err != nil {
		return err
	}
	return os.NewSyscallError(name, serr)
}
