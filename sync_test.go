package reconn_test

import (
	"errors"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/platformtest"
)

// TestSyncDelivers: Sync on an Async Conn returns once everything written
// before it is acknowledged: no message is left unsent or pending, and the
// server has read every byte.
func TestSyncDelivers(t *testing.T) {
	s := newTestServer(t, serverOptions{})
	d := &reconn.Dialer{Async: true}
	nc, err := d.Dial("tcp", s.addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*reconn.Conn)
	defer c.Close()
	const n, size = 2000, 100
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = 'x'
	}
	msg[size-1] = '\n'
	for range n {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Sync(); err != nil {
		t.Fatalf("Sync = %v", err)
	}
	// Where acknowledgements are counted, none may be pending; elsewhere
	// (Windows without SIO_TCP_INFO, the in-memory network of js and
	// wasip1) Flush, and so Sync, waits only until everything is sent.
	countsAcks := platformtest.KernelSockets && platformtest.NoTCPInfo() == ""
	st := c.Stats()
	if st.Unsent != 0 || countsAcks && st.Pending != 0 {
		t.Fatalf("after Sync: %d unsent, %d pending; want 0", st.Unsent, st.Pending)
	}
	s.awaitBytes(t, n*size)
}

// TestSyncBound: Sync is bounded as Close is, by the write deadline if set,
// else by FlushTimeout, and reports what is unconfirmed; the Conn goes on
// taking Writes afterwards. With a negative FlushTimeout it returns at once.
func TestSyncBound(t *testing.T) {
	for _, tc := range []struct {
		name            string
		flush, deadline time.Duration
	}{{"FlushTimeout", 3 * time.Second, 0}, {"deadline", 3 * time.Second, 1500 * time.Millisecond}, {"no-wait", -1, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pd := newPipeDialer() // no server: nothing is ever confirmed
				defer pd.close()
				c := dialPipe(t, &reconn.Dialer{Dialer: pd, Async: true, FlushTimeout: tc.flush, RedialTimeout: -1})
				for range 5 {
					if _, err := c.Write([]byte("m\n")); err != nil {
						t.Fatal(err)
					}
				}
				want := tc.flush
				if tc.deadline > 0 {
					want = tc.deadline
					c.SetWriteDeadline(time.Now().Add(tc.deadline))
				}
				start := time.Now()
				err := c.Sync()
				took := time.Since(start)
				if tc.flush < 0 {
					if err != nil || took != 0 {
						t.Fatalf("Sync = %v after %v; want nil at once with a negative FlushTimeout", err, took)
					}
				} else {
					var ue *reconn.UnconfirmedError
					if !errors.As(err, &ue) || ue.Messages != 5 || !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("Sync = %v; want 5 messages unconfirmed at the bound", err)
					}
					if took != want {
						t.Errorf("Sync took %v; want %v", took, want)
					}
				}
				c.SetWriteDeadline(time.Time{})
				if _, err := c.Write([]byte("after\n")); err != nil {
					t.Fatalf("Write after Sync = %v", err)
				}
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Close()
			})
		})
	}
}
