//go:build linux

package reconn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/short"
	"golang.org/x/sys/unix"
)

// The tests in this file hold a Conn to the bounds that its caller and its
// Dialer set: a Write or Flush ends by its deadline even while a
// background recovery runs; every Dialer field is either checked at Dial or
// made safe; the first TLS handshake ends when the dial's timeout does; a
// Write that gives up names the dial error that made it give up; and a
// connection is replaced only when that is needed.

// timed runs f in a goroutine, waits up to guard for it, and returns f's
// error and how long f ran. If f is still blocked at guard, timed calls
// unblock, which must make f return, waits for f, and ends the test with
// how long f had blocked. A panic in f ends the test too.
func timed(t *testing.T, unblock func(), f func() error) (time.Duration, error) {
	t.Helper()
	type result struct {
		err      error
		took     time.Duration
		panicked any
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		var r result
		defer func() {
			r.panicked = recover()
			r.took = time.Since(start)
			done <- r
		}()
		r.err = f()
	}()
	timer := time.NewTimer(guard)
	defer timer.Stop()
	var r result
	select {
	case r = <-done:
	case <-timer.C:
		unblock()
		select {
		case r = <-done:
			t.Fatalf("still blocked after %v; it returned only when unblocked, after %v, with %v", guard, r.took, r.err)
		case <-time.After(time.Minute):
			t.Fatalf("still blocked after %v, and a minute after it was unblocked", guard)
		}
	}
	if r.panicked != nil {
		t.Fatalf("panic after %v: %v", r.took, r.panicked)
	}
	return r.took, r.err
}

// closer returns a function that closes c, to unblock its calls.
func closer(c *reconn.Conn) func() { return func() { c.Close() } }

// blackhole makes the server's kernel stop acknowledging what it receives
// on every connection open now, or skips the test where it cannot.
func blackhole(t *testing.T, srv *faultnet.Server) {
	t.Helper()
	if err := srv.Blackhole(); err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, faultnet.ErrUnsupported) {
			t.Skipf("Blackhole: %v", err)
		}
		t.Fatal(err)
	}
}

// refuse closes srv's listener, so that dials to it are refused, and
// keeps its port from other programs (see holdPort).
func refuse(t *testing.T, srv *faultnet.Server) {
	t.Helper()
	if err := srv.Refuse(); err != nil {
		t.Fatal(err)
	}
	holdPort(t, srv.Addr())
}

