//go:build unix

package reconn_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/short"
)

// scaleEnabled reports whether the heavy scale measurements were asked
// for: RECONN_SCALE=1 in the environment, and no -short flag.
func scaleEnabled() bool {
	return !testing.Short() && os.Getenv("RECONN_SCALE") == "1"
}

// raiseFileLimit tries to let the process open need descriptors,
// raising RLIMIT_NOFILE for the rest of the test if it must. It returns
// the limit in force, which is less than need when the limit could not be
// raised that far.
func raiseFileLimit(t *testing.T, need uint64) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("Getrlimit: %v", err)
	}
	if uint64(lim.Cur) >= need {
		return uint64(lim.Cur)
	}
	old := lim
	setLimit(&lim.Cur, need)
	if uint64(lim.Max) < need {
		setLimit(&lim.Max, need)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		// Without the privilege to raise the hard limit, take what it allows.
		lim = old
		lim.Cur = lim.Max
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err2 != nil {
			lim = old
		}
		t.Logf("RLIMIT_NOFILE cannot be raised to %d (%v); it is %d", need, err, lim.Cur)
	} else {
		t.Logf("RLIMIT_NOFILE raised from %d to %d", old.Cur, need)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	return uint64(lim.Cur)
}

// setLimit sets one field of a syscall.Rlimit, whose type differs
// between platforms.
func setLimit[T int64 | uint64](p *T, v uint64) { *p = T(v) }

// heapAlloc returns the bytes of live heap objects after a full
// collection.
func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestScaleMemory measures the heap that 500 Conns take beyond as many
// plain TCP connections, and checks only that the figure is sane. See
// TestScaleMemoryLarge for 10000.
func TestScaleMemory(t *testing.T) {
	short.Skip(t, "a measurement of memory")
	measureConnMemory(t, 500)
}

// TestScaleMemoryLarge is TestScaleMemory with 10000 connections. It runs
// only with RECONN_SCALE=1 and without -short.
func TestScaleMemoryLarge(t *testing.T) {
	if !scaleEnabled() {
		t.Skip("set RECONN_SCALE=1, without -short, to open 10000 connections")
	}
	measureConnMemory(t, 10000)
}

// memPhase is one set of n connections whose heap is measured.
type memPhase struct {
	name  string
	dial  func(addr net.Addr) (net.Conn, error)
	write bool // write one message on each connection
}

