package reconn

import (
	"net"
	"syscall"
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
	peerClosed               // the peer sent FIN; it may still be reading (draining)
	closing                  // a FIN is in flight or was exchanged, and the socket is not yet closed
	broken                   // reset, timed out, or closed
)

// stateHealth maps a TCP state to health, given the platform's numbers for
// ESTABLISHED, CLOSE_WAIT and CLOSED.
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

// probe asks the kernel about one socket. Its fields are inputs and outputs
// of sense; callers fill the inputs, call run, and read the outputs.
type probe struct {
	raw  syscall.RawConn
	kind sockKind
	fn   func(fd uintptr) // p.sense, bound once so run does not allocate

	// Inputs.
	op   int
	sent int64 // bytes written on the socket by reconn so far

	// Outputs.
	h        health
	acked    int64 // bytes of reconn's own stream the peer's kernel acknowledged
	ackOK    bool  // acked is valid
	preamble int64 // from opInit: bytes written before reconn took the socket

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

// run performs the operations in op. It reports false when there is no
// descriptor to ask, or the descriptor is already closed.
func (p *probe) run(op int) bool {
	if p.raw == nil {
		return false
	}
	p.op = op
	p.h = healthy
	p.ackOK = false
	return p.raw.Control(p.fn) == nil
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
	p.acked, p.ackOK = a, true
}

// ackedFromPending turns a count of bytes still waiting in the send buffer
// into a count of reconn's own bytes acknowledged. Such counts are purged
// when the connection fails, so they are only taken from a healthy socket.
func (p *probe) ackedFromPending(pending int64) {
	a := p.sent - pending
	if a < 0 {
		a = 0
	}
	p.acked, p.ackOK = a, true
}
