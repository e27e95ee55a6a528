// Package reconn provides a net.Conn for one-way streams (syslog, metrics,
// log shipping) that survives the server restarting or the network failing
// without losing what was written.
//
// A TCP write succeeds as soon as the local send buffer takes the bytes.
// When the server has closed or died, the first write still succeeds, and
// every message written until the error surfaces is lost. A Conn asks the
// kernel, before each Write, whether the connection still stands; redials
// with backoff when it does not; and re-sends, before anything new, every
// message the old peer's kernel had not acknowledged.
//
// # Guarantee
//
// Each Write is one message. Once Write returns nil, the message is
// delivered at least once to the peer's kernel, in order, unless Close or
// Flush later reports it unconfirmed. Concretely:
//
//   - A message is re-sent whole, on a new connection, if the old peer's
//     kernel had not acknowledged every byte of it. A message cut in the
//     middle is thus sent again whole, and may arrive twice.
//   - A message the peer's kernel acknowledged but the peer application
//     never read (it was still in the server's receive buffer when the
//     server died) cannot be recovered without acknowledgements from the
//     application, which TCP does not carry. Use RELP or an application
//     protocol with acknowledgements when that matters.
//   - When the peer closes gracefully (FIN) and keeps reading, the Conn
//     stops writing to it, waits up to Dialer.HandoffTimeout for its
//     acknowledgements, and re-sends only the rest: nothing is lost and
//     nothing is duplicated.
//   - A peer that stops acknowledging (a silent drop) is found after
//     Dialer.UserTimeout where the platform supports it.
//
// Acknowledgements are counted with tcpi_bytes_acked on Linux (SIOCOUTQ
// for unix sockets, which counts bytes the peer application has not yet
// read), SO_NWRITE on darwin, FIONWRITE on FreeBSD and SIO_TCP_INFO on
// Windows 10 1703 and later. Elsewhere (NetBSD, OpenBSD, illumos, AIX,
// older Windows, a custom Dialer returning another connection type) there
// is no count: a redial re-sends every message still held, and when
// Dialer.ReplayBuffer is full the oldest held message is assumed delivered
// to make room. On js, wasip1 and plan9 no check runs; a failed write
// still redials.
//
// The check only sees a FIN or reset that the kernel already has: under
// load a peer may die between the check and the write. Replay closes that
// gap; with replay off (a negative Dialer.ReplayBuffer) the check narrows
// it but cannot close it.
//
// reconn is built for streams that write and rarely read. A Conn also
// serves request-response protocols such as HTTP through Dialer.DialContext,
// but there a redial only happens on Write and Read never redials: a
// request re-sent on a new connection is answered on that connection, and
// a response lost with the old one is not recovered. Prefer the protocol's
// own retry logic there, and replay off.
package reconn

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRedialLimit is wrapped by the error of a Write, Flush or Close that
// gave up redialing after Dialer.RedialTimeout. The same error also wraps
// the last dial error. Test for it with errors.Is.
var ErrRedialLimit = errors.New("reconn: redial limit reached")

// ErrTooLarge is wrapped by the error of a Write whose message cannot fit
// in Dialer.ReplayBuffer. Test for it with errors.Is.
var ErrTooLarge = errors.New("reconn: message larger than the replay buffer")

// ErrPeerClosed and ErrPeerReset are the causes recorded when the check
// before a Write found that the peer had closed gracefully (FIN) or reset
// the connection (or it timed out). They appear in RedialEvent.Cause and
// Stats.LastError; test for them with errors.Is.
var (
	ErrPeerClosed = errors.New("reconn: peer closed the connection")
	ErrPeerReset  = errors.New("reconn: connection reset or timed out")
)

// UnconfirmedError is returned, wrapped in a *net.OpError, by Close and
// Flush when they gave up before the peer's kernel had acknowledged every
// message written. Test for it with errors.As.
type UnconfirmedError struct {
	Messages int   // messages not acknowledged
	Bytes    int64 // their bytes
	Err      error // why the wait ended
}

func (e *UnconfirmedError) Error() string {
	return "reconn: " + itoa(int64(e.Messages)) + " messages (" + itoa(e.Bytes) + " bytes) unconfirmed: " + e.Err.Error()
}

// Unwrap returns the reason the wait ended.
func (e *UnconfirmedError) Unwrap() error { return e.Err }

