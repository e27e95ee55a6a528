package relp

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/short"
	"github.com/reconn/reconn/internal/spool"
)

// testDialer returns a Dialer whose timeouts suit tests.
func testDialer() *Dialer {
	d := &Dialer{}
	d.UserTimeout = 10 * time.Second // a starved server is not dead
	d.RedialTimeout = 10 * time.Second
	d.MinBackoff = 2 * time.Millisecond
	d.MaxBackoff = 20 * time.Millisecond
	d.FlushTimeout = short.Limit(10 * time.Second)
	return d
}

// dialRELP dials addr and closes the Conn when the test ends.
func dialRELP(t *testing.T, d *Dialer, addr string) *reconn.Conn {
	t.Helper()
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("Dial(%s) = %v", addr, err)
	}
	c := nc.(*reconn.Conn)
	t.Cleanup(func() { c.Close() })
	return c
}

// writeAll writes messages from..to-1.
func writeAll(t *testing.T, c *reconn.Conn, from, to int) {
	t.Helper()
	for seq := from; seq < to; seq++ {
		if _, err := c.Write(testMessage(seq)); err != nil {
			t.Fatalf("Write(seq %d) = %v", seq, err)
		}
	}
}

func TestClient(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[withTLS], func(t *testing.T) {
			const n = 10000
			var opts fakeOptions
			d := testDialer()
			if withTLS {
				pki := newTestPKI(t, platformtest.TempDir(t))
				opts.tls = pki.server
				d.TLSConfig = pki.client
			}
			s := newFakeServer(t, opts)
			c := dialRELP(t, d, s.addr)
			writeAll(t, c, 0, n)
			if err := c.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			if r := s.report(n); r.received != n || r.duplicates != 0 {
				t.Errorf("%v; want all %d once", r, n)
			}
			checkNoViolations(t, s)
			if st := c.Stats(); st.Dials != 1 || st.Pending != 0 {
				t.Errorf("Stats() = %+v; want one dial, nothing pending", st)
			}
		})
	}
}

// TestClientWindow: a server that holds its answers. No more than Window
// messages wait for answers; Flush reports them unconfirmed at its bound;
// once the answers come, everything is confirmed.
func TestClientWindow(t *testing.T) {
	const n, window = 1000, 16
	s := newFakeServer(t, fakeOptions{})
	d := testDialer()
	d.Window = window
	c := dialRELP(t, d, s.addr)
	ctx := testContext(t)
	writeAll(t, c, 0, 1) // the session is up before the answers stop
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.holdAcks()
	writeAll(t, c, 1, n)
	if err := s.waitMessages(ctx, 1+window); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := c.Flush(fctx)
	cancel()
	var ue *reconn.UnconfirmedError
	if !errors.As(err, &ue) || ue.Messages != n-1 {
		t.Errorf("Flush with the answers held = %v; want %d messages unconfirmed", err, n-1)
	}
	if got := len(s.messages()); got != 1+window {
		t.Errorf("the server got %d messages with %d answered and a window of %d; want %d", got, 1, window, 1+window)
	}
	s.releaseAcks()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush after the answers came = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if r := s.report(n); r.received != n || r.duplicates != 0 {
		t.Errorf("%v; want all %d once", r, n)
	}
	if m := s.conn(1).maxOutstanding(); m > window {
		t.Errorf("%d messages waited for answers at once; window %d", m, window)
	}
	checkNoViolations(t, s)
}

// TestClientNeverAnswers: with no answers, Write buffers until the replay
// buffer is full, then ends at its deadline.
func TestClientNeverAnswers(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	d := testDialer()
	d.ReplayBuffer = 64 << 10
	c := dialRELP(t, d, s.addr)
	s.holdAcks()
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	var err error
	for seq := 0; err == nil; seq++ {
		_, err = c.Write(testMessage(seq))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write with no answers = %v; want a timeout at the deadline", err)
	}
	c.SetWriteDeadline(time.Time{})
	s.releaseAcks()
}

