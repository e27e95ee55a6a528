package relp

import (
	"syscall"
	"testing"
	"time"
)

// TestClientImrelpRestart streams to a real rsyslogd with imrelp at full
// speed and restarts it with SIGTERM in mid-stream, several times. Every
// message must be written, none may fail its Write; duplicates, which
// RELP allows, are counted.
func TestClientImrelpRestart(t *testing.T) {
	const total, restarts = 300000, 6
	for _, withTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[withTLS], func(t *testing.T) {
			n, k := total, restarts
			p := newTestPKI(t, t.TempDir())
			cfg := imrelpConfig{}
			d := testDialer()
			if withTLS {
				n, k = total/6, 2
				cfg.input = tlsInput(p, "certvalid", "")
				d.TLSConfig = p.client
			}
			r := startImrelp(t, cfg)
			c := dialRELP(t, d, r.addr())
			restarted := make(chan struct{})
			cut := make(chan struct{}, k)
			go func() {
				defer close(restarted)
				for range k {
					<-cut
					r.signal(syscall.SIGTERM)
					r.wait()
					r.start()
				}
			}()
			start := time.Now()
			for seq := 0; seq < n; seq++ {
				if seq > 0 && seq%(n/(k+1)) == 0 && seq/(n/(k+1)) <= k {
					cut <- struct{}{}
				}
				if _, err := c.Write(testMessage(seq)); err != nil {
					t.Fatalf("Write(seq %d) = %v", seq, err)
				}
			}
			<-restarted
			if err := c.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			took := time.Since(start)
			r.stop()
			got := r.seqs()
			lost, dup := 0, 0
			var first []int
			for seq := 0; seq < n; seq++ {
				switch m := got[seq]; {
				case m == 0:
					lost++
					if len(first) < 10 {
						first = append(first, seq)
					}
				case m > 1:
					dup += m - 1
				}
			}
			s := c.Stats()
			t.Logf("%d messages, rsyslogd restarted %d times: lost %d, duplicated %d; %d redials, %d re-sent; %v", n, k, lost, dup, s.Redials, s.ResentMessages, took.Round(time.Millisecond))
			if lost != 0 {
				t.Errorf("lost %d messages; want 0; first: %v", lost, first)
			}
			if s.Redials < 1 {
				t.Errorf("Stats().Redials = %d; want at least 1", s.Redials)
			}
		})
	}
}
