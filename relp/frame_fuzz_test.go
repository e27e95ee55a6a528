package relp

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// chunked cuts b into chunks of random sizes drawn from seed, most of
// them small, so that every field gets split somewhere.
func chunked(b []byte, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed>>32|1))
	var chunks [][]byte
	for len(b) > 0 {
		n := 1 + r.IntN(min(len(b), 1+r.IntN(24)))
		chunks = append(chunks, b[:n])
		b = b[n:]
	}
	return chunks
}

// parseTracked parses b in one chunk and returns the frames with the
// byte range each came from, the error and the bytes consumed.
func parseTracked(p *parser, b []byte) (frames []frame, ends []int, err error, used int) {
	for used < len(b) {
		n, f, ok, err := p.parse(b[used:])
		used += n
		if err != nil {
			return frames, ends, err, used
		}
		if ok {
			f.data = bytes.Clone(f.data)
			frames = append(frames, f)
			ends = append(ends, used)
		}
	}
	return frames, ends, nil, used
}

// canonical returns a frame's wire form without the leading zeros that
// the syntax allows in TXNR and DATALEN, which appendFrame never writes.
func canonical(raw []byte) []byte {
	strip := func(b []byte) []byte {
		for len(b) > 1 && b[0] == '0' && isDigit(b[1]) {
			b = b[1:]
		}
		return b
	}
	txnr, rest, _ := bytes.Cut(raw, []byte(" "))
	cmd, rest, _ := bytes.Cut(rest, []byte(" "))
	i := 0
	for i < len(rest) && isDigit(rest[i]) {
		i++
	}
	out := append(strip(bytes.Clone(txnr)), ' ')
	out = append(append(out, cmd...), ' ')
	out = append(out, strip(rest[:i])...)
	return append(out, rest[i:]...)
}

// FuzzParse feeds arbitrary input to the parser, in one chunk and in
// random chunks. It never panics; both ways give the same frames and the
// same error; each frame is exactly the bytes it was parsed from; the
// parser buffers at most its maximum.
func FuzzParse(f *testing.F) {
	f.Add([]byte("1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n2 rsp 6 200 OK\n3 rsp 0\n0 serverclose 0\n"), uint64(1), uint32(0))
	f.Add([]byte("2 rsp 6 200 OK\n3 rsp 20 500 command disabled\n"), uint64(2), uint32(10))
	f.Add([]byte("00001 rsp 0006 200 OK\n"), uint64(3), uint32(6))
	f.Add([]byte("1234567890 rsp 0\n"), uint64(4), uint32(0))
	f.Add([]byte("1 "+strings.Repeat("a", 33)+" 0\n"), uint64(5), uint32(0))
	f.Add([]byte("1 rsp 0 \n"), uint64(6), uint32(0))
	f.Add([]byte("1 rsp 6 200 OK"), uint64(7), uint32(0))
	f.Add([]byte("1 rsp 131073 "), uint64(8), uint32(0))
	f.Fuzz(func(t *testing.T, in []byte, seed uint64, max uint32) {
		maxData := int(max % (2 * defaultMaxData))
		p := newParser(maxData)
		frames, ends, err, used := parseTracked(p, in)
		if cap(p.buf) > p.maxData() {
			t.Fatalf("buffer capacity %d above the maximum %d", cap(p.buf), p.maxData())
		}
		if err != nil {
			fe, ok := err.(*frameError)
			if !ok {
				t.Fatalf("error %T %v; want *frameError", err, err)
			}
			if fe.off != int64(used) || fe.off >= int64(len(in)) {
				t.Fatalf("error at byte %d, parse stopped at %d of %d: %v", fe.off, used, len(in), err)
			}
		} else if used != len(in) {
			t.Fatalf("consumed %d of %d bytes without an error", used, len(in))
		}
		start := 0
		for i, fr := range frames {
			raw := in[start:ends[i]]
			if fr.txnr < 0 || fr.txnr > maxTxnr || !validCommand(fr.cmd) || len(fr.data) > p.maxData() {
				t.Fatalf("frame %v out of bounds", fr)
			}
			if got := appendFrame(nil, fr.txnr, fr.cmd, fr.data); !bytes.Equal(got, canonical(raw)) {
				t.Fatalf("frame %v encodes as %q; parsed from %q", fr, got, raw)
			}
			start = ends[i]
		}

		// In chunks: the same frames, the same error.
		p2 := newParser(maxData)
		frames2, err2 := parseChunks(p2, chunked(in, seed)...)
		if !equalFrames(frames, frames2) {
			t.Fatalf("in chunks: frames %v; in one chunk %v", frames2, frames)
		}
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("in chunks: error %v; in one chunk %v", err2, err)
		}
		if cap(p2.buf) > p2.maxData() {
			t.Fatalf("in chunks: buffer capacity %d above the maximum %d", cap(p2.buf), p2.maxData())
		}
		for _, fr := range frames {
			if err := checkFromServer(fr); err == nil && fr.cmd == cmdRsp {
				parseRsp(fr.data) // must not panic
			}
		}
	})
}

