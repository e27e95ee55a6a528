package faultnet_test

import (
	"errors"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/reconn/reconn/faultnet"
)

func TestReportGapDuplicateOrder(t *testing.T) {
	srv, c := connected(t)
	send(t, c, faultnet.Newline, 0, 1, 2, 4, 5, 5, 6, 8, 7, 9)
	r := finalReport(t, srv, c, 10)
	want := faultnet.Report{Sent: 10, Received: 9, Lost: 1, Duplicated: 1, OutOfOrder: 1, ClientLost: 1, Exact: true, LostSeqs: []int{3}}
	r.Conns = nil
	if !equalReports(r, want) {
		t.Errorf("got  %v\nwant %v", r, want)
	}
}

func TestReportAcrossConns(t *testing.T) {
	srv, c1 := connected(t)
	send(t, c1, faultnet.Newline, span(0, 5)...)
	finalReport(t, srv, c1, 5)
	c2 := dial(t, srv.Addr())
	if err := srv.WaitConns(testContext(t), 2); err != nil {
		t.Fatal(err)
	}
	send(t, c2, faultnet.Newline, 3, 4, 5, 6, 7, 9, 8)
	r := finalReport(t, srv, c2, 10)
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
	r := finalReport(t, srv, nil, 200)
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
	r := finalReport(t, srv, nil, n)
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
	r := finalReport(t, srv, c, 302)
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
