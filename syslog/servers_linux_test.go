//go:build linux

package syslog

import (
	"fmt"
	stdsyslog "log/syslog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/short"
	"github.com/reconn/reconn/internal/syslogtest"
	"github.com/reconn/reconn/relp"
)

// These tests stream to real servers, rsyslogd and syslog-ng, and restart
// them twice with SIGTERM in the middle of each stream. What a server's
// kernel acknowledged and the server never read when it stopped is lost
// to any TCP client; syslogtest measures that set exactly. A Writer must
// lose nothing beyond it at full speed, and nothing at all, with no write
// error, at a pace the server keeps up with: there the server is stopped
// once it has read what its kernel acknowledged (syslogtest.Stream.Drain),
// as a server that keeps up would have, however loaded the machine.
// log/syslog runs the same stream beside it, and what it lost is printed.
//
// Each message carries its sequence number, and its severity cycles
// through the eight, each sent by the Writer method of that name; every
// line the server wrote must show the facility, severity, tag and message
// that were sent, as the server parsed them.

const (
	streamTotal    = 60000
	streamRestarts = 2
	steadyRate     = 20000 // messages per second, which both servers keep up with here
	streamFacility = LOG_LOCAL3
	streamTag      = "reconntest"
)

// streamText is the message of sequence number seq.
func streamText(seq int) string {
	return "seq=" + strconv.Itoa(seq) + " " + strings.Repeat(".", 80)
}

// severityOf is the severity message seq is sent with.
func severityOf(seq int) Priority { return Priority(seq % 8) }

// testDialer shortens the backoff so that a test redials soon after the
// server is back, and lets Close wait longer than by default for a server
// slowed down by a loaded machine to take everything.
func testDialer() *reconn.Dialer {
	return &reconn.Dialer{
		MinBackoff:    2 * time.Millisecond,
		MaxBackoff:    20 * time.Millisecond,
		RedialTimeout: time.Minute,
		FlushTimeout:  time.Minute,
	}
}

// parsed is one line of a server's output: "facility|severity|tag|msg".
type parsed struct {
	facility, severity int
	tag, msg           string
}

// A serverMode is a server with a template for its output, and what the
// Writer sends it.
type serverMode struct {
	name  string
	start func(t *testing.T) *syslogtest.Server
	parse func(line string) (parsed, bool)
	cfg   Config
	// msgPrefix is what the server puts before the message: rsyslog keeps
	// the space after "tag[pid]:" in an RFC 3164 message.
	msgPrefix string
}

const (
	rsyslog3164Template = "%syslogfacility%|%syslogseverity%|%programname%|%msg%\n"
	rsyslog5424Template = "%syslogfacility%|%syslogseverity%|%app-name%|%msg%\n"
	syslogNGTemplate    = "$FACILITY|$LEVEL|$PROGRAM|$MSG\n"
)

func parseNumeric(line string) (parsed, bool) {
	f := strings.SplitN(line, "|", 4)
	if len(f) != 4 {
		return parsed{}, false
	}
	fac, err1 := strconv.Atoi(f[0])
	sev, err2 := strconv.Atoi(f[1])
	return parsed{fac, sev, f[2], f[3]}, err1 == nil && err2 == nil
}

// syslog-ng's names of facilities and severities.
var (
	ngFacilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}
	ngLevels     = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}
)

func parseNames(line string) (parsed, bool) {
	f := strings.SplitN(line, "|", 4)
	if len(f) != 4 {
		return parsed{}, false
	}
	p := parsed{facility: -1, severity: -1, tag: f[2], msg: f[3]}
	for i, n := range ngFacilities {
		if n == f[0] {
			p.facility = i
		}
	}
	for i, n := range ngLevels {
		if n == f[1] {
			p.severity = i
		}
	}
	return p, p.facility >= 0 && p.severity >= 0
}

func rsyslogd(format Format, framing Framing) serverMode {
	m := serverMode{
		name:  fmt.Sprintf("rsyslogd/%s/%s", formatName(format), framingName(framing)),
		parse: parseNumeric,
		cfg:   Config{Format: format, Framing: framing},
	}
	tmpl := rsyslog5424Template
	if format == RFC3164 {
		tmpl, m.msgPrefix = rsyslog3164Template, " "
	}
	m.start = func(t *testing.T) *syslogtest.Server {
		return syslogtest.StartRsyslogd(t, syslogtest.Rsyslogd{Template: tmpl})
	}
	return m
}

func syslogNG(format Format) serverMode {
	flags := ""
	if format == RFC5424 {
		flags = "syslog-protocol"
	}
	return serverMode{
		name:  fmt.Sprintf("syslog-ng/%s/newline", formatName(format)),
		parse: parseNames,
		cfg:   Config{Format: format, Framing: NewlineFraming},
		start: func(t *testing.T) *syslogtest.Server {
			return syslogtest.StartSyslogNG(t, syslogtest.SyslogNG{Template: syslogNGTemplate, Flags: flags})
		},
	}
}

func framingName(f Framing) string {
	if f == OctetCounting {
		return "octets"
	}
	return "newline"
}

