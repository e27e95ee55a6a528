package relp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestAppendFrame(t *testing.T) {
	tests := []struct {
		txnr int
		cmd  string
		data string
		want string
	}{
		{1, "open", openOffers, "1 open " + fmt.Sprint(len(openOffers)) + " " + openOffers + "\n"},
		{2, "syslog", "<13>hello", "2 syslog 9 <13>hello\n"},
		{3, "close", "", "3 close 0\n"},
		{0, "serverclose", "", "0 serverclose 0\n"},
		{999999999, "rsp", "200 OK", "999999999 rsp 6 200 OK\n"},
		{7, "syslog", "a\nb", "7 syslog 3 a\nb\n"},
		{8, strings.Repeat("x", 32), "", "8 " + strings.Repeat("x", 32) + " 0\n"},
	}
	for _, tt := range tests {
		got := appendFrame([]byte("prefix|"), tt.txnr, tt.cmd, []byte(tt.data))
		if string(got) != "prefix|"+tt.want {
			t.Errorf("appendFrame(%d, %q, %q) = %q; want %q", tt.txnr, tt.cmd, tt.data, got, "prefix|"+tt.want)
		}
		if n := frameLen(tt.txnr, tt.cmd, len(tt.data)); n != len(tt.want) {
			t.Errorf("frameLen(%d, %q, %d) = %d; want %d", tt.txnr, tt.cmd, len(tt.data), n, len(tt.want))
		}
	}
}

func TestAppendFrameAllocs(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 200)
	buf := make([]byte, 0, frameLen(maxTxnr, cmdSyslog, len(data)))
	allocs := testing.AllocsPerRun(1000, func() {
		buf = appendFrame(buf[:0], maxTxnr, cmdSyslog, data)
	})
	if allocs != 0 {
		t.Errorf("appendFrame into a large enough slice: %v allocations; want 0", allocs)
	}
}

func TestAppendFramePanics(t *testing.T) {
	tests := []struct {
		name string
		txnr int
		cmd  string
	}{
		{"negative TXNR", -1, "syslog"},
		{"TXNR too large", maxTxnr + 1, "syslog"},
		{"empty command", 1, ""},
		{"command with a digit", 1, "sys1og"},
		{"command with SP", 1, "sys log"},
		{"command too long", 1, strings.Repeat("x", 33)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("appendFrame(%d, %q) did not panic", tt.txnr, tt.cmd)
				}
			}()
			appendFrame(nil, tt.txnr, tt.cmd, nil)
		})
	}
}

func TestNextTxnr(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{1, 2}, {0, 1}, {998, 999}, {maxTxnr - 1, maxTxnr}, {maxTxnr, 1}} {
		if got := nextTxnr(tt.in); got != tt.want {
			t.Errorf("nextTxnr(%d) = %d; want %d", tt.in, got, tt.want)
		}
	}
}

// parseChunks feeds the chunks to p in turn and returns copies of the
// frames it yields, and the first error. Like a reader of a socket, it
// reads each chunk into the same buffer, which it overwrites before the
// next chunk: a parser that kept pointers into it would give wrong data.
func parseChunks(p *parser, chunks ...[]byte) ([]frame, error) {
	var frames []frame
	var scratch []byte
	for _, chunk := range chunks {
		for i := range scratch {
			scratch[i] = 0xff
		}
		scratch = append(scratch[:0], chunk...)
		b := scratch
		for len(b) > 0 {
			n, f, ok, err := p.parse(b)
			if n < 0 || n > len(b) {
				return frames, fmt.Errorf("parse consumed %d of %d bytes", n, len(b))
			}
			if err != nil {
				return frames, err
			}
			if ok {
				f.data = bytes.Clone(f.data)
				frames = append(frames, f)
			} else if n != len(b) {
				return frames, fmt.Errorf("parse stopped after %d of %d bytes without a frame", n, len(b))
			}
			b = b[n:]
		}
	}
	return frames, nil
}

