package relp

import (
	"errors"
	"strconv"
)

// Limits of the frame syntax, from the RELP specification and librelp.
const (
	// maxTxnr is the largest transaction number: a session ends before
	// it (Session.Limit).
	maxTxnr = 999_999_999
	// maxDigits is the most digits a TXNR or DATALEN may have.
	maxDigits = 9
	// maxCmdLen is the most letters a COMMAND may have.
	maxCmdLen = 32
	// maxDataLen is the largest DATALEN the syntax can express.
	maxDataLen = 999_999_999
	// defaultMaxData is the largest DATALEN a parser accepts unless told
	// otherwise: librelp's default maximum (RELP_DFLT_MAX_DATA_SIZE),
	// which is also what its client accepts from a server.
	defaultMaxData = 128 << 10
)

// Commands and their fixed texts.
const (
	cmdOpen        = "open"
	cmdSyslog      = "syslog"
	cmdClose       = "close"
	cmdRsp         = "rsp"
	cmdServerClose = "serverclose"
)

// A frame is one RELP frame: TXNR SP COMMAND SP DATALEN [SP DATA] LF.
type frame struct {
	txnr int    // 0 for a hint, 1 to maxTxnr for a command and its response
	cmd  string // 1 to 32 ASCII letters
	data []byte // exactly DATALEN bytes; nil when DATALEN is 0
}

// String returns the frame as it is on the wire, its data quoted and cut
// after 64 bytes, for messages and tests.
func (f frame) String() string {
	s := strconv.Itoa(f.txnr) + " " + f.cmd + " " + strconv.Itoa(len(f.data))
	if len(f.data) > 64 {
		return s + " " + strconv.Quote(string(f.data[:64])) + "..."
	}
	if len(f.data) > 0 {
		s += " " + strconv.Quote(string(f.data))
	}
	return s
}

// isServerClose reports whether f is the "serverclose" hint, with which
// a server announces that it closes the session. The specification sends
// hints with TXNR 0; librelp sends "0 serverclose 0".
func (f frame) isServerClose() bool { return f.txnr == 0 && f.cmd == cmdServerClose }

// appendFrame appends one frame to dst and returns the extended slice. It
// allocates only when dst has too little capacity.
//
// The arguments are the caller's own, not a peer's: appendFrame panics if
// txnr is outside 0..999,999,999, cmd is not 1 to 32 ASCII letters, or
// data is longer than 999,999,999 bytes.
func appendFrame(dst []byte, txnr int, cmd string, data []byte) []byte {
	if txnr < 0 || txnr > maxTxnr {
		panic("relp: TXNR " + strconv.Itoa(txnr) + " out of range")
	}
	if !validCommand(cmd) {
		panic("relp: invalid command " + strconv.Quote(cmd))
	}
	if len(data) > maxDataLen {
		panic("relp: data of " + strconv.Itoa(len(data)) + " bytes exceeds the maximum DATALEN")
	}
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, cmd...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, data...)
	}
	return append(dst, '\n')
}

