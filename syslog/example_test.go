package syslog_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/syslog" // was "log/syslog"
)

// A program written for log/syslog switches by changing its import path,
// "log/syslog", to "github.com/reconn/reconn/syslog". Nothing else
// changes, and the server receives the same bytes; a TCP connection now
// survives the server restarting.
func Example() {
	w, err := syslog.Dial("tcp", "logs.example.com:514", syslog.LOG_WARNING|syslog.LOG_DAEMON, "myapp")
	if err != nil {
		log.Fatal(err)
	}
	// Close waits (up to 15 seconds by default) until the server's kernel
	// has acknowledged every message, and says how many it had not.
	defer w.Close()

	fmt.Fprintf(w, "This is a daemon warning.")
	w.Info("and an informational message")
}

// A log/slog Handler writing RFC 5424 messages: the attributes, with
// their groups, become structured data. The listener stands for a syslog
// server and prints the PRI and version, APP-NAME, and what follows
// MSGID.
func ExampleNewHandler() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
			f := strings.SplitN(sc.Text(), " ", 7)
			fmt.Println(f[0], f[3], f[6])
		}
	}()

	w, err := syslog.DialConfig("tcp", ln.Addr().String(), syslog.LOG_LOCAL0, "shop",
		&syslog.Config{Format: syslog.RFC5424})
	if err != nil {
		log.Fatal(err)
	}
	logger := slog.New(syslog.NewHandler(w, nil))
	logger.Info("order shipped", "order", 1017, slog.Group("to", "country", "NZ"))
	logger.With("request", "r-42").Error("payment failed", "err", errors.New(`card "declined"`))
	// At exit, Close waits until the server's kernel has every message.
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	<-done
	// Output:
	// <134>1 shop [slog@32473 order="1017" to.country="NZ"] order shipped
	// <131>1 shop [slog@32473 request="r-42" err="card \"declined\""] payment failed
}

// RFC 5424 over TLS (RFC 5425), framed by octet counting as RFC 5425
// requires, with reconn's transport options: here a faster detection of a
// silent peer and a longer wait for the server to come back.
func ExampleDialConfig() {
	w, err := syslog.DialConfig("tcp", "logs.example.com:6514", syslog.LOG_LOCAL0|syslog.LOG_INFO, "myapp",
		&syslog.Config{
			Format: syslog.RFC5424,
			MsgID:  "audit",
			Dialer: &reconn.Dialer{
				TLSConfig:     &tls.Config{ServerName: "logs.example.com"},
				UserTimeout:   5 * time.Second,
				RedialTimeout: 2 * time.Minute,
			},
		})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	w.Info("user 42 logged in")
}
