// Package reconn provides a net.Conn for one-way streams (syslog, metrics,
// log shipping) that survives the server restarting or the network failing
// without losing what was written.
//
// A TCP write succeeds as soon as the local send buffer takes the bytes.
// When the server has closed or died, the first write still succeeds, and
// every message written until the error surfaces is lost. A Conn learns
// from the kernel when the connection dies (on Linux from an epoll event,
// elsewhere by asking before each Write); redials with backoff; and
// re-sends, before anything new, every message the old peer's kernel had
// not acknowledged.
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
//   - A peer's FIN means it is leaving: a server that restarts stops
//     listening and half-closes, and closes a while later, discarding
//     what it has not read by then. At the FIN the Conn stops writing on
//     that connection, half-closes it too (so that a server that reads
//     until the client's EOF gets it), and dials a new one at once. The
//     old connection stays open until its peer has acknowledged (TCP) or
//     read (unix sockets) everything it was given, or its socket ends, or
//     Dialer.HandoffTimeout passes; then what the old peer never took is
//     re-sent on the new connection, whole, before anything new. A server
//     that reads until the client's EOF thus loses and duplicates
//     nothing, and one that closes after a drain period loses nothing it
//     had time to read. Meanwhile Writes wait within their deadlines
//     (with Async they buffer).
//   - A receiver that half-closes right after accept and reads on is not
//     leaving. A FIN that came before the Conn wrote anything on the
//     connection, or (TCP) before the peer's kernel acknowledged any of
//     it, or within a second of a connection that replaced one left for a
//     FIN, is taken for one: the Conn goes on writing to it, so that such
//     a receiver costs at most one more connection. If it closes later,
//     the Conn redials as after any reset.
//   - Over TLS a server's close_notify comes with its FIN, which the
//     Conn sees on the TCP socket beneath; the same holds. Package relp's
//     sessions end at the server's FIN or close: unanswered messages go
//     again on a new session, as RELP requires. With replay off, a FIN
//     ends the connection at once.
//   - A unix socket's peer that closes with data unread discards it, and
//     its bytes leave the client's send queue as if read; but the close
//     also reports ECONNRESET once, after which the Conn re-sends every
//     message not confirmed before it: on Linux nothing written to a unix
//     socket is lost to a server's close, though a message read just
//     before the close may arrive twice.
//   - A peer that stops acknowledging (a silent drop) is found after
//     Dialer.UserTimeout where the platform supports it.
//   - A deadline or Close that stops a write leaves the connection as it
//     is: a Write that reports n bytes written wrote exactly those, and a
//     replay stopped midway goes on, on the same connection, at the next
//     Write, Flush or Close. A TCP connection given up while it carries
//     messages that will go again on the next one is closed with a reset,
//     so that it cannot deliver them late, after the next one did; a unix
//     socket cannot be reset, and its peer may read them twice.
//
// Acknowledgements are counted with tcpi_bytes_acked on Linux (SIOCOUTQ
// for unix sockets, which counts bytes the peer application has not yet
// read), SO_NWRITE on darwin, FIONWRITE on FreeBSD and SIO_TCP_INFO on
// Windows 10 1703 and later. Elsewhere (NetBSD, OpenBSD, illumos, AIX,
// older Windows and Wine, which lack SIO_TCP_INFO, a custom Dialer
// returning another connection type) there is no count: a redial re-sends
// every message still held, and when Dialer.ReplayBuffer is full (with
// Async, seven eighths full, so that Write need not wait for the writer)
// the oldest held message is assumed delivered to make room. On js,
// wasip1 and plan9 no check runs; a failed write still redials.
//
// The check only sees a FIN or reset that the kernel already has: under
// load a peer may die between the check and the write. Replay closes that
// gap; with replay off (a negative Dialer.ReplayBuffer) the check narrows
// it but cannot close it.
//
// # Bounds
//
// No call waits longer than its bound, whatever runs in the background:
// a Write ends at the write deadline, a Flush when its context ends, a
// Close at its flush limit (see Conn.Close), and each of them after
// Dialer.RedialTimeout spent waiting for a connection to come back, or at
// Close. The error then says why the call stopped and wraps the last dial
// or write error: test it with errors.Is (os.ErrDeadlineExceeded,
// ErrRedialLimit, net.ErrClosed, the context's error, syscall.ECONNREFUSED
// and the like) or net.Error's Timeout.
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
	"math"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrRedialLimit is wrapped by the error of a Write, Flush or Close that
// gave up after waiting Dialer.RedialTimeout for a connection to come
// back. The same error also wraps the last dial error. Test for it with
// errors.Is.
var ErrRedialLimit = errors.New("reconn: redial limit reached")

// ErrTooLarge is wrapped by the error of a Write whose message cannot fit
// in Dialer.ReplayBuffer. Test for it with errors.Is.
var ErrTooLarge = errors.New("reconn: message larger than the replay buffer")

