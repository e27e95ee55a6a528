package forward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The small part of MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md)
// that Forward needs: an encoder for requests and records, and a strict,
// bounded decoder for the server's answers.

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

// appendStrHeader appends the header of a str of n bytes.
func appendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
}

func appendStr[S string | []byte](b []byte, s S) []byte {
	return append(appendStrHeader(b, len(s)), s...)
}

func appendBin(b []byte, p []byte) []byte {
	switch n := len(p); {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, p...)
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

// appendEventTime appends t as Forward's EventTime: the extension of type
// 0, 8 bytes, seconds then nanoseconds, each a big-endian uint32.
func appendEventTime(b []byte, t time.Time) []byte {
	b = append(b, 0xd7, 0x00)
	b = binary.BigEndian.AppendUint32(b, uint32(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// appendValue appends v, one of the types WriteRecord takes.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxRecordDepth {
		return b, errors.New("forward: record nested too deep")
	}
	switch v := v.(type) {
	case nil:
		return append(b, 0xc0), nil
	case bool:
		if v {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case string:
		return appendStr(b, v), nil
	case []byte:
		return appendStr(b, v), nil
	case int:
		return appendInt(b, int64(v)), nil
	case int8:
		return appendInt(b, int64(v)), nil
	case int16:
		return appendInt(b, int64(v)), nil
	case int32:
		return appendInt(b, int64(v)), nil
	case int64:
		return appendInt(b, v), nil
	case uint:
		return appendUint(b, uint64(v)), nil
	case uint8:
		return appendUint(b, uint64(v)), nil
	case uint16:
		return appendUint(b, uint64(v)), nil
	case uint32:
		return appendUint(b, uint64(v)), nil
	case uint64:
		return appendUint(b, v), nil
	case float32:
		return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(v)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(v)), nil
	case time.Time:
		return appendEventTime(b, v), nil
	case time.Duration:
		return appendInt(b, int64(v)), nil
	case error:
		return appendStr(b, v.Error()), nil
	case fmt.Stringer:
		return appendStr(b, v.String()), nil
	case map[string]any:
		b = appendMapHeader(b, len(v))
		for k, e := range v {
			b = appendStr(b, k)
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]string:
		b = appendMapHeader(b, len(v))
		for k, e := range v {
			b = appendStr(appendStr(b, k), e)
		}
		return b, nil
	case []any:
		b = appendArrayHeader(b, len(v))
		for _, e := range v {
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case []string:
		b = appendArrayHeader(b, len(v))
		for _, e := range v {
			b = appendStr(b, e)
		}
		return b, nil
	}
	return b, fmt.Errorf("forward: a record value of type %T has no MessagePack form here", v)
}

// maxRecordDepth is how deep WriteRecord's maps and slices may nest.
const maxRecordDepth = 32

// Decoding. The server sends only small maps ({"ack": id}, and the
// handshake's arrays); the decoder takes one value at a time from what was
// read, and fails on anything that is not well formed, deeper than
// maxDepth, or longer than what is buffered allows: it never allocates
// what a length claims.

// errShort: the value is not complete yet; read more.
var errShort = errors.New("forward: incomplete MessagePack value")

// errMalformed wraps every error about what the server sent.
var errMalformed = errors.New("forward: malformed answer from the server")

const maxDepth = 8

// kind is the kind of a decoded value.
type kind int

const (
	kNil kind = iota
	kBool
	kInt
	kFloat
	kStr
	kBin
	kArray
	kMap
	kExt
)

// token is one decoded head: for str and bin, the bytes (aliasing the
// input); for array and map, the count of elements or pairs that follow.
type token struct {
	kind kind
	n    int // array or map length
	b    []byte
	i    int64
}

// head decodes the head of the value at the start of b, and returns it
// and its length (for str, bin and ext, with their bytes).
func head(b []byte) (token, int, error) { return headMax(b, maxAnswer) }

// headMax is head with limit as the longest string or collection taken.
func headMax(b []byte, limit int) (token, int, error) {
	if len(b) == 0 {
		return token{}, 0, errShort
	}
	c := b[0]
	need := func(n int) error {
		if len(b) < n {
			return errShort
		}
		return nil
	}
	sized := func(k kind, hdr, n int) (token, int, error) {
		if n < 0 || n > len(b)-hdr {
			return token{}, 0, errShort
		}
		return token{kind: k, b: b[hdr : hdr+n]}, hdr + n, nil
	}
	count := func(k kind, hdr, n int) (token, int, error) {
		// Each element takes a byte at least: a count beyond what
		// can ever fit an answer is an error, not a wait.
		if n > limit {
			return token{}, 0, fmt.Errorf("%w: a collection of %d elements", errMalformed, n)
		}
		return token{kind: k, n: n}, hdr, nil
	}
	switch {
	case c <= 0x7f:
		return token{kind: kInt, i: int64(c)}, 1, nil
	case c >= 0xe0:
		return token{kind: kInt, i: int64(int8(c))}, 1, nil
	case c&0xf0 == 0x80:
		return count(kMap, 1, int(c&0x0f))
	case c&0xf0 == 0x90:
		return count(kArray, 1, int(c&0x0f))
	case c&0xe0 == 0xa0:
		return sized(kStr, 1, int(c&0x1f))
	}
	switch c {
	case 0xc0:
		return token{kind: kNil}, 1, nil
	case 0xc2, 0xc3:
		return token{kind: kBool, i: int64(c & 1)}, 1, nil
	case 0xc4, 0xd9:
		if err := need(2); err != nil {
			return token{}, 0, err
		}
		k := kBin
		if c == 0xd9 {
			k = kStr
		}
		return sized(k, 2, int(b[1]))
	case 0xc5, 0xda:
		if err := need(3); err != nil {
			return token{}, 0, err
		}
		k := kBin
		if c == 0xda {
			k = kStr
		}
		return sized(k, 3, int(binary.BigEndian.Uint16(b[1:])))
	case 0xc6, 0xdb:
		if err := need(5); err != nil {
			return token{}, 0, err
		}
		n := binary.BigEndian.Uint32(b[1:])
		if uint64(n) > uint64(limit) {
			return token{}, 0, fmt.Errorf("%w: a string of %d bytes", errMalformed, n)
		}
		k := kBin
		if c == 0xdb {
			k = kStr
		}
		return sized(k, 5, int(n))
	case 0xcc, 0xd0:
		if err := need(2); err != nil {
			return token{}, 0, err
		}
		if c == 0xcc {
			return token{kind: kInt, i: int64(b[1])}, 2, nil
		}
		return token{kind: kInt, i: int64(int8(b[1]))}, 2, nil
	case 0xcd, 0xd1:
		if err := need(3); err != nil {
			return token{}, 0, err
		}
		v := binary.BigEndian.Uint16(b[1:])
		if c == 0xcd {
			return token{kind: kInt, i: int64(v)}, 3, nil
		}
		return token{kind: kInt, i: int64(int16(v))}, 3, nil
	case 0xce, 0xd2, 0xca:
		if err := need(5); err != nil {
			return token{}, 0, err
		}
		v := binary.BigEndian.Uint32(b[1:])
		switch c {
		case 0xce:
			return token{kind: kInt, i: int64(v)}, 5, nil
		case 0xd2:
			return token{kind: kInt, i: int64(int32(v))}, 5, nil
		}
		return token{kind: kFloat}, 5, nil
	case 0xcf, 0xd3, 0xcb:
		if err := need(9); err != nil {
			return token{}, 0, err
		}
		v := binary.BigEndian.Uint64(b[1:])
		if c == 0xcb {
			return token{kind: kFloat}, 9, nil
		}
		return token{kind: kInt, i: int64(v)}, 9, nil
	case 0xdc, 0xde:
		if err := need(3); err != nil {
			return token{}, 0, err
		}
		k := kArray
		if c == 0xde {
			k = kMap
		}
		return count(k, 3, int(binary.BigEndian.Uint16(b[1:])))
	case 0xdd, 0xdf:
		if err := need(5); err != nil {
			return token{}, 0, err
		}
		k := kArray
		if c == 0xdf {
			k = kMap
		}
		n := binary.BigEndian.Uint32(b[1:])
		if uint64(n) > uint64(limit) {
			return token{}, 0, fmt.Errorf("%w: a collection of %d elements", errMalformed, n)
		}
		return count(k, 5, int(n))
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n := 1 << (c - 0xd4)
		if err := need(2 + n); err != nil {
			return token{}, 0, err
		}
		return token{kind: kExt, b: b[2 : 2+n]}, 2 + n, nil
	case 0xc7, 0xc8, 0xc9:
		hl := 1 << (c - 0xc7) // 1, 2 or 4 bytes of length
		if err := need(2 + hl); err != nil {
			return token{}, 0, err
		}
		var n uint64
		for _, x := range b[1 : 1+hl] {
			n = n<<8 | uint64(x)
		}
		if n > uint64(limit) {
			return token{}, 0, fmt.Errorf("%w: an extension of %d bytes", errMalformed, n)
		}
		return sized(kExt, 2+hl, int(n))
	}
	return token{}, 0, fmt.Errorf("%w: byte 0x%02x begins no MessagePack value", errMalformed, c)
}

// skip returns the length of the whole value at the start of b.
func skip(b []byte, depth int) (int, error) { return skipMax(b, depth, maxAnswer) }

// skipMax is skip with limit as headMax takes it.
func skipMax(b []byte, depth, limit int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("%w: nested deeper than %d", errMalformed, maxDepth)
	}
	t, n, err := headMax(b, limit)
	if err != nil {
		return 0, err
	}
	elems := t.n
	if t.kind == kMap {
		elems *= 2
	}
	for range elems {
		m, err := skipMax(b[n:], depth+1, limit)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

// maxAnswer is the longest answer the server may send: one longer fails
// the session rather than being waited for.
const maxAnswer = 64 << 10

// parseAck decodes the answer at the start of b, a map that holds
// "ack" with a chunk id as str (or bin), and returns the id (aliasing b)
// and the answer's length. It returns errShort while the answer is
// incomplete, and an error wrapping errMalformed for anything else.
func parseAck(b []byte) (id []byte, n int, err error) {
	total, err := skip(b, 0)
	if err != nil {
		if errors.Is(err, errShort) && len(b) >= maxAnswer {
			return nil, 0, fmt.Errorf("%w: an answer longer than %d bytes", errMalformed, maxAnswer)
		}
		return nil, 0, err
	}
	t, n, _ := head(b)
	if t.kind != kMap {
		return nil, 0, fmt.Errorf("%w: an answer that is not a map", errMalformed)
	}
	found := false
	for range t.n {
		k, kn, _ := head(b[n:])
		if k.kind != kStr {
			return nil, 0, fmt.Errorf("%w: a map key that is not a string", errMalformed)
		}
		n += kn
		vn, _ := skip(b[n:], 1)
		if string(k.b) == "ack" {
			v, _, _ := head(b[n:])
			if v.kind != kStr && v.kind != kBin || found {
				return nil, 0, fmt.Errorf("%w: an ack that is not one string", errMalformed)
			}
			id, found = v.b, true
		}
		n += vn
	}
	if !found {
		return nil, 0, fmt.Errorf("%w: an answer with no ack", errMalformed)
	}
	return id, total, nil
}
