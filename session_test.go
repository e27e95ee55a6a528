package reconn_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/proto"
)

// lineProtocol is a protocol with answers, as small as one can be: each
// message goes as "n message\n", and the server answers "n\n" for each.
// Its sessions carry at most limit messages, window of them unanswered.
type lineProtocol struct{ window, limit int }

func (p lineProtocol) Open(ctx context.Context, nc net.Conn) (proto.Session, error) {
	return &lineSession{p: p}, nil
}

func (p lineProtocol) MaxMessage() int { return 1 << 10 }

type lineSession struct{ p lineProtocol }

func (s *lineSession) Finish(dst []byte) []byte { return dst }

func (s *lineSession) Append(dst []byte, n int64, msg []byte) []byte {
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}

func (s *lineSession) Run(nc net.Conn, acked func(int64), refused func(int64, error)) error {
	r := bufio.NewScanner(nc)
	for r.Scan() {
		n, err := strconv.ParseInt(r.Text(), 10, 64)
		if err != nil {
			return err
		}
		acked(n)
	}
	if err := r.Err(); err != nil {
		return err
	}
	return net.ErrClosed
}

func (s *lineSession) Window() int  { return s.p.window }
func (s *lineSession) Limit() int64 { return int64(s.p.limit) }
func (s *lineSession) Close(ctx context.Context, nc net.Conn, n int64) error {
	return nil
}

// TestSessionLimitRotatesOnce checks that a session that reaches its
// limit of messages is replaced by exactly one new one, while the Conn is
// open and while Close flushes: the writer looks at the limit each time
// it has something to send, and each look used to plan a rotation of its
// own, in the background, each with its own dial, none of which could
// run once Close had begun.
func TestSessionLimitRotatesOnce(t *testing.T) {
	platformtest.NeedKernelSockets(t, "a protocol session's answers over TCP")
	srv := newTestServer(t, serverOptions{mode: answer})
	cd := newCountingDialer()
	d := testDialer()
	d.Dialer = cd
	const limit, total = 10, 95
	nc, err := proto.Dial(context.Background(), d, lineProtocol{window: 4, limit: limit}, "tcp", srv.addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*reconn.Conn)
	for i := range total {
		if _, err := fmt.Fprintf(c, "m%d\n", i); err != nil {
			t.Fatalf("Write(%d) = %v", i, err)
		}
		if i == total/2 {
			// Rotations while the Conn is open, then while Close
			// flushes.
			if err := c.Flush(testContext(t)); err != nil {
				t.Fatalf("Flush() = %v", err)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	s := c.Stats()
	dials := len(cd.times())
	if want := (total + limit - 1) / limit; s.Dials != int64(want) || s.Rotations != int64(want-1) {
		t.Errorf("Stats(): %d dials, %d rotations for %d messages in sessions of %d; want %d, %d", s.Dials, s.Rotations, total, limit, want, want-1)
	}
	if dials != int(s.Dials) {
		t.Errorf("%d connections dialed for %d installed (%d rotations); want one dial per rotation", dials, s.Dials, s.Rotations)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i := range total {
		if n := srv.texts[fmt.Sprintf("m%d", i)]; n != 1 {
			t.Errorf("message %d arrived %d times; want once", i, n)
		}
	}
}
