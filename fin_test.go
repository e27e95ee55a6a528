package reconn_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/short"
)

// A restart is how a server restarts in the usual way: it stops
// listening (a unix socket's file goes with the listener), half-closes
// every connection it has, goes on reading them for drain, then closes
// them, and listens again on the same address relisten after the
// half-close. With toEOF it reads each connection until the client's EOF
// instead, and never closes one itself.
type restart struct {
	drain, relisten time.Duration
	toEOF           bool
	// measure closes as faultnet's FIN does, recording exactly what is
	// left unread (TCP, with the privilege the socket filter needs);
	// otherwise the close discards it, as a server's close does.
	measure bool
}

func (r restart) String() string {
	if r.toEOF {
		return "drain to EOF"
	}
	return "drain " + r.drain.String()
}

// apply restarts srv; it returns once srv listens again and the old
// connections are closed or, with toEOF, were read to their end.
func (r restart) apply(ctx context.Context, srv *faultnet.Server) error {
	old := srv.Conns()
	if err := srv.Refuse(); err != nil {
		return err
	}
	return r.run(ctx, len(old), func(i int) { old[i].HalfClose() }, func(i int) {
		if r.measure {
			old[i].FIN()
		} else {
			old[i].RSTUnread()
		}
	}, func(i int) <-chan struct{} { return old[i].Done() }, srv.Accept)
}

