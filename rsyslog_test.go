package reconn_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn/faultnet"
)

// rsyslogd is a private rsyslogd listening with imtcp on one loopback port
// and writing each raw message to a file.
type rsyslogd struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
}

func startRsyslogd(t *testing.T) *rsyslogd {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/rsyslogd")
	}
	if err != nil {
		t.Skipf("rsyslogd not installed (apt-get install rsyslog): %v", err)
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d")
template(name="raw" type="string" string="%%rawmsg%%\n")
action(type="omfile" file=%q template="raw")
`, dir, port, filepath.Join(dir, "out.log"))
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &rsyslogd{t: t, dir: dir, port: port}
	r.start(bin)
	t.Cleanup(r.stop)
	return r
}

func (r *rsyslogd) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// start runs rsyslogd in the foreground and waits until it accepts.
func (r *rsyslogd) start(bin string) {
	r.t.Helper()
	r.cmd = exec.Command(bin, "-n", "-f", filepath.Join(r.dir, "rsyslog.conf"), "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	// rsyslogd gives no readiness signal here: try to connect, backing
	// off, for a bounded time.
	for d, until := time.Millisecond, time.Now().Add(10*time.Second); ; d = min(2*d, 50*time.Millisecond) {
		c, err := net.Dial("tcp", r.addr())
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(until) {
			r.t.Fatalf("rsyslogd did not listen on %s: %v", r.addr(), err)
		}
		time.Sleep(d)
	}
}

// stop ends rsyslogd gracefully: on SIGTERM it closes its connections and
// writes out what it received.
func (r *rsyslogd) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.cmd.Wait()
	r.cmd = nil
}

// seqs counts the sequence numbers in what rsyslogd wrote.
func (r *rsyslogd) seqs() map[int]int {
	r.t.Helper()
	f, err := os.Open(filepath.Join(r.dir, "out.log"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	got := make(map[int]int)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if seq, ok := faultnet.ParseSeq(sc.Bytes()); ok {
			got[seq]++
		}
	}
	if err := sc.Err(); err != nil {
		r.t.Fatal(err)
	}
	return got
}

// streamToRsyslogd writes total messages at full speed through w and,
// from another goroutine, restarts rsyslogd each time the writer passes a
// cut point. It returns the lost and duplicated counts and the number of
// failed Writes (messages the client dropped).
func streamToRsyslogd(t *testing.T, r *rsyslogd, w interface {
	Write([]byte) (int, error)
	Close() error
}, total, restarts int) (lost, dup, errs int, lostSeqs []int) {
	t.Helper()
	bin := r.cmd.Path
	cut := make(chan struct{}, restarts)
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		for range restarts {
			<-cut
			r.stop()
			r.start(bin)
		}
	}()
	var buf []byte
	for seq := 0; seq < total; seq++ {
		if seq > 0 && seq%(total/(restarts+1)) == 0 && seq/(total/(restarts+1)) <= restarts {
			cut <- struct{}{}
		}
		buf = append(buf[:0], "<13>Nov 23 20:00:00 host app: "...)
		buf = faultnet.AppendMessage(buf, faultnet.Newline, seq, 120)
		if _, err := w.Write(buf); err != nil {
			errs++
		}
	}
	<-restarted
	w.Close()
	// Close returns once rsyslogd's kernel has everything; stopping
	// rsyslogd before it read it all would lose the tail. Wait for the
	// last message to reach the file (rsyslogd gives no other signal).
	for d, until := time.Millisecond, time.Now().Add(10*time.Second); r.seqs()[total-1] == 0 && time.Now().Before(until); d = min(2*d, 100*time.Millisecond) {
		time.Sleep(d)
	}
	r.stop()
	got := r.seqs()
	for seq := 0; seq < total; seq++ {
		switch n := got[seq]; {
		case n == 0:
			lost++
			if len(lostSeqs) < 20 {
				lostSeqs = append(lostSeqs, seq)
			}
		case n > 1:
			dup += n - 1
		}
	}
	return lost, dup, errs, lostSeqs
}

// TestRsyslogdRestart streams to a real rsyslogd at full speed and
// restarts it twice in mid-stream. reconn must lose nothing; log/syslog's
// retry-once, run the same way for comparison, is only reported.
func TestRsyslogdRestart(t *testing.T) {
	const total, restarts = 60000, 2
	t.Run("plain retry once", func(t *testing.T) {
		r := startRsyslogd(t)
		lost, dup, errs, _ := streamToRsyslogd(t, r, &retryOnce{addr: r.addr()}, total, restarts)
		t.Logf("rsyslogd restarted %d times in %d messages: plain retry-once lost %d (%d failed Writes), duplicated %d", restarts, total, lost, errs, dup)
	})
	t.Run("reconn", func(t *testing.T) {
		r := startRsyslogd(t)
		addr, err := net.ResolveTCPAddr("tcp", r.addr())
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, testDialer(), addr)
		lost, dup, errs, lostSeqs := streamToRsyslogd(t, r, c, total, restarts)
		s := c.Stats()
		t.Logf("rsyslogd restarted %d times in %d messages: reconn lost %d, duplicated %d, redials %d, re-sent %d", restarts, total, lost, dup, s.Redials, s.ResentMessages)
		if lost != 0 || errs != 0 {
			t.Errorf("lost %d messages, %d failed Writes; want 0, 0; first lost: %v", lost, errs, lostSeqs)
		}
		if s.Redials != restarts {
			t.Errorf("Stats().Redials = %d; want %d", s.Redials, restarts)
		}
	})
}