// holdPort binds a socket to addr, a port no longer listened on, without
// listening, until the test ends: the kernel still refuses dials to addr,
// and no listener on port 0 is given the port meanwhile. A program that
// binds that very port with SO_REUSEADDR still can: servers that are
// later refused are started with newPrivateServer for that reason.
func holdPort(t *testing.T, addr net.Addr) {
	t.Helper()
	ta, ok := addr.(*net.TCPAddr)
	if !ok || ta.IP.To4() == nil {
		t.Fatalf("holdPort(%v): want an IPv4 TCP address", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	// The server's own connections may still hold the port, and they
	// share it, as its listener did, with any socket that asks.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatalf("bind %v: %v", addr, err)
	}
}

// serverFaults are the two ways a server ends a connection.
var serverFaults = []struct {
	name  string
	fault func(*faultnet.Server)
}{
	{"FIN", (*faultnet.Server).FIN},
	{"RST", (*faultnet.Server).RST},
}

// healingConn returns a Conn whose background recovery is under way and
// cannot succeed. The server's kernel stops acknowledging, the client
// writes a message, and the server closes its listener and then the
// connection with fault. In watch mode (the Linux default) the kernel's
// event starts a recovery in the background, to re-send the message that
// no peer acknowledged; healingConn returns once that recovery has made
// its first dial attempt.
func healingConn(t *testing.T, d *reconn.Dialer, fault func(*faultnet.Server)) *reconn.Conn {
	t.Helper()
	srv := newPrivateServer(t)
	cd := newCountingDialer()
	d.Dialer = cd
	// Close, when the test ends, need not redial for long.
	d.FlushTimeout = 100 * time.Millisecond
	// A FIN from a server whose kernel acknowledged nothing reads as a
	// receiver that half-closed at accept: the Conn finds the server
	// gone only when its message times out.
	d.UserTimeout = time.Second
	c := dialServer(t, d, srv)
	cd.wait(t, 1)
	blackhole(t, srv)
	send(t, c, nil, 0, 100)
	refuse(t, srv)
	fault(srv)
	cd.wait(t, 1)
	return c
}

// TestBoundsDuringBackgroundRedial checks that a Write's deadline, a
// Flush's context and a Write's own RedialTimeout hold while a background
// recovery is redialing a server that refuses: the caller's bounds are not
// stretched by those of the recovery that got there first.
func TestBoundsDuringBackgroundRedial(t *testing.T) {
	msg := faultnet.AppendMessage(nil, faultnet.Newline, 1, 100)
	for _, f := range serverFaults {
		t.Run(f.name+"/WriteDeadline", func(t *testing.T) {
			d := testDialer()
			// The recovery's own bound: the Write must not wait for it.
			d.RedialTimeout = 5 * time.Second
			c := healingConn(t, d, f.fault)
			const deadline = 200 * time.Millisecond
			took, err := timed(t, closer(c), func() error {
				c.SetWriteDeadline(time.Now().Add(deadline))
				_, err := c.Write(msg)
				return err
			})
			if took > deadline+slack {
				t.Errorf("Write with a %v deadline returned after %v; want at most %v", deadline, took, deadline+slack)
			}
			checkRedialTimeout(t, err)
		})
		t.Run(f.name+"/FlushContext", func(t *testing.T) {
			d := testDialer()
			d.RedialTimeout = 5 * time.Second
			c := healingConn(t, d, f.fault)
			const timeout = 200 * time.Millisecond
			took, err := timed(t, closer(c), func() error {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				return c.Flush(ctx)
			})
			if took > timeout+slack {
				t.Errorf("Flush with a %v context returned after %v; want at most %v", timeout, took, timeout+slack)
			}
			var ue *reconn.UnconfirmedError
			if !errors.As(err, &ue) || ue.Messages < 1 {
				t.Errorf("Flush = %v; want an *UnconfirmedError counting the held message", err)
			}
		})
		t.Run(f.name+"/RedialTimeout", func(t *testing.T) {
			// The Write starts just after the recovery: if it waits for
			// the recovery to give up and then redials for its own
			// RedialTimeout, it takes two of them.
			d := testDialer()
			d.RedialTimeout = 2 * time.Second
			c := healingConn(t, d, f.fault)
			took, err := timed(t, closer(c), func() error {
				_, err := c.Write(msg)
				return err
			})
			if took > d.RedialTimeout+slack {
				t.Errorf("Write with RedialTimeout %v returned after %v; want at most %v", d.RedialTimeout, took, d.RedialTimeout+slack)
			}
			if !errors.Is(err, reconn.ErrRedialLimit) || !platformtest.IsRefused(err) {
				t.Errorf("Write = %v; want ErrRedialLimit wrapping ECONNREFUSED", err)
			}
		})
	}
}

// fieldCase is one value of one Dialer field.
type fieldCase struct {
	name  string
	field string // The field's name, which a Dial error must contain.
	set   func(*reconn.Dialer)
	// If mustWork is set, Dial must succeed and a 100-byte Write work.
	mustWork bool
	// If timeoutOK is set, a Dial that times out is a clear answer.
	timeoutOK bool
}

// fieldCaseEnv names the case that TestDialerFieldValues runs when it is
// started as a child process of itself.
const fieldCaseEnv = "RECONN_TEST_FIELD_CASE"

// fieldCases returns negative, zero, tiny and huge values of every numeric
// Dialer field, and a few values that must be refused or raised.
func fieldCases() []fieldCase {
	var cases []fieldCase
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"MinInt64", math.MinInt64},
		{"-1s", -time.Second},
		{"0", 0},
		{"1ns", 1},
		{"MaxInt64", math.MaxInt64},
	}
	fields := []struct {
		name string
		p    func(*reconn.Dialer) *time.Duration
	}{
		{"UserTimeout", func(d *reconn.Dialer) *time.Duration { return &d.UserTimeout }},
		{"KeepAlive", func(d *reconn.Dialer) *time.Duration { return &d.KeepAlive }},
		{"RedialTimeout", func(d *reconn.Dialer) *time.Duration { return &d.RedialTimeout }},
		{"MinBackoff", func(d *reconn.Dialer) *time.Duration { return &d.MinBackoff }},
		{"MaxBackoff", func(d *reconn.Dialer) *time.Duration { return &d.MaxBackoff }},
		{"FlushTimeout", func(d *reconn.Dialer) *time.Duration { return &d.FlushTimeout }},
	}
	for _, f := range fields {
		for _, v := range durations {
			cases = append(cases, fieldCase{
				name:  f.name + "=" + v.name,
				field: f.name,
				set:   func(d *reconn.Dialer) { *f.p(d) = v.v },
				// A bound below the platform's resolution is raised to
				// it; a dial bounded by 1 ms may still time out.
				timeoutOK: f.name == "UserTimeout" && v.v > 0 && v.v < time.Second,
			})
		}
	}
	cases = append(cases, fieldCase{
		name:  "MinBackoff=1s,MaxBackoff=10ms",
		field: "MinBackoff",
		set:   func(d *reconn.Dialer) { d.MinBackoff, d.MaxBackoff = time.Second, 10*time.Millisecond },
	})
	for _, m := range []reconn.CheckMode{math.MinInt, -2, reconn.CheckNone, reconn.CheckDefault,
		reconn.CheckPeek, reconn.CheckState, reconn.CheckWatch, 42, math.MaxInt} {
		cases = append(cases, fieldCase{
			name:  "Check=" + m.String(),
			field: "Check",
			set:   func(d *reconn.Dialer) { d.Check = m },
		})
	}
	for _, n := range []int{math.MinInt, -1, 0, 1, 16, 100, 4095, 4096, math.MaxInt} {
		cases = append(cases, fieldCase{
			name:  fmt.Sprintf("ReplayBuffer=%d", n),
			field: "ReplayBuffer",
			set:   func(d *reconn.Dialer) { d.ReplayBuffer = n },
			// A positive ReplayBuffer below 4096 is raised to 4096.
			mustWork: n > 0 && n < 4096,
		})
	}
	return cases
}

