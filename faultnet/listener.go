package faultnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// ErrUnsupported is returned, wrapped, by faults that the platform or
// the kind of socket cannot produce: Blackhole, DropSYN and AcceptSYN
// outside Linux or on Unix domain sockets. It wraps errors.ErrUnsupported;
// test for it with errors.Is.
var ErrUnsupported = fmt.Errorf("faultnet: not supported on this platform or socket: %w", errors.ErrUnsupported)

// endpoint is what Server and Proxy share: the listener, the trace and
// the goroutines.
type endpoint struct {
	network string
	addr    net.Addr
	// handle takes over an accepted connection. It is called with mu
	// held and must not block.
	handle func(nc net.Conn, id int)

	lnMu       sync.Mutex // serializes the listener's changes
	ln         net.Listener
	acceptDone chan struct{}
	held       *heldPort // the port, while refusing

	mu       sync.Mutex
	accepted int
	trace    []Event
	counts   map[EventKind]int
	changed  chan struct{} // closed and replaced whenever the state changes
	closed   bool
	quit     chan struct{} // closed by shut
	ctx      context.Context
	cancel   context.CancelFunc // cancels ctx; called by shut
	wg       sync.WaitGroup
}

// listen starts the endpoint on a local address.
func (e *endpoint) listen(network, address string, handle func(net.Conn, int)) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return fmt.Errorf("faultnet: network %q not supported", network)
	}
	ln, err := listen(network, address)
	if err != nil {
		return err
	}
	e.network, e.addr, e.handle = network, ln.Addr(), handle
	e.counts = make(map[EventKind]int)
	e.changed = make(chan struct{})
	e.quit = make(chan struct{})
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.serve(ln)
	return nil
}

// listen listens with plain TCP: Linux rejects socket filters on
// Multipath TCP sockets, which Go uses for listeners by default.
func listen(network, address string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), network, address)
}

// Addr returns the listening address. It stays the same across Refuse,
// Accept and Restart.
func (e *endpoint) Addr() net.Addr { return e.addr }

// serve starts accepting on ln. The caller holds lnMu or is listen.
func (e *endpoint) serve(ln net.Listener) {
	done := make(chan struct{})
	e.ln, e.acceptDone = ln, done
	e.wg.Go(func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				return
			}
			e.mu.Lock()
			if e.closed {
				nc.Close()
			} else {
				e.accepted++
				e.logLocked(EventAccepted, e.accepted, nil)
				e.handle(nc, e.accepted)
			}
			e.mu.Unlock()
		}
	})
}

// shut marks the endpoint closed and closes the listener. It reports
// false if the endpoint was already closed.
func (e *endpoint) shut() bool {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return false
	}
	e.closed = true
	close(e.quit)
	e.cancel()
	e.mu.Unlock()
	e.closeListener()
	e.releasePort()
	return true
}

// closeListener closes the listener, if any, and waits for the accept
// loop to exit. It reports whether there was one. Unless the endpoint is
// closing, it keeps the port (see heldPort) for Accept.
func (e *endpoint) closeListener() bool {
	e.lnMu.Lock()
	defer e.lnMu.Unlock()
	if e.ln == nil {
		return false
	}
	e.drainQueue()
	e.ln.Close()
	<-e.acceptDone
	e.ln = nil
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if !closed {
		e.held = holdPort(e.addr)
	}
	return true
}

// drainQueue lets the accept loop take every connection whose handshake
// completed before the listener closes: closing it would reset them
// unaccepted, and the client, whose dial succeeded, would count a
// connection the server never had. New handshakes stop completing first
// (the drop filter). Where the filter or the queue's length is not
// available (not Linux), or the queue does not empty within a second,
// the listener closes as it is. lnMu is held.
func (e *endpoint) drainQueue() {
	tl, ok := e.ln.(*net.TCPListener)
	if !ok {
		return
	}
	rc, err := tl.SyscallConn()
	if err != nil || attachDrop(rc) != nil {
		return
	}
	limit := time.NewTimer(time.Second)
	defer limit.Stop()
	for {
		// Each accept is logged, which closes changed: take it before
		// looking at the queue, so that no accept goes unseen.
		e.mu.Lock()
		changed := e.changed
		e.mu.Unlock()
		if n, err := acceptQueue(rc); err != nil || n == 0 {
			return
		}
		select {
		case <-changed:
		case <-limit.C:
			return
		}
	}
}

// releasePort gives up the port held while refusing, when the endpoint
// closes.
func (e *endpoint) releasePort() {
	e.lnMu.Lock()
	defer e.lnMu.Unlock()
	if e.held != nil {
		e.held.release()
		e.held = nil
	}
}

