package reconn

import (
	"time"

	"github.com/reconn/reconn/internal/sock"
)

// check runs the liveness check of the Conn's mode on l: before every
// Write, or in watch mode only after the watcher flagged l. In a protocol
// session, the session's end flags l.
func (c *Conn) check(h hold, l *link) {
	if l.sess != nil {
		if l.state == healthy && l.flagged.Load() {
			c.died(h, l, *l.ended.Load(), true)
		}
		return
	}
	if l.state != healthy || c.cfg.op == 0 {
		return
	}
	if l.watched && !(l.flagged.Load() && l.flagged.Swap(false)) {
		return
	}
	if r, ok := l.probe(h, c.cfg.op); ok {
		c.st.checks.Add(1)
		c.observe(h, l, r, true)
	}
}

// refresh asks for l's acknowledgement count and state, trims the ring,
// and marks l broken if it is.
func (c *Conn) refresh(h hold, l *link) {
	if !l.ackable || l.state != healthy {
		return
	}
	if l.sess != nil {
		c.trimTo(h, c.answeredNow(h, l))
		c.check(h, l)
		return
	}
	if r, ok := l.probe(h, sock.Acks|sock.State); ok {
		c.observe(h, l, r, false)
	}
}

// observe applies what a probe of l learned: what l's peer acknowledged,
// and whether it closed, reset or is leaving (see the package
// documentation for what a FIN means).
func (c *Conn) observe(h hold, l *link, r sock.Result, byCheck bool) {
	if r.AckOK && l.ackable {
		c.trimTo(h, r.Acked)
	}
	switch r.Health {
	case sock.Closing:
		if !l.wclosed {
			// Only this package half-closes a link; any other FIN from
			// this side means the socket is being torn down.
			c.died(h, l, ErrPeerReset, byCheck)
		}
	case sock.Broken:
		c.died(h, l, ErrPeerReset, byCheck)
	case sock.PeerClosed:
		if c.cfg.replay <= 0 {
			// Without replay, what a closing peer drops is lost: leave
			// before writing to it.
			c.died(h, l, ErrPeerClosed, byCheck)
			return
		}
		if l.peerFIN {
			return // a receiver that half-closed at accept: it stays
		}
		if c.halfClosedAtAccept(h, l, r) {
			l.peerFIN = true
			c.st.peerHalfClosed.Add(1)
			return
		}
		c.leave(h, l, byCheck)
	}
}

// finGrace is how soon after a connection is made its peer's FIN still
// counts as a half-close at accept, when the connection it replaced was
// itself left for a FIN (see halfClosedAtAccept).
const finGrace = time.Second

// halfClosedAtAccept reports whether the FIN that l's peer sent, which r
// found, comes from a receiver that shuts down its sending side at once
// and reads on, rather than from a server that is leaving: it came before
// the Conn wrote anything on l, or before the peer's kernel acknowledged
// any of it (TCP: a unix socket's pending count includes each buffer's
// overhead, so it cannot tell "nothing read"), or within finGrace of l's
// start when the link before l was left for a FIN too. A server that reads
// a first message and then leaves looks, on one connection, like such a
// receiver whose FIN crossed that message; the second rule catches the
// receiver on the next connection, so that it costs at most one more.
func (c *Conn) halfClosedAtAccept(h hold, l *link, r sock.Result) bool {
	if l.sentNow() == l.sent0 {
		return true
	}
	if l.p.Kind() == sock.TCP && l.ackable {
		if !r.AckOK {
			r, _ = l.probe(h, sock.Acks)
		}
		if r.AckOK && r.Acked <= l.sent0 {
			return true
		}
	}
	return l.afterFIN && time.Since(l.upAt) < finGrace
}

// leave marks l, whose peer sent a FIN and is leaving, dead. l is drained
// (see drain): it is half-closed now, so that a server that reads until
// the client's EOF gets it, and stays open, carrying nothing new, until
// its peer has acknowledged what it was given, its socket has ended, or
// HandoffTimeout has passed; what its peer never took goes again on the
// next link, before anything new.
func (c *Conn) leave(h hold, l *link, byCheck bool) {
	c.died(h, l, ErrPeerClosed, byCheck)
	l.leaving = true
	l.drainBy = time.Now().Add(max(c.cfg.handoff, 0))
}

// died marks l broken and counts it.
func (c *Conn) died(h hold, l *link, cause error, byCheck bool) {
	if l.state != healthy {
		return
	}
	l.kill(h, cause)
	c.downSince.CompareAndSwap(0, time.Now().UnixNano())
	c.st.setLastErr(cause)
	if byCheck {
		c.st.deadByCheck.Add(1)
	} else {
		c.st.deadByWrite.Add(1)
	}
}

// trimTo drops the held messages that the current link's peer
// acknowledged up to link offset acked, and wakes the Writes that wait
// for room.
func (c *Conn) trimTo(h hold, acked int64) {
	c.lockRing()
	k, n := c.ring.trim(acked)
	c.count(k, n)
	c.unlockRing()
	if k > 0 {
		c.w.roomMade()
	}
}

// count counts messages that left the ring, before anything else can
// enter it: Stats reads the held count as what came in less what left.
// With a spool, they are its oldest unconfirmed ones. c.rmu is held where
// Write appends without the right (Async).
func (c *Conn) count(k int, n int64) {
	if k > 0 {
		if c.spool != nil {
			c.spool.Confirm(k)
		}
		c.st.confirmed.Add(int64(k))
		c.st.confirmedBytes.Add(n)
	}
}
