package reconn

import (
	"errors"
	"net"
	"strconv"
)

// ErrRedialLimit is wrapped by the error of a Write, Flush or Close that
// gave up after waiting Dialer.RedialTimeout for a connection to come
// back. The same error also wraps the last dial error. Test for it with
// errors.Is.
var ErrRedialLimit = errors.New("reconn: redial limit reached")

// ErrTooLarge is wrapped by the error of a Write whose message cannot fit
// in Dialer.ReplayBuffer. Test for it with errors.Is.
var ErrTooLarge = errors.New("reconn: message larger than the replay buffer")

// ErrBufferFull is wrapped by the error of a Write that found the replay
// buffer full when Dialer.FailWhenFull is set. The message was not taken.
// Test for it with errors.Is.
var ErrBufferFull = errors.New("reconn: replay buffer full")

// ErrPeerClosed and ErrPeerReset are the causes recorded when a check
// found that the peer had sent a FIN and is leaving (see the package
// documentation), or had reset the connection (or it timed out). They
// appear in RedialEvent.Cause and Stats.LastError; test for them with
// errors.Is.
var (
	ErrPeerClosed = errors.New("reconn: peer closed the connection")
	ErrPeerReset  = errors.New("reconn: connection reset or timed out")
)

// ErrSpoolInUse is wrapped by the error of a DialContext whose
// Dialer.SpoolDir another Conn, in this process or another, is using.
// Test for it with errors.Is.
var ErrSpoolInUse = errors.New("reconn: the spool directory is in use by another Conn")

// SpoolDamageError describes damaged records that a Conn found in its
// spool (see Dialer.SpoolDir) and skipped: their messages were not sent.
// It is passed to Dialer.OnSpoolDamage and recorded as Stats.LastError.
type SpoolDamageError struct {
	File     string // the spool's file
	Offset   int64  // where the damage begins in it
	Messages int    // the messages skipped, as the records' sequence numbers tell; 0 if unknown
}

func (e *SpoolDamageError) Error() string {
	s := "reconn: damaged spool data skipped in " + e.File + " at offset " + itoa(e.Offset)
	if e.Messages > 0 {
		s += " (" + itoa(int64(e.Messages)) + " messages)"
	}
	return s
}

// UnconfirmedError is returned, wrapped in a *net.OpError, by Close and
// Flush when they gave up before the peer's kernel had acknowledged every
// message written. Test for it with errors.As.
type UnconfirmedError struct {
	Messages int   // messages not acknowledged
	Bytes    int64 // their bytes
	Err      error // why the wait ended
}

func (e *UnconfirmedError) Error() string {
	return "reconn: " + itoa(int64(e.Messages)) + " messages (" + itoa(e.Bytes) + " bytes) unconfirmed: " + e.Err.Error()
}

// Unwrap returns the reason the wait ended.
func (e *UnconfirmedError) Unwrap() error { return e.Err }

// redialError is the error of a call that gave up after a dial or a write
// failed.
type redialError struct {
	cause    error // why the call stopped
	last     error // the last dial or write error
	attempts int
}

func (e *redialError) Error() string {
	s := e.cause.Error()
	if e.attempts > 0 {
		s += " after " + itoa(int64(e.attempts)) + " dial attempts"
	}
	return s + ": " + e.last.Error()
}

func (e *redialError) Unwrap() []error { return []error{e.cause, e.last} }

// Timeout reports whether a deadline ended the call: the write deadline,
// or the deadline of the context given to Flush.
func (e *redialError) Timeout() bool { return isTimeout(e.cause) }

// errLinkDied tells a waiting Write that the link died meanwhile.
var errLinkDied = errors.New("reconn: link died")

// errNoRead is the error of Read in a protocol with answers: the
// session's reader has the connection.
var errNoRead = errors.New("reconn: Read: the protocol reads the server's answers itself")

// errSessionFull is what retired a link whose protocol session reached
// its limit of messages.
var errSessionFull = errors.New("reconn: the protocol session reached its limit")

// errNotConnected is the error of a placeholder link's Read and Write.
var errNotConnected = errors.New("reconn: not connected yet")

// writeError is the error a Write returns for err: net.ErrClosed once
// Close has begun, a socket's own *net.OpError as it is, and anything else
// wrapped in a *net.OpError.
func (c *Conn) writeError(err error) error {
	if c.closed.Load() && !errors.Is(err, net.ErrClosed) {
		err = net.ErrClosed
	}
	if _, ok := err.(*net.OpError); ok {
		return err
	}
	return c.opError("write", err)
}

// opError wraps err as net does, naming the current connection.
func (c *Conn) opError(op string, err error) error {
	l := c.cur.Load()
	return &net.OpError{Op: op, Net: c.cfg.network, Source: l.nc.LocalAddr(), Addr: l.nc.RemoteAddr(), Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
