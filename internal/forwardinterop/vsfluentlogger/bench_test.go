package vsfluentlogger

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/tinylib/msgp/msgp"

	"github.com/reconn/reconn/forward"
	"github.com/reconn/reconn/internal/delayline"
)

// BenchmarkVsFluentLogger sends records of 100 bytes to an acknowledging
// fake Forward server, directly and through a proxy that delays each
// direction by 1 ms. It compares package forward (Write each record,
// then Close, which waits for every ack) with fluent-logger-golang with
// RequestAck (Post each record, then Close). It reports each one's
// records/s, and how many times faster forward is.
//
// fluent-logger-golang sends each Post as a request of its own (Message
// mode) and waits for its ack before it sends the next one: one record
// per round trip. With the delay, a round trip takes at least 2 ms, so
// 100,000 records would take more than 200 s. Behind the proxy it sends
// fluentDelayRecords records, which are enough to measure its rate.
// Package forward always sends 100,000.
//
// Each iteration runs both clients, one after the other, so both figures
// come from the same state of the machine. Run with -benchtime 1x
// -count 3.
func BenchmarkVsFluentLogger(b *testing.B) {
	const records = 100000
	const fluentDelayRecords = 1000
	msg := bytes.Repeat([]byte("x"), 100)
	for _, delay := range []time.Duration{0, time.Millisecond} {
		b.Run("delay="+delay.String(), func(b *testing.B) {
			fluentRecords := records
			if delay > 0 {
				fluentRecords = fluentDelayRecords
			}
			var tFwd, tFluent time.Duration
			for b.Loop() {
				tFwd += timeForwardConn(b, delay, records, msg)
				tFluent += timeFluentLogger(b, delay, fluentRecords, msg)
			}
			n := float64(b.N)
			fwdRate := records * n / tFwd.Seconds()
			fluentRate := float64(fluentRecords) * n / tFluent.Seconds()
			b.ReportMetric(fwdRate, "forward-rec/s")
			b.ReportMetric(fluentRate, "fluentlogger-rec/s")
			b.ReportMetric(fwdRate/fluentRate, "forward-x-fluentlogger")
		})
	}
}

// timeForwardConn times package forward as it writes the records and
// closes.
func timeForwardConn(b *testing.B, delay time.Duration, records int, msg []byte) time.Duration {
	s := newAckServer(b)
	addr := delayline.Proxy(b, s.addr, delay)
	start := time.Now()
	c, err := (&forward.Dialer{Tag: benchTag}).Dial("tcp", addr)
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
	s.check(b, records)
	return took
}

// timeFluentLogger times fluent-logger-golang, acks on, as it posts the
// records and closes.
func timeFluentLogger(b *testing.B, delay time.Duration, records int, msg []byte) time.Duration {
	s := newAckServer(b)
	addr := delayline.Proxy(b, s.addr, delay)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		b.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		b.Fatal(err)
	}
	rec := map[string]any{"message": string(msg)}
	start := time.Now()
	f, err := fluent.New(fluent.Config{FluentHost: host, FluentPort: p, RequestAck: true})
	if err != nil {
		b.Fatal(err)
	}
	for range records {
		if err := f.Post(benchTag, rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	s.check(b, records)
	return took
}

// ackServer is a Forward server that acknowledges each request that
// asks, once it has read it whole. It takes the three modes: Message
// [tag, time, record, option?], Forward [tag, [[time, record], ...],
// option?] and PackedForward [tag, bin or str of entries, option?]. It
// decodes no more than it needs to find the records and the "chunk"
// option: the benchmark measures the clients.
type ackServer struct {
	addr    string
	ln      net.Listener
	wg      sync.WaitGroup
	records atomic.Int64 // records in the requests acknowledged
	mu      sync.Mutex
	conns   map[net.Conn]bool
	err     error // the first request that did not decode
}

func newAckServer(b testing.TB) *ackServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &ackServer{addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[nc] = true
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, nc)
					s.mu.Unlock()
					nc.Close()
				}()
				if err := s.serve(nc); err != nil {
					s.mu.Lock()
					if s.err == nil {
						s.err = err
					}
					s.mu.Unlock()
				}
			})
		}
	})
	b.Cleanup(s.stop)
	return s
}

