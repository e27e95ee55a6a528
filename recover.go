package reconn

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/reconn/reconn/internal/sock"
)

// What happens when a link dies: the check, a failed write or the watcher
// finds it (check.go); settle trims what its peer acknowledged; redial
// dials with backoff, installs the new link and replays what is held
// (replay.go). A Write, Flush or Close does that itself, within its
// bound; in the synchronous mode the watcher's event starts it in the
// background (heal), and with Async the writer does it (async.go).

// noticed is called by the watcher's goroutine once it flagged l: with
// Async the writer acts on the flag, otherwise heal does.
func (c *Conn) noticed(l *link) {
	if c.async() {
		c.w.signal()
		return
	}
	c.heal(l)
}

// heal is called by the watcher when it flagged l, in the synchronous
// mode. If l is the current link and it died with messages its peer never
// acknowledged, or its peer is leaving with messages it may not have
// taken, a background goroutine redials and replays them at once, so that
// a message written just before the event is not left waiting for the
// next Write. Otherwise the next Write acts on the flag: a server that
// closes an idle connection is not redialed for nothing.
func (c *Conn) heal(l *link) {
	for {
		switch c.healing.Load() {
		case healAgain:
			return
		case healRunning:
			// The goroutine may have looked at l before this flag: it
			// runs once more.
			if c.healing.CompareAndSwap(healRunning, healAgain) {
				return
			}
		case healIdle:
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.closed.Load() || c.cur.Load() != l || !c.healing.CompareAndSwap(healIdle, healRunning) {
				return
			}
			c.bg.Add(1)
			go func() {
				defer c.bg.Done()
				for {
					c.healOnce(l)
					if c.healing.CompareAndSwap(healRunning, healIdle) {
						return
					}
					c.healing.Store(healRunning) // it was healAgain
				}
			}()
			return
		}
	}
}

// States of Conn.healing.
const (
	healIdle    = iota // no background recovery
	healRunning        // one runs
	healAgain          // one runs, and runs again for a flag raised meanwhile
)

// healOnce is the work of the goroutine that heal starts.
func (c *Conn) healOnce(l *link) {
	o := c.newOp(c.life, nil, time.Time{}, false)
	defer o.end()
	h, err := o.lock()
	if err != nil {
		return
	}
	defer c.gate.unlock(h)
	if c.cur.Load() != l {
		return
	}
	c.check(h, l)
	if l.state == healthy {
		return
	}
	c.settle(h, l)
	if c.held() == 0 {
		return
	}
	// On failure the error is in Stats; the next Write tries again.
	o.redialCtx()
	c.redial(h, o, l, false)
}

// redial replaces the dead link old: it trims what old's peer
// acknowledged, dials with backoff, installs the new link and replays
// what is held. If old's peer is leaving, old drains meanwhile (see
// drain), and the new link is installed once the drain is over; if the
// drain confirms everything and need is not set (the caller writes no
// message), redial returns without a new link. It gives up when the op's
// redial bound ends, and returns the op's error.
func (c *Conn) redial(h hold, o *op, old *link, need bool) error {
	c.gate.recovering.Store(true)
	c.gate.sig.kick() // waiters for the right count RedialTimeout now
	defer c.gate.recovering.Store(false)
	rc := o.redialCtx()
	start := time.Now()
	ev := RedialEvent{Reason: RedialFailure, From: c.cfg.addrs[old.addr], Cause: old.cause}
	if old.full {
		ev.Reason, ev.Cause = RedialRotation, nil
	}
	c.settle(h, old)
	if o.last == nil {
		// What the Conn last met: old's end, or a failed dial of an
		// earlier recovery (in the background, say) that gave up.
		o.last = c.st.lastError()
	}
	// A connection that ended young, having confirmed nothing, counts
	// as a failed attempt: a server that accepts and drops each
	// connection (a proxy without a backend, a session refused after it
	// opened) is redialed with backoff, not in a loop.
	flaps := 0
	if !old.placeholder && !old.full {
		if time.Since(old.upAt) < youngLink && c.st.confirmed.Load() == old.conf0 {
			c.flaps++
			flaps = c.flaps
		} else {
			c.flaps = 0
		}
	}
	for round := 0; ; round++ {
		if round > 0 || flaps > 0 {
			if err := c.backoffWait(h, o, rc, c.backoff(round+flaps), old); err != nil {
				return o.fail(err)
			}
		}
		if !need && old.drained && c.held() == 0 {
			return nil // the drain confirmed everything
		}
		nl, err := c.dialRound(o, rc, &ev, start)
		if err != nil {
			return err
		}
		if nl == nil {
			continue
		}
		c.drain(h, o, old)
		ev.To = c.cfg.addrs[nl.addr]
		c.install(h, nl, old)
		// Counted once installed: whoever sees the count sees the link.
		c.st.dials.Add(1)
		switch {
		case old.full:
			c.st.rotations.Add(1)
		case !old.placeholder:
			c.st.redials.Add(1)
			if nl.addr != 0 {
				c.st.failovers.Add(1)
			}
		}
		k, err := c.replay(h, o, nl)
		ev.Replayed += k
		if err != nil && nl.state != healthy {
			// nl died in the replay: redial again.
			if o.ctx.Err() != nil || c.closed.Load() {
				return o.fail(context.Cause(o.ctx))
			}
			o.last = err
			c.st.setLastErr(err)
			old = nl
			c.settle(h, old)
			continue
		}
		ev.Downtime = time.Since(start)
		if !old.placeholder {
			// The first connection of an Async Conn is no redial.
			o.events = append(o.events, ev)
		}
		if err != nil {
			// A deadline or Close stopped the replay: nl carries the
			// stream on, and the next write on it finishes the replay.
			return o.cutErr(err)
		}
		return nil
	}
}