// FuzzRoundTrip encodes frames from arbitrary fields and parses them back
// in random chunks, with the maximum set to the largest data.
func FuzzRoundTrip(f *testing.F) {
	f.Add(1, "open", []byte(openOffers), 2, "syslog", []byte("<13>hello seq=1"), uint64(1))
	f.Add(999999999, "rsp", []byte("200 OK"), 0, "serverclose", []byte(nil), uint64(2))
	f.Add(0, "", []byte("\n\n"), -5, "a b", []byte("x"), uint64(3))
	f.Fuzz(func(t *testing.T, txnr1 int, cmd1 string, data1 []byte, txnr2 int, cmd2 string, data2 []byte, seed uint64) {
		valid := func(txnr int, cmd string) (int, string) {
			if txnr < 0 {
				txnr = -(txnr + 1)
			}
			txnr %= maxTxnr + 1
			var b []byte
			for i := 0; i < len(cmd) && len(b) < maxCmdLen; i++ {
				if isAlpha(cmd[i]) {
					b = append(b, cmd[i])
				}
			}
			if len(b) == 0 {
				return txnr, cmdSyslog
			}
			return txnr, string(b)
		}
		txnr1, cmd1 = valid(txnr1, cmd1)
		txnr2, cmd2 = valid(txnr2, cmd2)
		want := []frame{{txnr1, cmd1, data1}, {txnr2, cmd2, data2}}
		var stream []byte
		for _, fr := range want {
			stream = appendFrame(stream, fr.txnr, fr.cmd, fr.data)
		}
		if len(stream) != frameLen(txnr1, cmd1, len(data1))+frameLen(txnr2, cmd2, len(data2)) {
			t.Fatalf("frameLen disagrees with appendFrame for %v, %v", want[0], want[1])
		}
		for i := range want {
			if len(want[i].data) == 0 {
				want[i].data = nil
			}
		}
		p := newParser(max(len(data1), len(data2), 1))
		got, err := parseChunks(p, chunked(stream, seed)...)
		if err != nil || !equalFrames(got, want) {
			t.Fatalf("parsed %v, %v; want %v", got, err, want)
		}
		if p.state != inTxnr || p.n != 0 {
			t.Fatalf("parser not at a frame boundary after whole frames: state %d", p.state)
		}
	})
}

// FuzzParseRsp checks that parseRsp never panics and that what it accepts
// encodes back to the same response.
func FuzzParseRsp(f *testing.F) {
	f.Add([]byte("200 OK"))
	f.Add([]byte("200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"))
	f.Add([]byte("500 command disabled"))
	f.Add([]byte(""))
	f.Add([]byte("200\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseRsp(data)
		if err != nil {
			return
		}
		if r.code < 0 || r.code > 999 || bytes.IndexByte(r.msg, '\n') >= 0 {
			t.Fatalf("parseRsp(%q) = %d %q", data, r.code, r.msg)
		}
		again := []byte{byte('0' + r.code/100), byte('0' + r.code/10%10), byte('0' + r.code%10)}
		if r.msg != nil {
			again = append(append(again, ' '), r.msg...)
		}
		if r.data != nil {
			again = append(append(again, '\n'), r.data...)
		}
		r2, err := parseRsp(again)
		if err != nil || r2.code != r.code || !bytes.Equal(r2.msg, r.msg) || !bytes.Equal(r2.data, r.data) {
			t.Fatalf("parseRsp(%q) = %d %q %q; its encoding %q parses as %d %q %q, %v", data, r.code, r.msg, r.data, again, r2.code, r2.msg, r2.data, err)
		}
		if r.ok() {
			checkOpen(r) // must not panic
		}
	})
}

// FuzzParseOffers checks that parseOffers never panics, keeps to its
// limits, and that what it accepts encodes back to the same offers.
func FuzzParseOffers(f *testing.F) {
	f.Add([]byte("relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"))
	f.Add([]byte(openOffers))
	f.Add([]byte("a=,,x,\n\n=b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := parseOffers(data)
		if err != nil {
			return
		}
		var again []byte
		for _, of := range o {
			if len(of.name) == 0 || len(of.name) > maxOfferName || strings.ContainsAny(of.name, "=\n") || len(of.values) > maxOfferValues {
				t.Fatalf("parseOffers(%q): offer %q", data, of)
			}
			again = append(again, of.name...)
			for i, v := range of.values {
				if len(v) == 0 || len(v) > maxOfferValue || strings.ContainsAny(v, ",\n") {
					t.Fatalf("parseOffers(%q): value %q", data, v)
				}
				if i == 0 {
					again = append(again, '=')
				} else {
					again = append(again, ',')
				}
				again = append(again, v...)
			}
			again = append(again, '\n')
		}
		o2, err := parseOffers(again)
		if err != nil || len(o2) != len(o) {
			t.Fatalf("parseOffers(%q) = %q; its encoding %q parses as %q, %v", data, o, again, o2, err)
		}
		for i := range o {
			if o[i].name != o2[i].name || strings.Join(o[i].values, ",") != strings.Join(o2[i].values, ",") {
				t.Fatalf("parseOffers(%q) = %q; its encoding %q parses as %q", data, o, again, o2)
			}
		}
		o.version()
		o.supports(cmdSyslog)
	})
}
