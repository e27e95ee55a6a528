package reconn_test

import (
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
)

// benchClient is one kind of client that the Write benchmarks measure:
// a plain TCP connection, or a Conn with a check mode and replay on or off.
type benchClient struct {
	name   string
	plain  bool
	check  reconn.CheckMode
	replay int // Dialer.ReplayBuffer: 0 for the default, negative for off
}

// benchClients lists the clients in the order the benchmarks run them.
// The plain TCP connection comes first: it is the baseline.
var benchClients = []benchClient{
	{name: "plain", plain: true},
	{name: "default", check: reconn.CheckDefault},
	{name: "default-noreplay", check: reconn.CheckDefault, replay: -1},
	{name: "peek", check: reconn.CheckPeek},
	{name: "peek-noreplay", check: reconn.CheckPeek, replay: -1},
	{name: "state", check: reconn.CheckState},
	{name: "state-noreplay", check: reconn.CheckState, replay: -1},
	{name: "watch", check: reconn.CheckWatch},
	{name: "watch-noreplay", check: reconn.CheckWatch, replay: -1},
	{name: "none", check: reconn.CheckNone},
	{name: "none-noreplay", check: reconn.CheckNone, replay: -1},
}

var (
	benchSizes   = []int{100, 4096}
	benchWriters = []int{1, 8}
)

// dial connects the client to addr and closes it when the benchmark
// ends. A Conn uses the Dialer defaults apart from its check mode and
// replay buffer, as an application would.
func (bc benchClient) dial(b *testing.B, addr net.Addr) net.Conn {
	b.Helper()
	if bc.plain {
		var d net.Dialer
		c, err := d.Dial(addr.Network(), addr.String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	return dial(b, &reconn.Dialer{Check: bc.check, ReplayBuffer: bc.replay}, addr)
}

// writerPool writes one message over and over to a connection from a
// fixed set of goroutines that all share it. The goroutines start before
// the measurement, so that it counts only the writes. Each goroutine
// runs on a thread of its own, so that the CPU time of the writes can be
// told from the rest (see threadCPU).
type writerPool struct {
	work []chan int   // the number of writes each goroutine is to make next
	done chan batched // one reply per goroutine and batch
	wg   sync.WaitGroup
}

// batched is a goroutine's reply for one batch of writes.
type batched struct {
	err error
	cpu time.Duration // the thread's CPU time over the batch
}

// newWriterPool starts the given number of goroutines writing msg to c
// and stops them when the benchmark ends, before c is closed.
func newWriterPool(b *testing.B, c net.Conn, msg []byte, writers int) *writerPool {
	p := &writerPool{
		work: make([]chan int, writers),
		done: make(chan batched, writers),
	}
	for i := range p.work {
		ch := make(chan int)
		p.work[i] = ch
		p.wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for n := range ch {
				var err error
				start := threadCPU()
				for range n {
					if _, err = c.Write(msg); err != nil {
						break
					}
				}
				p.done <- batched{err, threadCPU() - start}
			}
		})
	}
	b.Cleanup(func() {
		for _, ch := range p.work {
			close(ch)
		}
		p.wg.Wait()
	})
	return p
}

// write makes n writes in all, shared evenly among the goroutines, and
// returns the CPU time their threads spent on them, and the first error.
func (p *writerPool) write(n int) (time.Duration, error) {
	k := len(p.work)
	for i, ch := range p.work {
		share := n / k
		if i < n%k {
			share++
		}
		ch <- share
	}
	var first error
	var cpu time.Duration
	for range k {
		r := <-p.done
		if r.err != nil && first == nil {
			first = r.err
		}
		cpu += r.cpu
	}
	return cpu, first
}

// warmUp writes at least 3 MiB, and at least 4096 messages, before the
// measurement starts, so that the replay ring has grown to its working
// size and Writes no longer allocate. The ring holds what the peer's
// kernel has not yet acknowledged, up to the 4 MiB default bound; it is
// first trimmed when it holds 2 MiB, and the unacknowledged bytes grow
// with the socket's send buffer, which the kernel enlarges as the
// connection speeds up.
func (p *writerPool) warmUp(b *testing.B, size int) {
	b.Helper()
	if _, err := p.write(max(3<<20/size, 4096)); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
}

