package syslog

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/relp"
)

// TestDialRefuses checks that a priority, tag or Config the format or the
// network cannot carry fails DialConfig, before any connection is made,
// with an error that names it.
func TestDialRefuses(t *testing.T) {
	tests := []struct {
		name     string
		network  string
		priority Priority
		tag      string
		cfg      *Config
		want     string // in the error
	}{
		{"negative priority", "tcp", -1, "t", nil, "invalid priority"},
		{"priority beyond LOG_LOCAL7|LOG_DEBUG", "tcp", LOG_LOCAL7 | LOG_DEBUG + 1, "t", nil, "invalid priority"},
		{"tag with a colon", "tcp", LOG_INFO, "a:b", nil, "tag"},
		{"tag with [", "tcp", LOG_INFO, "a[1", nil, "tag"},
		{"tag with ]", "udp", LOG_INFO, "a]", nil, "tag"},
		{"tag with a space", "tcp", LOG_INFO, "my app", nil, "tag"},
		{"tag with a newline", "unixgram", LOG_INFO, "a\nb", nil, "tag"},
		{"tag not ASCII", "tcp", LOG_INFO, "äpp", nil, "tag"},
		{"APP-NAME too long", "tcp", LOG_INFO, strings.Repeat("a", 49), &Config{Format: RFC5424}, "longer than 48"},
		{"APP-NAME with a space", "tcp", LOG_INFO, "a b", &Config{Format: RFC5424}, "APP-NAME"},
		{"hostname with a space", "tcp", LOG_INFO, "t", &Config{Hostname: "a b"}, "Hostname"},
		{"hostname too long", "tcp", LOG_INFO, "t", &Config{Hostname: strings.Repeat("h", 256)}, "longer than 255"},
		{"MSGID with RFC3164", "tcp", LOG_INFO, "t", &Config{MsgID: "ID"}, "MsgID"},
		{"MSGID too long", "tcp", LOG_INFO, "t", &Config{Format: RFC5424, MsgID: strings.Repeat("m", 33)}, "longer than 32"},
		{"MSGID with a space", "tcp", LOG_INFO, "t", &Config{Format: RFC5424, MsgID: "a b"}, "MsgID"},
		{"octet counting on UDP", "udp", LOG_INFO, "t", &Config{Framing: OctetCounting}, "stream network"},
		{"a Dialer on UDP", "udp", LOG_INFO, "t", &Config{Dialer: &reconn.Dialer{}}, "Dialer"},
		{"unknown Format", "tcp", LOG_INFO, "t", &Config{Format: 7}, "Format"},
		{"unknown Framing", "tcp", LOG_INFO, "t", &Config{Framing: 7}, "Framing"},
		{"an address for the local syslog", "", LOG_INFO, "t", nil, "address"},
		{"RELP on a unix socket", "unix", LOG_INFO, "t", &Config{RELP: &relp.Dialer{}}, "RELP"},
		{"RELP on UDP", "udp", LOG_INFO, "t", &Config{RELP: &relp.Dialer{}}, "RELP"},
		{"RELP and a Dialer", "tcp", LOG_INFO, "t", &Config{RELP: &relp.Dialer{}, Dialer: &reconn.Dialer{}}, "RELP"},
		{"RELP with octet counting", "tcp", LOG_INFO, "t", &Config{RELP: &relp.Dialer{}, Framing: OctetCounting}, "RELP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// An address nothing listens on: a Dial that got as far as
			// connecting would fail differently.
			addr := "127.0.0.1:1"
			if tt.network == "unixgram" {
				addr = "/nonexistent/log"
			}
			w, err := DialConfig(tt.network, addr, tt.priority, tt.tag, tt.cfg)
			if err == nil {
				w.Close()
				t.Fatalf("DialConfig = nil error; want one about %s", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DialConfig = %v; want an error about %s", err, tt.want)
			}
		})
	}
}

