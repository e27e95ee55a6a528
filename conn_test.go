package reconn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/short"
	"github.com/reconn/reconn/internal/testns"
	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
)

func TestMain(m *testing.M) {
	testns.Enter()
	// Example_redial shows replay re-sending only what the first server
	// never acknowledged; Example_unix needs a unix socket.
	platformtest.LeaveOut("^Example_redial$", platformtest.NoTCPInfo())
	platformtest.LeaveOut("^Example_unix$", platformtest.NoUnixSockets())
	goleak.VerifyTestMain(m, platformtest.LeakOptions()...)
}

// slack is what a test allows beyond a bound, for a loaded machine.
const slack = time.Second

// guard is how long a test lets a call block before it gives up on it.
const guard = 10 * time.Second

// timeoutErr reports whether err is a net.Error that says it timed out.
func timeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// testDialer returns a Dialer whose timeouts suit tests.
func testDialer() *reconn.Dialer {
	return &reconn.Dialer{
		// Long enough that a server starved of CPU, whose window stays
		// closed meanwhile, is not taken for dead (see UserTimeout);
		// tests of a silent peer set their own.
		UserTimeout:   10 * time.Second,
		RedialTimeout: 10 * time.Second,
		MinBackoff:    2 * time.Millisecond,
		MaxBackoff:    20 * time.Millisecond,
		FlushTimeout:  short.Limit(5 * time.Second),
	}
}

// newPrivateServer starts a faultnet Server on a loopback address of its
// own (see privateLoopback) and closes it when the test ends.
func newPrivateServer(t testing.TB) *faultnet.Server {
	t.Helper()
	srv, err := faultnet.Listen("tcp", privateLoopback()+":0")
	if err != nil {
		t.Fatalf("faultnet: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// privateLoopback returns a loopback address other than 127.0.0.1 on
// Linux, where all of 127.0.0.0/8 is local. A test whose server refuses
// dials for a while needs one: another test program on the machine may
// bind the same port on 127.0.0.1 meanwhile (a server that restarts
// does), and a redial that must be refused would reach it. Elsewhere
// only 127.0.0.1 is configured by default.
func privateLoopback() string {
	if runtime.GOOS != "linux" {
		return "127.0.0.1"
	}
	return fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
}

// dial connects d to addr and closes the Conn when the test ends.
func dial(t testing.TB, d *reconn.Dialer, addr net.Addr) *reconn.Conn {
	t.Helper()
	nc, err := d.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatalf("Dial(%v) = %v", addr, err)
	}
	c := nc.(*reconn.Conn)
	t.Cleanup(func() { c.Close() })
	return c
}

// dialServer connects d to srv, a new faultnet server, and waits until srv
// has accepted the connection: a fault on a Server acts only on the
// connections it has accepted, and a dial returns before that.
func dialServer(t testing.TB, d *reconn.Dialer, srv *faultnet.Server) *reconn.Conn {
	t.Helper()
	c := dial(t, d, srv.Addr())
	if d.Async {
		waitDialed(t, c)
	}
	awaitAccepted(t, srv, c)
	return c
}

// awaitAccepted is waitAccepted bounded by the test.
func awaitAccepted(t testing.TB, srv *faultnet.Server, c *reconn.Conn) {
	t.Helper()
	if err := waitAccepted(testContext(t), srv, c); err != nil {
		t.Fatal(err)
	}
}

// waitAccepted waits until the server has accepted as many connections
// as c installed, its current one among them, found by its address. A
// count alone is not enough: the server also counts a connection whose
// dial c dropped once the handshake was done (the dial's op ended, by
// Close say), and, on a machine shared with other tests, a client of
// another test whose server went away may dial srv's port too, while c's
// current connection, its data acknowledged by the kernel, may still wait
// in the listener's backlog.
func waitAccepted(ctx context.Context, srv *faultnet.Server, c *reconn.Conn) error {
	return waitAcceptedFrom(ctx, srv, reconnClient{c})
}

// waitAcceptedFrom is waitAccepted for any client that counts its
// connections.
func waitAcceptedFrom(ctx context.Context, srv *faultnet.Server, c interface {
	dialCount() int
	LocalAddr() net.Addr
}) error {
	dials := c.dialCount()
	if dials == 0 {
		return nil
	}
	return waitAcceptedAddr(ctx, srv, c.LocalAddr(), dials)
}

// waitAcceptedAddr waits until srv has accepted a connection from local,
// knowing that it will have accepted at least atLeast connections by then.
func waitAcceptedAddr(ctx context.Context, srv *faultnet.Server, local net.Addr, atLeast int) error {
	for n := max(atLeast, 1); ; n++ {
		if err := srv.WaitConns(ctx, n); err != nil {
			return fmt.Errorf("the server accepted no connection from %s: %w", local, err)
		}
		for _, cr := range srv.Report(0).Conns {
			if cr.Client != nil && cr.Client.String() == local.String() {
				return nil
			}
		}
	}
}

// testContext returns a context that ends with the test, or after a
// minute, so that a broken wait fails instead of hanging.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// send writes message seq of the given size.
func send(t testing.TB, c net.Conn, buf []byte, seq, size int) []byte {
	t.Helper()
	buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, seq, size)
	if n, err := c.Write(buf); err != nil || n != len(buf) {
		t.Fatalf("Write(seq %d) = %d, %v; want %d, nil", seq, n, err, len(buf))
	}
	return buf
}

// finish closes c (which flushes) and waits until the server has accepted
// every connection c made and read each to its end, so the report is final.
func finish(t testing.TB, c *reconn.Conn, srv *faultnet.Server) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	finishClosed(t, c, srv)
}

