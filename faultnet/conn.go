package faultnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

const (
	readSize   = 128 << 10 // the reader's first buffer
	maxFrame   = 16 << 20  // a larger frame is dropped as garbage
	drainLimit = 64 << 20  // the most a close reads from the kernel
)

// A Conn is the server side of one connection accepted by a Server.
//
// A goroutine reads the connection at full speed and processes each
// complete frame as it arrives: it records the frame's sequence number as
// received. The fault methods act on this connection alone; the Server
// methods of the same names apply them to every open connection.
//
// Faults that end the connection (FIN, RST, RSTUnread and an armed cut)
// do nothing on a connection that is already closed or closing. Multiple
// goroutines may invoke methods on a Conn simultaneously.
type Conn struct {
	id      int
	s       *Server
	nc      net.Conn
	rc      syscall.RawConn // nil if nc has none
	framing Framing

	faultMu sync.Mutex // serializes the faults that touch the socket

	gate              // guarded by gate.mu, with the following
	closing    bool   // someone has claimed the close of the socket
	blackholed bool   // the drop filter is attached
	leftover   []byte // what the reader had read but not processed when it stopped
	readerDone chan struct{}
	final      chan struct{} // closed when the accounting of the conn is final
	finalOnce  sync.Once

	// Guarded by s.acctMu.
	rep ConnReport
	seq connSeq
}

func newConn(s *Server, id int, nc net.Conn, f Framing) *Conn {
	c := &Conn{
		id:         id,
		s:          s,
		nc:         nc,
		framing:    f,
		gate:       newGate(nc),
		readerDone: make(chan struct{}),
		final:      make(chan struct{}),
		rep:        ConnReport{ID: id, Client: nc.RemoteAddr(), Exact: true},
	}
	if sc, ok := nc.(syscall.Conn); ok {
		c.rc, _ = sc.SyscallConn()
	}
	return c
}

// ID returns the connection's number: 1 for the first connection the
// server accepted, 2 for the next, and so on.
func (c *Conn) ID() int { return c.id }

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// NetConn returns the underlying connection, for writing to the client,
// for socket options or for addresses. Reading from it takes data away
// from the accounting, and closing it ends the connection as a read error.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Done returns a channel that is closed when the accounting of the
// connection is final: it was read to EOF, failed, was closed by a fault,
// or was blackholed.
func (c *Conn) Done() <-chan struct{} { return c.final }

// run is the connection's reader goroutine.
func (c *Conn) run() {
	kind, leftover, err := c.read()
	close(c.readerDone)
	switch kind {
	case EventCut:
		frozen := c.freeze()
		c.finish(EventCut, leftover, true, frozen, frozen, nil)
	case EventPeerClosed, EventReadError:
		c.finish(kind, nil, false, false, false, err)
	}
}

// read reads and processes until it is stopped, the peer closes, a read
// fails or an armed cut is reached. It returns the event that ended it if
// the reader is to close the socket, or eventNone if someone else does.
func (c *Conn) read() (EventKind, []byte, error) {
	buf := make([]byte, readSize)
	have := 0 // bytes of an incomplete frame at the start of buf
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if have == len(buf) {
			if len(buf) >= maxFrame {
				have = 0 // a frame this long is garbage: drop it
			} else {
				buf = append(buf, make([]byte, len(buf))...)
			}
		}
		n, err := c.nc.Read(buf[have:])
		if n > 0 {
			c.delay(timer)
		}
		c.mu.Lock()
		data := buf[:have+n]
		pass, cut, ok := c.admit(n)
		if !ok {
			c.leftover = data
			c.mu.Unlock()
			return eventNone, nil, nil
		}
		end := have + pass
		used := c.s.consume(c, data[:end], c.stalled)
		if !cut && (err == nil || errors.Is(err, os.ErrDeadlineExceeded)) {
			c.mu.Unlock()
			have = copy(buf, data[used:end])
			continue
		}
		claimed := !c.closing
		c.closing = true
		c.halt()
		c.mu.Unlock()
		switch {
		case !claimed:
			// The closer waits for readerDone and takes the leftover.
			c.mu.Lock()
			c.leftover = data[used:]
			c.mu.Unlock()
			return eventNone, nil, nil
		case cut:
			return EventCut, data[used:], nil
		case err == io.EOF:
			return EventPeerClosed, nil, nil
		}
		return EventReadError, nil, err
	}
}

