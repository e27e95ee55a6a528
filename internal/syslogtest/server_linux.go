//go:build linux

package syslogtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
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

// A Server is a private syslog server listening on a loopback TCP port and
// writing each message it parses as one line of a file. Its methods may be
// called from any goroutine.
type Server struct {
	name string // "rsyslogd" or "syslog-ng"
	dir  string
	port int
	argv []string
	env  []string
	out  string // the file of parsed messages
	tls  bool   // connections carry TLS: unread data is counted in bytes only

	mu          sync.Mutex // guards the fields below
	drain       bool       // let the server read what its kernel acknowledged before stopping it
	cmd         *exec.Cmd
	exited      chan struct{} // closed when cmd has exited
	unread      map[int]bool  // messages left unread in its sockets when it stopped
	unreadBytes int64
	err         error // why a freeze or a restart failed
}

// newServer runs argv in dir until the test ends, and waits until it
// listens on port.
func newServer(t testing.TB, name, dir string, port int, argv, env []string, tls bool) *Server {
	t.Helper()
	s := &Server{
		name: name, dir: dir, port: port, argv: argv, env: env, tls: tls,
		out:    filepath.Join(dir, "out.log"),
		unread: make(map[int]bool),
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// FreePort returns a loopback TCP port that was free a moment ago, below
// the kernel's ephemeral range where it can: no listener on port 0 and no
// connecting socket of another test process can then take it while the
// server restarts, nor can a test that dials a refusing port find the
// server there.
func FreePort(t testing.TB) int {
	t.Helper()
	const low = 10000
	top := ephemeralLow()
	for range 100 {
		port := 0
		if top > low {
			port = low + rand.IntN(top-low)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			if port != 0 && errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			t.Fatal(err)
		}
		ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	t.Fatal("no free port found below the ephemeral range")
	return 0
}

// ephemeralLow returns the first port of the kernel's ephemeral range, or
// 0 if it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return n
}

// Addr is the server's address, "127.0.0.1:port".
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server and waits until it listens.
func (s *Server) start() error {
	logf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	// Neither server signals readiness: look for its listening socket,
	// backing off, until it is there, the server exits, or a minute has
	// passed (a loaded machine can be that slow). A probing connection
	// would leave an error in the server's log (a broken RELP session, a
	// TLS connection closed without close_notify).
	for d, until := time.Millisecond, time.Now().Add(time.Minute); ; d = min(2*d, 50*time.Millisecond) {
		if listener, _, _ := s.sockets(cmd.Process.Pid); listener != "" {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start (%v); its log:\n%s", s.name, cmd.ProcessState, s.Log())
		default:
		}
		if time.Now().After(until) {
			return fmt.Errorf("%s did not listen on %s; its log:\n%s", s.name, s.Addr(), s.Log())
		}
		time.Sleep(d)
	}
}

// Log returns what the server printed.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

// Stop ends the server as its init script would, with SIGTERM, after
// recording what it left unread in its connections (see the package
// documentation). A failure to record is reported by Err.
//
// The frozen connections are held open until the server has exited, and
// then closed as the server would have closed them, without the delay of
// a retransmission: with a reset if data was left unread, else with a FIN
// followed at once by a reset, which the client's next segment would
// have drawn. A frozen socket left to close on its own would drop every
// segment of the client, unanswered, until the client gave up.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited, drain := s.cmd, s.exited, s.drain
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	frozen, err := s.freeze(cmd.Process.Pid, drain)
	if err != nil {
		s.fail(err)
	}
	// What the server read before the freeze may still wait in its own
	// buffers, where no measure can see it, and a server may drop it at
	// SIGTERM (syslog-ng was seen to, rarely): let it write that out
	// first. Nothing more arrives; its output stops growing.
	s.awaitQuiet()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
		s.fail(fmt.Errorf("%s did not exit within 60s of SIGTERM", s.name))
	}
	for _, fd := range frozen {
		if n, err := unix.IoctlGetUint32(fd, unix.SIOCINQ); err == nil && n == 0 {
			unix.Shutdown(fd, unix.SHUT_WR)
		}
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(fd)
	}
}

// awaitQuiet waits until the server's output has not grown for 200 ms,
// for at most 5 seconds.
func (s *Server) awaitQuiet() {
	size, still := int64(-1), time.Now()
	for until := time.Now().Add(5 * time.Second); time.Now().Before(until); time.Sleep(20 * time.Millisecond) {
		var n int64
		if fi, err := os.Stat(s.out); err == nil {
			n = fi.Size()
		}
		if n != size {
			size, still = n, time.Now()
			continue
		}
		if time.Since(still) >= 200*time.Millisecond {
			return
		}
	}
}

// Restart stops the server and starts it again on the same port.
func (s *Server) Restart() error {
	s.Stop()
	err := s.start()
	if err != nil {
		s.fail(err)
	}
	return err
}

func (s *Server) fail(err error) {
	s.mu.Lock()
	s.err = errors.Join(s.err, err)
	s.mu.Unlock()
}

// Err returns why recording the unread data or a restart failed, if one
// did.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Unread returns the messages the server left unread in its connections
// when it stopped, and their bytes. Under TLS only the bytes are known.
func (s *Server) Unread() (map[int]bool, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[int]bool, len(s.unread))
	for k := range s.unread {
		m[k] = true
	}
	return m, s.unreadBytes
}

