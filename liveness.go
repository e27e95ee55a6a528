package reconn

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// The liveness layer asks the kernel about one socket. Each platform file
// (liveness_linux.go, liveness_darwin.go, liveness_freebsd.go,
// liveness_bsd.go, liveness_windows.go, liveness_other.go) defines the same
// unexported names:
//
//	type sysProbe struct{ ... }        per-socket scratch space, so no call allocates
//	func (p *probe) sense(fd uintptr)  runs the operations in p.op on fd
//	func setUserTimeout(fd uintptr, d time.Duration) error
//	const platformCheck CheckMode      what CheckDefault means here
//
// sense runs inside syscall.RawConn.Control, which only pins the descriptor.
// RawConn.Read would take the descriptor's read lock and honour read
// deadlines, so a pending Read would block the check and an expired read
// deadline would make a healthy connection look dead.

// health is what a check learned about a connection.
type health uint8

const (
	healthy    health = iota // established, or nothing says otherwise
	peerClosed               // the peer sent FIN: it sends nothing more, but may go on reading
	closing                  // this side sent FIN (FIN_WAIT, CLOSING, LAST_ACK, TIME_WAIT)
	broken                   // reset, timed out, or closed
)

// stateHealth maps a TCP state to health, given the platform's numbers for
// ESTABLISHED, CLOSE_WAIT and CLOSED. The other states follow a FIN from
// this side.
func stateHealth(s, established, closeWait, closed uint32) health {
	switch s {
	case established:
		return healthy
	case closeWait:
		return peerClosed
	case closed:
		return broken
	}
	return closing
}

// Operations for probe.sense; several may be combined.
const (
	opPeek  = 1 << iota // non-blocking 1-byte MSG_PEEK recv
	opState             // TCP state from the kernel
	opAcks              // bytes acknowledged by the peer's kernel
	opInit              // bytes written on the socket before reconn took it
)

// sockKind says what kind of socket a link has underneath.
type sockKind uint8

const (
	sockOther sockKind = iota // no descriptor reconn can ask about
	sockTCP
	sockUnix
)

// probeResult is what one run of a probe learned.
type probeResult struct {
	h     health
	acked int64 // bytes of reconn's own stream the peer's kernel acknowledged
	ackOK bool  // acked is valid
}

// probe asks the kernel about one socket. sense, which runs inside
// RawConn.Control through a closure bound once so that run does not
// allocate, reads its inputs from op and sent and leaves its result in out.
type probe struct {
	raw  syscall.RawConn
	kind sockKind
	fn   func(fd uintptr) // p.sense

	op       int
	sent     int64 // bytes written on the socket by reconn so far
	out      probeResult
	preamble int64 // from opInit: bytes written before reconn took the socket
	// reset is set once a receive reported a reset, a peek or the user's
	// Read: pending counts no longer tell what the peer took.
	reset atomic.Bool

	sys sysProbe
}

func (p *probe) init(nc net.Conn) {
	switch nc.(type) {
	case *net.TCPConn:
		p.kind = sockTCP
	case *net.UnixConn:
		p.kind = sockUnix
	default:
		return
	}
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		p.kind = sockOther
		return
	}
	p.raw = raw
	p.fn = p.sense
}

// run performs the operations in op on a socket that carried sent bytes
// of reconn's stream. It reports false when there is no descriptor to
// ask, or the descriptor is already closed.
func (p *probe) run(op int, sent int64) (probeResult, bool) {
	if p.raw == nil {
		return probeResult{}, false
	}
	p.op, p.sent = op, sent
	p.out = probeResult{}
	if p.raw.Control(p.fn) != nil {
		return probeResult{}, false
	}
	return p.out, true
}

// control runs f on the socket's descriptor, for setup calls outside the
// Write path.
func (p *probe) control(f func(fd uintptr) error) error {
	if p.raw == nil {
		return nil
	}
	var ferr error
	if err := p.raw.Control(func(fd uintptr) { ferr = f(fd) }); err != nil {
		return err
	}
	return ferr
}

// ackedFromTotal turns a count of acknowledged bytes since the socket
// opened into a count of reconn's own bytes, clamped to what was written.
func (p *probe) ackedFromTotal(total int64) {
	a := total - p.preamble
	if a < 0 {
		a = 0
	}
	if a > p.sent {
		a = p.sent // the FIN, once acknowledged, counts one more
	}
	p.out.acked, p.out.ackOK = a, true
}

// ackedFromPending turns a count of bytes still waiting in the send buffer
// into a count of reconn's own bytes acknowledged. Such counts are purged
// when the connection fails, so they are only taken from a socket that
// never reported a failure: a unix socket whose peer closed with data
// unread reports ECONNRESET once and reads 0 pending afterwards, as if
// the peer had read everything.
func (p *probe) ackedFromPending(pending int64) {
	if p.reset.Load() {
		return
	}
	a := p.sent - pending
	if a < 0 {
		a = 0
	}
	p.out.acked, p.out.ackOK = a, true
}

// ceilUnits returns d in whole units, rounded up, at least 1 and at most
// the largest C int, for socket options that take a count of units.
func ceilUnits(d, unit time.Duration) int {
	n := d / unit
	if d%unit != 0 {
		n++
	}
	return int(min(max(n, 1), 1<<31-1))
}