// TestClientRefused: a message the server answers with an error is
// counted and reported once; the others go on.
func TestClientRefused(t *testing.T) {
	const n, bad = 100, 42
	s := newFakeServer(t, fakeOptions{answer: func(m received) (int, string) {
		if m.seq == bad {
			return 500, "no thanks"
		}
		return codeOK, "OK"
	}})
	c := dialRELP(t, testDialer(), s.addr)
	// The next call after the answer reports the refusal: a Write (which
	// then takes nothing: its message goes again), or the first Flush.
	reported := 0
	for seq := 0; seq < n; {
		if _, err := c.Write(testMessage(seq)); err != nil {
			if !strings.Contains(err.Error(), "500 no thanks") || reported > 0 {
				t.Fatalf("Write(seq %d) = %v after %d reports of the refusal", seq, err, reported)
			}
			reported++
			continue // the same message again
		}
		seq++
	}
	ctx := testContext(t)
	if err := s.waitAnswered(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		if !strings.Contains(err.Error(), "500 no thanks") {
			t.Errorf("Flush after a refusal = %v; want nil or the server's refusal", err)
		}
		reported++
	}
	if reported != 1 {
		t.Errorf("the refusal was reported %d times; want once", reported)
	}
	if err := c.Flush(ctx); err != nil {
		t.Errorf("second Flush = %v; want nil: the refusal is reported once", err)
	}
	if st := c.Stats(); st.Refused != 1 {
		t.Errorf("Stats().Refused = %d; want 1", st.Refused)
	}
}

// TestClientSessionEnds: the server ends the session in mid-stream, in
// each way it can: serverclose, a reset, malformed bytes. The Conn opens a
// new session and sends again every message not yet answered, in order:
// nothing is lost.
func TestClientSessionEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*fakeConn)
	}{
		{"serverclose", (*fakeConn).serverClose},
		{"reset", (*fakeConn).reset},
		{"malformed", func(c *fakeConn) { c.sendRaw([]byte("garbage\n")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 20000
			s := newFakeServer(t, fakeOptions{})
			d := testDialer()
			c := dialRELP(t, d, s.addr)
			ctx := testContext(t)
			done := make(chan error, 1)
			go func() {
				err := s.waitMessages(ctx, n/3)
				if err == nil {
					tc.end(s.conn(1))
				}
				done <- err
			}()
			writeAll(t, c, 0, n)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := c.Close(); err != nil {
				t.Fatalf("Close() = %v after %v", err, time.Since(start))
			}
			took := time.Since(start)
			r := s.report(n)
			if r.received != n {
				t.Errorf("%v; want all %d", r, n)
			}
			if st := c.Stats(); st.Redials < 1 {
				t.Errorf("Stats() = %+v; want a redial", st)
			}
			t.Logf("%s after %d: %v; re-sent %d; Close took %v", tc.name, n/3, r, c.Stats().ResentMessages, took.Round(time.Millisecond))
		})
	}
}

// TestClientBadInput: bad options fail at Dial; a message longer than
// MaxMessageSize fails with ErrTooLarge; Read is refused.
func TestClientBadInput(t *testing.T) {
	for _, d := range []*Dialer{{Window: -1}, {MaxMessageSize: -1}} {
		if nc, err := d.Dial("tcp", "127.0.0.1:1"); err == nil {
			nc.Close()
			t.Errorf("Dial with %+v = nil error", d)
		}
	}
	if _, err := Dial("udp", "127.0.0.1:1"); err == nil {
		t.Error("Dial(udp) = nil error")
	}
	s := newFakeServer(t, fakeOptions{})
	d := testDialer()
	d.MaxMessageSize = 100
	c := dialRELP(t, d, s.addr)
	if _, err := c.Write(make([]byte, 101)); !errors.Is(err, reconn.ErrTooLarge) {
		t.Errorf("Write(101 bytes) with MaxMessageSize 100 = %v; want ErrTooLarge", err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("Read = nil error; want one")
	}
}

// TestClientSpool: with a spool, only the server's answer confirms a
// message. A Conn whose server holds its answers leaves every unanswered
// message in the spool at Close, and says how many; the next Conn on the
// directory sends them first, then its own, and all arrive.
func TestClientSpool(t *testing.T) {
	if !spool.Supported {
		t.Skip("SpoolDir needs shared file mappings, which this platform lacks")
	}
	s := newFakeServer(t, fakeOptions{})
	s.holdAcks()
	dir := platformtest.TempDir(t)
	d := testDialer()
	d.SpoolDir = dir
	d.FlushTimeout = 200 * time.Millisecond
	c := dialRELP(t, d, s.addr)
	writeAll(t, c, 0, 1000)
	var ue *reconn.UnconfirmedError
	if err := c.Close(); !errors.As(err, &ue) || ue.Messages != 1000 {
		t.Fatalf("Close with the answers held = %v; want 1000 messages unconfirmed", err)
	}
	s.releaseAcks()
	d2 := testDialer()
	d2.SpoolDir = dir
	c2 := dialRELP(t, d2, s.addr)
	writeAll(t, c2, 1000, 1500)
	if err := c2.Close(); err != nil {
		t.Fatalf("the next Conn's Close() = %v", err)
	}
	r := s.report(1500)
	if r.received != 1500 || r.duplicates > defaultWindow {
		t.Errorf("%v; want all 1500, at most a window (%d) twice", r, defaultWindow)
	}
}
