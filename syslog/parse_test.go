package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is a strict parser of what a Writer sends, written from the
// RFCs rather than from the formatter, for the tests to check frames
// against.

// The characters each field may hold, from the RFCs.
func rfcPrintASCII(c byte) bool { return 33 <= c && c <= 126 } // PRINTUSASCII
func rfcTagChar(c byte) bool    { return rfcPrintASCII(c) && !strings.ContainsRune(":[]", rune(c)) }
func rfcSDName(c byte) bool     { return rfcPrintASCII(c) && !strings.ContainsRune(`= ]"`, rune(c)) }

// message is one parsed syslog message.
type message struct {
	pri      Priority
	time     string // as sent; "-" for RFC 5424's NILVALUE
	hostname string // "" in the short RFC 3164 form
	tag      string // the tag, or APP-NAME
	procid   string
	msgid    string
	sd       []sdElement // nil for "-"
	msg      string
}

type sdElement struct {
	id     string
	params []sdParam
}

type sdParam struct{ name, value string }

// splitFrames splits a stream into frame bodies: newline framing, where
// no frame holds a newline, or octet counting.
func splitFrames(b []byte, octets bool) ([][]byte, error) {
	var frames [][]byte
	for len(b) > 0 {
		if !octets {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return frames, fmt.Errorf("%q: no newline at the end", b)
			}
			frames = append(frames, b[:i])
			b = b[i+1:]
			continue
		}
		i := bytes.IndexByte(b, ' ')
		if i <= 0 || i > 20 {
			return frames, fmt.Errorf("%q: no MSG-LEN", b[:min(len(b), 40)])
		}
		n, err := strconv.Atoi(string(b[:i]))
		if err != nil || n <= 0 || b[0] == '0' {
			return frames, fmt.Errorf("MSG-LEN %q is not a positive decimal number without leading zeros", b[:i])
		}
		b = b[i+1:]
		if n > len(b) {
			return frames, fmt.Errorf("MSG-LEN %d, but %d bytes follow", n, len(b))
		}
		frames = append(frames, b[:n])
		b = b[n:]
	}
	return frames, nil
}

var (
	rfc3339Sec  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`)
	rfc5424TS   = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)`)
	rfc3164TS   = regexp.MustCompile(`^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3]\d \d\d:\d\d:\d\d`)
	errNoHeader = errors.New("no header")
)

// parseMessage parses one frame body in format; short is log/syslog's
// RFC 3164 form for unix sockets.
func parseMessage(b []byte, format Format, short bool) (message, error) {
	var m message
	p := &parser{b: b}
	pri, err := p.pri()
	if err != nil {
		return m, err
	}
	m.pri = pri
	if format == RFC5424 {
		if !p.skip("1 ") {
			return m, errors.New("no VERSION 1")
		}
		if p.skip("-") {
			m.time = "-"
		} else if m.time = p.match(rfc5424TS); m.time == "" {
			return m, fmt.Errorf("bad TIMESTAMP at %q", p.rest())
		}
		for _, f := range []struct {
			dst *string
			max int
		}{{&m.hostname, 255}, {&m.tag, 48}, {&m.procid, 128}, {&m.msgid, 32}} {
			if !p.skip(" ") {
				return m, fmt.Errorf("no space before %q", p.rest())
			}
			if *f.dst = p.field(rfcPrintASCII); *f.dst == "" || len(*f.dst) > f.max {
				return m, fmt.Errorf("header field %q: empty or longer than %d", *f.dst, f.max)
			}
		}
		if !p.skip(" ") {
			return m, errors.New("no space before STRUCTURED-DATA")
		}
		if !p.skip("-") {
			if m.sd, err = p.structuredData(); err != nil {
				return m, err
			}
		}
		if p.done() {
			return m, nil
		}
		if !p.skip(" ") {
			return m, fmt.Errorf("no space before MSG at %q", p.rest())
		}
		m.msg = p.rest()
		return m, nil
	}
	if short {
		if m.time = p.match(rfc3164TS); m.time == "" {
			return m, fmt.Errorf("bad RFC 3164 TIMESTAMP at %q", p.rest())
		}
	} else {
		if m.time = p.match(rfc3339Sec); m.time == "" {
			return m, fmt.Errorf("bad RFC 3339 TIMESTAMP at %q", p.rest())
		}
		if !p.skip(" ") {
			return m, errNoHeader
		}
		if m.hostname = p.field(rfcPrintASCII); m.hostname == "" || len(m.hostname) > 255 {
			return m, fmt.Errorf("bad HOSTNAME %q", m.hostname)
		}
	}
	if !p.skip(" ") {
		return m, errNoHeader
	}
	if m.tag = p.field(rfcTagChar); m.tag == "" {
		return m, fmt.Errorf("no TAG at %q", p.rest())
	}
	if !p.skip("[") {
		return m, fmt.Errorf("no [ after TAG at %q", p.rest())
	}
	if m.procid = p.field(func(c byte) bool { return '0' <= c && c <= '9' }); m.procid == "" {
		return m, errors.New("no PID")
	}
	if !p.skip("]: ") {
		return m, fmt.Errorf("no ]: after PID at %q", p.rest())
	}
	m.msg = p.rest()
	return m, nil
}

type parser struct {
	b []byte
	i int
}

