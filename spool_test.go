package reconn_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/short"
	"github.com/reconn/reconn/internal/spool"
)

func needSpool(t *testing.T) {
	t.Helper()
	if !spool.Supported {
		t.Skip("SpoolDir needs shared file mappings, which this platform lacks")
	}
}

// spoolDialer returns a test Dialer that spools in dir.
func spoolDialer(dir string) *reconn.Dialer {
	d := testDialer()
	d.SpoolDir = dir
	d.FlushTimeout = short.Limit(10 * time.Second)
	return d
}

// downAddr returns an address on which nothing listens, and that no
// other test program will listen on meanwhile (see privateLoopback).
func downAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", privateLoopback()+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// writeSeqs writes the messages numbered from to to-1, of 100 bytes.
func writeSeqs(t *testing.T, c net.Conn, from, to int) {
	t.Helper()
	var buf []byte
	for seq := from; seq < to; seq++ {
		buf = send(t, c, buf, seq, 100)
	}
}

// awaitSeqs waits until srv has every message numbered from to to-1.
func awaitSeqs(t *testing.T, srv *testServer, from, to int) {
	t.Helper()
	err := srv.wait(testContext(t), func() bool {
		for seq := from; seq < to; seq++ {
			if srv.got[seq] == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("waiting for messages %d to %d: %v", from, to-1, err)
	}
}

// segments returns the spool's segment files in dir.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg-*"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// TestSpoolDelivers: with a spool, what is written arrives once, in
// order, and Close leaves the spool empty.
func TestSpoolDelivers(t *testing.T) {
	needSpool(t)
	srv := newTestServer(t, serverOptions{mode: lines, verify: true})
	dir := platformtest.TempDir(t)
	c := dial(t, spoolDialer(dir), srv.addr())
	const total = 20000
	writeSeqs(t, c, 0, total)
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	awaitSeqs(t, srv, 0, total)
	srv.stop(t)
	for seq := range total {
		if n := srv.got[seq]; n != 1 {
			t.Fatalf("message %d arrived %d times; want once", seq, n)
		}
	}
	if !slices.IsSorted(srv.order) || srv.invalid != 0 {
		t.Errorf("messages out of order, or %d invalid", srv.invalid)
	}
	if segs := segments(t, dir); len(segs) != 0 {
		t.Errorf("Close confirmed everything and left segments: %v", segs)
	}
}

// TestSpoolOutage: a Conn dialed while the server is down takes Writes far
// beyond its replay buffer, spooling them; once the server listens,
// everything arrives once, in order.
func TestSpoolOutage(t *testing.T) {
	needSpool(t)
	addr := downAddr(t)
	d := spoolDialer(platformtest.TempDir(t))
	d.ReplayBuffer = 64 << 10
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("Dial while down = %v; want a Conn that spools", err)
	}
	c := nc.(*reconn.Conn)
	defer c.Close()
	const total = 30000 // 3 MB, 48 times the replay buffer
	writeSeqs(t, c, 0, total)
	if s := c.Stats(); s.Pending != total || s.Unsent < total-int64(d.ReplayBuffer/100) {
		t.Errorf("Stats() while down: %d pending, %d unsent; want %d pending, nearly all unsent", s.Pending, s.Unsent, total)
	}
	srv := newTestServer(t, serverOptions{mode: lines, verify: true, addr: addr})
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	awaitSeqs(t, srv, 0, total)
	srv.stop(t)
	for seq := range total {
		if n := srv.got[seq]; n != 1 {
			t.Fatalf("message %d arrived %d times; want once", seq, n)
		}
	}
	if !slices.IsSorted(srv.order) {
		t.Error("messages arrived out of order")
	}
}

// TestSpoolNextConn: a Conn that cannot deliver leaves its messages in
// the spool, and says how many; the next Conn on the directory sends them
// first, then its own.
func TestSpoolNextConn(t *testing.T) {
	needSpool(t)
	addr := downAddr(t)
	dir := platformtest.TempDir(t)
	d := spoolDialer(dir)
	d.FlushTimeout = 100 * time.Millisecond
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	writeSeqs(t, nc, 0, 5000)
	err = nc.Close()
	var ue *reconn.UnconfirmedError
	if !errors.As(err, &ue) || ue.Messages != 5000 {
		t.Fatalf("Close while down = %v; want 5000 messages unconfirmed", err)
	}
	srv := newTestServer(t, serverOptions{mode: lines, verify: true, addr: addr})
	c := dial(t, spoolDialer(dir), srv.addr())
	if p := c.Stats().Pending; p != 5000 {
		t.Errorf("the next Conn's Stats().Pending = %d; want the 5000 left", p)
	}
	writeSeqs(t, c, 5000, 6000)
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	awaitSeqs(t, srv, 0, 6000)
	srv.stop(t)
	for seq := range 6000 {
		if n := srv.got[seq]; n != 1 {
			t.Fatalf("message %d arrived %d times; want once", seq, n)
		}
	}
	if !slices.IsSorted(srv.order) {
		t.Error("the new messages did not all come after the old ones")
	}
}

// TestSpoolInUse: a directory serves one Conn at a time; a second, or a
// SpoolDir that is a file, fails Dial with an error that says why.
func TestSpoolInUse(t *testing.T) {
	needSpool(t)
	dir := platformtest.TempDir(t)
	addr := downAddr(t)
	d := spoolDialer(dir)
	d.FlushTimeout = -1
	c1, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Dial("tcp", addr); !errors.Is(err, reconn.ErrSpoolInUse) {
		t.Errorf("a second Conn on the spool: Dial = %v; want ErrSpoolInUse", err)
	}
	c1.Close()
	c2, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("Dial once the first Conn closed = %v", err)
	}
	c2.Close()

	file := filepath.Join(platformtest.TempDir(t), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := spoolDialer(file).Dial("tcp", addr); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("SpoolDir a file: Dial = %v; want an error that says it is not a directory", err)
	}
}

