//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package sock

import (
	"net"
	"testing"
)

// TestUnwatchClosedReused checks that unwatching a probe whose socket was
// closed first leaves alone another watched socket that reused its
// descriptor number: its entry stays, so the watcher still notifies it
// and runs while it is open.
func TestUnwatchClosedReused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Dial, then accept, in this goroutine only: the client's socket gets
	// the lowest free descriptor number, as socket(2) gives.
	type watched struct {
		p  Probe
		nc net.Conn
	}
	dial := func() (*watched, net.Conn, int) {
		t.Helper()
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		w := &watched{nc: nc}
		w.p.Init(nc)
		if !w.p.Watch(func() {}) {
			t.Fatal("the socket could not be watched")
		}
		return w, sc, w.p.watchFD
	}
	closeWatched := func(w *watched) {
		w.p.Unwatch()
		w.nc.Close()
	}
	keep, keepPeer, _ := dial() // keeps the watcher running throughout
	defer keepPeer.Close()
	defer closeWatched(keep)

	first, firstPeer, fd := dial()
	defer firstPeer.Close()
	first.nc.Close() // closed before it is unwatched
	// The descriptor the peer's side took is above fd; fd is free again.
	second, secondPeer, reused := dial()
	defer secondPeer.Close()
	defer closeWatched(second)
	if reused != fd {
		t.Fatalf("the next socket got descriptor %d, not the freed %d", reused, fd)
	}

	first.p.Unwatch()
	watcher.mu.Lock()
	got := watcher.probes[fd]
	watcher.mu.Unlock()
	if got != &second.p {
		t.Fatalf("after unwatching a closed socket, descriptor %d is registered to %p; want the socket that reused it (%p)", fd, got, &second.p)
	}
}
