//go:build linux

package reconn_test

import (
	"net"
	"testing"
	"time"

	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/syslogtest"
)

// TestRsyslogdRotation streams to a real rsyslogd at full speed with
// ConnMaxLifetime 200 ms until the Conn has rotated 3 times: every
// rotation is a graceful handoff, so rsyslogd must write every message
// exactly once.
func TestRsyslogdRotation(t *testing.T) {
	const rotations = 3
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
			r := syslogtest.StartRsyslogd(t, syslogtest.Rsyslogd{})
			addr, err := net.ResolveTCPAddr("tcp", r.Addr())
			if err != nil {
				t.Fatal(err)
			}
			d := testDialer()
			d.ConnMaxLifetime = 200 * time.Millisecond
			d.HandoffTimeout = handoffLimit
			d.Async = async
			c := dial(t, d, addr)
			var buf []byte
			total := 0
			ctx := testContext(t)
			for ; total%100 != 0 || c.Stats().Rotations < rotations; total++ {
				if ctx.Err() != nil {
					t.Fatalf("%d rotations after %d messages; want %d", c.Stats().Rotations, total, rotations)
				}
				seq := total
				buf = append(buf[:0], "<13>Nov 23 20:00:00 host app: "...)
				buf = faultnet.AppendMessage(buf, faultnet.Newline, seq, 120)
				if _, err := c.Write(buf); err != nil {
					t.Fatalf("Write(seq %d) = %v", seq, err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			if !r.WaitSeq(total - 1) {
				t.Fatalf("rsyslogd did not write the last message, %d", total-1)
			}
			lines, err := r.Lines()
			if err != nil {
				t.Fatal(err)
			}
			got := make(map[int]int)
			for _, line := range lines {
				if seq, ok := faultnet.ParseSeq([]byte(line)); ok {
					got[seq]++
				}
			}
			lost, dup := 0, 0
			for seq := 0; seq < total; seq++ {
				switch n := got[seq]; {
				case n == 0:
					lost++
				case n > 1:
					dup += n - 1
				}
			}
			s := c.Stats()
			t.Logf("%d messages to rsyslogd over %d connections (%d rotations): lost %d, duplicated %d, re-sent %d", total, s.Dials, s.Rotations, lost, dup, s.ResentMessages)
			if lost != 0 || dup != 0 {
				t.Errorf("lost %d, duplicated %d; want 0, 0", lost, dup)
			}
			// A rotation's dial that Close overtook counts, unused.
			if s.Dials < s.Rotations+1 || s.Dials > s.Rotations+2 || s.Redials != 0 {
				t.Errorf("Stats() = %+v; want a connection per rotation (one more if Close came in one) and no redial", s)
			}
		})
	}
}