// splitAt cuts b into chunks at the given offsets.
func splitAt(b []byte, cuts ...int) [][]byte {
	var chunks [][]byte
	prev := 0
	for _, c := range cuts {
		chunks = append(chunks, b[prev:c])
		prev = c
	}
	return append(chunks, b[prev:])
}

func equalFrames(a, b []frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].txnr != b[i].txnr || a[i].cmd != b[i].cmd || !bytes.Equal(a[i].data, b[i].data) {
			return false
		}
	}
	return true
}

func TestParseValid(t *testing.T) {
	stream := []byte("1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n" +
		"2 rsp 6 200 OK\n" +
		"3 rsp 0\n" +
		"0 serverclose 0\n" +
		"004 rsp 06 200 OK\n" + // leading zeros are digits like any other
		"5 rsp 3  \n\n\n" + // data may hold LF
		"999999999 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef 1 x\n")
	want := []frame{
		{1, "rsp", []byte("200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog")},
		{2, "rsp", []byte("200 OK")},
		{3, "rsp", nil},
		{0, "serverclose", nil},
		{4, "rsp", []byte("200 OK")},
		{5, "rsp", []byte(" \n\n")},
		{999999999, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef", []byte("x")},
	}
	got, err := parseChunks(newParser(0), stream)
	if err != nil || !equalFrames(got, want) {
		t.Fatalf("in one chunk: got %v, %v; want %v", got, err, want)
	}
	if !got[3].isServerClose() || got[1].isServerClose() {
		t.Errorf("isServerClose: %v for %v, %v for %v; want true, false", got[3].isServerClose(), got[3], got[1].isServerClose(), got[1])
	}
	// Every split into two chunks and every split into single bytes.
	for i := 0; i <= len(stream); i++ {
		got, err := parseChunks(newParser(0), splitAt(stream, i)...)
		if err != nil || !equalFrames(got, want) {
			t.Fatalf("split at %d: got %v, %v; want %v", i, got, err, want)
		}
	}
	var bytewise [][]byte
	for i := range stream {
		bytewise = append(bytewise, stream[i:i+1])
	}
	got, err = parseChunks(newParser(0), bytewise...)
	if err != nil || !equalFrames(got, want) {
		t.Fatalf("byte by byte: got %v, %v; want %v", got, err, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in     string
		max    int
		field  string
		off    int64
		kind   error
		reason string
	}{
		{"x rsp 0\n", 0, "TXNR", 0, errMalformed, `want a digit, got 'x'`},
		{" 1 rsp 0\n", 0, "TXNR", 0, errMalformed, `want a digit, got ' '`},
		{"-1 rsp 0\n", 0, "TXNR", 0, errMalformed, `want a digit, got '-'`},
		{"1\trsp 0\n", 0, "TXNR", 1, errMalformed, `want a digit or SP, got '\t'`},
		{"1234567890 rsp 0\n", 0, "TXNR", 9, errMalformed, "more than 9 digits"},
		{"1  rsp 0\n", 0, "COMMAND", 2, errMalformed, `want a letter, got ' '`},
		{"1 rs-p 0\n", 0, "COMMAND", 4, errMalformed, `want a letter or SP, got '-'`},
		{"1 rsp\n", 0, "COMMAND", 5, errMalformed, `want a letter or SP, got '\n'`},
		{"1 " + strings.Repeat("a", 33) + " 0\n", 0, "COMMAND", 34, errMalformed, "more than 32 letters"},
		{"1 r\xe9p 0\n", 0, "COMMAND", 3, errMalformed, "want a letter or SP, got byte 0xe9"},
		{"1 rsp \n", 0, "DATALEN", 6, errMalformed, `want a digit, got '\n'`},
		{"1 rsp  0\n", 0, "DATALEN", 6, errMalformed, `want a digit, got ' '`},
		{"1 rsp x\n", 0, "DATALEN", 6, errMalformed, `want a digit, got 'x'`},
		{"1 rsp 0 \n", 0, "trailer", 7, errMalformed, `want LF after DATALEN 0, got ' '`},
		{"1 rsp 0\r\n", 0, "trailer", 7, errMalformed, `want LF after DATALEN 0, got '\r'`},
		{"1 rsp 6\n200 OK\n", 0, "DATALEN", 7, errMalformed, `want a digit or SP, got '\n'`},
		{"1 rsp 6x200 OK\n", 0, "DATALEN", 7, errMalformed, `want a digit or SP, got 'x'`},
		{"1 rsp 5 200 OK\n", 0, "trailer", 13, errMalformed, `want LF after 5 bytes of DATA, got 'K'`},
		{"1 rsp 7 200 OK\nx", 0, "trailer", 15, errMalformed, `want LF after 7 bytes of DATA, got 'x'`},
		{"1 rsp 0000000000\n", 0, "DATALEN", 15, errMalformed, "more than 9 digits"},
		{"1 rsp 131073 x\n", 0, "DATALEN", 11, errTooLarge, "at least 131073 bytes, above the maximum of 131072"},
		{"1 rsp 11 200 OK now\n", 10, "DATALEN", 7, errTooLarge, "at least 11 bytes, above the maximum of 10"},
		{"2 rsp 6 200 OK\n3 rsp 2 xyz\n", 0, "trailer", 25, errMalformed, `want LF after 2 bytes of DATA, got 'z'`},
	}
	for _, tt := range tests {
		// In one chunk, and byte by byte: the same error.
		var bytewise [][]byte
		for i := range len(tt.in) {
			bytewise = append(bytewise, []byte(tt.in[i:i+1]))
		}
		for _, chunks := range [][][]byte{{[]byte(tt.in)}, bytewise} {
			p := newParser(tt.max)
			_, err := parseChunks(p, chunks...)
			var fe *frameError
			if !errors.As(err, &fe) {
				t.Errorf("parse(%q) in %d chunks: error %v; want a *frameError", tt.in, len(chunks), err)
				continue
			}
			if fe.field != tt.field || fe.off != tt.off || !errors.Is(err, tt.kind) || fe.reason != tt.reason {
				t.Errorf("parse(%q) in %d chunks: %s at %d (%v): %q; want %s at %d (%v): %q", tt.in, len(chunks), fe.field, fe.off, fe.kind, fe.reason, tt.field, tt.off, tt.kind, tt.reason)
			}
			// The parser stays broken.
			if _, _, _, err2 := p.parse([]byte("1 rsp 0\n")); err2 != err {
				t.Errorf("parse after %v: %v; want the same error", err, err2)
			}
		}
	}
}

func TestParserMax(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, defaultMaxData}, {-1, defaultMaxData}, {10, 10}, {2e9, maxDataLen}} {
		if got := newParser(tt.in).maxData(); got != tt.want {
			t.Errorf("newParser(%d).maxData() = %d; want %d", tt.in, got, tt.want)
		}
	}
}