// faultsAt applies each fault, in order, once the server has received
// the matching number of messages, until the returned stop is called;
// stop returns how many were applied. A fast writer may hand the whole
// stream to the kernel before a later target is reached: such a fault
// is then not applied.
func faultsAt(t testing.TB, srv *faultnet.Server, targets []int, faults ...func()) (stop func() int) {
	ctx, cancel := context.WithCancel(testContext(t))
	applied := make(chan int, 1)
	go func() {
		n := 0
		defer func() { applied <- n }()
		for i, f := range faults {
			if srv.WaitReceived(ctx, targets[i]) != nil {
				return
			}
			f()
			n++
		}
	}()
	return func() int {
		cancel()
		return <-applied
	}
}

// finishClosed is finish after c was closed.
func finishClosed(t testing.TB, c *reconn.Conn, srv *faultnet.Server) {
	t.Helper()
	ctx := testContext(t)
	if err := waitAccepted(ctx, srv, c); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitEOF(ctx); err != nil {
		t.Fatalf("WaitEOF: %v", err)
	}
}

func TestConformance(t *testing.T) {
	for _, mode := range []reconn.CheckMode{reconn.CheckDefault, reconn.CheckState, reconn.CheckPeek} {
		d := testDialer()
		d.Check = mode
		testConformance(t, mode.String(), d)
	}
}

// testConformance runs x/net/nettest's conformance suite on Conns dialed
// by d, first as the first end of each pair and then as the second.
func testConformance(t *testing.T, name string, d *reconn.Dialer) {
	for _, reconnFirst := range []bool{true, false} {
		sub := name + "/ReconnFirst"
		if !reconnFirst {
			sub = name + "/ReconnSecond"
		}
		t.Run(sub, func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return nil, nil, nil, err
				}
				defer ln.Close() // a redial would fail: none is expected
				dd := *d
				dd.FlushTimeout = short.Limit(500 * time.Millisecond)
				// An Async Dial returns before its writer connects: the
				// accept waits for it either way.
				rc, err := dd.Dial("tcp", ln.Addr().String())
				if err != nil {
					return nil, nil, nil, err
				}
				sc, err := ln.Accept()
				if err != nil {
					rc.Close()
					return nil, nil, nil, err
				}
				stop = func() {
					rc.Close()
					sc.Close()
				}
				if reconnFirst {
					return rc, sc, stop, nil
				}
				return sc, rc, stop, nil
			})
		})
	}
}

