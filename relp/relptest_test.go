package relp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconn/reconn/faultnet"
)

// imrelpOpenReply is what imrelp (rsyslog 8.2302, librelp 1.11.0) answers
// to "open": the fake server's default.
const imrelpOpenReply = "200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"

// fakeOptions configure a fakeServer. With the zero value it answers as
// imrelp does, except where fakeServer's documentation says otherwise.
type fakeOptions struct {
	// tls, if not nil, makes the server speak RELP over TLS.
	tls *tls.Config
	// openReply is the data of the rsp to "open"; empty means
	// imrelpOpenReply. A reply whose code is not 200 refuses the session:
	// serverclose follows and the connection closes.
	openReply string
	// closeReply is the data of the rsp to "close"; librelp sends none
	// ("N rsp 0"), the zero value.
	closeReply string
	// noCloseHint leaves out the "serverclose" hint that librelp sends
	// after its rsp to "close".
	noCloseHint bool
	// maxData is the largest DATALEN accepted; 0 means defaultMaxData.
	// A larger frame is a violation and ends the session, as librelp
	// does in its "abort" oversize mode (imrelp's default is to cut it).
	maxData int
	// answer, if not nil, chooses the status code and text of the rsp to
	// each syslog message; nil answers 200 OK to all of them. It is
	// called with the server's lock held and must not call its methods.
	answer func(m received) (code int, text string)
}

// A received is a syslog message as the fake server recorded it.
type received struct {
	conn int    // the connection, counted from 1 in accept order
	txnr int    // the TXNR it came with
	msg  []byte // the frame's data
	seq  int    // its faultnet sequence number, or -1
	code int    // the code answered, once the rsp is written; else 0
}

// fakeServer is an in-process RELP server on loopback for tests. It
// answers "open" with offers, every "syslog" frame with an rsp, "close"
// as librelp does, and checks that the client keeps to the protocol as
// librelp's server would: open first with TXNR 1, then TXNRs one by one,
// syslog only after open, nothing after close, frames well formed. A
// violation is recorded (see violations) and treated as imrelp does (see
// TestImrelpWire): a command before open is answered "500 command
// disabled"; anything else ends the session with serverclose. Unlike
// imrelp, the fake server treats TXNR 0 from a client as a violation, and
// a frame above its maximum too (imrelp truncates it and answers 200).
//
// It can be told to answer some messages with an error code (answer),
// to hold back or delay its answers (holdAcks, setDelay), to send
// serverclose, malformed bytes or a reset on a connection, and to restart.
//
// It records every syslog message received, with its sequence number
// (faultnet.AppendMessage), for loss and duplicate accounting (report).
//
// Multiple goroutines may invoke its methods simultaneously.
type fakeServer struct {
	t    *testing.T
	opts fakeOptions
	addr string

	mu      sync.Mutex // guards the fields below
	ln      net.Listener
	conns   []*fakeConn // every accepted connection, oldest first
	msgs    []received
	bad     []error // violations by clients
	held    bool
	delay   time.Duration
	changed chan struct{} // closed and replaced on every change
	closed  bool

	wg sync.WaitGroup
}

// newFakeServer starts a fake server on a free port of 127.0.0.1 and
// registers its shutdown with t.Cleanup.
func newFakeServer(t *testing.T, opts fakeOptions) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, opts: opts, addr: ln.Addr().String(), ln: ln, changed: make(chan struct{})}
	s.wg.Go(func() { s.accept(ln) })
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) accept(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed || s.ln != ln {
			s.mu.Unlock()
			nc.Close()
			return
		}
		c := &fakeConn{s: s, id: len(s.conns) + 1, tcp: nc.(*net.TCPConn), nc: nc, kick: make(chan struct{}, 1), end: make(chan struct{}), next: 1}
		if s.opts.tls != nil {
			c.nc = tls.Server(nc, s.opts.tls)
		}
		s.conns = append(s.conns, c)
		s.notify()
		s.mu.Unlock()
		s.wg.Go(c.read)
		s.wg.Go(c.write)
	}
}

// close ends every connection and the listener and waits for the
// server's goroutines.
func (s *fakeServer) close() {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	conns := s.conns
	s.mu.Unlock()
	for _, c := range conns {
		c.closeFIN()
	}
	s.wg.Wait()
}

// notify wakes the waiters; mu is held.
func (s *fakeServer) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait waits until cond, called with mu held, returns true, or ctx ends.
func (s *fakeServer) wait(ctx context.Context, what string, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		}
	}
}

// waitConns waits until the server has accepted n connections in all.
func (s *fakeServer) waitConns(ctx context.Context, n int) error {
	return s.wait(ctx, fmt.Sprintf("%d connections", n), func() bool { return len(s.conns) >= n })
}

