package forward

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/short"
)

// TestDeliverAcked: records reach the server with their tag and text,
// and Close returns nil once every request is acknowledged.
func TestDeliverAcked(t *testing.T) {
	s := newFakeServer(t, "message", fakeOptions{reorder: true})
	d := &Dialer{Tag: "app.test"}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	writeAndClose(t, c, n)
	s.checkRecords(t, n, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tags) != 1 || s.tags["app.test"] == 0 {
		t.Errorf("tags %v; want app.test only", s.tags)
	}
	t.Logf("%d records in %d requests", n, s.acked)
}

// TestCrashingServer: a server that acknowledges out of order and crashes
// again and again (resets, forgets what it had not acknowledged, listens
// again 100 ms later): every record is acknowledged, no Write fails, Close
// returns nil. Duplicates (records re-sent whose ack the crash lost) are
// reported.
func TestCrashingServer(t *testing.T) {
	platformtest.NeedKernelSockets(t, "a server that resets its connections")
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("Compress=%v", compress), func(t *testing.T) { testCrashingServer(t, compress) })
	}
}

func testCrashingServer(t *testing.T, compress bool) {
	s := newFakeServer(t, "message", fakeOptions{reorder: true, crashEvery: 6, crashPause: 100 * time.Millisecond})
	d := &Dialer{Compress: compress, Dialer: reconn.Dialer{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, FlushTimeout: time.Minute}}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50000
	for i := range n {
		if _, err := fmt.Fprintf(c, "r-%d", i); err != nil {
			t.Fatalf("Write %d = %v", i, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lost, dup := 0, 0
	var lostAt []int
	for i := range n {
		switch k := s.got[fmt.Sprintf("r-%d", i)]; {
		case k == 0:
			if lost == 0 || lostAt[len(lostAt)-1] != i-1 {
				lostAt = append(lostAt, i, i)
			} else {
				lostAt[len(lostAt)-1] = i
			}
			lost++
		case k > 1:
			dup += k - 1
		}
	}
	st := c.Stats()
	t.Logf("%d records: lost %d, duplicated %d; %d crashes, %d requests decoded (%d compressed), %d acknowledged, %d redials, %d resent",
		n, lost, dup, s.crashes, s.requests, s.gzipped, s.acked, st.Redials, st.ResentMessages)
	if lost > 0 {
		t.Fatalf("%d records lost, in ranges %v; stats %+v; server: %d requests decoded, %d acked", lost, lostAt, st, s.requests, s.acked)
	}
	want := 0 // requests compressed
	if compress {
		want = s.requests
	}
	if s.gzipped != want {
		t.Fatalf("%d of %d requests compressed with Compress %v", s.gzipped, s.requests, compress)
	}
	if s.crashes < 3 {
		t.Fatalf("the server crashed %d times; want at least 3 for the test to mean something", s.crashes)
	}
}

// TestNoAck: a server that never acknowledges. Writes are taken until the
// ReplayBuffer is full; then a Write ends at its deadline with a timeout;
// Close ends at its own bound, counting what was not acknowledged.
func TestNoAck(t *testing.T) {
	s := newFakeServer(t, "message", fakeOptions{noAck: true})
	d := &Dialer{Dialer: reconn.Dialer{ReplayBuffer: 4096, FlushTimeout: 200 * time.Millisecond}}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 100)
	for i := range msg {
		msg[i] = 'x'
	}
	const bound = 200 * time.Millisecond
	written := 0
	for {
		c.SetWriteDeadline(time.Now().Add(bound))
		start := time.Now()
		_, err := c.Write(msg)
		if err == nil {
			if written++; written > 4096 {
				t.Fatal("4096 records of 100 bytes taken with a 4 KiB ReplayBuffer and no ack")
			}
			continue
		}
		took := time.Since(start)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Write = %v; want a timeout", err)
		}
		if took < bound-10*time.Millisecond {
			t.Fatalf("Write failed after %v, before its deadline (%v)", took, bound)
		}
		break
	}
	s.wait("a request", func() bool { return s.requests > 0 })
	c.SetWriteDeadline(time.Now().Add(bound))
	start := time.Now()
	err = c.Close()
	var ue *reconn.UnconfirmedError
	if !errors.As(err, &ue) || ue.Messages != written {
		t.Fatalf("Close = %v; want %d records unconfirmed", err, written)
	}
	t.Logf("%d records taken; the next Write timed out; Close took %v", written, time.Since(start))
}

var fixedTime = time.Unix(1700000000, 123456789)

// TestWriteAllocs: a Write encodes its record into a pooled buffer: no
// allocation per Write once the Conn runs. It is a measurement, heavy by
// the rule of internal/short as reconn's own is: AllocsPerRun counts the
// whole process. So the server is the benchmarks' (ackAll), which
// allocates nothing per request once it runs: the fake server allocates
// for each record it decodes, which counted one allocation per Write
// whenever it decoded during the measurement.
func TestWriteAllocs(t *testing.T) {
	short.Skip(t, "a measurement of allocations")
	for _, compress := range []bool{false, true} {
		addr, wait := serveOne(t, 0, func(nc net.Conn) { ackAll(nc) })
		defer wait()
		c, err := (&Dialer{Compress: compress}).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("a record of some length, as a log line is\n")
		write := func() {
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err) // a Write that fails may allocate nothing
			}
		}
		for range 1000 {
			write()
		}
		if a := testing.AllocsPerRun(2000, write); a > 0.05 {
			t.Errorf("Compress %v: %.2f allocations per Write; want 0", compress, a)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteCount: Write reports every byte of b taken, the newline it does
// not send included, as io.Writer requires of a Write that returns nil.
func TestWriteCount(t *testing.T) {
	s := newFakeServer(t, "message", fakeOptions{})
	c, err := Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"line\n", "line", "", "\n"} {
		if n, err := c.Write([]byte(b)); n != len(b) || err != nil {
			t.Errorf("Write(%q) = %d, %v; want %d, nil", b, n, err, len(b))
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	s.wait("4 records", func() bool { return s.got["line"] == 2 && s.got[""] == 2 })
}