func TestFrameErrorText(t *testing.T) {
	_, err := parseChunks(newParser(0), []byte("1 rsp 6\n"))
	want := `relp: malformed frame: DATALEN at byte 7: want a digit or SP, got '\n'`
	if err == nil || err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
	_, err = parseChunks(newParser(100), []byte("1 rsp 1000"))
	want = `relp: frame too large: DATALEN at byte 8: at least 100 bytes, above the maximum of 100`
	if err == nil {
		t.Errorf("error nil; want %q", want)
	}
	_, err = parseChunks(newParser(100), []byte("1 rsp 1001"))
	want = `relp: frame too large: DATALEN at byte 9: at least 1001 bytes, above the maximum of 100`
	if err == nil || err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
}

// TestParseBounded checks that a parser never buffers more than its
// maximum, whatever the peer announces, and holds frames at the maximum.
func TestParseBounded(t *testing.T) {
	const max = 1000
	p := newParser(max)
	data := bytes.Repeat([]byte("y"), max)
	stream := appendFrame(nil, 1, cmdRsp, data)
	got, err := parseChunks(p, splitAt(stream, 3, 10, 500, len(stream)-1)...)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].data, data) {
		t.Fatalf("a frame of exactly the maximum: %d frames, %v", len(got), err)
	}
	if cap(p.buf) > max {
		t.Errorf("buffer capacity %d; want at most %d", cap(p.buf), max)
	}
	// A frame just above the maximum is refused at its DATALEN, before
	// any of its data is buffered.
	p = newParser(max)
	_, err = parseChunks(p, []byte("1 rsp 1001 "))
	if !errors.Is(err, errTooLarge) || cap(p.buf) != 0 {
		t.Errorf("DATALEN 1001 with maximum 1000: %v, buffer %d; want errTooLarge and no buffer", err, cap(p.buf))
	}
}