// Conn is a net.Conn whose Write checks the connection, redials and
// replays. It is returned by Dial and Dialer.DialContext.
//
// Multiple goroutines may invoke methods on a Conn simultaneously. Each
// Write is one message: concurrent Writes never interleave.
//
// Read reads the current underlying connection and never redials. EOF from
// the current peer reaches the caller as io.EOF. After a redial, Read goes
// on with the new connection; if a Read was waiting on the old one when it
// was replaced, it first returns what the old peer had sent.
//
// Deadlines apply to the current underlying connection and every later
// one, and also bound the time a Write spends redialing or waiting for
// room in the replay buffer.
type Conn struct {
	cfg *config
	ctx context.Context // from DialContext; bounds redials

	wmu    sync.Mutex  // serializes Writes, Flush, Close and link changes
	ring   ring        // guarded by wmu
	trimAt int64       // guarded by wmu: ring usage at which to ask for acknowledgements
	timer  *time.Timer // guarded by wmu

	cur     atomic.Pointer[link] // the link Writes use
	rlink   atomic.Pointer[link] // the link Reads use
	readers atomic.Int32         // Reads in progress
	closed  atomic.Bool
	stop    chan struct{} // closed by Close

	mu        sync.Mutex // guards the fields below
	rdl, wdl  time.Time
	flushDL   time.Time     // Close's flush deadline
	wake      chan struct{} // closed and replaced when the write deadline changes or Close begins
	waiters   int           // goroutines that may wait on wake
	lingering *link         // a replaced link kept open for a waiting Read

	healing atomic.Bool    // a background recovery is under way
	bg      sync.WaitGroup // background recoveries; Add under mu, before Close

	st counters
}

func newConn(cfg *config, ctx context.Context) *Conn {
	c := &Conn{
		cfg:  cfg,
		ctx:  ctx,
		stop: make(chan struct{}),
		wake: make(chan struct{}),
	}
	c.ring.max = cfg.replay
	c.trimAt = cfg.replay / 2
	return c
}

// Write writes b as one message. See the package documentation for what a
// nil error guarantees.
//
// If the connection is found dead, Write redials, re-sends what the old
// peer had not acknowledged, and then writes b, blocking meanwhile. The
// wait ends at the write deadline (a timeout error), at Close
// (net.ErrClosed), when the context given to DialContext is done, or after
// Dialer.RedialTimeout (ErrRedialLimit); the error then wraps the last
// dial error. On a timeout, n is the number of bytes of b written, and
// they count as written.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, c.opError("write", net.ErrClosed)
	}
	if len(b) == 0 {
		return 0, nil
	}
	w := waiter{ctx: c.ctx, stop: c.stop, writeDL: true}
	for {
		l := c.cur.Load()
		if l.state == healthy && c.cfg.op != 0 && (!l.watched || l.flagged.Load()) {
			c.check(l)
		}
		if l.state != healthy {
			if err := c.recover(l, &w); err != nil {
				return 0, c.opError("write", err)
			}
			continue
		}
		if c.cfg.replay > 0 {
			if err := c.reserve(l, len(b), &w); err != nil {
				if err == errLinkDied {
					continue
				}
				return 0, c.opError("write", err)
			}
		}
		n, err := l.write(b)
		if err == nil {
			c.wrote(l, b)
			return n, nil
		}
		if c.closed.Load() || isTimeout(err) {
			// The caller is told n bytes went; record them so the
			// stream stays what the caller believes it is.
			if n > 0 {
				c.wrote(l, b[:n])
			}
			if l.cc != nil {
				// After a failed write a TLS connection only repeats
				// the error: the next Write must redial.
				c.died(l, broken, err, false)
			}
			if c.closed.Load() {
				return n, c.opError("write", net.ErrClosed)
			}
			return n, err
		}
		// The connection failed. b goes again, whole, on the next one.
		c.died(l, broken, err, false)
	}
}

// heal is called by the watcher when it flagged l. If l is the current
// link and messages are held for replay, a background goroutine redials
// and replays them at once, so that a message written just before the
// event is not left waiting for the next Write. With nothing held, the
// next Write finds the flag: a server that closes idle connections is not
// redialed for nothing.
func (c *Conn) heal(l *link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() || c.cur.Load() != l || !c.healing.CompareAndSwap(false, true) {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.healing.Store(false)
		c.wmu.Lock()
		defer c.wmu.Unlock()
		if c.closed.Load() || c.cur.Load() != l || c.ring.mn == 0 {
			return
		}
		if l.state == healthy {
			c.check(l)
		}
		if l.state != healthy {
			// On failure the error is in Stats; the next Write tries again.
			w := waiter{ctx: c.ctx, stop: c.stop}
			c.recover(l, &w)
		}
	}()
}

