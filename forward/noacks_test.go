package forward

import (
	"crypto/tls"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/testpki"
)

// TestDisableAcks: with DisableAcks, requests carry no chunk (the server
// fails the test on one that does), the server sends nothing, and every
// record arrives once; Close returns nil once the server's kernel has
// acknowledged everything.
func TestDisableAcks(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("Compress=%v", compress), func(t *testing.T) {
			s := newFakeServer(t, "message", fakeOptions{ackless: true})
			c, err := (&Dialer{Tag: "app.test", DisableAcks: true, Compress: compress}).Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			const n = 20000
			writeAndClose(t, c, n)
			s.wait("every record", func() bool { return len(s.got) == n })
			s.checkRecords(t, n, true)
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.acked != 0 {
				t.Errorf("%d requests acknowledged; want none", s.acked)
			}
			t.Logf("%d records in %d requests", n, s.requests)
		})
	}
}

// TestDisableAcksCrashingServer: with DisableAcks, a server that crashes
// (after 6 to 11 requests each time) loses only what its kernel acknowledged and it never
// took: the records of the whole requests its socket held unread when it
// crashed, which the server reads (the socket frozen first, so the set is
// exact). Every other record arrives; no Write fails; Close returns nil.
func TestDisableAcksCrashingServer(t *testing.T) {
	platformtest.NeedKernelSockets(t, "a server that resets its connections")
	if runtime.GOOS != "linux" {
		t.Skip("the records a crash leaves unread are counted exactly only on Linux, which can freeze a socket")
	}
	s := newFakeServer(t, "message", fakeOptions{ackless: true, crashEvery: 6, crashPause: 100 * time.Millisecond})
	d := &Dialer{DisableAcks: true, Dialer: reconn.Dialer{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, FlushTimeout: time.Minute}}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50000
	writeAndClose(t, c, n)
	s.wait("every record or its loss at a crash", func() bool {
		for i := range n {
			rec := fmt.Sprintf("r-%d", i)
			if s.got[rec] == 0 && !s.unread[rec] {
				return false
			}
		}
		return true
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	lost, dup := 0, 0
	for i := range n {
		switch k := s.got[fmt.Sprintf("r-%d", i)]; {
		case k == 0:
			lost++ // unread at a crash: the wait checked
		case k > 1:
			dup += k - 1
		}
	}
	st := c.Stats()
	t.Logf("%d records: lost %d (%d left unread by the crashes), duplicated %d; %d crashes, %d requests, %d redials, %d resent",
		n, lost, len(s.unread), dup, s.crashes, s.requests, st.Redials, st.ResentMessages)
	if s.inexact {
		t.Fatal("a crash could not freeze its socket: the unread set is not exact")
	}
	// At least one crash by arithmetic: the first comes after at most 11
	// requests, and the records no crash left unread need more.
	if s.crashes < 1 {
		t.Fatalf("the server never crashed: the test means nothing")
	}
}

// TestTLS: over TLS, a server that crashes again and again loses nothing
// with acks; with DisableAcks every record arrives once from a server that
// stays up, its kernel's count of acknowledged bytes read through the TLS
// records.
func TestTLS(t *testing.T) {
	platformtest.NeedKernelSockets(t, "a server that resets its connections")
	cert, pool := testpki.SelfSigned(t)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	for _, noAcks := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableAcks=%v", noAcks), func(t *testing.T) {
			opt := fakeOptions{tls: srvTLS, ackless: noAcks}
			if !noAcks {
				opt.reorder, opt.crashEvery, opt.crashPause = true, 6, 50*time.Millisecond
			}
			s := newFakeServer(t, "message", opt)
			d := &Dialer{DisableAcks: noAcks, Dialer: reconn.Dialer{TLSConfig: &tls.Config{RootCAs: pool},
				MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, FlushTimeout: time.Minute}}
			c, err := d.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			const n = 20000
			writeAndClose(t, c, n)
			s.wait("every record", func() bool { return len(s.got) == n })
			s.checkRecords(t, n, noAcks)
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Logf("%d records in %d requests, %d crashes, %d redials", n, s.requests, s.crashes, c.Stats().Redials)
			if !noAcks && s.crashes < 1 {
				t.Fatalf("the server crashed %d times; want at least 1", s.crashes)
			}
		})
	}
}
