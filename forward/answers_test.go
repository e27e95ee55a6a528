package forward

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reconn/reconn"
)

// TestBadAnswers: a server whose first answer is garbage, claims a huge
// length, nests too deep, is not a map, or acknowledges a request never
// sent. The session ends with an error that says what was wrong, the Conn
// redials and sends again what was not acknowledged, and every record
// arrives.
func TestBadAnswers(t *testing.T) {
	deep := []byte{0x81, 0xa1, 'x'}
	for range 20 {
		deep = append(deep, 0x91)
	}
	deep = append(deep, 0xc0)
	for _, tc := range []struct {
		name   string
		answer []byte
		want   string
	}{
		{"garbage", []byte{0xc1, 0xc1, 0xc1}, "begins no MessagePack value"},
		{"huge", []byte{0x81, 0xa3, 'a', 'c', 'k', 0xdb, 0xff, 0xff, 0xff, 0xf0}, "a string of"},
		{"huge-map", []byte{0xdf, 0x7f, 0xff, 0xff, 0xff}, "a collection of"},
		{"deep", deep, "nested deeper"},
		{"array", []byte{0x91, 0xa3, 'a', 'c', 'k'}, "not a map"},
		{"no-ack", []byte{0x81, 0xa2, 'o', 'k', 0xc3}, "no ack"},
		{"wrong-ack", appendStr(appendStr(appendMapHeader(nil, 1), "ack"), "not-a-chunk-id-we-sent!!"), "no request waiting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeServer(t, "message", fakeOptions{answer: tc.answer})
			d := &Dialer{Dialer: reconn.Dialer{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, FlushTimeout: time.Minute}}
			c, err := d.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			const n = 2000
			writeAndClose(t, c, n)
			st := c.Stats()
			if st.LastError == nil || !errors.Is(st.LastError, errMalformed) || !strings.Contains(st.LastError.Error(), tc.want) {
				t.Errorf("LastError = %v; want a malformed answer: %s", st.LastError, tc.want)
			}
			if st.Redials < 1 {
				t.Errorf("%d redials; want one at least", st.Redials)
			}
			s.checkRecords(t, n, false)
		})
	}
}

// TestAckTimeout: a server that takes requests and never acknowledges them
// on its first connection. Each request waits AckTimeout at most: then the
// Conn drops the connection, redials, and sends again what was not
// acknowledged, which the next connection acknowledges.
func TestAckTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPipeServer(t, "message", fakeOptions{silentFirst: true})
		const ackTimeout = 2 * time.Second
		d := &Dialer{AckTimeout: ackTimeout, Dialer: reconn.Dialer{Dialer: s, FlushTimeout: time.Minute}}
		c, err := d.Dial("tcp", "127.0.0.1:1") // served by the pipe server
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		const n = 100
		for i := range n {
			if _, err := fmt.Fprintf(c, "r-%d", i); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		took := time.Since(start)
		st := c.Stats()
		if !errors.Is(st.LastError, ErrAckTimeout) {
			t.Errorf("LastError = %v; want ErrAckTimeout", st.LastError)
		}
		if took < ackTimeout || took > ackTimeout+time.Second {
			t.Errorf("Close returned %v after the first Write; want just after the ack timeout (%v) and a redial", took, ackTimeout)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for i := range n {
			if s.got[fmt.Sprintf("r-%d", i)] != 1 {
				t.Fatalf("record r-%d acknowledged %d times; want 1", i, s.got[fmt.Sprintf("r-%d", i)])
			}
		}
	})
}