// wantDialError returns the names of the fields that Dial must reject
// with an error naming each, or nil if d is valid.
func wantDialError(d *reconn.Dialer) []string {
	switch {
	case d.MinBackoff < 0:
		return []string{"MinBackoff"}
	case d.MaxBackoff < 0:
		return []string{"MaxBackoff"}
	case d.MinBackoff > 0 && d.MaxBackoff > 0 && d.MaxBackoff < d.MinBackoff:
		return []string{"MinBackoff", "MaxBackoff"}
	}
	switch d.Check {
	case reconn.CheckNone, reconn.CheckDefault, reconn.CheckPeek, reconn.CheckState, reconn.CheckWatch:
		return nil
	}
	return []string{"Check"}
}

// TestDialerFieldValues checks every numeric Dialer field with negative,
// zero, tiny and huge values: Dial either fails with an error naming the
// field, or the Conn writes, survives a server that resets and refuses,
// and closes, without a panic or a hang. Negative backoffs, a MaxBackoff
// below MinBackoff and an unknown Check fail at Dial; a ReplayBuffer
// below 4096 is raised to it.
//
// Each case runs in a child process, so that a panic in a background
// goroutine fails that case alone and shows its message.
func TestDialerFieldValues(t *testing.T) {
	cases := fieldCases()
	if name := os.Getenv(fieldCaseEnv); name != "" {
		for _, fc := range cases {
			if fc.name == name {
				runFieldCase(t, fc)
				return
			}
		}
		t.Fatalf("no case named %q", name)
	}
	for _, fc := range cases {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDialerFieldValues$", "-test.v", "-test.timeout=90s")
			// A race-enabled binary sleeps a second at exit unless told
			// not to; the caller's other GORACE options stay.
			gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
			cmd.Env = append(os.Environ(), fieldCaseEnv+"="+fc.name, "GORACE="+gorace)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("child process: %v\n%s", err, digest(out))
			} else if !strings.Contains(string(out), "--- PASS: TestDialerFieldValues") {
				t.Errorf("child process ran no test:\n%s", out)
			}
		})
	}
}