// claim claims the close of the socket. It reports false if the
// connection is already closed or closing.
func (c *Conn) claim() (blackholed, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false, false
	}
	c.closing = true
	return c.blackholed, true
}

// stopReader makes the reader goroutine exit without processing anything
// more, waits for it, and returns what it had read but not processed.
func (c *Conn) stopReader() []byte {
	c.mu.Lock()
	c.halt()
	c.mu.Unlock()
	<-c.readerDone
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.leftover
	c.leftover = nil
	return b
}

// freeze attaches the drop filter, so that the kernel acknowledges
// nothing more, and reports whether it could.
func (c *Conn) freeze() bool {
	return c.tcp() && attachDrop(c.rc) == nil
}

// tcp reports whether the connection is a TCP socket that socket
// options can be set on.
func (c *Conn) tcp() bool {
	_, ok := c.nc.(*net.TCPConn)
	return ok && c.rc != nil
}

// end closes the connection for the fault kind. FIN and RST measure what
// is left unread.
func (c *Conn) end(kind EventKind) {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	blackholed, ok := c.claim()
	if !ok {
		return
	}
	measure := kind == EventFIN || kind == EventRST
	frozen, detach := blackholed, false
	if measure && !blackholed {
		frozen = c.freeze()
		detach = frozen && kind == EventFIN
	}
	leftover := c.stopReader()
	if kind == EventRSTUnread {
		// What the reader had taken from the socket is processed, as a
		// server processes what it has read: on a unix socket the
		// client counts it read from the moment it left the kernel,
		// and no client could learn that it was thrown away. A paused
		// or delayed server was holding it: that is discarded.
		c.mu.Lock()
		if !c.paused && c.latency <= 0 {
			c.s.consume(c, leftover, c.stalled)
		}
		c.mu.Unlock()
		leftover = nil
	}
	c.finish(kind, leftover, measure, frozen, detach, nil)
}

// finish closes the socket of a stopped connection. If measure is set,
// what the reader left unprocessed and what the kernel still holds is
// recorded as unread; the result is exact if the socket was frozen.
//
// For FIN and a cut, the socket is shut down in both directions before
// the close, where the system allows it: the peer gets the FIN, and the
// kernel answers data that arrives later with a reset instead of
// acknowledging it, so nothing is acknowledged that the close would
// destroy. What arrived before the shutdown is drained as unread. If
// detach is set, the drop filter is removed after the shutdown, so that
// the peer gets that reset for the data the filter dropped and for any
// it sends later.
func (c *Conn) finish(kind EventKind, leftover []byte, measure, frozen, detach bool, cause error) {
	exact := kind != EventRSTUnread
	if measure {
		unread := leftover
		if c.rc != nil {
			unread, _ = drain(c.rc, unread, drainLimit)
			if kind == EventFIN || kind == EventCut {
				if shutdownBoth(c.rc) == nil {
					unread, _ = drain(c.rc, unread, drainLimit)
				}
				if detach {
					detachDrop(c.rc)
				}
			}
		}
		c.s.consumeUnread(c, unread)
		exact = frozen
	}
	if kind == EventRST || kind == EventRSTUnread {
		if tc, ok := c.nc.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	c.nc.Close()
	c.s.connEnded(c, kind, exact, true, cause)
}

// FIN closes the connection gracefully, as a server's close does: the
// client sees a FIN, then a reset when data it sent after the FIN, or
// that the server's kernel had not acknowledged, reaches the server.
// Data the server's kernel acknowledged but the server had not processed
// is recorded as unread.
//
// To measure it, FIN freezes the socket with the drop filter and reads
// what the kernel holds, as RST does, then shuts the socket down in both
// directions while it is still frozen, and only then removes the filter
// and closes it. The kernel acknowledges nothing after the freeze, and
// after the shutdown it answers data with a reset instead of
// acknowledging it, so every message the client's kernel saw
// acknowledged is either processed or unread. The measurement is exact
// if the socket could be frozen, which needs the privilege that Blackhole
// needs; otherwise the report is marked inexact.
func (c *Conn) FIN() { c.end(EventFIN) }

// RST closes the connection abortively: the client sees a reset. First it
// freezes the socket with the drop filter (see Blackhole) if it can, stops
// processing, and reads what the kernel holds without processing it: the
// messages found there are recorded as unread. The measurement is exact
// only if the socket could be frozen, which needs the privilege that
// Blackhole needs; otherwise data that arrives between the read and the
// close is lost without being counted and the report is marked inexact.
func (c *Conn) RST() { c.end(EventRST) }

// RSTUnread closes the connection abortively and leaves the data the
// kernel holds unread, unmeasured: the report is marked inexact. What the
// server had already read from the socket it processes first, unless it
// is paused or has a latency.
func (c *Conn) RSTUnread() { c.end(EventRSTUnread) }

// HalfClose shuts down the sending side of the connection: the client
// reads EOF but can still write, and the server goes on reading and
// processing to EOF, as a draining server does.
func (c *Conn) HalfClose() {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return
	}
	c.s.event(EventHalfClose, c.id, closeWrite(c.nc))
}