// waitMessages waits until the server has received n syslog messages.
func (s *fakeServer) waitMessages(ctx context.Context, n int) error {
	return s.wait(ctx, fmt.Sprintf("%d messages", n), func() bool { return len(s.msgs) >= n })
}

// waitAnswered waits until the server has written its rsp to n syslog
// messages.
func (s *fakeServer) waitAnswered(ctx context.Context, n int) error {
	return s.wait(ctx, fmt.Sprintf("%d answers", n), func() bool { return s.answered() >= n })
}

// answered counts the messages answered; mu is held.
func (s *fakeServer) answered() int {
	n := 0
	for _, m := range s.msgs {
		if m.code != 0 {
			n++
		}
	}
	return n
}

// conn returns the i-th connection accepted, counted from 1.
func (s *fakeServer) conn(i int) *fakeConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 1 || i > len(s.conns) {
		s.t.Fatalf("fakeServer.conn(%d) with %d connections", i, len(s.conns))
	}
	return s.conns[i-1]
}

// messages returns a copy of the syslog messages received so far.
func (s *fakeServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// violations returns the protocol violations found so far.
func (s *fakeServer) violations() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.bad...)
}

// holdAcks holds back every rsp to syslog and close from now on, on
// every connection, until releaseAcks: the client's window fills.
func (s *fakeServer) holdAcks() {
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
}

// releaseAcks sends the rsps held back, in order, and answers at once
// again.
func (s *fakeServer) releaseAcks() {
	s.mu.Lock()
	s.held = false
	for _, c := range s.conns {
		c.wake()
	}
	s.mu.Unlock()
}

// setDelay delays every frame written from now on by d.
func (s *fakeServer) setDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// restart resets every connection, closes the listener and listens again
// on the same address, as a server that restarts.
func (s *fakeServer) restart() error {
	s.mu.Lock()
	old, conns := s.ln, s.conns
	s.ln = nil
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	for _, c := range conns {
		c.reset()
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ln.Close()
		return net.ErrClosed
	}
	s.ln = ln
	s.wg.Go(func() { s.accept(ln) })
	return nil
}

// A fakeReport sorts the sequence numbers 0..sent-1 by what the server
// received of them.
type fakeReport struct {
	sent       int
	received   int   // distinct messages received
	duplicates int   // receptions beyond the first
	missing    []int // never received, the first 20
	nmissing   int
	rejected   int // received and answered with a code other than 200
}

func (r fakeReport) String() string {
	return fmt.Sprintf("sent %d, received %d, missing %d %v, duplicated %d, rejected %d", r.sent, r.received, r.nmissing, r.missing, r.duplicates, r.rejected)
}

// report accounts for messages with sequence numbers 0..sent-1.
func (s *fakeServer) report(sent int) fakeReport {
	r := fakeReport{sent: sent}
	count := make(map[int]int)
	for _, m := range s.messages() {
		if m.seq >= 0 {
			count[m.seq]++
		}
		if m.code != 0 && m.code != codeOK {
			r.rejected++
		}
	}
	for seq := range sent {
		switch n := count[seq]; n {
		case 0:
			r.nmissing++
			if len(r.missing) < 20 {
				r.missing = append(r.missing, seq)
			}
		default:
			r.received++
			r.duplicates += n - 1
		}
	}
	return r
}

// A fakeConn is one connection of a fakeServer.
type fakeConn struct {
	s   *fakeServer
	id  int
	tcp *net.TCPConn
	nc  net.Conn // tcp, or the TLS connection over it

	wmu sync.Mutex // serializes writes to nc

	// Guarded by s.mu.
	out         []outFrame    // frames waiting to be written, in order
	next        int           // the TXNR the next command must carry
	opened      bool          // "open" answered with 200
	closing     bool          // "close" received
	outstanding int           // commands read and not yet answered
	maxOut      int           // the most outstanding at any time
	ended       bool          // the connection is closed
	endErr      error         // why the reader stopped
	kick        chan struct{} // wakes the writer
	end         chan struct{} // closed when the connection is closed
}

// An outFrame is an rsp or a hint waiting to be written.
type outFrame struct {
	txnr  int
	cmd   string
	data  string
	msg   int  // index in s.msgs of the message it answers, or -1
	code  int  // the code it carries, for the record
	last  bool // close the connection after writing it
	bound bool // an answer: held back by holdAcks
}

// done is closed when the connection has been closed.
func (c *fakeConn) done() <-chan struct{} { return c.end }

// maxOutstanding returns the most commands that the server had read
// and not yet answered at any one time: a lower bound of the client's
// largest window in use.
func (c *fakeConn) maxOutstanding() int {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.maxOut
}