// digest keeps what explains a child's failure: the test's own messages
// and, after a panic, its message and the frames of this module.
func digest(out []byte) string {
	var keep []string
	lines := strings.Split(string(out), "\n")
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "panic: "), strings.HasPrefix(line, "fatal error: "):
			keep = append(keep, line)
			for _, frame := range lines[i+1:] {
				if strings.Contains(frame, "github.com/reconn/reconn.") && len(keep) < 40 {
					keep = append(keep, "\t"+strings.TrimSpace(frame))
				}
			}
			return strings.Join(keep, "\n")
		case trimmed == "", trimmed == "FAIL", trimmed == "PASS",
			strings.HasPrefix(trimmed, "=== "), strings.HasPrefix(trimmed, "--- "):
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

// runFieldCase runs one case, in the child process.
func runFieldCase(t *testing.T, fc fieldCase) {
	srv := newPrivateServer(t)
	d := testDialer()
	d.RedialTimeout = 500 * time.Millisecond
	fc.set(d)
	want := wantDialError(d)
	var nc net.Conn
	_, err := timed(t, func() {}, func() error {
		var err error
		nc, err = d.Dial("tcp", srv.Addr().String())
		return err
	})
	switch {
	case err != nil && want != nil:
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Dial = %v; want an error naming %s", err, w)
			}
		}
		return
	case err != nil:
		if fc.timeoutOK && timeoutErr(err) {
			return
		}
		if fc.mustWork {
			t.Fatalf("Dial = %v; want a Conn", err)
		}
		if !strings.Contains(err.Error(), fc.field) {
			t.Fatalf("Dial = %v; want a Conn, or an error naming %s", err, fc.field)
		}
		return
	case want != nil:
		// Go on: what the Conn does with the value shows what an
		// unchecked value costs.
		t.Errorf("Dial succeeded; want an error naming %s", strings.Join(want, " and "))
	}
	c := nc.(*reconn.Conn)
	t.Cleanup(func() { c.Close() })
	ctx := testContext(t)

	msg := func(seq int) []byte { return faultnet.AppendMessage(nil, faultnet.Newline, seq, 100) }
	write := func(seq int) error {
		_, err := timed(t, closer(c), func() error {
			_, err := c.Write(msg(seq))
			return err
		})
		return err
	}
	if err := write(0); err != nil {
		t.Fatalf("Write(100 bytes) = %v; want nil", err)
	}
	if err := srv.WaitReceived(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// A message that no peer acknowledges, so that a recovery has
	// something to re-send; in watch mode it starts in the background.
	if srv.Blackhole() == nil {
		if err := write(1); err != nil {
			t.Fatalf("Write to a blackholed server = %v; want nil", err)
		}
	}
	refuse(t, srv)
	srv.RST()
	awaitReset(t, c)

	const deadline = 100 * time.Millisecond
	took, err := timed(t, closer(c), func() error {
		c.SetWriteDeadline(time.Now().Add(deadline))
		_, err := c.Write(msg(2))
		return err
	})
	if err == nil {
		t.Errorf("Write with the server gone = nil; want an error")
	}
	if took > deadline+3*slack {
		t.Errorf("Write with a %v deadline and the server gone returned after %v", deadline, took)
	}
	_, err = timed(t, func() {}, c.Close)
	var ue *reconn.UnconfirmedError
	if err != nil && !errors.As(err, &ue) {
		t.Errorf("Close = %v; want nil or an *UnconfirmedError", err)
	}
}

// recordingDialer keeps every connection it makes, so a test can ask the
// kernel about their sockets.
type recordingDialer struct {
	d     net.Dialer
	mu    sync.Mutex
	conns []net.Conn
}

func (r *recordingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	nc, err := r.d.DialContext(ctx, network, address)
	if err == nil {
		r.mu.Lock()
		r.conns = append(r.conns, nc)
		r.mu.Unlock()
	}
	return nc, err
}

