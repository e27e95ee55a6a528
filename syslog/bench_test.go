//go:build unix

package syslog

import (
	"crypto/tls"
	"io"
	"log/slog"
	stdsyslog "log/syslog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/syslogtest"
)

// startSink listens on loopback TCP, with TLS if cfg is set, and reads and
// discards everything its clients send, until the benchmark ends.
func startSink(b *testing.B, cfg *tls.Config) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(io.Discard, c)
			})
		}
	})
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// BenchmarkWrite measures one message of 100 bytes, formatted and written
// on a loopback TCP connection to a reader that discards it: log/syslog,
// then this package with each format, framing and TLS, then a log/slog
// Handler with three attributes.
func BenchmarkWrite(b *testing.B) {
	msg := strings.Repeat("m", 100)
	addr := startSink(b, nil)
	certs := syslogtest.NewCerts(b)
	cert, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
	if err != nil {
		b.Fatal(err)
	}
	tlsAddr := startSink(b, &tls.Config{Certificates: []tls.Certificate{cert}})

	b.Run("log-syslog", func(b *testing.B) {
		w, err := stdsyslog.Dial("tcp", addr, stdsyslog.LOG_INFO|stdsyslog.LOG_LOCAL0, "bench")
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		b.ReportAllocs()
		for b.Loop() {
			w.Info(msg)
		}
	})
	for _, c := range []struct {
		name string
		cfg  Config
		tls  bool
	}{
		{"RFC3164", Config{}, false},
		{"RFC3164-octets", Config{Framing: OctetCounting}, false},
		{"RFC5424", Config{Format: RFC5424}, false},
		{"RFC5424-octets", Config{Format: RFC5424, Framing: OctetCounting}, false},
		{"RFC5424-TLS", Config{Format: RFC5424}, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := benchWriter(b, addr, tlsAddr, c.cfg, c.tls, certs)
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Info(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, format := range []Format{RFC3164, RFC5424} {
		b.Run("slog-"+formatName(format), func(b *testing.B) {
			w := benchWriter(b, addr, tlsAddr, Config{Format: format}, false, certs)
			l := slog.New(NewHandler(w, nil)).With("service", "shop")
			b.ReportAllocs()
			for b.Loop() {
				l.Info(msg, "status", 200, "elapsed", 12*time.Millisecond, slog.Group("req", "path", "/orders/1017"))
			}
		})
	}
}

func benchWriter(b *testing.B, addr, tlsAddr string, cfg Config, useTLS bool, certs *syslogtest.Certs) *Writer {
	b.Helper()
	cfg.Dialer = new(reconn.Dialer)
	if useTLS {
		addr = tlsAddr
		cfg.Dialer.TLSConfig = certs.Client
	}
	w, err := DialConfig("tcp", addr, LOG_INFO|LOG_LOCAL0, "bench", &cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	return w
}

// BenchmarkFormat measures formatting alone, without writing.
func BenchmarkFormat(b *testing.B) {
	msg := strings.Repeat("m", 100)
	for _, mode := range []int{0, 1, 4, 5} {
		b.Run(fmtMode(mode), func(b *testing.B) {
			w, _, err := fuzzWriter(mode, "bench", "host.example")
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = appendFrame(buf[:0], &w.f, LOG_INFO, time.Now(), nil, msg)
			}
		})
	}
}
