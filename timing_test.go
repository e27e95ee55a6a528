package reconn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reconn/reconn"
)

// The tests in this file hold the Conn's timers to what the Dialer's
// documentation says, on the fake clock of testing/synctest: the backoff
// between redial attempts, RedialTimeout, the flush limit of Close,
// ConnMaxLifetime and the failback probes. Their connections are
// net.Pipes from pipeDialer, since a bubble's clock only moves while
// every goroutine in it waits on something of the bubble; a pipe has no
// kernel behind it, so nothing counts acknowledgements and nothing checks
// the connection: a write to a closed pipe fails, and that is the fault.

// pipeDialer makes net.Pipe connections, to addresses that are up, and
// refuses the others. It records when each dial was attempted.
type pipeDialer struct {
	mu       sync.Mutex
	up       map[string]bool
	attempts map[string][]time.Time
	servers  []net.Conn
	wg       sync.WaitGroup
}

func newPipeDialer(up ...string) *pipeDialer {
	pd := &pipeDialer{up: make(map[string]bool), attempts: make(map[string][]time.Time)}
	for _, a := range up {
		pd.up[a] = true
	}
	return pd
}

func (pd *pipeDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	pd.attempts[address] = append(pd.attempts[address], time.Now())
	if !pd.up[address] {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: pipeAddr(address), Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	c, s := net.Pipe()
	pd.servers = append(pd.servers, s)
	pd.wg.Go(func() { io.Copy(io.Discard, s) })
	return c, nil
}

// setUp makes dials to address succeed or be refused from now on.
func (pd *pipeDialer) setUp(address string, up bool) {
	pd.mu.Lock()
	pd.up[address] = up
	pd.mu.Unlock()
}

// hangUp closes the server's end of every connection made so far.
func (pd *pipeDialer) hangUp() {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	for _, s := range pd.servers {
		s.Close()
	}
	pd.servers = nil
}

// close hangs up and waits for the servers' readers.
func (pd *pipeDialer) close() {
	pd.hangUp()
	pd.wg.Wait()
}

// times returns when each dial to address was attempted.
func (pd *pipeDialer) times(address string) []time.Time {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	return append([]time.Time(nil), pd.attempts[address]...)
}

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

const (
	primary  = "192.0.2.1:514"
	fallback = "192.0.2.2:514"
)

// TestBackoffAndRedialTimeout: once the connection fails, a Write redials
// at once, then waits between half and all of MinBackoff·2^(n-1), capped
// at MaxBackoff, before attempt n+1, and gives up exactly RedialTimeout
// after it found the connection dead, with ErrRedialLimit wrapping the
// refusal.
func TestBackoffAndRedialTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pd := newPipeDialer(primary)
		defer pd.close()
		const minB, maxB, limit = 100 * time.Millisecond, time.Second, 10 * time.Second
		c := dialPipe(t, &reconn.Dialer{Dialer: pd, MinBackoff: minB, MaxBackoff: maxB, RedialTimeout: limit})
		defer c.Close()
		// A connection that ends within a second counts as a failed
		// dial (see TestBackoffAfterDrop): this one lived longer.
		time.Sleep(2 * time.Second)
		pd.setUp(primary, false)
		pd.hangUp()
		start := time.Now()
		_, err := c.Write([]byte("m\n"))
		took := time.Since(start)
		if !errors.Is(err, reconn.ErrRedialLimit) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("Write = %v; want ErrRedialLimit wrapping ECONNREFUSED", err)
		}
		if took != limit {
			t.Errorf("Write gave up after %v; want RedialTimeout, %v", took, limit)
		}
		at := pd.times(primary)[1:] // the first is Dial's
		if len(at) < 2 || at[0] != start {
			t.Fatalf("redial attempts at %v; want the first at once (%v)", at, start)
		}
		for n := 1; n < len(at); n++ {
			d := min(minB<<(n-1), maxB)
			if gap := at[n].Sub(at[n-1]); gap < d/2 || gap > d {
				t.Errorf("wait before attempt %d: %v; want between %v and %v", n+1, gap, d/2, d)
			}
		}
		if last := at[len(at)-1].Sub(start); last > limit || limit-last > maxB {
			t.Errorf("last attempt %v after the failure; want within MaxBackoff (%v) of RedialTimeout (%v)", last, maxB, limit)
		}
	})
}