// TestUserTimeoutResolution checks that a UserTimeout below a millisecond,
// the resolution of TCP_USER_TIMEOUT, is rounded up to one millisecond
// rather than down to zero, which would turn the timeout off.
func TestUserTimeoutResolution(t *testing.T) {
	srv := newPrivateServer(t)
	for _, tc := range []struct {
		v    time.Duration
		want int
	}{
		{1, 1},
		{time.Microsecond, 1},
		{time.Millisecond - 1, 1},
		{time.Millisecond, 1},
		{1500 * time.Millisecond, 1500},
	} {
		t.Run(tc.v.String(), func(t *testing.T) {
			// The dial is bounded by the UserTimeout, rounded up.
			short.SkipBound(t, max(tc.v, time.Millisecond))
			rd := &recordingDialer{}
			d := testDialer()
			d.UserTimeout = tc.v
			d.Dialer = rd
			var nc net.Conn
			var err error
			// A dial bounded by a millisecond may time out on a loaded
			// machine: that is a fair answer, so try again.
			for range 5 {
				if nc, err = d.Dial("tcp", srv.Addr().String()); err == nil || !timeoutErr(err) {
					break
				}
			}
			if err != nil {
				t.Fatalf("Dial = %v", err)
			}
			c := nc.(*reconn.Conn)
			t.Cleanup(func() { c.Close() })
			rd.mu.Lock()
			sock := rd.conns[len(rd.conns)-1].(*net.TCPConn)
			rd.mu.Unlock()
			raw, err := sock.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got int
			var gerr error
			if err := raw.Control(func(fd uintptr) {
				got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
			}); err != nil || gerr != nil {
				t.Fatalf("getsockopt(TCP_USER_TIMEOUT): %v, %v", err, gerr)
			}
			if got != tc.want {
				t.Errorf("UserTimeout %v: TCP_USER_TIMEOUT = %d ms; want %d", tc.v, got, tc.want)
			}
			if _, err := c.Write(faultnet.AppendMessage(nil, faultnet.Newline, 0, 100)); err != nil {
				t.Errorf("Write = %v", err)
			}
		})
	}
}

// TestFirstTLSHandshakeBounded checks that the first dial, TLS handshake
// included, ends with a timeout error by the bound that applies: the
// net.Dialer's Timeout or Deadline, as crypto/tls's DialWithDialer has it,
// the context given to DialContext, or else UserTimeout.
func TestFirstTLSHandshakeBounded(t *testing.T) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	for _, tc := range []struct {
		name  string
		bound time.Duration
		dial  func(addr string) (net.Conn, error)
	}{
		{"net.Dialer.Timeout", time.Second, func(addr string) (net.Conn, error) {
			d := &reconn.Dialer{Dialer: &net.Dialer{Timeout: time.Second}, TLSConfig: cfg}
			return d.Dial("tcp", addr)
		}},
		{"net.Dialer.Deadline", time.Second, func(addr string) (net.Conn, error) {
			d := &reconn.Dialer{Dialer: &net.Dialer{Deadline: time.Now().Add(time.Second)}, TLSConfig: cfg}
			return d.Dial("tcp", addr)
		}},
		{"DialContext", time.Second, func(addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			d := &reconn.Dialer{TLSConfig: cfg}
			return d.DialContext(ctx, "tcp", addr)
		}},
		{"UserTimeout", 300 * time.Millisecond, func(addr string) (net.Conn, error) {
			d := &reconn.Dialer{TLSConfig: cfg, UserTimeout: 300 * time.Millisecond}
			return d.Dial("tcp", addr)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, serverOptions{}) // reads the handshake, never answers
			took, err := timed(t, srv.hangUp, func() error {
				nc, err := tc.dial(srv.addr().String())
				if nc != nil {
					nc.Close()
					if err == nil {
						return errors.New("a Conn, from a server that never answered")
					}
				}
				return err
			})
			if !timeoutErr(err) {
				t.Errorf("Dial = %v; want a timeout error", err)
			}
			if took > tc.bound+slack {
				t.Errorf("Dial bounded by %v returned after %v; want at most %v", tc.bound, took, tc.bound+slack)
			}
		})
	}
}