func (p *parser) rest() string { return string(p.b[p.i:]) }
func (p *parser) done() bool   { return p.i == len(p.b) }

func (p *parser) skip(s string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.i += len(s)
		return true
	}
	return false
}

func (p *parser) match(re *regexp.Regexp) string {
	loc := re.FindIndex(p.b[p.i:])
	if loc == nil {
		return ""
	}
	s := string(p.b[p.i : p.i+loc[1]])
	p.i += loc[1]
	return s
}

func (p *parser) field(ok func(byte) bool) string {
	j := p.i
	for j < len(p.b) && ok(p.b[j]) {
		j++
	}
	s := string(p.b[p.i:j])
	p.i = j
	return s
}

// pri parses "<PRI>": 1 to 3 digits without leading zeros, at most 191.
func (p *parser) pri() (Priority, error) {
	if !p.skip("<") {
		return 0, errors.New("no <")
	}
	d := p.field(func(c byte) bool { return '0' <= c && c <= '9' })
	n, err := strconv.Atoi(d)
	if err != nil || len(d) > 3 || (len(d) > 1 && d[0] == '0') || n > 191 {
		return 0, fmt.Errorf("bad PRI %q", d)
	}
	if !p.skip(">") {
		return 0, errors.New("no > after PRI")
	}
	return Priority(n), nil
}

// structuredData parses one or more SD-ELEMENTs.
func (p *parser) structuredData() ([]sdElement, error) {
	var sd []sdElement
	ids := make(map[string]bool)
	for p.skip("[") {
		var e sdElement
		if e.id = p.field(rfcSDName); e.id == "" || len(e.id) > 32 {
			return nil, fmt.Errorf("bad SD-ID %q", e.id)
		}
		if ids[e.id] {
			return nil, fmt.Errorf("SD-ID %q twice", e.id)
		}
		ids[e.id] = true
		for p.skip(" ") {
			var prm sdParam
			if prm.name = p.field(rfcSDName); prm.name == "" || len(prm.name) > 32 {
				return nil, fmt.Errorf("bad PARAM-NAME %q", prm.name)
			}
			if !p.skip(`="`) {
				return nil, fmt.Errorf("no =\" after PARAM-NAME %q", prm.name)
			}
			var v []byte
			for {
				if p.done() {
					return nil, errors.New("PARAM-VALUE not closed")
				}
				c := p.b[p.i]
				p.i++
				if c == '"' {
					break
				}
				if c == ']' {
					return nil, errors.New("unescaped ] in PARAM-VALUE")
				}
				if c == '\\' {
					if p.done() || !strings.ContainsRune(`"\]`, rune(p.b[p.i])) {
						return nil, errors.New(`a backslash in PARAM-VALUE escapes none of " \ ]`)
					}
					c = p.b[p.i]
					p.i++
				}
				v = append(v, c)
			}
			if !utf8.Valid(v) {
				return nil, fmt.Errorf("PARAM-VALUE %q is not UTF-8", v)
			}
			prm.value = string(v)
			e.params = append(e.params, prm)
		}
		if !p.skip("]") {
			return nil, fmt.Errorf("SD-ELEMENT not closed at %q", p.rest())
		}
		sd = append(sd, e)
	}
	if sd == nil {
		return nil, fmt.Errorf("bad STRUCTURED-DATA at %q", p.rest())
	}
	return sd, nil
}

// parseText parses the RFC 3164 body a Handler writes: the message, then
// key=value attributes (see Handler).
func parseText(s string) (msg string, attrs []sdParam, err error) {
	if strings.HasPrefix(s, `"`) {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", nil, fmt.Errorf("message %q: %v", s, err)
		}
		msg, _ = strconv.Unquote(q)
		s = s[len(q):]
	} else {
		// The message holds no '=' and no '"': attributes begin at the
		// first word that holds one.
		i := strings.IndexAny(s, `="`)
		if i < 0 {
			return s, nil, nil
		}
		j := strings.LastIndexByte(s[:i], ' ')
		if j < 0 {
			return "", nil, fmt.Errorf("%q: an attribute without a message", s)
		}
		msg, s = s[:j], s[j:]
		if msg == "" {
			return "", nil, fmt.Errorf("unquoted message %q", msg)
		}
	}
	for s != "" {
		if !strings.HasPrefix(s, " ") {
			return "", nil, fmt.Errorf("no space before attribute %q", s)
		}
		s = s[1:]
		var a sdParam
		if a.name, s, err = textToken(s); err != nil {
			return "", nil, err
		}
		if !strings.HasPrefix(s, "=") {
			return "", nil, fmt.Errorf("no = after key %q", a.name)
		}
		if a.value, s, err = textToken(s[1:]); err != nil {
			return "", nil, err
		}
		attrs = append(attrs, a)
	}
	return msg, attrs, nil
}

// textToken reads a key or value: quoted, or up to a space or '='.
func textToken(s string) (tok, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", "", fmt.Errorf("%q: %v", s, err)
		}
		tok, _ = strconv.Unquote(q)
		return tok, s[len(q):], nil
	}
	i := strings.IndexAny(s, ` ="`)
	if i < 0 {
		i = len(s)
	}
	if i == 0 {
		return "", "", fmt.Errorf("empty token at %q", s)
	}
	return s[:i], s[i:], nil
}
