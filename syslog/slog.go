package syslog

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// A Handler is a log/slog Handler that writes each record as one message
// through a Writer, with the Writer's facility, tag and format.
//
// A record's level becomes the severity:
//
//	level                       severity
//	below Info (Debug = -4)     LOG_DEBUG
//	Info (0), Info+1            LOG_INFO
//	Info+2, Info+3              LOG_NOTICE
//	Warn (4) to Warn+3          LOG_WARNING
//	Error (8) to Error+3        LOG_ERR
//	Error+4 to Error+7          LOG_CRIT
//	Error+8 to Error+11         LOG_ALERT
//	Error+12 and above          LOG_EMERG
//
// The record's attributes, with those of WithAttrs, follow the open groups
// of WithGroup and of group attributes, joined with '.', so that
//
//	l.WithGroup("req").Info("done", slog.Group("resp", "status", 200))
//
// has the attribute "req.resp.status". An empty attribute, an empty group and a group with
// no attributes are left out, and a group with an empty key is inlined,
// as log/slog requires.
//
// With RFC5424 the message is MSG, and the attributes are the parameters
// of one structured-data element, [slog@32473 req.resp.status="200"] (see
// HandlerOptions.SDID), or "-" if there are none. A parameter name is cut
// to 32 bytes, RFC 5424's limit, and a character it cannot hold (space,
// '=', ']', '"', anything but printable US-ASCII) is replaced by '_'. A
// value is escaped as RFC 5424 says ('"', '\' and ']' after a backslash),
// invalid UTF-8 is replaced by U+FFFD, and under newline framing a
// newline is sent as "#012". The TIMESTAMP is the record's time, or "-"
// if it is zero.
//
// With RFC3164 the message is followed by the attributes as key=value
// text: msg key=value req.resp.status=200. The message is written as it
// is, unless it is empty, begins or ends with a space, or holds '=', '"'
// or a character that is not printable; then it is quoted as a Go string
// literal, as are keys and values that are empty or hold a space, '=',
// '"' or a character that is not printable. So the message holds no '='
// unless it is quoted, and the attributes begin at the first word that
// holds one. The timestamp is the record's time, or the current time if
// it is zero, since RFC 3164 has no empty timestamp.
//
// Each Handle call writes one message, as a Write on the Writer does:
// Handle returns the Writer's error. Close or Flush the Writer to wait for
// the messages at exit.
type Handler struct {
	w      *Writer
	level  slog.Leveler
	sdid   string
	pre    []byte // the attributes of WithAttrs, formatted
	groups string // the open groups, each followed by '.'
}

// HandlerOptions are options for a Handler. A zero HandlerOptions, like a
// nil one, has the defaults.
type HandlerOptions struct {
	// Level is the minimum level of the records the Handler writes. If
	// nil, it is slog.LevelInfo.
	Level slog.Leveler

	// SDID is the SD-ID of the structured-data element that holds the
	// attributes with RFC5424: 1 to 32 printable US-ASCII characters
	// other than space, '=', ']' and '"'; RFC 5424 reserves names without '@'
	// for IANA. If empty, it is "slog@32473"; 32473 is the private
	// enterprise number set aside for examples (RFC 5612), so set your
	// own where it matters.
	SDID string
}

// defaultSDID is the SD-ID of a Handler's attributes unless
// HandlerOptions.SDID is set.
const defaultSDID = "slog@32473"

// NewHandler returns a Handler that writes to w. It panics if
// opts.SDID is not a valid SD-ID.
func NewHandler(w *Writer, opts *HandlerOptions) *Handler {
	h := &Handler{w: w, level: slog.LevelInfo, sdid: defaultSDID}
	if opts != nil {
		if opts.Level != nil {
			h.level = opts.Level
		}
		if opts.SDID != "" {
			if err := checkField("HandlerOptions.SDID", opts.SDID, maxSDName, sdNameChar); err != nil {
				panic(err)
			}
			h.sdid = opts.SDID
		}
	}
	return h
}

// Enabled reports whether l is at least the Handler's level.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// Handle writes r as one message.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	f := &h.w.f
	pri := h.w.priority&facilityMask | severity(r.Level)
	ab := getBuf()
	defer putBuf(ab)
	a := *ab
	if f.format == RFC5424 {
		// [SD-ID params], or none.
		a = append(a, '[')
		a = append(a, h.sdid...)
		a = h.appendAttrs(a, r)
		if len(a) == 1+len(h.sdid) {
			a = a[:0]
		} else {
			a = append(a, ']')
		}
	} else {
		// message key=value...
		a = appendText(a, r.Message, true)
		a = h.appendAttrs(a, r)
	}
	*ab = a
	bp := getBuf()
	defer putBuf(bp)
	var fr []byte
	if f.format == RFC5424 {
		var sd []byte
		if len(a) > 0 {
			sd = a
		}
		*bp, fr = appendFrame(*bp, f, pri, r.Time, sd, r.Message)
	} else {
		*bp, fr = appendFrame(*bp, f, pri, r.Time, nil, a)
	}
	return h.w.write(fr)
}

