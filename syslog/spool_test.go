package syslog

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/spool"
)

// TestSpool: a Writer whose Dialer has a SpoolDir takes messages while
// the server is down and delivers every one once it listens, in order.
func TestSpool(t *testing.T) {
	if !spool.Supported {
		t.Skip("SpoolDir needs shared file mappings, which this platform lacks")
	}
	platformtest.NeedKernelSockets(t, "a server that listens again on a port it left")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d := &reconn.Dialer{SpoolDir: platformtest.TempDir(t), MinBackoff: 2 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	w, err := DialConfig("tcp", addr, LOG_LOCAL0|LOG_INFO, "spooled", &Config{Dialer: d})
	if err != nil {
		t.Fatalf("DialConfig while the server is down = %v", err)
	}
	const total = 5000
	for i := range total {
		if err := w.Info(fmt.Sprintf("message %d", i)); err != nil {
			t.Fatalf("Info(%d) while the server is down = %v", i, err)
		}
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listening again on %s: %v", addr, err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		defer func() { got <- lines }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}()
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	lines := <-got
	if len(lines) != total {
		t.Fatalf("the server got %d messages; want %d", len(lines), total)
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, fmt.Sprintf("spooled[%d]: message %d", os.Getpid(), i)) {
			t.Fatalf("message %d arrived as %q", i, l)
		}
	}
}
