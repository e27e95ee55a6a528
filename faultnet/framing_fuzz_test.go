package faultnet

import (
	"bytes"
	"math"
	"regexp"
	"strconv"
	"testing"
)

// fuzzFramings are the framings the fuzz targets try on every input:
// the two that exist and an unknown value, which the parser and
// AppendMessage treat as Newline.
var fuzzFramings = []Framing{Newline, OctetCounting, Framing(7)}

var (
	// octetPrefix matches a complete length prefix as the parser reads
	// it: a digit other than zero, at most eight more, and a space.
	octetPrefix = regexp.MustCompile(`^([1-9][0-9]{0,8}) `)
	// octetPending matches a start that may still become a length
	// prefix when more bytes arrive.
	octetPending = regexp.MustCompile(`^[1-9][0-9]{0,8}$`)
	// seqPattern matches the first sequence number of a frame.
	seqPattern = regexp.MustCompile(`seq=([0-9]+)`)
)

// refNext is Framing.next written from its documentation, with regular
// expressions, to compare the parser with.
func refNext(f Framing, b []byte) (msg []byte, n int) {
	if f == OctetCounting {
		if m := octetPrefix.FindSubmatch(b); m != nil {
			size, err := strconv.Atoi(string(m[1]))
			if err != nil {
				panic(err)
			}
			if len(b) < len(m[0])+size {
				return nil, 0
			}
			return b[len(m[0]) : len(m[0])+size], len(m[0]) + size
		}
		if octetPending.Match(b) {
			return nil, 0
		}
	}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0
	}
	return b[:i], i + 1
}

// checkFrame fails the test unless msg and n, returned by f.next(b), are
// what the framing documents.
func checkFrame(t *testing.T, f Framing, b, msg []byte, n int) {
	t.Helper()
	wantMsg, wantN := refNext(f, b)
	if n != wantN || !bytes.Equal(msg, wantMsg) {
		t.Fatalf("%v: next(%q) = %q, %d; want %q, %d", f, b, msg, n, wantMsg, wantN)
	}
	if n == 0 {
		return
	}
	// The frame is its message with the framing around it, and the
	// message is a view of the input, not a copy.
	frame := b[:n]
	asLine := bytes.HasSuffix(frame, []byte("\n")) && bytes.Equal(frame[:n-1], msg)
	asCount := bytes.Equal(frame, append([]byte(strconv.Itoa(len(msg))+" "), msg...))
	if !asLine && !(f == OctetCounting && asCount) {
		t.Fatalf("%v: next(%q) = %q, %d: the frame is not the message framed", f, b, msg, n)
	}
	off := n - len(msg) // an octet-counted message ends its frame
	if asLine {
		off = 0
	}
	if len(msg) > 0 && &msg[0] != &frame[off] {
		t.Fatalf("%v: next(%q) returned a copy of the message", f, b)
	}
}

// splitAll returns the frames of b, whole, and what follows the last
// complete one, checking each step against refNext.
func splitAll(t *testing.T, f Framing, b []byte) (frames [][]byte, rest []byte) {
	t.Helper()
	for {
		msg, n := f.next(b)
		checkFrame(t, f, b, msg, n)
		if n == 0 {
			return frames, b
		}
		frames = append(frames, b[:n])
		b = b[n:]
	}
}

// splitChunks feeds b to the parser in pieces whose lengths are taken in
// turn from sizes, as the server's reader does: the bytes of an
// incomplete frame are kept and the next piece is appended to them.
func splitChunks(t *testing.T, f Framing, b, sizes []byte) (frames [][]byte, rest []byte) {
	t.Helper()
	var pending []byte
	for i := 0; len(b) > 0; i++ {
		k := len(b)
		if len(sizes) > 0 {
			k = min(k, int(sizes[i%len(sizes)])+1)
		}
		pending = append(pending, b[:k]...)
		b = b[k:]
		for {
			msg, n := f.next(pending)
			checkFrame(t, f, pending, msg, n)
			if n == 0 {
				break
			}
			frames = append(frames, bytes.Clone(pending[:n]))
			pending = pending[n:]
		}
	}
	return frames, pending
}

// maxFuzzInput is the longest input FuzzNext parses.
const maxFuzzInput = 4 << 10

