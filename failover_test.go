package reconn_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/short"
)

// failoverDialer is testDialer with the given fallbacks and a failback
// interval that suits tests.
func failoverDialer(fallbacks ...*faultnet.Server) *reconn.Dialer {
	d := testDialer()
	for _, f := range fallbacks {
		d.Fallbacks = append(d.Fallbacks, f.Addr().String())
	}
	d.FailbackInterval = 50 * time.Millisecond
	d.HandoffTimeout = handoffLimit
	return d
}

// handoffLimit is the HandoffTimeout of the tests whose moves must send
// nothing twice: it only bounds a wait for acknowledgements that come, so
// a starved machine does not end it first.
var handoffLimit = short.Limit(10 * time.Second)

// checkDuplicates fails t unless r lost nothing outside the unread set and
// duplicated no more messages than c re-sent. After a reset the Conn
// re-sends what the server's kernel had not acknowledged, and TCP lets a
// kernel delay an acknowledgement of what its application has already
// read, then never send it once the socket is reset: at least once is
// the promise there. A message sent twice for any other reason, never
// re-sent, exceeds the bound.
func checkDuplicates(t *testing.T, c *reconn.Conn, r faultnet.Report) {
	t.Helper()
	if s := c.Stats(); r.ClientLost != 0 || int64(r.Duplicated) > s.ResentMessages {
		t.Errorf("client lost %d, duplicated %d; want none lost, at most the %d re-sent duplicated\n%v\nStats() = %+v", r.ClientLost, r.Duplicated, s.ResentMessages, r, s)
	}
}

// events collects a Conn's RedialEvents.
type events struct {
	mu  sync.Mutex
	all []reconn.RedialEvent
	ch  chan reconn.RedialEvent
}

func watchEvents(d *reconn.Dialer) *events {
	e := &events{ch: make(chan reconn.RedialEvent, 1000)}
	d.OnRedial = func(ev reconn.RedialEvent) {
		e.mu.Lock()
		e.all = append(e.all, ev)
		e.mu.Unlock()
		e.ch <- ev
	}
	return e
}

// await waits for an event of the given reason and returns it.
func (e *events) await(t *testing.T, reason reconn.RedialReason) reconn.RedialEvent {
	t.Helper()
	ctx := testContext(t)
	for {
		select {
		case ev := <-e.ch:
			if ev.Reason == reason {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("no %v event", reason)
		}
	}
}

// TestFailoverPrimaryDies: the primary resets every connection and stops
// listening for good in mid-stream; the stream goes on on the fallback.
func TestFailoverPrimaryDies(t *testing.T) {
	const total, size = 20000, 100
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
			primary, fallback := newPrivateServer(t), newPrivateServer(t)
			d := failoverDialer(fallback)
			d.Async = async
			c := dialServer(t, d, primary)
			// The primary dies once it has a third of the stream, before
			// the rest is written, which must then go to the fallback.
			var buf []byte
			for seq := 0; seq < total; seq++ {
				if seq == total/3 {
					if err := primary.WaitReceived(testContext(t), seq); err != nil {
						t.Fatal(err)
					}
					if err := primary.Refuse(); err != nil {
						t.Fatal(err)
					}
					primary.RST()
				}
				buf = send(t, c, buf, seq, size)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			waitFinal(t, c, primary, fallback)
			r := faultnet.ReportAll(total, primary, fallback)
			exactOrSkip(t, r)
			checkDuplicates(t, c, r)
			if s := c.Stats(); s.Failovers < 1 || s.Address != fallback.Addr().String() {
				t.Errorf("Stats() = %+v; want a failover to %v", s, fallback.Addr())
			}
			t.Logf("primary died: %v", r)
		})
	}
}

