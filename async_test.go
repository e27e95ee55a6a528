package reconn_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/platformtest"
)

// asyncDialer is testDialer with Async.
func asyncDialer() *reconn.Dialer {
	d := testDialer()
	d.Async = true
	return d
}

func TestAsyncConformance(t *testing.T) { testConformance(t, "async", asyncDialer()) }

// TestAsyncRestarts restarts the server ten times within one stream; no
// Write may fail, and nothing may be lost outside the unread sets.
func TestAsyncRestarts(t *testing.T) {
	const total, size, restarts = 100000, 100, 10
	srv := newPrivateServer(t)
	c := dialServer(t, asyncDialer(), srv)
	r := restartDuring(t, c, srv, total, size, restarts)
	if r.ClientLost != 0 {
		t.Errorf("%d messages lost outside the unread sets\n%v", r.ClientLost, r)
	}
	s := c.Stats()
	if s.Redials < 1 {
		t.Errorf("Stats().Redials = %d; want at least 1", s.Redials)
	}
	t.Logf("%d restarts: %v; %d redials, %d re-sent, %d dials", restarts, r, s.Redials, s.ResentMessages, s.Dials)
}

// TestAsyncDrain half-closes the server in mid-stream; it keeps reading.
func TestAsyncDrain(t *testing.T) {
	const total, size = 20000, 100
	for _, cut := range cutPoints(total, 4) {
		srv := newPrivateServer(t)
		c := dialServer(t, asyncDialer(), srv)
		r := stream(t, c, srv, total, size, cut, srv.HalfClose)
		if r.Lost != 0 || r.Duplicated != 0 {
			t.Errorf("cut %d: lost %d, duplicated %d; want 0, 0\n%v", cut, r.Lost, r.Duplicated, r)
		}
	}
}

// TestAsyncAbrupt resets the server in mid-stream.
func TestAsyncAbrupt(t *testing.T) {
	const total, size = 20000, 100
	for _, cut := range cutPoints(total, 4) {
		srv := newPrivateServer(t)
		c := dialServer(t, asyncDialer(), srv)
		r := stream(t, c, srv, total, size, cut, srv.RST)
		exactOrSkip(t, r)
		if r.ClientLost != 0 {
			t.Errorf("cut %d: %d lost outside the unread set\n%v", cut, r.ClientLost, r)
		}
	}
}

// TestAsyncBlackhole: the server's kernel stops acknowledging after a
// quarter of the stream arrived; with a 1 s UserTimeout the writer
// redials and replays the rest.
func TestAsyncBlackhole(t *testing.T) {
	const total, cut = 20000, 5000
	srv := newPrivateServer(t)
	d := asyncDialer()
	d.UserTimeout = time.Second
	c := dialServer(t, d, srv)
	r := blackholeAt(t, c, srv, total, cut)
	if r.Lost != 0 {
		t.Errorf("lost %d; want 0\n%v", r.Lost, r)
	}
	if s := c.Stats(); s.Redials < 1 {
		t.Errorf("Stats().Redials = %d; want >= 1", s.Redials)
	}
}

// TestAsyncStartWhileDown dials while nothing listens: Dial returns a Conn
// at once, Writes buffer, and everything arrives once the server listens.
func TestAsyncStartWhileDown(t *testing.T) {
	const total = 1000
	srv := newPrivateServer(t)
	if err := srv.Refuse(); err != nil {
		t.Fatal(err)
	}
	d := asyncDialer()
	cd := newCountingDialer()
	d.Dialer = cd
	c := dial(t, d, srv.Addr())
	var buf []byte
	for seq := 0; seq < total; seq++ {
		buf = send(t, c, buf, seq, 100)
	}
	cd.wait(t, 2) // the writer is dialing and failing
	s := c.Stats()
	if s.Pending != total || s.Unsent != total || s.DownSince.IsZero() {
		t.Errorf("Stats() before the server listens = %+v; want %d pending and unsent, DownSince set", s, total)
	}
	if err := srv.Accept(); err != nil {
		t.Fatal(err)
	}
	finish(t, c, srv)
	if r := srv.Report(total); r.Lost != 0 || r.Duplicated != 0 {
		t.Errorf("lost %d, duplicated %d; want 0, 0\n%v", r.Lost, r.Duplicated, r)
	}
	if s := c.Stats(); s.Redials != 0 || s.Dials != 1 {
		t.Errorf("Stats() = %+v; want 1 dial, 0 redials", s)
	}
}