// FuzzNext parses arbitrary input with every framing, whole and in
// arbitrary pieces. The parser must not panic or allocate, must return
// frames that the framing's rules give and that cover the input in
// order, and must find the same frames however the input is split. The
// server's accounting of the same pieces must agree with the frames.
func FuzzNext(f *testing.F) {
	var stream []byte
	for q := range 5 {
		stream = AppendMessage(stream, OctetCounting, q, q*7)
	}
	f.Add(stream, []byte{0})
	f.Add(stream, []byte{2, 9, 30})
	stream = nil
	for q := range 5 {
		stream = AppendMessage(stream, Newline, q, q*7)
	}
	f.Add(stream, []byte{5})
	f.Add([]byte(""), []byte(""))
	f.Add([]byte("\n\n\n"), []byte{0})
	f.Add([]byte("seq=1\nseq=2"), []byte{3, 1})
	f.Add([]byte("5 seq=7\nseq=8 lf\n"), []byte{1})
	f.Add([]byte("123456789"), []byte{0})
	f.Add([]byte("123456789 abc"), []byte{4})
	f.Add([]byte("1234567890 abc\n"), []byte{8})
	f.Add([]byte("0 seq=1\n"), []byte{})
	f.Add([]byte("12x seq=3\n4 seq=4"), []byte{2, 0})
	f.Add([]byte("3 \n\n\n"), []byte{0})
	f.Add([]byte("<13>1 2024-01-01T00:00:00Z host app 1 - - seq=9\n56 <13>1 2024-01-01T00:00:00Z host app 1 - - body seq=10"), []byte{10, 3})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		if len(data) > maxFuzzInput {
			// The parser looks at an incomplete frame from its start
			// again for each piece, so one-byte pieces cost the square
			// of the length; longer inputs reach no other code.
			t.Skip("input too long")
		}
		for _, fr := range fuzzFramings {
			frames, rest := splitAll(t, fr, data)
			if got := append(bytes.Join(frames, nil), rest...); !bytes.Equal(got, data) {
				t.Fatalf("%v: frames and rest %q do not make up the input %q", fr, got, data)
			}
			chunked, chunkedRest := splitChunks(t, fr, data, sizes)
			if len(chunked) != len(frames) || !bytes.Equal(chunkedRest, rest) {
				t.Fatalf("%v: in pieces %v: %q, rest %q; whole: %q, rest %q", fr, sizes, chunked, chunkedRest, frames, rest)
			}
			for i := range frames {
				if !bytes.Equal(chunked[i], frames[i]) {
					t.Fatalf("%v: in pieces %v: frame %d is %q; whole: %q", fr, sizes, i, chunked[i], frames[i])
				}
			}
			checkConsume(t, fr, data, sizes, frames, rest)
		}
		allocs := testing.AllocsPerRun(1, func() {
			for _, fr := range fuzzFramings {
				for b := data; ; {
					_, n := fr.next(b)
					if n == 0 {
						break
					}
					b = b[n:]
				}
			}
		})
		if allocs != 0 {
			t.Fatalf("parsing %d bytes allocated %v times", len(data), allocs)
		}
	})
}

// checkConsume feeds data to a server connection's accounting in the
// pieces given by sizes, as the reader does, counts what is left as
// unread, as a close does, and compares the result with the frames.
func checkConsume(t *testing.T, f Framing, data, sizes []byte, frames [][]byte, rest []byte) {
	t.Helper()
	s := new(Server)
	c := &Conn{s: s, framing: f, rep: ConnReport{ID: 1, Exact: true}}
	var pending []byte
	for i := 0; len(data) > 0; i++ {
		k := len(data)
		if len(sizes) > 0 {
			k = min(k, int(sizes[i%len(sizes)])+1)
		}
		pending = append(pending, data[:k]...)
		data = data[k:]
		used := s.consume(c, pending, false)
		pending = pending[used:]
	}
	if !bytes.Equal(pending, rest) {
		t.Fatalf("%v: the accounting left %q; the parser %q", f, pending, rest)
	}
	s.consumeUnread(c, pending)

	var want ConnReport
	for _, fr := range frames {
		want.Bytes += int64(len(fr))
		msg, _ := f.next(fr)
		if len(msg) == 0 {
			continue
		}
		if _, ok := ParseSeq(msg); ok {
			want.Received++
		} else {
			want.Invalid++
		}
	}
	want.UnreadBytes = int64(len(rest))
	if seq, terminated, ok := parseSeq(rest); ok && terminated {
		want.Unread = 1
		if !s.ledger.unread.has(seq) {
			t.Errorf("%v: seq %d of the unread rest %q is not recorded", f, seq, rest)
		}
	}
	got := c.rep
	if got.Received != want.Received || got.Invalid != want.Invalid || got.Unread != want.Unread ||
		got.Bytes != want.Bytes || got.UnreadBytes != want.UnreadBytes {
		t.Fatalf("%v: accounting %+v; want %+v", f, got, want)
	}
	if r := s.ledger.report(0, nil); r.Invalid != want.Invalid || r.Unread != want.Unread {
		t.Fatalf("%v: report %v; want %d invalid, %d unread", f, r, want.Invalid, want.Unread)
	}
}

