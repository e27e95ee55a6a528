package faultnet_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reconn/reconn/faultnet"
)

// proxied starts a server, a proxy in front of it, and a client of the
// proxy, and waits until the link is up.
func proxied(t *testing.T) (*faultnet.Server, *faultnet.Proxy, *net.TCPConn) {
	t.Helper()
	srv := faultnet.NewServer(t)
	p := faultnet.NewProxy(t, srv.Addr().String())
	c := dial(t, p.Addr())
	if err := srv.WaitConns(testContext(t), 1); err != nil {
		t.Fatalf("WaitConns: %v", err)
	}
	return srv, p, c
}

func TestProxyForward(t *testing.T) {
	srv, p, c := proxied(t)
	send(t, c, faultnet.Newline, span(0, 1000)...)
	c.CloseWrite()
	// The half-close goes through; the server then closes, and so does
	// the proxy toward the client.
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("reading to EOF through the proxy: %v", err)
	}
	if r := finalReport(t, srv, nil, 1, 1000); r.Received != 1000 {
		t.Errorf("through the proxy: %v\nwant all received", r)
	}
	if err := p.WaitEvent(testContext(t), faultnet.EventPeerClosed, 1); err != nil {
		t.Errorf("link not closed: %v", err)
	}
}

func TestProxyRST(t *testing.T) {
	for _, tt := range []struct {
		d          faultnet.Direction
		client     error // what the client reads
		serverEnds faultnet.EventKind
	}{
		{faultnet.Downstream, syscall.ECONNRESET, faultnet.EventPeerClosed},
		{faultnet.Upstream, io.EOF, faultnet.EventReadError},
	} {
		t.Run(tt.d.String(), func(t *testing.T) {
			srv, p, c := proxied(t)
			p.RST(tt.d)
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, tt.client) {
				t.Errorf("client Read after RST(%v): %v; want %v", tt.d, err, tt.client)
			}
			r := finalReport(t, srv, nil, 1, 0)
			if got := r.Conns[0].End; got != tt.serverEnds {
				t.Errorf("server conn ended by %v; want %v", got, tt.serverEnds)
			}
		})
	}
}

func TestProxyFIN(t *testing.T) {
	_, p, c := proxied(t)
	p.FIN(faultnet.Downstream)
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read after FIN: %v; want EOF", err)
	}
}

func TestProxyHalfClose(t *testing.T) {
	srv, p, c := proxied(t)
	p.HalfClose(faultnet.Downstream)
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read after HalfClose: %v; want EOF", err)
	}
	send(t, c, faultnet.Newline, span(0, 10)...)
	if r := finalReport(t, srv, c, 1, 10); r.Received != 10 {
		t.Errorf("after HalfClose(Downstream): %v\nwant all received", r)
	}
}

func TestProxyStallPause(t *testing.T) {
	srv, p, c := proxied(t)
	send(t, c, faultnet.Newline, span(0, 5)...)
	if err := srv.WaitReceived(testContext(t), 5); err != nil {
		t.Fatal(err)
	}
	p.Pause(faultnet.Upstream)
	send(t, c, faultnet.Newline, span(5, 10)...)
	p.Resume(faultnet.Upstream)
	if err := srv.WaitReceived(testContext(t), 10); err != nil {
		t.Fatalf("after Resume: %v", err)
	}
	p.Stall(faultnet.Upstream)
	send(t, c, faultnet.Newline, span(10, 20)...)
	if r := finalReport(t, srv, c, 1, 20); r.Received != 10 || r.ClientLost != 10 {
		t.Errorf("after Stall: %v\nwant 10 received, 10 lost in the proxy", r)
	}
}

func TestProxyCutAfter(t *testing.T) {
	srv, p, c := proxied(t)
	p.CutAfter(faultnet.Upstream, 2*msgSize+msgSize/2)
	send(t, c, faultnet.Newline, span(0, 5)...)
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("reading to the cut: %v", err)
	}
	r := finalReport(t, srv, nil, 1, 5)
	if r.Received != 2 || r.Conns[0].End != faultnet.EventPeerClosed {
		t.Errorf("after the cut: %v\nwant 2 received, then EOF", r)
	}
}

func TestProxyRestart(t *testing.T) {
	srv, p, c := proxied(t)
	if err := p.Restart(time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("Read after Restart: %v; want ECONNRESET", err)
	}
	if c2, err := net.Dial("tcp", p.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		if c2 != nil {
			c2.Close()
		}
		t.Fatalf("Dial while restarting: %v; want ECONNREFUSED", err)
	}
	if err := p.Accept(); err != nil {
		t.Fatal(err)
	}
	dial(t, p.Addr())
	if err := srv.WaitConns(testContext(t), 2); err != nil {
		t.Fatal(err)
	}
}

func TestProxyUpstreamDown(t *testing.T) {
	srv := faultnet.NewServer(t)
	p := faultnet.NewProxy(t, srv.Addr().String())
	srv.Refuse()
	c := dial(t, p.Addr())
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read with the server down: %v; want EOF", err)
	}
	if err := p.WaitEvent(testContext(t), faultnet.EventReadError, 1); err != nil {
		t.Fatal(err)
	}
	if tr := p.Trace(); !errors.Is(tr[len(tr)-1].Err, syscall.ECONNREFUSED) {
		t.Errorf("link event = %v; want ECONNREFUSED", tr[len(tr)-1])
	}
}

func TestProxyBlackhole(t *testing.T) {
	requireFilter(t)
	_, p, c := proxied(t)
	control(t, c, func(fd int) {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 1000); err != nil {
			t.Fatalf("TCP_USER_TIMEOUT: %v", err)
		}
	})
	if err := p.Blackhole(faultnet.Upstream); err != nil {
		t.Fatalf("Blackhole: %v", err)
	}
	if err := writeUntilError(t, c, 15*time.Second); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("Write through a blackholed proxy: %v; want ETIMEDOUT", err)
	}
}
