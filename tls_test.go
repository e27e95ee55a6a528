//go:build linux

package reconn_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/testpki"
)

// testCert returns a self-signed certificate for 127.0.0.1 and a pool
// that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) { return testpki.SelfSigned(t) }

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