// TestCloseBetweenMessages is the seed scenario at a low rate: the server
// closes the connection between messages, and nothing may be lost.
func TestCloseBetweenMessages(t *testing.T) {
	platformtest.NeedTCPInfo(t)
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	faults := []struct {
		name  string
		fault func(*faultnet.Server)
	}{
		{"FIN", (*faultnet.Server).FIN},
		{"RST", (*faultnet.Server).RST},
	}
	for _, mode := range []reconn.CheckMode{reconn.CheckDefault, reconn.CheckState, reconn.CheckPeek} {
		for _, f := range faults {
			closeBetweenMessages(t, mode, f.name, f.fault)
		}
	}
}

func closeBetweenMessages(t *testing.T, mode reconn.CheckMode, name string, fault func(*faultnet.Server)) {
	t.Run(mode.String()+"/"+name, func(t *testing.T) {
		srv := newPrivateServer(t)
		d := testDialer()
		d.Check = mode
		c := dial(t, d, srv.Addr())
		ctx := testContext(t)
		const total, every = 1000, 100
		var buf []byte
		for seq := 0; seq < total; seq++ {
			buf = send(t, c, buf, seq, 100)
			if seq%every == every/2 {
				// Between messages: the server has all so far. A check
				// before each Write finds a death only at the next Write,
				// Flush or Close, and a reset may reach this kernel after
				// the Writes that followed it (seen in an emulated guest):
				// Flush, as an application that needs its messages there
				// before it goes quiet does. The watch (the default but on
				// Windows) recovers them in the background.
				if mode != reconn.CheckDefault || runtime.GOOS == "windows" {
					if err := c.Flush(ctx); err != nil {
						t.Fatalf("Flush after message %d: %v", seq, err)
					}
				}
				if err := srv.WaitReceived(ctx, seq+1); err != nil {
					t.Fatalf("waiting for messages 0 to %d: %v\nStats() = %+v\n%v", seq, err, c.Stats(), srv.Report(seq+1))
				}
				fault(srv)
			}
		}
		finish(t, c, srv)
		r := srv.Report(total)
		if r.Lost != 0 || r.Duplicated != 0 {
			t.Errorf("lost %d, duplicated %d; want 0, 0\n%v", r.Lost, r.Duplicated, r)
		}
		// Each fault ends the connection, so each needs a redial; one
		// fault cannot need more than two (the message after it may go
		// out before the reset comes back).
		s := c.Stats()
		if faults := int64(total / every); s.Redials < faults || s.Redials > 2*faults {
			t.Errorf("Stats().Redials = %d; want between %d and %d", s.Redials, faults, 2*faults)
		}
		// Watch mode (the Linux default) asks the kernel only after
		// an event, not before each Write.
		if mode == reconn.CheckDefault && runtime.GOOS == "linux" && s.Checks > 3*total/every {
			t.Errorf("Stats().Checks = %d for %d Writes; want only checks after events", s.Checks, total)
		}
	})
}

// countingDialer records each dial attempt and reports it on a channel.
type countingDialer struct {
	d         net.Dialer
	mu        sync.Mutex
	attempts  []time.Time // when each attempt began
	successes []time.Time // when each attempt that connected began
	ch        chan struct{}
}

func newCountingDialer() *countingDialer {
	return &countingDialer{ch: make(chan struct{}, 1000)}
}

func (cd *countingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	at := time.Now()
	cd.mu.Lock()
	cd.attempts = append(cd.attempts, at)
	cd.mu.Unlock()
	select {
	case cd.ch <- struct{}{}:
	default:
	}
	c, err := cd.d.DialContext(ctx, network, address)
	if err == nil {
		cd.mu.Lock()
		cd.successes = append(cd.successes, at)
		cd.mu.Unlock()
	}
	return c, err
}

// wait waits for n more dial attempts.
func (cd *countingDialer) wait(t testing.TB, n int) {
	t.Helper()
	ctx := testContext(t)
	for i := 0; i < n; i++ {
		select {
		case <-cd.ch:
		case <-ctx.Done():
			t.Fatalf("waiting for dial attempt %d: %v", i+1, ctx.Err())
		}
	}
}

// times returns every attempt's time, oldest first.
func (cd *countingDialer) times() []time.Time { return cd.since(time.Time{}) }