// TestAsyncFull: a server that never reads. By default Write waits for room
// and ends at its deadline; with FailWhenFull it fails at once. Memory
// stays within ReplayBuffer.
func TestAsyncFull(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := "wait"
		if fail {
			name = "FailWhenFull"
		}
		t.Run(name, func(t *testing.T) {
			srv := newPrivateServer(t)
			d := asyncDialer()
			d.ReplayBuffer = 256 << 10
			d.FailWhenFull = fail
			var full atomic.Int64
			d.OnFull = func() { full.Add(1) }
			c := dialServer(t, d, srv)
			srv.Pause()
			msg := faultnet.AppendMessage(nil, faultnet.Newline, 0, 1000)
			var err error
			if !fail {
				// With FailWhenFull no deadline is needed: a stall must
				// not turn ErrBufferFull into a timeout.
				c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			}
			for i := 0; err == nil; i++ {
				_, err = c.Write(msg)
				if s := c.Stats(); s.PendingBytes+16*s.Pending > int64(d.ReplayBuffer) {
					t.Fatalf("after %d Writes, %d bytes pending in %d messages; bound %d", i, s.PendingBytes, s.Pending, d.ReplayBuffer)
				}
			}
			if fail {
				if !errors.Is(err, reconn.ErrBufferFull) {
					t.Errorf("Write into a full buffer = %v; want ErrBufferFull", err)
				}
				if s := c.Stats(); s.Rejected != 1 {
					t.Errorf("Stats().Rejected = %d; want 1", s.Rejected)
				}
			} else if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Write into a full buffer = %v; want a timeout at the deadline", err)
			}
			if full.Load() < 1 {
				t.Errorf("OnFull was not called")
			}
			c.SetWriteDeadline(time.Time{})
			srv.Resume()
		})
	}
}

// TestAsyncRedialTimeout: once the server has been down for RedialTimeout,
// Writes fail with ErrRedialLimit and what is buffered stays; when the
// server is back, Writes succeed and everything arrives.
func TestAsyncRedialTimeout(t *testing.T) {
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	srv := newPrivateServer(t)
	d := asyncDialer()
	d.RedialTimeout = 100 * time.Millisecond
	cd := newCountingDialer()
	d.Dialer = cd
	redialed := make(chan reconn.RedialEvent, 1)
	d.OnRedial = func(ev reconn.RedialEvent) { redialed <- ev }
	c := dialServer(t, d, srv)
	cd.wait(t, 1)
	var buf []byte
	buf = send(t, c, buf, 0, 100)
	if err := srv.WaitReceived(testContext(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.Refuse(); err != nil {
		t.Fatal(err)
	}
	srv.RST()
	awaitReset(t, c)
	seq := 1
	ctx := testContext(t)
	for {
		buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, seq, 100)
		_, err := c.Write(buf)
		if err != nil {
			if !errors.Is(err, reconn.ErrRedialLimit) || !platformtest.IsRefused(err) {
				t.Fatalf("Write while down = %v; want ErrRedialLimit wrapping ECONNREFUSED", err)
			}
			break
		}
		seq++
		if seq%100 == 0 {
			cd.wait(t, 1) // let the writer fail a while
		}
		if ctx.Err() != nil {
			t.Fatal("no error after RedialTimeout")
		}
	}
	if err := c.Flush(context.Background()); !errors.Is(err, reconn.ErrRedialLimit) {
		t.Errorf("Flush while down = %v; want ErrRedialLimit", err)
	}
	if err := srv.Accept(); err != nil {
		t.Fatal(err)
	}
	// Writes succeed again once the writer is connected.
	select {
	case <-redialed:
	case <-ctx.Done():
		t.Fatal("no redial after the server came back")
	}
	buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, seq, 100)
	if _, err := c.Write(buf); err != nil {
		t.Fatalf("Write after the redial = %v; want nil", err)
	}
	seq++
	finish(t, c, srv)
	if r := srv.Report(seq); r.ClientLost != 0 {
		t.Errorf("lost %d\n%v", r.ClientLost, r)
	}
}

// TestAsyncConcurrentWriters breaks the connection twice under 8 writers.
func TestAsyncConcurrentWriters(t *testing.T) { writeConcurrently(t, asyncDialer()) }

