package forward

import (
	"bytes"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/delayline"
)

// BenchmarkAckCost streams 100,000 records of 100 bytes and closes,
// through a proxy that holds each chunk for the delay in each direction,
// and reports records/s and the ratio of the time taken to that of plain
// reconn over TCP with Async, which batches as package forward does, to
// a server that reads and discards (Write, then Close, which waits for
// the kernel at the other end, the proxy's when there is a delay, to
// acknowledge every byte):
//
//   - forward: package forward, acks on, the default Window;
//   - stop-and-wait: package forward with one record a request and one
//     request in flight, as a client that waits for each ack does.
//
// Each iteration runs the three, interleaved, so the ratios come from one
// machine state. Run with -benchtime 1x -count 3.
func BenchmarkAckCost(b *testing.B) {
	for _, delay := range []time.Duration{0, time.Millisecond} {
		b.Run("delay="+delay.String(), func(b *testing.B) {
			const records, rounds = 100000, 5
			msg := bytes.Repeat([]byte("x"), 99)
			msg = append(msg, '\n')
			// Stop-and-wait is slow by design: a few hundred records
			// are enough to measure its rate.
			stopRecords := records / 50
			if delay > 0 {
				stopRecords = records / 500
			}
			var tPlain, tFwd, tStop time.Duration
			var ratios []float64
			for b.Loop() {
				for range rounds {
					p := timePlain(b, delay, records, msg)
					f := timeForward(b, delay, records, msg, nil)
					tPlain, tFwd = tPlain+p, tFwd+f
					ratios = append(ratios, f.Seconds()/p.Seconds())
				}
				tStop += timeForward(b, delay, stopRecords, msg, &Dialer{Window: 1, BatchRecords: 1})
			}
			n := float64(b.N)
			slices.Sort(ratios)
			b.ReportMetric(records*rounds*n/tPlain.Seconds(), "plain-rec/s")
			b.ReportMetric(records*rounds*n/tFwd.Seconds(), "forward-rec/s")
			b.ReportMetric(float64(stopRecords)*n/tStop.Seconds(), "stop-and-wait-rec/s")
			b.ReportMetric(ratios[len(ratios)/2], "forward-x-plain")
			b.ReportMetric(records*rounds*tStop.Seconds()/(float64(stopRecords)*tFwd.Seconds()), "stop-and-wait-x-forward")
		})
	}
}

// timePlain times reconn over TCP, with Async, to a server that reads
// and discards.
func timePlain(b *testing.B, delay time.Duration, records int, msg []byte) time.Duration {
	addr, wait := serveOne(b, delay, func(nc net.Conn) { io.Copy(io.Discard, nc) })
	defer wait()
	return timeStream(b, records, msg, func() (io.WriteCloser, error) {
		return (&reconn.Dialer{Async: true}).Dial("tcp", addr)
	})
}

// timeForward times package forward to a server that acknowledges every
// request as soon as it has read it whole.
func timeForward(b *testing.B, delay time.Duration, records int, msg []byte, d *Dialer) time.Duration {
	var got int64
	addr, wait := serveOne(b, delay, func(nc net.Conn) { got = ackAll(nc) })
	if d == nil {
		d = &Dialer{}
	}
	took := timeStream(b, records, msg, func() (io.WriteCloser, error) { return d.Dial("tcp", addr) })
	wait()
	if got != int64(records) {
		b.Fatalf("the server acknowledged %d records; want %d", got, records)
	}
	return took
}

// serveOne hands the first connection to a free port of 127.0.0.1 to
// serve, and returns the address to dial, through a delay line if delay
// is not zero; wait stops listening and waits for serve to return.
func serveOne(b testing.TB, delay time.Duration, serve func(net.Conn)) (addr string, wait func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		serve(nc)
	})
	return delayline.Proxy(b, ln.Addr().String(), delay), func() {
		ln.Close()
		wg.Wait()
	}
}

// timeStream times a dial, the Writes of records copies of msg, and the
// Close that waits for their delivery.
func timeStream(b *testing.B, records int, msg []byte, dial func() (io.WriteCloser, error)) time.Duration {
	start := time.Now()
	c, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	for range records {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// ackAll reads PackedForward requests from nc until it ends, answers
// each with its chunk's ack, and returns the records acknowledged, by
// the requests' "size". It decodes no more than that: the benchmark
// measures the client.
func ackAll(nc net.Conn) int64 {
	var n int64
	buf := make([]byte, 0, 1<<20)
	rd := make([]byte, 256<<10)
	var ans []byte
	for {
		k, err := nc.Read(rd)
		buf = append(buf, rd[:k]...)
		ans = ans[:0]
		for {
			total, serr := skipMax(buf, 0, 16<<20)
			if serr != nil {
				break
			}
			req := buf[:total]
			_, i, _ := headMax(req, 16<<20) // [tag, entries, option]
			for range 2 {
				m, _ := skipMax(req[i:], 1, 16<<20)
				i += m
			}
			opt, m, _ := headMax(req[i:], 16<<20)
			i += m
			for range opt.n {
				key, kn, _ := head(req[i:])
				i += kn
				v, vn, _ := head(req[i:])
				i += vn
				switch string(key.b) {
				case "chunk":
					ans = appendMapHeader(ans, 1)
					ans = appendStr(ans, "ack")
					ans = appendStr(ans, v.b)
				case "size":
					n += v.i
				}
			}
			buf = append(buf[:0], buf[total:]...)
		}
		if len(ans) > 0 {
			if _, err := nc.Write(ans); err != nil {
				return n
			}
		}
		if err != nil {
			return n
		}
	}
}
