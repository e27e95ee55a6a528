package relp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"

	"github.com/reconn/reconn/internal/proto"
)

// protocol starts RELP sessions for a Conn.
type protocol struct {
	window     int
	maxMessage int // the largest message sent
}

func (p *protocol) MaxMessage() int { return p.maxMessage }

// errServerClose ends a session that the server closed with the
// "serverclose" hint.
var errServerClose = errors.New("relp: the server closed the session (serverclose)")

// Open opens a session on nc: it sends "open" with TXNR 1 and the offers
// librelp expects, and checks the answer. A server's answer that does not
// offer the syslog command, or refuses, fails the dial.
func (p *protocol) Open(ctx context.Context, nc net.Conn) (proto.Session, error) {
	defer proto.BoundConn(ctx, nc)()
	if _, err := nc.Write(appendFrame(nil, 1, cmdOpen, []byte(openOffers))); err != nil {
		return nil, fmt.Errorf("relp: sending open: %w", err)
	}
	s := &session{p: newParser(0), window: p.window, closed: make(chan struct{})}
	f, err := s.next(nc)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return nil, fmt.Errorf("relp: waiting for the answer to open: %w", err)
	}
	if f.cmd != cmdRsp || f.txnr != 1 {
		return nil, fmt.Errorf("%w: answer to open: got %v", errMalformed, f)
	}
	r, err := parseRsp(f.data)
	if err != nil {
		return nil, err
	}
	if _, err := checkOpen(r); err != nil {
		return nil, err
	}
	return s, nil
}

// A session is one RELP session. Message n of the session goes with TXNR
// n+1: TXNR 1 was the open.
type session struct {
	p      *parser
	buf    []byte // read buffer
	rest   []byte // read and not yet parsed
	window int

	closeTxnr atomic.Int64  // the TXNR of "close", once sent
	closed    chan struct{} // closed when Run has the answer to close, or ends
}

// next reads the next frame.
func (s *session) next(nc net.Conn) (frame, error) {
	for {
		if len(s.rest) > 0 {
			n, f, ok, err := s.p.parse(s.rest)
			s.rest = s.rest[n:]
			if err != nil {
				return frame{}, err
			}
			if ok {
				return f, nil
			}
			continue
		}
		if s.buf == nil {
			s.buf = make([]byte, 64<<10)
		}
		n, err := nc.Read(s.buf)
		s.rest = s.buf[:n]
		if n == 0 && err != nil {
			return frame{}, err
		}
	}
}

// Append appends the syslog frame of message n. A newline that ends msg
// is not sent: the frame delimits the message.
func (s *session) Append(dst []byte, n int64, msg []byte) []byte {
	if k := len(msg); k > 0 && msg[k-1] == '\n' {
		msg = msg[:k-1]
	}
	return appendFrame(dst, int(n+1), cmdSyslog, msg)
}

// Finish adds nothing: each message is a frame of its own.
func (s *session) Finish(dst []byte) []byte { return dst }

func (s *session) Window() int { return s.window }

// Limit keeps TXNR below librelp's largest: a new session comes before.
func (s *session) Limit() int64 { return maxTxnr - 2 }

// Run reads the answers. They come in the order of the commands: the
// answer to message n must have TXNR n+1, and an answer for a command not
// sent, or out of order, ends the session as a protocol error.
func (s *session) Run(nc net.Conn, acked func(int64), refused func(int64, error)) error {
	defer close(s.closed)
	next := int64(2) // the TXNR of the next answer
	for {
		f, err := s.next(nc)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("relp: the server ended the session")
			}
			return err
		}
		if err := checkFromServer(f); err != nil {
			return err
		}
		if f.isServerClose() {
			return errServerClose
		}
		if f.cmd != cmdRsp {
			continue // another hint: nothing to act on
		}
		t := int64(f.txnr)
		if ct := s.closeTxnr.Load(); ct != 0 && t == ct {
			return nil // the answer to close: the session ended as it should
		}
		if t != next {
			return fmt.Errorf("%w: answer with TXNR %d; want %d", errMalformed, t, next)
		}
		r, err := parseRsp(f.data)
		if err != nil {
			return err
		}
		if !r.ok() {
			refused(t-1, fmt.Errorf("relp: server refused message %d: %d %s", t-1, r.code, r.msg))
		}
		acked(t - 1)
		next++
	}
}

// Close sends "close" after message n and waits for its answer, the end
// of the session, or ctx.
func (s *session) Close(ctx context.Context, nc net.Conn, n int64) error {
	t := n + 2
	s.closeTxnr.Store(t)
	defer proto.BoundConn(ctx, nc)()
	if _, err := nc.Write(appendFrame(nil, int(t), cmdClose, nil)); err != nil {
		return err
	}
	select {
	case <-s.closed:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