// wrote records a message written on l.
func (c *Conn) wrote(l *link, b []byte) {
	c.st.messages.Add(1)
	c.st.bytes.Add(int64(len(b)))
	if c.cfg.replay > 0 {
		c.ring.push(b, l.sentNow())
	}
}

// check runs the liveness check on l and trims the ring when the check
// brought an acknowledgement count with it.
func (c *Conn) check(l *link) {
	if !l.run(c.cfg.op) {
		return
	}
	c.st.checks.Add(1)
	if l.p.ackOK && l.ackable {
		c.ring.trim(l.p.acked)
	}
	if l.p.h != healthy {
		c.died(l, l.p.h, causeOf(l.p.h), true)
	}
}

// died marks l dead and counts it.
func (c *Conn) died(l *link, h health, cause error, byCheck bool) {
	if l.state != healthy {
		return
	}
	l.kill(h, cause)
	c.st.setLastErr(cause)
	if byCheck {
		c.st.deadByCheck.Add(1)
	} else {
		c.st.deadByWrite.Add(1)
	}
}

func causeOf(h health) error {
	if h == peerClosed {
		return ErrPeerClosed
	}
	return ErrPeerReset
}

// errLinkDied tells Write that the link died while it waited for room.
var errLinkDied = errors.New("reconn: link died")

// reserve makes room in the ring for a message of n bytes.
func (c *Conn) reserve(l *link, n int, w *waiter) error {
	if int64(n)+heldSize > c.ring.max {
		return ErrTooLarge
	}
	if c.ring.usage() >= c.trimAt || !c.ring.fits(n) {
		c.refresh(l)
		c.trimAt = c.ring.usage() + c.ring.max/8
	}
	// Waiting for acknowledgements ends at the deadline or Close, not at
	// the redial bounds.
	rw := waiter{ctx: context.Background(), stop: w.stop, writeDL: w.writeDL}
	d := 50 * time.Microsecond
	for !c.ring.fits(n) {
		if !l.ackable {
			// Nothing will ever confirm these: the oldest are assumed
			// delivered (see the package documentation).
			c.ring.evict(n)
			return nil
		}
		if l.state != healthy {
			return errLinkDied
		}
		if err := c.pause(&rw, d); err != nil {
			return err
		}
		d = min(2*d, 10*time.Millisecond)
		c.refresh(l)
	}
	return nil
}

// refresh asks for l's acknowledgement count and trims the ring.
func (c *Conn) refresh(l *link) {
	if !l.ackable || !l.run(opAcks|opState) {
		return
	}
	if l.p.ackOK {
		c.ring.trim(l.p.acked)
	}
	if l.p.h != healthy {
		c.died(l, l.p.h, causeOf(l.p.h), true)
	}
}

// recover replaces the dead link old: it lets a draining peer acknowledge
// what it can, redials with backoff, and replays what is left.
func (c *Conn) recover(old *link, w *waiter) error {
	start := time.Now()
	if w.limit.IsZero() && c.cfg.redialTimeout > 0 {
		w.limit = start.Add(c.cfg.redialTimeout)
	}
	ev := RedialEvent{Cause: old.cause}
	ev.Graceful = c.settle(old, w)
	lastErr := old.cause
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := c.pause(w, c.backoff(attempt)); err != nil {
				return giveUp(err, lastErr, attempt)
			}
		}
		nl, cut, err := c.dial(w)
		ev.Attempts++
		if err != nil {
			if !cut || lastErr == nil {
				// A dial cut short by the caller's own bounds says
				// less than the failure before it.
				lastErr = err
			}
			c.st.dialErrors.Add(1)
			c.st.setLastErr(err)
			continue
		}
		c.st.dials.Add(1)
		c.st.redials.Add(1)
		c.install(nl, old)
		k, err := c.replay(nl)
		ev.Replayed += k
		if err != nil {
			if c.closed.Load() && w.stop != nil {
				return net.ErrClosed
			}
			if isTimeout(err) {
				return err
			}
			lastErr = err
			c.st.setLastErr(err)
			old = nl
			c.settle(old, w)
			continue
		}
		ev.Downtime = time.Since(start)
		if c.cfg.onRedial != nil {
			c.cfg.onRedial(ev)
		}
		return nil
	}
}

