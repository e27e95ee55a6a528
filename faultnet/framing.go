package faultnet

import (
	"bytes"
	"fmt"
	"strconv"
)

// Framing says how a byte stream is split into messages. A value other
// than those below is taken as Newline.
type Framing int

const (
	// Newline frames end with a '\n' byte. It is the default.
	Newline Framing = iota
	// OctetCounting frames are "LEN SP MSG" as in RFC 6587, section
	// 3.4.1 (syslog over TCP): a decimal length of one to nine digits
	// without leading zeros, a space and exactly that many bytes of
	// message. As in common syslog receivers, a frame that does not
	// start with such a length and a space is taken to end at the next
	// '\n' instead.
	OctetCounting
)

// String returns "newline" or "octet-counting".
func (f Framing) String() string {
	switch f {
	case Newline:
		return "newline"
	case OctetCounting:
		return "octet-counting"
	}
	return fmt.Sprintf("Framing(%d)", int(f))
}

const seqToken = "seq="

// AppendMessage appends one frame to dst and returns the extended slice.
// The frame carries the token "seq=<seq>" and is padded with a space and
// dots so that it is exactly size bytes long, framing included.
//
// A frame cannot be shorter than its token and framing; a smaller size,
// zero included, gives the shortest frame, such as "seq=7\n". With
// OctetCounting a few sizes cannot be reached because the length prefix
// would have to change width (for example 12 or 103); the frame is then
// one byte longer. AppendMessage panics if seq is negative.
func AppendMessage(dst []byte, f Framing, seq, size int) []byte {
	if seq < 0 {
		panic("faultnet: AppendMessage with negative seq")
	}
	body := len(seqToken) + decimalLen(seq)
	if f != OctetCounting {
		dst = appendBody(dst, seq, max(size-1, body))
		return append(dst, '\n')
	}
	for total := max(size, body+2); ; total++ {
		for d := 1; d <= 20; d++ {
			n := total - 1 - d
			if n >= body && decimalLen(n) == d {
				dst = strconv.AppendInt(dst, int64(n), 10)
				dst = append(dst, ' ')
				return appendBody(dst, seq, n)
			}
		}
	}
}

// appendBody appends "seq=N", padded to n bytes.
func appendBody(dst []byte, seq, n int) []byte {
	start := len(dst)
	dst = append(dst, seqToken...)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	if pad := n - (len(dst) - start); pad > 0 {
		dst = append(dst, ' ')
		for range pad - 1 {
			dst = append(dst, '.')
		}
	}
	return dst
}

func decimalLen(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// ParseSeq returns the sequence number carried by a frame: the decimal
// number after the first "seq=" that is followed by a digit. It reports
// false if there is none or it does not fit in an int.
func ParseSeq(frame []byte) (seq int, ok bool) {
	seq, _, ok = parseSeq(frame)
	return seq, ok
}

// parseSeq is ParseSeq that also says whether the digits were followed
// by another byte, which tells whether a truncated frame holds the whole
// number.
func parseSeq(b []byte) (seq int, terminated, ok bool) {
	for {
		i := bytes.Index(b, []byte(seqToken))
		if i < 0 {
			return 0, false, false
		}
		b = b[i+len(seqToken):]
		n, j := 0, 0
		for ; j < len(b) && '0' <= b[j] && b[j] <= '9'; j++ {
			d := int(b[j] - '0')
			if n > (maxInt-d)/10 {
				return 0, false, false // n*10 + d would overflow
			}
			n = n*10 + d
		}
		if j > 0 {
			return n, j < len(b), true
		}
	}
}

const maxInt = int(^uint(0) >> 1)

// next finds the first complete frame in b. It returns the message (without
// framing) and the number of bytes the frame takes, or n == 0 if b holds no
// complete frame.
func (f Framing) next(b []byte) (msg []byte, n int) {
	if f == OctetCounting && len(b) > 0 && '1' <= b[0] && b[0] <= '9' {
		size, i := 0, 0
		for ; i < len(b) && i < 9 && '0' <= b[i] && b[i] <= '9'; i++ {
			size = size*10 + int(b[i]-'0')
		}
		switch {
		case i == len(b):
			return nil, 0 // the length prefix is not complete yet
		case b[i] == ' ':
			if len(b) < i+1+size {
				return nil, 0
			}
			return b[i+1 : i+1+size], i + 1 + size
		}
		// Not a length prefix: the frame ends at a newline.
	}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0
	}
	return b[:i], i + 1
}
