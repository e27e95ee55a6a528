package relp

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/reconn/reconn/internal/syslogtest"
)

// BenchmarkRELPvsTCP measures, on one rsyslogd, the time from the first
// Write until rsyslogd has written the last message to its file: n
// messages over RELP (imrelp) with a Conn of this package and Close,
// against n messages written one by one on a plain TCP connection to
// imtcp. Rounds alternate the order; it reports the median ratio of the
// rounds as x-tcp.
//
//	go test -run '^$' -bench RELPvsTCP -benchtime 100000x ./relp/
func BenchmarkRELPvsTCP(b *testing.B) {
	dir := b.TempDir()
	tcpLog := filepath.Join(dir, "tcp.log")
	tcpPort := syslogtest.FreePort(b)
	r := startImrelp(b, imrelpConfig{extra: fmt.Sprintf(`module(load="imtcp")
ruleset(name="tcp") { action(type="omfile" file=%q template="raw") }
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="tcp")`, tcpLog, tcpPort)})
	r.waitListening(tcpPort)
	tcpAddr := fmt.Sprintf("127.0.0.1:%d", tcpPort)

	rounds := min(b.N, 10)
	var tTCP, tRELP time.Duration
	var ratios []float64
	seq := 0
	b.ResetTimer()
	for k := range rounds {
		n := b.N / rounds
		if k < b.N%rounds {
			n++
		}
		viaTCP := func() time.Duration {
			start := time.Now()
			c, err := net.Dial("tcp", tcpAddr)
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				if _, err := c.Write(append(testMessage(seq+i), '\n')); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			waitSeq(b, tcpLog, seq+n-1)
			seq += n
			return time.Since(start)
		}
		viaRELP := func() time.Duration {
			start := time.Now()
			c, err := benchDialer.Dial("tcp", r.addr())
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				if _, err := c.Write(testMessage(seq + i)); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
			waitSeq(b, r.out, seq+n-1)
			seq += n
			return time.Since(start)
		}
		var a, p time.Duration
		if k%2 == 0 {
			p, a = viaTCP(), viaRELP()
		} else {
			a, p = viaRELP(), viaTCP()
		}
		tTCP += p
		tRELP += a
		ratios = append(ratios, float64(a)/float64(p))
	}
	b.StopTimer()
	slices.Sort(ratios)
	b.ReportMetric(float64(tRELP.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(tTCP.Nanoseconds())/float64(b.N), "tcp-ns/op")
	b.ReportMetric(ratios[len(ratios)/2], "x-tcp")
}

// waitSeq waits until the file at name ends with message seq, written by
// rsyslogd, which gives no other signal.
func waitSeq(b *testing.B, name string, seq int) {
	want := []byte(fmt.Sprintf("seq=%d ", seq))
	until := time.Now().Add(time.Minute)
	for d := 100 * time.Microsecond; ; d = min(2*d, 5*time.Millisecond) {
		if f, err := os.Open(name); err == nil {
			tail := make([]byte, 4096)
			if fi, err := f.Stat(); err == nil {
				off := max(0, fi.Size()-int64(len(tail)))
				n, _ := f.ReadAt(tail, off)
				tail = tail[:n]
			}
			f.Close()
			if bytes.Contains(tail, want) {
				return
			}
		}
		if time.Now().After(until) {
			b.Fatalf("rsyslogd did not write seq=%d to %s", seq, name)
		}
		time.Sleep(d)
	}
}

var benchDialer = &Dialer{Window: 1024}
