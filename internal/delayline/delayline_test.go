package delayline

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestProxyStops: bytes come through the proxy no sooner than its delay,
// and a proxy whose test ends with a connection still open (as when a
// benchmark fails midway) closes it and returns.
func TestProxyStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	const delay = 20 * time.Millisecond
	var client net.Conn
	t.Run("open", func(t *testing.T) {
		client, err = net.Dial("tcp", Proxy(t, ln.Addr().String(), delay))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		server := <-accepted
		defer server.Close()
		server.SetReadDeadline(time.Now().Add(time.Minute))
		b := make([]byte, 1)
		if _, err := io.ReadFull(server, b); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < delay {
			t.Errorf("a byte came through in %v; want at least the delay, %v", took, delay)
		}
	}) // the proxy's cleanup ran: it must have closed client's peer
	defer client.Close()
	client.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client's connection is still open after the proxy stopped")
	}
}
