//go:build unix

package sock

import "golang.org/x/sys/unix"

// peek runs a 1-byte non-blocking MSG_PEEK recv on fd. Go's sockets are
// non-blocking, so the call returns at once. Bytes waiting mean the peer is
// alive and sending; but a FIN may be queued behind them, so callers ask for
// the TCP state where the platform has one. The bytes stay in the socket for
// the user's Read.
//
// An error is the socket's pending error, which the receive clears: a
// later peek returns 0 as for a FIN. peek records it in p.reset, so that
// counts of pending bytes, which the kernel purged with it, are not read
// as acknowledgements afterwards.
func (p *Probe) peek(fd uintptr) (h Health, data bool) {
	h, data = peekFD(fd, p.sys.peek[:])
	if h == Broken {
		p.reset.Store(true)
	}
	return h, data
}

func peekFD(fd uintptr, buf []byte) (h Health, data bool) {
	n, err := recvPeek(fd, buf)
	switch {
	case err == unix.EAGAIN || err == unix.EWOULDBLOCK || err == unix.EINTR:
		return Healthy, false
	case err != nil:
		// ECONNRESET, ETIMEDOUT, EPIPE: the kernel already knows.
		return Broken, false
	case n == 0:
		return PeerClosed, false
	default:
		return Healthy, true
	}
}