// settle trims what the dead link's peer acknowledged. If the peer closed
// gracefully, it first half-closes the link and waits, up to
// HandoffTimeout, for the acknowledgements of what was sent. It reports
// whether it waited.
func (c *Conn) settle(old *link, w *waiter) bool {
	if !old.ackable || c.ring.mn == 0 {
		return false
	}
	graceful := old.state == peerClosed && c.cfg.handoff > 0
	if graceful {
		c.st.handoffs.Add(1)
		old.closeWrite()
		until := time.Now().Add(c.cfg.handoff)
		hw := waiter{ctx: context.Background(), stop: w.stop, writeDL: w.writeDL, limit: until}
		if !w.limit.IsZero() && w.limit.Before(until) {
			hw.limit = w.limit
		}
		d := 50 * time.Microsecond
		for {
			if old.run(opAcks|opState) && old.p.ackOK {
				c.ring.trim(old.p.acked)
			}
			if c.ring.mn == 0 || old.p.h == broken || c.pause(&hw, d) != nil {
				break
			}
			d = min(2*d, 10*time.Millisecond)
		}
	}
	if old.run(opAcks) && old.p.ackOK {
		c.ring.trim(old.p.acked)
	}
	return graceful
}

// replay re-sends every held message on the new link l, in order.
func (c *Conn) replay(l *link) (int, error) {
	if c.ring.mn == 0 {
		return 0, nil
	}
	c.ring.unlink()
	pos := c.ring.start
	i, k := 0, 0
	for pos < c.ring.end {
		s := c.ring.span(pos, 64<<10)
		before := l.sentNow()
		n, err := l.write(s)
		pos += int64(n)
		// Give every message now complete on l its link offset.
		for ; i < c.ring.mn && c.ring.at(i).end <= pos; i++ {
			m := c.ring.at(i)
			if l.cc == nil {
				m.linkEnd = before + (m.end - (pos - int64(n)))
			} else {
				m.linkEnd = l.sentNow()
			}
			k++
		}
		if err != nil {
			// A message may be cut on l: l cannot carry the stream on.
			c.died(l, broken, err, false)
			c.st.resent(k, pos-c.ring.start)
			return k, err
		}
	}
	c.st.resent(k, c.ring.end-c.ring.start)
	return k, nil
}

// dial makes one underlying connection, giving up when the waiter's
// bounds do. cut reports that those bounds, rather than the dial itself,
// ended a failed attempt.
func (c *Conn) dial(w *waiter) (l *link, cut bool, err error) {
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	c.mu.Lock()
	dl := w.deadline(c)
	wake := c.wake
	c.mu.Unlock()
	bounded := !dl.IsZero()
	if c.cfg.userTimeout > 0 {
		if t := time.Now().Add(c.cfg.userTimeout); dl.IsZero() || t.Before(dl) {
			dl, bounded = t, false
		}
	}
	if !dl.IsZero() {
		var cancelDL context.CancelFunc
		ctx, cancelDL = context.WithDeadline(ctx, dl)
		defer cancelDL()
	}
	done := make(chan struct{})
	defer close(done)
	stop := w.stop // the goroutine must not capture w, or every Write would allocate it
	go func() {
		select {
		case <-stop:
		case <-wake:
		case <-c.ctx.Done():
		case <-done:
			return
		}
		cancel()
	}()
	l, err = c.cfg.dialLink(ctx)
	if err != nil && ctx.Err() != nil {
		cut = bounded || ctx.Err() == context.Canceled
	}
	return l, cut, err
}

