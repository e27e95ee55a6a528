//go:build unix

package faultnet

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// A heldPort keeps a TCP port of a refusing endpoint: a socket bound to
// it that does not listen. Dials to the port are refused, as with nothing
// bound, but no listener on port 0, and no client whose kernel picks the
// port for its own end, can take it meanwhile (a program that binds this
// very port with SO_REUSEADDR still can); and listening again needs no
// new bind that might fail.
type heldPort struct{ fd int }

// holdPort binds a socket to addr, or returns nil where it cannot.
func holdPort(addr net.Addr) *heldPort {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil
	}
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip4 := ta.IP.To4(); ip4 != nil {
		sa4 := &unix.SockaddrInet4{Port: ta.Port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: ta.Port}
		copy(sa6.Addr[:], ta.IP.To16())
		sa = sa6
	}
	// Not every Unix has SOCK_CLOEXEC: keep a fork from inheriting the
	// socket before it is marked, as package net does.
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil
	}
	// The accepted connections still use the port: reuse it as the
	// listener did.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) != nil || unix.Bind(fd, sa) != nil {
		unix.Close(fd)
		return nil
	}
	return &heldPort{fd: fd}
}

// listen makes the held socket listen, and returns it as a listener; the
// held port is released either way.
func (h *heldPort) listen() (net.Listener, error) {
	defer h.release()
	if err := unix.Listen(h.fd, 4096); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	f := os.NewFile(uintptr(h.fd), "faultnet listener")
	ln, err := net.FileListener(f) // a copy of the descriptor
	f.Close()
	h.fd = -1
	return ln, err
}

// release closes the held socket.
func (h *heldPort) release() {
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}
