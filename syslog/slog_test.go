package syslog

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"
	"time"
)

// TestSlogtest runs testing/slogtest on a Handler in each format, reading
// back each message with the strict parser: RFC 5424's structured data,
// and RFC 3164's key=value text, with groups split at the dots.
func TestSlogtest(t *testing.T) {
	for _, mode := range []int{0, 1, 4, 5} { // RFC3164 and RFC5424, newline framing and octet counting
		m := fuzzModes[mode]
		t.Run(fmtMode(mode), func(t *testing.T) {
			var w *Writer
			var c *captureConn
			slogtest.Run(t, func(t *testing.T) slog.Handler {
				var err error
				w, c, err = fuzzWriter(mode, "app", "host")
				if err != nil {
					t.Fatal(err)
				}
				return NewHandler(w, nil)
			}, func(t *testing.T) map[string]any {
				if len(c.writes) != 1 {
					t.Fatalf("%d messages written; want 1", len(c.writes))
				}
				msg := oneFrame(t, w, c.writes[0])
				got := map[string]any{slog.LevelKey: msg.pri & severityMask}
				if msg.time != "-" {
					got[slog.TimeKey] = msg.time
				}
				attrs := msg.sd
				if m.format == RFC3164 {
					text, params, err := parseText(msg.msg)
					if err != nil {
						t.Fatal(err)
					}
					got[slog.MessageKey] = text
					attrs = []sdElement{{defaultSDID, params}}
					// RFC 3164 has no empty timestamp: a record without a
					// time is sent with the time of sending, which slogtest
					// cannot expect.
					if strings.HasSuffix(t.Name(), "/zero-time") {
						ts, err := time.Parse(time.RFC3339, msg.time)
						if err != nil || time.Since(ts) > time.Minute || time.Until(ts) > time.Second {
							t.Errorf("timestamp %q for a zero Record.Time; want the time of sending", msg.time)
						}
						delete(got, slog.TimeKey)
					}
				} else {
					got[slog.MessageKey] = msg.msg
				}
				for _, e := range attrs {
					if e.id != defaultSDID {
						t.Errorf("SD-ID %q; want %q", e.id, defaultSDID)
					}
					for _, p := range e.params {
						// Groups are joined with dots.
						path := strings.Split(p.name, ".")
						g := got
						for _, k := range path[:len(path)-1] {
							sub, ok := g[k].(map[string]any)
							if !ok {
								sub = make(map[string]any)
								g[k] = sub
							}
							g = sub
						}
						g[path[len(path)-1]] = p.value
					}
				}
				return got
			})
		})
	}
}

func formatName(f Format) string {
	if f == RFC5424 {
		return "RFC5424"
	}
	return "RFC3164"
}

func fmtMode(mode int) string {
	m := fuzzModes[mode]
	return formatName(m.format) + "/" + map[Framing]string{DefaultFraming: "default", NewlineFraming: "newline", OctetCounting: "octets"}[m.framing] + "/" + m.network
}

// TestSeverity checks the level to severity table of Handler, and that a
// record's severity goes out with the Writer's facility.
func TestSeverity(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  Priority
	}{
		{slog.LevelDebug - 4, LOG_DEBUG},
		{slog.LevelDebug, LOG_DEBUG},
		{slog.LevelInfo - 1, LOG_DEBUG},
		{slog.LevelInfo, LOG_INFO},
		{slog.LevelInfo + 1, LOG_INFO},
		{slog.LevelInfo + 2, LOG_NOTICE},
		{slog.LevelInfo + 3, LOG_NOTICE},
		{slog.LevelWarn, LOG_WARNING},
		{slog.LevelWarn + 3, LOG_WARNING},
		{slog.LevelError, LOG_ERR},
		{slog.LevelError + 3, LOG_ERR},
		{slog.LevelError + 4, LOG_CRIT},
		{slog.LevelError + 8, LOG_ALERT},
		{slog.LevelError + 12, LOG_EMERG},
		{slog.LevelError + 100, LOG_EMERG},
	}
	w, c, err := fuzzWriter(4, "app", "host")
	if err != nil {
		t.Fatal(err)
	}
	l := slog.New(NewHandler(w, &HandlerOptions{Level: slog.Level(-100)}))
	for i, tt := range tests {
		l.Log(context.Background(), tt.level, "m")
		if got := oneFrame(t, w, c.writes[i]).pri; got != LOG_LOCAL5|tt.want {
			t.Errorf("level %v: PRI %d; want %d", tt.level, got, LOG_LOCAL5|tt.want)
		}
	}
}

// TestHandlerOptions checks Level and SDID.
func TestHandlerOptions(t *testing.T) {
	w, c, err := fuzzWriter(4, "app", "host")
	if err != nil {
		t.Fatal(err)
	}
	l := slog.New(NewHandler(w, &HandlerOptions{Level: slog.LevelWarn, SDID: "x@12345"}))
	l.Info("dropped", "k", 1)
	l.Warn("kept", "k", 2)
	if len(c.writes) != 1 {
		t.Fatalf("%d messages written; want 1 (Info is below the level)", len(c.writes))
	}
	m := oneFrame(t, w, c.writes[0])
	if len(m.sd) != 1 || m.sd[0].id != "x@12345" || m.msg != "kept" {
		t.Errorf("%q: SD %+v, MSG %q; want one x@12345 element and kept", c.writes[0], m.sd, m.msg)
	}
	for _, id := range []string{"a b", "a=b", `a"b`, "a]b", strings.Repeat("x", 33), "ü"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewHandler with SDID %q did not panic", id)
				}
			}()
			NewHandler(w, &HandlerOptions{SDID: id})
		}()
	}
}