// allModes reports whether every combination runs, not only those that
// cover each format, framing and server once.
var allModes = os.Getenv("RECONN_SYSLOG_ALL") != ""

// TestRsyslogd streams to rsyslogd's imtcp, restarted twice, at full
// speed and at a steady pace, next to log/syslog.
func TestRsyslogd(t *testing.T) {
	modes := []serverMode{rsyslogd(RFC3164, NewlineFraming), rsyslogd(RFC5424, OctetCounting)}
	if allModes {
		modes = append(modes, rsyslogd(RFC3164, OctetCounting), rsyslogd(RFC5424, NewlineFraming))
	} else {
		t.Log("RFC3164 with octet counting and RFC5424 with newline framing run with RECONN_SYSLOG_ALL=1")
	}
	testServer(t, modes)
}

// TestSyslogNG streams to syslog-ng's network() source, restarted twice,
// at full speed and at a steady pace, next to log/syslog.
func TestSyslogNG(t *testing.T) {
	testServer(t, []serverMode{syslogNG(RFC3164), syslogNG(RFC5424)})
}

func testServer(t *testing.T, modes []serverMode) {
	short.Skip(t, "streams 60,000 messages to a real server, restarted, in each mode")
	var stdLost int
	t.Run("log/syslog", func(t *testing.T) {
		srv := modes[0].start(t)
		w, err := stdsyslog.Dial("tcp", srv.Addr(), stdsyslog.Priority(streamFacility|LOG_INFO), streamTag)
		if err != nil {
			t.Fatal(err)
		}
		res := stream(t, srv, w, 0)
		stdLost = res.Lost + res.Unread
		t.Logf("%s, log/syslog, full speed: %v", modes[0].name, res)
		t.Logf("log/syslog lost %d of %d messages (%d of them unread by the server, which no TCP client can save)", res.Lost+res.Unread, streamTotal, res.Unread)
	})
	for _, m := range modes {
		for _, rate := range []int{0, steadyRate} {
			pace := paceName(rate)
			t.Run(m.name+"/"+pace, func(t *testing.T) {
				srv := m.start(t)
				cfg := m.cfg
				cfg.Dialer = testDialer()
				res := streamWriter(t, srv, m, cfg, rate)
				t.Logf("%s, %s: %v", m.name, pace, res)
				if res.Lost != 0 || res.Duplicated != 0 || res.WriteErrors != 0 || res.CloseErr != nil {
					t.Errorf("lost %d (first: %v), duplicated %d, %d write errors, Close() = %v; want none",
						res.Lost, res.FirstLost, res.Duplicated, res.WriteErrors, res.CloseErr)
				}
				if rate > 0 && res.Unread != 0 {
					t.Errorf("%d messages unread by the server at a pace it keeps up with; want 0", res.Unread)
				}
				if rate == 0 && stdLost > 0 {
					t.Logf("side by side at full speed: log/syslog lost %d, this package %d, all of them unread by the server", stdLost, res.Unread)
				}
			})
		}
	}
}

// TestRsyslogdTLS streams RFC 5424 over TLS (RFC 5425), framed by octet
// counting, the default over TLS, to rsyslogd's imtcp with the gtls
// driver, restarted twice. Under TLS the messages left unread cannot be
// told apart, only their bytes: at full speed, what was lost must fit in
// them and in the one record per restart that rsyslogd may have read in
// part; at a pace rsyslogd keeps up with, nothing may be lost.
//
// Delivery is at least once: a message may arrive twice, but only if a
// redial re-sent it, so duplicates are bounded by what was re-sent.
func TestRsyslogdTLS(t *testing.T) {
	short.Skip(t, "streams 60,000 messages to a real server, restarted, in each mode")
	certs := syslogtest.NewCerts(t)
	m := serverMode{
		name:  "rsyslogd/TLS/RFC5424/octets",
		parse: parseNumeric,
		cfg:   Config{Format: RFC5424},
		start: func(t *testing.T) *syslogtest.Server {
			return syslogtest.StartRsyslogd(t, syslogtest.Rsyslogd{Template: rsyslog5424Template, TLS: certs})
		},
	}
	// The shortest frame, and the most a TLS record may carry.
	const minFrame, maxRecord = 100, 16 << 10
	for _, rate := range []int{0, steadyRate} {
		t.Run(paceName(rate), func(t *testing.T) {
			srv := m.start(t)
			cfg := m.cfg
			cfg.Dialer = testDialer()
			cfg.Dialer.TLSConfig = certs.Client
			var resent atomic.Int64
			cfg.Dialer.OnRedial = func(e reconn.RedialEvent) { resent.Add(int64(e.Replayed)) }
			res := streamWriter(t, srv, m, cfg, rate)
			t.Logf("%s, %s: %v; re-sent %d", m.name, paceName(rate), res, resent.Load())
			if res.WriteErrors != 0 || res.CloseErr != nil {
				t.Errorf("%d write errors, Close() = %v; want none", res.WriteErrors, res.CloseErr)
			}
			bound := 0
			if rate == 0 {
				bound = int((res.UnreadBytes+streamRestarts*maxRecord)/minFrame) + 2*streamRestarts
			}
			if res.Lost > bound {
				t.Errorf("lost %d (first: %v); want at most %d, what %d unread bytes and a record per restart can hold", res.Lost, res.FirstLost, bound, res.UnreadBytes)
			}
			if int64(res.Duplicated) > resent.Load() {
				t.Errorf("duplicated %d; want at most the %d messages re-sent", res.Duplicated, resent.Load())
			}
		})
	}
}

