package faultnet_test

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reconn/reconn/faultnet"
)

// msgSize is the size of the messages the tests send.
const msgSize = 100

// testContext returns a context that bounds every wait of a test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a plain client to addr and closes it at the end of the test.
func dial(t *testing.T, addr net.Addr) *net.TCPConn {
	t.Helper()
	c, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// connected starts a server and connects one client to it.
func connected(t *testing.T) (*faultnet.Server, *net.TCPConn) {
	t.Helper()
	srv := faultnet.NewServer(t)
	c := dial(t, srv.Addr())
	if err := srv.WaitConns(testContext(t), 1); err != nil {
		t.Fatalf("WaitConns: %v", err)
	}
	return srv, c
}

// send writes the messages with the given sequence numbers in one write.
func send(t *testing.T, c net.Conn, f faultnet.Framing, seqs ...int) {
	t.Helper()
	var b []byte
	for _, q := range seqs {
		b = faultnet.AppendMessage(b, f, q, msgSize)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// span returns the numbers from a to b-1.
func span(a, b int) []int {
	s := make([]int, 0, b-a)
	for i := a; i < b; i++ {
		s = append(s, i)
	}
	return s
}

// finalReport closes the sending side of c, if c is not nil, waits
// until the server has accepted conns connections in all and the
// accounting of each is final, and returns the report for sent messages.
//
// conns must count every connection the client made to srv: WaitEOF
// waits only for accepted connections, and a client's connection may
// still wait in the listen backlog after its dial returned. Waiting for
// fewer would let the report miss a connection and its messages.
func finalReport(t *testing.T, srv *faultnet.Server, c *net.TCPConn, conns, sent int) faultnet.Report {
	t.Helper()
	if c != nil {
		c.CloseWrite()
	}
	if err := srv.WaitConns(testContext(t), conns); err != nil {
		t.Fatalf("WaitConns(%d): %v", conns, err)
	}
	if err := srv.WaitEOF(testContext(t)); err != nil {
		t.Fatalf("WaitEOF: %v", err)
	}
	return srv.Report(sent)
}

// control runs f on the socket's file descriptor.
func control(t *testing.T, c syscall.Conn, f func(fd int)) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatalf("SyscallConn: %v", err)
	}
	if err := rc.Control(func(fd uintptr) { f(int(fd)) }); err != nil {
		t.Fatalf("Control: %v", err)
	}
}

// peek is a non-blocking one-byte MSG_PEEK receive, as a client uses to
// check its connection.
func peek(t *testing.T, c *net.TCPConn) (n int, err error) {
	t.Helper()
	control(t, c, func(fd int) {
		n, _, err = unix.Recvfrom(fd, make([]byte, 1), unix.MSG_PEEK|unix.MSG_DONTWAIT)
	})
	return n, err
}

// waitPoll waits until the socket has one of the events (POLLERR and
// POLLHUP are always included) and returns the events it has.
func waitPoll(t *testing.T, c *net.TCPConn, events int16) int16 {
	t.Helper()
	var revents int16
	control(t, c, func(fd int) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		for {
			n, err := unix.Poll(fds, 10_000)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n == 0 {
				t.Errorf("poll = %d, %v; want an event", n, err)
			}
			revents = fds[0].Revents
			return
		}
	})
	return revents
}

// waitAcked waits until the server's kernel has acknowledged everything
// the client wrote. The kernel offers no event for it, so this polls.
func waitAcked(t *testing.T, c *net.TCPConn) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	ctx := testContext(t)
	for {
		var n int
		var err error
		control(t, c, func(fd int) { n, err = unix.IoctlGetInt(fd, unix.SIOCOUTQ) })
		if err != nil {
			t.Fatalf("SIOCOUTQ: %v", err)
		}
		if n == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%d bytes still unacknowledged", n)
		}
	}
}

// requireFilter skips the test unless socket filters may be attached.
func requireFilter(t *testing.T) {
	t.Helper()
	if euid := os.Geteuid(); euid != 0 {
		t.Skipf("needs root to attach socket filters; euid is %d", euid)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	defer unix.Close(fd)
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K}}
	fprog := unix.SockFprog{Len: 1, Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		t.Skipf("SO_ATTACH_FILTER not permitted: %v", err)
	}
}

// writeUntilError writes messages until a write fails, and returns the
// error. It fails the test if no write failed within limit.
func writeUntilError(t *testing.T, c net.Conn, limit time.Duration) error {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(limit))
	msg := faultnet.AppendMessage(nil, faultnet.Newline, 0, 1024)
	for {
		if _, err := c.Write(msg); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("writes still succeed after %v", limit)
			}
			return err
		}
	}
}
