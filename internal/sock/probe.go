// Package sock asks the kernel about one socket: whether its peer closed,
// reset or timed out, and how much of what was written the peer's kernel
// acknowledged (a unix socket's peer: read). It is reconn's system-call
// layer; package reconn decides what to do with the answers.
//
// Each platform file defines the same unexported names:
//
//	type sysProbe struct{ ... }        per-socket scratch space, so no call allocates
//	func (p *Probe) sense(fd uintptr)  runs the operations in p.op on fd
//	func setUserTimeout(fd uintptr, d time.Duration) error
//
// sense runs inside syscall.RawConn.Control, which only pins the
// descriptor. RawConn.Read would take the descriptor's read lock and
// honour read deadlines, so a pending Read would block the check and an
// expired read deadline would make a healthy connection look dead.
//
// The platforms: Linux answers both questions with one getsockopt
// (TCP_INFO: tcpi_state and tcpi_bytes_acked), and unix sockets with a
// peek and SIOCOUTQ; darwin peeks, asks TCP_CONNECTION_INFO for the state
// and SO_NWRITE for what is unacknowledged; FreeBSD peeks, reads the
// state from struct tcp_info and FIONWRITE; the other unix systems only
// peek; Windows asks SIO_TCP_INFO (Windows 10 1703 and later); js, wasip1
// and plan9 have no socket to ask.
package sock

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Health is what a probe learned about a connection.
type Health uint8

const (
	Healthy    Health = iota // established, or nothing says otherwise
	PeerClosed               // the peer sent FIN: it sends nothing more, but may go on reading
	Closing                  // this side sent FIN (FIN_WAIT, CLOSING, LAST_ACK, TIME_WAIT)
	Broken                   // reset, timed out, or closed
)

// stateHealth maps a TCP state to Health, given the platform's numbers for
// ESTABLISHED, CLOSE_WAIT and CLOSED. The other states follow a FIN from
// this side.
func stateHealth(s, established, closeWait, closed uint32) Health {
	switch s {
	case established:
		return Healthy
	case closeWait:
		return PeerClosed
	case closed:
		return Broken
	}
	return Closing
}

// Op selects what a probe asks; several may be combined.
type Op uint8

const (
	Peek  Op = 1 << iota // non-blocking 1-byte MSG_PEEK recv
	State                // TCP state from the kernel
	Acks                 // bytes acknowledged by the peer's kernel
	Init                 // bytes written on the socket before the caller took it
)

// Kind says what kind of socket a probe has underneath.
type Kind uint8

const (
	Other Kind = iota // no descriptor to ask about
	TCP
	Unix
)

// Result is what one run of a probe learned.
type Result struct {
	Health Health
	Acked  int64 // bytes of the caller's stream the peer's kernel acknowledged
	AckOK  bool  // Acked is valid
}

// A Probe asks the kernel about one socket. Init binds it to its socket;
// a Probe must not be copied after that. Run, Control, Watch and Unwatch
// are called by one goroutine at a time (for reconn, the holder of the
// right to write); MarkReset by any.
type Probe struct {
	raw  syscall.RawConn
	kind Kind
	fn   func(fd uintptr) // p.sense, bound once so that Run does not allocate

	op       Op
	sent     int64 // bytes written on the socket by the caller so far
	out      Result
	preamble int64 // from Init: bytes written before the caller took the socket

	// reset is set once a receive reported a reset, a peek or the
	// caller's Read: counts of pending bytes no longer tell what the
	// peer took.
	reset atomic.Bool

	watchFD int    // descriptor registered with the watcher, guarded by it; -1 if none
	notify  func() // what the watcher calls for this socket

	sys sysProbe
}

// Init binds p to nc's socket: a *net.TCPConn or *net.UnixConn. For any
// other connection, Run reports false.
func (p *Probe) Init(nc net.Conn) {
	p.watchFD = -1
	switch nc.(type) {
	case *net.TCPConn:
		p.kind = TCP
	case *net.UnixConn:
		p.kind = Unix
	default:
		return
	}
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		p.kind = Other
		return
	}
	p.raw = raw
	p.fn = p.sense
}

// Kind returns the kind of p's socket.
func (p *Probe) Kind() Kind { return p.kind }

// Run performs the operations in op on a socket that carried sent bytes
// of the caller's stream. It reports false when there is no descriptor
// to ask, or the descriptor is already closed. It does not allocate.
func (p *Probe) Run(op Op, sent int64) (Result, bool) {
	if p.raw == nil {
		return Result{}, false
	}
	p.op, p.sent = op, sent
	p.out = Result{}
	if p.raw.Control(p.fn) != nil {
		return Result{}, false
	}
	return p.out, true
}

// MarkReset records that a receive on the socket, outside the probe,
// reported a reset (ECONNRESET), which only the first receive after it
// does.
func (p *Probe) MarkReset() { p.reset.Store(true) }

// Control runs f on the socket's descriptor, for setup calls outside the
// Write path.
func (p *Probe) Control(f func(fd uintptr) error) error {
	if p.raw == nil {
		return nil
	}
	var ferr error
	if err := p.raw.Control(func(fd uintptr) { ferr = f(fd) }); err != nil {
		return err
	}
	return ferr
}

// SetUserTimeout sets how long written data may stay unacknowledged
// before the kernel drops the connection: TCP_USER_TIMEOUT on Linux,
// TCP_RXT_CONNDROPTIME on darwin, TCP_MAXRT on Windows; elsewhere it does
// nothing. The unit of the option (milliseconds on Linux, seconds
// elsewhere) rounds d up, and the largest value it takes caps it.
func (p *Probe) SetUserTimeout(d time.Duration) error {
	return p.Control(func(fd uintptr) error { return setUserTimeout(fd, d) })
}

// ackedFromTotal turns a count of acknowledged bytes since the socket
// opened into a count of the caller's own bytes, clamped to what was
// written.
func (p *Probe) ackedFromTotal(total int64) {
	a := total - p.preamble
	if a < 0 {
		a = 0
	}
	if a > p.sent {
		a = p.sent // the FIN, once acknowledged, counts one more
	}
	p.out.Acked, p.out.AckOK = a, true
}

// ackedFromPending turns a count of bytes still waiting in the send buffer
// into a count of the caller's own bytes acknowledged. Such counts are
// purged when the connection fails, so they are only taken from a socket
// that never reported a failure: a unix socket whose peer closed with
// data unread reports ECONNRESET once and reads 0 pending afterwards, as
// if the peer had read everything.
func (p *Probe) ackedFromPending(pending int64) {
	if p.reset.Load() {
		return
	}
	a := p.sent - pending
	if a < 0 {
		a = 0
	}
	p.out.Acked, p.out.AckOK = a, true
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