// TestGiveUpWrapsDialError checks that every Write that gives up after
// failed dials, at its deadline or at RedialTimeout, wraps the last dial
// or write error, even when the bound passes during a dial attempt and
// that attempt fails only with a timeout. Once a dial has been refused,
// that is ECONNREFUSED; before, it is the write that found the connection
// dead (EPIPE, or the reset), which is what a Write meets whose bound cuts
// its only dial, as on a machine where a dial takes longer than the bound.
func TestGiveUpWrapsDialError(t *testing.T) {
	const rounds = 200
	msg := faultnet.AppendMessage(nil, faultnet.Newline, 0, 100)
	run := func(t *testing.T, c *reconn.Conn, want error, wantName string, setup func(round int)) {
		// Before the rounds, a dial must have been refused: until one
		// returns, the last error the Conn met is the reset that ended
		// its link, and a Write on a starved machine may give up before
		// its only dial returns, rightly wrapping that reset.
		refused := false
		for try := 0; try < 100 && !refused; try++ {
			setup(0)
			_, err := c.Write(msg)
			refused = platformtest.IsRefused(err)
		}
		if !refused {
			t.Fatal("no Write in 100 met a refused dial")
		}
		bad := 0
		var first []string
		for round := range rounds {
			_, err := timed(t, closer(c), func() error {
				setup(round)
				_, err := c.Write(msg)
				return err
			})
			if errors.Is(err, want) && platformtest.IsRefused(err) {
				continue
			}
			bad++
			if len(first) < 3 {
				first = append(first, fmt.Sprintf("round %d: %v", round, err))
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d Writes did not wrap both %s and ECONNREFUSED; first:\n%s", bad, rounds, wantName, strings.Join(first, "\n"))
		}
	}
	t.Run("WriteDeadline", func(t *testing.T) {
		d := testDialer()
		// Attempts follow each other closely, so that many deadlines
		// pass while a dial is under way.
		d.MinBackoff, d.MaxBackoff = time.Microsecond, 10*time.Microsecond
		c, _ := refusedConn(t, d)
		holdPort(t, c.RemoteAddr())
		run(t, c, os.ErrDeadlineExceeded, "os.ErrDeadlineExceeded", func(round int) {
			c.SetWriteDeadline(time.Now().Add(time.Duration(2+round%9) * time.Millisecond))
		})
	})
	t.Run("RedialTimeout", func(t *testing.T) {
		d := testDialer()
		d.MinBackoff, d.MaxBackoff = time.Microsecond, 10*time.Microsecond
		d.RedialTimeout = 5 * time.Millisecond
		c, _ := refusedConn(t, d)
		holdPort(t, c.RemoteAddr())
		run(t, c, reconn.ErrRedialLimit, "ErrRedialLimit", func(int) {})
	})
}

// TestHalfCloseAtAccept checks that a receiver that half-closes at once
// and keeps reading does not cost a connection per message: a FIN before
// the peer took anything, or one that follows a move made for a FIN
// within a second, does not end a connection. 200 paced messages need at
// most 2 connections, and none is lost or duplicated, whether the FIN
// comes before the first message or after the peer acknowledged it.
func TestHalfCloseAtAccept(t *testing.T) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run("delay="+delay.String(), func(t *testing.T) { halfCloseAtAccept(t, delay) })
	}
}