// ErrPeerClosed and ErrPeerReset are the causes recorded when a check
// found that the peer had sent a FIN and is leaving (see the package
// documentation), or had reset the connection (or it timed out). They
// appear in RedialEvent.Cause and Stats.LastError; test for them with
// errors.Is.
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
	cfg  *config
	base context.Context         // from DialContext: bounds every redial
	life context.Context         // base, ended by Close with net.ErrClosed
	end  context.CancelCauseFunc // ends life

	// The right to write has two parts. wmu serializes the Writes of the
	// fast path: a Write takes it, finds slow unset, writes on the
	// current link and records the message, and releases it; it waits
	// for wmu only behind another fast Write, whose socket write the
	// write deadline and Close bound. Everything else (a Write that must
	// redial or wait for room, Flush, Close, the watcher's recovery, a
	// planned move, the Async writer) holds tok, a channel taken with the
	// caller's own bound (op.lock), and, in the synchronous mode, sets
	// slow under wmu once the fast Write in progress has ended (quiesce),
	// so that fast Writes step aside to wait for tok with their own
	// bounds; a fast Write that finds a holder of tok waiting in quiesce
	// (nquiesce) steps aside too, so that Writes in a tight loop cannot
	// keep taking wmu first. Only a holder of wmu with slow unset, or of
	// tok with slow set, uses ring and the link's guarded fields,
	// replaces cur, or writes on the current link. recovering is set
	// while a holder of tok replaces a dead link, so that waiters count
	// RedialTimeout.
	//
	// Lock order: tok, then wmu, then mu. watcher.mu may be taken with
	// tok or wmu held (a link's close), never with mu held.
	wmu        sync.Mutex
	tok        chan struct{}
	slow       atomic.Bool
	recovering atomic.Bool
	nwait      atomic.Int32                  // goroutines that wait on sig
	nquiesce   atomic.Int32                  // holders of tok waiting for a fast Write to end
	sig        atomic.Pointer[chan struct{}] // closed and replaced by kick
	wdlNano    atomic.Int64                  // the write deadline in Unix nanoseconds, 0 if none; written under mu

	// ring holds what was written and is not known to be acknowledged.
	// It is the holder's alone in the synchronous mode. With Async, Write
	// appends to it under rmu without the right to write, so everyone
	// else takes rmu too around each use (lockRing), and never across a
	// blocking step.
	ring ring
	rmu  sync.Mutex

	w *writer // the Async writer; nil in the synchronous mode

	cur     atomic.Pointer[link] // the current link
	readers atomic.Int32         // Reads in progress
	closed  atomic.Bool

	mu        sync.Mutex // guards the fields below
	rdl, wdl  time.Time
	flushDL   time.Time        // Close's flush limit
	lingering *link            // a replaced link kept open for a waiting Read
	ops       map[*op]struct{} // ops that the write deadline bounds

	refusal   atomic.Pointer[error] // a message the server refused, for the next call to report
	healing   atomic.Int32          // healIdle, healRunning or healAgain
	bg        sync.WaitGroup        // background recoveries; Add under mu, before Close
	downSince atomic.Int64          // Unix nanoseconds since the current link is dead, 0 while up

	st counters
}

func newConn(cfg *config, ctx context.Context) *Conn {
	c := &Conn{cfg: cfg, base: ctx, tok: make(chan struct{}, 1)}
	c.life, c.end = context.WithCancelCause(ctx)
	sig := make(chan struct{})
	c.sig.Store(&sig)
	c.ring.init(cfg.replay)
	return c
}

// unlock releases tok, after ending the slow period that quiesce began.
func (c *Conn) unlock() {
	if c.slow.Load() {
		c.wmu.Lock()
		c.slow.Store(false)
		c.wmu.Unlock()
	}
	<-c.tok
}

