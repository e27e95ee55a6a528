package vsfluentlogger

import (
	"net"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// TestAckServerModes checks the benchmark's fake server with a request of
// each mode, some with a chunk id and some without, in one write: it must
// count every record, and answer exactly the requests that asked, in
// order.
func TestAckServerModes(t *testing.T) {
	s := newAckServer(t)
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	entry := func(p []byte, text string) []byte {
		p = msgp.AppendArrayHeader(p, 2)
		p = msgp.AppendInt64(p, time.Now().Unix())
		p = msgp.AppendMapHeader(p, 1)
		p = msgp.AppendString(p, "message")
		return msgp.AppendString(p, text)
	}
	option := func(p []byte, chunk string) []byte {
		p = msgp.AppendMapHeader(p, 2)
		p = msgp.AppendString(p, "size")
		p = msgp.AppendInt(p, 1)
		p = msgp.AppendString(p, "chunk")
		return msgp.AppendString(p, chunk)
	}
	var req []byte
	// Message with an option, and without one.
	req = msgp.AppendArrayHeader(req, 4)
	req = msgp.AppendString(req, benchTag)
	req = msgp.AppendInt64(req, time.Now().Unix())
	req = msgp.AppendMapHeader(req, 1)
	req = msgp.AppendString(req, "message")
	req = msgp.AppendString(req, "m-1")
	req = option(req, "c-message")
	req = msgp.AppendArrayHeader(req, 3)
	req = msgp.AppendString(req, benchTag)
	req = msgp.AppendInt64(req, time.Now().Unix())
	req = msgp.AppendMapHeader(req, 0)
	// Forward: 3 entries with a chunk, 2 without an option.
	req = msgp.AppendArrayHeader(req, 3)
	req = msgp.AppendString(req, benchTag)
	req = msgp.AppendArrayHeader(req, 3)
	for _, s := range []string{"f-1", "f-2", "f-3"} {
		req = entry(req, s)
	}
	req = option(req, "c-forward")
	req = msgp.AppendArrayHeader(req, 2)
	req = msgp.AppendString(req, benchTag)
	req = msgp.AppendArrayHeader(req, 2)
	req = entry(entry(req, "f-4"), "f-5")
	// PackedForward: 4 entries as a bin, 2 as a str.
	var packed []byte
	for _, s := range []string{"p-1", "p-2", "p-3", "p-4"} {
		packed = entry(packed, s)
	}
	req = msgp.AppendArrayHeader(req, 3)
	req = msgp.AppendString(req, benchTag)
	req = msgp.AppendBytes(req, packed)
	req = option(req, "c-packed-bin")
	req = msgp.AppendArrayHeader(req, 3)
	req = msgp.AppendString(req, benchTag)
	req = msgp.AppendString(req, string(entry(entry(nil, "p-5"), "p-6")))
	req = option(req, "c-packed-str")
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}

	nc.SetReadDeadline(time.Now().Add(time.Minute))
	r := msgp.NewReader(nc)
	for _, want := range []string{"c-message", "c-forward", "c-packed-bin", "c-packed-str"} {
		n, err := r.ReadMapHeader()
		if err != nil || n != 1 {
			t.Fatalf("answer: a map of %d, %v; want a map of 1", n, err)
		}
		if k, err := r.ReadString(); err != nil || k != "ack" {
			t.Fatalf("answer key %q, %v; want \"ack\"", k, err)
		}
		if v, err := r.ReadString(); err != nil || v != want {
			t.Fatalf("ack %q, %v; want %q", v, err, want)
		}
	}
	nc.Close()
	s.stop()
	if s.err != nil {
		t.Fatalf("fake server: %v", s.err)
	}
	if got := s.records.Load(); got != 1+1+5+6 {
		t.Errorf("the server counted %d records; want 13", got)
	}
}