// appendAttrs appends the attributes of WithAttrs and of r.
func (h *Handler) appendAttrs(a []byte, r slog.Record) []byte {
	a = append(a, h.pre...)
	r.Attrs(func(at slog.Attr) bool {
		a = h.appendAttr(a, h.groups, at)
		return true
	})
	return a
}

// WithAttrs returns a Handler whose records also have attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.pre = slices.Clip(h.pre)
	for _, at := range attrs {
		h2.pre = h2.appendAttr(h2.pre, h.groups, at)
	}
	return &h2
}

// WithGroup returns a Handler that puts the attributes that follow in
// the group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.groups = h.groups + name + "."
	return &h2
}

// severity maps a level as the Handler's documentation says.
func severity(l slog.Level) Priority {
	switch {
	case l < slog.LevelInfo:
		return LOG_DEBUG
	case l < slog.LevelInfo+2:
		return LOG_INFO
	case l < slog.LevelWarn:
		return LOG_NOTICE
	case l < slog.LevelError:
		return LOG_WARNING
	case l < slog.LevelError+4:
		return LOG_ERR
	case l < slog.LevelError+8:
		return LOG_CRIT
	case l < slog.LevelError+12:
		return LOG_ALERT
	}
	return LOG_EMERG
}

// appendAttr appends at, under the groups in prefix, as parameters or
// key=value text.
func (h *Handler) appendAttr(a []byte, prefix string, at slog.Attr) []byte {
	at.Value = at.Value.Resolve()
	if at.Key == "" && at.Value.Equal(slog.Value{}) {
		return a
	}
	if at.Value.Kind() == slog.KindGroup {
		attrs := at.Value.Group()
		if len(attrs) == 0 {
			return a
		}
		if at.Key != "" {
			prefix += at.Key + "."
		}
		for _, g := range attrs {
			a = h.appendAttr(a, prefix, g)
		}
		return a
	}
	var scratch [64]byte
	v := appendValue(scratch[:0], at.Value)
	a = append(a, ' ')
	if h.w.f.format == RFC5424 {
		a = appendSDName(a, prefix, at.Key)
		a = append(a, '=', '"')
		a = appendSDValue(a, v, h.w.f.framing == frameNewline)
		return append(a, '"')
	}
	if prefix == "" {
		a = appendText(a, at.Key, false)
	} else {
		a = appendText(a, prefix+at.Key, false)
	}
	a = append(a, '=')
	return appendText(a, v, false)
}

// appendValue appends v as text.
func appendValue(a []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return append(a, v.String()...)
	case slog.KindInt64:
		return strconv.AppendInt(a, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(a, v.Uint64(), 10)
	case slog.KindFloat64:
		return strconv.AppendFloat(a, v.Float64(), 'g', -1, 64)
	case slog.KindBool:
		return strconv.AppendBool(a, v.Bool())
	case slog.KindDuration:
		return append(a, v.Duration().String()...)
	case slog.KindTime:
		return v.Time().AppendFormat(a, time.RFC3339Nano)
	}
	if err, ok := v.Any().(error); ok {
		return append(a, err.Error()...)
	}
	return fmt.Append(a, v.Any())
}

// appendSDName appends prefix+key as an SD-NAME: cut to 32 bytes, with
// each byte an SD-NAME cannot hold replaced by '_', or "_" if empty.
func appendSDName(a []byte, prefix, key string) []byte {
	n := 0
	for _, s := range [2]string{prefix, key} {
		for i := 0; i < len(s) && n < maxSDName; i++ {
			c := s[i]
			if !sdNameChar(c) {
				c = '_'
			}
			a = append(a, c)
			n++
		}
	}
	if n == 0 {
		a = append(a, '_')
	}
	return a
}

// appendSDValue appends v as a PARAM-VALUE: '"', '\' and ']' escaped with
// a backslash, invalid UTF-8 replaced by U+FFFD, and a newline sent as
// escapedNewline if newline is set.
func appendSDValue(a, v []byte, newline bool) []byte {
	for len(v) > 0 {
		r, size := utf8.DecodeRune(v)
		switch {
		case r == utf8.RuneError && size == 1:
			a = utf8.AppendRune(a, utf8.RuneError)
		case r == '"' || r == '\\' || r == ']':
			a = append(a, '\\', byte(r))
		case r == '\n' && newline:
			a = append(a, escapedNewline...)
		default:
			a = append(a, v[:size]...)
		}
		v = v[size:]
	}
	return a
}

// appendText appends s for RFC 3164 key=value text, quoted as a Go string
// literal if it must be (see Handler). A message (msg set) may hold
// spaces between its words.
func appendText[S string | []byte](a []byte, s S, msg bool) []byte {
	if !needsQuote(s, msg) {
		return append(a, s...)
	}
	return strconv.AppendQuote(a, string(s))
}

func needsQuote[S string | []byte](s S, msg bool) bool {
	if len(s) == 0 {
		return true
	}
	if msg && (s[0] == ' ' || s[len(s)-1] == ' ') {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == '=' || c == '"' || c < ' ' || c == 0x7f || (c == ' ' && !msg) {
				return true
			}
			i++
			continue
		}
		var r rune
		var size int
		switch s := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(s[i:])
		case []byte:
			r, size = utf8.DecodeRune(s[i:])
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}