// install makes l the current link, in place of old.
func (c *Conn) install(l *link, old *link) {
	c.mu.Lock()
	if !c.rdl.IsZero() {
		l.nc.SetReadDeadline(c.rdl)
	}
	wdl := c.wdl
	if c.closed.Load() {
		wdl = c.flushDL
	}
	if !wdl.IsZero() {
		l.nc.SetWriteDeadline(wdl)
	}
	l.owner.Store(c)
	c.cur.Store(l)
	c.rlink.Store(l)
	drop := [2]*link{c.lingering}
	c.lingering = nil
	if old != nil {
		if c.readers.Load() > 0 && !c.closed.Load() {
			// A Read waits on old: let it have what old's peer sent, for
			// a bounded time, before it goes on with l.
			c.lingering = old
			dl := time.Now().Add(lingerTime)
			if !c.rdl.IsZero() && c.rdl.Before(dl) {
				dl = c.rdl
			}
			old.nc.SetReadDeadline(dl)
		} else {
			drop[1] = old
		}
		old.retired.Store(true) // after rlink moved on: see Read
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

// backoff is the wait before redial attempt n (n >= 1).
func (c *Conn) backoff(n int) time.Duration {
	d := c.cfg.minBackoff
	for i := 1; i < n && d < c.cfg.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.maxBackoff)
	return d/2 + rand.N(d/2+1)
}

// waiter carries the bounds of one Write, Flush or Close.
type waiter struct {
	ctx     context.Context
	stop    <-chan struct{} // Close; nil while Close flushes
	writeDL bool            // the Conn's write deadline applies
	limit   time.Time       // RedialTimeout, FlushTimeout or HandoffTimeout
}

// deadline is the earliest of the waiter's bounds. c.mu must be held.
func (w *waiter) deadline(c *Conn) time.Time {
	dl := w.limit
	if w.writeDL && !c.wdl.IsZero() && (dl.IsZero() || c.wdl.Before(dl)) {
		dl = c.wdl
	}
	return dl
}

// errLimit reports that the waiter's own limit passed.
var errLimit = errors.New("reconn: limit passed")

// pause waits for d, or less if something changes. It returns an error
// when the caller must stop: os.ErrDeadlineExceeded, net.ErrClosed,
// errLimit, or the context's error.
func (c *Conn) pause(w *waiter, d time.Duration) error {
	c.mu.Lock()
	now := time.Now()
	if w.writeDL && !c.wdl.IsZero() && !now.Before(c.wdl) {
		c.mu.Unlock()
		return os.ErrDeadlineExceeded
	}
	if !w.limit.IsZero() && !now.Before(w.limit) {
		c.mu.Unlock()
		return errLimit
	}
	if dl := w.deadline(c); !dl.IsZero() && dl.Sub(now) < d {
		d = dl.Sub(now)
	}
	wake := c.wake
	c.waiters++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.waiters--
		c.mu.Unlock()
	}()
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Reset(d)
	}
	select {
	case <-c.timer.C:
		return nil
	case <-wake:
	case <-w.stop:
		c.timer.Stop()
		return net.ErrClosed
	case <-w.ctx.Done():
		c.timer.Stop()
		return w.ctx.Err()
	}
	c.timer.Stop()
	return nil
}

// kick wakes every waiter. c.mu must be held.
func (c *Conn) kick() {
	if c.waiters > 0 {
		close(c.wake)
		c.wake = make(chan struct{})
	}
}

// redialError is the error of a call that gave up redialing.
type redialError struct {
	cause    error // os.ErrDeadlineExceeded, ErrRedialLimit, or a context error
	last     error // the last dial or write error
	attempts int
}

func (e *redialError) Error() string {
	s := e.cause.Error() + " after " + itoa(int64(e.attempts)) + " dial attempts"
	if e.last != nil {
		s += ": " + e.last.Error()
	}
	return s
}

func (e *redialError) Unwrap() []error { return []error{e.cause, e.last} }

// Timeout reports whether the write deadline ended the wait.
func (e *redialError) Timeout() bool { return e.cause == os.ErrDeadlineExceeded }

func giveUp(err, last error, attempts int) error {
	switch err {
	case net.ErrClosed:
		return err
	case errLimit:
		err = ErrRedialLimit
	}
	if last == nil {
		return err
	}
	return &redialError{cause: err, last: last, attempts: attempts}
}

// Flush waits until the peer's kernel has acknowledged every message
// written before the call, redialing and replaying if the peer dies
// meanwhile. Writes wait while Flush runs. If ctx ends first, Flush
// returns a *net.OpError wrapping an *UnconfirmedError.
//
// Where the platform has no acknowledgement count (see the package
// documentation), Flush returns at once.
func (c *Conn) Flush(ctx context.Context) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return c.opError("flush", net.ErrClosed)
	}
	w := waiter{ctx: ctx, stop: c.stop}
	if err := c.flush(&w); err != nil {
		return c.opError("flush", err)
	}
	return nil
}