// Blackhole attaches a socket filter that drops every packet the server
// receives on this connection, before TCP sees it. The server's kernel
// stops acknowledging, so the client retransmits until its own timeout
// (TCP_USER_TIMEOUT, or about 15 minutes on Linux by default) and its
// writes succeed until its send buffer is full; a client reset does not
// get through either. What the kernel had acknowledged before is
// processed at once, even if the connection is paused, and then the
// accounting of the connection is final. The socket stays open until
// another fault or Close ends it. Contrast Stall, which still
// acknowledges.
//
// Blackhole works on Linux TCP connections only; elsewhere it returns an
// error that wraps ErrUnsupported. It needs CAP_NET_ADMIN (root, or a
// user and network namespace); without it the error satisfies
// errors.Is(err, os.ErrPermission).
func (c *Conn) Blackhole() error {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.mu.Lock()
	done := c.closing || c.blackholed
	c.mu.Unlock()
	if done {
		return nil
	}
	err := ErrUnsupported
	if c.tcp() {
		err = attachDrop(c.rc)
	}
	if err != nil {
		return fmt.Errorf("faultnet: blackhole conn %d: %w", c.id, err)
	}
	c.mu.Lock()
	c.blackholed = true
	c.mu.Unlock()
	data, _ := drain(c.rc, c.stopReader(), drainLimit)
	c.mu.Lock()
	stalled := c.stalled
	c.mu.Unlock()
	c.s.consume(c, data, stalled)
	c.s.connEnded(c, EventBlackhole, true, false, nil)
	return nil
}

// Stall makes the server read and throw away everything the connection
// receives from now on. The kernel still acknowledges the data, so the
// client cannot tell; the messages thrown away count as stalled, not
// received. Contrast Blackhole, which stops the acknowledgements.
func (c *Conn) Stall() { c.set(EventStall, func() { c.stalled = true }) }

// Pause stops reading the connection until Resume: the kernel's receive
// buffer fills, then its window closes and the client's writes block.
// Nothing is processed after Pause returns.
func (c *Conn) Pause() { c.set(EventPause, c.pause) }

// Resume undoes Pause.
func (c *Conn) Resume() { c.set(EventResume, c.resume) }

// Latency delays the processing of every chunk the server reads by d.
// Zero or a negative d removes the delay.
func (c *Conn) Latency(d time.Duration) { c.set(EventLatency, func() { c.latency = d }) }

// CutAfter arms a cut: after n more bytes have been read, the server
// processes the complete frames among them and closes the connection as
// FIN does, typically in the middle of a message. The client sees what
// FIN shows it. The rest of the message and what the kernel holds are
// recorded as unread, measured as FIN measures them and exact under the
// same condition. If n is zero, the cut comes with the next data read,
// none of it processed; a negative n disarms the cut.
func (c *Conn) CutAfter(n int64) { c.set(EventCutAfter, func() { c.cut = n }) }

// set changes the reader's settings and records the event, unless the
// connection is closing.
func (c *Conn) set(kind EventKind, f func()) {
	c.mu.Lock()
	closing := c.closing
	if !closing {
		f()
	}
	c.mu.Unlock()
	if !closing {
		c.s.event(kind, c.id, nil)
	}
}