// since returns the attempts made at or after t, oldest first.
func (cd *countingDialer) since(t time.Time) []time.Time {
	cd.mu.Lock()
	defer cd.mu.Unlock()
	return timesFrom(cd.attempts, t)
}

// connectedSince returns when the attempts that connected and began at or
// after t began, oldest first.
func (cd *countingDialer) connectedSince(t time.Time) []time.Time {
	cd.mu.Lock()
	defer cd.mu.Unlock()
	return timesFrom(cd.successes, t)
}

func timesFrom(times []time.Time, t time.Time) []time.Time {
	var at []time.Time
	for _, a := range times {
		if !a.Before(t) {
			at = append(at, a)
		}
	}
	return at
}

// TestListenerDownAndBack checks that a Write waits through an outage, and
// that its dial attempts are spaced by the backoff.
func TestListenerDownAndBack(t *testing.T) {
	platformtest.NeedTCPInfo(t)
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	srv := newPrivateServer(t)
	cd := newCountingDialer()
	d := testDialer()
	d.Dialer = cd
	d.MinBackoff = 10 * time.Millisecond
	d.MaxBackoff = 40 * time.Millisecond
	c := dial(t, d, srv.Addr())
	cd.wait(t, 1)
	var buf []byte
	buf = send(t, c, buf, 0, 100)
	if err := srv.WaitReceived(testContext(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.Refuse(); err != nil {
		t.Fatal(err)
	}
	srv.FIN()

	done := make(chan error, 1)
	go func() {
		_, err := c.Write(faultnet.AppendMessage(nil, faultnet.Newline, 1, 100))
		done <- err
	}()
	const down = 6
	cd.wait(t, down) // refused attempts
	if err := srv.Accept(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Write across the outage = %v; want nil", err)
	}
	finish(t, c, srv)
	if r := srv.Report(2); r.Lost != 0 {
		t.Errorf("lost %d; want 0\n%v", r.Lost, r)
	}

	// Attempt 1 (after the first dial) is immediate; attempt n+1 waits
	// at least half of MinBackoff·2^(n-1), capped at MaxBackoff. Only the
	// refused attempts are checked: the one after Accept may start a new
	// redial loop (Close's flush, when the Write went out before the
	// close was known and a background recovery made the attempts).
	at := cd.times()[1:]
	for n := 1; n+1 < down && n+1 < len(at); n++ {
		floor := min(d.MinBackoff<<(n-1), d.MaxBackoff) / 2
		if gap := at[n+1].Sub(at[n]); gap < floor {
			t.Errorf("gap before attempt %d = %v; want >= %v", n+1, gap, floor)
		}
	}
	if s := c.Stats(); s.DialErrors < down-1 {
		t.Errorf("Stats().DialErrors = %d; want >= %d", s.DialErrors, down-1)
	}
}

// refusedConn returns a Conn whose server is down and whose next Write
// will find the connection dead.
func refusedConn(t *testing.T, d *reconn.Dialer) (*reconn.Conn, *countingDialer) {
	t.Helper()
	srv := newPrivateServer(t)
	cd := newCountingDialer()
	d.Dialer = cd
	c := dialServer(t, d, srv)
	if err := srv.Refuse(); err != nil {
		t.Fatal(err)
	}
	srv.RST()
	awaitReset(t, c)
	return c, cd
}

// awaitReset waits until c's kernel has the server's reset: a Read returns
// it.
func awaitReset(t *testing.T, c *reconn.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	defer c.SetReadDeadline(time.Time{})
	if _, err := c.Read(make([]byte, 1)); !platformtest.IsResetRead(err) {
		t.Fatalf("Read after RST = %v; want a reset", err)
	}
}

func TestCloseDuringRedial(t *testing.T) {
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	d := testDialer()
	c, cd := refusedConn(t, d)
	done := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("seq=0\n"))
		done <- err
	}()
	cd.wait(t, 3) // the first dial and two redial attempts
	if err := c.Close(); err != nil {
		t.Errorf("Close() = %v; want nil", err)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write during redial, then Close: %v; want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close() = %v; want net.ErrClosed", err)
	}
}

