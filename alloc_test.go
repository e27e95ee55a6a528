package reconn_test

import (
	"testing"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/testenv"
)

// TestWriteAllocs checks that a Write in steady state allocates nothing,
// in every check mode, with replay on and off, and with Async (whose
// writer's allocations count too: AllocsPerRun counts the whole process).
func TestWriteAllocs(t *testing.T) {
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
	// Without acknowledgements the ring fills, and each Async Write waits
	// for room on the slow path; the synchronous Write evicts in place.
	testenv.NeedKernelSockets(t, "Async Writes kept off the slow path by the kernel's acknowledgement count")
	for _, mode := range modes {
		srv := faultnet.NewServer(t)
		d := testDialer()
		d.Check = mode
		d.Async = true
		c := dialServer(t, d, srv)
		msg := faultnet.AppendMessage(nil, faultnet.Newline, 0, 100)
		for i := 0; i < 20000; i++ {
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
		}
		allocs := testing.AllocsPerRun(20000, func() {
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Async, check %v: %v allocations per Write; want 0", mode, allocs)
		}
	}
}
