package faultnet_test

import (
	"errors"
	"net"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reconn/reconn/faultnet"
)

func TestReportGapDuplicateOrder(t *testing.T) {
	srv, c := connected(t)
	send(t, c, faultnet.Newline, 0, 1, 2, 4, 5, 5, 6, 8, 7, 9)
	r := finalReport(t, srv, c, 1, 10)
	want := faultnet.Report{Sent: 10, Received: 9, Lost: 1, Duplicated: 1, OutOfOrder: 1, ClientLost: 1, Exact: true, LostSeqs: []int{3}}
	r.Conns = nil
	if !equalReports(r, want) {
		t.Errorf("got  %v\nwant %v", r, want)
	}
}

func TestReportAcrossConns(t *testing.T) {
	srv, c1 := connected(t)
	send(t, c1, faultnet.Newline, span(0, 5)...)
	finalReport(t, srv, c1, 1, 5)
	c2 := dial(t, srv.Addr())
	if err := srv.WaitConns(testContext(t), 2); err != nil {
		t.Fatal(err)
	}
	send(t, c2, faultnet.Newline, 3, 4, 5, 6, 7, 9, 8)
	r := finalReport(t, srv, c2, 2, 10)
	if r.Received != 10 || r.Duplicated != 2 || r.OutOfOrder != 1 || r.Lost != 0 {
		t.Errorf("got %v\nwant 10 received, 2 duplicated, 1 out of order", r)
	}
	if len(r.Conns) != 2 {
		t.Fatalf("got %d conn reports; want 2", len(r.Conns))
	}
	c1r, c2r := r.Conns[0], r.Conns[1]
	if c1r.Received != 5 || c1r.Duplicated != 0 || c2r.Received != 7 || c2r.Duplicated != 2 || c2r.OutOfOrder != 1 {
		t.Errorf("per conn: %+v, %+v", c1r, c2r)
	}
}

func TestRSTFreezeDrain(t *testing.T) {
	requireFilter(t)
	srv, c := connected(t)
	send(t, c, faultnet.Newline, span(0, 100)...)
	if err := srv.WaitReceived(testContext(t), 100); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	send(t, c, faultnet.Newline, span(100, 200)...)
	waitAcked(t, c)
	srv.RST()
	// A plain client stops at the reset.
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after RST: %v; want ECONNRESET", err)
	}
	r := finalReport(t, srv, nil, 1, 200)
	if r.Received != 100 || r.Unread != 100 || r.Unavoidable != r.Lost || r.ClientLost != 0 || !r.Exact {
		t.Errorf("got %v\nwant 100 received, 100 unread and unavoidable, exact", r)
	}
}

func TestRSTFreezeDrainStreaming(t *testing.T) {
	requireFilter(t)
	srv, c := connected(t)
	const n = 100_000
	var b []byte
	for q := range n {
		b = faultnet.AppendMessage(b, faultnet.Newline, q, msgSize)
	}
	written := make(chan int, 1)
	go func() {
		w, _ := c.Write(b) // fails at the reset
		written <- w
	}()
	if err := srv.WaitReceived(testContext(t), n/10); err != nil {
		t.Fatal(err)
	}
	srv.RST()
	w := <-written
	r := finalReport(t, srv, nil, 1, n)
	// Every message is processed, unread or never acknowledged: with the
	// frozen socket nothing is lost uncounted between the drain and the
	// reset, so the client's losses start after the last unread message.
	if !r.Exact || r.Received+r.Unread+r.ClientLost != n || r.Duplicated != 0 {
		t.Errorf("after RST in mid-stream (client wrote %d bytes): %v", w, r)
	}
	if len(r.LostSeqs) > 0 && r.LostSeqs[0] != r.Received+r.Unread {
		t.Errorf("first client-lost seq = %d; want %d, right after the unread ones", r.LostSeqs[0], r.Received+r.Unread)
	}
}

func TestOctetCounting(t *testing.T) {
	srv := faultnet.NewServer(t)
	srv.SetFraming(faultnet.OctetCounting)
	c := dial(t, srv.Addr())
	var b []byte
	for q := range 300 {
		b = faultnet.AppendMessage(b, faultnet.OctetCounting, q, q)
	}
	b = append(b, "<13>1 - host app - - - seq=300 newline-framed\n"...)
	msg := "<13>1 2024-01-01T00:00:00Z host app 1 - - body seq=301"
	b = append(b, strconv.Itoa(len(msg))+" "+msg...)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	r := finalReport(t, srv, c, 1, 302)
	if r.Received != 302 || r.Invalid != 0 {
		t.Errorf("got %v\nwant all 302 received", r)
	}
}

