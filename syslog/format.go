package syslog

import (
	"strconv"
	"time"
)

// frame formats the messages of one Writer. Its fields are fixed before
// Dial returns.
type frame struct {
	format   Format
	short    bool // RFC3164 on unix sockets: time.Stamp and no hostname
	framing  framing
	hostname string
	tag      string // the tag, or RFC 5424's APP-NAME
	procid   string
	msgid    string // RFC 5424's MSGID, "-" if none
}

// framing is how messages are delimited, resolved for a network.
type framing uint8

const (
	frameDatagram framing = iota // one message per datagram
	frameNewline                 // a newline after each message
	frameOctets                  // "LEN SP MSG"
)

// rfc5424Time is RFC 3339 with the six fraction digits RFC 5424 allows.
const rfc5424Time = "2006-01-02T15:04:05.000000Z07:00"

// escapedNewline replaces a newline inside a message under newline
// framing; rsyslog records a newline it receives the same way.
const escapedNewline = "#012"

// lenWidth is the room kept before a message for its octet count: the
// decimal digits of any length and a space.
const lenWidth = 21

// appendFrame appends one framed message to buf. It returns the extended
// buffer and, within it, the frame, which may start after len(buf) by up
// to lenWidth bytes. A zero t is RFC 5424's NILVALUE; RFC3164 has no
// place for it and sends the current time instead. sd is the structured
// data of an RFC 5424 message, already escaped for the framing, or nil
// for none.
func appendFrame[M string | []byte](buf []byte, f *frame, pri Priority, t time.Time, sd []byte, msg M) (all, fr []byte) {
	start := len(buf)
	// log/syslog's datagrams keep the message as it is; elsewhere a
	// trailing newline ends the line and is not part of the message.
	datagram3164 := f.framing == frameDatagram && f.format == RFC3164
	if !datagram3164 {
		msg = trimNewline(msg)
	}
	if f.framing == frameOctets {
		buf = append(buf, make([]byte, lenWidth)...)
	}
	body := len(buf)
	buf = append(buf, '<')
	buf = strconv.AppendInt(buf, int64(pri), 10)
	buf = append(buf, '>')
	if f.format == RFC5424 {
		buf = append(buf, "1 "...)
		if t.IsZero() {
			buf = append(buf, '-')
		} else {
			buf = t.AppendFormat(buf, rfc5424Time)
		}
		buf = append(buf, ' ')
		buf = append(buf, f.hostname...)
		buf = append(buf, ' ')
		buf = append(buf, f.tag...)
		buf = append(buf, ' ')
		buf = append(buf, f.procid...)
		buf = append(buf, ' ')
		buf = append(buf, f.msgid...)
		buf = append(buf, ' ')
		if sd == nil {
			buf = append(buf, '-')
		} else {
			buf = append(buf, sd...)
		}
		if len(msg) > 0 {
			buf = append(buf, ' ')
		}
	} else {
		if t.IsZero() {
			t = time.Now()
		}
		if f.short {
			buf = t.AppendFormat(buf, time.Stamp)
		} else {
			buf = t.AppendFormat(buf, time.RFC3339)
			buf = append(buf, ' ')
			buf = append(buf, f.hostname...)
		}
		buf = append(buf, ' ')
		buf = append(buf, f.tag...)
		buf = append(buf, '[')
		buf = append(buf, f.procid...)
		buf = append(buf, "]: "...)
	}

	switch f.framing {
	case frameDatagram:
		buf = append(buf, msg...)
		if datagram3164 && !hasNewline(msg) {
			buf = append(buf, '\n')
		}
	case frameNewline:
		buf = appendEscaped(buf, msg)
		buf = append(buf, '\n')
	case frameOctets:
		buf = append(buf, msg...)
		var digits [lenWidth]byte
		n := strconv.AppendInt(digits[:0], int64(len(buf)-body), 10)
		off := body - 1 - len(n)
		copy(buf[off:], n)
		buf[body-1] = ' '
		return buf, buf[off:]
	}
	return buf, buf[start:]
}

func hasNewline[M string | []byte](m M) bool {
	return len(m) > 0 && m[len(m)-1] == '\n'
}

// trimNewline drops one trailing newline, the end of a line rather than
// part of the message.
func trimNewline[M string | []byte](m M) M {
	if hasNewline(m) {
		return m[:len(m)-1]
	}
	return m
}

// appendEscaped appends m with each newline replaced by escapedNewline.
func appendEscaped[M string | []byte](buf []byte, m M) []byte {
	last := 0
	for i := 0; i < len(m); i++ {
		if m[i] == '\n' {
			buf = append(buf, m[last:i]...)
			buf = append(buf, escapedNewline...)
			last = i + 1
		}
	}
	return append(buf, m[last:]...)
}