func halfCloseAtAccept(t *testing.T, delay time.Duration) {
	h := newTestServer(t, serverOptions{mode: lines, halfClose: true, halfCloseAfter: delay})
	c := dial(t, testDialer(), h.addr())
	ctx := testContext(t)
	const total = 200
	var buf []byte
	for seq := range total {
		// The deadline bounds the Write, redials included.
		c.SetWriteDeadline(time.Now().Add(guard))
		buf = send(t, c, buf, seq, 100)
		if err := h.wait(ctx, func() bool { return h.got[seq] > 0 }); err != nil {
			t.Fatalf("waiting for seq %d: %v; Stats() = %+v", seq, err, c.Stats())
		}
	}
	c.SetWriteDeadline(time.Time{})
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	dials := int(c.Stats().Dials)
	if err := h.wait(ctx, func() bool { return h.accepted >= dials && h.ended == h.accepted }); err != nil {
		t.Fatalf("waiting for %d connections to end: %v", dials, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	lost, dup := 0, 0
	for seq := range total {
		switch n := h.got[seq]; {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	if lost != 0 || dup != 0 || len(h.got) != total {
		t.Errorf("lost %d, duplicated %d, %d distinct sequence numbers of %d; want 0, 0, %d", lost, dup, len(h.got), total, total)
	}
	if dials > 2 {
		t.Errorf("Stats().Dials = %d for %d messages to a receiver that half-closed at accept; want at most 2", dials, total)
	}
	t.Logf("%d messages, %d connections", total, dials)
}

// TestIdleCloseNoRedial checks that a server closing an idle connection
// whose every message its kernel acknowledged, and then refusing, starts
// no redial: there is nothing to re-send, so the next Write dials, not a
// background loop. Absence cannot be waited for: the test watches for a
// dial attempt for a fixed window.
func TestIdleCloseNoRedial(t *testing.T) {
	const window = 300 * time.Millisecond
	for _, f := range serverFaults {
		t.Run(f.name, func(t *testing.T) {
			srv := newPrivateServer(t)
			cd := newCountingDialer()
			d := testDialer()
			d.Dialer = cd
			d.RedialTimeout = time.Second
			c := dialServer(t, d, srv)
			cd.wait(t, 1)
			ctx := testContext(t)
			send(t, c, nil, 0, 100)
			if err := srv.WaitReceived(ctx, 1); err != nil {
				t.Fatal(err)
			}
			// A reply carries the acknowledgement of the message: once
			// the client has read it, its kernel has that too.
			if _, err := srv.Conns()[0].NetConn().Write([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(guard))
			reply := make([]byte, 2)
			if _, err := io.ReadFull(c, reply); err != nil {
				t.Fatalf("reading the reply: %v", err)
			}
			refuse(t, srv)
			f.fault(srv)
			// Wait until the client's kernel has the close.
			_, err := c.Read(reply)
			if (f.name == "FIN" && err != io.EOF) || (f.name == "RST" && !platformtest.IsResetRead(err)) {
				t.Fatalf("Read after %s = %v", f.name, err)
			}
			c.SetReadDeadline(time.Time{})

			timer := time.NewTimer(window)
			defer timer.Stop()
			select {
			case <-cd.ch:
				t.Errorf("a dial attempt after the %s of an idle, acknowledged connection, with no Write; want none", f.name)
			case <-timer.C:
			}

			// The next Write needs a connection, and dials: at once after
			// a reset. After a FIN the Write may go out on the half-closed
			// connection, whose peer, gone, answers with a reset; the
			// message is then unacknowledged, and the Conn dials for it.
			_, err = timed(t, closer(c), func() error {
				c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
				_, err := c.Write(faultnet.AppendMessage(nil, faultnet.Newline, 1, 100))
				return err
			})
			if f.name == "RST" && err == nil {
				t.Errorf("Write with the server gone = nil; want an error")
			}
			cd.wait(t, 1)
		})
	}
}

// TestPassedDeadlineWrapsDialError: a Write whose deadline has already
// passed when it finds the connection down stops before any dial, and its
// error still wraps the dial error the Conn last met, as on a machine slow
// enough that a short deadline passes before the redial begins.
func TestPassedDeadlineWrapsDialError(t *testing.T) {
	d := testDialer()
	d.RedialTimeout = 50 * time.Millisecond
	c, _ := refusedConn(t, d)
	holdPort(t, c.RemoteAddr())
	msg := faultnet.AppendMessage(nil, faultnet.Newline, 0, 100)
	if _, err := c.Write(msg); !platformtest.IsRefused(err) {
		t.Fatalf("Write to a refusing server = %v; want ECONNREFUSED", err)
	}
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	_, err := c.Write(msg)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !platformtest.IsRefused(err) {
		t.Errorf("Write past its deadline, connection down = %v; want os.ErrDeadlineExceeded wrapping ECONNREFUSED", err)
	}
}
