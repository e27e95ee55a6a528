package syslog

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// captureConn is a net.Conn that keeps what is written to it.
type captureConn struct {
	net.Conn // nil: only Write and Close are used
	writes   [][]byte
}

func (c *captureConn) Write(b []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(b))
	return len(b), nil
}

func (c *captureConn) Close() error { return nil }

// fuzzModes are the format and transport combinations a fuzz input picks
// from: the network decides the framing (tcp: stream, udp: datagrams,
// unixgram: RFC3164's short form).
var fuzzModes = []struct {
	format  Format
	framing Framing
	network string
}{
	{RFC3164, NewlineFraming, "tcp"},
	{RFC3164, OctetCounting, "tcp"},
	{RFC3164, DefaultFraming, "udp"},
	{RFC3164, DefaultFraming, "unixgram"},
	{RFC5424, NewlineFraming, "tcp"},
	{RFC5424, OctetCounting, "tcp"},
	{RFC5424, DefaultFraming, "udp"},
}

// fuzzWriter returns a Writer configured as DialConfig would, writing to a
// captureConn, or the error DialConfig would return.
func fuzzWriter(mode int, tag, hostname string) (*Writer, *captureConn, error) {
	m := fuzzModes[mode%len(fuzzModes)]
	w := &Writer{priority: LOG_LOCAL5 | LOG_NOTICE, network: m.network}
	if err := w.configure(&Config{Format: m.format, Framing: m.framing, Hostname: hostname}, tag); err != nil {
		return nil, nil, err
	}
	if hostname == "" {
		w.f.hostname = "fuzz.example"
	}
	c := new(captureConn)
	w.conn.Store(&netConn{c})
	return w, c, nil
}

// oneFrame checks that b holds exactly one well-formed frame for w and
// returns it parsed.
func oneFrame(t *testing.T, w *Writer, b []byte) message {
	t.Helper()
	body := b
	switch w.f.framing {
	case frameNewline, frameOctets:
		frames, err := splitFrames(b, w.f.framing == frameOctets)
		if err != nil || len(frames) != 1 {
			t.Fatalf("%q: %d frames, %v; want one", b, len(frames), err)
		}
		body = frames[0]
	case frameDatagram:
		if w.f.format == RFC3164 {
			if !bytes.HasSuffix(b, []byte("\n")) {
				t.Fatalf("%q: an RFC 3164 datagram without log/syslog's newline", b)
			}
			body = b[:len(b)-1]
		}
	}
	m, err := parseMessage(body, w.f.format, w.f.short)
	if err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return m
}

// wantMsg is what a message m must become in w's frames.
func wantMsg(w *Writer, m string) string {
	m = strings.TrimSuffix(m, "\n")
	if w.f.framing == frameNewline {
		m = strings.ReplaceAll(m, "\n", "#012")
	}
	return m
}

// checkRefused checks that a Config or tag error is for a field the parser
// would refuse too.
func checkRefused(t *testing.T, mode int, tag, hostname string, err error) {
	t.Helper()
	m := fuzzModes[mode%len(fuzzModes)]
	valid := func(s string, max int, ok func(byte) bool) bool {
		if s == "" || (max > 0 && len(s) > max) {
			return false
		}
		for i := range len(s) {
			if !ok(s[i]) {
				return false
			}
		}
		return true
	}
	tagOK := tag == "" || (m.format == RFC3164 && valid(tag, 0, rfcTagChar)) || (m.format == RFC5424 && valid(tag, 48, rfcPrintASCII))
	hostOK := hostname == "" || valid(hostname, 255, rfcPrintASCII)
	if tagOK && hostOK {
		t.Fatalf("tag %q and hostname %q are valid, but: %v", tag, hostname, err)
	}
}