// dialRound tries each address in order, the first one first, and
// returns the first link made, or nil if every attempt failed; it
// returns an error only when the op's redial bound ended the round.
func (c *Conn) dialRound(o *op, rc context.Context, ev *RedialEvent, start time.Time) (*link, error) {
	for i := range c.cfg.addrs {
		if rc.Err() != nil {
			return nil, o.fail(context.Cause(rc))
		}
		nl, err := c.dialLink(rc, i)
		o.attempts++
		ev.Attempts++
		if err == nil {
			return nl, nil
		}
		if cut(rc) {
			// The op's own bound ended the attempt: the error before
			// says more.
			return nil, o.fail(endCause(rc))
		}
		o.last = err
		c.st.dialErrors.Add(1)
		c.st.setLastErr(err)
		if o.writer {
			c.w.down(o, start)
		}
	}
	return nil, nil
}

// dialFirst makes the first connection of a synchronous Conn: one round
// over the addresses, bounded by ctx and the per-attempt bound. With a
// single address, its error is returned as it is; with fallbacks, the
// errors of each are joined.
func (c *Conn) dialFirst(ctx context.Context) (*link, error) {
	var errs []error
	for i := range c.cfg.addrs {
		l, err := c.dialLink(ctx, i)
		if err == nil {
			c.st.dials.Add(1)
			return l, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// settle trims what the current link old, which died, had its peer
// acknowledge (Linux and Windows still count it after a reset), and makes
// old's close a reset if it carried messages that will go again on the
// next link: a connection that died by a local error, or one whose peer
// still reads, must not deliver them after the next link did.
//
// A link whose peer is leaving is half-closed instead, and its close is
// decided once its drain is over (see drain).
func (c *Conn) settle(h hold, old *link) {
	if old.ackable && c.held() > 0 {
		if old.sess != nil {
			c.trimTo(h, c.answeredNow(h, old))
		} else if r, ok := old.probe(h, sock.Acks); ok && r.AckOK {
			c.trimTo(h, r.Acked)
		}
	}
	if old.leaving && !old.drained {
		old.closeWrite(h)
		return
	}
	if c.onLink() > 0 {
		old.abort(h)
	}
}

// install makes l the current link, in place of old.
func (c *Conn) install(h hold, l *link, old *link) {
	l.afterFIN = old != nil && old.leaving
	l.conf0 = c.st.confirmed.Load()
	c.downSince.Store(0)
	c.w.up()
	c.mu.Lock()
	if !c.rdl.IsZero() && c.cfg.proto == nil {
		l.nc.SetReadDeadline(c.rdl)
	}
	if wdl := c.linkWriteDeadline(); !wdl.IsZero() {
		l.nc.SetWriteDeadline(wdl)
	}
	l.owner.Store(c)
	c.cur.Store(l)
	c.planMoves(l)
	if l.sess != nil {
		c.startSession(l)
	}
	drop := [2]*link{c.lingering}
	c.lingering = nil
	if old != nil {
		if c.readers.Load() > 0 && !c.closed.Load() && !old.aborted {
			// A Read waits on old: let it have what old's peer sent, for
			// a bounded time, before it goes on with l. An aborted link
			// would meanwhile deliver what l carries again.
			c.lingering = old
			dl := time.Now().Add(lingerTime)
			if !c.rdl.IsZero() && c.rdl.Before(dl) {
				dl = c.rdl
			}
			old.nc.SetReadDeadline(dl)
		} else {
			drop[1] = old
		}
		old.retired.Store(true) // after cur moved on: see Read
	}
	c.mu.Unlock()
	for _, d := range drop {
		if d != nil {
			d.close()
		}
	}
}

// lingerTime bounds how long a Read may go on reading a replaced link.
const lingerTime = 2 * time.Second

// youngLink: a connection that ends sooner after it was made, with
// nothing confirmed on it, counts as a failed dial (see redial).
const youngLink = time.Second

// backoff is the wait before redial attempt n (n >= 1): a random time
// between half and all of MinBackoff·2^(n-1), capped at MaxBackoff.
func (c *Conn) backoff(n int) time.Duration {
	d, limit := c.cfg.minBackoff, c.cfg.maxBackoff
	for i := 1; i < n && d < limit; i++ {
		if d > limit/2 {
			d = limit
			break
		}
		d *= 2
	}
	d = min(d, limit)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d-d/2+1)
}