// quiesce makes the fast path step aside for the holder of tok, once the
// fast Write in progress, if any, has ended: it takes wmu, waiting no
// longer than ctx lets it, sets slow, and releases wmu. With Async there
// is no fast path.
func (c *Conn) quiesce(ctx context.Context) error {
	if c.w != nil || c.slow.Load() {
		return nil
	}
	if !c.wmu.TryLock() {
		c.nquiesce.Add(1)
		c.nwait.Add(1)
		defer c.nwait.Add(-1)
		defer c.nquiesce.Add(-1)
		for !c.wmu.TryLock() {
			sig := c.sig.Load()
			if c.wmu.TryLock() {
				break
			}
			select {
			case <-*sig:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
	c.slow.Store(true)
	c.wmu.Unlock()
	return nil
}

// unlockFast releases wmu after a fast Write, and wakes a holder of tok
// that waits for it.
func (c *Conn) unlockFast() {
	c.wmu.Unlock()
	if c.nquiesce.Load() > 0 {
		c.wakeWaiters()
	}
}

// lockRing and unlockRing guard the ring where Write may append to it
// concurrently: with Async.
func (c *Conn) lockRing() {
	if c.w != nil {
		c.rmu.Lock()
	}
}

func (c *Conn) unlockRing() {
	if c.w != nil {
		c.rmu.Unlock()
	}
}

func (c *Conn) wakeWaiters() {
	if c.nwait.Load() > 0 {
		c.mu.Lock()
		c.kick()
		c.mu.Unlock()
	}
}

// kick wakes every goroutine waiting on sig, after the condition it waits
// for has changed. c.mu is held.
func (c *Conn) kick() {
	if c.nwait.Load() == 0 {
		return
	}
	ch := make(chan struct{})
	close(*c.sig.Swap(&ch))
}

func (c *Conn) deadlinePassed() bool {
	ns := c.wdlNano.Load()
	return ns != 0 && time.Now().UnixNano() >= ns
}

// Write writes b as one message. See the package documentation for what a
// nil error guarantees.
//
// If the connection is found dead, Write redials, re-sends what the old
// peer had not acknowledged, and then writes b, blocking meanwhile. The
// wait ends at the write deadline (a timeout error), at Close
// (net.ErrClosed), when the context given to DialContext is done, or after
// Dialer.RedialTimeout (ErrRedialLimit); the error then wraps the last
// dial or write error. On a timeout, n is the number of bytes of b
// written, and they count as written.
func (c *Conn) Write(b []byte) (int, error) {
	if c.w != nil {
		return c.writeAsync(b)
	}
	c.wmu.Lock()
	if c.slow.Load() || c.closed.Load() || c.nquiesce.Load() > 0 {
		// A holder of tok is waiting in quiesce, maybe for this very
		// Write: step aside rather than take wmu from it again and again.
		c.unlockFast()
		return c.writeSlow(b)
	}
	if len(b) == 0 {
		c.unlockFast()
		return 0, nil
	}
	l := c.cur.Load()
	if !(l.quiet && !l.flagged.Load() && (c.cfg.replay <= 0 || c.ring.below(len(b)))) && !c.ready(l, len(b)) {
		c.unlockFast()
		return c.writeSlow(b)
	}
	n, err := l.write(b)
	if err != nil {
		if c.closed.Load() || errors.Is(err, os.ErrDeadlineExceeded) {
			c.stopped(l, b[:n], err)
			c.unlockFast()
			return n, c.writeError(err)
		}
		// The connection failed. b goes again, whole, on the next one.
		c.died(l, err, false)
		c.unlockFast()
		return c.writeSlow(b)
	}
	c.wrote(l, b)
	c.unlockFast()
	return n, nil
}

// ready runs the check on l and makes room in the ring for a message of n
// bytes without waiting. It reports whether a Write may go on with l at
// once. Write calls it only when a look at l and the ring does not tell
// already: l needs a check before each Write (it is not watched, or it
// is flagged, or dead), or the ring reached its mark.
func (c *Conn) ready(l *link, n int) bool {
	c.check(l)
	if l.state != healthy {
		return false
	}
	if c.cfg.replay <= 0 {
		return true
	}
	if int64(n)+heldSize > c.ring.max || c.ring.sent != c.ring.end {
		return false
	}
	if c.ring.usage() >= c.ring.mark || !c.ring.fits(n) {
		c.refresh(l)
		c.ring.remark()
	}
	if c.ring.fits(n) {
		return l.state == healthy
	}
	if !l.ackable && l.state == healthy {
		// Nothing will ever confirm these: the oldest are assumed
		// delivered (see the package documentation).
		c.count(c.ring.evict(n))
		return true
	}
	return false
}

// writeSlow is Write when something stands in the way: another goroutine
// on the slow path, a dead connection, a full replay buffer, the deadline,
// or Close.
func (c *Conn) writeSlow(b []byte) (int, error) {
	o := c.newOp(c.life, nil, time.Time{}, true)
	defer o.end()
	if err := o.lock(); err != nil {
		return 0, c.writeError(o.fail(err))
	}
	defer c.unlock()
	if c.closed.Load() {
		return 0, c.writeError(net.ErrClosed)
	}
	if len(b) == 0 {
		return 0, nil
	}
	if c.cfg.replay > 0 && int64(len(b))+heldSize > c.ring.max {
		return 0, c.writeError(ErrTooLarge)
	}
	for {
		if o.ctx.Err() != nil {
			return 0, c.writeError(o.fail(context.Cause(o.ctx)))
		}
		l := c.cur.Load()
		c.check(l)
		if l.state != healthy {
			if err := c.redial(o, l, true); err != nil {
				return 0, c.writeError(err)
			}
			continue
		}
		if c.cfg.replay > 0 && c.unsent() {
			if _, err := c.resend(o, l); err != nil {
				if l.state == healthy {
					return 0, c.writeError(o.stopped(err))
				}
				o.last = err
				continue
			}
		}
		if c.cfg.replay > 0 && !c.ring.fits(len(b)) {
			if c.cfg.onFull != nil {
				c.cfg.onFull()
			}
			if c.cfg.failWhenFull && l.ackable {
				c.st.rejected.Add(1)
				return 0, c.writeError(ErrBufferFull)
			}
			err := c.waitRoom(o, l, len(b))
			if err == errLinkDied {
				continue
			}
			if err != nil {
				return 0, c.writeError(err)
			}
		}
		n, err := o.write(l, b)
		if err == nil {
			c.wrote(l, b)
			return n, nil
		}
		if c.closed.Load() || errors.Is(err, os.ErrDeadlineExceeded) || o.ctx.Err() != nil {
			c.stopped(l, b[:n], err)
			if o.ctx.Err() != nil {
				err = o.fail(context.Cause(o.ctx))
			}
			return n, c.writeError(err)
		}
		c.died(l, err, false)
		o.last = err
	}
}

// stopped records the part of a message written before a write was
// stopped by a deadline or Close: the caller is told n bytes went, so the
// stream must stay what the caller believes it is. A deadline is told
// from the connection timing out (ETIMEDOUT, whose Timeout is also true)
// by os.ErrDeadlineExceeded: the latter ends the connection instead.
func (c *Conn) stopped(l *link, part []byte, err error) {
	if len(part) > 0 {
		c.wrote(l, part)
	}
	if l.cc != nil {
		// After a failed write a TLS connection only repeats the error:
		// the next Write must redial.
		c.died(l, err, false)
	}
}

// writeError is the error a Write returns for err: net.ErrClosed once
// Close has begun, a socket's own *net.OpError as it is, and anything else
// wrapped in a *net.OpError.
func (c *Conn) writeError(err error) error {
	if c.closed.Load() && !errors.Is(err, net.ErrClosed) {
		err = net.ErrClosed
	}
	if _, ok := err.(*net.OpError); ok {
		return err
	}
	return c.opError("write", err)
}

// wrote records a message written on l.
func (c *Conn) wrote(l *link, b []byte) {
	c.st.messages.Add(1)
	c.st.bytes.Add(int64(len(b)))
	if c.cfg.replay > 0 {
		c.ring.push(b, l.sentNow())
	}
}

// trimmed is called after k messages left the ring and were counted.
func (c *Conn) trimmed(k int) {
	if k > 0 && c.w != nil {
		c.wakeWaiters() // Writes waiting for room
	}
}

// trimTo drops the held messages that the current link's peer
// acknowledged up to link offset acked.
func (c *Conn) trimTo(acked int64) {
	c.lockRing()
	k, n := c.ring.trim(acked)
	c.count(k, n)
	c.unlockRing()
	c.trimmed(k)
}

// count counts messages that left the ring, before anything else can
// enter it: Stats reads the held count as what came in less what left.
func (c *Conn) count(k int, n int64) {
	if k > 0 {
		c.st.confirmed.Add(int64(k))
		c.st.confirmedBytes.Add(n)
	}
}

// held reports the number of held messages.
func (c *Conn) held() int {
	c.lockRing()
	defer c.unlockRing()
	return c.ring.mn
}

// check runs the liveness check of the Conn's mode on l: before every
// Write, or in watch mode only after the watcher flagged l.
func (c *Conn) check(l *link) {
	if l.sess != nil {
		if l.state == healthy && l.flagged.Load() {
			c.died(l, *l.ended.Load(), true)
		}
		return
	}
	if l.state != healthy || c.cfg.op == 0 {
		return
	}
	if l.watched && !(l.flagged.Load() && l.flagged.Swap(false)) {
		return
	}
	if r, ok := l.probe(c.cfg.op); ok {
		c.st.checks.Add(1)
		c.observe(l, r, true)
	}
}

// refresh asks for l's acknowledgement count and state, trims the ring,
// and marks l broken if it is.
func (c *Conn) refresh(l *link) {
	if !l.ackable || l.state != healthy {
		return
	}
	if l.sess != nil {
		c.trimTo(l.answered.Load())
		c.check(l)
		return
	}
	if r, ok := l.probe(opAcks | opState); ok {
		c.observe(l, r, false)
	}
}

// observe applies what a probe of l learned.
func (c *Conn) observe(l *link, r probeResult, byCheck bool) {
	if r.ackOK && l.ackable {
		c.trimTo(r.acked)
	}
	switch r.h {
	case closing:
		if !l.wclosed {
			// Only Close half-closes a link; any other FIN from this
			// side means the socket is being torn down.
			c.died(l, ErrPeerReset, byCheck)
		}
	case broken:
		c.died(l, ErrPeerReset, byCheck)
	case peerClosed:
		if c.cfg.replay <= 0 {
			// Without replay, what a closing peer drops is lost: leave
			// before writing to it.
			c.died(l, ErrPeerClosed, byCheck)
			return
		}
		if l.peerFIN {
			return // a receiver that half-closed at accept: it stays
		}
		if c.halfClosedAtAccept(l, r) {
			l.peerFIN = true
			c.st.peerHalfClosed.Add(1)
			return
		}
		c.leave(l, byCheck)
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
func (c *Conn) halfClosedAtAccept(l *link, r probeResult) bool {
	if l.sentNow() == l.sent0 {
		return true
	}
	if l.p.kind == sockTCP && l.ackable {
		if !r.ackOK {
			r, _ = l.probe(opAcks)
		}
		if r.ackOK && r.acked <= l.sent0 {
			return true
		}
	}
	return l.afterFIN && time.Since(l.upAt) < finGrace
}

// leave marks l, whose peer sent a FIN and is leaving, dead. l is drained
// (see drain): it is half-closed now, so that a server that
// reads until the client's EOF gets it, and stays open, carrying nothing
// new, until its peer has acknowledged what it was given, its socket has
// ended, or HandoffTimeout has passed; what its peer never took goes again
// on the next link, before anything new.
func (c *Conn) leave(l *link, byCheck bool) {
	c.died(l, ErrPeerClosed, byCheck)
	l.leaving = true
	l.drainBy = time.Now().Add(max(c.cfg.handoff, 0))
}

// died marks l broken and counts it.
func (c *Conn) died(l *link, cause error, byCheck bool) {
	if l.state != healthy {
		return
	}
	l.kill(cause)
	c.downSince.CompareAndSwap(0, time.Now().UnixNano())
	c.st.setLastErr(cause)
	if byCheck {
		c.st.deadByCheck.Add(1)
	} else {
		c.st.deadByWrite.Add(1)
	}
}

// errLinkDied tells a waiting Write that the link died meanwhile.
var errLinkDied = errors.New("reconn: link died")

// waitRoom waits until the ring has room for a message of n bytes, which
// acknowledgements make. The op's bound ends the wait; RedialTimeout does
// not, since the connection is up. It returns errLinkDied if l dies
// meanwhile.
func (c *Conn) waitRoom(o *op, l *link, n int) error {
	if !l.ackable {
		c.count(c.ring.evict(n))
		return nil
	}
	return c.poll(o, o.ctx, false, func() (bool, error) {
		c.refresh(l)
		if c.ring.fits(n) {
			return true, nil
		}
		if l.state != healthy {
			return false, errLinkDied
		}
		return false, nil
	})
}

// poll calls step, with a growing pause between calls, until step reports
// done or fails, or ctx, the op's bound or a narrower one, ends the wait. The caller holds the
// right to write; if release is set, poll gives it up for each pause and
// takes it back, within the op's bound, for each step, so that Writes go
// on meanwhile. poll returns holding it unless release is set.
func (c *Conn) poll(o *op, ctx context.Context, release bool, step func() (bool, error)) error {
	for d := 50 * time.Microsecond; ; d = min(2*d, 10*time.Millisecond) {
		done, err := step()
		if done || err != nil {
			if release {
				c.unlock()
			}
			return err
		}
		if release {
			c.unlock()
		}
		if err := o.sleep(ctx, d); err != nil {
			return o.fail(err)
		}
		if release {
			if err := o.lock(); err != nil {
				return o.fail(err)
			}
		}
	}
}

// heal is called by the watcher when it flagged l. If l is the current
// link and it died with messages its peer never acknowledged, or its
// peer is leaving with messages it may not have taken, a background
// goroutine redials and replays them at once, so that a message written
// just before the event is not left waiting for the next Write. Otherwise
// the next Write acts on the flag: a server that closes an idle connection
// is not redialed for nothing.
func (c *Conn) heal(l *link) {
	if c.w != nil {
		c.w.signal() // the writer acts on the flag
		return
	}
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
	if o.lock() != nil {
		return
	}
	defer c.unlock()
	if c.cur.Load() != l {
		return
	}
	c.check(l)
	if l.state == healthy {
		return
	}
	c.settle(l)
	if c.held() == 0 {
		return
	}
	// On failure the error is in Stats; the next Write tries again.
	o.redialCtx()
	c.redial(o, l, false)
}

// redial replaces the dead link old: it trims what old's peer
// acknowledged, dials with backoff, installs the new link and replays
// what is held. If old's peer is leaving, old drains meanwhile (see
// drain), and the new link is installed once the drain is over; if the
// drain confirms everything and need is not set (the caller writes no
// message), redial returns without a new link. It gives up when the op's
// redial bound ends, and returns the op's error.
func (c *Conn) redial(o *op, old *link, need bool) error {
	c.recovering.Store(true)
	c.wakeWaiters()
	defer c.recovering.Store(false)
	rc := o.redialCtx()
	start := time.Now()
	ev := RedialEvent{Reason: RedialFailure, From: c.cfg.addrs[old.addr], Cause: old.cause}
	if old.placeholder {
		ev.Cause = nil // the first connection of an Async Conn: not a redial, no event
	}
	c.settle(old)
	if o.last == nil {
		// What the Conn last met: old's end, or a failed dial of an
		// earlier recovery (in the background, say) that gave up.
		o.last = c.st.lastError()
	}
	for round := 0; ; round++ {
		if round > 0 {
			if err := c.backoffWait(o, rc, c.backoff(round), old); err != nil {
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
		c.drain(o, old)
		ev.To = c.cfg.addrs[nl.addr]
		c.install(nl, old)
		// Counted once installed: whoever sees the count sees the link.
		c.st.dials.Add(1)
		if !old.placeholder {
			c.st.redials.Add(1)
			if nl.addr != 0 {
				c.st.failovers.Add(1)
			}
		}
		k, err := c.replay(o, nl)
		ev.Replayed += k
		if err != nil && nl.state != healthy {
			// nl died in the replay: redial again.
			if o.ctx.Err() != nil || c.closed.Load() {
				return o.fail(context.Cause(o.ctx))
			}
			o.last = err
			c.st.setLastErr(err)
			old = nl
			c.settle(old)
			continue
		}
		ev.Downtime = time.Since(start)
		if ev.Cause != nil {
			o.events = append(o.events, ev)
		}
		if err != nil {
			// A deadline or Close stopped the replay: nl carries the
			// stream on, and the next write on it finishes the replay.
			return o.stopped(err)
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
		nl, err := c.cfg.dialLink(rc, i)
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
		l, err := c.cfg.dialLink(ctx, i)
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
func (c *Conn) settle(old *link) {
	if old.ackable && c.held() > 0 {
		if old.sess != nil {
			c.trimTo(old.answered.Load())
		} else if r, ok := old.probe(opAcks); ok && r.ackOK {
			c.trimTo(r.acked)
		}
	}
	if old.leaving && !old.drained {
		old.closeWrite()
		return
	}
	if c.onLink() > 0 {
		old.abort()
	}
}

// replay writes every held message on the new link l, in order: those an
// earlier link carried, then, with Async, those never sent. It returns
// how many of the former it re-sent.
func (c *Conn) replay(o *op, l *link) (int, error) {
	c.lockRing()
	if c.ring.mn == 0 {
		c.unlockRing()
		return 0, nil
	}
	// Every held message goes, whatever the link before carried: a
	// replay cut short leaves messages that no link carries now.
	c.ring.unlink()
	c.unlockRing()
	return c.resend(o, l)
}

// resend writes on l what the ring holds beyond what l carried, and
// counts as re-sent the messages among them that an earlier link
// carried. It serves replay, and in the synchronous mode it finishes on
// the same link a replay that a deadline or Close stopped.
func (c *Conn) resend(o *op, l *link) (int, error) {
	c.lockRing()
	done, doneBytes := c.ring.upTo(c.ring.sent)
	was, wasBytes := c.ring.upTo(c.ring.hw)
	c.unlockRing()
	k, n, err := c.send(o, l)
	k, n = min(k, was-done), min(n, wasBytes-doneBytes)
	c.st.resent(k, n)
	return k, err
}

// unsent reports whether the ring holds bytes not written on the current
// link: in the synchronous mode, a replay that a deadline or Close
// stopped.
func (c *Conn) unsent() bool {
	c.lockRing()
	defer c.unlockRing()
	return c.ring.sent != c.ring.end
}

// maxWrite bounds one write of held messages: with Async, the largest
// batch of messages one system call carries.
const maxWrite = 64 << 10

// send writes what the ring holds and has not written on l, and returns
// the number of messages it completed and their bytes.
func (c *Conn) send(o *op, l *link) (int, int64, error) {
	if l.sess != nil {
		return c.sendFrames(o, l)
	}
	k, from := 0, int64(-1)
	for {
		c.lockRing()
		if from < 0 {
			from = c.ring.sent
		}
		s := c.ring.unsent(maxWrite)
		ms, sent := c.ring.ms, c.ring.sent
		c.unlockRing()
		if len(s) == 0 {
			return k, sent - from, nil
		}
		before := l.sentNow()
		n, err := o.write(l, s)
		c.lockRing()
		c.ring.advance(n, before, l.sentNow(), l.cc == nil)
		k += c.ring.ms - ms
		sent = c.ring.sent
		c.unlockRing()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && l.cc == nil {
				// A deadline or Close stopped the write: the connection
				// is sound and the ring records how far the stream went
				// on it, so the next write on l goes on from there.
				return k, sent - from, err
			}
			// A message may be cut on l: l cannot carry the stream on.
			c.died(l, err, false)
			return k, sent - from, err
		}
	}
}

// sendFrames is send in a session: it frames each message not yet written
// on l, as many as the session's window lets wait for their answers, and
// writes them in writes of about maxWrite bytes. Once the session reached
// its limit of messages, it plans a move to a new session instead.
func (c *Conn) sendFrames(o *op, l *link) (int, int64, error) {
	k, bytes := 0, int64(0)
	window, limit := int64(l.sess.Window()), l.sess.Limit()
	for {
		c.lockRing()
		ms, mn := c.ring.ms, c.ring.mn
		first := l.sessN + 1
		buf := l.wbuf[:0]
		n := 0
		var size int64
		scratch := l.scratch
		for i := ms; i < mn && len(buf) < maxWrite; i++ {
			if l.sessN+int64(n)-l.answered.Load() >= window || l.sessN+int64(n) >= limit {
				break
			}
			a, b := c.ring.message(i)
			msg := a
			if len(b) > 0 {
				scratch = append(append(scratch[:0], a...), b...)
				msg = scratch
				l.scratch = scratch
			}
			buf = l.sess.Append(buf, l.sessN+int64(n)+1, msg)
			size += int64(len(msg))
			n++
		}
		c.unlockRing()
		l.wbuf = buf
		if n == 0 {
			if ms < mn && l.sessN >= limit {
				c.plan(l, RedialRotation)
			}
			return k, bytes, nil
		}
		_, err := o.write(l, buf)
		if err != nil {
			// Frames may be cut on l: the session cannot go on.
			c.died(l, err, false)
			return k, bytes, err
		}
		l.sessN += int64(n)
		c.lockRing()
		c.ring.carried(n, first)
		c.unlockRing()
		k += n
		bytes += size
	}
}

// startSession starts the reader of l's session: it records the answers,
// counts what the server refused, and marks l dead when the session ends,
// waking the writer each time.
func (c *Conn) startSession(l *link) {
	l.readerDone = make(chan struct{})
	go func() {
		defer close(l.readerDone)
		err := l.sess.Run(l.nc,
			func(n int64) {
				l.answered.Store(n)
				c.w.signal()
			},
			func(n int64, err error) {
				c.st.refused.Add(1)
				c.st.setLastErr(err)
				c.refusal.Store(&err)
			})
		l.ended.Store(&err)
		l.flagged.Store(true)
		c.w.signal()
	}()
}

// install makes l the current link, in place of old.
func (c *Conn) install(l *link, old *link) {
	l.afterFIN = old != nil && old.leaving
	c.downSince.Store(0)
	if c.w != nil {
		c.w.up()
	}
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

// planMoves arms the planned moves of the new current link l: its end of
// life (ConnMaxLifetime), and, on a fallback, the failback probe. c.mu is
// held.
func (c *Conn) planMoves(l *link) {
	if c.closed.Load() {
		return
	}
	if t := c.cfg.lifetime; t > 0 {
		life := t - rand.N(t/10+1)
		l.expire = time.AfterFunc(life, func() { c.plan(l, RedialRotation) })
	}
	if c.cfg.failback > 0 && l.addr != 0 {
		c.startMove(l, RedialFailback)
	}
}

// plan starts a planned move of l, if l is still the current link.
func (c *Conn) plan(l *link, reason RedialReason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed.Load() && c.cur.Load() == l {
		c.startMove(l, reason)
	}
}

// startMove starts the goroutine of a planned move. c.mu is held.
func (c *Conn) startMove(l *link, reason RedialReason) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		c.moveOff(l, reason)
	}()
}

// moveOff moves the stream off l, a working link, to a new connection:
// for a failback, to the first address, probed after FailbackInterval
// and then after waits that double, up to ten times FailbackInterval;
// for a rotation, to the first address that answers, at once and then
// with backoff. Dials run without the right to write; it ends when l is
// no longer current or the Conn is closed.
func (c *Conn) moveOff(l *link, reason RedialReason) {
	wait, limit := time.Duration(0), c.cfg.maxBackoff
	if reason == RedialFailback {
		wait, limit = c.cfg.failback, 10*c.cfg.failback
	}
	for n := 1; ; n++ {
		if wait > 0 && sleep(c.life, wait) != nil {
			return
		}
		if c.cur.Load() != l || l.retired.Load() {
			return
		}
		var nl *link
		var err error
		if reason == RedialFailback {
			nl, err = c.cfg.dialLink(c.life, 0)
		} else {
			nl, err = c.dialFirst(c.life)
		}
		if err == nil {
			if !c.move(nl, l, reason) {
				nl.close()
			}
			return
		}
		if c.life.Err() != nil {
			return
		}
		if reason == RedialFailback {
			wait = min(2*wait, limit)
		} else {
			wait = c.backoff(n)
		}
	}
}

// move puts the stream on nl in place of old, a working link, with the
// graceful handoff: no message is lost, and none is sent twice unless the
// old peer did not acknowledge within HandoffTimeout. It reports false if
// old is no longer the current working link.
func (c *Conn) move(nl, old *link, reason RedialReason) bool {
	o := c.newOp(c.life, nil, time.Time{}, false)
	defer o.end()
	if o.lock() != nil {
		return false
	}
	defer c.unlock()
	if c.closed.Load() || c.cur.Load() != old || old.state != healthy {
		return false
	}
	start := time.Now()
	c.handoff(o, old)
	c.install(nl, old)
	k, _ := c.replay(o, nl) // if nl died meanwhile, the next Write redials
	if reason == RedialFailback {
		c.st.failbacks.Add(1)
	} else {
		c.st.rotations.Add(1)
	}
	o.events = append(o.events, RedialEvent{
		Reason:   reason,
		From:     c.cfg.addrs[old.addr],
		To:       c.cfg.addrs[nl.addr],
		Attempts: 1,
		Downtime: time.Since(start),
		Replayed: k,
	})
	return true
}

// handoff ends the stream on old, a working link, before a planned move:
// it drains old (see drain) for up to HandoffTimeout. The caller holds
// the right to write.
func (c *Conn) handoff(o *op, old *link) {
	c.refresh(old)
	if c.onLink() == 0 {
		return
	}
	old.drainBy = time.Now().Add(max(c.cfg.handoff, 0))
	c.drain(o, old)
}

// drain ends the stream on old, a link that carries no new message any
// more, once: it half-closes old, so that nothing more goes on it and a
// server that reads until the client's EOF gets it, and waits until the
// drain is over (drained), old.drainBy passes or the op's bound ends. If
// messages are left that old's peer has not acknowledged, they go again
// on the next link, and old closes with a reset, so that it cannot
// deliver them after the next link did. Where nothing counts
// acknowledgements, or HandoffTimeout is negative, it does not wait. The
// caller holds the right to write.
func (c *Conn) drain(o *op, old *link) {
	if old.drained || old.state != healthy && !old.leaving {
		return // a dead link is settled when found dead
	}
	if !c.drained(old) && c.cfg.handoff >= 0 && old.ackable {
		old.closeWrite()
		ctx, cancel := context.WithDeadline(o.ctx, old.drainBy)
		c.poll(o, ctx, false, func() (bool, error) { return c.drained(old), nil })
		cancel()
	}
	c.endDrain(old)
}

// drained trims what old's peer acknowledged, and reports whether old's
// drain is over: every message it carried is confirmed, or its socket has
// ended (a reset, or both sides closed), so that no acknowledgement is to
// come.
func (c *Conn) drained(old *link) bool {
	if old.sess != nil {
		c.trimTo(old.answered.Load())
		return c.onLink() == 0 || old.flagged.Load()
	}
	r, ok := old.probe(opAcks | opState)
	if ok && r.ackOK {
		c.trimTo(r.acked)
	}
	return c.onLink() == 0 || !ok || r.h == broken
}

// endDrain records that old's drain is over, and resets old if it leaves
// messages for the next link.
func (c *Conn) endDrain(old *link) {
	old.drained = true
	if c.onLink() > 0 {
		old.abort()
	}
}

// backoffWait waits d before the next dial of a redial that replaces old,
// or until ctx ends. While old drains, it looks at old now and then, so
// that its peer's acknowledgements are counted before its socket ends
// (a unix socket forgets them then), and ends the drain at old.drainBy.
func (c *Conn) backoffWait(o *op, ctx context.Context, d time.Duration, old *link) error {
	until := time.Now().Add(d)
	for step := time.Millisecond; old.leaving && !old.drained; step = min(2*step, 10*time.Millisecond) {
		if c.drained(old) || !time.Now().Before(old.drainBy) {
			c.endDrain(old)
			break
		}
		left := time.Until(until)
		if left <= 0 {
			return nil
		}
		if err := o.sleep(ctx, min(step, left)); err != nil {
			return err
		}
	}
	if left := time.Until(until); left > 0 {
		return o.sleep(ctx, left)
	}
	return nil
}

// onLink returns the number of held messages that the current link
// carried.
func (c *Conn) onLink() int {
	c.lockRing()
	defer c.unlockRing()
	return c.ring.ms
}

// linkWriteDeadline is the write deadline a link must have: the Conn's,
// or Close's flush limit once Close has begun. With Async, the write
// deadline bounds Write, which does not write on the link: a link's
// writes are bounded by Close alone. c.mu is held.
func (c *Conn) linkWriteDeadline() time.Time {
	if c.w != nil && c.w.stopping.Load() {
		return aLongTimeAgo
	}
	if c.closed.Load() {
		return c.flushDL
	}
	if c.w != nil {
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

// lingerTime bounds how long a Read may go on reading a replaced link.
const lingerTime = 2 * time.Second

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

// Flush waits until the peer's kernel has acknowledged every message
// written before the call, redialing and replaying if the peer dies
// meanwhile. Writes go on while Flush waits. If ctx ends first, or the
// Conn is closed, or a redial gives up (see Dialer.RedialTimeout), Flush
// returns a *net.OpError wrapping an *UnconfirmedError.
//
// Where the platform has no acknowledgement count (see the package
// documentation), and with replay off, Flush returns at once.
func (c *Conn) Flush(ctx context.Context) error {
	if c.closed.Load() {
		return c.opError("flush", net.ErrClosed)
	}
	if err := c.reportRefusal(); err != nil {
		return c.opError("flush", err)
	}
	o := c.newOp(c.life, ctx, time.Time{}, false)
	defer o.end()
	var f flushState
	err := o.lock()
	if err == nil {
		err = c.poll(o, o.ctx, true, func() (bool, error) { return c.flushStep(o, &f, false) })
	} else {
		err = o.fail(err)
	}
	if err != nil {
		return c.opError("flush", c.unconfirmed(err, &f))
	}
	// An answer that came while Flush waited may have refused a message.
	if err := c.reportRefusal(); err != nil {
		return c.opError("flush", err)
	}
	return nil
}

// flushState follows one Flush or Close.
type flushState struct {
	target   int64 // stream offset to see acknowledged; -1 until known
	known    bool  // target is set
	messages int   // unconfirmed before target at the last look
	bytes    int64
}

// flushStep looks once at what is confirmed up to the flush's target,
// redialing and replaying if the link is dead (with Async, the writer
// does that: flushStep waits for it). It reports whether everything is
// confirmed, or, with an error, why it gave up. If final is set (Close),
// the link is half-closed once everything is written on it, since nothing
// more will be. The caller holds the right to write.
func (c *Conn) flushStep(o *op, f *flushState, final bool) (bool, error) {
	c.lockRing()
	if !f.known {
		f.target, f.known = c.ring.end, true
	}
	c.unlockRing()
	for {
		l := c.cur.Load()
		c.check(l)
		if l.state == healthy && c.w == nil && c.unsent() {
			if _, err := c.resend(o, l); err != nil && l.state == healthy {
				return false, o.stopped(err)
			}
			continue
		}
		if l.state == healthy {
			if !l.ackable && c.sentUpTo(f.target) {
				return true, nil // nothing can confirm it
			}
			c.refresh(l)
		}
		if c.unconfirmedUpTo(f) == 0 {
			return true, nil
		}
		if l.state == healthy {
			if final && c.sentUpTo(math.MaxInt64) {
				l.closeWrite()
			}
			return false, nil
		}
		// A link that ended after both sides closed (Close half-closed
		// it) reads as closed but counts what its peer acknowledged, and
		// a peer that is leaving may still take what it was given:
		// redial only for what is left.
		c.settle(l)
		if c.w == nil {
			c.drain(o, l)
		}
		if c.unconfirmedUpTo(f) == 0 {
			return true, nil
		}
		if c.w != nil {
			c.w.signal()
			return false, c.w.err()
		}
		if err := c.redial(o, l, false); err != nil {
			return false, err
		}
	}
}

// unconfirmedUpTo records and returns the number of held messages that
// end before the flush's target.
func (c *Conn) unconfirmedUpTo(f *flushState) int {
	c.lockRing()
	f.messages, f.bytes = c.ring.upTo(f.target)
	c.unlockRing()
	return f.messages
}

// sentUpTo reports whether everything held up to stream offset off is
// written on the current link.
func (c *Conn) sentUpTo(off int64) bool {
	c.lockRing()
	defer c.unlockRing()
	return c.ring.sent >= min(off, c.ring.end)
}

// unconfirmed wraps err, why a Flush or Close gave up, with what was still
// unconfirmed at its last look.
func (c *Conn) unconfirmed(err error, f *flushState) error {
	if !f.known {
		f.messages, f.bytes = c.st.pending()
	}
	return &UnconfirmedError{Messages: f.messages, Bytes: f.bytes, Err: err}
}

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
			// will not see it (see probe.reset).
			l.p.reset.Store(true)
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

// errNoRead is the error of Read in a protocol with answers: the
// session's reader has the connection.
var errNoRead = errors.New("reconn: Read: the protocol reads the server's answers itself")

// reportRefusal returns, once, the error of a message the server refused.
func (c *Conn) reportRefusal() error {
	if e := c.refusal.Swap(nil); e != nil {
		return *e
	}
	return nil
}

// waitConnected waits until an Async Conn has its first connection, the
// read deadline passes, or Close.
func (c *Conn) waitConnected() error {
	c.nwait.Add(1)
	defer c.nwait.Add(-1)
	for {
		sig := c.sig.Load()
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
		case <-*sig:
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

// Close stops new Writes, wakes pending Reads and Writes, half-closes the
// connection and waits until the peer's kernel has acknowledged
// everything written, redialing and replaying if the peer dies meanwhile.
// The wait is bounded by the write deadline if one is set, else by
// Dialer.FlushTimeout, and ends when the context given to DialContext is
// done. If it gives up, Close returns a *net.OpError wrapping an
// *UnconfirmedError. No goroutine of the Conn is left when Close returns.
//
// Close is safe to call more than once; later calls return an error
// satisfying errors.Is(err, net.ErrClosed).
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opError("close", net.ErrClosed)
	}
	c.mu.Lock()
	if !c.wdl.IsZero() {
		c.flushDL = c.wdl
	} else if c.cfg.flushTimeout > 0 {
		c.flushDL = time.Now().Add(c.cfg.flushTimeout)
	} else if c.cfg.flushTimeout < 0 {
		c.flushDL = aLongTimeAgo
	}
	c.end(net.ErrClosed)
	c.kick()
	stop := aLongTimeAgo
	if c.w != nil {
		// The writer goes on sending until the flush ends: only Reads
		// stop now.
		stop = time.Time{}
	}
	for _, l := range [...]*link{c.cur.Load(), c.lingering} {
		if l != nil {
			if c.cfg.proto == nil {
				// In a protocol session, the session reads, until the end.
				l.nc.SetReadDeadline(aLongTimeAgo)
			}
			if !stop.IsZero() {
				l.nc.SetWriteDeadline(stop)
			}
		}
	}
	c.mu.Unlock()

	defer c.bg.Wait() // after the right to write is released: a background recovery may wait for it
	var err error
	if c.cfg.replay > 0 {
		// Without FlushTimeout the limit has passed: one look, no wait,
		// and what is unconfirmed is reported.
		err = c.flushAll()
	}
	if c.w != nil {
		c.w.stop()
	}
	if c.lockCtx(c.base) == nil {
		defer c.unlock()
		if l := c.cur.Load(); l.sess != nil && l.state == healthy {
			ctx, cancel := context.WithDeadline(c.base, c.flushDL)
			l.sess.Close(ctx, l.nc, l.sessN)
			cancel()
		}
	}
	if err == nil {
		err = c.reportRefusal()
	}
	c.mu.Lock()
	links := [...]*link{c.cur.Load(), c.lingering}
	c.lingering = nil
	c.mu.Unlock()
	for _, l := range links {
		if l != nil {
			// What the flush confirmed is delivered, whatever the close
			// says: a TLS close_notify to a peer that has reset fails.
			l.close()
		}
	}
	if err != nil {
		return c.opError("close", err)
	}
	return nil
}

// lockCtx takes the right to write for the slow path, or gives up when
// ctx ends.
func (c *Conn) lockCtx(ctx context.Context) error {
	select {
	case c.tok <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if err := c.quiesce(ctx); err != nil {
		<-c.tok
		return err
	}
	return nil
}

// flushAll is Close's flush, bounded by the flush limit and by the context
// given to DialContext. In the synchronous mode it keeps the right to
// write to the end; with Async it takes it for each look, as Flush does,
// so that the writer can go on.
func (c *Conn) flushAll() error {
	o := c.newOp(c.base, nil, c.flushDL, false)
	defer o.end()
	var f flushState
	async := c.w != nil
	if err := o.lock(); err != nil {
		return c.unconfirmed(o.fail(err), &f)
	}
	if !async {
		defer c.unlock()
		c.restoreWriteDeadline(c.cur.Load())
	}
	if err := c.poll(o, o.ctx, async, func() (bool, error) { return c.flushStep(o, &f, true) }); err != nil {
		return c.unconfirmed(err, &f)
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
	c.kick()
	return nil
}

// Stats returns a snapshot of the Conn's counters. It may be called at any
// time, from any goroutine.
func (c *Conn) Stats() Stats {
	s := c.st.snapshot(c.cfg.replay > 0)
	if c.w != nil {
		c.rmu.Lock()
		s.Unsent, s.UnsentBytes = int64(c.ring.mn-c.ring.ms), c.ring.end-c.ring.sent
		c.rmu.Unlock()
	}
	if ns := c.downSince.Load(); ns != 0 {
		s.DownSince = time.Unix(0, ns)
	}
	s.Address = c.cfg.addrs[c.cur.Load().addr]
	return s
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