// waitFinal waits until each server's accounting is final, after c was
// closed: the server c wrote to last has accepted c's last connection,
// which may still wait in its backlog, and every server has read each
// connection to its end.
func waitFinal(t *testing.T, c *reconn.Conn, servers ...*faultnet.Server) {
	t.Helper()
	ctx := testContext(t)
	for _, s := range servers {
		if c.Stats().Address == s.Addr().String() {
			if err := waitAcceptedAddr(ctx, s, c.LocalAddr(), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range servers {
		if err := s.WaitEOF(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFailoverPrimaryDownAtDial: with the primary down, the first
// connection goes to the fallback, in both modes.
func TestFailoverPrimaryDownAtDial(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
			primary, fallback := newPrivateServer(t), newPrivateServer(t)
			if err := primary.Refuse(); err != nil {
				t.Fatal(err)
			}
			d := failoverDialer(fallback)
			d.FailbackInterval = -1
			d.Async = async
			c := dial(t, d, primary.Addr())
			send(t, c, nil, 0, 100)
			if err := fallback.WaitReceived(testContext(t), 1); err != nil {
				t.Fatal(err)
			}
			if s := c.Stats(); s.Address != fallback.Addr().String() || s.Dials != 1 {
				t.Errorf("Stats() = %+v; want one dial, to %v", s, fallback.Addr())
			}
		})
	}
}

// TestFailback: the primary dies, the fallback takes the stream, then the
// primary listens again: the stream moves back to it with the graceful
// handoff, losing nothing and sending nothing twice by the move (the
// reset before it may: see checkDuplicates).
func TestFailback(t *testing.T) {
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
			primary, fallback := newPrivateServer(t), newPrivateServer(t)
			d := failoverDialer(fallback)
			d.Async = async
			ev := watchEvents(d)
			c := dialServer(t, d, primary)
			ctx := testContext(t)

			// A writer streams, paced by the servers, until told to stop.
			var seq atomic.Int64
			stopWriting := make(chan struct{})
			wrote := make(chan error, 1)
			go func() {
				var buf []byte
				for {
					select {
					case <-stopWriting:
						wrote <- nil
						return
					default:
					}
					n := int(seq.Load())
					buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, n, 100)
					if _, err := c.Write(buf); err != nil {
						wrote <- err
						return
					}
					seq.Add(1)
				}
			}()
			if err := primary.WaitReceived(ctx, 1000); err != nil {
				t.Fatal(err)
			}
			primary.Refuse()
			primary.RST()
			if e := ev.await(t, reconn.RedialFailure); e.To != fallback.Addr().String() {
				t.Errorf("failover event %+v; want a move to %v", e, fallback.Addr())
			}
			if err := fallback.WaitReceived(ctx, 1000); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			if err := primary.Accept(); err != nil {
				t.Fatal(err)
			}
			e := ev.await(t, reconn.RedialFailback)
			took := time.Since(back)
			if e.From != fallback.Addr().String() || e.To != primary.Addr().String() {
				t.Errorf("failback event %+v; want %v to %v", e, fallback.Addr(), primary.Addr())
			}
			// Let some messages go to the primary again. Report counts
			// the messages received among the first n sent.
			if err := primary.WaitReceived(ctx, primary.Report(int(seq.Load())).Received+1000); err != nil {
				t.Fatal(err)
			}
			close(stopWriting)
			if err := <-wrote; err != nil {
				t.Fatalf("Write = %v", err)
			}
			total := int(seq.Load())
			if err := c.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			waitFinal(t, c, primary, fallback)
			r := faultnet.ReportAll(total, primary, fallback)
			exactOrSkip(t, r)
			checkDuplicates(t, c, r)
			if e.Replayed != 0 {
				t.Errorf("the failback re-sent %d messages; want none: its handoff waits for the fallback's acknowledgements", e.Replayed)
			}
			if t.Failed() {
				ev.mu.Lock()
				t.Logf("events: %+v", ev.all)
				ev.mu.Unlock()
			}
			s := c.Stats()
			if s.Failbacks != 1 || s.Address != primary.Addr().String() {
				t.Errorf("Stats() = %+v; want 1 failback, on %v", s, primary.Addr())
			}
			t.Logf("failback %v after the primary listened again (interval %v); %d messages, %v", took.Round(time.Millisecond), d.FailbackInterval, total, r)
		})
	}
}

