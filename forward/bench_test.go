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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		io.Copy(io.Discard, nc)
	})
	addr := proxy(b, ln.Addr().String(), delay)
	start := time.Now()
	c, err := (&reconn.Dialer{Async: true}).Dial("tcp", addr)
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

// timeForward times package forward to a server that acknowledges every
// request as soon as it has read it whole.
func timeForward(b *testing.B, delay time.Duration, records int, msg []byte, d *Dialer) time.Duration {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	var got int64
	wg.Go(func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		got = ackAll(b, nc)
	})
	addr := proxy(b, ln.Addr().String(), delay)
	if d == nil {
		d = &Dialer{}
	}
	start := time.Now()
	c, err := d.Dial("tcp", addr)
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
	took := time.Since(start)
	ln.Close()
	wg.Wait()
	if got != int64(records) {
		b.Fatalf("the server acknowledged %d records; want %d", got, records)
	}
	return took
}

// ackAll reads PackedForward requests from nc until it ends, answers
// each with its chunk's ack, and returns the records acknowledged, by
// the requests' "size". It decodes no more than that: the benchmark
// measures the client.
func ackAll(b *testing.B, nc net.Conn) int64 {
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
					ans = appendStr(ans, string(v.b))
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

// proxy forwards one connection at a time to target, holding each chunk
// it reads for delay before writing it on, in each direction; with no
// delay it returns target itself. It stops when the benchmark ends.
func proxy(b *testing.B, target string, delay time.Duration) string {
	if delay == 0 {
		return target
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			// Each side closes both once its direction ends.
			wg.Go(func() { delayCopy(out, in, delay); out.Close(); in.Close() })
			wg.Go(func() { delayCopy(in, out, delay); in.Close(); out.Close() })
		}
	})
	return ln.Addr().String()
}

// delayCopy copies src to dst, each chunk written delay after it was read,
// in order: a line with that one-way latency, and no bandwidth limit.
func delayCopy(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 4096)
	var wg sync.WaitGroup
	wg.Go(func() {
		for c := range ch {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.b); err != nil {
				for range ch {
				}
				return
			}
		}
	})
	for {
		buf := make([]byte, 64<<10)
		n, err := src.Read(buf)
		if n > 0 {
			ch <- chunk{buf[:n], time.Now().Add(delay)}
		}
		if err != nil {
			break
		}
	}
	close(ch)
	wg.Wait()
}
