//go:build linux

package reconn_test

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/reconn/reconn/faultnet"
	"golang.org/x/sys/unix"
)

// tlsSink is a TLS server that counts newline-framed, sequence-numbered
// messages, as faultnet.Server does for plain TCP.
type tlsSink struct {
	t      *testing.T
	ln     net.Listener // replaced by relisten; read it only where nothing relistens
	cfg    *tls.Config
	conns  chan *sinkConn
	wg     sync.WaitGroup
	mu     sync.Mutex
	grew   *sync.Cond   // broadcast when got grows; uses mu
	got    map[int]int  // processed
	unread map[int]bool // acknowledged by the kernel, never processed
}

// sinkConn is one accepted connection.
type sinkConn struct {
	tcp    *net.TCPConn
	budget *budgetConn
	tc     *tls.Conn
	frozen chan struct{} // closed to stop the reader
	done   chan struct{} // closed when the reader has stopped
	rest   []byte        // a partial line the reader held when it stopped
}

// budgetConn lets the TLS layer read at most budget more bytes from the
// socket once budget is set (>= 0), then reports a timeout.
type budgetConn struct {
	net.Conn
	mu     sync.Mutex
	budget int64
}

func (b *budgetConn) Read(p []byte) (int, error) {
	b.mu.Lock()
	budget := b.budget
	b.mu.Unlock()
	if budget == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	if budget > 0 && int64(len(p)) > budget {
		p = p[:budget]
	}
	n, err := b.Conn.Read(p)
	b.mu.Lock()
	if b.budget > 0 {
		b.budget -= int64(n)
	}
	b.mu.Unlock()
	return n, err
}

func newTLSSink(t *testing.T, cert tls.Certificate) *tlsSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsSink{
		t:      t,
		ln:     ln,
		cfg:    &tls.Config{Certificates: []tls.Certificate{cert}},
		conns:  make(chan *sinkConn, 16),
		got:    make(map[int]int),
		unread: make(map[int]bool),
	}
	s.grew = sync.NewCond(&s.mu)
	s.wg.Add(1)
	go s.accept(ln)
	t.Cleanup(func() {
		s.mu.Lock()
		s.ln.Close()
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// relisten listens again on the address of the listener, after it was
// closed.
func (s *tlsSink) relisten() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ln, err := net.Listen("tcp", s.ln.Addr().String())
	if err != nil {
		return err
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

func (s *tlsSink) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		b := &budgetConn{Conn: nc, budget: -1}
		sc := &sinkConn{tcp: nc.(*net.TCPConn), budget: b, tc: tls.Server(b, s.cfg), frozen: make(chan struct{}), done: make(chan struct{})}
		s.t.Cleanup(func() { sc.tc.Close() })
		s.conns <- sc
		s.wg.Add(1)
		go s.read(sc)
	}
}

// read processes lines until EOF, an error, or a freeze.
func (s *tlsSink) read(sc *sinkConn) {
	defer s.wg.Done()
	defer close(sc.done)
	buf := make([]byte, 64<<10)
	var line []byte
	for {
		n, err := sc.tc.Read(buf)
		select {
		case <-sc.frozen:
			// Bytes read now count as unread, with the partial line.
			sc.rest = append(line, buf[:n]...)
			return
		default:
		}
		line = s.lines(append(line, buf[:n]...), s.got)
		if err != nil {
			return
		}
	}
}

// lines counts each complete line of b in into, and returns the rest.
func (s *tlsSink) lines(b []byte, into map[int]int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.grew.Broadcast()
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append([]byte(nil), b...)
		}
		if seq, ok := faultnet.ParseSeq(b[:i+1]); ok {
			into[seq]++
		}
		b = b[i+1:]
	}
}

// drain half-closes: close_notify and FIN, and the reader goes on to EOF.
func (sc *sinkConn) drain() {
	sc.tc.CloseWrite()
	sc.tcp.CloseWrite()
}

// reset freezes the socket (a BPF filter drops everything, so the kernel
// acknowledges nothing more), stops the reader, reads through TLS exactly
// what the kernel held as unread, and resets the connection.
func (s *tlsSink) reset(sc *sinkConn) error {
	rc, err := sc.tcp.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	rc.Control(func(fd uintptr) {
		ferr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{
			Len:    1,
			Filter: &[]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}[0],
		})
	})
	if ferr != nil {
		return ferr
	}
	close(sc.frozen)
	sc.tcp.SetReadDeadline(time.Unix(1, 0))
	<-sc.done
	var pending uint32
	rc.Control(func(fd uintptr) { pending, ferr = unix.IoctlGetUint32(int(fd), unix.SIOCINQ) })
	if ferr != nil {
		return ferr
	}
	sc.tcp.SetReadDeadline(time.Time{})
	sc.budget.mu.Lock()
	sc.budget.budget = int64(pending)
	sc.budget.mu.Unlock()
	rest := sc.rest
	buf := make([]byte, 64<<10)
	for {
		n, err := sc.tc.Read(buf)
		rest = append(rest, buf[:n]...)
		if err != nil {
			break
		}
	}
	unread := map[int]int{}
	s.lines(rest, unread)
	s.mu.Lock()
	for seq := range unread {
		s.unread[seq] = true
	}
	s.mu.Unlock()
	sc.tcp.SetLinger(0)
	return sc.tcp.Close()
}

// waitReceived waits until the server has processed n distinct messages.
func (s *tlsSink) waitReceived(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.got) < n {
		s.grew.Wait()
	}
}

// count returns lost (neither processed nor unread), unavoidable (lost but
// unread) and duplicated counts.
func (s *tlsSink) count(total int) (clientLost, unavoidable, dup int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq := 0; seq < total; seq++ {
		switch n := s.got[seq]; {
		case n == 0 && s.unread[seq]:
			unavoidable++
		case n == 0:
			clientLost++
		case n > 1:
			dup += n - 1
		}
	}
	return
}