func paceName(rate int) string {
	if rate == 0 {
		return "full_speed"
	}
	return fmt.Sprintf("%d_per_second", rate)
}

// streamWriter runs the stream through a Writer dialed with cfg, and
// checks each line the server wrote.
func streamWriter(t *testing.T, srv *syslogtest.Server, m serverMode, cfg Config, rate int) syslogtest.Result {
	t.Helper()
	var mu sync.Mutex
	var redials []string
	logRedials := func(d *reconn.Dialer) {
		given := d.OnRedial
		d.OnRedial = func(e reconn.RedialEvent) {
			if given != nil {
				given(e)
			}
			mu.Lock()
			redials = append(redials, fmt.Sprintf("re-sent %d after %v", e.Replayed, e.Cause))
			mu.Unlock()
		}
	}
	if cfg.RELP != nil {
		r := *cfg.RELP
		logRedials(&r.Dialer)
		cfg.RELP = &r
	} else {
		var d reconn.Dialer
		if cfg.Dialer != nil {
			d = *cfg.Dialer
		}
		logRedials(&d)
		cfg.Dialer = &d
	}
	w, err := DialConfig("tcp", srv.Addr(), streamFacility|LOG_INFO, streamTag, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := stream(t, srv, w, rate)
	checkLines(t, srv, m)
	mu.Lock()
	t.Logf("redials: %q", redials)
	mu.Unlock()
	return res
}

// stream runs the stream through w, log/syslog's Writer or this
// package's, each message sent by the method of its severity. At a
// steady pace the server is stopped once it has read what its kernel
// took, as a server that keeps up would have.
func stream(t *testing.T, srv *syslogtest.Server, w logWriter, rate int) syslogtest.Result {
	t.Helper()
	methods := []func(string) error{w.Emerg, w.Alert, w.Crit, w.Err, w.Warning, w.Notice, w.Info, w.Debug}
	return srv.Run(t, syslogtest.Stream{
		Total:    streamTotal,
		Restarts: streamRestarts,
		Rate:     rate,
		Drain:    rate > 0,
		Write:    func(seq int) error { return methods[severityOf(seq)](streamText(seq)) },
		Close:    w.Close,
	})
}

// checkLines checks that the server parsed every message as it was sent.
func checkLines(t *testing.T, srv *syslogtest.Server, m serverMode) {
	t.Helper()
	lines, err := srv.Lines()
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, l := range lines {
		p, ok := m.parse(l)
		seq, err := strconv.Atoi(strings.TrimPrefix(strings.Fields(p.msg + " x")[0], "seq="))
		want := parsed{int(streamFacility >> 3), int(severityOf(seq)), streamTag, m.msgPrefix + streamText(seq)}
		if !ok || err != nil || p != want {
			if bad++; bad <= 5 {
				t.Errorf("the server wrote %q; want %d|%d|%s|%s", l, want.facility, want.severity, want.tag, want.msg)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d lines misparsed", bad, len(lines))
	}
}

// TestRsyslogdRELP streams through RELP to rsyslogd's imrelp, restarted
// twice at full speed: rsyslogd answers every message, and what it had
// not answered when it stopped is sent again, so nothing may be lost,
// not even what it left unread. Duplicates are bounded by what was sent
// again.
func TestRsyslogdRELP(t *testing.T) {
	short.Skip(t, "streams 60,000 messages to a real server, restarted")
	m := serverMode{
		name:  "rsyslogd/RELP/RFC5424",
		parse: parseNumeric,
		cfg:   Config{Format: RFC5424},
		start: func(t *testing.T) *syslogtest.Server {
			return syslogtest.StartRsyslogd(t, syslogtest.Rsyslogd{Template: rsyslog5424Template, RELP: true})
		},
	}
	srv := m.start(t)
	cfg := m.cfg
	cfg.RELP = &relp.Dialer{Dialer: *testDialer()}
	var resent atomic.Int64
	cfg.RELP.OnRedial = func(e reconn.RedialEvent) { resent.Add(int64(e.Replayed)) }
	res := streamWriter(t, srv, m, cfg, 0)
	t.Logf("%s, full speed: %v; re-sent %d", m.name, res, resent.Load())
	if res.Received != streamTotal || res.WriteErrors != 0 || res.CloseErr != nil {
		t.Errorf("received %d of %d (first lost: %v), %d write errors, Close() = %v; want all, none, nil",
			res.Received, streamTotal, res.FirstLost, res.WriteErrors, res.CloseErr)
	}
	if int64(res.Duplicated) > resent.Load() {
		t.Errorf("duplicated %d; want at most the %d messages re-sent", res.Duplicated, resent.Load())
	}
}
