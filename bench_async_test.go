package reconn_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconn/reconn"
)

// countingSink is a loopback server that reads and discards everything,
// and tells when the connections accepted so far have delivered a given
// number of bytes in all.
type countingSink struct {
	ln    net.Listener
	wg    sync.WaitGroup
	bytes atomic.Int64
	more  chan struct{} // a token after each read
}

func newCountingSink(b *testing.B) *countingSink {
	b.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &countingSink{ln: ln, more: make(chan struct{}, 1)}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 256<<10)
				for {
					n, err := c.Read(buf)
					s.bytes.Add(int64(n))
					select {
					case s.more <- struct{}{}:
					default:
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	b.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// await waits until the sink has read n bytes in all.
func (s *countingSink) await(b *testing.B, n int64) {
	for s.bytes.Load() < n {
		select {
		case <-s.more:
		case <-time.After(time.Minute):
			b.Fatalf("the sink read %d of %d bytes", s.bytes.Load(), n)
		}
	}
}

// BenchmarkAsyncRatio measures what it takes to hand n messages to a
// connection and close it, until the server has read every byte: an
// Async Conn against a plain TCP connection writing each message with its
// own system call. Each round dials both afresh, writes its share of b.N
// messages from the given number of goroutines, closes, and waits for the
// sink; rounds alternate the order. It reports the Async Conn's time per
// message as ns/op, the plain connection's as plain-ns/op, and the median
// of the rounds' ratios as x-plain.
//
//	go test -run '^$' -bench AsyncRatio -benchtime 200000x -count 3 .
func BenchmarkAsyncRatio(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			for _, writers := range benchWriters {
				b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
					benchAsync(b, size, writers)
				})
			}
		})
	}
}

func benchAsync(b *testing.B, size, writers int) {
	s := newCountingSink(b)
	msg := benchMessage(size)
	plain := func() (net.Conn, error) { return net.Dial("tcp", s.ln.Addr().String()) }
	async := func() (net.Conn, error) {
		d := &reconn.Dialer{Async: true}
		return d.Dial("tcp", s.ln.Addr().String())
	}
	var tPlain, tAsync time.Duration
	var ratios []float64
	delivered := int64(0)
	// run dials, writes n messages from the goroutines, closes, and waits
	// until the sink has them all.
	run := func(dial func() (net.Conn, error), n int) time.Duration {
		c, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		delivered += int64(n * size)
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			share := n / writers
			if w < n%writers {
				share++
			}
			wg.Go(func() {
				for range share {
					if _, err := c.Write(msg); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		s.await(b, delivered)
		took := time.Since(start)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return took
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	rounds := min(b.N, ratioRounds)
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		var p, a time.Duration
		if r%2 == 0 {
			p = run(plain, n)
			a = run(async, n)
		} else {
			a = run(async, n)
			p = run(plain, n)
		}
		tPlain += p
		tAsync += a
		ratios = append(ratios, float64(a)/float64(p))
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(tAsync.Nanoseconds())/n, "ns/op")
	b.ReportMetric(float64(tPlain.Nanoseconds())/n, "plain-ns/op")
	b.ReportMetric(median(ratios), "x-plain")
}
