//go:build unix

package syslog

import (
	"bytes"
	"errors"
	"io"
	stdsyslog "log/syslog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn"
)

// A collector receives what a writer sends to one address: every byte of
// one connection until EOF on a stream network, or a number of datagrams.
type collector struct {
	network, addr string
	ln            net.Listener   // stream networks
	pc            net.PacketConn // datagram networks
}

func listen(t *testing.T, network string) *collector {
	t.Helper()
	c := &collector{network: network}
	var err error
	switch network {
	case "tcp":
		c.ln, err = net.Listen("tcp", "127.0.0.1:0")
	case "unix":
		c.ln, err = net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	case "udp":
		c.pc, err = net.ListenPacket("udp", "127.0.0.1:0")
	case "unixgram":
		c.pc, err = net.ListenPacket("unixgram", filepath.Join(t.TempDir(), "s"))
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.ln != nil {
		c.addr = c.ln.Addr().String()
		t.Cleanup(func() { c.ln.Close() })
	} else {
		c.addr = c.pc.LocalAddr().String()
		t.Cleanup(func() { c.pc.Close() })
	}
	return c
}

// receive returns what one writer sends: run send, then the bytes of its
// connection up to EOF, or its n datagrams, each ended by a NUL byte.
func (c *collector) receive(t *testing.T, n int, send func()) []byte {
	t.Helper()
	got := make(chan []byte, 1)
	go func() {
		var b []byte
		defer func() { got <- b }()
		if c.ln != nil {
			conn, err := c.ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, _ = io.ReadAll(conn)
			return
		}
		c.pc.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 64<<10)
		for range n {
			k, _, err := c.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			b = append(append(b, buf[:k]...), 0)
		}
	}()
	send()
	return <-got
}

// logWriter is what log/syslog's Writer and this package's have in common.
type logWriter interface {
	io.WriteCloser
	Emerg(string) error
	Alert(string) error
	Crit(string) error
	Err(string) error
	Warning(string) error
	Notice(string) error
	Info(string) error
	Debug(string) error
}

// exercise sends the same messages through every method of w, and
// reports how many.
func exercise(t *testing.T, w logWriter) int {
	t.Helper()
	calls := []func() error{
		func() error { _, err := w.Write([]byte("written")); return err },
		func() error { _, err := w.Write([]byte("written with a newline\n")); return err },
		func() error { _, err := w.Write(nil); return err },
		func() error { return w.Emerg("emerg") },
		func() error { return w.Alert("alert") },
		func() error { return w.Crit("crit") },
		func() error { return w.Err("err") },
		func() error { return w.Warning("warning") },
		func() error { return w.Notice("notice\n") },
		func() error { return w.Info("info: ünïcödé, \x01 and \t") },
		func() error { return w.Debug("") },
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return len(calls)
}

// timestamps matches the timestamp after PRI in log/syslog's two forms.
var timestamps = regexp.MustCompile(`(?m)(^|\x00)(<\d+>)(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) `)

// TestSameAsLogSyslog sends the same messages with log/syslog and with
// this package, by default, on each network, and compares the bytes
// received but for the timestamps.
func TestSameAsLogSyslog(t *testing.T) {
	for _, network := range []string{"tcp", "udp", "unix", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			srv := listen(t, network)
			const tag = "wiretest"
			var n int
			want := srv.receive(t, 11, func() {
				w, err := stdsyslog.Dial(network, srv.addr, stdsyslog.LOG_LOCAL3|stdsyslog.LOG_NOTICE, tag)
				if err != nil {
					t.Fatal(err)
				}
				n = exercise(t, w)
			})
			got := srv.receive(t, n, func() {
				w, err := Dial(network, srv.addr, LOG_LOCAL3|LOG_NOTICE, tag)
				if err != nil {
					t.Fatal(err)
				}
				exercise(t, w)
			})
			if c := bytes.Count(want, []byte("wiretest[")); c != n {
				t.Fatalf("log/syslog sent %d messages; want %d:\n%q", c, n, want)
			}
			want = timestamps.ReplaceAll(want, []byte("$1${2}TIMESTAMP "))
			got = timestamps.ReplaceAll(got, []byte("$1${2}TIMESTAMP "))
			if !bytes.Equal(got, want) {
				t.Errorf("sent\n%q\nlog/syslog sent\n%q", got, want)
			}
		})
	}
}

// TestTooLong checks the error of a message the transport cannot carry:
// the socket's EMSGSIZE over UDP, as log/syslog returns it, and
// reconn.ErrTooLarge over TCP for a message larger than the replay buffer.
func TestTooLong(t *testing.T) {
	big := strings.Repeat("x", 70000)
	udp := listen(t, "udp")
	w, err := Dial("udp", udp.addr, LOG_INFO, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Info(big); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("a %d-byte message over UDP: %v; want EMSGSIZE", len(big), err)
	}
	std, err := stdsyslog.Dial("udp", udp.addr, stdsyslog.LOG_INFO, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer std.Close()
	if err := std.Info(big); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("log/syslog, a %d-byte message over UDP: %v; want EMSGSIZE", len(big), err)
	}

	tcp := listen(t, "tcp")
	go func() {
		if c, err := tcp.ln.Accept(); err == nil {
			discard(c)
			c.Close()
		}
	}()
	w, err = DialConfig("tcp", tcp.addr, LOG_INFO, "t", &Config{Dialer: &reconn.Dialer{ReplayBuffer: 64 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Info(big); !errors.Is(err, reconn.ErrTooLarge) {
		t.Errorf("a %d-byte message over TCP with a 64 KiB replay buffer: %v; want reconn.ErrTooLarge", len(big), err)
	}
	if err := w.Info("small"); err != nil {
		t.Errorf("a small message after the large one: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
}