// equalReports compares reports without their connection lists.
func equalReports(a, b faultnet.Report) bool {
	eq := slices.Equal(a.LostSeqs, b.LostSeqs)
	a.LostSeqs, b.LostSeqs, a.Conns, b.Conns = nil, nil, nil, nil
	return eq && a.String() == b.String()
}

// TestFINAckedAccounting checks, through the client's kernel, that every
// message the server's kernel acknowledged before a FIN is either
// processed or unread: a client that does not send anything again after
// the FIN loses only messages that were never acknowledged.
func TestFINAckedAccounting(t *testing.T) {
	requireFilter(t)
	const n = 100_000
	for i := 1; i <= 10; i++ {
		cut := n * i / 12
		t.Run("received="+strconv.Itoa(cut), func(t *testing.T) {
			srv, c := connected(t)
			checkAcked(t, srv, c, n, func() {
				if err := srv.WaitReceived(testContext(t), cut); err != nil {
					t.Fatal(err)
				}
				srv.FIN()
			})
		})
	}
}

// TestCutAfterAckedAccounting is TestFINAckedAccounting for the close
// that an armed cut performs, in the middle of a message.
func TestCutAfterAckedAccounting(t *testing.T) {
	requireFilter(t)
	const n = 100_000
	for i := 1; i <= 10; i++ {
		cut := int64(n*i/12*msgSize + msgSize/2)
		t.Run("bytes="+strconv.FormatInt(cut, 10), func(t *testing.T) {
			srv, c := connected(t)
			srv.CutAfter(cut)
			checkAcked(t, srv, c, n, func() {})
		})
	}
}

// checkAcked writes n messages at full speed in one write, calls fault
// meanwhile, waits until the connection is reset (or the server's FIN
// came after everything was acknowledged), and compares what the
// server's kernel acknowledged, as the client's kernel counts it, with
// the messages the server processed or found unread.
func checkAcked(t *testing.T, srv *faultnet.Server, c *net.TCPConn, n int, fault func()) {
	t.Helper()
	var b []byte
	for q := range n {
		b = faultnet.AppendMessage(b, faultnet.Newline, q, msgSize)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(b)
		werr <- err
	}()
	fault()
	if err := <-werr; err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Write: %v; want EPIPE, ECONNRESET or success", err)
	}
	info := waitFinal(t, c)
	// The SYN takes one acknowledged byte; the client sends no FIN.
	acked := int(info.Bytes_acked) - 1
	r := finalReport(t, srv, nil, 1, n)
	// A message acknowledged in part counts as unread if its sequence
	// number was complete.
	want := acked / msgSize
	if rest := acked % msgSize; rest > len("seq=")+len(strconv.Itoa(want)) {
		want++
	}
	t.Logf("acked %d bytes (%d messages): received %d, unread %d, client lost %d", acked, want, r.Received, r.Unread, r.ClientLost)
	if !r.Exact || r.Duplicated != 0 || r.Received+r.Unread != want {
		t.Errorf("%d messages acknowledged; want them all received or unread: %v", want, r)
	}
}

// waitFinal waits until the client's kernel has taken the connection
// to a state that ends what the server acknowledges: closed by the
// server's reset, or with the server's FIN received and nothing left to
// send. It returns the connection's TCP_INFO.
func waitFinal(t *testing.T, c *net.TCPConn) *unix.TCPInfo {
	t.Helper()
	ctx := testContext(t)
	for {
		var info *unix.TCPInfo
		var err error
		control(t, c, func(fd int) { info, err = unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO) })
		if err != nil {
			t.Fatalf("TCP_INFO: %v", err)
		}
		switch {
		case info.State == unix.BPF_TCP_CLOSE:
			return info
		case info.State == unix.BPF_TCP_CLOSE_WAIT && info.Unacked == 0 && info.Notsent_bytes == 0:
			return info
		}
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("connection still in state %d with %d segments unacknowledged", info.State, info.Unacked)
		}
	}
}