// freeze borrows the server's connections, stops their kernel from
// acknowledging anything more, and records the messages waiting unread in
// them. With drain, it first lets the server read what waits, for up to
// 10 seconds. The caller closes the connections it returns.
//
// First the listening socket is frozen, so that no connection completes
// from then on, and the server is left to accept those that completed
// before: what a kernel acknowledged on a connection not yet accepted
// would be lost uncounted. Then the listener is closed, so that a client
// dialing meanwhile is refused at once, as it would be once the server
// has exited, rather than connect to a server about to stop.
func (s *Server) freeze(pid int, drain bool) ([]int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	listener, _, _ := s.sockets(pid)
	if listener == "" {
		return nil, fmt.Errorf("%s is not listening on its port", s.name)
	}
	lfd, err := borrow(pidfd, pid, listener)
	if err != nil {
		return nil, err
	}
	err = dropAll(lfd)
	_, conns, pending := s.sockets(pid) // after the freeze, not before
	for until := time.Now().Add(30 * time.Second); err == nil && pending > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(until) {
			err = fmt.Errorf("%s left %d connections unaccepted for 30s", s.name, pending)
		}
		_, conns, pending = s.sockets(pid)
	}
	unix.Shutdown(lfd, unix.SHUT_RDWR)
	unix.Close(lfd)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 16<<20)
	var frozen []int
	for inode := range conns {
		fd, err := borrow(pidfd, pid, inode)
		if err != nil {
			return frozen, err
		}
		if err := dropAll(fd); err != nil {
			unix.Close(fd)
			return frozen, err
		}
		for until := time.Now().Add(10 * time.Second); drain && time.Now().Before(until); time.Sleep(time.Millisecond) {
			if n, err := unix.IoctlGetUint32(fd, unix.SIOCINQ); err != nil || n == 0 {
				break
			}
		}
		if n, _, err := unix.Recvfrom(fd, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT); err == nil && n > 0 {
			s.markUnread(buf[:n])
		}
		frozen = append(frozen, fd)
	}
	return frozen, nil
}

// borrow duplicates into this process the socket of process pid (open as
// pidfd) whose inode is "socket:[N]".
func borrow(pidfd, pid int, inode string) (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1, err
	}
	for _, e := range fds {
		if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); link == inode {
			target, _ := strconv.Atoi(e.Name())
			fd, err := unix.PidfdGetfd(pidfd, target, 0)
			if err != nil {
				return -1, fmt.Errorf("pidfd_getfd: %w", err)
			}
			return fd, nil
		}
	}
	return -1, fmt.Errorf("no file of process %d is %s", pid, inode)
}

// dropAll attaches a socket filter that drops every incoming packet, so
// that the kernel acknowledges nothing more on fd.
func dropAll(fd int) error {
	err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{
		Len:    1,
		Filter: &[]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}[0],
	})
	if err != nil {
		return fmt.Errorf("attaching the drop filter: %w", err)
	}
	return nil
}

// markUnread records the messages in b, a peek at a socket's queue: each
// sequence number in it, and the one before the first, which may have
// begun in what the server already read.
func (s *Server) markUnread(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreadBytes += int64(len(b))
	if s.tls {
		return
	}
	first := true
	for {
		i := bytes.Index(b, []byte("seq="))
		if i < 0 {
			return
		}
		b = b[i:]
		if seq, ok := faultnet.ParseSeq(b); ok {
			if first && seq > 0 {
				s.unread[seq-1] = true
			}
			s.unread[seq] = true
			first = false
		}
		b = b[len("seq="):]
	}
}

// sockets returns the server's sockets on its port, as inodes
// ("socket:[N]"): the listener, the established connections, and the
// number of established connections not accepted yet, which have no
// inode.
func (s *Server) sockets(pid int) (listener string, conns map[string]bool, pending int) {
	conns = make(map[string]bool)
	for _, f := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 {
				continue
			}
			local := fields[1]
			port, err := strconv.ParseUint(local[strings.LastIndexByte(local, ':')+1:], 16, 16)
			if err != nil || int(port) != s.port {
				continue
			}
			inode := "socket:[" + fields[9] + "]"
			switch fields[3] {
			case "0A": // LISTEN
				listener = inode
			case "01": // ESTABLISHED
				if fields[9] == "0" {
					pending++
				} else {
					conns[inode] = true
				}
			}
		}
	}
	return listener, conns, pending
}

// WaitSeq waits until message seq is in the output, or the output
// has not grown for 3 seconds, or 60 seconds have passed. It reports
// whether seq arrived.
func (s *Server) WaitSeq(seq int) bool {
	want := []byte(fmt.Sprintf("seq=%d ", seq))
	var size, scanned int64 = -1, 0
	still := time.Now()
	for until := time.Now().Add(60 * time.Second); time.Now().Before(until); time.Sleep(10 * time.Millisecond) {
		fi, err := os.Stat(s.out)
		if err != nil || fi.Size() == size {
			if time.Since(still) > 3*time.Second {
				return false
			}
			continue
		}
		size, still = fi.Size(), time.Now()
		f, err := os.Open(s.out)
		if err != nil {
			continue
		}
		// Read all that was added since the last look: with several
		// connections the server may write seq before what an earlier
		// connection still carried.
		from := max(scanned-int64(len(want)), 0)
		added := make([]byte, size-from)
		n, _ := f.ReadAt(added, from)
		f.Close()
		scanned = from + int64(n)
		if bytes.Contains(added[:n], want) {
			return true
		}
	}
	return false
}

// Lines returns the lines of the server's output.
func (s *Server) Lines() ([]string, error) {
	f, err := os.Open(s.out)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}
