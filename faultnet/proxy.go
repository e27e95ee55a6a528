package faultnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// Direction selects the traffic a Proxy fault applies to.
type Direction int

const (
	// Upstream is the traffic from the client to the server.
	Upstream Direction = 1 << iota
	// Downstream is the traffic from the server to the client.
	Downstream
	// Both is Upstream and Downstream.
	Both = Upstream | Downstream
)

// String returns "upstream", "downstream" or "both".
func (d Direction) String() string {
	switch d {
	case Upstream:
		return "upstream"
	case Downstream:
		return "downstream"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// A Proxy forwards connections to a server that the test does not
// control, and breaks them on purpose. Each accepted connection is a link
// to a new connection to the upstream server; the event trace calls the
// link by its number as a connection.
//
// The proxy forwards bytes as they come, without framing or accounting.
// A half-close is propagated: when one side sends a FIN, the proxy sends
// one to the other. A reset or another error on one side ends the link
// and resets the other side. The fault methods apply to every open link.
//
// A Direction names the traffic a fault applies to: Upstream, from the
// client to the server, or Downstream.
//
// Multiple goroutines may invoke methods on a Proxy simultaneously.
type Proxy struct {
	endpoint
	upstream string
	links    []*link // open links, oldest first; guarded by mu
}

// ListenProxy announces on the local network address and forwards each
// connection it accepts to the upstream address, over the same network.
// The network must be "tcp", "tcp4", "tcp6" or "unix".
func ListenProxy(network, address, upstream string) (*Proxy, error) {
	p := &Proxy{upstream: upstream}
	if err := p.listen(network, address, p.add); err != nil {
		return nil, err
	}
	return p, nil
}

// NewProxy starts a Proxy on a free port of 127.0.0.1 that forwards to
// the TCP address upstream, and registers its Close with tb.Cleanup. It
// ends the test with tb.Fatal if it cannot listen.
func NewProxy(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	p, err := ListenProxy("tcp", "127.0.0.1:0", upstream)
	if err != nil {
		tb.Fatalf("faultnet: %v", err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// add takes over an accepted connection; mu is held.
func (p *Proxy) add(nc net.Conn, id int) {
	l := &link{id: id, p: p, client: nc, ready: make(chan struct{}), done: make(chan struct{})}
	l.pumps[0] = &pump{gate: newGate(nc), dir: Upstream}
	l.pumps[1] = &pump{gate: newGate(nil), dir: Downstream}
	p.links = append(p.links, l)
	p.wg.Go(l.run)
}

// Close closes the listener and every link, as a plain close, and waits
// for the proxy's goroutines to exit.
func (p *Proxy) Close() error {
	if !p.shut() {
		return nil
	}
	p.each(func(l *link) { l.end(EventClose, 0, false) })
	p.wg.Wait()
	return nil
}

func (p *Proxy) each(f func(*link)) {
	p.mu.Lock()
	links := append([]*link(nil), p.links...)
	p.mu.Unlock()
	for _, l := range links {
		f(l)
	}
}

// eachPump applies f to the pumps of every open link in direction d and
// records the event.
func (p *Proxy) eachPump(kind EventKind, d Direction, f func(*pump)) {
	p.each(func(l *link) {
		for _, pu := range l.pumps {
			if d&pu.dir != 0 {
				pu.mu.Lock()
				f(pu)
				pu.mu.Unlock()
			}
		}
		p.event(kind, l.id, nil)
	})
}

// FIN closes every link gracefully. The receivers of the traffic in d get
// a FIN at once (with Upstream, the server), the others right after the
// link has stopped forwarding.
func (p *Proxy) FIN(d Direction) { p.each(func(l *link) { l.end(EventFIN, d, false) }) }

// RST closes every link. The receivers of the traffic in d get a reset
// (with Upstream, the server), the others a FIN. Data the proxy holds is
// lost.
func (p *Proxy) RST(d Direction) { p.each(func(l *link) { l.end(EventRST, d, true) }) }

// HalfClose sends a FIN to the receivers of the traffic in d and stops
// forwarding it: with Upstream, the server reads EOF while the client's writes
// pile up unread in the proxy; with Downstream, the client reads EOF and
// can still write to the server.
func (p *Proxy) HalfClose(d Direction) {
	p.each(func(l *link) {
		<-l.ready
		var err error
		for _, pu := range l.pumps {
			if d&pu.dir != 0 && pu.dst != nil {
				pu.mu.Lock()
				pu.halt()
				pu.mu.Unlock()
				err = errors.Join(err, closeWrite(pu.dst))
			}
		}
		p.event(EventHalfClose, l.id, err)
	})
}

// Blackhole drops the traffic in direction d: it attaches the drop filter
// (see Conn.Blackhole) to the proxy's sockets that receive it. With
// Upstream, that is the socket facing the client, so that the client's
// packets are no longer acknowledged; with Downstream, the one facing the
// server. It has the same platform and privilege needs as
// Conn.Blackhole, and returns the errors of all links joined.
func (p *Proxy) Blackhole(d Direction) error {
	var errs []error
	p.each(func(l *link) {
		<-l.ready
		for _, nc := range l.sockets(d, false) {
			err := ErrUnsupported
			if tc, ok := nc.(*net.TCPConn); ok {
				if rc, rerr := tc.SyscallConn(); rerr == nil {
					err = attachDrop(rc)
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("faultnet: blackhole link %d: %w", l.id, err))
			}
		}
		p.event(EventBlackhole, l.id, nil)
	})
	return errors.Join(errs...)
}

// Stall makes every link read and throw away the traffic in direction d.
// The proxy's kernel still acknowledges it.
func (p *Proxy) Stall(d Direction) {
	p.eachPump(EventStall, d, func(pu *pump) { pu.stalled = true })
}

// Pause stops forwarding the traffic in direction d until Resume.
func (p *Proxy) Pause(d Direction) { p.eachPump(EventPause, d, (*pump).pause) }

// Resume undoes Pause for the traffic in direction d.
func (p *Proxy) Resume(d Direction) { p.eachPump(EventResume, d, (*pump).resume) }

// Latency delays every chunk of traffic in direction d by dur. Zero or
// a negative dur removes the delay.
func (p *Proxy) Latency(d Direction, dur time.Duration) {
	p.eachPump(EventLatency, d, func(pu *pump) { pu.latency = dur })
}

// CutAfter arms a cut: after n more bytes have been forwarded in
// direction d, the link is closed as FIN(Both) does, typically in the
// middle of a message. A negative n disarms the cut.
func (p *Proxy) CutAfter(d Direction, n int64) {
	p.eachPump(EventCutAfter, d, func(pu *pump) { pu.cut = n })
}

// Restart simulates a restart of the proxy: it refuses new connections,
// resets both sides of every link, and listens again on the same address
// after down, in the background (see Server.Restart).
func (p *Proxy) Restart(down time.Duration) error {
	return p.restart(down, func() { p.RST(Both) })
}

// A link is one proxied connection.
type link struct {
	id     int
	p      *Proxy
	client net.Conn
	server net.Conn // set before ready is closed
	pumps  [2]*pump // Upstream, Downstream
	ready  chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	closing bool
	kind    EventKind
	cause   error
}

// pump forwards one direction of a link.
type pump struct {
	gate
	dir Direction
	dst net.Conn
}

// pumpResult says how a pump ended.
type pumpResult struct {
	cut bool
	err error // a failure other than EOF
}

func (l *link) run() {
	defer close(l.done)
	d := net.Dialer{Timeout: 10 * time.Second}
	server, err := d.DialContext(l.p.ctx, l.p.network, l.p.upstream)
	if err != nil {
		close(l.ready)
		l.client.Close()
		l.finish(EventReadError, err)
		return
	}
	up, down := l.pumps[0], l.pumps[1]
	up.mu.Lock()
	up.dst = server
	up.mu.Unlock()
	down.mu.Lock()
	down.src, down.dst = server, l.client
	down.mu.Unlock()
	l.server = server
	close(l.ready)

	results := make(chan pumpResult, 2)
	for _, pu := range l.pumps {
		l.p.wg.Go(func() { results <- pu.run() })
	}
	for range l.pumps {
		switch r := <-results; {
		case r.cut:
			l.shutdown(EventCut, 0, false, nil)
		case r.err != nil:
			l.shutdown(EventReadError, Both, true, r.err)
		}
	}
	l.client.Close()
	l.server.Close()
	l.finish(EventPeerClosed, nil)
}

// finish records the end of the link.
func (l *link) finish(kind EventKind, cause error) {
	l.mu.Lock()
	if l.closing {
		kind, cause = l.kind, l.cause
	}
	l.mu.Unlock()
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range p.links {
		if o == l {
			p.links = append(p.links[:i], p.links[i+1:]...)
			break
		}
	}
	p.logLocked(kind, l.id, cause)
}

// shutdown claims the end of the link for kind, closes the sides in now
// (abortively if abort is set) and stops both pumps. It does not wait.
func (l *link) shutdown(kind EventKind, now Direction, abort bool, cause error) bool {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return false
	}
	l.closing, l.kind, l.cause = true, kind, cause
	l.mu.Unlock()
	for _, nc := range l.sockets(now, true) {
		if tc, ok := nc.(*net.TCPConn); ok && abort {
			tc.SetLinger(0)
		}
		nc.Close()
	}
	for _, pu := range l.pumps {
		pu.mu.Lock()
		pu.halt()
		if pu.dst != nil {
			pu.dst.SetWriteDeadline(time.Unix(1, 0)) // wake a blocked Write
		}
		pu.mu.Unlock()
	}
	return true
}

// sockets returns the link's sockets that carry the traffic in
// direction d: those receiving it if toward is set, else those it comes
// from. For example, sockets(Upstream, true) is the one facing the server.
func (l *link) sockets(d Direction, toward bool) []net.Conn {
	var s []net.Conn
	for _, pu := range l.pumps {
		switch {
		case d&pu.dir == 0:
		case toward && pu.dst != nil:
			s = append(s, pu.dst)
		case !toward && pu.src != nil:
			s = append(s, pu.src)
		}
	}
	return s
}

// end ends the link as shutdown does and waits until it is closed.
func (l *link) end(kind EventKind, now Direction, abort bool) {
	<-l.ready
	l.shutdown(kind, now, abort, nil)
	<-l.done
}

// run forwards until EOF, an error, a cut or a stop.
func (pu *pump) run() pumpResult {
	buf := make([]byte, 64<<10)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		n, err := pu.src.Read(buf)
		if n > 0 {
			pu.delay(timer)
		}
		pu.mu.Lock()
		pass, cut, ok := pu.admit(n)
		stalled := pu.stalled
		pu.mu.Unlock()
		if !ok {
			return pumpResult{}
		}
		if pass > 0 && !stalled {
			if _, werr := pu.dst.Write(buf[:pass]); werr != nil {
				if pu.stopped() {
					return pumpResult{}
				}
				return pumpResult{err: werr}
			}
		}
		switch {
		case cut:
			return pumpResult{cut: true}
		case err == nil || errors.Is(err, os.ErrDeadlineExceeded):
			continue
		case err == io.EOF:
			closeWrite(pu.dst) // propagate the half-close
			return pumpResult{}
		case pu.stopped():
			return pumpResult{}
		}
		return pumpResult{err: err}
	}
}

func (pu *pump) stopped() bool {
	pu.mu.Lock()
	defer pu.mu.Unlock()
	return pu.stopping
}

// closeWrite shuts down the sending side of nc.
func closeWrite(nc net.Conn) error {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return ErrUnsupported
}
