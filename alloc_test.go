package reconn_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/short"
)

// TestWriteAllocs checks that a Write in steady state allocates nothing,
// in every check mode, with replay on and off, and with Async (whose
// writer's allocations count too: AllocsPerRun counts the whole process).
func TestWriteAllocs(t *testing.T) {
	const noAcks = reconn.CheckMode(100) // not a mode: a socket reconn cannot ask
	short.Skip(t, "a measurement of allocations")
	modes := []reconn.CheckMode{reconn.CheckDefault, reconn.CheckPeek, reconn.CheckState, reconn.CheckWatch, reconn.CheckNone}
	for _, mode := range modes {
		for _, replay := range []int{0, -1} {
			srv := faultnet.NewServer(t)
			d := testDialer()
			d.Check = mode
			d.ReplayBuffer = replay
			c := dial(t, d, srv.Addr())
			msg := faultnet.AppendMessage(nil, faultnet.Newline, 0, 100)
			// Warm up: let the replay ring grow to its working size.
			for i := 0; i < 20000; i++ {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(5000, func() {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("check %v, replay %d: %v allocations per Write; want 0", mode, replay, allocs)
			}
		}
	}
	// Where the kernel's acknowledgement count is missing altogether (js,
	// wasip1) the buffer stays full and each Async Write waits for room.
	platformtest.NeedKernelSockets(t, "Async Writes kept off the slow path by the kernel's acknowledgement count")
	// The last round wraps the socket, so that it counts no
	// acknowledgements: the writer then keeps room in the replay buffer by
	// assuming the oldest messages delivered.
	for _, mode := range append(modes, noAcks) {
		what := fmt.Sprintf("check %v", mode)
		if mode == noAcks {
			what = "no acknowledgement count"
		}
		t.Run("Async, "+what, func(t *testing.T) {
			srv := faultnet.NewServer(t)
			d := testDialer()
			d.Check = mode
			d.Async = true
			// A Write that finds the buffer full while the writer still
			// has more than a batch (64 KiB) to send waits because the
			// writer fell behind the Writes; any other full buffer is
			// the Conn's doing.
			var c *reconn.Conn
			var behind, full atomic.Int64
			d.OnFull = func() {
				if c.Stats().UnsentBytes > 64<<10 {
					behind.Add(1)
				} else {
					full.Add(1)
				}
			}
			if mode == noAcks {
				d.Check = reconn.CheckDefault
				d.Dialer = dialerFunc(func(ctx context.Context, network, address string) (net.Conn, error) {
					nc, err := new(net.Dialer).DialContext(ctx, network, address)
					if err != nil {
						return nil, err
					}
					return struct{ net.Conn }{nc}, nil
				})
			}
			c = dialServer(t, d, srv)
			msg := faultnet.AppendMessage(nil, faultnet.Newline, 0, 100)
			for i := 0; i < 20000; i++ {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
			}
			behind.Store(0)
			full.Store(0)
			allocs := testing.AllocsPerRun(20000, func() {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
			})
			if allocs == 0 {
				return
			}
			if n := behind.Load(); n > 0 && full.Load() == 0 {
				// Waiting for the writer allocates: the steady state
				// this test is about was not reached.
				t.Skipf("%v allocations per Write, but the writer fell behind the Writes (%d found the replay buffer full with more than 64 KiB unsent): not a steady state", allocs, n)
			}
			t.Errorf("%v allocations per Write; want 0", allocs)
		})
	}
}