// The spool tests run the test binary again as the writer: with
// spoolChildEnv set, TestSpoolSurvivesKill writes the messages numbered
// from RECONN_SPOOL_FROM, RECONN_SPOOL_COUNT of them, to RECONN_SPOOL_ADDR
// through a Conn spooling in RECONN_SPOOL_DIR, and prints "accepted N"
// after each hundredth Write (N the last one accepted). With
// RECONN_SPOOL_CLOSE set it then closes the Conn and prints "closed" and
// Close's error; otherwise it waits to be killed.
const spoolChildEnv = "RECONN_SPOOL_CHILD"

func spoolChild(t *testing.T) {
	num := func(name string) int {
		n, err := strconv.Atoi(os.Getenv(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return n
	}
	from, count := num("RECONN_SPOOL_FROM"), num("RECONN_SPOOL_COUNT")
	d := spoolDialer(os.Getenv("RECONN_SPOOL_DIR"))
	nc, err := d.Dial("tcp", os.Getenv("RECONN_SPOOL_ADDR"))
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*reconn.Conn)
	out := bufio.NewWriter(os.Stdout)
	var buf []byte
	for seq := from; seq < from+count; seq++ {
		buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, seq, 100)
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("Write(%d) = %v", seq, err)
		}
		if (seq+1)%100 == 0 {
			fmt.Fprintf(out, "accepted %d\n", seq)
			out.Flush()
		}
	}
	if os.Getenv("RECONN_SPOOL_CLOSE") == "" {
		fmt.Fprintf(out, "wrote all\n")
		out.Flush()
		<-make(chan struct{}) // until killed
	}
	err = c.Close()
	s := c.Stats()
	fmt.Fprintf(out, "closed %v\ndamaged %d\n", err, s.SpoolDamaged)
	out.Flush()
	if err != nil {
		t.Fatalf("Close() = %v", err)
	}
}