// TestAsyncCloseDuringRedial closes while the writer redials a server that
// is down: Close reports what is unconfirmed, and nothing is left running.
func TestAsyncCloseDuringRedial(t *testing.T) {
	platformtest.NeedKernelSockets(t, platformtest.ServerReset)
	srv := newPrivateServer(t)
	d := asyncDialer()
	d.FlushTimeout = 100 * time.Millisecond
	cd := newCountingDialer()
	d.Dialer = cd
	c := dialServer(t, d, srv)
	if err := srv.Refuse(); err != nil {
		t.Fatal(err)
	}
	srv.RST()
	awaitReset(t, c)
	send(t, c, nil, 0, 100)
	cd.wait(t, 3)
	err := c.Close()
	var ue *reconn.UnconfirmedError
	if !errors.As(err, &ue) || ue.Messages != 1 {
		t.Errorf("Close() = %v; want an UnconfirmedError counting 1 message", err)
	}
	if _, err := c.Write([]byte("x\n")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v; want net.ErrClosed", err)
	}
}

// TestAsyncBadInput: what no dial could use fails at Dial, at once.
func TestAsyncBadInput(t *testing.T) {
	for _, tc := range []struct{ network, address, want string }{
		{"udp", "127.0.0.1:1", "unknown network"},
		{"tcp", "127.0.0.1", "missing port"},
		{"tcp", "127.0.0.1:no-such-port", "port"},
		{"tcp", "127.0.0.1:99999", "port"},
		{"unix", "", "missing address"},
	} {
		d := asyncDialer()
		start := time.Now()
		c, err := d.Dial(tc.network, tc.address)
		if err == nil {
			c.Close()
			t.Errorf("Dial(%q, %q) = nil error; want one naming %q", tc.network, tc.address, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Dial(%q, %q) = %v; want it to say %q", tc.network, tc.address, err, tc.want)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("Dial(%q, %q) took %v", tc.network, tc.address, took)
		}
	}
	d := asyncDialer()
	d.ReplayBuffer = -1
	if c, err := d.Dial("tcp", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "ReplayBuffer") {
		if c != nil {
			c.Close()
		}
		t.Errorf("Dial with Async and replay off = %v; want an error naming ReplayBuffer", err)
	}
}

// TestAsyncCloseWhileWriting closes an Async Conn while writers are in
// Write: a Write that returned nil must have its message delivered when
// Close returns nil, however the two interleave.
func TestAsyncCloseWhileWriting(t *testing.T) {
	const rounds, writers = 100, 4
	for round := range rounds {
		ln, err := net.Listen("tcp", privateLoopback()+":0")
		if err != nil {
			t.Fatal(err)
		}
		got := make(map[int]bool)
		read := make(chan error, 1)
		go func() {
			nc, err := ln.Accept()
			ln.Close()
			if err != nil {
				read <- err
				return
			}
			defer nc.Close()
			sc := bufio.NewScanner(nc)
			for sc.Scan() {
				if seq, ok := faultnet.ParseSeq(sc.Bytes()); ok {
					got[seq] = true
				}
			}
			read <- sc.Err()
		}()
		d := asyncDialer()
		d.ReplayBuffer = 64 << 10 // bounds what each round's Close sends
		c := dial(t, d, ln.Addr())
		accepted := make([][]int, writers)
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
				for i := 0; ; i++ {
					seq := i*writers + w
					buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, seq, 100)
					if _, err := c.Write(buf); err != nil {
						if !errors.Is(err, net.ErrClosed) {
							t.Errorf("writer %d: Write = %v; want nil or net.ErrClosed", w, err)
						}
						return
					}
					accepted[w] = append(accepted[w], seq)
					if i == 10 {
						started.Done()
						signaled = true
					}
				}
			})
		}
		started.Wait()
		cerr := c.Close()
		wg.Wait()
		if err := <-read; err != nil {
			t.Fatal(err)
		}
		if cerr != nil {
			t.Fatalf("round %d: Close() = %v", round, cerr)
		}
		for w, seqs := range accepted {
			for _, seq := range seqs {
				if !got[seq] {
					t.Fatalf("round %d: writer %d's message %d was accepted, Close returned nil, and it never arrived", round, w, seq)
				}
			}
		}
	}
}
