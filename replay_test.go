//go:build linux

package reconn_test

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"golang.org/x/sys/unix"
)

// TestReplayStoppedByDeadline: after a reset, the redial's replay is more
// than the new connection can take while its server does not read, and
// the Write's deadline stops it midway. The new connection must carry the
// stream on: the next Write finishes the replay on it. Dropping it for a
// third connection would have it deliver what its kernel still held, and
// those messages would arrive twice.
func TestReplayStoppedByDeadline(t *testing.T) {
	primary := newPrivateServer(t)
	// It reads nothing until its gate opens, with small receive buffers.
	gated := newTestServer(t, serverOptions{mode: lines, gated: true, control: func(_, _ string, rc syscall.RawConn) error {
		return setBuffer(rc, unix.SO_RCVBUF) // accepted sockets inherit it
	}})
	d := testDialer()
	d.Check = reconn.CheckState // no recovery in the background
	d.Fallbacks = []string{gated.addr().String()}
	d.Dialer = dialerFunc(func(ctx context.Context, network, address string) (net.Conn, error) {
		var nd net.Dialer
		if address == gated.addr().String() {
			// A small send buffer: the replay soon waits for the server.
			nd.Control = func(_, _ string, rc syscall.RawConn) error {
				return setBuffer(rc, unix.SO_SNDBUF)
			}
		}
		return nd.DialContext(ctx, network, address)
	})
	c := dialServer(t, d, primary)
	const size, first = 1000, 10
	var buf []byte
	for seq := range first {
		buf = send(t, c, buf, seq, size)
	}
	ctx := testContext(t)
	if err := primary.WaitReceived(ctx, first); err != nil {
		t.Fatal(err)
	}

	// The primary's kernel stops acknowledging: Writes fill the socket
	// and every message from now on stays held, until one times out.
	blackhole(t, primary)
	seq := first
	var rest []byte // what of the last message the timed-out Write left
	for {
		buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, seq, size)
		seq++
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Write(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write to a blackholed server = %v; want a timeout", err)
			}
			rest = append(rest, buf[n:]...)
			break
		}
	}
	held := c.Stats().PendingBytes
	if held < 256<<10 {
		t.Fatalf("the blackholed connection took %d bytes; want at least 256 KiB to replay", held)
	}
	if err := primary.Refuse(); err != nil {
		t.Fatal(err)
	}
	primary.RST()
	awaitReset(t, c)

	// The redial goes to the gated server, which does not read yet.
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	if len(rest) == 0 {
		buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, seq, size)
		seq++
		rest = append(rest, buf...)
	}
	n, err := c.Write(rest)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n != 0 {
		t.Fatalf("Write while %d held bytes wait for a server that does not read = %d, %v; want 0 and a timeout", held, n, err)
	}

	gated.openGate()
	c.SetWriteDeadline(time.Time{})
	if _, err := c.Write(rest); err != nil {
		t.Fatalf("Write once the server reads = %v", err)
	}
	total := seq + 10
	for ; seq < total; seq++ {
		buf = send(t, c, buf, seq, size)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := primary.WaitEOF(ctx); err != nil {
		t.Fatal(err)
	}
	gated.stop(t)
	got := gated.got

	s := c.Stats()
	r := primary.Report(total)
	dup := 0
	for _, k := range got {
		dup += k - 1
	}
	t.Logf("%d held bytes; the primary processed %d messages, the fallback %d over %d connections, %d twice; %d redials, %d re-sent",
		held, r.Received, len(got), gated.accepted, dup, s.Redials, s.ResentMessages)
	if dup != 0 || r.Duplicated != 0 || r.Received+len(got) != total {
		t.Errorf("of %d messages the primary processed %d (%d twice) and the fallback %d (%d twice); want each once", total, r.Received, r.Duplicated, len(got), dup)
	}
	if s.Redials != 1 {
		t.Errorf("Stats().Redials = %d; want 1: the connection the replay began on carries the stream on", s.Redials)
	}
}

// setBuffer makes a socket's buffer opt (SO_SNDBUF or SO_RCVBUF) as small
// as the kernel allows.
func setBuffer(rc syscall.RawConn, opt int) error {
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, 1) }); err != nil {
		return err
	}
	return serr
}
