// Package proto lets a protocol with acknowledgements from the server
// application, such as RELP (package relp), run on reconn's redial and
// replay: the Conn keeps its replay buffer, backoff and bounds, and the
// protocol frames each message and tells which the server answered.
package proto

import (
	"context"
	"net"
	"time"
)

// A Protocol starts a session on each connection of a Conn.
type Protocol interface {
	// Open starts a session on nc, which the Conn has just dialed (TLS
	// included), bounded by ctx. It may write to nc and read from it
	// until the session is up; afterwards only Session.Run reads.
	Open(ctx context.Context, nc net.Conn) (Session, error)

	// MaxMessage is the longest message a session carries; a longer
	// Write fails with reconn.ErrTooLarge.
	MaxMessage() int
}

// A DialObserver is a Protocol that learns how each dial attempt of its
// Conn ended: Dialed is called once per attempt, from the goroutine that
// dialed, with nil once the session is open, or with the error of the
// connect, the TLS handshake or Open. It must not block.
type DialObserver interface {
	Dialed(err error)
}

// A KernelAcked protocol asks its server for no answers: its sessions'
// messages count as delivered once the server's kernel has acknowledged
// the bytes of their frames, as a Conn without a protocol counts them,
// and where the platform counts no acknowledgements, once written. A
// session's Run then only watches for the connection's end, and its
// Window does not bound what waits (the replay buffer does). KernelAcked
// is asked once, when the Conn is made.
type KernelAcked interface {
	KernelAcked() bool
}

// A Session is one protocol session over one connection. The Conn calls
// Append and Close from the goroutine that writes, and Run from a
// goroutine of its own.
type Session interface {
	// Append appends to dst the frame of msg, the n-th message of the
	// session (1 for the first), and returns the extended slice.
	Append(dst []byte, n int64, msg []byte) []byte

	// Finish appends to dst what ends the frames appended since the last
	// Finish, before the Conn writes dst: a protocol that packs several
	// messages into one request (package forward) closes it here; one
	// that frames each message alone returns dst.
	Finish(dst []byte) []byte

	// Run reads the server's frames until the session ends, and returns
	// why. It calls acked(n) once messages 1 to n of the session have
	// been answered, in order, and refused(n, err) for a message the
	// server answered with an error, before the acked call that covers
	// it.
	Run(nc net.Conn, acked func(n int64), refused func(n int64, err error)) error

	// Window is the most messages that may wait for their answers.
	Window() int

	// Limit is the most messages one session may carry; the Conn moves
	// to a new session before.
	Limit() int64

	// Close ends the session, after message n, as the protocol does,
	// bounded by ctx.
	Close(ctx context.Context, nc net.Conn, n int64) error
}

// Dial is set by package reconn: it dials as reconn.Dialer.DialContext
// does, with d a *reconn.Dialer, and returns a *reconn.Conn that speaks p.
var Dial func(ctx context.Context, d any, p Protocol, network, address string) (net.Conn, error)

// Bound makes the end of ctx end the reads and writes whose deadline set
// sets (a net.Conn's SetDeadline or SetWriteDeadline), until the returned
// release is called: set(ctx's deadline) at once if ctx has one, and
// set(a time long past) once ctx ends. release stops that, waits for a
// set that ctx's end began, and reports whether ctx touched the deadline,
// so that the caller can put it back as it must be. It is the one way
// this module turns a context into the bound of a connection's I/O: a
// session's Open and Close (package relp) and the Conn's own writes use
// it.
func Bound(ctx context.Context, set func(time.Time) error) (release func() (touched bool)) {
	dl, hasDL := ctx.Deadline()
	if hasDL {
		set(dl)
	}
	cut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cut)
		set(longAgo)
	})
	return func() bool {
		if !stop() {
			<-cut
			return true
		}
		return hasDL
	}
}

// BoundConn bounds one exchange of a session on nc (its Open, its Close)
// by ctx, as Bound does with nc's SetDeadline, and clears nc's deadline
// once done is called: the session's reader reads without one.
func BoundConn(ctx context.Context, nc net.Conn) (done func()) {
	release := Bound(ctx, nc.SetDeadline)
	return func() {
		release()
		nc.SetDeadline(time.Time{})
	}
}

// longAgo is a deadline that has passed: setting it ends the I/O under
// way at once.
var longAgo = time.Unix(1, 0)