// benchMessage returns a newline-framed message of the given size.
func benchMessage(size int) []byte {
	return faultnet.AppendMessage(nil, faultnet.Newline, 0, size)
}

// BenchmarkWrite measures Write on a plain TCP connection and on a Conn in
// each check mode, with replay on and off, for two message sizes, from one
// goroutine and from eight that share the connection. The server reads as
// fast as it can. Compare the clients with benchstat, for example with
//
//	go test -run '^$' -bench Write -count 10 . > new.txt
//	benchstat -col /client new.txt
func BenchmarkWrite(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			for _, writers := range benchWriters {
				b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
					for _, bc := range benchClients {
						b.Run("client="+bc.name, func(b *testing.B) {
							benchWrite(b, bc, size, writers)
						})
					}
				})
			}
		})
	}
}

func benchWrite(b *testing.B, bc benchClient, size, writers int) {
	s := newTestServer(b, serverOptions{})
	c := bc.dial(b, s.addr())
	p := newWriterPool(b, c, benchMessage(size), writers)
	p.warmUp(b, size)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	if _, err := p.write(b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

// ratioRounds is the number of rounds BenchmarkWriteRatio splits its
// writes into. The order of the two clients alternates between rounds.
const ratioRounds = 20

// BenchmarkWriteRatio measures a Conn in each check mode against a plain
// TCP connection in the same run: b.N writes on each, in rounds that
// alternate plain, Conn, Conn, plain, and so on, so that a change in the
// machine's speed during the run weighs on both alike. It reports the
// Conn's time per Write as ns/op, the plain connection's as plain-ns/op,
// and the median of the rounds' ratios as x-plain: on a busy machine it
// is steadier than ns/op from separate benchmarks, and than the ratio of
// the totals, which one stalled round moves. Where threads' CPU time can
// be read (Linux), it also reports the median of the rounds' ratios of
// the CPU time the writing threads spent, system calls included, as
// cpu-x-plain: time the threads spent waiting for a core, which a shared
// machine's other work decides, does not count there.
func BenchmarkWriteRatio(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			for _, writers := range benchWriters {
				b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
					for _, bc := range benchClients[1:] {
						b.Run("client="+bc.name, func(b *testing.B) {
							benchRatio(b, bc, size, writers)
						})
					}
				})
			}
		})
	}
}

func benchRatio(b *testing.B, bc benchClient, size, writers int) {
	s := newTestServer(b, serverOptions{})
	msg := benchMessage(size)
	plain := newWriterPool(b, benchClients[0].dial(b, s.addr()), msg, writers)
	conn := newWriterPool(b, bc.dial(b, s.addr()), msg, writers)
	plain.warmUp(b, size)
	conn.warmUp(b, size)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()

	rounds := min(b.N, ratioRounds)
	var tPlain, tConn time.Duration
	var ratios, cpuRatios []float64
	timed := func(p *writerPool, n int, total *time.Duration) (took, cpu time.Duration) {
		start := time.Now()
		cpu, err := p.write(n)
		took = time.Since(start)
		*total += took
		if err != nil {
			b.Fatal(err)
		}
		return took, cpu
	}
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		var p, c, pCPU, cCPU time.Duration
		if r%2 == 0 {
			p, pCPU = timed(plain, n, &tPlain)
			c, cCPU = timed(conn, n, &tConn)
		} else {
			c, cCPU = timed(conn, n, &tConn)
			p, pCPU = timed(plain, n, &tPlain)
		}
		if p > 0 {
			ratios = append(ratios, float64(c)/float64(p))
		}
		if pCPU > 0 && cCPU > 0 {
			cpuRatios = append(cpuRatios, float64(cCPU)/float64(pCPU))
		}
	}
	b.StopTimer()

	if tPlain <= 0 || tConn <= 0 || len(ratios) == 0 {
		return
	}
	n := float64(b.N)
	b.ReportMetric(float64(tConn.Nanoseconds())/n, "ns/op")
	b.ReportMetric(float64(tPlain.Nanoseconds())/n, "plain-ns/op")
	b.ReportMetric(float64(size)*n/1e6/tConn.Seconds(), "MB/s")
	b.ReportMetric(median(ratios), "x-plain")
	if len(cpuRatios) > 0 {
		b.ReportMetric(median(cpuRatios), "cpu-x-plain")
	}
}

// median returns the median of v, which it sorts.
func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}