// FuzzWriter writes any message with any tag and hostname through Write
// and a Handler record with any attribute, in every format and framing:
// each must be one well-formed frame that carries them, or the Writer
// must refuse the tag or hostname at dial time because the header cannot
// hold it.
func FuzzWriter(f *testing.F) {
	f.Add(uint8(0), "hello", "app", "", "k", "v")
	f.Add(uint8(1), "multi\nline\n", "app", "host", "key", `a "quoted" \ value ] here`)
	f.Add(uint8(2), "", "a:b", "", "", "")
	f.Add(uint8(3), "x", "", "h o s t", "g.k", "\xff\xfe")
	f.Add(uint8(4), "\n\n", "app[1]", "h", "=", "\n")
	f.Add(uint8(5), "msg=1 \"x\"", "tag", "h", strings.Repeat("k", 40), "")
	f.Add(uint8(6), " lead and trail ", "-", "-", " ", " ")
	f.Fuzz(func(t *testing.T, mode uint8, msg, tag, hostname, key, value string) {
		w, c, err := fuzzWriter(int(mode), tag, hostname)
		if err != nil {
			checkRefused(t, int(mode), tag, hostname, err)
			return
		}
		if _, err := w.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		m := oneFrame(t, w, c.writes[0])
		if m.pri != LOG_LOCAL5|LOG_NOTICE || m.tag != w.f.tag || m.procid != w.f.procid {
			t.Fatalf("%q: PRI %d, tag %q, PROCID %q; want %d, %q, %q", c.writes[0], m.pri, m.tag, m.procid, LOG_LOCAL5|LOG_NOTICE, w.f.tag, w.f.procid)
		}
		if !w.f.short && m.hostname != w.f.hostname {
			t.Fatalf("%q: hostname %q; want %q", c.writes[0], m.hostname, w.f.hostname)
		}
		if want := wantMsg(w, msg); m.msg != want {
			t.Fatalf("%q: MSG %q; want %q", c.writes[0], m.msg, want)
		}

		// The same through a Handler, with one attribute.
		h := NewHandler(w, nil)
		r := slog.NewRecord(time.Now(), slog.LevelWarn, msg, 0)
		r.AddAttrs(slog.String(key, value))
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		m = oneFrame(t, w, c.writes[1])
		if m.pri != LOG_LOCAL5|LOG_WARNING {
			t.Fatalf("%q: PRI %d; want %d", c.writes[1], m.pri, LOG_LOCAL5|LOG_WARNING)
		}
		if w.f.format == RFC3164 {
			text := m.msg
			gotMsg, attrs, err := parseText(text)
			if err != nil {
				t.Fatalf("%q: %v", c.writes[1], err)
			}
			if gotMsg != msg || len(attrs) != 1 || attrs[0] != (sdParam{key, value}) {
				t.Fatalf("%q: message %q, attributes %q; want %q, [{%q %q}]", c.writes[1], gotMsg, attrs, msg, key, value)
			}
			return
		}
		if want := wantMsg(w, msg); m.msg != want {
			t.Fatalf("%q: MSG %q; want %q", c.writes[1], m.msg, want)
		}
		var v strings.Builder
		for _, r := range value { // each invalid byte is a RuneError
			if r == '\n' && w.f.framing == frameNewline {
				v.WriteString("#012")
			} else {
				v.WriteRune(r)
			}
		}
		wantValue := v.String()
		if len(m.sd) != 1 || m.sd[0].id != defaultSDID || len(m.sd[0].params) != 1 || m.sd[0].params[0].value != wantValue {
			t.Fatalf("%q: structured data %+v; want one %s element with one parameter %q", c.writes[1], m.sd, defaultSDID, wantValue)
		}
		if name, want := m.sd[0].params[0].name, sdName(key); name != want {
			t.Fatalf("%q: PARAM-NAME %q for key %q; want %q", c.writes[1], name, key, want)
		}
	})
}

// FuzzHandler logs through WithGroup and With, with any group, keys and
// values, and checks that the one frame written carries each attribute
// under its group path: RFC 5424 parameters named as the Handler
// documents, or RFC 3164 key=value text read back exactly.
func FuzzHandler(f *testing.F) {
	f.Add(uint8(4), "req", "id", "r-42", "resp", int64(200), "done")
	f.Add(uint8(0), "a b", "k=v", `"q"`, "", int64(-1), "")
	f.Add(uint8(5), "", "", "", "g]", int64(0), "multi\nline")
	f.Fuzz(func(t *testing.T, mode uint8, group, key, value, group2 string, n int64, msg string) {
		w, c, err := fuzzWriter(int(mode), "app", "host")
		if err != nil {
			t.Fatal(err)
		}
		var h slog.Handler = NewHandler(w, nil)
		h = h.WithGroup(group).WithAttrs([]slog.Attr{slog.String(key, value)})
		r := slog.NewRecord(time.Now(), slog.LevelInfo, msg, 0)
		r.AddAttrs(slog.Group(group2, slog.Int64("n", n)))
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		m := oneFrame(t, w, c.writes[0])
		prefix := ""
		if group != "" {
			prefix = group + "."
		}
		inner := prefix + "n"
		if group2 != "" {
			inner = prefix + group2 + ".n"
		}
		want := []sdParam{{prefix + key, value}, {inner, strconv.FormatInt(n, 10)}}
		if w.f.format == RFC3164 {
			gotMsg, attrs, err := parseText(m.msg)
			if err != nil {
				t.Fatalf("%q: %v", c.writes[0], err)
			}
			if gotMsg != msg || len(attrs) != 2 || attrs[0] != want[0] || attrs[1] != want[1] {
				t.Fatalf("%q: message %q, attributes %q; want %q, %q", c.writes[0], gotMsg, attrs, msg, want)
			}
			return
		}
		if len(m.sd) != 1 || len(m.sd[0].params) != 2 {
			t.Fatalf("%q: structured data %+v; want one element with two parameters", c.writes[0], m.sd)
		}
		for i, p := range m.sd[0].params {
			if name := sdName(want[i].name); p.name != name {
				t.Fatalf("%q: PARAM-NAME %q; want %q", c.writes[0], p.name, name)
			}
		}
		if got := m.sd[0].params[1].value; got != want[1].value {
			t.Fatalf("%q: PARAM-VALUE %q; want %q", c.writes[0], got, want[1].value)
		}
	})
}

// sdName is name as a Handler writes it in RFC 5424: cut to 32 bytes,
// with what an SD-NAME cannot hold replaced by '_'; "_" if empty.
func sdName(name string) string {
	b := []byte(name[:min(len(name), 32)])
	for i, c := range b {
		if !rfcSDName(c) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}