// dropDialer makes connections whose server end is closed as soon as they
// are made: a server that accepts and drops each connection.
type dropDialer struct {
	mu       sync.Mutex
	attempts []time.Time
}

func (d *dropDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attempts = append(d.attempts, time.Now())
	c, s := net.Pipe()
	s.Close()
	return c, nil
}

// TestBackoffAfterDrop: a server that accepts every connection and drops
// it at once is redialed with backoff, as a refusal is: each connection
// that ends young and confirms nothing counts as a failed attempt, so the
// waits between dials grow up to MaxBackoff, and Close ends at its bound.
func TestBackoffAfterDrop(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dd := &dropDialer{}
				const minB, maxB, limit = 100 * time.Millisecond, time.Second, 10 * time.Second
				c, err := (&reconn.Dialer{Dialer: dd, MinBackoff: minB, MaxBackoff: maxB, RedialTimeout: limit,
					Async: async, FlushTimeout: limit}).Dial("tcp", primary)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				_, werr := c.Write([]byte("m\n"))
				cerr := c.Close()
				if took := time.Since(start); took > limit+maxB {
					t.Errorf("Write and Close took %v; want within RedialTimeout (%v) and a backoff", took, limit)
				}
				if werr == nil && cerr == nil {
					t.Fatal("Write and Close returned nil; the server dropped every connection")
				}
				dd.mu.Lock()
				at := dd.attempts
				dd.mu.Unlock()
				// Waits of at least half of 100, 200, 400, 800 ms, then
				// of half a second or more: within 10 s, 22 dials at most.
				if len(at) < 4 || len(at) > 22 {
					t.Fatalf("%d dials in %v; want the waits of a backoff between them", len(at), time.Since(start))
				}
				for n := 2; n < len(at); n++ {
					d := min(minB<<(n-2), maxB)
					if gap := at[n].Sub(at[n-1]); gap < d/2 {
						t.Errorf("wait before dial %d: %v; want at least %v", n+1, gap, d/2)
					}
				}
				t.Logf("%d dials; Write = %v; Close = %v", len(at), werr, cerr)
			})
		})
	}
}

// TestCloseFlushLimit: with Async and the server down, Close waits for
// the buffered messages exactly FlushTimeout, then reports them
// unconfirmed; a write deadline, when set, bounds it instead.
func TestCloseFlushLimit(t *testing.T) {
	for _, deadline := range []time.Duration{0, 1500 * time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			pd := newPipeDialer()
			defer pd.close()
			const flush = 3 * time.Second
			c := dialPipe(t, &reconn.Dialer{Dialer: pd, Async: true, FlushTimeout: flush, RedialTimeout: -1})
			for range 5 {
				if _, err := c.Write([]byte("m\n")); err != nil {
					t.Fatal(err)
				}
			}
			want := flush
			if deadline > 0 {
				want = deadline
				c.SetWriteDeadline(time.Now().Add(deadline))
			}
			start := time.Now()
			err := c.Close()
			took := time.Since(start)
			var ue *reconn.UnconfirmedError
			if !errors.As(err, &ue) || ue.Messages != 5 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Close = %v; want 5 messages unconfirmed at the flush limit", err)
			}
			if took != want {
				t.Errorf("Close took %v; want %v", took, want)
			}
		})
	}
}