func TestDeadlineDuringRedial(t *testing.T) {
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	t.Run("set before", func(t *testing.T) {
		c, _ := refusedConn(t, testDialer())
		c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Write([]byte("seq=0\n"))
		checkRedialTimeout(t, err)
	})
	t.Run("set during", func(t *testing.T) {
		c, cd := refusedConn(t, testDialer())
		done := make(chan error, 1)
		go func() {
			_, err := c.Write([]byte("seq=0\n"))
			done <- err
		}()
		cd.wait(t, 3)
		c.SetWriteDeadline(time.Now()) // wakes the Write
		checkRedialTimeout(t, <-done)
	})
}

func checkRedialTimeout(t *testing.T, err error) {
	t.Helper()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Write = %v; want a net.Error with Timeout() true", err)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write = %v; want errors.Is(err, os.ErrDeadlineExceeded)", err)
	}
	if !platformtest.IsRefused(err) {
		t.Errorf("Write = %v; want it to wrap the last dial error (ECONNREFUSED)", err)
	}
}

func TestRedialLimit(t *testing.T) {
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	d := testDialer()
	d.RedialTimeout = 100 * time.Millisecond
	c, _ := refusedConn(t, d)
	_, err := c.Write([]byte("seq=0\n"))
	if !errors.Is(err, reconn.ErrRedialLimit) || !platformtest.IsRefused(err) {
		t.Errorf("Write = %v; want ErrRedialLimit wrapping ECONNREFUSED", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "write" {
		t.Errorf("Write = %#v; want a *net.OpError with Op write", err)
	}
}

func TestConcurrentWriters(t *testing.T) { writeConcurrently(t, testDialer()) }

// writeConcurrently has 8 writers write 500 messages each, of their own
// sizes, on a Conn dialed with d. Once every writer has written a third
// of its messages the server closes (FIN), after two thirds it resets,
// so that both faults meet the stream. Nothing may be lost outside the
// unread set, and no Write may fail.
func writeConcurrently(t *testing.T, d *reconn.Dialer) {
	srv := newPrivateServer(t)
	c := dialServer(t, d, srv)
	const writers, each = 8, 500
	var wg sync.WaitGroup
	var phase [2]sync.WaitGroup
	gate := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	for p := range phase {
		phase[p].Add(writers)
	}
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			var buf []byte
			failed := false
			for i := 0; i < each; i++ {
				if p := i * 3 / each; i > 0 && p > (i-1)*3/each {
					phase[p-1].Done()
					<-gate[p-1]
				}
				buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, w*each+i, 64+w*16)
				if _, err := c.Write(buf); err != nil && !failed {
					t.Errorf("writer %d: Write = %v", w, err)
					failed = true
				}
			}
		})
	}
	for p, fault := range []func(){srv.FIN, srv.RST} {
		phase[p].Wait()
		fault()
		close(gate[p])
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	finishClosed(t, c, srv)
	r := srv.Report(writers * each)
	if r.ClientLost != 0 {
		t.Errorf("client lost %d\n%v", r.ClientLost, r)
	}
	if s := c.Stats(); s.Dials < 2 {
		t.Errorf("Stats().Dials = %d; want at least 2: the faults met the stream", s.Dials)
	}
}

// TestCloseWhileWriting closes a Conn while writers go on calling Write
// until Close has returned, as an application logging during shutdown
// does: Close must return, however its steps and the Writes interleave.
func TestCloseWhileWriting(t *testing.T) {
	const rounds, writers = 50, 4
	for round := range rounds {
		srv := newPrivateServer(t)
		c := dialServer(t, testDialer(), srv)
		var closed atomic.Bool
		var started, wg sync.WaitGroup
		started.Add(writers)
		for w := range writers {
			wg.Go(func() {
				signaled := false
				defer func() {
					if !signaled {
						started.Done()
					}
				}()
				var buf []byte
				for i := 0; !closed.Load(); i++ {
					buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, i*writers+w, 100)
					_, err := c.Write(buf)
					if err != nil && !errors.Is(err, net.ErrClosed) {
						t.Errorf("writer %d: Write = %v; want nil or net.ErrClosed", w, err)
						return
					}
					if err != nil {
						// Closed: let the test see it, where goroutines
						// are not preempted (js/wasm, wasip1).
						runtime.Gosched()
					}
					if i == 10 {
						started.Done()
						signaled = true
					}
				}
			})
		}
		started.Wait()
		done := make(chan error, 1)
		go func() { done <- c.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("round %d: Close() = %v", round, err)
			}
		case <-testContext(t).Done():
			t.Fatalf("round %d: Close did not return", round)
		}
		closed.Store(true)
		wg.Wait()
	}
}