// validCommand reports whether cmd is a syntactically valid COMMAND.
func validCommand(cmd string) bool {
	if len(cmd) == 0 || len(cmd) > maxCmdLen {
		return false
	}
	for i := 0; i < len(cmd); i++ {
		if !isAlpha(cmd[i]) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Errors from the parsers. The error of a parser wraps one of them; test
// with errors.Is.
var (
	// errMalformed is wrapped by the error for input that breaks the
	// syntax of a frame, a response or an offer.
	errMalformed = errors.New("relp: malformed")
	// errTooLarge is wrapped by the error for a frame whose DATALEN is
	// above the parser's maximum.
	errTooLarge = errors.New("relp: frame too large")
)

// A frameError describes the first byte of a stream that is not a valid
// frame: where it is, in which field, and what was wrong.
type frameError struct {
	off    int64  // offset of the offending byte in the stream
	field  string // "TXNR", "COMMAND", "DATALEN" or "trailer"
	reason string
	kind   error // errMalformed or errTooLarge
}

func (e *frameError) Error() string {
	what := "malformed frame"
	if e.kind == errTooLarge {
		what = "frame too large"
	}
	return "relp: " + what + ": " + e.field + " at byte " + strconv.FormatInt(e.off, 10) + ": " + e.reason
}

func (e *frameError) Unwrap() error { return e.kind }

// Parser states: the field being read.
const (
	inTxnr = iota
	inCmd
	inDataLen
	inData
	inTrailer
)

// A parser splits a stream of frames, received in chunks of any size,
// into frames. It checks the syntax of every byte as it arrives and
// buffers at most the data of one frame, never more than its maximum.
//
// After an error the parser is broken: every later call returns the
// same error. The specification says to close the connection then.
//
// The zero parser accepts frames of up to defaultMaxData bytes of data.
type parser struct {
	// max is the largest DATALEN accepted; 0 means defaultMaxData.
	max int

	state int
	n     int // digits or letters read in the current field
	txnr  int
	dlen  int
	cmd   [maxCmdLen]byte
	clen  int    // letters in cmd
	buf   []byte // the data of the current frame when it spans chunks
	off   int64  // bytes consumed before the current chunk
	err   error
}

// newParser returns a parser that rejects frames with more than maxData
// bytes of data. A maxData of 0 or less means defaultMaxData.
func newParser(maxData int) *parser {
	return &parser{max: maxData}
}

func (p *parser) maxData() int {
	if p.max <= 0 {
		return defaultMaxData
	}
	return min(p.max, maxDataLen)
}

// parse consumes input from b until it has completed a frame or used up
// b. It returns the number of bytes consumed and, if it completed a
// frame, that frame with ok true. Call it again with b[n:] for the frames
// that follow.
//
// The frame's data aliases b, or the parser's buffer when the data spans
// chunks: it is valid until the next call to parse and as long as b is
// not modified. Copy it to keep it.
func (p *parser) parse(b []byte) (n int, f frame, ok bool, err error) {
	if p.err != nil {
		return 0, frame{}, false, p.err
	}
	i := 0
	for i < len(b) {
		c := b[i]
		switch p.state {
		case inTxnr:
			switch {
			case isDigit(c):
				if p.n == maxDigits {
					return i, frame{}, false, p.fail(i, "TXNR", "more than 9 digits", errMalformed)
				}
				p.txnr = p.txnr*10 + int(c-'0')
				p.n++
			case c == ' ' && p.n > 0:
				p.state, p.n = inCmd, 0
			case p.n == 0:
				return i, frame{}, false, p.fail(i, "TXNR", "want a digit, got "+quoteByte(c), errMalformed)
			default:
				return i, frame{}, false, p.fail(i, "TXNR", "want a digit or SP, got "+quoteByte(c), errMalformed)
			}
			i++
		case inCmd:
			switch {
			case isAlpha(c):
				if p.n == maxCmdLen {
					return i, frame{}, false, p.fail(i, "COMMAND", "more than 32 letters", errMalformed)
				}
				p.cmd[p.n] = c
				p.n++
			case c == ' ' && p.n > 0:
				p.state, p.clen, p.n = inDataLen, p.n, 0
			case p.n == 0:
				return i, frame{}, false, p.fail(i, "COMMAND", "want a letter, got "+quoteByte(c), errMalformed)
			default:
				return i, frame{}, false, p.fail(i, "COMMAND", "want a letter or SP, got "+quoteByte(c), errMalformed)
			}
			i++
		case inDataLen:
			if isDigit(c) {
				if p.n == maxDigits {
					return i, frame{}, false, p.fail(i, "DATALEN", "more than 9 digits", errMalformed)
				}
				p.dlen = p.dlen*10 + int(c-'0')
				p.n++
				if limit := p.maxData(); p.dlen > limit {
					// More digits can only make it larger: refuse now,
					// before the peer sends the rest.
					return i, frame{}, false, p.fail(i, "DATALEN", "at least "+strconv.Itoa(p.dlen)+" bytes, above the maximum of "+strconv.Itoa(limit), errTooLarge)
				}
				i++
				continue
			}
			if p.n == 0 {
				return i, frame{}, false, p.fail(i, "DATALEN", "want a digit, got "+quoteByte(c), errMalformed)
			}
			if p.dlen == 0 {
				// No data: the trailer follows at once.
				if c != '\n' {
					return i, frame{}, false, p.fail(i, "trailer", "want LF after DATALEN 0, got "+quoteByte(c), errMalformed)
				}
				return p.done(i+1, nil)
			}
			if c != ' ' {
				return i, frame{}, false, p.fail(i, "DATALEN", "want a digit or SP, got "+quoteByte(c), errMalformed)
			}
			i++
			if len(b)-i >= p.dlen {
				// All the data is in this chunk: no copy.
				data := b[i : i+p.dlen : i+p.dlen]
				i += p.dlen
				if i == len(b) {
					// The trailer is in the next chunk: keep the data.
					p.buf = append(p.grow(), data...)
					p.state = inTrailer
					continue
				}
				if b[i] != '\n' {
					return i, frame{}, false, p.fail(i, "trailer", "want LF after "+strconv.Itoa(p.dlen)+" bytes of DATA, got "+quoteByte(b[i]), errMalformed)
				}
				return p.done(i+1, data)
			}
			p.buf = p.grow()
			p.state = inData
		case inData:
			k := min(p.dlen-len(p.buf), len(b)-i)
			p.buf = append(p.buf, b[i:i+k]...)
			i += k
			if len(p.buf) == p.dlen {
				p.state = inTrailer
			}
		case inTrailer:
			if c != '\n' {
				return i, frame{}, false, p.fail(i, "trailer", "want LF after "+strconv.Itoa(p.dlen)+" bytes of DATA, got "+quoteByte(c), errMalformed)
			}
			return p.done(i+1, p.buf)
		}
	}
	p.off += int64(i)
	return i, frame{}, false, nil
}

// grow returns the parser's buffer, empty, with room for the current
// frame's data. It allocates at most the frame's DATALEN, which the
// maximum bounds.
func (p *parser) grow() []byte {
	if cap(p.buf) < p.dlen {
		p.buf = make([]byte, 0, p.dlen)
	}
	return p.buf[:0]
}

// done completes a frame that ends n bytes into the current chunk.
func (p *parser) done(n int, data []byte) (int, frame, bool, error) {
	f := frame{txnr: p.txnr, cmd: command(p.cmd[:p.clen]), data: data}
	if len(data) == 0 {
		f.data = nil
	}
	p.off += int64(n)
	p.state, p.n, p.txnr, p.clen, p.dlen = inTxnr, 0, 0, 0, 0
	return n, f, true, nil
}

// fail breaks the parser with an error about the byte at i in the
// current chunk.
func (p *parser) fail(i int, field, reason string, kind error) error {
	p.err = &frameError{off: p.off + int64(i), field: field, reason: reason, kind: kind}
	return p.err
}

// command returns b as a string, without allocating for the commands
// that RELP defines.
func command(b []byte) string {
	switch string(b) {
	case cmdRsp:
		return cmdRsp
	case cmdServerClose:
		return cmdServerClose
	case cmdOpen:
		return cmdOpen
	case cmdSyslog:
		return cmdSyslog
	case cmdClose:
		return cmdClose
	}
	return string(b)
}

func quoteByte(c byte) string {
	if c < 0x80 {
		return strconv.QuoteRune(rune(c))
	}
	return "byte 0x" + strconv.FormatUint(uint64(c), 16)
}