// TestParseAllocs checks that frames arriving whole in a chunk are
// parsed without allocating.
func TestParseAllocs(t *testing.T) {
	var stream []byte
	for i := 1; i <= 100; i++ {
		stream = appendFrame(stream, i, cmdRsp, []byte("200 OK"))
	}
	stream = appendFrame(stream, 0, cmdServerClose, nil)
	p := newParser(0)
	allocs := testing.AllocsPerRun(100, func() {
		*p = parser{}
		for b := stream; len(b) > 0; {
			n, _, _, err := p.parse(b)
			if err != nil {
				t.Fatal(err)
			}
			b = b[n:]
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations for 101 frames; want 0", allocs)
	}
}

func TestParseRsp(t *testing.T) {
	tests := []struct {
		in         string
		code       int
		msg, data  string
		wantErr    string
		wantOK     bool
		dataIsNil  bool
		msgIsEmpty bool
	}{
		{in: "200 OK", code: 200, msg: "OK", wantOK: true},
		{in: "200", code: 200, wantOK: true},
		{in: "200 ", code: 200, wantOK: true},
		{in: "200 OK\n", code: 200, msg: "OK", wantOK: true},
		{in: "200 OK\nrelp_version=0\ncommands=syslog", code: 200, msg: "OK", data: "relp_version=0\ncommands=syslog", wantOK: true},
		{in: "200\nrelp_version=0", code: 200, data: "relp_version=0", wantOK: true},
		{in: "500 command disabled", code: 500, msg: "command disabled"},
		{in: "500 error 10009 on connect", code: 500, msg: "error 10009 on connect"},
		{in: "404 nope\n\n", code: 404, msg: "nope", data: "\n"},
		{in: "", wantErr: "relp: malformed rsp: no status code (empty rsp data)"},
		{in: "20", wantErr: `relp: malformed rsp: status code: want 3 digits, got "20"`},
		{in: "2x0 OK", wantErr: `relp: malformed rsp: status code: want 3 digits, got "2x0"`},
		{in: "2000 OK", wantErr: `relp: malformed rsp: want SP or LF after the status code, got '0'`},
		{in: "200OK", wantErr: `relp: malformed rsp: want SP or LF after the status code, got 'O'`},
	}
	for _, tt := range tests {
		r, err := parseRsp([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errMalformed) {
				t.Errorf("parseRsp(%q) error %v; want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || r.code != tt.code || string(r.msg) != tt.msg || string(r.data) != tt.data || r.ok() != tt.wantOK {
			t.Errorf("parseRsp(%q) = %d %q %q ok=%v, %v; want %d %q %q ok=%v", tt.in, r.code, r.msg, r.data, r.ok(), err, tt.code, tt.msg, tt.data, tt.wantOK)
		}
	}
}

func TestParseOffers(t *testing.T) {
	// What imrelp 8.2302 with librelp 1.11.0 answers to open.
	o, err := parseOffers([]byte("relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"))
	if err != nil {
		t.Fatal(err)
	}
	want := offers{
		{"relp_version", []string{"0"}},
		{"relp_software", []string{"librelp", "1.11.0", "http://librelp.adiscon.com"}},
		{"commands", []string{"syslog"}},
	}
	if fmt.Sprint(o) != fmt.Sprint(want) {
		t.Errorf("parseOffers = %q; want %q", o, want)
	}
	if v, err := o.version(); v != 0 || err != nil {
		t.Errorf("version() = %d, %v; want 0, nil", v, err)
	}
	if !o.supports("syslog") || o.supports("eventlog") {
		t.Errorf("supports(syslog), supports(eventlog) = %v, %v; want true, false", o.supports("syslog"), o.supports("eventlog"))
	}

	good := []struct {
		in   string
		want string
	}{
		{"", "[]"},
		{"\n\n", "[]"},
		{"a", "[{a []}]"},
		{"a=", "[{a []}]"},
		{"a=,,x,", "[{a [x]}]"},
		{"a=1\n", "[{a [1]}]"},
		{"a=b=c", "[{a [b=c]}]"},
		{strings.Repeat("n", 32) + "=" + strings.Repeat("v", 255), "[{" + strings.Repeat("n", 32) + " [" + strings.Repeat("v", 255) + "]}]"},
	}
	for _, tt := range good {
		o, err := parseOffers([]byte(tt.in))
		if err != nil || fmt.Sprint(o) != tt.want {
			t.Errorf("parseOffers(%q) = %v, %v; want %s", tt.in, o, err, tt.want)
		}
	}
	bad := []struct{ in, want string }{
		{"=1", `relp: malformed offers: empty offer name in "=1"`},
		{strings.Repeat("n", 33), `relp: malformed offers: offer name longer than 32 bytes: "` + strings.Repeat("n", 32) + `"...`},
		{"a=" + strings.Repeat("v", 256), `relp: malformed offers: value of offer "a" longer than 255 bytes`},
		{"a=" + strings.Repeat("v,", 65), `relp: malformed offers: offer "a" with more than 64 values`},
	}
	for _, tt := range bad {
		_, err := parseOffers([]byte(tt.in))
		if err == nil || err.Error() != tt.want || !errors.Is(err, errMalformed) {
			t.Errorf("parseOffers(%.40q) error %v; want %q", tt.in, err, tt.want)
		}
	}
}

func TestCheckOpen(t *testing.T) {
	tests := []struct {
		rsp     string
		wantErr string
	}{
		{"200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog", ""},
		{"200 OK\ncommands=syslog", "relp: malformed offers: no relp_version offer"},
		{"200 OK\nrelp_version=x\ncommands=syslog", `relp: malformed offers: relp_version "x" is not a version number`},
		{"200 OK\nrelp_version=0,1\ncommands=syslog", "relp: malformed offers: relp_version with 2 values; want 1"},
		{"200 OK\nrelp_version=1\ncommands=syslog", "relp: server speaks relp_version 1; want 0"},
		{"200 OK\nrelp_version=0\ncommands=", "relp: server does not offer the syslog command"},
		{"500 required command not supported by client", "relp: open refused: 500 required command not supported by client"},
	}
	for _, tt := range tests {
		r, err := parseRsp([]byte(tt.rsp))
		if err != nil {
			t.Fatal(err)
		}
		_, err = checkOpen(r)
		if (err == nil) != (tt.wantErr == "") || err != nil && err.Error() != tt.wantErr {
			t.Errorf("checkOpen(%q) = %v; want %q", tt.rsp, err, tt.wantErr)
		}
	}
}

func TestCheckFromServer(t *testing.T) {
	tests := []struct {
		f  frame
		ok bool
	}{
		{frame{txnr: 1, cmd: cmdRsp}, true},
		{frame{txnr: 0, cmd: cmdServerClose}, true},
		{frame{txnr: 0, cmd: "abort"}, true}, // an unknown hint: a client ignores it
		{frame{txnr: 0, cmd: cmdRsp}, false},
		{frame{txnr: 5, cmd: cmdServerClose}, false},
		{frame{txnr: 5, cmd: cmdSyslog}, false},
	}
	for _, tt := range tests {
		if err := checkFromServer(tt.f); (err == nil) != tt.ok {
			t.Errorf("checkFromServer(%d %s) = %v; want ok %v", tt.f.txnr, tt.f.cmd, err, tt.ok)
		}
	}
}
