package faultnet_test

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reconn/reconn/faultnet"
)

func TestFIN(t *testing.T) {
	srv, c := connected(t)
	srv.FIN()
	waitPoll(t, c, unix.POLLIN|unix.POLLRDHUP)
	if n, err := peek(t, c); n != 0 || err != nil {
		t.Fatalf("peek after FIN = %d, %v; want 0, nil", n, err)
	}
	if _, err := c.Write([]byte("seq=0\n")); err != nil {
		t.Fatalf("first Write after FIN: %v; want success", err)
	}
	waitPoll(t, c, 0) // the server's reset
	if err := writeUntilError(t, c, 10*time.Second); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write after FIN and reset: %v; want EPIPE", err)
	}
	r := srv.Report(1)
	if got := r.Conns[0].End; got != faultnet.EventFIN {
		t.Errorf("End = %v; want %v", got, faultnet.EventFIN)
	}
	if r.ClientLost != 1 {
		t.Errorf("ClientLost = %d; want 1 (the message written after the FIN)\n%v", r.ClientLost, r)
	}
}

func TestRST(t *testing.T) {
	srv, c := connected(t)
	srv.RST()
	buf := make([]byte, 10)
	if _, err := c.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after RST: %v; want ECONNRESET", err)
	}
	_, rerr := c.Read(buf)
	_, werr := c.Write([]byte("seq=0\n"))
	if rerr != io.EOF || !errors.Is(werr, syscall.EPIPE) {
		t.Fatalf("after the reset: Read = %v, Write = %v; want EOF, EPIPE", rerr, werr)
	}
	if got := srv.Conns(); len(got) != 0 {
		t.Errorf("Conns() = %d conns; want none", len(got))
	}
}

func TestHalfClose(t *testing.T) {
	srv, c := connected(t)
	srv.HalfClose()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read after HalfClose: %v; want EOF", err)
	}
	send(t, c, faultnet.Newline, span(0, 10)...)
	r := finalReport(t, srv, c, 1, 10)
	if r.Received != 10 || r.Lost != 0 || r.Conns[0].End != faultnet.EventPeerClosed {
		t.Errorf("after HalfClose: %v\nwant all 10 received, ended by peer", r)
	}
}

func TestRefuseAccept(t *testing.T) {
	srv, old := connected(t)
	if err := srv.Refuse(); err != nil {
		t.Fatalf("Refuse: %v", err)
	}
	if c, err := net.Dial("tcp", srv.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial while refusing: %v; want ECONNREFUSED", err)
	}
	send(t, old, faultnet.Newline, 0) // the open connection is untouched
	if err := srv.Accept(); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	c := dial(t, srv.Addr())
	send(t, c, faultnet.Newline, 1)
	old.CloseWrite()
	r := finalReport(t, srv, c, 2, 2)
	if r.Received != 2 || len(r.Conns) != 2 {
		t.Errorf("got %v\nwant 2 received on 2 conns", r)
	}
}

func TestRestart(t *testing.T) {
	srv, old := connected(t)
	if err := srv.Restart(50 * time.Millisecond); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if _, err := old.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("Read on the old conn: %v; want ECONNRESET", err)
	}
	if err := srv.WaitEvent(testContext(t), faultnet.EventListening, 1); err != nil {
		t.Fatalf("waiting for the restart: %v", err)
	}
	c := dial(t, srv.Addr())
	if err := srv.WaitConns(testContext(t), 2); err != nil {
		t.Fatalf("WaitConns after restart: %v", err)
	}
	if got := srv.Conns(); len(got) != 1 || got[0].ID() != 2 {
		t.Errorf("Conns() after restart has %d conns; want conn 2 alone", len(got))
	}
	c.Close()
}

func TestRestartDown(t *testing.T) {
	srv := faultnet.NewServer(t)
	if err := srv.Restart(time.Hour); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if c, err := net.Dial("tcp", srv.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial while restarting: %v; want ECONNREFUSED", err)
	}
	// Close cancels the pending restart; goleak checks that it is gone.
}

func TestBlackhole(t *testing.T) {
	requireFilter(t)
	srv, c := connected(t)
	control(t, c, func(fd int) {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 1000); err != nil {
			t.Fatalf("TCP_USER_TIMEOUT: %v", err)
		}
	})
	send(t, c, faultnet.Newline, 0)
	if err := srv.WaitReceived(testContext(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.Blackhole(); err != nil {
		t.Fatalf("Blackhole: %v", err)
	}
	if n, err := peek(t, c); err != unix.EAGAIN {
		t.Errorf("peek after Blackhole = %d, %v; want EAGAIN (nothing to tell)", n, err)
	}
	if err := writeUntilError(t, c, 15*time.Second); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("Write to a blackholed server: %v; want ETIMEDOUT", err)
	}
	r := finalReport(t, srv, nil, 1, 1)
	if r.Received != 1 || r.Conns[0].End != faultnet.EventBlackhole {
		t.Errorf("got %v\nwant 1 received, conn blackholed", r)
	}
	if got := srv.Conns(); len(got) != 1 {
		t.Errorf("Conns() = %d conns; want the blackholed one still open", len(got))
	}
}

func TestDropSYN(t *testing.T) {
	requireFilter(t)
	srv := faultnet.NewServer(t)
	if err := srv.DropSYN(); err != nil {
		t.Fatalf("DropSYN: %v", err)
	}
	c, err := net.DialTimeout("tcp", srv.Addr().String(), 300*time.Millisecond)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial while dropping SYNs: %v; want a timeout", err)
	}
	if err := srv.AcceptSYN(); err != nil {
		t.Fatalf("AcceptSYN: %v", err)
	}
	dial(t, srv.Addr())
	if err := srv.WaitConns(testContext(t), 1); err != nil {
		t.Fatal(err)
	}
}