// stop closes the listener and every connection, and waits for the
// server's goroutines.
func (s *ackServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// check stops the server and fails the benchmark unless it decoded every
// request and acknowledged records records.
func (s *ackServer) check(b testing.TB, records int) {
	b.Helper()
	s.stop()
	if s.err != nil {
		b.Fatalf("fake server: %v", s.err)
	}
	if got := s.records.Load(); got != int64(records) {
		b.Fatalf("the server acknowledged %d records; want %d", got, records)
	}
}

// serve reads requests until the client closes, and answers each one
// that carries a chunk id with {"ack": id}; the acks for what one read
// brought go in one write.
func (s *ackServer) serve(nc net.Conn) error {
	buf := make([]byte, 0, 1<<20)
	rd := make([]byte, 256<<10)
	var ans []byte
	for {
		k, rerr := nc.Read(rd)
		buf = append(buf, rd[:k]...)
		ans = ans[:0]
		off := 0
		for off < len(buf) {
			rest, err := msgp.Skip(buf[off:])
			if errors.Is(err, msgp.ErrShortBytes) {
				break // the rest of the request is still to come
			}
			if err != nil {
				return err
			}
			end := len(buf) - len(rest)
			n, chunk, err := decodeForward(buf[off:end])
			if err != nil {
				return err
			}
			s.records.Add(int64(n))
			if chunk != "" {
				ans = msgp.AppendMapHeader(ans, 1)
				ans = msgp.AppendString(ans, "ack")
				ans = msgp.AppendString(ans, chunk)
			}
			off = end
		}
		buf = append(buf[:0], buf[off:]...)
		if len(ans) > 0 {
			if _, err := nc.Write(ans); err != nil {
				return nil // the client went away
			}
		}
		if rerr != nil {
			return nil
		}
	}
}

// decodeForward decodes one whole request, of any mode, and returns how
// many records it holds and its chunk id ("" if it asks for no ack). The
// mode is told, as the protocol says, by the type of the second element.
func decodeForward(req []byte) (records int, chunk string, err error) {
	elems, b, err := msgp.ReadArrayHeaderBytes(req)
	if err != nil {
		return 0, "", fmt.Errorf("request: %w", err)
	}
	if elems < 2 || elems > 4 {
		return 0, "", fmt.Errorf("request: an array of %d", elems)
	}
	if _, b, err = msgp.ReadStringZC(b); err != nil {
		return 0, "", fmt.Errorf("tag: %w", err)
	}
	var body int // elements after the tag before the option
	switch msgp.NextType(b) {
	case msgp.BinType, msgp.StrType: // PackedForward
		var entries []byte
		if msgp.NextType(b) == msgp.BinType {
			entries, b, err = msgp.ReadBytesZC(b)
		} else {
			entries, b, err = msgp.ReadStringZC(b)
		}
		if err != nil {
			return 0, "", fmt.Errorf("entries: %w", err)
		}
		for len(entries) > 0 {
			if entries, err = msgp.Skip(entries); err != nil {
				return 0, "", fmt.Errorf("entry %d: %w", records, err)
			}
			records++
		}
		body = 1
	case msgp.ArrayType: // Forward
		var n uint32
		if n, b, err = msgp.ReadArrayHeaderBytes(b); err != nil {
			return 0, "", fmt.Errorf("entries: %w", err)
		}
		for i := range n {
			if b, err = msgp.Skip(b); err != nil {
				return 0, "", fmt.Errorf("entry %d: %w", i, err)
			}
		}
		records, body = int(n), 1
	case msgp.IntType, msgp.UintType, msgp.ExtensionType: // Message
		for range 2 { // time, record
			if b, err = msgp.Skip(b); err != nil {
				return 0, "", fmt.Errorf("message: %w", err)
			}
		}
		records, body = 1, 2
	default:
		return 0, "", fmt.Errorf("request: second element of type %v", msgp.NextType(b))
	}
	switch int(elems) - 1 - body {
	case 0:
		return records, "", nil // no option
	case 1:
	default:
		return 0, "", fmt.Errorf("request: an array of %d", elems)
	}
	opts, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return 0, "", fmt.Errorf("option: %w", err)
	}
	for range opts {
		var key []byte
		if key, b, err = msgp.ReadStringZC(b); err != nil {
			return 0, "", fmt.Errorf("option key: %w", err)
		}
		if string(key) == "chunk" {
			var v []byte
			if v, b, err = msgp.ReadStringZC(b); err != nil {
				return 0, "", fmt.Errorf("chunk: %w", err)
			}
			chunk = string(v)
			continue
		}
		if b, err = msgp.Skip(b); err != nil {
			return 0, "", fmt.Errorf("option %q: %w", key, err)
		}
	}
	return records, chunk, nil
}