// TestDefaultTag checks the tag made of os.Args[0] when the tag is empty:
// all of it, or its base name as APP-NAME, with what the header cannot
// hold replaced.
func TestDefaultTag(t *testing.T) {
	for _, tt := range []struct {
		format Format
		arg0   string
		want   string
	}{
		{RFC3164, "/usr/bin/my app", "/usr/bin/my_app"},
		{RFC3164, "/opt/a:b[1]", "/opt/a_b_1_"},
		{RFC5424, "/usr/bin/my app", "my_app"},
		{RFC5424, "/x/" + strings.Repeat("a", 60), strings.Repeat("a", 48)},
	} {
		if got := defaultTag(tt.format, tt.arg0); got != tt.want {
			t.Errorf("format %d, os.Args[0] %q: tag %q; want %q", tt.format, tt.arg0, got, tt.want)
		}
	}
}

// TestNewlines checks what becomes of newlines in a message under each
// framing of a stream network: one message per write, always.
func TestNewlines(t *testing.T) {
	for _, tt := range []struct {
		mode      int
		msg, want string
	}{
		{0, "one\ntwo\n", "one#012two"},
		{0, "one\n\n", "one#012"},
		{0, "\n", ""},
		{1, "one\ntwo\n", "one\ntwo"},
		{1, "one\n\n", "one\n"},
		{4, "one\ntwo", "one#012two"},
		{5, "one\ntwo\n", "one\ntwo"},
	} {
		w, c, err := fuzzWriter(tt.mode, "app", "host")
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(tt.msg))
		if m := oneFrame(t, w, c.writes[0]); m.msg != tt.want {
			t.Errorf("%s: %q sent as %q; want MSG %q", fmtMode(tt.mode), tt.msg, c.writes[0], tt.want)
		}
	}
}

// TestWriteAfterClose checks log/syslog's behaviour: Close on a closed
// Writer returns nil, and a Write after Close connects again.
func TestWriteAfterClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	w, err := Dial("tcp", ln.Addr().String(), LOG_INFO, "t")
	if err != nil {
		t.Fatal(err)
	}
	c1 := <-accepted
	defer c1.Close()
	go discard(c1)
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close() = %v; want nil, as log/syslog", err)
	}
	if err := w.Info("again"); err != nil {
		t.Fatalf("Info after Close = %v; want a new connection", err)
	}
	c2 := <-accepted
	defer c2.Close()
	go discard(c2)
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := w.Flush(t.Context()); err != nil {
		t.Errorf("Flush on a closed Writer = %v; want nil", err)
	}
}

func discard(c net.Conn) {
	b := make([]byte, 4096)
	for {
		if _, err := c.Read(b); err != nil {
			return
		}
	}
}

// TestNoLocal checks the error of New where no local syslog daemon is
// listening.
func TestNoLocal(t *testing.T) {
	w, err := New(LOG_INFO, "t")
	if err == nil {
		w.Close()
		t.Skip("a local syslog daemon is listening here")
	}
	if !errors.Is(err, errNoLocal) {
		t.Errorf("New = %v; want %v", err, errNoLocal)
	}
	if _, err := NewLogger(LOG_INFO, 0); !errors.Is(err, errNoLocal) {
		t.Errorf("NewLogger = %v; want %v", err, errNoLocal)
	}
}

// TestDefaultFraming checks that DefaultFraming is octet counting over TLS,
// as RFC 5425 requires, and newline framing otherwise.
func TestDefaultFraming(t *testing.T) {
	for _, tt := range []struct {
		network string
		dialer  *reconn.Dialer
		want    framing
	}{
		{"tcp", nil, frameNewline},
		{"tcp", &reconn.Dialer{}, frameNewline},
		{"tcp", &reconn.Dialer{TLSConfig: &tls.Config{}}, frameOctets},
		{"unix", nil, frameNewline},
		{"udp", nil, frameDatagram},
		{"", nil, frameDatagram},
	} {
		w := &Writer{network: tt.network}
		if err := w.configure(&Config{Dialer: tt.dialer}, "t"); err != nil {
			t.Fatal(err)
		}
		if w.f.framing != tt.want {
			t.Errorf("%q with TLS %v: framing %d; want %d", tt.network, tt.dialer != nil && tt.dialer.TLSConfig != nil, w.f.framing, tt.want)
		}
	}
}
