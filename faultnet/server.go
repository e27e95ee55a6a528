package faultnet

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// A Server is a stream server on a local address whose connections can be
// broken on purpose and which accounts for the framed messages it
// receives (see Report).
//
// The server only reads: it processes every complete frame as soon as it
// has read it and never writes to the client. The fault methods on Server
// apply to every connection open at the time of the call; those of the
// same names on Conn apply to one connection.
//
// Multiple goroutines may invoke methods on a Server simultaneously.
type Server struct {
	endpoint

	// Guarded by mu.
	framing Framing
	open    []*Conn // open connections, oldest first
	all     []*Conn // every accepted connection, oldest first
	nfinal  int     // connections whose accounting is final

	acctMu   sync.Mutex
	ledger   ledger
	received chan struct{} // if not nil, closed when frames are processed
}

// Listen announces on the local network address and starts accepting
// connections. The network must be "tcp", "tcp4", "tcp6" or "unix"; use
// port 0 for a free port, as in Listen("tcp", "127.0.0.1:0").
func Listen(network, address string) (*Server, error) {
	s := new(Server)
	if err := s.listen(network, address, s.add); err != nil {
		return nil, err
	}
	return s, nil
}

// NewServer starts a Server on a free port of 127.0.0.1 and registers its
// Close with tb.Cleanup. It ends the test with tb.Fatal if it cannot
// listen.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faultnet: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// add takes over an accepted connection; mu is held.
func (s *Server) add(nc net.Conn, id int) {
	c := newConn(s, id, nc, s.framing)
	s.open = append(s.open, c)
	s.all = append(s.all, c)
	s.wg.Go(c.run)
}

// SetFraming sets how the connections accepted from now on are split into
// messages. Call it before the first client connects.
func (s *Server) SetFraming(f Framing) {
	s.mu.Lock()
	s.framing = f
	s.mu.Unlock()
}

// Close closes the listener and every connection, as a plain close, and
// waits for the server's goroutines to exit. The accounting stays
// available.
func (s *Server) Close() error {
	if !s.shut() {
		return nil
	}
	for _, c := range s.Conns() {
		c.end(EventClose)
	}
	s.wg.Wait()
	return nil
}

// Conns returns the connections whose sockets are open, oldest first.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Conn(nil), s.open...)
}

