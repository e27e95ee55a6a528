package reconn_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn/faultnet"
)

// The test servers of this package, besides faultnet's: one loopback TCP
// server that the tests and benchmarks configure, here, and a TLS server
// whose unread data can be measured, in servers_linux_test.go. faultnet.Server is the one to use
// where a test breaks connections and accounts for what arrived; this one
// serves what faultnet does not: reading as fast as possible (the
// benchmarks), never answering a TLS handshake, half-closing at accept,
// waiting for a gate, answering a protocol.

// A mode says what a testServer does with each connection.
type mode int

const (
	discard mode = iota // read and count the bytes as fast as possible; answer nothing
	lines               // count the sequence numbers of newline-framed messages
	answer              // answer lineProtocol's messages "n text" with "n", counting the texts
)

// serverOptions configure a testServer. The zero value discards.
type serverOptions struct {
	mode mode
	// halfClose shuts down the sending side of each connection at accept
	// (a receiver that never sends), or halfCloseAfter later.
	halfClose      bool
	halfCloseAfter time.Duration
	// gated servers read nothing until openGate.
	gated bool
	// control, if set, runs on the listening socket (accepted sockets
	// inherit its options).
	control func(network, address string, rc syscall.RawConn) error
	// addr is the address to listen on; a free port of 127.0.0.1 if
	// empty.
	addr string
	// verify, in lines mode, checks each message against what
	// faultnet.AppendMessage makes for its sequence number, and counts
	// the others in invalid.
	verify bool
}

// testServer is a loopback TCP server that serves each connection in a
// goroutine of its own, as its options say. Its accounting is read under
// mu, and wait waits for a change of it.
type testServer struct {
	ln   net.Listener
	opt  serverOptions
	gate chan struct{}
	wg   sync.WaitGroup

	bytes atomic.Int64  // read in all
	more  chan struct{} // a token after each read, for awaitBytes

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	conns    []net.Conn
	got      map[int]int    // lines: times each sequence number arrived
	order    []int          // lines: the sequence numbers in the order they arrived
	invalid  int            // lines with verify: messages that are not what their sequence number says
	texts    map[string]int // answer: times each text arrived
	accepted int
	ended    int
	gateOpen bool
}

// newTestServer starts a testServer on a free port of 127.0.0.1 and stops
// it when the test ends: it closes the listener and every connection, and
// waits for its goroutines.
func newTestServer(tb testing.TB, opt serverOptions) *testServer {
	tb.Helper()
	lc := net.ListenConfig{Control: opt.control}
	lc.SetMultipathTCP(false) // compare plain TCP with plain TCP
	addr := opt.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	s := &testServer{
		ln:      ln,
		opt:     opt,
		gate:    make(chan struct{}),
		more:    make(chan struct{}, 1),
		changed: make(chan struct{}),
		got:     make(map[int]int),
		texts:   make(map[string]int),
	}
	if !opt.gated {
		s.openGate()
	}
	s.wg.Go(s.accept)
	tb.Cleanup(s.close)
	return s
}

func (s *testServer) addr() net.Addr { return s.ln.Addr() }

func (s *testServer) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.update(func() {
			s.accepted++
			s.conns = append(s.conns, nc)
		})
		s.wg.Go(func() { s.serve(nc) })
	}
}

func (s *testServer) serve(nc net.Conn) {
	defer s.update(func() { s.ended++ })
	defer nc.Close()
	if s.opt.halfClose {
		if s.opt.halfCloseAfter > 0 {
			// Read on meanwhile, so that the FIN comes after the peer's
			// kernel acknowledged a message.
			t := time.AfterFunc(s.opt.halfCloseAfter, func() { nc.(*net.TCPConn).CloseWrite() })
			defer t.Stop()
		} else {
			nc.(*net.TCPConn).CloseWrite()
		}
	}
	<-s.gate
	switch s.opt.mode {
	case discard:
		buf := make([]byte, 256<<10)
		for {
			n, err := nc.Read(buf)
			s.bytes.Add(int64(n))
			select {
			case s.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	case lines:
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return // a partial line is not a message
			}
			seq, ok := faultnet.ParseSeq(line)
			if ok && s.opt.verify && !bytes.Equal(line, faultnet.AppendMessage(nil, faultnet.Newline, seq, len(line))) {
				ok = false
			}
			if !ok {
				s.update(func() { s.invalid++ })
				continue
			}
			s.update(func() {
				s.got[seq]++
				s.order = append(s.order, seq)
			})
		}
	case answer:
		r := bufio.NewScanner(nc)
		for r.Scan() {
			line := r.Text()
			i := 0
			for i < len(line) && line[i] != ' ' {
				i++
			}
			if _, err := strconv.Atoi(line[:i]); err != nil || i == len(line) {
				return
			}
			s.update(func() { s.texts[line[i+1:]]++ })
			if _, err := nc.Write([]byte(line[:i] + "\n")); err != nil {
				return
			}
		}
	}
}

// update changes the server's state under its lock and wakes waiters.
func (s *testServer) update(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait waits until cond, called with the lock held, is true.
func (s *testServer) wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
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

// awaitBytes waits until the server has read n bytes in all.
func (s *testServer) awaitBytes(tb testing.TB, n int64) {
	tb.Helper()
	for s.bytes.Load() < n {
		select {
		case <-s.more:
		case <-time.After(time.Minute):
			tb.Fatalf("the server read %d of %d bytes", s.bytes.Load(), n)
		}
	}
}

// openGate lets a gated server read.
func (s *testServer) openGate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.gateOpen {
		s.gateOpen = true
		close(s.gate)
	}
}

// hangUp closes every connection accepted so far.
func (s *testServer) hangUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, nc := range s.conns {
		nc.Close()
	}
}

// stop stops accepting and waits until every connection reached its end.
func (s *testServer) stop(tb testing.TB) {
	tb.Helper()
	s.ln.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		s.mu.Lock()
		accepted, ended := s.accepted, s.ended
		s.mu.Unlock()
		tb.Fatalf("the server's connections did not end: %d of %d still open", accepted-ended, accepted)
	}
}

// close stops accepting, closes every connection and waits for the
// server's goroutines.
func (s *testServer) close() {
	s.ln.Close()
	s.openGate()
	s.hangUp()
	s.wg.Wait()
}
