package reconn

import (
	"context"
	"os"
	"time"

	"github.com/reconn/reconn/internal/proto"
)

// An op is the bound of one Write, Flush or Close that left the fast
// path, or of a background recovery or move. It derives one context, ctx,
// once: from the Conn's lifetime (ended by Close) or, for Close, from the
// context given to DialContext; narrowed by Close's flush limit;
// cancelled when the context given to Flush ends; and cancelled when the
// Conn's write deadline passes, for a Write and a background recovery. A
// timer follows the write deadline as SetWriteDeadline moves it. Every
// blocking step of the op selects on ctx, or on redial, the narrower
// context that RedialTimeout adds from the moment the op first waits for
// a connection to come back; a socket write is bounded by it through
// proto.Bound.
//
// Who stopped the op is read from the context's cause, never from a
// clock: os.ErrDeadlineExceeded for the write deadline or Close's flush
// limit, ErrRedialLimit for RedialTimeout, net.ErrClosed for Close, and
// the cause of the caller's context otherwise.
type op struct {
	c       *Conn
	ctx     context.Context
	cancel  context.CancelCauseFunc
	release func() // undoes what newOp set up beyond cancel

	writeDL bool        // the write deadline bounds the op
	timer   *time.Timer // fires at the write deadline; guarded by Conn.mu

	redial       context.Context // nil until the op first waits for a connection
	redialCancel context.CancelFunc

	last     error         // the last dial or write error met while redialing
	attempts int           // dial attempts made
	events   []RedialEvent // redials to report to OnRedial once the right to write is released

	writer bool        // the Async writer's op: no RedialTimeout, writes bounded by Close alone
	pauser *time.Timer // reused by pause
}

// newOp starts an op whose context derives from parent, ends with user if
// it is not nil, ends at limit if it is not zero, and follows the write
// deadline if writeDL is set. The caller must call end.
func (c *Conn) newOp(parent, user context.Context, limit time.Time, writeDL bool) *op {
	o := &op{c: c, writeDL: writeDL}
	ctx, cancel := context.WithCancelCause(parent)
	o.ctx, o.cancel = ctx, cancel
	var stopLimit context.CancelFunc
	if !limit.IsZero() {
		o.ctx, stopLimit = context.WithDeadlineCause(ctx, limit, os.ErrDeadlineExceeded)
	}
	var stopUser func() bool
	if user != nil {
		stopUser = context.AfterFunc(user, func() { cancel(context.Cause(user)) })
	}
	o.release = func() {
		if stopUser != nil {
			stopUser()
		}
		if stopLimit != nil {
			stopLimit()
		}
	}
	if writeDL {
		c.mu.Lock()
		if c.ops == nil {
			c.ops = make(map[*op]struct{})
		}
		c.ops[o] = struct{}{}
		o.armLocked(c.wdl)
		c.mu.Unlock()
	}
	return o
}

// armLocked makes the op end when the write deadline t passes. Conn.mu is
// held.
func (o *op) armLocked(t time.Time) {
	if t.IsZero() {
		if o.timer != nil {
			o.timer.Stop()
		}
		return
	}
	d := time.Until(t)
	if d <= 0 {
		o.cancel(os.ErrDeadlineExceeded)
		return
	}
	if o.timer == nil {
		o.timer = time.AfterFunc(d, func() { o.cancel(os.ErrDeadlineExceeded) })
	} else {
		o.timer.Reset(d)
	}
}

// end releases what the op holds and reports its redials to OnRedial. It
// is called after the right to write was released.
func (o *op) end() {
	c := o.c
	if o.writeDL {
		c.mu.Lock()
		delete(c.ops, o)
		if o.timer != nil {
			o.timer.Stop()
		}
		c.mu.Unlock()
	}
	if o.redialCancel != nil {
		o.redialCancel()
	}
	if o.pauser != nil {
		o.pauser.Stop()
	}
	o.release()
	o.cancel(nil)
	if c.cfg.onRedial != nil {
		for _, ev := range o.events {
			c.cfg.onRedial(ev)
		}
	}
}