// TestAsyncRedialTimeoutAtBound: an Async Conn that cannot connect takes
// Writes until it has been down for RedialTimeout; from the first failed
// dial after that, Writes fail with ErrRedialLimit.
func TestAsyncRedialTimeoutAtBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pd := newPipeDialer()
		defer pd.close()
		const limit, maxB = 5 * time.Second, 500 * time.Millisecond
		c := dialPipe(t, &reconn.Dialer{Dialer: pd, Async: true, RedialTimeout: limit, MinBackoff: 50 * time.Millisecond, MaxBackoff: maxB, FlushTimeout: -1})
		defer c.Close()
		start := time.Now()
		time.Sleep(limit - time.Millisecond)
		if _, err := c.Write([]byte("before\n")); err != nil {
			t.Fatalf("Write %v after the start = %v; want nil until RedialTimeout", time.Since(start), err)
		}
		time.Sleep(time.Millisecond + maxB)
		_, err := c.Write([]byte("after\n"))
		if !errors.Is(err, reconn.ErrRedialLimit) {
			t.Fatalf("Write %v after the start = %v; want ErrRedialLimit (RedialTimeout %v, MaxBackoff %v)", time.Since(start), err, limit, maxB)
		}
	})
}

// TestConnMaxLifetimeSchedule: each connection is replaced between 90%
// and 100% of ConnMaxLifetime after it was made.
func TestConnMaxLifetimeSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pd := newPipeDialer(primary)
		defer pd.close()
		const life = 10 * time.Minute
		c := dialPipe(t, &reconn.Dialer{Dialer: pd, ConnMaxLifetime: life})
		defer c.Close()
		for range 4 {
			time.Sleep(life)
			if _, err := c.Write([]byte("m\n")); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		at := pd.times(primary)
		if len(at) != 5 {
			t.Fatalf("%d dials in %v with ConnMaxLifetime %v: %v; want 5", len(at), 4*life, life, at)
		}
		for i := 1; i < len(at); i++ {
			if gap := at[i].Sub(at[i-1]); gap < life*9/10 || gap > life {
				t.Errorf("connection %d lived %v; want between %v and %v", i, gap, life*9/10, life)
			}
		}
		if s := c.Stats(); s.Rotations != 4 {
			t.Errorf("Stats().Rotations = %d; want 4", s.Rotations)
		}
	})
}

// TestFailbackSchedule: on a fallback, the first address is probed
// FailbackInterval after the move, then after waits that double up to ten
// times FailbackInterval; once it answers, the stream moves back.
func TestFailbackSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pd := newPipeDialer(fallback)
		defer pd.close()
		const every = 30 * time.Second
		c := dialPipe(t, &reconn.Dialer{Dialer: pd, Fallbacks: []string{fallback}, FailbackInterval: every})
		defer c.Close()
		start := time.Now()
		if a := c.Stats().Address; a != fallback {
			t.Fatalf("Stats().Address = %q; want the fallback %q", a, fallback)
		}
		time.Sleep(20 * time.Minute)
		at := pd.times(primary)[1:] // the first is Dial's
		want := []time.Duration{every, 2 * every, 4 * every, 8 * every, 10 * every, 10 * every}
		if len(at) < len(want) {
			t.Fatalf("%d probes of the first address in 20 minutes; want at least %d", len(at), len(want))
		}
		prev := start
		for i, w := range want {
			if gap := at[i].Sub(prev); gap != w {
				t.Errorf("probe %d came %v after the one before; want %v", i+1, gap, w)
			}
			prev = at[i]
		}
		pd.setUp(primary, true)
		time.Sleep(10 * every)
		synctest.Wait()
		if s := c.Stats(); s.Address != primary || s.Failbacks != 1 {
			t.Errorf("Stats(): address %q, %d failbacks; want %q, 1", s.Address, s.Failbacks, primary)
		}
	})
}

// dialPipe dials primary through d, whose Dialer is a pipeDialer.
func dialPipe(t *testing.T, d *reconn.Dialer) *reconn.Conn {
	t.Helper()
	nc, err := d.Dial("tcp", primary)
	if err != nil {
		t.Fatalf("Dial = %v", err)
	}
	return nc.(*reconn.Conn)
}