func TestStall(t *testing.T) {
	srv, c := connected(t)
	send(t, c, faultnet.Newline, span(0, 5)...)
	if err := srv.WaitReceived(testContext(t), 5); err != nil {
		t.Fatal(err)
	}
	srv.Stall()
	// 32 MiB is more than the kernel buffers on both sides can hold: the
	// write completes only because the stalled server still reads.
	const n = 32 << 20 / msgSize
	c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	send(t, c, faultnet.Newline, span(5, 5+n)...)
	r := finalReport(t, srv, c, 1, 5+n)
	if r.Received != 5 || r.Stalled != n || r.Unavoidable != n || r.ClientLost != 0 {
		t.Errorf("got %v\nwant 5 received, %d stalled and unavoidable", r, n)
	}
}

func TestPause(t *testing.T) {
	srv, c := connected(t)
	send(t, c, faultnet.Newline, span(0, 5)...)
	if err := srv.WaitReceived(testContext(t), 5); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	const n = 32 << 20 / msgSize
	var b []byte
	for q := 5; q < 5+n; q++ {
		b = faultnet.AppendMessage(b, faultnet.Newline, q, msgSize)
	}
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	w, err := c.Write(b)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write of 32 MiB to a paused server: %d bytes, %v; want a blocked write", w, err)
	}
	if r := srv.Report(0); r.Conns[0].Received != 5 {
		t.Errorf("paused server processed %d messages; want 5", r.Conns[0].Received)
	}
	srv.Resume()
	c.SetWriteDeadline(time.Time{})
	if _, err := c.Write(b[w:]); err != nil {
		t.Fatalf("Write after Resume: %v", err)
	}
	if r := finalReport(t, srv, c, 1, 5+n); r.Received != 5+n || r.Lost != 0 {
		t.Errorf("got %v\nwant all received", r)
	}
}

func TestCutAfter(t *testing.T) {
	srv, c := connected(t)
	send(t, c, faultnet.Newline, span(0, 3)...)
	if err := srv.WaitReceived(testContext(t), 3); err != nil {
		t.Fatal(err)
	}
	srv.CutAfter(2*msgSize + msgSize/2)
	send(t, c, faultnet.Newline, span(3, 8)...)
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("reading to the cut: %v; want EOF", err)
	}
	r := finalReport(t, srv, nil, 1, 8)
	cr := r.Conns[0]
	if r.Received != 5 || cr.Unread != 3 || r.Unavoidable != 3 || cr.End != faultnet.EventCut {
		t.Errorf("got %v\nwant 5 received, 3 unread, ended by the cut", r)
	}
	if cr.Bytes != 5*msgSize || cr.UnreadBytes != 3*msgSize {
		t.Errorf("Bytes, UnreadBytes = %d, %d; want %d, %d", cr.Bytes, cr.UnreadBytes, 5*msgSize, 3*msgSize)
	}
}

func TestLatency(t *testing.T) {
	srv, c := connected(t)
	const d = 20 * time.Millisecond
	srv.Latency(d)
	start := time.Now()
	send(t, c, faultnet.Newline, span(0, 10)...)
	if err := srv.WaitReceived(testContext(t), 10); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: a loaded machine may take longer.
	if took := time.Since(start); took < d {
		t.Errorf("messages processed %v after the write; want at least the latency, %v", took, d)
	}
	if r := finalReport(t, srv, c, 1, 10); r.Received != 10 {
		t.Errorf("with latency: %v\nwant 10 received", r)
	}
}

func TestLatencyRST(t *testing.T) {
	srv, c := connected(t)
	srv.Latency(time.Hour) // the reader holds what it reads; RST must not wait
	send(t, c, faultnet.Newline, span(0, 10)...)
	waitAcked(t, c)
	srv.RST()
	r := finalReport(t, srv, nil, 1, 10)
	if r.Received != 0 || r.Unread != 10 || r.Unavoidable != 10 {
		t.Errorf("got %v\nwant 10 unread", r)
	}
}

func TestRSTUnread(t *testing.T) {
	srv, c := connected(t)
	srv.Pause()
	send(t, c, faultnet.Newline, span(0, 10)...)
	waitAcked(t, c)
	srv.RSTUnread()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after RSTUnread: %v; want ECONNRESET", err)
	}
	r := finalReport(t, srv, nil, 1, 10)
	if r.Exact || r.Unread != 0 || r.Lost != 10 || r.Conns[0].End != faultnet.EventRSTUnread {
		t.Errorf("got %v\nwant 10 lost, none measured, inexact", r)
	}
}

func TestFaultsAfterClose(t *testing.T) {
	srv, c := connected(t)
	conn := srv.Conns()[0]
	conn.RST()
	<-conn.Done()
	// Every fault on a closed connection does nothing.
	conn.FIN()
	conn.RST()
	conn.RSTUnread()
	conn.HalfClose()
	conn.Stall()
	conn.Pause()
	conn.Resume()
	conn.Latency(time.Second)
	conn.CutAfter(1)
	if err := conn.Blackhole(); err != nil {
		t.Errorf("Blackhole on a closed conn: %v", err)
	}
	c.Close()
	if got := srv.Trace(); len(got) != 2 {
		t.Errorf("trace = %v; want accepted and rst only", got)
	}
}