// runSpoolChild runs the writer (see spoolChild) and returns what it
// printed last: the last message accepted, Close's result, the damaged
// count. If killAt is positive, it kills the writer with SIGKILL once it
// has printed that a message at or beyond killAt was accepted.
func runSpoolChild(t *testing.T, dir, addr string, from, count, killAt int) (accepted int, closed string, damaged int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), spoolChildEnv+"=1",
		"RECONN_SPOOL_DIR="+dir, "RECONN_SPOOL_ADDR="+addr,
		"RECONN_SPOOL_FROM="+strconv.Itoa(from), "RECONN_SPOOL_COUNT="+strconv.Itoa(count))
	if killAt <= 0 {
		cmd.Env = append(cmd.Env, "RECONN_SPOOL_CLOSE=1")
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	accepted, damaged = -1, -1
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "accepted "):
			accepted, _ = strconv.Atoi(strings.TrimPrefix(line, "accepted "))
			if killAt > 0 && accepted >= killAt && !killed {
				cmd.Process.Kill() // SIGKILL: the writer gets no chance to flush anything
				killed = true
			}
		case strings.HasPrefix(line, "closed "):
			closed = strings.TrimPrefix(line, "closed ")
		case strings.HasPrefix(line, "damaged "):
			damaged, _ = strconv.Atoi(strings.TrimPrefix(line, "damaged "))
		case line == "wrote all" && killAt > 0 && !killed:
			cmd.Process.Kill()
			killed = true
		}
	}
	err = cmd.Wait()
	if killAt > 0 {
		if !killed {
			t.Fatalf("the writer ended before it was killed: %v\n%s", err, stderr.String())
		}
		return accepted, closed, damaged
	}
	if err != nil {
		t.Fatalf("the writer: %v\n%s", err, stderr.String())
	}
	return accepted, closed, damaged
}

// TestSpoolSurvivesKill: a writer with Async and a spool is killed with
// SIGKILL after 120,000 of 300,000 messages (three times what the default
// replay buffer holds), while the server is down, or up; a second writer
// on the same directory then sends what the first left and 1,000 more,
// and closes. Every message the first was told was accepted arrives; none
// twice if the server was down during the kill; the second writer's own
// arrive once, after the old ones; its Close returns nil. With the spool
// damaged between the two (a file cut short by a few bytes, a byte in the
// middle changed), no damaged message arrives and the rest do.
func TestSpoolSurvivesKill(t *testing.T) {
	if os.Getenv(spoolChildEnv) != "" {
		spoolChild(t)
		return
	}
	needSpool(t)
	short.Skip(t, "writers that stream 300,000 messages and are killed")
	const first, killAt, more = 300000, 120000, 1000
	for _, tc := range []struct {
		name     string
		serverUp bool
		damage   bool
	}{
		{"server down", false, false},
		{"server up", true, false},
		{"damaged", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.serverUp && platformtest.UnderWine() {
				// Seen in CI and here, 2 runs in 10 beside other work:
				// the server read no end of a connection for a minute
				// after its writer was killed.
				t.Skip("under Wine, the connection of a killed process may stay open: the server would wait for its end")
			}
			dir, addr := platformtest.TempDir(t), downAddr(t)
			var srv *testServer
			if tc.serverUp {
				srv = newTestServer(t, serverOptions{mode: lines, verify: true, addr: addr})
			}
			accepted, _, _ := runSpoolChild(t, dir, addr, 0, first, killAt)
			if accepted < killAt {
				t.Fatalf("the writer was killed after message %d; want at least %d", accepted, killAt)
			}
			if srv != nil {
				// What the killed writer's kernel handed over before the
				// kill is the server's, acknowledged and so forgotten by
				// the spool: no writer can order it against a new
				// connection the server reads at the same time. Let the
				// server read the old connection to its end first.
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := srv.wait(ctx, func() bool { return srv.ended == srv.accepted })
				cancel()
				if err != nil {
					t.Fatalf("the server read no end of the killed writer's connection: %v", err)
				}
			}
			if tc.damage {
				damageSpool(t, dir)
			}
			if srv == nil {
				srv = newTestServer(t, serverOptions{mode: lines, verify: true, addr: addr})
			}
			_, closed, damaged := runSpoolChild(t, dir, addr, first, more, 0)
			if closed != "<nil>" {
				t.Fatalf("the second writer's Close() = %s; want nil", closed)
			}
			awaitSeqs(t, srv, first, first+more)
			srv.stop(t)
			lost, dup := 0, 0
			for seq := 0; seq <= accepted; seq++ {
				switch n := srv.got[seq]; {
				case n == 0:
					lost++
				case n > 1:
					dup += n - 1
				}
			}
			for seq := first; seq < first+more; seq++ {
				if n := srv.got[seq]; n != 1 {
					t.Errorf("the second writer's message %d arrived %d times; want once", seq, n)
				}
			}
			lastOld, firstNew := -1, len(srv.order)
			for i, seq := range srv.order {
				if seq < first {
					lastOld = i
				} else if i < firstNew {
					firstNew = i
				}
			}
			if lastOld > firstNew {
				t.Errorf("an old message arrived after the second writer's first one (arrivals %d and %d)", lastOld, firstNew)
			}
			switch {
			case tc.damage:
				if srv.invalid != 0 {
					t.Errorf("%d damaged messages reached the server", srv.invalid)
				}
				if damaged <= 0 || lost > damaged {
					t.Errorf("%d of the %d accepted messages lost, %d reported damaged; want some damaged, no other loss", lost, accepted+1, damaged)
				}
			case lost != 0:
				t.Errorf("%d of the %d messages accepted before the kill were lost", lost, accepted+1)
			case !tc.serverUp && dup != 0:
				t.Errorf("%d duplicated with the server down during the kill; want none", dup)
			}
			t.Logf("killed after %d accepted; then %d received (%d duplicated, %d lost, %d damaged, %d invalid)", accepted+1, len(srv.order), dup, lost, damaged, srv.invalid)
		})
	}
}