// measureConnMemory opens n connections of each kind to one loopback
// listener, one kind at a time, and logs the heap each kind takes per
// connection. Each figure includes the accepted server side, a plain TCP
// connection, which cancels out in the differences.
func measureConnMemory(t *testing.T, n int) {
	const spare = 64 // descriptors for the listener, the runtime and the test binary
	if limit := raiseFileLimit(t, uint64(2*n+spare)); limit < uint64(2*n+spare) {
		fit := (int(limit) - spare) / 2
		if fit < 100 {
			t.Skipf("RLIMIT_NOFILE %d leaves room for only %d connections", limit, fit)
		}
		t.Logf("measuring %d connections instead of %d: each takes two descriptors", fit, n)
		n = fit
	}

	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, n)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		<-acceptDone
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	}()

	reconnDialer := func(replay int) func(net.Addr) (net.Conn, error) {
		d := &reconn.Dialer{ReplayBuffer: replay}
		return func(addr net.Addr) (net.Conn, error) {
			return d.Dial(addr.Network(), addr.String())
		}
	}
	phases := []memPhase{
		{"plain", func(addr net.Addr) (net.Conn, error) {
			var d net.Dialer
			return d.Dial(addr.Network(), addr.String())
		}, true},
		{"reconn, no Write yet", reconnDialer(0), false},
		{"reconn, one Write", reconnDialer(0), true},
		{"reconn, replay off, one Write", reconnDialer(-1), true},
	}
	msg := benchMessage(100)
	per := make([]float64, len(phases))
	for i, ph := range phases {
		clients := make([]net.Conn, 0, n)
		servers := make([]net.Conn, 0, n)
		closeAll := func() {
			for _, c := range clients {
				if err := c.Close(); err != nil {
					t.Errorf("%s: Close() = %v", ph.name, err)
				}
			}
			for _, c := range servers {
				c.Close()
			}
			clients, servers = clients[:0], servers[:0]
		}
		g0 := runtime.NumGoroutine()
		before := heapAlloc()
		for range n {
			c, err := ph.dial(ln.Addr())
			if err != nil {
				closeAll()
				t.Fatalf("%s: dial %d: %v", ph.name, len(clients)+1, err)
			}
			clients = append(clients, c)
			if ph.write {
				if _, err := c.Write(msg); err != nil {
					closeAll()
					t.Fatalf("%s: Write: %v", ph.name, err)
				}
			}
			servers = append(servers, <-accepted)
		}
		after := heapAlloc()
		goroutines := runtime.NumGoroutine() - g0
		per[i] = float64(int64(after)-int64(before)) / float64(n)
		closeAll()
		t.Logf("%-30s %8.0f heap bytes per connection (client and server side), %d goroutines added", ph.name+":", per[i], goroutines)
	}

	plain, bare, written, noReplay := per[0], per[1], per[2], per[3]
	const ringData = 4096 // the smallest data buffer of the replay ring
	t.Logf("beyond a plain connection, per Conn, with %d connections:", n)
	t.Logf("  replay on, before the first Write (no replay ring): %6.0f bytes", bare-plain)
	t.Logf("  replay on, after one Write (ring allocated):        %6.0f bytes", written-plain)
	t.Logf("  the same without the ring's %d-byte data buffer:  %6.0f bytes (target <= 4096)", ringData, written-plain-ringData)
	t.Logf("  replay off, after one Write:                        %6.0f bytes", noReplay-plain)
	for i, ph := range phases[1:] {
		if d := per[i+1] - plain; d <= 0 || d > 64<<10 {
			t.Errorf("%s: %.0f bytes per Conn beyond a plain connection; want between 0 and 64 KiB", ph.name, d)
		}
	}
}

// backoffSteps returns how many waits between redial attempts fit in d
// when each is as short as it can be: half of min·2^(n-1), capped at max.
func backoffSteps(d, minWait, maxWait time.Duration) int {
	steps := 0
	var sum time.Duration
	for w := minWait; ; w = min(2*w, maxWait) {
		sum += w / 2
		if sum > d {
			return steps
		}
		steps++
	}
}

