//go:build linux

package reconn_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"golang.org/x/sys/unix"
)

// testCert returns a self-signed certificate for 127.0.0.1 and a pool
// that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

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

// tlsConn starts a tlsSink, dials it through reconn with TLS, and
// returns the sink, the Conn and the sink's first connection.
func tlsConn(t *testing.T) (*tlsSink, *reconn.Conn, *sinkConn) {
	cert, pool := testCert(t)
	sink := newTLSSink(t, cert)
	d := testDialer()
	d.TLSConfig = &tls.Config{RootCAs: pool}
	c := dial(t, d, sink.ln.Addr())
	return sink, c, <-sink.conns
}

// tlsFinish closes c, waits until the sink has read every connection c
// made to its end, and returns c's final Stats.
func tlsFinish(t *testing.T, c *reconn.Conn, sink *tlsSink) reconn.Stats {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	s := c.Stats()
	for range s.Dials - 1 {
		<-sink.conns // the server sees EOF on each once Close is done
	}
	sink.mu.Lock()
	sink.ln.Close()
	sink.mu.Unlock()
	sink.wg.Wait()
	return s
}

// skipUnfrozen skips t if err says that the socket could not be frozen
// for want of the privilege, and fails it on any other error.
func skipUnfrozen(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("freezing the socket needs CAP_NET_ADMIN: %v", err)
	}
	t.Fatal(err)
}

// tlsStream writes total messages over TLS through reconn at full speed and
// applies fault to the first connection once cut messages arrived.
func tlsStream(t *testing.T, total, cut int, fault func(*tlsSink, *sinkConn) error) (clientLost, unavoidable, dup int, s reconn.Stats) {
	sink, c, first := tlsConn(t)
	faulted := make(chan error, 1)
	go func() {
		sink.waitReceived(cut)
		faulted <- fault(sink, first)
	}()
	var buf []byte
	for seq := 0; seq < total; seq++ {
		buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, seq, 100)
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("Write(seq %d) = %v", seq, err)
		}
	}
	skipUnfrozen(t, <-faulted)
	s = tlsFinish(t, c, sink)
	clientLost, unavoidable, dup = sink.count(total)
	return clientLost, unavoidable, dup, s
}

// TestTLSDrain: the server sends close_notify and FIN in mid-stream and
// keeps reading until the client's EOF. Nothing may be lost or
// duplicated, the writer sees no error, and the Conn moves to one new
// connection at most.
func TestTLSDrain(t *testing.T) {
	for _, cut := range []int{2000, 7000, 12000} {
		lost, unavoidable, dup, s := tlsStream(t, 20000, cut, func(_ *tlsSink, sc *sinkConn) error {
			sc.drain()
			return nil
		})
		if lost+unavoidable != 0 || dup != 0 {
			t.Errorf("cut %d: lost %d, duplicated %d; want 0, 0", cut, lost+unavoidable, dup)
		}
		if s.Redials > 1 || s.ResentMessages != 0 {
			t.Errorf("cut %d: Stats().Redials = %d, ResentMessages = %d; want at most 1, 0 (dead by check %d, by write %d, last error %v)",
				cut, s.Redials, s.ResentMessages, s.DeadByCheck, s.DeadByWrite, s.LastError)
		}
	}
}

// TestTLSAbruptClose: the server dies in mid-stream. As over plain TCP,
// every lost message must be one the server's kernel acknowledged but the
// server never read.
func TestTLSAbruptClose(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("freezing the socket needs CAP_NET_ADMIN (run as root)")
	}
	var unavoidableAll, dupAll, resent int
	for _, cut := range []int{2000, 5000, 8000, 11000, 14000} {
		lost, unavoidable, dup, s := tlsStream(t, 20000, cut, (*tlsSink).reset)
		if lost != 0 {
			t.Errorf("cut %d: %d messages lost outside the unread set", cut, lost)
		}
		unavoidableAll += unavoidable
		dupAll += dup
		resent += int(s.ResentMessages)
	}
	t.Logf("5 resets over TLS: lost only unavoidable ones: %d; duplicated %d; re-sent %d", unavoidableAll, dupAll, resent)
}

// TestTLSRestartAfterFIN is TestRestartAfterFIN over TLS: the server
// stops listening, sends close_notify and FIN, and reads on for a drain
// period, or to the client's EOF, or not at all; its close is measured
// as TestTLSAbruptClose measures a reset.
func TestTLSRestartAfterFIN(t *testing.T) {
	for _, r := range []restart{
		{drain: 300 * time.Millisecond, relisten: 150 * time.Millisecond},
		{toEOF: true, relisten: 150 * time.Millisecond},
		{drain: 0, relisten: 150 * time.Millisecond},
	} {
		t.Run(r.String(), func(t *testing.T) {
			sink, c, first := tlsConn(t)
			ctx := testContext(t)
			restarted := make(chan error, 1)
			var resetErr error
			go func() {
				sink.waitReceived(2500)
				sink.mu.Lock()
				sink.ln.Close()
				sink.mu.Unlock()
				restarted <- r.run(ctx, 1,
					func(int) { first.drain() },
					func(int) { resetErr = sink.reset(first) },
					func(int) <-chan struct{} { return first.done },
					sink.relisten)
			}()
			total := writeThrough(t, c, restarted, 2500, 10000)
			skipUnfrozen(t, resetErr)
			s := tlsFinish(t, c, sink)
			lost, unavoidable, dup := sink.count(total)
			if lost != 0 || (r.drain > 0 || r.toEOF) && unavoidable != 0 {
				t.Errorf("lost %d outside the unread set, %d unread; want 0, and none unread after a drain", lost, unavoidable)
			}
			if r.toEOF && dup != 0 {
				t.Errorf("duplicated %d; want 0 from a server that reads to EOF", dup)
			}
			if s.Dials < 2 {
				t.Errorf("Stats().Dials = %d; want at least 2 (the restart)", s.Dials)
			}
			t.Logf("%d sent: lost %d (unread %d), duplicated %d, %d connections", total, lost+unavoidable, unavoidable, dup, s.Dials)
		})
	}
}