func TestBadInput(t *testing.T) {
	srv := newPrivateServer(t)
	c := dial(t, testDialer(), srv.Addr())
	for _, b := range [][]byte{nil, {}} {
		if n, err := c.Write(b); n != 0 || err != nil {
			t.Errorf("Write(%v) = %d, %v; want 0, nil", b, n, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	// A ReplayBuffer below 4 KiB is raised to 4 KiB; a message must fit
	// with its 16 bytes of bookkeeping.
	d := testDialer()
	d.ReplayBuffer = 16
	small := dial(t, d, srv.Addr())
	if n, err := small.Write(make([]byte, 4096-16)); n != 4096-16 || err != nil {
		t.Errorf("Write(4080 bytes) with ReplayBuffer 16 (raised to 4 KiB) = %d, %v; want 4080, nil", n, err)
	}
	if n, err := small.Write(make([]byte, 4096-15)); n != 0 || !errors.Is(err, reconn.ErrTooLarge) {
		t.Errorf("Write(4081 bytes) with ReplayBuffer 16 (raised to 4 KiB) = %d, %v; want 0, ErrTooLarge", n, err)
	}
	if _, err := c.Write([]byte("x\n")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v; want net.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v; want net.ErrClosed", err)
	}
	if err := c.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetDeadline after Close = %v; want net.ErrClosed", err)
	}
	if err := c.Flush(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Flush after Close = %v; want net.ErrClosed", err)
	}

	for _, network := range []string{"udp", "ip4:icmp", "unixgram", "unixpacket", ""} {
		_, err := reconn.Dial(network, "127.0.0.1:1")
		var une net.UnknownNetworkError
		if !errors.As(err, &une) || !strings.Contains(err.Error(), "network "+network) {
			t.Errorf("Dial(%q) = %v; want an UnknownNetworkError naming it", network, err)
		}
	}

	// A port nobody listens on: take one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// The in-memory network of js and wasip1 refuses with a flat
	// message, not ECONNREFUSED.
	if _, err := reconn.Dial("tcp", addr); err == nil || platformtest.KernelSockets && !platformtest.IsRefused(err) {
		t.Errorf("Dial(refused port) = %v; want ECONNREFUSED", err)
	}

	var dnsErr *net.DNSError
	if _, err := reconn.Dial("tcp", "no-such-host.invalid:514"); !errors.As(err, &dnsErr) {
		t.Errorf("Dial(unresolvable host) = %v; want a *net.DNSError", err)
	}
	if _, err := reconn.Dial("tcp", "127.0.0.1"); err == nil {
		t.Errorf("Dial(address without port) = nil error")
	}
}

// TestReadAcrossRedial checks that Read returns what the old peer sent,
// io.EOF from the current peer, and goes on with the new connection after
// a redial.
func TestReadAcrossRedial(t *testing.T) {
	platformtest.NeedTCPInfo(t)
	platformtest.NeedKernelSockets(t, "a check that finds the server's FIN before a Write")
	srv := newPrivateServer(t)
	d := testDialer()
	redialed := make(chan struct{}, 1)
	d.OnRedial = func(reconn.RedialEvent) { redialed <- struct{}{} }
	c := dialServer(t, d, srv)
	ctx := testContext(t)
	first := srv.Conns()[0]
	if _, err := first.NetConn().Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	first.FIN()
	got, err := io.ReadAll(c)
	if string(got) != "hello" || err != nil {
		t.Fatalf("ReadAll = %q, %v; want hello, nil (EOF)", got, err)
	}
	// The next Write finds the FIN and redials; in watch mode it may
	// return first and leave the redial to the background.
	send(t, c, nil, 0, 32)
	select {
	case <-redialed:
	case <-ctx.Done():
		t.Fatal("no redial")
	}
	if err := srv.WaitConns(ctx, 2); err != nil {
		t.Fatal(err)
	}
	second := srv.Conns()[0]
	if _, err := second.NetConn().Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "again" {
		t.Fatalf("Read after redial = %q, %v; want again", buf, err)
	}
	if c.RemoteAddr().String() != srv.Addr().String() {
		t.Errorf("RemoteAddr() = %v; want %v", c.RemoteAddr(), srv.Addr())
	}
}

// TestDeadlinesCarryOver checks that a read deadline set before a redial
// applies to the new connection.
func TestDeadlinesCarryOver(t *testing.T) {
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	srv := newPrivateServer(t)
	c := dialServer(t, testDialer(), srv)
	srv.RST()
	awaitReset(t, c)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	send(t, c, nil, 0, 32) // redials
	if s := c.Stats(); s.Redials != 1 {
		t.Fatalf("Stats().Redials = %d; want 1", s.Redials)
	}
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read on the new connection = %v; want the old deadline to apply", err)
	}
}

// TestDialContextBoundsRedials checks that the context given to
// DialContext ends redialing once it is done, and nothing else.
func TestDialContextBoundsRedials(t *testing.T) {
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	srv := newPrivateServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	nc, err := testDialer().DialContext(ctx, "tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*reconn.Conn)
	defer c.Close()
	cancel()
	send(t, c, nil, 0, 64) // a healthy connection does not care
	if err := srv.WaitReceived(testContext(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.Refuse(); err != nil {
		t.Fatal(err)
	}
	srv.RST()
	awaitReset(t, c)
	if _, err := c.Write([]byte("seq=1\n")); !errors.Is(err, context.Canceled) {
		t.Errorf("Write needing a redial after the context was canceled = %v; want context.Canceled", err)
	}
}

// waitDialed waits until c, an Async Conn, has made its first connection:
// its Dial returned before.
func waitDialed(t testing.TB, c *reconn.Conn) {
	t.Helper()
	ctx := testContext(t)
	for d := 100 * time.Microsecond; c.Stats().Dials == 0; d = min(2*d, 20*time.Millisecond) {
		select {
		case <-ctx.Done():
			t.Fatalf("no connection: %v", c.Stats().LastError)
		case <-time.After(d):
		}
	}
}

// dialerFunc adapts a function to reconn.ContextDialer.
type dialerFunc func(ctx context.Context, network, address string) (net.Conn, error)

func (f dialerFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return f(ctx, network, address)
}

// TestReplayCutShort: a redial connects, but the write deadline passes
// before the replay could write a byte. The next redial must send every
// held message all the same.
func TestReplayCutShort(t *testing.T) {
	srv := newPrivateServer(t)
	var hold atomic.Bool
	d := testDialer()
	// In watch mode the reset would start a redial in the background,
	// which the Write below must make itself.
	d.Check = reconn.CheckState
	d.Dialer = dialerFunc(func(ctx context.Context, network, address string) (net.Conn, error) {
		var nd net.Dialer
		nc, err := nd.DialContext(ctx, network, address)
		if err == nil && hold.Load() {
			<-ctx.Done() // the Write's deadline: hand over the connection too late
		}
		return nc, err
	})
	c := dialServer(t, d, srv)
	if err := srv.Blackhole(); err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, faultnet.ErrUnsupported) {
			t.Skipf("Blackhole: %v", err)
		}
		t.Fatal(err)
	}
	const held = 20
	var buf []byte
	for seq := 0; seq < held; seq++ {
		buf = send(t, c, buf, seq, 100)
	}
	srv.RST()
	awaitReset(t, c)

	hold.Store(true)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, held, 100)
	if _, err := c.Write(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write whose redial ends past its deadline = %v; want a timeout", err)
	}
	hold.Store(false)
	c.SetWriteDeadline(time.Time{})
	send(t, c, buf, held, 100)
	finish(t, c, srv)
	r := srv.Report(held + 1)
	if r.Lost != 0 || r.Duplicated != 0 {
		t.Errorf("lost %d, duplicated %d; want 0, 0\n%v", r.Lost, r.Duplicated, r)
	}
}