// TestRedialStorm restarts a server under 100 Conns (1000 with
// RECONN_SCALE=1), each of which writes during the outage, and counts the
// dial attempts they make while the server is down. The first attempt of
// each is immediate, and the backoff then spreads the rest out, so the
// rate falls over the outage. The test logs the attempts per 100 ms and
// checks a generous bound on their total; once the server is back, every
// Write must succeed, every message must arrive and every Conn must close
// cleanly.
func TestRedialStorm(t *testing.T) {
	m := 100
	if scaleEnabled() {
		m = 1000
	}
	const (
		outage     = 1500 * time.Millisecond
		minBackoff = 100 * time.Millisecond // the Dialer defaults
		maxBackoff = 5 * time.Second
		size       = 100
	)
	if need := uint64(4*m + 256); raiseFileLimit(t, need) < need {
		t.Skipf("RLIMIT_NOFILE is below %d", need)
	}
	srv := newPrivateServer(t)
	sd := newCountingDialer()
	d := &reconn.Dialer{Dialer: sd} // default backoff, timeouts and replay
	ctx := testContext(t)

	conns := make([]*reconn.Conn, m)
	var buf []byte
	for i := range conns {
		conns[i] = dial(t, d, srv.Addr())
		buf = send(t, conns[i], buf, i, size)
	}
	if err := srv.WaitConns(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Every first message must be processed before the restart, or it
	// could be lost unread in a server socket.
	if err := srv.WaitReceived(ctx, m); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := srv.Restart(outage); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, m)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			// Wait for the reset to reach this Conn's socket, so that
			// the Write below finds the connection dead.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Read(make([]byte, 1))
			c.SetReadDeadline(time.Time{})
			msg := faultnet.AppendMessage(nil, faultnet.Newline, m+i, size)
			if _, err := c.Write(msg); err != nil {
				errs <- fmt.Errorf("conn %d: Write during the outage: %w", i, err)
			}
		})
	}
	if err := srv.WaitEvent(ctx, faultnet.EventListening, 1); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var up time.Time
	for _, ev := range srv.Trace() {
		if ev.Kind == faultnet.EventListening {
			up = ev.Time
			if ev.Err != nil {
				t.Fatalf("listening again after the restart: %v", ev.Err)
			}
		}
	}

	// Attempts per 100 ms, from the restart until the server listened
	// again.
	down := up.Sub(start)
	const bucket = 100 * time.Millisecond
	counts := make([]int, int((down+bucket-1)/bucket))
	// An attempt that began just before the server's listening was
	// recorded may have connected: it counts as made during the outage,
	// which only tightens the bound there, and as a reconnection.
	during, after := 0, 0
	var thirds [3]int
	for _, a := range sd.since(start) {
		if a.Before(up) {
			counts[int(a.Sub(start)/bucket)]++
			thirds[int(3*a.Sub(start)/down)]++
			during++
		} else {
			after++
		}
	}
	reconnected := len(sd.connectedSince(start))
	var rows strings.Builder
	for i, k := range counts {
		from, to := time.Duration(i)*bucket, min(time.Duration(i+1)*bucket, down)
		rate := float64(k) / (to - from).Seconds()
		fmt.Fprintf(&rows, "\n  %4d-%4d ms: %5d attempts (%6.0f/s)", from.Milliseconds(), to.Milliseconds(), k, rate)
	}
	t.Logf("%d Conns, server down for %v: dial attempts per 100 ms%s", m, down.Round(time.Millisecond), rows.String())
	t.Logf("attempts per second over each third of the outage: %.0f, %.0f, %.0f",
		float64(thirds[0])/(down/3).Seconds(), float64(thirds[1])/(down/3).Seconds(), float64(thirds[2])/(down/3).Seconds())
	steps := backoffSteps(down, minBackoff, maxBackoff)
	bound := float64(m*(1+steps)) * 1.5
	t.Logf("during the outage: %d attempts, %.2f per Conn, %.0f/s on average; bound %.0f (%d backoff steps fit)",
		during, float64(during)/float64(m), float64(during)/down.Seconds(), bound, steps)
	t.Logf("after the server came back: %d attempts; %d Conns reconnected", after, reconnected)
	if float64(during) > bound {
		t.Errorf("%d dial attempts during a %v outage; want at most %.0f", during, down, bound)
	}
	if reconnected < m {
		t.Errorf("%d dials connected after the restart; want at least %d, one per Conn", reconnected, m)
	}

	// Every message must be there, and every Conn must close cleanly.
	if err := srv.WaitReceived(ctx, 2*m); err != nil {
		t.Fatalf("waiting for %d messages: %v\n%v", 2*m, err, srv.Report(2*m))
	}
	var dials int
	for i, c := range conns {
		if err := c.Close(); err != nil {
			t.Errorf("conn %d: Close() = %v", i, err)
		}
		dials += int(c.Stats().Dials)
	}
	if err := srv.WaitConns(ctx, dials); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitEOF(ctx); err != nil {
		t.Fatal(err)
	}
	if r := srv.Report(2 * m); r.Lost != 0 {
		t.Errorf("lost %d of %d messages\n%v", r.Lost, 2*m, r)
	}
}