func (c *Conn) flush(w *waiter) error {
	d := 50 * time.Microsecond
	for {
		l := c.cur.Load()
		if c.ring.mn == 0 {
			return nil
		}
		if l.state == healthy {
			if !l.ackable {
				return nil // nothing can confirm it
			}
			c.refresh(l)
			if c.ring.mn == 0 {
				return nil
			}
		}
		if l.state != healthy {
			if err := c.recover(l, w); err != nil {
				return c.unconfirmed(err)
			}
			continue
		}
		if err := c.pause(w, d); err != nil {
			return c.unconfirmed(err)
		}
		d = min(2*d, 20*time.Millisecond)
	}
}

func (c *Conn) unconfirmed(err error) error {
	if err == errLimit {
		err = os.ErrDeadlineExceeded
	}
	return &UnconfirmedError{Messages: c.ring.mn, Bytes: c.ring.end - c.ring.start, Err: err}
}

// Read reads from the current underlying connection. It never redials.
func (c *Conn) Read(b []byte) (int, error) {
	c.readers.Add(1)
	defer c.readers.Add(-1)
	for {
		if c.closed.Load() {
			return 0, c.opError("read", net.ErrClosed)
		}
		l := c.rlink.Load()
		n, err := l.nc.Read(b)
		if err == nil {
			return n, nil
		}
		if c.closed.Load() {
			return n, c.opError("read", net.ErrClosed)
		}
		if l.retired.Load() && (!isTimeout(err) || !c.readExpired()) {
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

// readExpired reports whether the read deadline has passed.
func (c *Conn) readExpired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.rdl.IsZero() && !time.Now().Before(c.rdl)
}

// Close stops new Writes, wakes pending Reads and Writes, and waits until
// the peer's kernel has acknowledged everything written, redialing and
// replaying if the peer dies meanwhile. The wait is bounded by the write
// deadline if one is set, else by Dialer.FlushTimeout. If it gives up,
// Close returns a *net.OpError wrapping an *UnconfirmedError.
//
// Close is safe to call more than once; later calls return an error
// satisfying errors.Is(err, net.ErrClosed).
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opError("close", net.ErrClosed)
	}
	c.mu.Lock()
	close(c.stop)
	c.kick()
	if !c.wdl.IsZero() {
		c.flushDL = c.wdl
	} else if c.cfg.flushTimeout > 0 {
		c.flushDL = time.Now().Add(c.cfg.flushTimeout)
	}
	for _, l := range [...]*link{c.cur.Load(), c.rlink.Load(), c.lingering} {
		if l != nil {
			l.nc.SetDeadline(aLongTimeAgo)
		}
	}
	c.mu.Unlock()

	defer c.bg.Wait() // after wmu is released: a background recovery may wait for it
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if c.cfg.flushTimeout >= 0 {
		l := c.cur.Load()
		l.nc.SetWriteDeadline(c.flushDL)
		w := waiter{ctx: context.Background(), limit: c.flushDL}
		err = c.flush(&w)
	}
	c.mu.Lock()
	links := [...]*link{c.cur.Load(), c.rlink.Load(), c.lingering}
	c.lingering = nil
	c.mu.Unlock()
	for _, l := range links {
		if l != nil {
			if cerr := l.close(); err == nil && cerr != nil {
				err = cerr
			}
		}
	}
	if err != nil {
		return c.opError("close", err)
	}
	return nil
}

var aLongTimeAgo = time.Unix(1, 0)

// LocalAddr returns the local address of the current connection.
func (c *Conn) LocalAddr() net.Addr { return c.cur.Load().nc.LocalAddr() }

// RemoteAddr returns the remote address of the current connection.
func (c *Conn) RemoteAddr() net.Addr { return c.cur.Load().nc.RemoteAddr() }

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
// redial or for room in the replay buffer, and wakes it to re-check. A
// zero t means Write will not time out.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, false, true)
}

func (c *Conn) setDeadline(t time.Time, r, w bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return c.opError("set", net.ErrClosed)
	}
	links := [...]*link{c.cur.Load(), c.rlink.Load(), c.lingering}
	if r {
		c.rdl = t
		for _, l := range links {
			if l != nil {
				l.nc.SetReadDeadline(t)
			}
		}
	}
	if w {
		c.wdl = t
		links[0].nc.SetWriteDeadline(t)
		c.kick()
	}
	return nil
}

// opError wraps err as net does, naming the current connection.
func (c *Conn) opError(op string, err error) error {
	l := c.cur.Load()
	return &net.OpError{Op: op, Net: c.cfg.network, Source: l.nc.LocalAddr(), Addr: l.nc.RemoteAddr(), Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
