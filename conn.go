package reconn

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconn/reconn/internal/spool"
)

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
	// Set at Dial, never changed.
	cfg  *config
	base context.Context         // from DialContext: bounds every redial
	life context.Context         // base, ended by Close with net.ErrClosed
	end  context.CancelCauseFunc // ends life
	w    *writer                 // the Async writer (async.go); nil in the synchronous mode
	// spool extends the ring onto disk (spool.go); nil without
	// SpoolDir. Its methods take its own lock, after rmu.
	spool *spool.Spool

	// The right to write (gate.go) guards cur's use and replacement, and
	// the ring. With Async, Write appends to the ring without the right,
	// under rmu: then everyone takes rmu around each use of the ring
	// (lockRing), never across a blocking step.
	gate  gate
	cur   atomic.Pointer[link] // the current link: replaced by the holder, loaded by anyone
	ring  ring
	flaps int // the holder's: links in a row that ended young, confirming nothing (recover.go)
	rmu   sync.Mutex

	// Anyone, atomically.
	closed    atomic.Bool           // Close has begun
	readers   atomic.Int32          // Reads in progress
	wdlNano   atomic.Int64          // the write deadline in Unix nanoseconds, 0 if none; stored under mu
	downSince atomic.Int64          // Unix nanoseconds since the current link is dead, 0 while up
	refusal   atomic.Pointer[error] // a message the server refused, for the next call to report
	healing   atomic.Int32          // healIdle, healRunning or healAgain (recover.go)
	bg        sync.WaitGroup        // background recoveries and moves; Add under mu, before Close

	mu        sync.Mutex // guards the fields below
	rdl, wdl  time.Time
	flushDL   time.Time        // Close's flush limit
	lingering *link            // a replaced link kept open for a waiting Read
	ops       map[*op]struct{} // ops that the write deadline bounds

	st counters // atomic
}

func newConn(cfg *config, ctx context.Context) *Conn {
	c := &Conn{cfg: cfg, base: ctx}
	c.life, c.end = context.WithCancelCause(ctx)
	c.gate.init(cfg.async)
	c.ring.init(cfg.replay)
	return c
}

// async reports whether Write only buffers and the writer sends.
func (c *Conn) async() bool { return c.w != nil }

// lockRing and unlockRing guard the ring against Write's appends with
// Async. In the synchronous mode only the holder of the right to write
// uses the ring, and the lock is free.
func (c *Conn) lockRing()   { c.rmu.Lock() }
func (c *Conn) unlockRing() { c.rmu.Unlock() }

// held reports the number of held messages.
func (c *Conn) held() int {
	c.lockRing()
	defer c.unlockRing()
	return c.ring.mn
}

// onLink returns the number of held messages that the current link
// carried.
func (c *Conn) onLink() int {
	c.lockRing()
	defer c.unlockRing()
	return c.ring.ms
}

// LocalAddr returns the local address of the current connection.
func (c *Conn) LocalAddr() net.Addr { return c.cur.Load().nc.LocalAddr() }

// RemoteAddr returns the remote address of the current connection.
func (c *Conn) RemoteAddr() net.Addr { return c.cur.Load().nc.RemoteAddr() }
