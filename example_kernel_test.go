//go:build !(js || wasip1)

// These examples need kernel sockets: a net.Dialer's Control hook and
// local address, and a check that finds the server's FIN before a Write.
// The in-memory network of js/wasm and wasip1 has neither.

package reconn_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reconn/reconn"
)

func ExampleDialer_DialContext() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
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
		s := bufio.NewScanner(c)
		for s.Scan() {
			lines = append(lines, s.Text())
		}
	}()

	var controlRan atomic.Bool
	d := &reconn.Dialer{
		// This net.Dialer makes the first connection and every redial,
		// with its own timeout, local address and Control hook.
		Dialer: &net.Dialer{
			Timeout:   5 * time.Second,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)},
			Control: func(network, address string, rc syscall.RawConn) error {
				// Socket options could be set here, before connect.
				controlRan.Store(true)
				return nil
			},
		},
		// Count the connection dead when sent data stays unacknowledged
		// this long; this also bounds each redial attempt.
		UserTimeout: 5 * time.Second,
		OnRedial: func(ev reconn.RedialEvent) {
			log.Printf("redialed after %v (%d attempts, %d messages re-sent): %v",
				ev.Downtime, ev.Attempts, ev.Replayed, ev.Cause)
		},
	}
	// The context bounds the first dial and every later redial, so it
	// must live as long as the connection.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("control hook ran:", controlRan.Load())
	fmt.Println("local address is loopback:", c.LocalAddr().(*net.TCPAddr).IP.IsLoopback())

	if _, err := io.WriteString(c, "hello from a custom dialer\n"); err != nil {
		log.Fatal(err)
	}
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}

	for _, line := range <-got {
		fmt.Println("server got:", line)
	}
	// Output:
	// control hook ran: true
	// local address is loopback: true
	// server got: hello from a custom dialer
}

// This example shows a Conn carrying on after the server drops the
// connection: the next Write finds it closed, redials, re-sends what the
// old connection had not delivered, and then writes.
func Example_redial() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	dropped := make(chan struct{})
	got := make(chan []string, 1)
	go func() {
		var lines []string
		defer func() { got <- lines }()
		// The first connection: read one line, then hang up.
		c, err := ln.Accept()
		if err != nil {
			close(dropped)
			return
		}
		s := bufio.NewScanner(c)
		if s.Scan() {
			lines = append(lines, "connection 1: "+s.Text())
		}
		c.Close()
		close(dropped)
		// The second connection, made by the redial: read to the end.
		c, err = ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s = bufio.NewScanner(c)
		for s.Scan() {
			lines = append(lines, "connection 2: "+s.Text())
		}
	}()

	d := &reconn.Dialer{
		OnRedial: func(ev reconn.RedialEvent) {
			fmt.Println("redialed")
		},
	}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.WriteString(c, "one\n"); err != nil {
		log.Fatal(err)
	}
	<-dropped
	for _, line := range []string{"two", "three"} {
		if _, err := fmt.Fprintln(c, line); err != nil {
			log.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}

	for _, line := range <-got {
		fmt.Println(line)
	}
	// Output:
	// redialed
	// connection 1: one
	// connection 2: two
	// connection 2: three
}
