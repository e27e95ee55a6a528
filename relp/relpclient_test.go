package relp

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// testClient is a minimal RELP client for tests: it opens a session,
// sends syslog messages keeping at most window commands unanswered,
// waits for the answers and closes. One goroutine reads and checks what
// the server sends; the caller's goroutine writes.
//
// It exists to prove the test servers (the fake server and the imrelp
// harness) and to measure real servers; it neither redials nor re-sends.
type testClient struct {
	t     *testing.T
	nc    net.Conn
	sem   chan struct{} // a token for each command not yet answered
	txnr  int           // the next TXNR; used by the writer only
	nsent int           // syslog messages sent; used by the writer only
	wbuf  []byte

	mu          sync.Mutex    // guards the fields below
	pending     []sentCmd     // commands not yet answered, oldest first
	codes       []int         // the code answered to each message, 0 if none yet
	times       []time.Time   // when each message was answered
	answered    int           // messages answered
	maxPending  int           // the most commands unanswered at any time
	paused      chan struct{} // if not nil, the reader waits until it is closed
	serverClose bool          // the server sent the serverclose hint
	opened      chan response
	closeRsp    chan response
	readErr     error         // why the reader stopped; io.EOF for a clean end
	changed     chan struct{} // closed and replaced on every answer
	readDone    chan struct{} // closed when the reader has stopped
}

// A sentCmd is a command the client sent and the server has not answered.
type sentCmd struct {
	txnr int
	cmd  string
	msg  int // the message's index for syslog, else -1
}

// dialTestClient connects to addr (with TLS if conf is not nil), opens a
// session and checks the server's answer. The connection is closed at
// the end of the test.
func dialTestClient(ctx context.Context, t *testing.T, addr string, conf *tls.Config, window int) (*testClient, offers, error) {
	t.Helper()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if conf != nil {
		tc := tls.Client(nc, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tc
	}
	c := &testClient{
		t: t, nc: nc, sem: make(chan struct{}, window), txnr: 1,
		opened: make(chan response, 1), closeRsp: make(chan response, 1),
		changed: make(chan struct{}), readDone: make(chan struct{}),
	}
	go c.read()
	t.Cleanup(func() {
		c.resume()
		c.nc.Close()
		<-c.readDone
	})
	if err := c.command(ctx, cmdOpen, []byte(openOffers), -1); err != nil {
		return nil, nil, err
	}
	select {
	case r := <-c.opened:
		o, err := checkOpen(r)
		return c, o, err
	case <-c.readDone:
		select {
		case r := <-c.opened: // answered, then closed
			o, err := checkOpen(r)
			return c, o, err
		default:
		}
		return nil, nil, fmt.Errorf("no answer to open: %w", c.err())
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("no answer to open: %w", ctx.Err())
	}
}

// command waits for room in the window and sends one command.
func (c *testClient) command(ctx context.Context, cmd string, data []byte, msg int) error {
	select {
	case c.sem <- struct{}{}:
	case <-c.readDone:
		return fmt.Errorf("sending %s: the server ended the session: %w", cmd, c.err())
	case <-ctx.Done():
		return fmt.Errorf("sending %s: window full: %w", cmd, ctx.Err())
	}
	c.mu.Lock()
	c.pending = append(c.pending, sentCmd{txnr: c.txnr, cmd: cmd, msg: msg})
	c.maxPending = max(c.maxPending, len(c.pending))
	c.mu.Unlock()
	c.wbuf = appendFrame(c.wbuf[:0], c.txnr, cmd, data)
	c.txnr = nextTxnr(c.txnr)
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetWriteDeadline(dl)
	}
	_, err := c.nc.Write(c.wbuf)
	return err
}

// send sends one syslog message and returns its index, counted from 0.
func (c *testClient) send(ctx context.Context, msg []byte) (int, error) {
	i := c.nsent
	c.mu.Lock()
	c.codes = append(c.codes, 0)
	c.times = append(c.times, time.Time{})
	c.mu.Unlock()
	c.nsent++
	return i, c.command(ctx, cmdSyslog, msg, i)
}