// Trace returns the events so far, oldest first.
func (e *endpoint) Trace() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.trace...)
}

// WaitConns waits until n connections have been accepted in total since
// Listen, those accepted before a Refuse or Restart included, or ctx is
// done. A client's dial returns when the handshake is complete, which
// may be before the server accepts the connection: wait for every
// connection the client made before applying a fault to it or calling
// WaitEOF.
func (e *endpoint) WaitConns(ctx context.Context, n int) error {
	return e.wait(ctx, func() bool { return e.accepted >= n })
}

// WaitEvent waits until the trace holds at least n events of the given
// kind, about any connection or the listener, or ctx is done. For
// example, WaitEvent(ctx, EventListening, 1) waits for the end of the
// first Restart, and WaitEvent(ctx, EventPeerClosed, 2) for two clients
// to have closed.
func (e *endpoint) WaitEvent(ctx context.Context, kind EventKind, n int) error {
	return e.wait(ctx, func() bool { return e.counts[kind] >= n })
}

// wait waits until cond, called with mu held, is true.
func (e *endpoint) wait(ctx context.Context, cond func() bool) error {
	for {
		e.mu.Lock()
		ok, ch := cond(), e.changed
		e.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// event records an event.
func (e *endpoint) event(kind EventKind, conn int, err error) {
	e.mu.Lock()
	e.logLocked(kind, conn, err)
	e.mu.Unlock()
}

func (e *endpoint) logLocked(kind EventKind, conn int, err error) {
	e.trace = append(e.trace, Event{Time: time.Now(), Kind: kind, Conn: conn, Err: err})
	e.counts[kind]++
	close(e.changed)
	e.changed = make(chan struct{})
}

// Refuse closes the listener: new dials fail with ECONNREFUSED. On Linux,
// connections that completed their handshake before are accepted first,
// as by a server that stops listening, so that every dial that succeeded
// is a connection the server had; elsewhere they are reset unaccepted.
// Open connections are not touched. Refuse does nothing if the listener
// is already closed. On Unix systems the endpoint keeps its TCP port
// meanwhile (a socket bound to it that does not listen), so that no
// listener on port 0 and no connecting socket takes it before Accept; a
// program that binds that very port with SO_REUSEADDR still can.
func (e *endpoint) Refuse() error {
	if e.closeListener() {
		e.event(EventRefused, 0, nil)
	}
	return nil
}

// Accept listens again on the same address after Refuse. It does nothing
// if the listener is open. Where the port was not kept (see Refuse), it
// fails if another program has taken the address meanwhile.
func (e *endpoint) Accept() error {
	e.lnMu.Lock()
	defer e.lnMu.Unlock()
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	if e.ln != nil {
		return nil
	}
	var ln net.Listener
	var err error
	if e.held != nil {
		ln, err = e.held.listen()
		e.held = nil
	} else {
		ln, err = listen(e.network, e.addr.String())
	}
	if err == nil {
		e.serve(ln)
	}
	e.event(EventListening, 0, err)
	return err
}

// restart is Refuse, rst, and Accept after down in the background.
func (e *endpoint) restart(down time.Duration, rst func()) error {
	e.event(EventRestart, 0, nil)
	if err := e.Refuse(); err != nil {
		return err
	}
	rst()
	e.wg.Go(func() {
		t := time.NewTimer(down)
		defer t.Stop()
		select {
		case <-t.C:
			e.Accept()
		case <-e.quit:
		}
	})
	return nil
}

// DropSYN attaches the drop filter (see Conn.Blackhole) to the listening
// socket: handshakes are not answered and dials time out. Open
// connections are not touched. AcceptSYN, Refuse and Restart end it.
//
// DropSYN has the same platform and privilege needs as Blackhole, and
// fails if the listener is closed.
func (e *endpoint) DropSYN() error {
	return e.filterListener(EventDropSYN, attachDrop)
}

// AcceptSYN removes the filter attached by DropSYN.
func (e *endpoint) AcceptSYN() error {
	return e.filterListener(EventAcceptSYN, detachDrop)
}

func (e *endpoint) filterListener(kind EventKind, f func(syscall.RawConn) error) error {
	e.lnMu.Lock()
	defer e.lnMu.Unlock()
	if e.ln == nil {
		return fmt.Errorf("faultnet: %s: not listening", kind)
	}
	err := ErrUnsupported
	if tl, ok := e.ln.(*net.TCPListener); ok {
		var rc syscall.RawConn
		if rc, err = tl.SyscallConn(); err == nil {
			err = f(rc)
		}
	}
	if err != nil {
		return fmt.Errorf("faultnet: %s: %w", kind, err)
	}
	e.event(kind, 0, nil)
	return nil
}