// redialCtx returns the op's context narrowed by RedialTimeout, counted
// from the first call.
func (o *op) redialCtx() context.Context {
	if o.writer {
		return o.ctx // the writer never gives up; see writer.down
	}
	if o.redial == nil {
		o.redial = o.ctx
		if t := o.c.cfg.redialTimeout; t > 0 {
			o.redial, o.redialCancel = context.WithTimeoutCause(o.ctx, t, ErrRedialLimit)
		}
	}
	return o.redial
}

// lock takes the right to write for the slow path (see gate), waiting no
// longer than the op's bound, or than its redial bound while the holder
// is replacing a dead link.
func (o *op) lock() (hold, error) {
	g := &o.c.gate
	ended := g.takeTok(o.ctx, o.redialCtx)
	if ended != nil {
		if o.last == nil && ended == o.redial {
			// The holder's recovery has failed so far for this reason.
			o.last = o.c.st.lastError()
		}
		return hold{}, context.Cause(ended)
	}
	if err := g.quiesce(o.ctx); err != nil {
		<-g.tok
		return hold{}, err
	}
	return hold{}, nil
}

// cut reports whether ctx's bound ended an attempt made under it: ctx is
// done, or its deadline has passed, which a connect may notice before the
// context's own timer does.
func cut(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// endCause returns why ctx, which cut an attempt, ended: its cause, or the
// cause its deadline gives it once its timer fires.
func endCause(ctx context.Context) error {
	if ctx.Err() == nil {
		<-ctx.Done()
	}
	return context.Cause(ctx)
}

// fail returns the error of an op that stopped for cause: the cause alone,
// or, if a dial or a write failed before, an error that wraps both. While
// the connection is down, an op stopped before its own first dial (its
// bound passed before it got there) wraps the error the Conn last met.
func (o *op) fail(cause error) error {
	if o.last == nil && cause != nil && o.c.downSince.Load() != 0 {
		o.last = o.c.st.lastError()
	}
	if o.last == nil || cause == nil {
		return cause
	}
	return &redialError{cause: cause, last: o.last, attempts: o.attempts}
}

// cutErr returns the error of an op whose write err was stopped by a
// deadline: the op's cause if its bound ended, else err, the socket's own
// deadline having passed first.
func (o *op) cutErr(err error) error {
	if o.ctx.Err() != nil {
		return o.fail(context.Cause(o.ctx))
	}
	return err
}

// write writes b on l, bounded by the socket's write deadline and by the
// op's context (proto.Bound); once done, the link's write deadline is put
// back if the bound touched it. The Async writer's writes are bounded by
// Close alone, which moves the deadline itself.
func (o *op) write(h hold, l *link, b []byte) (int, error) {
	if o.writer {
		return l.write(h, b)
	}
	release := proto.Bound(o.ctx, l.nc.SetWriteDeadline)
	n, err := l.write(h, b)
	if release() {
		o.c.restoreWriteDeadline(l)
	}
	return n, err
}

// pause waits for d, or until ctx ends, and then returns why.
func (o *op) pause(ctx context.Context, d time.Duration) error {
	return o.pauseOr(ctx, nil, d)
}

// pauseOr waits for d, or until ch is closed (nil), or until ctx ends
// (its cause).
func (o *op) pauseOr(ctx context.Context, ch <-chan struct{}, d time.Duration) error {
	if o.pauser == nil {
		o.pauser = time.NewTimer(d)
	} else {
		o.pauser.Reset(d)
	}
	select {
	case <-o.pauser.C:
		return nil
	case <-ch:
	case <-ctx.Done():
		o.pauser.Stop()
		return context.Cause(ctx)
	}
	o.pauser.Stop()
	return nil
}

// sleepCtx waits for d, or until ctx ends, and then returns why.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
