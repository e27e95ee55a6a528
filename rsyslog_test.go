//go:build linux

package reconn_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn/faultnet"
	"golang.org/x/sys/unix"
)

// rsyslogd is a private rsyslogd listening with imtcp on one loopback port
// and writing each raw message to a file.
type rsyslogd struct {
	t      *testing.T
	dir    string
	port   int
	cmd    *exec.Cmd
	unread map[int]bool // messages left unread in its sockets when it stopped

	mu        sync.Mutex
	freezeErr error // why a freeze failed, for the test goroutine
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
	// A long shutdown timeout makes rsyslogd write out everything it has
	// read before it exits, so that only its unread socket data is lost.
	conf := fmt.Sprintf(`global(workDirectory=%q)
main_queue(queue.timeoutShutdown="60000" queue.timeoutActionCompletion="60000")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d")
template(name="raw" type="string" string="%%rawmsg%%\n")
action(type="omfile" file=%q template="raw")
`, dir, port, filepath.Join(dir, "out.log"))
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &rsyslogd{t: t, dir: dir, port: port, unread: make(map[int]bool)}
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
// writes out what it had read. What it had not read from its sockets is
// lost, although its kernel acknowledged it: first, every connection is
// frozen (its socket borrowed with pidfd_getfd and given a drop-all
// filter, so the kernel acknowledges nothing more) and what waits in it is
// recorded as unread.
func (r *rsyslogd) stop() {
	if r.cmd == nil {
		return
	}
	if err := r.freeze(); err != nil {
		r.mu.Lock()
		r.freezeErr = errors.Join(r.freezeErr, err)
		r.mu.Unlock()
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.cmd.Wait()
	r.cmd = nil
}

// freeze records the messages waiting unread in rsyslogd's connections.
func (r *rsyslogd) freeze() error {
	pid := r.cmd.Process.Pid
	inodes := r.connInodes(pid)
	if len(inodes) == 0 {
		return nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	buf := make([]byte, 16<<20)
	for _, e := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if !inodes[link] {
			continue
		}
		target, _ := strconv.Atoi(e.Name())
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			return fmt.Errorf("pidfd_getfd: %w", err)
		}
		err = unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{
			Len:    1,
			Filter: &[]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}[0],
		})
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("attaching the drop filter: %w", err)
		}
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		unix.Close(fd)
		if err != nil || n <= 0 {
			continue
		}
		r.markUnread(buf[:n])
	}
	return nil
}

// markUnread records the messages in b, a peek at a socket's queue. The
// first line may have begun in what rsyslogd already read: it is the
// message before the first whole one.
func (r *rsyslogd) markUnread(b []byte) {
	first := true
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b) - 1
		}
		if seq, ok := faultnet.ParseSeq(b[:i+1]); ok {
			if first && seq > 0 {
				r.unread[seq-1] = true
			}
			r.unread[seq] = true
			first = false
		}
		b = b[i+1:]
	}
}

// connInodes returns the socket inodes ("socket:[N]") of rsyslogd's
// established connections on its port.
func (r *rsyslogd) connInodes(pid int) map[string]bool {
	inodes := make(map[string]bool)
	for _, f := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] != "01" { // ESTABLISHED
				continue
			}
			local := fields[1]
			port, err := strconv.ParseUint(local[strings.LastIndexByte(local, ':')+1:], 16, 16)
			if err != nil || int(port) != r.port {
				continue
			}
			inodes["socket:["+fields[9]+"]"] = true
		}
	}
	return inodes
}