// run runs the steps of the restart of a server that no longer listens
// and has n connections: halfClose(i) at once, close(i) after the drain
// period (with toEOF, waiting for done(i) instead), and listen after
// relisten.
func (r restart) run(ctx context.Context, n int, halfClose, close func(int), done func(int) <-chan struct{}, listen func() error) error {
	for i := range n {
		halfClose(i)
	}
	start := time.Now()
	listened := make(chan error, 1)
	go func() {
		sleepCtx(ctx, time.Until(start.Add(r.relisten)))
		listened <- listen()
	}()
	if r.toEOF {
		for i := range n {
			select {
			case <-done(i):
			case <-ctx.Done():
			}
		}
	} else {
		sleepCtx(ctx, r.drain)
		for i := range n {
			close(i)
		}
	}
	if err := <-listened; err != nil {
		return err
	}
	return ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// restartStream writes messages of 100 bytes at full speed to c, and
// restarts srv as r says once srv has processed cut of them. It goes on
// writing until the restart is over (see writeThrough), and returns the
// server's final report.
func restartStream(t *testing.T, c *reconn.Conn, srv *faultnet.Server, cut, after, min int, r restart) faultnet.Report {
	t.Helper()
	ctx := testContext(t)
	restarted := make(chan error, 1)
	go func() {
		err := srv.WaitReceived(ctx, cut)
		if err == nil {
			err = r.apply(ctx, srv)
		}
		restarted <- err
	}()
	total := writeThrough(t, c, restarted, after, min)
	finish(t, c, srv)
	return srv.Report(total)
}

// writeThrough writes messages of 100 bytes, numbered from 0, at full
// speed to c until a value arrives from fault, so that the stream meets
// every step of the fault, and then after more, at least min in all. It
// returns how many it wrote.
func writeThrough(t *testing.T, c net.Conn, fault <-chan error, after, min int) int {
	t.Helper()
	var buf []byte
	total, done := 0, false
	for ; !done || total < min; total++ {
		if !done {
			select {
			case err := <-fault:
				if err != nil {
					t.Fatalf("fault: %v", err)
				}
				done, min = true, max(min, total+after)
			default:
			}
		}
		buf = send(t, c, buf, total, 100)
	}
	return total
}

// unixServer starts a faultnet server on a unix socket in a directory of
// the test's.
func unixServer(t *testing.T) *faultnet.Server {
	t.Helper()
	if reason := platformtest.NoUnixSockets(); reason != "" {
		t.Skip(reason)
	}
	if runtime.GOOS == "windows" {
		t.Skip("a Conn runs no check on a unix socket on Windows, so it cannot see the server's FIN")
	}
	srv, err := faultnet.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatalf("faultnet: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// finSubject is what the tests of a server's FIN need a kernel for.
const finSubject = "a server's FIN, which a check sees"

// finRuns is how many restarts TestUnixRestartAfterFIN makes, and
// finMessages how many messages each stream has; RECONN_FIN_RUNS and
// RECONN_FIN_MESSAGES change them.
func finRuns(t *testing.T) (runs, messages int) {
	runs, messages = 20, 50000
	for _, v := range []struct {
		env string
		p   *int
	}{{"RECONN_FIN_RUNS", &runs}, {"RECONN_FIN_MESSAGES", &messages}} {
		if s := os.Getenv(v.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				t.Fatalf("%s=%q: want a positive number", v.env, s)
			}
			*v.p = n
		}
	}
	return runs, messages
}

// TestUnixRestartAfterFIN restarts a unix stream server the usual way in
// mid-stream: it stops listening and removes its socket, half-closes,
// reads on for 300 ms, closes, discarding what it has not read, and
// listens again 150 ms after the half-close. A unix socket's close
// discards unread data without a trace in the client's send queue; a
// Conn that leaves at the FIN, and re-sends whatever the old server did
// not read, loses nothing, every time, without a write error.
func TestUnixRestartAfterFIN(t *testing.T) {
	short.Skip(t, "20 restarts in 50,000-message streams")
	platformtest.NeedKernelSockets(t, finSubject)
	runs, total := finRuns(t)
	r := restart{drain: 300 * time.Millisecond, relisten: 150 * time.Millisecond}
	lost, dup, sent := 0, 0, 0
	for run := range runs {
		srv := unixServer(t)
		c := dialServer(t, testDialer(), srv)
		rep := restartStream(t, c, srv, total/5, total/5, total, r)
		s := c.Stats()
		if rep.Lost != 0 {
			t.Errorf("run %d: lost %d of %d; want 0\n%v", run, rep.Lost, rep.Sent, rep)
		}
		if s.Dials < 2 {
			t.Errorf("run %d: Stats().Dials = %d; want at least 2 (the restart)", run, s.Dials)
		}
		lost += rep.Lost
		dup += rep.Duplicated
		sent += rep.Sent
	}
	t.Logf("%d unix restarts (%s) in streams of at least %d messages (%d in all): lost %d, duplicated %d", runs, r, total, sent, lost, dup)
}

// TestRestartAfterFIN restarts the server in mid-stream as
// TestUnixRestartAfterFIN does, over TCP and unix sockets, reading for a
// drain period, or until the client's EOF, or closing right after the
// FIN. Nothing is lost outside what the server's kernel took and the
// server never read (none is left with a drain); with a server that reads
// to EOF, nothing is duplicated either.
func TestRestartAfterFIN(t *testing.T) {
	const total = 10000
	platformtest.NeedKernelSockets(t, finSubject)
	platformtest.NeedTCPInfo(t)
	for _, network := range []string{"tcp", "unix"} {
		for _, r := range []restart{
			{drain: 300 * time.Millisecond, relisten: 150 * time.Millisecond},
			{toEOF: true, relisten: 150 * time.Millisecond},
			{drain: 0, relisten: 150 * time.Millisecond},
		} {
			t.Run(network+"/"+r.String(), func(t *testing.T) {
				var srv *faultnet.Server
				if network == "unix" {
					srv = unixServer(t)
				} else {
					srv = newPrivateServer(t)
					r.measure = true
				}
				c := dialServer(t, testDialer(), srv)
				rep := restartStream(t, c, srv, total/4, total/4, total, r)
				if network == "tcp" {
					exactOrSkip(t, rep)
				}
				lost := rep.ClientLost
				if network == "unix" || r.drain > 0 || r.toEOF {
					lost = rep.Lost // no message is left unread
				}
				if lost != 0 {
					t.Errorf("lost %d (unread by the server: %d); want 0\n%v", rep.Lost, rep.Unavoidable, rep)
				}
				if r.toEOF && rep.Duplicated != 0 {
					t.Errorf("duplicated %d; want 0 from a server that reads to EOF\n%v", rep.Duplicated, rep)
				}
				t.Logf("%d sent: lost %d (unavoidable %d), duplicated %d, %d connections", rep.Sent, rep.Lost, rep.Unavoidable, rep.Duplicated, c.Stats().Dials)
			})
		}
	}
}

// TestWriteToVanishedServer: the server reads a message, then closes
// (with a FIN, or a reset) and stops listening. A later Write with a
// deadline must not report success: it returns a timeout that wraps the
// dial error, within its deadline, and the message does not count as
// written; a Close whose deadline has passed returns at once.
func TestWriteToVanishedServer(t *testing.T) {
	platformtest.NeedKernelSockets(t, finSubject)
	platformtest.NeedTCPInfo(t)
	for _, network := range []string{"tcp", "unix"} {
		for _, fault := range []string{"fin", "rst"} {
			if network == "unix" && fault == "rst" {
				continue // a unix socket cannot be reset
			}
			t.Run(network+"/"+fault, func(t *testing.T) {
				var srv *faultnet.Server
				if network == "unix" {
					srv = unixServer(t)
				} else {
					srv = newPrivateServer(t)
				}
				c := dialServer(t, testDialer(), srv)
				send(t, c, nil, 0, 100)
				if err := srv.WaitReceived(testContext(t), 1); err != nil {
					t.Fatal(err)
				}
				if err := srv.Refuse(); err != nil {
					t.Fatal(err)
				}
				if fault == "fin" {
					srv.FIN()
				} else {
					srv.RST()
				}
				// Let the close reach the client before the Write.
				time.Sleep(300 * time.Millisecond)
				const limit = 200 * time.Millisecond
				msg := faultnet.AppendMessage(nil, faultnet.Newline, 1, 100)
				c.SetWriteDeadline(time.Now().Add(limit))
				start := time.Now()
				n, err := c.Write(msg)
				took := time.Since(start)
				if !timeoutErr(err) {
					t.Fatalf("Write to a vanished server = %d, %v; want a timeout", n, err)
				}
				if n != 0 {
					t.Errorf("Write = %d, %v; want 0 bytes written", n, err)
				}
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("Write error %v does not wrap os.ErrDeadlineExceeded", err)
				}
				if !dialErr(err) {
					t.Errorf("Write error %v does not wrap the dial error", err)
				}
				if took > limit+slack {
					t.Errorf("Write took %v; want at most its deadline %v (+%v)", took, limit, slack)
				}
				if p := c.Stats().Pending; p != 0 {
					t.Errorf("Stats().Pending = %d after the failed Write; want 0", p)
				}
				took, cerr := timedClose(c)
				if took > slack {
					t.Errorf("Close with its deadline passed took %v (%v); want at once", took, cerr)
				}
			})
		}
	}
}

// dialErr reports whether err wraps a dial's error: a *net.OpError whose
// Op is "dial".
func dialErr(err error) bool {
	if oe, ok := err.(*net.OpError); ok && oe.Op == "dial" {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return u.Unwrap() != nil && dialErr(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if dialErr(e) {
				return true
			}
		}
	}
	return false
}

func timedClose(c *reconn.Conn) (time.Duration, error) {
	start := time.Now()
	err := c.Close()
	return time.Since(start), err
}
