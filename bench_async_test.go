package reconn_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/spool"
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
	plain := func() (net.Conn, error) { return net.Dial("tcp", s.addr().String()) }
	async := func() (net.Conn, error) {
		d := &reconn.Dialer{Async: true}
		return d.Dial("tcp", s.addr().String())
	}
	tPlain, tAsync, ratio := pairRounds(b, s, size, writers, b.N/min(b.N, ratioRounds), 0, plain, async)
	n := float64(b.N)
	b.ReportMetric(float64(tAsync.Nanoseconds())/n, "ns/op")
	b.ReportMetric(float64(tPlain.Nanoseconds())/n, "plain-ns/op")
	b.ReportMetric(ratio, "x-plain")
}

// BenchmarkSpoolRatio measures what a spool costs: an Async Conn with a
// SpoolDir against one without, as BenchmarkAsyncRatio measures Async
// against plain TCP, each Conn writing 200,000 messages of 100 bytes and
// closing, with each of SpoolSync's choices: never (the default), every
// 100 ms, and at each Write (2,000 messages a Conn: its rate is the
// disk's); never-2M writes 2,000,000 messages a Conn, as a long-lived
// Conn does, and never-2M-paced does too with the writer held to 1 MiB
// ahead of what the server has read, in both Conns: a server that keeps
// up, so that the spool's segments go round as spares in their mappings
// (without pacing, the writer outruns delivery and the spool grows into
// new segments, each mapped afresh). It reports the
// spooling Conn's time per message as ns/op, the other's as
// memory-ns/op, and the median of the rounds' ratios as x-memory.
//
//	go test -run '^$' -bench SpoolRatio -benchtime 2000000x .
func BenchmarkSpoolRatio(b *testing.B) {
	if !spool.Supported {
		b.Skip("SpoolDir needs shared file mappings, which this platform lacks")
	}
	for _, sync := range []struct {
		name    string
		d       time.Duration
		perConn int
		lead    int64
	}{
		{"never", 0, 200000, 0},
		{"never-2M", 0, 2000000, 0},
		{"never-2M-paced", 0, 2000000, 1 << 20},
		{"100ms", 100 * time.Millisecond, 200000, 0},
		{"each", -1, 2000, 0},
	} {
		b.Run("sync="+sync.name, func(b *testing.B) {
			s := newTestServer(b, serverOptions{})
			dir := b.TempDir()
			memory := func() (net.Conn, error) {
				d := &reconn.Dialer{Async: true}
				return d.Dial("tcp", s.addr().String())
			}
			spooled := func() (net.Conn, error) {
				d := &reconn.Dialer{SpoolDir: dir, SpoolSync: sync.d}
				return d.Dial("tcp", s.addr().String())
			}
			tMemory, tSpool, ratio := pairRounds(b, s, 100, 1, sync.perConn, sync.lead, memory, spooled)
			n := float64(b.N)
			b.ReportMetric(float64(tSpool.Nanoseconds())/n, "ns/op")
			b.ReportMetric(float64(tMemory.Nanoseconds())/n, "memory-ns/op")
			b.ReportMetric(ratio, "x-memory")
		})
	}
}

// pairRounds hands b.N messages of size bytes, from the given number of
// goroutines, to connections from two dialers in turn, in rounds of
// about perConn messages that alternate the order: each round dials
// afresh, writes its share, closes, and waits until the server s has read
// every byte. With lead above 0 (and one writer), the writer waits before
// each Write while it would be more than lead bytes ahead of what the
// server has read. It returns each dialer's total time and the median of
// the rounds' ratios of the second's time to the first's.
func pairRounds(b *testing.B, s *testServer, size, writers, perConn int, lead int64, first, second func() (net.Conn, error)) (t1, t2 time.Duration, ratio float64) {
	msg := benchMessage(size)
	var ratios []float64
	delivered := int64(0)
	run := func(dial func() (net.Conn, error), n int) time.Duration {
		c, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		delivered += int64(n * size)
		stalled := time.NewTimer(time.Minute) // bounds the round's paced waits
		defer stalled.Stop()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			share := n / writers
			if w < n%writers {
				share++
			}
			wg.Go(func() {
				// The server's count once it has read this writer's
				// Writes so far: earlier rounds were all read.
				wrote := delivered - int64(n*size)
				for range share {
					wrote += int64(size)
					for lead > 0 && wrote-s.bytes.Load() > lead {
						select {
						case <-s.more: // a token after each read of the server
						case <-stalled.C:
							errs <- fmt.Errorf("the server read %d of %d bytes in a minute", s.bytes.Load(), wrote-lead)
							return
						}
					}
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
	rounds := max(1, b.N/max(perConn, 1))
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		var d1, d2 time.Duration
		if r%2 == 0 {
			d1 = run(first, n)
			d2 = run(second, n)
		} else {
			d2 = run(second, n)
			d1 = run(first, n)
		}
		t1 += d1
		t2 += d2
		ratios = append(ratios, float64(d2)/float64(d1))
	}
	b.StopTimer()
	return t1, t2, median(ratios)
}
