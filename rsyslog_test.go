//go:build linux

package reconn_test

import (
	"net"
	"testing"
	"time"

	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/syslogtest"
)

// streamToRsyslogd writes total messages at full speed through w to r and
// restarts r twice in mid-stream (see syslogtest.Server.Run).
func streamToRsyslogd(t *testing.T, r *syslogtest.Server, w interface {
	Write([]byte) (int, error)
	Close() error
}, total, restarts int) syslogtest.Result {
	t.Helper()
	var buf []byte
	return r.Run(t, syslogtest.Stream{
		Total:    total,
		Restarts: restarts,
		Write: func(seq int) error {
			buf = append(buf[:0], "<13>Nov 23 20:00:00 host app: "...)
			buf = faultnet.AppendMessage(buf, faultnet.Newline, seq, 120)
			_, err := w.Write(buf)
			return err
		},
		Close: w.Close,
	})
}

// TestRsyslogdRestart streams to a real rsyslogd at full speed and
// restarts it twice in mid-stream. reconn must lose nothing but what
// rsyslogd's kernel acknowledged and rsyslogd never read; log/syslog's
// retry-once, run the same way for comparison, is only reported.
func TestRsyslogdRestart(t *testing.T) {
	const total, restarts = 60000, 2
	t.Run("plain retry once", func(t *testing.T) {
		r := syslogtest.StartRsyslogd(t, syslogtest.Rsyslogd{})
		// A write deadline keeps a stalled rsyslogd from blocking the
		// plain client for minutes; reconn leaves such a connection after
		// its UserTimeout.
		res := streamToRsyslogd(t, r, &retryOnce{addr: r.Addr(), timeout: time.Second}, total, restarts)
		t.Logf("rsyslogd restarted %d times in %d messages: plain retry-once %v", restarts, total, res)
	})
	t.Run("reconn", func(t *testing.T) {
		r := syslogtest.StartRsyslogd(t, syslogtest.Rsyslogd{})
		addr, err := net.ResolveTCPAddr("tcp", r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, testDialer(), addr)
		res := streamToRsyslogd(t, r, c, total, restarts)
		s := c.Stats()
		t.Logf("rsyslogd restarted %d times in %d messages: reconn %v; redials %d, re-sent %d", restarts, total, res, s.Redials, s.ResentMessages)
		if res.Lost != 0 || res.WriteErrors != 0 || res.Duplicated != 0 {
			t.Errorf("lost %d messages, %d failed Writes, %d duplicated; want 0, 0, 0; first lost: %v", res.Lost, res.WriteErrors, res.Duplicated, res.FirstLost)
		}
		// rsyslogd may write out the part of a message it had read when
		// it stopped; reconn re-sends that message whole.
		if res.Truncated > restarts {
			t.Errorf("rsyslogd wrote %d messages cut short; want at most one per restart, %d", res.Truncated, restarts)
		}
		// A restart may begin before the client reconnected after the
		// one before (the writer runs ahead into the socket buffers), so
		// two restarts may cost a single redial.
		if s.Redials < 1 {
			t.Errorf("Stats().Redials = %d; want at least 1", s.Redials)
		}
	})
}
