package reconn

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// Read reads from the current underlying connection. It never redials.
func (c *Conn) Read(b []byte) (int, error) {
	if c.cfg.proto != nil {
		return 0, c.opError("read", errNoRead)
	}
	c.readers.Add(1)
	defer c.readers.Add(-1)
	for {
		if c.closed.Load() {
			return 0, c.opError("read", net.ErrClosed)
		}
		l := c.cur.Load()
		if l.placeholder {
			if err := c.waitConnected(); err != nil {
				return 0, c.opError("read", err)
			}
			continue
		}
		n, err := l.nc.Read(b)
		if err == nil {
			return n, nil
		}
		if errors.Is(err, syscall.ECONNRESET) {
			// The receive took the socket's reset: the check's peek
			// will not see it.
			l.p.MarkReset()
		}
		if c.closed.Load() {
			return n, c.opError("read", net.ErrClosed)
		}
		if l.retired.Load() && (!errors.Is(err, os.ErrDeadlineExceeded) || !c.readExpired()) {
			// l was replaced: what its peer sent is read; go on with
			// the new link.
			c.mu.Lock()
			if c.lingering == l {
				c.lingering = nil
			}
			c.mu.Unlock()
			l.close()
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// waitConnected waits until an Async Conn has its first connection, the
// read deadline passes, or Close.
func (c *Conn) waitConnected() error {
	c.gate.sig.enter()
	defer c.gate.sig.leave()
	for {
		ch := c.gate.sig.wait()
		c.mu.Lock()
		rdl := c.rdl
		c.mu.Unlock()
		var expire <-chan time.Time
		if !rdl.IsZero() {
			d := time.Until(rdl)
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			expire = t.C
		}
		select {
		case <-c.w.connected:
			return nil
		case <-c.life.Done():
			return net.ErrClosed
		case <-ch:
		case <-expire:
		}
	}
}

// readExpired reports whether the read deadline has passed.
func (c *Conn) readExpired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.rdl.IsZero() && !time.Now().Before(c.rdl)
}