// FuzzParseSeq compares ParseSeq with a regular expression and strconv
// on arbitrary input.
func FuzzParseSeq(f *testing.F) {
	for _, s := range []string{
		"seq=0", "seq=42\n", "<13>1 host app - - [x seq=9] body", "seq= seq=x seq=5",
		"seq=3seq=4", "seqseq=5", "sseq=6", "seq=seq=7", "seq", "seq=", "SEQ=1",
		"seq=007", "seq=9223372036854775799", "seq=9223372036854775807",
		"seq=9223372036854775808", "seq=99999999999999999999999", "seq=18446744073709551615",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, terminated, ok := parseSeq(b)
		if s2, ok2 := ParseSeq(b); s2 != seq || ok2 != ok {
			t.Fatalf("ParseSeq(%q) = %d, %t; parseSeq = %d, %t", b, s2, ok2, seq, ok)
		}
		var want int
		var wantTerminated, wantOK bool
		if m := seqPattern.FindSubmatchIndex(b); m != nil {
			n, err := strconv.ParseInt(string(b[m[2]:m[3]]), 10, strconv.IntSize)
			if err == nil {
				want, wantTerminated, wantOK = int(n), m[3] < len(b), true
			}
		}
		if seq != want || terminated != wantTerminated || ok != wantOK {
			t.Fatalf("parseSeq(%q) = %d, %t, %t; want %d, %t, %t", b, seq, terminated, ok, want, wantTerminated, wantOK)
		}
	})
}

// FuzzAppendMessage builds a frame with AppendMessage and parses it back:
// the frame must have the documented length, parse as one whole frame
// even when another follows, carry its sequence number, and never yield
// a wrong number when it is cut short, as a close may leave it.
func FuzzAppendMessage(f *testing.F) {
	f.Add(uint8(Newline), int64(0), int32(0), []byte(nil))
	f.Add(uint8(Newline), int64(7), int32(12), []byte("x"))
	f.Add(uint8(OctetCounting), int64(7), int32(0), []byte(nil))
	f.Add(uint8(OctetCounting), int64(42), int32(16), []byte("5 seq=1"))
	f.Add(uint8(OctetCounting), int64(12345), int32(103), []byte(nil))
	f.Add(uint8(OctetCounting), int64(1), int32(1005), []byte(nil))
	f.Add(uint8(Newline), int64(99999), int32(-3), []byte("\n"))
	f.Add(uint8(200), int64(1<<40), int32(100), []byte(nil))
	f.Add(uint8(OctetCounting), int64(-1), int32(10), []byte(nil))
	f.Add(uint8(Newline), int64(math.MaxInt64), int32(0), []byte(nil))
	f.Add(uint8(OctetCounting), int64(math.MaxInt64-7), int32(40), []byte(nil))
	f.Fuzz(func(t *testing.T, fb uint8, seq64 int64, size32 int32, prefix []byte) {
		fr := Framing(fb)
		size := int(size32 % 4096)
		seq := int(seq64)
		if int64(seq) != seq64 {
			t.Skip("seq does not fit in an int")
		}
		if seq < 0 {
			defer func() {
				if recover() == nil {
					t.Fatalf("AppendMessage(%v, %d, %d) did not panic", fr, seq, size)
				}
			}()
			AppendMessage(nil, fr, seq, size)
			return
		}
		b := AppendMessage(bytes.Clone(prefix), fr, seq, size)
		if !bytes.Equal(b[:len(prefix)], prefix) {
			t.Fatalf("AppendMessage changed the bytes it appends to: %q", b[:len(prefix)])
		}
		frame := b[len(prefix):]

		body := len(seqToken) + len(strconv.Itoa(seq))
		shortest := body + 1
		if fr == OctetCounting {
			shortest = len(strconv.Itoa(body)) + 1 + body
		}
		want := max(size, shortest)
		if len(frame) != want && !(fr == OctetCounting && len(frame) == want+1 && !reachable(want, body)) {
			t.Fatalf("AppendMessage(%v, %d, %d) = %q: %d bytes; want %d", fr, seq, size, frame, len(frame), want)
		}

		// Followed by another frame, it still parses as itself.
		stream := AppendMessage(bytes.Clone(frame), fr, 0, 0)
		msg, n := fr.next(stream)
		if n != len(frame) {
			t.Fatalf("%v: next(%q) took %d bytes; want the frame of %d", fr, stream, n, len(frame))
		}
		if got, ok := ParseSeq(msg); !ok || got != seq {
			t.Fatalf("%v: ParseSeq(%q) = %d, %t; want %d", fr, msg, got, ok, seq)
		}
		if bytes.ContainsAny(msg, "\n") {
			t.Fatalf("%v: message %q holds a newline", fr, msg)
		}

		// Cut short, it is no frame yet, and its number is either
		// incomplete or right. The cuts that matter end near the number.
		for k := range len(frame) {
			if k > 24+body && k < len(frame)-2 {
				continue
			}
			if _, n := fr.next(frame[:k]); n != 0 {
				t.Fatalf("%v: next(%q), a frame cut short, took %d bytes", fr, frame[:k], n)
			}
			if got, terminated, ok := parseSeq(frame[:k]); ok && terminated && got != seq {
				t.Fatalf("%v: parseSeq(%q), a frame cut short, = %d; want %d or incomplete", fr, frame[:k], got, seq)
			}
		}
	})
}

// reachable reports whether an octet-counted frame of total bytes can
// carry a body of at least body bytes.
func reachable(total, body int) bool {
	for d := 1; d <= len(strconv.Itoa(math.MaxInt)); d++ {
		n := total - 1 - d
		if n >= body && len(strconv.Itoa(n)) == d {
			return true
		}
	}
	return false
}