// readErr returns why the reader stopped: nil for a clean EOF after
// close, or the error.
func (c *fakeConn) readErr() error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.endErr
}

// wake kicks the writer.
func (c *fakeConn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// read parses the client's frames and answers them.
func (c *fakeConn) read() {
	p := newParser(c.s.opts.maxData)
	buf := make([]byte, 32<<10)
	var err error
	for err == nil {
		var n int
		n, err = c.nc.Read(buf)
		for b := buf[:n]; len(b) > 0 && err == nil; {
			k, f, ok, perr := p.parse(b)
			b = b[k:]
			switch {
			case perr != nil:
				err = c.violation(perr)
			case ok:
				err = c.handle(f)
			}
		}
	}
	if errors.Is(err, errSessionClosed) {
		return // the writer closes after the last answer
	}
	c.s.mu.Lock()
	if !errors.Is(err, io.EOF) {
		c.endErr = err
	}
	c.s.mu.Unlock()
	c.closeFIN()
}

// errSessionClosed stops the reader after close or a refused open: the
// writer closes the connection after the last answer.
var errSessionClosed = errors.New("session closed")

// violation records err as a protocol violation and ends the session as
// imrelp does: after the answers already due, the serverclose hint, then
// the connection closes. The reader stops.
func (c *fakeConn) violation(err error) error {
	c.s.mu.Lock()
	c.record(err)
	c.out = append(c.out, outFrame{cmd: cmdServerClose, msg: -1, last: true})
	c.s.mu.Unlock()
	c.wake()
	return errSessionClosed
}

// record records err as a protocol violation; s.mu is held.
func (c *fakeConn) record(err error) {
	c.s.bad = append(c.s.bad, fmt.Errorf("connection %d: %w", c.id, err))
	c.s.notify()
}

// handle answers one frame from the client.
func (c *fakeConn) handle(f frame) error {
	c.s.mu.Lock()
	want, opened, closing := c.next, c.opened, c.closing
	c.s.mu.Unlock()
	switch {
	case closing:
		return c.violation(fmt.Errorf("frame %v after close", f))
	case f.txnr != want:
		return c.violation(fmt.Errorf("frame %v: TXNR %d; want %d", f, f.txnr, want))
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	defer c.wake()
	c.next = nextTxnr(c.next)
	c.outstanding++
	c.maxOut = max(c.maxOut, c.outstanding)
	switch {
	case f.cmd == cmdOpen && opened:
		// imrelp answers so, twice, and ends the session.
		c.record(fmt.Errorf("frame %v: open in an open session", f))
		c.out = append(c.out,
			outFrame{txnr: f.txnr, cmd: cmdRsp, data: "500 protocol error: connection already open", msg: -1},
			outFrame{txnr: f.txnr, cmd: cmdRsp, data: "500 error 10047 on connect", msg: -1},
			outFrame{cmd: cmdServerClose, msg: -1, last: true})
		return errSessionClosed
	case f.cmd != cmdOpen && !opened:
		// imrelp answers so and goes on.
		c.record(fmt.Errorf("frame %v before open", f))
		c.out = append(c.out, outFrame{txnr: f.txnr, cmd: cmdRsp, data: "500 command disabled", msg: -1})
		return nil
	}
	switch f.cmd {
	case cmdOpen:
		return c.open(f)
	case cmdSyslog:
		m := received{conn: c.id, txnr: f.txnr, msg: append([]byte(nil), f.data...), seq: -1}
		if seq, ok := faultnet.ParseSeq(m.msg); ok {
			m.seq = seq
		}
		code, text := codeOK, "OK"
		if c.s.opts.answer != nil {
			code, text = c.s.opts.answer(m)
		}
		c.s.msgs = append(c.s.msgs, m)
		c.out = append(c.out, outFrame{txnr: f.txnr, cmd: cmdRsp, data: fmt.Sprintf("%03d %s", code, text), msg: len(c.s.msgs) - 1, code: code, bound: true})
		c.s.notify()
		return nil
	case cmdClose:
		c.closing = true
		c.out = append(c.out, outFrame{txnr: f.txnr, cmd: cmdRsp, data: c.s.opts.closeReply, msg: -1, bound: true, last: c.s.opts.noCloseHint})
		if !c.s.opts.noCloseHint {
			c.out = append(c.out, outFrame{cmd: cmdServerClose, msg: -1, bound: true, last: true})
		}
		return errSessionClosed
	}
	// An unknown command: imrelp ends the session without an answer.
	c.record(fmt.Errorf("unknown command in %v", f))
	c.out = append(c.out, outFrame{cmd: cmdServerClose, msg: -1, last: true})
	return errSessionClosed
}

// open answers "open"; s.mu is held.
func (c *fakeConn) open(f frame) error {
	reply := c.s.opts.openReply
	if reply == "" {
		reply = imrelpOpenReply
	}
	o, err := parseOffers(f.data)
	if err == nil {
		if _, err = o.version(); err == nil && !o.supports(cmdSyslog) {
			// imrelp requires the syslog command.
			reply = "500 required command not supported by client"
		}
	}
	if err != nil {
		c.record(fmt.Errorf("open: %w", err))
		reply = "500 error in open offers"
	}
	r, _ := parseRsp([]byte(reply))
	c.opened = r.ok()
	c.out = append(c.out, outFrame{txnr: f.txnr, cmd: cmdRsp, data: reply, msg: -1})
	if !c.opened {
		// imrelp ends a session it refused with serverclose.
		c.out = append(c.out, outFrame{cmd: cmdServerClose, msg: -1, last: true})
		return errSessionClosed
	}
	return nil
}

// write writes the frames queued by the reader, holding back answers
// while the server holds acks.
func (c *fakeConn) write() {
	var buf []byte
	for {
		select {
		case <-c.kick:
		case <-c.end:
			return
		}
		for {
			c.s.mu.Lock()
			if len(c.out) == 0 || c.out[0].bound && c.s.held || c.ended {
				c.s.mu.Unlock()
				break
			}
			of, delay := c.out[0], c.s.delay
			c.out = c.out[1:]
			if of.cmd == cmdRsp {
				// Count the answer as given before writing it, so that
				// the count never exceeds what the client has in flight.
				c.outstanding--
			}
			c.s.mu.Unlock()
			if delay > 0 {
				select {
				case <-time.After(delay):
				case <-c.end:
					return
				}
			}
			buf = appendFrame(buf[:0], of.txnr, of.cmd, []byte(of.data))
			c.wmu.Lock()
			_, err := c.nc.Write(buf)
			c.wmu.Unlock()
			c.s.mu.Lock()
			if of.msg >= 0 && err == nil {
				c.s.msgs[of.msg].code = of.code
			}
			c.s.notify()
			c.s.mu.Unlock()
			if err != nil || of.last {
				c.closeFIN()
				return
			}
		}
	}
}

// shut marks the connection ended and drops what waits to be written. It
// reports false if it had already ended.
func (c *fakeConn) shut() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.ended {
		return false
	}
	c.ended = true
	c.out = nil
	close(c.end)
	c.s.notify()
	return true
}

// closeFIN closes the connection gracefully, without a hint; answers
// not yet written are dropped.
func (c *fakeConn) closeFIN() {
	if c.shut() {
		c.nc.Close()
	}
}

// reset closes the connection abortively (RST); answers not yet written
// are dropped, and so is what the server's kernel holds unread.
func (c *fakeConn) reset() {
	if c.shut() {
		c.tcp.SetLinger(0)
		c.tcp.Close()
	}
}

// serverClose sends the "serverclose" hint at once, ahead of any answer
// held back or not yet written, and closes the connection: the commands
// not answered stay unanswered.
func (c *fakeConn) serverClose() {
	c.sendRaw(appendFrame(nil, 0, cmdServerClose, nil))
	c.closeFIN()
}

// sendRaw writes b to the client at once, ahead of any answer held back:
// malformed frames, hints, answers out of order.
func (c *fakeConn) sendRaw(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.nc.Write(b)
	c.nc.SetWriteDeadline(time.Time{})
}

// formatViolations lists violations one a line.
func formatViolations(errs []error) string {
	var b strings.Builder
	for _, err := range errs {
		b.WriteString("\n\t")
		b.WriteString(err.Error())
	}
	return b.String()
}

// codeError is the code of a response that refuses a command.
const codeError = 500

// nextTxnr returns the transaction number that follows t. The
// specification latches TXNR at 999,999,999 and goes on with 1.
//
// librelp (1.11 and later) goes from 999,999,999 to 1,000,000,000 instead,
// which its own frame builder then refuses, and its server expects exactly
// that number next: a session cannot outlive 999,999,999 commands with
// librelp on either side, so a client should open a new session before
// its TXNR reaches maxTxnr.
func nextTxnr(t int) int {
	if t >= maxTxnr || t < 0 {
		return 1
	}
	return t + 1
}

// frameLen returns the length of the frame that appendFrame writes for a
// TXNR, a command and n bytes of data.
func frameLen(txnr int, cmd string, n int) int {
	l := len(strconv.Itoa(txnr)) + 1 + len(cmd) + 1 + len(strconv.Itoa(n)) + 1
	if n > 0 {
		l += 1 + n
	}
	return l
}
