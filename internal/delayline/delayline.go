// Package delayline is a loopback TCP proxy that adds a fixed one-way
// latency to each direction and no bandwidth limit, in order: the path
// on which the benchmarks of protocols with acknowledgements (package
// forward) show what a window of requests in flight buys.
package delayline

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards each connection it accepts on a free port of 127.0.0.1
// to target, each chunk written delay after it was read, in each
// direction, and returns its address; with no delay it returns target
// itself. A half-close is passed on once the chunks before it are
// written. When tb ends it closes its listener and every connection
// still open (a test that failed midway leaves some), and waits for its
// goroutines.
func Proxy(tb testing.TB, target string, delay time.Duration) string {
	tb.Helper()
	if delay <= 0 {
		return target
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		open   = map[net.Conn]bool{}
		closed bool
	)
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for nc := range open {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	// track adds nc to the open connections, or closes it if the proxy
	// has stopped; it reports whether nc is tracked.
	track := func(nc net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			nc.Close()
			return false
		}
		open[nc] = true
		return true
	}
	forget := func(nc net.Conn) {
		mu.Lock()
		delete(open, nc)
		mu.Unlock()
		nc.Close()
	}
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			if !track(in) {
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				forget(in)
				continue
			}
			if !track(out) {
				forget(in)
				continue
			}
			wg.Go(func() {
				var both sync.WaitGroup
				both.Go(func() { line(out.(*net.TCPConn), in.(*net.TCPConn), delay) })
				both.Go(func() { line(in.(*net.TCPConn), out.(*net.TCPConn), delay) })
				both.Wait()
				forget(in)
				forget(out)
			})
		}
	})
	return ln.Addr().String()
}

// line copies src to dst: the caller reads and stamps each chunk with the
// time it was read; a goroutine writes each one delay after its stamp.
// The end of src becomes a half-close of dst; if dst fails, both close,
// which ends the other direction too.
func line(dst, src *net.TCPConn, delay time.Duration) {
	type chunk struct {
		b    []byte
		read time.Time
	}
	ch := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range ch {
			// The line's latency itself, not a wait for an event.
			time.Sleep(time.Until(c.read.Add(delay)))
			if _, err := dst.Write(c.b); err != nil {
				dst.Close()
				src.Close()
				for range ch {
				}
				return
			}
		}
		dst.CloseWrite()
	}()
	for {
		buf := make([]byte, 64<<10)
		n, err := src.Read(buf)
		if n > 0 {
			ch <- chunk{buf[:n], time.Now()}
		}
		if err != nil {
			break
		}
	}
	close(ch)
	<-done
}
