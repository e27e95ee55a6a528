package reconn

import (
	"net"
	"time"
)

// SetDeadline sets the read and write deadlines, as SetReadDeadline and
// SetWriteDeadline do.
func (c *Conn) SetDeadline(t time.Time) error {
	return c.setDeadline(t, true, true)
}

// SetReadDeadline sets the deadline for Read calls, on the current
// connection and every later one. A zero t means Read will not time out.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, true, false)
}

// SetWriteDeadline sets the deadline for Write calls, on the current
// connection and every later one. It also bounds a Write waiting for a
// redial, for another goroutine's redial, or for room in the replay
// buffer, including a Write already waiting. A zero t means Write will
// not time out.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, false, true)
}

func (c *Conn) setDeadline(t time.Time, r, w bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return c.opError("set", net.ErrClosed)
	}
	links := [...]*link{c.cur.Load(), c.lingering}
	if r && c.cfg.proto == nil {
		c.rdl = t
		for _, l := range links {
			if l != nil {
				l.nc.SetReadDeadline(t)
			}
		}
	}
	if w {
		c.wdl = t
		ns := int64(0)
		if !t.IsZero() {
			ns = max(t.UnixNano(), 1)
		}
		c.wdlNano.Store(ns)
		links[0].nc.SetWriteDeadline(c.linkWriteDeadline())
		for o := range c.ops {
			o.armLocked(t)
		}
	}
	c.gate.sig.kick()
	return nil
}

// deadlinePassed reports whether the write deadline has passed.
func (c *Conn) deadlinePassed() bool {
	ns := c.wdlNano.Load()
	return ns != 0 && time.Now().UnixNano() >= ns
}

// linkWriteDeadline is the write deadline a link must have: the Conn's,
// or Close's flush limit once Close has begun. With Async, the write
// deadline bounds Write, which does not write on the link: a link's
// writes are bounded by Close alone. c.mu is held.
func (c *Conn) linkWriteDeadline() time.Time {
	switch {
	case c.async() && c.w.stopping.Load():
		return aLongTimeAgo
	case c.closed.Load():
		return c.flushDL
	case c.async():
		return time.Time{}
	}
	return c.wdl
}

// restoreWriteDeadline gives l back the write deadline it must have after
// an op moved it to the past.
func (c *Conn) restoreWriteDeadline(l *link) {
	c.mu.Lock()
	l.nc.SetWriteDeadline(c.linkWriteDeadline())
	c.mu.Unlock()
}

var aLongTimeAgo = time.Unix(1, 0)
