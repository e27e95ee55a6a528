package reconn

import (
	"context"
	"sync"
	"sync/atomic"
)

// The right to write
//
// One goroutine at a time holds the right to write. Only its holder
// writes on the current link, replaces it (Conn.cur), uses the ring (with
// Async under Conn.rmu too, since Write appends to it without the right),
// and touches the fields of a link marked "holder"; every function that
// does takes a hold as its first parameter, and only the gate and
// op.lock make one.
//
// There are two ways in.
//
//   - The fast path: a synchronous Write takes gate.fast, a mutex, and,
//     finding slow unset and no holder of tok waiting in quiesce, holds
//     the right for its one write (lockFast). It waits for fast only
//     behind another fast Write, whose socket write the write deadline
//     and Close bound. unlockFast releases it.
//   - The slow path: everything else (a Write that must redial or wait for
//     room, Flush, Close, the watcher's background recovery, a planned
//     move, the Async writer) takes tok, a channel of capacity 1, waiting
//     no longer than its own bound (op.lock, lockCtx), and then, in the
//     synchronous mode, quiesces: it waits, within the same bound, until
//     the fast Write in progress has ended, sets slow and releases fast.
//     From then on fast Writes step aside and take the slow path. A
//     holder waiting in quiesce is counted in quiescing, so that Writes
//     in a tight loop cannot keep taking fast first. unlock clears slow
//     and releases tok. With Async there is no fast path and no quiesce.
//
// A goroutine that waits (for tok, in quiesce, or for anything else that
// another goroutine changes: room in the ring, the first connection)
// registers with sig and selects on sig's channel and its own bound (a
// waiter for tok also on sending to tok, which unlock's receive lets
// through); whoever changes what it waits for kicks sig: unlockFast with
// a holder in quiesce, a trim, SetWriteDeadline, Close, a holder that
// begins to replace a dead link. While it does, recovering is set and
// waiters for tok count Dialer.RedialTimeout too.
//
// Lock order: tok, then fast, then Conn.mu. Conn.rmu is taken after any
// of them and never held across a blocking step. The watcher's lock
// (internal/sock) may be taken with tok or fast held, when a link is
// closed, never with Conn.mu held.
type gate struct {
	fast       sync.Mutex    // held by a fast Write for its write
	tok        chan struct{} // the slow path's right, capacity 1
	slow       atomic.Bool   // the holder of tok owns the stream: fast Writes step aside
	quiescing  atomic.Int32  // holders of tok waiting in quiesce for a fast Write to end
	recovering atomic.Bool   // the holder of tok is replacing a dead link
	async      bool          // no fast path; set at Dial
	sig        broadcast
}

// A hold is the proof, passed as the first parameter, that the caller
// holds the right to write. lockFast, lockCtx and op.lock make one;
// nothing else does (TestHoldsMadeByGateOnly checks it).
type hold struct{}

func (g *gate) init(async bool) {
	g.tok = make(chan struct{}, 1)
	g.async = async
	g.sig.init()
}

// lockFast takes the right for a fast Write, if the fast path is open: no
// holder of tok owns the stream or waits for it. If it reports false, the
// caller holds nothing and takes the slow path.
func (g *gate) lockFast() (hold, bool) {
	g.fast.Lock()
	if g.slow.Load() || g.quiescing.Load() > 0 {
		// A holder of tok is waiting in quiesce, maybe for this very
		// Write: step aside rather than take fast from it again and
		// again.
		g.unlockFast()
		return hold{}, false
	}
	return hold{}, true
}

// unlockFast releases what lockFast took, and wakes a holder of tok that
// waits in quiesce.
func (g *gate) unlockFast() {
	g.fast.Unlock()
	if g.quiescing.Load() > 0 {
		g.sig.kick()
	}
}

// takeTok takes tok, waiting until ctx ends, or, while the holder
// recovers, until recovery() ends if recovery is not nil: a waiter for a
// holder that is replacing a dead link counts RedialTimeout too. It
// returns the context that ended the wait, or nil.
func (g *gate) takeTok(ctx context.Context, recovery func() context.Context) context.Context {
	select {
	case g.tok <- struct{}{}:
		return nil
	default:
	}
	if recovery == nil {
		select {
		case g.tok <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx
		}
	}
	g.sig.enter()
	defer g.sig.leave()
	for {
		ch := g.sig.wait() // kicked when recovering changes
		bound := ctx
		if g.recovering.Load() {
			bound = recovery()
		}
		select {
		case g.tok <- struct{}{}:
			return nil
		case <-bound.Done():
			return bound
		case <-ch:
		}
	}
}

// quiesce makes the fast path step aside for the holder of tok, once the
// fast Write in progress, if any, has ended: it takes fast, waiting no
// longer than ctx lets it, sets slow, and releases fast.
func (g *gate) quiesce(ctx context.Context) error {
	if g.async || g.slow.Load() {
		return nil
	}
	if !g.fast.TryLock() {
		g.quiescing.Add(1)
		g.sig.enter()
		defer g.sig.leave()
		defer g.quiescing.Add(-1)
		for !g.fast.TryLock() {
			ch := g.sig.wait()
			if g.fast.TryLock() {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
	g.slow.Store(true)
	g.fast.Unlock()
	return nil
}

// lockCtx takes the right for the slow path, or gives up when ctx ends.
func (g *gate) lockCtx(ctx context.Context) (hold, error) {
	if ended := g.takeTok(ctx, nil); ended != nil {
		return hold{}, context.Cause(ended)
	}
	if err := g.quiesce(ctx); err != nil {
		<-g.tok
		return hold{}, err
	}
	return hold{}, nil
}

// unlock releases the right that the slow path took, after ending the
// slow period that quiesce began.
func (g *gate) unlock(hold) {
	if g.slow.Load() {
		g.fast.Lock()
		g.slow.Store(false)
		g.fast.Unlock()
	}
	<-g.tok // a goroutine blocked sending on tok takes it now
}

// A broadcast wakes every goroutine that waits for a change. A waiter
// calls enter, then, in a loop, takes wait's channel before it looks at
// what it waits for and selects on the channel if it must wait; it calls
// leave when done. kick closes the channel of the moment and makes a new
// one. It needs no lock: each kick swaps the channel before it closes
// the old one.
type broadcast struct {
	n  atomic.Int32 // goroutines between enter and leave
	ch atomic.Pointer[chan struct{}]
}

func (b *broadcast) init() {
	ch := make(chan struct{})
	b.ch.Store(&ch)
}

func (b *broadcast) enter() { b.n.Add(1) }

func (b *broadcast) leave() { b.n.Add(-1) }

// wait returns the channel that the next kick closes.
func (b *broadcast) wait() <-chan struct{} { return *b.ch.Load() }

// kick wakes every goroutine between enter and leave. It never blocks,
// and allocates only when one waits.
func (b *broadcast) kick() {
	if b.n.Load() == 0 {
		return
	}
	ch := make(chan struct{})
	close(*b.ch.Swap(&ch))
}
