package forward

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseAck: arbitrary bytes never panic the answer decoder; what it
// accepts is a whole value, and the id it returns lies inside it.
func FuzzParseAck(f *testing.F) {
	f.Add(appendStr(appendStr(appendMapHeader(nil, 1), "ack"), "0123456789abcdefghijklmn"))
	f.Add([]byte{0x81, 0xa3, 'a', 'c', 'k', 0xdb, 0xff, 0xff, 0xff, 0xf0})
	f.Add([]byte{0xdf, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc1})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, n, err := parseAck(b)
		if err != nil {
			if !errors.Is(err, errShort) && !errors.Is(err, errMalformed) {
				t.Fatalf("error %v wraps neither errShort nor errMalformed", err)
			}
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("length %d of %d bytes", n, len(b))
		}
		if len(id) > 0 && !bytes.Contains(b[:n], id) {
			t.Fatalf("id %q not in the answer", id)
		}
	})
}

// FuzzRequestRoundTrip: records packed by a session decode, with the
// fake server's strict decoder, to the same texts, count and chunk,
// compressed or not.
func FuzzRequestRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), 3, 2, false)
	f.Add([]byte{}, 1, 1, false)
	f.Add([]byte("hello, compressed"), 20, 3, true)
	f.Fuzz(func(t *testing.T, text []byte, records, batch int, compress bool) {
		records, batch = 1+abs(records)%50, 1+abs(batch)%8
		c := &Conn{key: appendStr(nil, "message")}
		s := &session{p: &protocol{tag: appendStr(nil, "t"), batchRecords: batch}}
		if compress {
			s.p.gz = new(gzipper)
		}
		var dst []byte
		for i := range records {
			e := c.appendHead(nil, fixedTime, 1)
			e = append(e, c.key...)
			e = appendStr(e, text)
			dst = s.Append(dst, int64(i+1), e)
		}
		dst = s.Finish(dst)
		got := 0
		for len(dst) > 0 {
			r, n, err := decodeRequest(dst, "message")
			if err != nil {
				t.Fatal(err)
			}
			if r.gzipped != compress {
				t.Fatalf("compressed %v; want %v", r.gzipped, compress)
			}
			for _, rec := range r.records {
				if rec != string(text) {
					t.Fatalf("record %q; want %q", rec, text)
				}
			}
			got += len(r.records)
			dst = dst[n:]
		}
		if got != records || len(s.pending) != (records+batch-1)/batch {
			t.Fatalf("%d records in %d requests; want %d in %d", got, len(s.pending), records, (records+batch-1)/batch)
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