// wait waits until every message sent has been answered, or the reader
// has stopped.
func (c *testClient) wait(ctx context.Context) error {
	for {
		c.mu.Lock()
		n, ch := len(c.pending), c.changed
		c.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-c.readDone:
			c.mu.Lock()
			n = len(c.pending)
			c.mu.Unlock()
			return fmt.Errorf("%d commands unanswered: %w", n, c.err())
		case <-ctx.Done():
			return fmt.Errorf("%d commands unanswered: %w", n, ctx.Err())
		}
	}
}

// close sends "close", waits for its answer and then for the server to
// close the connection.
func (c *testClient) close(ctx context.Context) error {
	if err := c.command(ctx, cmdClose, nil, -1); err != nil {
		return err
	}
	select {
	case <-c.closeRsp:
	case <-c.readDone:
		select {
		case <-c.closeRsp: // answered, then closed
			return nil
		default:
		}
		return fmt.Errorf("no answer to close: %w", c.err())
	case <-ctx.Done():
		return fmt.Errorf("no answer to close: %w", ctx.Err())
	}
	select {
	case <-c.readDone:
	case <-ctx.Done():
		return fmt.Errorf("the server did not close after close: %w", ctx.Err())
	}
	return nil
}

// waitAnswered waits until n messages have been answered, or the reader
// has stopped.
func (c *testClient) waitAnswered(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		got, ch := c.answered, c.changed
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-c.readDone:
			return fmt.Errorf("%d messages answered of %d: %w", c.numAnswered(), n, c.err())
		case <-ctx.Done():
			return fmt.Errorf("%d messages answered of %d: %w", c.numAnswered(), n, ctx.Err())
		}
	}
}

func (c *testClient) numAnswered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answered
}

// pause makes the reader stop reading before its next read, so that the
// server's answers stay in the socket buffers; resume lets it go on.
func (c *testClient) pause() {
	c.mu.Lock()
	if c.paused == nil {
		c.paused = make(chan struct{})
	}
	c.mu.Unlock()
}

func (c *testClient) resume() {
	c.mu.Lock()
	if c.paused != nil {
		close(c.paused)
		c.paused = nil
	}
	c.mu.Unlock()
}

// err returns why the reader stopped, or nil.
func (c *testClient) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

// results returns the code answered to each message (0 if none) and
// whether the server sent serverclose.
func (c *testClient) results() (codes []int, serverClose bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.codes...), c.serverClose
}

// read parses the server's frames until the connection ends.
func (c *testClient) read() {
	defer close(c.readDone)
	p := newParser(0)
	buf := make([]byte, 32<<10)
	var err error
	for err == nil {
		c.mu.Lock()
		paused := c.paused
		c.mu.Unlock()
		if paused != nil {
			<-paused
		}
		var n int
		n, err = c.nc.Read(buf)
		for b := buf[:n]; len(b) > 0; {
			k, f, ok, perr := p.parse(b)
			b = b[k:]
			if perr == nil && ok {
				perr = c.handle(f)
			}
			if perr != nil {
				err = perr
				c.nc.Close()
				break
			}
		}
	}
	c.mu.Lock()
	c.readErr = err
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// handle takes one frame from the server.
func (c *testClient) handle(f frame) error {
	if err := checkFromServer(f); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.txnr == 0 {
		// A hint: only serverclose means something.
		c.serverClose = c.serverClose || f.isServerClose()
		return nil
	}
	// The server answers in the order of the commands.
	if len(c.pending) == 0 || c.pending[0].txnr != f.txnr {
		return fmt.Errorf("rsp %v does not answer the oldest command (%v)", f, c.pending)
	}
	cmd := c.pending[0]
	c.pending = c.pending[1:]
	<-c.sem
	defer func() {
		close(c.changed)
		c.changed = make(chan struct{})
	}()
	if cmd.cmd == cmdClose {
		// librelp answers close with no data at all.
		c.closeRsp <- response{}
		return nil
	}
	r, err := parseRsp(f.data)
	if err != nil {
		return err
	}
	switch cmd.cmd {
	case cmdOpen:
		// r aliases the read buffer, which the next read reuses.
		r.msg, r.data = bytes.Clone(r.msg), bytes.Clone(r.data)
		c.opened <- r
	case cmdSyslog:
		c.codes[cmd.msg] = r.code
		c.times[cmd.msg] = time.Now()
		c.answered++
	}
	return nil
}

// testContext returns a context that ends when the test would otherwise
// hang: a generous bound, for a loaded machine.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