// TestFailoverAllDown: every server down; a Write waits within its bound
// and its error wraps the last dial error; both addresses were tried.
func TestFailoverAllDown(t *testing.T) {
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	primary, fallback := newPrivateServer(t), newPrivateServer(t)
	d := failoverDialer(fallback)
	var mu sync.Mutex
	tried := map[string]int{}
	cd := newCountingDialer()
	d.Dialer = dialerFunc(func(ctx context.Context, network, address string) (nc net.Conn, err error) {
		mu.Lock()
		tried[address]++
		mu.Unlock()
		return cd.DialContext(ctx, network, address)
	})
	c := dialServer(t, d, primary)
	for _, s := range []*faultnet.Server{primary, fallback} {
		if err := s.Refuse(); err != nil {
			t.Fatal(err)
		}
	}
	primary.RST()
	awaitReset(t, c)
	// Long enough for a dial to each address under load.
	c.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := c.Write([]byte("seq=0\n"))
	checkRedialTimeout(t, err)
	mu.Lock()
	defer mu.Unlock()
	if tried[primary.Addr().String()] < 2 || tried[fallback.Addr().String()] < 1 {
		t.Errorf("dial attempts per address: %v; want the primary (twice: the first dial) and the fallback", tried)
	}
}

// TestRotation: ConnMaxLifetime 200 ms over a stream that goes on until
// the Conn has rotated 4 times; every move is a graceful handoff: nothing
// lost, nothing duplicated.
func TestRotation(t *testing.T) {
	platformtest.NeedTCPInfo(t)
	platformtest.NeedKernelSockets(t, "moves with no duplicate, which the kernel's acknowledgement count makes exact")
	const rotations = 4
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
			srv := newPrivateServer(t)
			d := testDialer()
			d.ConnMaxLifetime = 200 * time.Millisecond
			d.HandoffTimeout = handoffLimit
			d.Async = async
			ev := watchEvents(d)
			c := dialServer(t, d, srv)
			var buf []byte
			seq := 0
			ctx := testContext(t)
			for ; seq%100 != 0 || c.Stats().Rotations < rotations; seq++ {
				if ctx.Err() != nil {
					t.Fatalf("%d rotations after %d messages; want %d", c.Stats().Rotations, seq, rotations)
				}
				buf = send(t, c, buf, seq, 100)
			}
			finish(t, c, srv)
			r := srv.Report(seq)
			if r.Lost != 0 || r.Duplicated != 0 {
				t.Errorf("lost %d, duplicated %d; want 0, 0\n%v", r.Lost, r.Duplicated, r)
			}
			s := c.Stats()
			// A rotation's dial that Close overtook counts, unused.
			if s.Dials < s.Rotations+1 || s.Dials > s.Rotations+2 || s.Redials != 0 {
				t.Errorf("Stats() = %+v; want a connection per rotation (one more if Close came in one) and no redial", s)
			}
			ev.mu.Lock()
			for _, e := range ev.all {
				if e.Reason != reconn.RedialRotation {
					t.Errorf("event %+v; want rotations only", e)
				}
			}
			ev.mu.Unlock()
			t.Logf("%d messages over %d connections (%d rotations, %d re-sent): %v", seq, s.Dials, s.Rotations, s.ResentMessages, r)
		})
	}
}

// TestFallbackBadInput: a bad fallback fails at Dial, naming it.
func TestFallbackBadInput(t *testing.T) {
	for _, tc := range []struct {
		network  string
		fallback string
		want     string
	}{
		{"tcp", "", "Fallbacks[0]"},
		{"tcp", "127.0.0.1", "missing port"},
		{"tcp", "127.0.0.1:http-nope", "Fallbacks[0]"},
		{"tcp4", "[::1]:514", "not of network tcp4"},
		{"tcp6", "127.0.0.1:514", "not of network tcp6"},
	} {
		d := testDialer()
		d.Fallbacks = []string{tc.fallback}
		cd := newCountingDialer()
		d.Dialer = cd
		c, err := d.Dial(tc.network, "127.0.0.1:1")
		if err == nil {
			c.Close()
			t.Errorf("Dial(%q) with fallback %q = nil error", tc.network, tc.fallback)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Dial(%q) with fallback %q = %v; want it to say %q", tc.network, tc.fallback, err, tc.want)
		}
		if n := len(cd.times()); n != 0 {
			t.Errorf("Dial with a bad fallback dialed %d times; want the error first", n)
		}
	}
}