// waitWritten waits until message seq is in the file's tail, or the file
// has not grown for half a second.
func (r *rsyslogd) waitWritten(seq int) {
	name := filepath.Join(r.dir, "out.log")
	want := []byte(fmt.Sprintf("seq=%d ", seq))
	var size int64
	still := 0
	for until := time.Now().Add(30 * time.Second); time.Now().Before(until) && still < 25; {
		time.Sleep(20 * time.Millisecond)
		fi, err := os.Stat(name)
		if err != nil {
			continue
		}
		if fi.Size() == size {
			still++
			continue
		}
		size, still = fi.Size(), 0
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		tail := make([]byte, min(size, 4096))
		f.ReadAt(tail, size-int64(len(tail)))
		f.Close()
		if bytes.Contains(tail, want) {
			return
		}
	}
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
// cut point. It returns the messages lost by the client, those lost
// unread in rsyslogd's sockets (which no client could save), the
// duplicates, and the number of failed Writes (messages the client
// dropped).
func streamToRsyslogd(t *testing.T, r *rsyslogd, w interface {
	Write([]byte) (int, error)
	Close() error
}, total, restarts int) (lost, unavoidable, dup, errs int, lostSeqs []int) {
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
	// last message to reach the file, or for rsyslogd to stop writing
	// (a client that lost it); rsyslogd gives no other signal.
	r.waitWritten(total - 1)
	r.stop()
	r.mu.Lock()
	ferr := r.freezeErr
	r.mu.Unlock()
	if errors.Is(ferr, syscall.EPERM) {
		t.Skipf("measuring what rsyslogd left unread needs CAP_NET_ADMIN and ptrace rights: %v", ferr)
	} else if ferr != nil {
		t.Fatal(ferr)
	}
	got := r.seqs()
	for seq := 0; seq < total; seq++ {
		switch n := got[seq]; {
		case n == 0 && r.unread[seq]:
			unavoidable++
		case n == 0:
			lost++
			if len(lostSeqs) < 20 {
				lostSeqs = append(lostSeqs, seq)
			}
		case n > 1:
			dup += n - 1
		}
	}
	return lost, unavoidable, dup, errs, lostSeqs
}

// TestRsyslogdRestart streams to a real rsyslogd at full speed and
// restarts it twice in mid-stream. reconn must lose nothing but what
// rsyslogd's kernel acknowledged and rsyslogd never read; log/syslog's
// retry-once, run the same way for comparison, is only reported.
func TestRsyslogdRestart(t *testing.T) {
	const total, restarts = 60000, 2
	t.Run("plain retry once", func(t *testing.T) {
		r := startRsyslogd(t)
		// A write deadline keeps a stalled rsyslogd from blocking the
		// plain client for minutes; reconn leaves such a connection after
		// its UserTimeout.
		lost, unavoidable, dup, errs, _ := streamToRsyslogd(t, r, &retryOnce{addr: r.addr(), timeout: time.Second}, total, restarts)
		t.Logf("rsyslogd restarted %d times in %d messages: plain retry-once lost %d (%d failed Writes) and %d unread by rsyslogd, duplicated %d", restarts, total, lost, errs, unavoidable, dup)
	})
	t.Run("reconn", func(t *testing.T) {
		r := startRsyslogd(t)
		addr, err := net.ResolveTCPAddr("tcp", r.addr())
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, testDialer(), addr)
		lost, unavoidable, dup, errs, lostSeqs := streamToRsyslogd(t, r, c, total, restarts)
		s := c.Stats()
		t.Logf("rsyslogd restarted %d times in %d messages: reconn lost %d, and %d unread by rsyslogd; duplicated %d, redials %d, re-sent %d", restarts, total, lost, unavoidable, dup, s.Redials, s.ResentMessages)
		if lost != 0 || errs != 0 || dup != 0 {
			t.Errorf("lost %d messages, %d failed Writes, %d duplicated; want 0, 0, 0; first lost: %v", lost, errs, dup, lostSeqs)
		}
		// A restart may begin before the client reconnected after the
		// one before (the writer runs ahead into the socket buffers), so
		// two restarts may cost a single redial.
		if s.Redials < 1 {
			t.Errorf("Stats().Redials = %d; want at least 1", s.Redials)
		}
	})
}