// WaitReceived waits until the server has processed messages with n
// distinct sequence numbers, or ctx is done.
func (s *Server) WaitReceived(ctx context.Context, n int) error {
	for {
		s.acctMu.Lock()
		if s.ledger.processed.n >= n {
			s.acctMu.Unlock()
			return nil
		}
		if s.received == nil {
			s.received = make(chan struct{})
		}
		ch := s.received
		s.acctMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitEOF waits until the accounting of every accepted connection is
// final (see Conn.Done), so that Report counts everything, or ctx is
// done. A connection is final once it was read to EOF, failed, was closed
// by a fault or was blackholed; a paused or stalled connection that the
// client keeps open is not.
//
// A connection still waiting in the listen backlog has not been accepted
// and is not waited for: the client's kernel may already have it. Call
// WaitConns first with the number of connections the client made.
func (s *Server) WaitEOF(ctx context.Context) error {
	return s.wait(ctx, func() bool { return s.nfinal == len(s.all) })
}

// connEnded records the end of c's accounting, and of its socket if
// closed is set.
func (s *Server) connEnded(c *Conn, kind EventKind, exact, closed bool, cause error) {
	s.acctMu.Lock()
	c.rep.End = kind
	if !exact {
		c.rep.Exact = false
		s.ledger.inexact = true
	}
	s.acctMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if closed {
		for i, o := range s.open {
			if o == c {
				s.open = append(s.open[:i], s.open[i+1:]...)
				break
			}
		}
	}
	c.finalOnce.Do(func() {
		close(c.final)
		s.nfinal++
	})
	s.logLocked(kind, c.id, cause)
}

// consume processes the complete frames at the start of b for c, as
// stalled if stall is set, and returns the bytes they take.
func (s *Server) consume(c *Conn, b []byte, stall bool) int {
	d := processed
	if stall {
		d = stalled
	}
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	used := 0
	for {
		msg, n := c.framing.next(b[used:])
		if n == 0 {
			break
		}
		used += n
		if len(msg) == 0 {
			continue // an empty line, such as a newline after an octet-counted frame
		}
		seq, ok := ParseSeq(msg)
		s.ledger.record(&c.rep, &c.seq, d, seq, ok)
	}
	c.rep.Bytes += int64(used)
	if s.received != nil && used > 0 {
		close(s.received)
		s.received = nil
	}
	return used
}

// consumeUnread records the frames in b as unread for c, including a
// final incomplete frame whose sequence number is complete.
func (s *Server) consumeUnread(c *Conn, b []byte) {
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	c.rep.UnreadBytes += int64(len(b))
	for len(b) > 0 {
		msg, n := c.framing.next(b)
		var seq int
		var ok bool
		if n == 0 {
			var complete bool
			seq, complete, ok = parseSeq(b)
			ok = ok && complete
			n = len(b)
		} else {
			seq, ok = ParseSeq(msg)
		}
		s.ledger.record(&c.rep, &c.seq, unread, seq, ok)
		b = b[n:]
	}
}

// Report returns the accounting so far for sent messages with the
// sequence numbers 0 to sent-1. Call WaitEOF first for final counts.
func (s *Server) Report(sent int) Report {
	s.mu.Lock()
	all := append([]*Conn(nil), s.all...)
	s.mu.Unlock()
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	conns := make([]ConnReport, len(all))
	for i, c := range all {
		conns[i] = c.rep
	}
	return s.ledger.report(sent, conns)
}

// each applies f to every open connection.
func (s *Server) each(f func(*Conn)) {
	for _, c := range s.Conns() {
		f(c)
	}
}

// FIN applies Conn.FIN to every open connection.
func (s *Server) FIN() { s.each((*Conn).FIN) }

// HalfClose applies Conn.HalfClose to every open connection.
func (s *Server) HalfClose() { s.each((*Conn).HalfClose) }

// RST applies Conn.RST to every open connection.
func (s *Server) RST() { s.each((*Conn).RST) }

// RSTUnread applies Conn.RSTUnread to every open connection.
func (s *Server) RSTUnread() { s.each((*Conn).RSTUnread) }

// Stall applies Conn.Stall to every open connection.
func (s *Server) Stall() { s.each((*Conn).Stall) }

// Pause applies Conn.Pause to every open connection.
func (s *Server) Pause() { s.each((*Conn).Pause) }

// Resume applies Conn.Resume to every open connection.
func (s *Server) Resume() { s.each((*Conn).Resume) }

// Latency applies Conn.Latency to every open connection.
func (s *Server) Latency(d time.Duration) { s.each(func(c *Conn) { c.Latency(d) }) }

// CutAfter applies Conn.CutAfter to every open connection.
func (s *Server) CutAfter(n int64) { s.each(func(c *Conn) { c.CutAfter(n) }) }

// Blackhole applies Conn.Blackhole to every open connection and returns
// their errors joined. Connections accepted later are not blackholed.
func (s *Server) Blackhole() error {
	var errs []error
	s.each(func(c *Conn) { errs = append(errs, c.Blackhole()) })
	return errors.Join(errs...)
}

// Restart simulates a server restart: it refuses new connections, resets
// every open connection as RST does, and listens again on the same
// address after down, in the background. Wait for the end of the n-th
// Restart with WaitEvent(ctx, EventListening, n); if listening failed,
// that event holds the error. Close cancels a pending restart.
func (s *Server) Restart(down time.Duration) error {
	return s.restart(down, s.RST)
}