// damageSpool cuts the spool's first segment short by a few bytes and
// changes a byte in its middle.
func damageSpool(t *testing.T, dir string) {
	t.Helper()
	segs := segments(t, dir)
	if len(segs) == 0 {
		t.Fatal("no segment to damage")
	}
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mid := fi.Size() / 2
	var b [1]byte
	f.ReadAt(b[:], mid)
	b[0] ^= 0x20
	if _, err := f.WriteAt(b[:], mid); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(fi.Size() - 5); err != nil {
		t.Fatal(err)
	}
}

// faultnetMessage returns message seq of 100 bytes in buf.
func faultnetMessage(buf []byte, seq int) []byte {
	return faultnet.AppendMessage(buf[:0], faultnet.Newline, seq, 100)
}

// TestSpoolLimit: at SpoolLimit a Write fails at once with
// ErrBufferFull under FailWhenFull, counted in Stats.Rejected, and waits
// until its deadline otherwise; nothing accepted is lost, and the spool's
// files stay within the limit.
func TestSpoolLimit(t *testing.T) {
	needSpool(t)
	for _, failFast := range []bool{true, false} {
		t.Run(fmt.Sprintf("FailWhenFull=%v", failFast), func(t *testing.T) {
			addr := downAddr(t)
			d := spoolDialer(platformtest.TempDir(t))
			d.SpoolLimit = 16 << 20 // two segments
			d.FailWhenFull = failFast
			nc, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c := nc.(*reconn.Conn)
			defer c.Close()
			var buf []byte
			accepted := 0
			// Under FailWhenFull the Write at the limit must fail at once,
			// whatever the deadline: a generous one leaves a slow machine
			// (an emulated guest opening a segment) no timeout to take
			// for it.
			limit := 200 * time.Millisecond
			if failFast {
				limit = time.Minute
			}
			for ; accepted < 1<<20; accepted++ {
				buf = faultnetMessage(buf, accepted)
				c.SetWriteDeadline(time.Now().Add(limit))
				start := time.Now()
				_, err = c.Write(buf)
				if err != nil {
					if took := time.Since(start); !failFast && took < limit/2 {
						t.Errorf("a Write at the limit failed after %v; want it to wait for its deadline (%v)", took, limit)
					}
					break
				}
			}
			c.SetWriteDeadline(time.Time{})
			s := c.Stats()
			switch {
			case failFast && (!errors.Is(err, reconn.ErrBufferFull) || s.Rejected != 1):
				t.Errorf("Write at the limit = %v, Stats().Rejected = %d; want ErrBufferFull, 1", err, s.Rejected)
			case !failFast && !errors.Is(err, os.ErrDeadlineExceeded):
				t.Errorf("Write at the limit = %v; want its deadline's error", err)
			}
			if s.SpoolBytes > d.SpoolLimit || s.Pending != int64(accepted) {
				t.Errorf("Stats(): %d bytes of spool for a limit of %d, %d pending; want within the limit, %d pending", s.SpoolBytes, d.SpoolLimit, s.Pending, accepted)
			}
			srv := newTestServer(t, serverOptions{mode: lines, verify: true, addr: addr})
			if err := c.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			awaitSeqs(t, srv, 0, accepted)
			srv.stop(t)
			if len(srv.order) != accepted {
				t.Errorf("%d messages arrived; want the %d accepted, once each", len(srv.order), accepted)
			}
		})
	}
}
