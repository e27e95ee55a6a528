package reconn_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/reconn/reconn"
)

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
	s := newTestServer(b, serverOptions{})
	msg := benchMessage(size)
	plain := func() (net.Conn, error) { return net.Dial("tcp", s.addr().String()) }
	async := func() (net.Conn, error) {
		d := &reconn.Dialer{Async: true}
		return d.Dial("tcp", s.addr().String())
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
		s.awaitBytes(b, delivered)
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
