package reconn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/reconn/reconn/internal/proto"
	"github.com/reconn/reconn/internal/sock"
)

// ContextDialer makes the underlying connections of a Conn. *net.Dialer
// satisfies it, and so do most proxy dialers.
type ContextDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// CheckMode selects how a Conn asks the kernel, before each Write, whether
// the connection still stands.
type CheckMode int

const (
	// CheckDefault is CheckWatch on Linux, darwin, FreeBSD, NetBSD,
	// OpenBSD and DragonFly, CheckState on Windows, CheckPeek on the other
	// unix systems, and CheckNone on js, wasip1 and plan9. On Linux a
	// check before each Write (CheckState or CheckPeek) measured 1.2 to
	// 1.8 times the cost of a plain TCP write, since it adds a system call
	// to one; CheckWatch measured the same as no check (docs/measured.md),
	// and replay covers the few microseconds by which its event may trail
	// the kernel.
	CheckDefault CheckMode = 0

	// CheckPeek runs a 1-byte non-blocking MSG_PEEK recv: 0 means the peer
	// sent FIN, an error means it reset, and bytes waiting mean it is alive.
	// Where bytes are waiting, Linux, darwin and FreeBSD also ask for the
	// TCP state, since a FIN may be queued behind them. On Windows a peek
	// would block, so CheckPeek acts as CheckState. On darwin, OpenBSD,
	// illumos and AIX the peek goes through libc and allocates.
	CheckPeek CheckMode = 1

	// CheckState asks for the TCP state (Linux TCP_INFO, darwin
	// TCP_CONNECTION_INFO, Windows SIO_TCP_INFO); only ESTABLISHED counts
	// as alive. On Linux the same call returns the acknowledgement count,
	// so replay costs no extra system call. On darwin the state call
	// allocates. Where the platform has no state, and for unix sockets,
	// CheckState acts as CheckPeek. On Windows, where SIO_TCP_INFO fails
	// (before Windows 10 1703, and under Wine), CheckState, and so every
	// mode there, runs no check and counts no acknowledgements: the Conn
	// redials only after a write fails, and replay re-sends every message
	// it still holds.
	//
	// With CheckPeek and CheckState a connection that dies after the last
	// Write is found by the next Write, Flush or Close: unlike CheckWatch,
	// nothing recovers it in the background. Call Flush before going
	// quiet where messages must not wait for the next Write.
	CheckState CheckMode = 2

	// CheckWatch makes the kernel report a peer's FIN or reset as an
	// event, so a healthy Write makes no system call for the check: one
	// private event queue (epoll on Linux; kqueue on darwin, FreeBSD,
	// NetBSD, OpenBSD and DragonFly) and one goroutine serve every watched
	// Conn in the process, and the goroutine exits when the last one is
	// closed. Data from the peer raises no event. After an event the next
	// Write, or at once a background recovery if messages are held, runs
	// CheckState to tell a FIN from a reset. The event arrives a few
	// microseconds after the kernel knows, where a check before the Write
	// would see it at once; replay covers that gap. A socket the queue
	// refuses falls back to CheckState before each Write.
	//
	// The Linux queue is exercised by the test suite (amd64, 386, and
	// s390x for byte order). The kqueue one is built and vetted for darwin
	// and the BSDs but has not run: it relies on kqueue(2)'s EVFILT_READ
	// setting EV_EOF once the socket's read direction has shut down, as
	// the darwin and FreeBSD man pages state. Elsewhere CheckWatch acts as
	// CheckDefault.
	CheckWatch CheckMode = 3

	// CheckNone runs no check: a Conn redials only after a write fails.
	CheckNone CheckMode = -1
)

// String returns the mode's name.
func (m CheckMode) String() string {
	switch m {
	case CheckDefault:
		return "default"
	case CheckPeek:
		return "peek"
	case CheckState:
		return "state"
	case CheckWatch:
		return "watch"
	case CheckNone:
		return "none"
	}
	return "CheckMode(" + itoa(int64(m)) + ")"
}

// Default values of the Dialer fields.
const (
	defaultUserTimeout   = 10 * time.Second
	defaultKeepAlive     = 15 * time.Second
	defaultRedialTimeout = 30 * time.Second
	defaultMinBackoff    = 100 * time.Millisecond
	defaultMaxBackoff    = 5 * time.Second
	defaultReplayBuffer  = 4 << 20
	minReplayBuffer      = 4 << 10
	defaultFlushTimeout  = 15 * time.Second
	defaultFailback      = 30 * time.Second
	defaultHandoff       = 2 * time.Second
	defaultAttempt       = 30 * time.Second // one dial attempt, when UserTimeout is negative
	defaultSpoolLimit    = 1 << 30
)

// A Dialer contains options for connecting to an address and keeping the
// connection up.
//
// The zero value for each field is equivalent to dialing with its
// documented default, and each field's documentation says what a negative
// value means. A value that cannot work fails DialContext with an error
// naming the field. A Dialer is safe for concurrent use; changing its
// fields affects only later dials.
type Dialer struct {
	// Dialer makes every underlying connection, the first and each
	// redial. If nil, a net.Dialer is used whose keep-alive is set by the
	// KeepAlive field. A custom Dialer keeps its own timeouts, LocalAddr,
	// Control hook or proxy. If it is a *net.Dialer with a Timeout or a
	// Deadline, those bound each dial attempt, the TLS handshake included,
	// as crypto/tls applies them, instead of UserTimeout.
	//
	// Checks and acknowledgement counts need the connection it returns to
	// be a *net.TCPConn or *net.UnixConn. A connection of another type
	// still redials after a failed write, and replay then re-sends
	// everything still held.
	Dialer ContextDialer

	// TLSConfig, if not nil, wraps every underlying connection in a TLS
	// client using this configuration, and the handshake runs again on
	// each redial. If ServerName is empty, the host part of the address is
	// used. The check runs on the TCP socket underneath and never reads
	// TLS records; acknowledgements are counted in TCP bytes, so a message
	// counts as delivered once the record carrying its last byte is.
	TLSConfig *tls.Config

	// Check selects how the Conn learns that a connection died. The zero
	// value is CheckDefault. Any value other than the CheckMode constants
	// fails DialContext.
	Check CheckMode

	// UserTimeout is how long written data may stay unacknowledged before
	// the connection counts as dead: TCP_USER_TIMEOUT on Linux, rounded up
	// to whole milliseconds; TCP_RXT_CONNDROPTIME on darwin and TCP_MAXRT on
	// Windows, rounded up to whole seconds; in each case capped at the
	// largest value the option takes (2^31-1 units). FreeBSD, the other
	// BSDs, illumos and AIX have no per-socket equivalent; where the system
	// refuses the option (Wine has no TCP_MAXRT), the connection is used
	// without it, and only keep-alive and write errors find a silent drop.
	// On Linux a peer that stays alive but stops reading also counts as dead
	// once its receive window has stayed closed this long: a server that
	// pauses its reading (flow control) for longer is left and redialed.
	// What it had acknowledged stays readable to it after the reset; what it
	// had not is re-sent. It also bounds each dial attempt, the connect and
	// the TLS handshake together (rounded up to a millisecond), unless
	// Dialer is a *net.Dialer with its own Timeout or Deadline. If zero, the
	// default is 10 seconds. If negative, the socket is left as Dialer made
	// it, and each dial attempt is bounded by 30 seconds.
	UserTimeout time.Duration

	// KeepAlive is the idle time before TCP keep-alive probes start; three
	// probes are then sent a third of that apart, at least a second
	// apart. It finds a dead peer on an idle connection; on Linux,
	// UserTimeout then also bounds the probes. It is rounded up to whole
	// seconds and capped at 32767 seconds (Linux's limit). If zero, the
	// default is 15 seconds, unless the Dialer field is set: a custom
	// dialer's keep-alive is then left as it made it. If negative, the
	// socket is always left as Dialer made it.
	KeepAlive time.Duration

	// RedialTimeout bounds how long one Write, Flush or Close may wait for
	// a dead connection to come back, redialing or waiting for another
	// goroutine (or the background watcher) that redials, before it gives
	// up with an error that wraps ErrRedialLimit and the last dial error.
	// The time counts from the moment the call first finds the connection
	// down. A write deadline, the context given to DialContext, and Close
	// end the wait sooner. If zero, the default is 30 seconds. If
	// negative, there is no limit.
	RedialTimeout time.Duration

	// MinBackoff and MaxBackoff bound the wait between redial attempts.
	// The first attempt after a failure is immediate; the wait before
	// attempt n+1 is drawn at random between half and all of
	// MinBackoff·2^(n-1), capped at MaxBackoff. A connection that ends
	// within a second of being made, with no message confirmed on it,
	// counts as a failed attempt, and so do the ones after it that end
	// the same way: a server that accepts and drops every connection (a
	// proxy without a backend, a protocol session refused at once) is
	// redialed with backoff, not in a loop. If MinBackoff is zero, the
	// default is 100 milliseconds; if MaxBackoff is zero, the default is 5
	// seconds, or MinBackoff if that is larger. A negative value, or a
	// MaxBackoff below MinBackoff, fails DialContext.
	MinBackoff, MaxBackoff time.Duration

	// ReplayBuffer bounds the memory, in bytes, that holds messages not yet
	// acknowledged by the peer's kernel, counting 16 bytes of bookkeeping
	// per message. When it is full, Write waits for acknowledgements (up to
	// its deadline); a single message larger than the bound less 16 bytes
	// fails with ErrTooLarge. If zero, the default is 4 MiB; a positive
	// value below 4 KiB is raised to 4 KiB. If negative, replay is off: a
	// redial re-sends only the message whose write failed, a FIN from the
	// peer ends the connection, and Close and Flush do not wait for
	// acknowledgements.
	ReplayBuffer int

	// FlushTimeout bounds how long Close waits for everything written to
	// be acknowledged, redialing and replaying if the peer dies meanwhile.
	// A write deadline, if set, bounds it instead. If zero, the default is
	// 15 seconds. If negative, Close does not wait.
	FlushTimeout time.Duration

	// Fallbacks are addresses on the same network, tried in order when
	// the address given to Dial does not answer (refused, unreachable,
	// timed out, or any other dial error). What the old server's kernel
	// never acknowledged is replayed to whichever server takes the
	// stream. Every redial starts from the address given to Dial, so a
	// returning primary is preferred; while the stream runs on a
	// fallback, the primary is also probed in the background (see
	// FailbackInterval). An empty or malformed address, or one of another
	// address family than a "tcp4" or "tcp6" network, fails DialContext
	// with an error naming it. With TLS and no TLSConfig.ServerName, each
	// address's host is its server name.
	Fallbacks []string

	// FailbackInterval is how long the stream stays on a fallback before
	// the Conn probes the first address again, by dialing it in the
	// background; each probe that fails doubles the wait, up to ten times
	// FailbackInterval. Once the first address answers, the stream moves
	// back to it with the graceful handoff described at HandoffTimeout.
	// If zero, the default is 30 seconds. If negative, there is no
	// failback: the stream stays on a fallback until it fails.
	FailbackInterval time.Duration

	// ConnMaxLifetime is the longest one underlying connection is used,
	// as in database/sql. When it has passed, the Conn dials anew in the
	// background (resolving the name again, which follows DNS changes and
	// spreads clients over a pool behind a balancer; first address
	// first) and moves the stream with the graceful handoff described at
	// HandoffTimeout: Writes go on meanwhile, and nothing is lost or
	// duplicated. Each connection's lifetime is drawn at random between
	// 90% and 100% of ConnMaxLifetime, so that a fleet started together
	// does not reconnect together. If zero or negative, connections are
	// not closed for their age.
	ConnMaxLifetime time.Duration

	// HandoffTimeout bounds the graceful handoff of a planned move
	// (failback, ConnMaxLifetime) and of a move away from a peer that sent
	// a FIN: the Conn stops writing on the old connection, half-closes
	// it, and waits up to HandoffTimeout (counted from the FIN, for a
	// peer that is leaving) for the old peer's kernel to acknowledge what
	// it was sent (for a unix socket, for the peer to read it); then it
	// goes on on the new connection, after re-sending only what was not
	// acknowledged (which, if the wait ended first, may arrive twice).
	// Writes wait meanwhile, as they wait for a slow peer, within their
	// own deadlines; with Async they buffer. If zero, the default is 2
	// seconds. If negative, there is no wait: the move re-sends
	// everything not yet known acknowledged.
	HandoffTimeout time.Duration

	// Async, if true, makes Write copy the message into the replay buffer
	// and return at once; one goroutine per Conn sends what is buffered,
	// many messages per system call (up to 64 KiB), redials and replays.
	// The guarantee is the one the package documents: a message whose
	// Write returned nil is delivered at least once, in order, unless
	// Close or Flush reports it unconfirmed. DialContext returns without
	// waiting for the server: only a malformed address or an unknown
	// network fails there; the writer makes the first connection, and
	// keeps dialing with backoff while Writes buffer. Write then fails
	// only when the Conn is closed, the message is too large, the write
	// deadline has passed or passes while it waits for room in a full
	// replay buffer (or at once, with FailWhenFull), or the connection
	// has been down for RedialTimeout: from then until a connection is
	// up again, Write, Flush and Close report that error, and what is
	// buffered stays buffered. Stats tells what is waiting (Pending,
	// Unsent) and since when the connection is down (DownSince). Async
	// needs replay: a negative ReplayBuffer fails DialContext.
	Async bool

	// FailWhenFull, if true, makes a Write that finds the replay buffer
	// full fail at once with an error wrapping ErrBufferFull, instead of
	// waiting for acknowledgements to make room; the message is not
	// taken, and Stats.Rejected counts it. With Async, Write then never
	// blocks. Where there is no acknowledgement count, the oldest messages
	// are assumed delivered instead, as without FailWhenFull.
	FailWhenFull bool

	// OnFull, if not nil, is called by a Write that finds the replay
	// buffer full, before it waits or fails; it must not block.
	OnFull func()

	// SpoolDir, if not empty, keeps every message written and not yet
	// confirmed in files in this directory (made if missing), so that
	// what Write accepted survives the process's death and outages
	// longer than ReplayBuffer. With SpoolDir the Conn works as with
	// Async: DialContext returns without waiting for the server, Write
	// copies the message into the spool, then into the replay buffer if
	// it has room, and returns; the writer sends, in order, what waits
	// on disk as acknowledgements make room. Write does not fail while
	// the server is down (RedialTimeout does not apply to it) until the
	// spool reaches SpoolLimit; there FailWhenFull applies, as to a full
	// replay buffer. A message leaves the spool once it is confirmed (by
	// the peer's kernel, or, with package relp, by the server's answer),
	// which the Conn records now and then, and at Close; a later Conn on
	// the same directory first sends, in the original order, everything
	// the spool still holds unconfirmed. Messages sent before the
	// process died and not yet confirmed may arrive twice; none is lost,
	// and none that was never sent arrives twice.
	//
	// Records are checksummed: one that is damaged is skipped, never
	// sent, counted in Stats.SpoolDamaged and passed to OnSpoolDamage;
	// one cut short by the process's death is dropped (its Write had not
	// returned). A directory is used by one Conn at a time: a second
	// Conn on it, in this process or another, fails DialContext, as do a
	// SpoolDir that is not a directory or cannot be written, and files
	// of a newer format, with an error that names them. On a full disk,
	// the Write that needs a new segment file fails with the error
	// (ENOSPC), and nothing already spooled is lost.
	//
	// SpoolDir needs shared file mappings: Linux, darwin, the BSDs,
	// illumos, AIX and Windows have them; on js, wasip1 and plan9 it
	// fails DialContext. See docs/spool.md for the format.
	SpoolDir string

	// SpoolLimit bounds the bytes of the spool's files; it is made of
	// segment files of 8 MiB (larger if ReplayBuffer is), at least two.
	// If zero, the default is 1 GiB. A negative value fails DialContext.
	SpoolLimit int64

	// SpoolSync chooses when the spool reaches the disk. A message is in
	// the system's page cache once Write returns, which survives the
	// process's death but not the machine's. If zero (the default), the
	// Conn never asks for more: the system writes its pages out in its
	// own time (within about 30 seconds on Linux). If positive, the spool
	// is written out that often, so a machine's crash loses at most that
	// much. If negative, each Write writes its message out before it
	// returns, which costs a disk write per message.
	SpoolSync time.Duration

	// OnSpoolDamage, if not nil, is called with a *SpoolDamageError for
	// every run of damaged records the spool skips, from DialContext or
	// from the writer; it must not block.
	OnSpoolDamage func(error)

	// OnRedial, if not nil, is called after each successful redial, from
	// the goroutine whose Write, Flush or Close found the connection dead,
	// before that call returns; in CheckWatch mode, also from a background
	// goroutine that redials as soon as the kernel reports a reset while
	// messages are waiting for acknowledgement; and with Async, from the
	// writer. It is called without any lock held, so it may use the Conn,
	// but a slow OnRedial delays the goroutine that runs it.
	OnRedial func(RedialEvent)
}

// RedialReason says why a Conn replaced its underlying connection.
type RedialReason int

const (
	// RedialFailure: the connection died, or its peer sent a FIN and
	// was leaving (Cause is then ErrPeerClosed).
	RedialFailure RedialReason = iota
	// RedialFailback: the stream ran on a fallback, and the first address
	// answered again.
	RedialFailback
	// RedialRotation: the connection reached Dialer.ConnMaxLifetime.
	RedialRotation
)

// String returns the reason's name.
func (r RedialReason) String() string {
	switch r {
	case RedialFailure:
		return "failure"
	case RedialFailback:
		return "failback"
	case RedialRotation:
		return "rotation"
	}
	return "RedialReason(" + itoa(int64(r)) + ")"
}

// RedialEvent describes one replacement of an underlying connection.
type RedialEvent struct {
	// Reason says why the connection was replaced.
	Reason RedialReason
	// From and To are the addresses, as given to the Dialer, that the
	// stream moved from and to.
	From, To string
	// Cause is what ended the old connection, for a failure: a write
	// error, or ErrPeerClosed or ErrPeerReset when a check found it.
	Cause error
	// Attempts is the number of dials it took; Downtime is the time from
	// finding the old connection dead to the new one being ready.
	Attempts int
	Downtime time.Duration
	// Replayed is the number of messages re-sent on the new connection.
	Replayed int
}

// Dial connects to the address on the named network using a zero Dialer.
// See Dialer.DialContext.
func Dial(network, address string) (*Conn, error) {
	var d Dialer
	return d.dial(context.Background(), network, address)
}

// DialContext connects to the address on the named network using a zero
// Dialer and the provided context. See Dialer.DialContext.
func DialContext(ctx context.Context, network, address string) (*Conn, error) {
	var d Dialer
	return d.dial(ctx, network, address)
}

// Dial connects to the address on the named network. See DialContext.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to the address on the named network and returns a
// Conn that redials the same address whenever the connection dies. The
// returned net.Conn, if any, is always a *Conn.
//
// Known networks are "tcp", "tcp4", "tcp6" and "unix" (stream sockets);
// any other fails with an error naming it. The first connection is made
// before DialContext returns, bounded by ctx and by the per-attempt bound
// (see UserTimeout), and its error is returned as it is, so a wrong
// address or a refused port fails at once.
//
// The context also bounds every later redial: once it is done, a Write,
// Flush or Close that finds the connection dead fails instead of
// redialing, and Close no longer waits for acknowledgements. Pass a
// context that lives as long as the connection.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.dial(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (d *Dialer) dial(ctx context.Context, network, address string) (*Conn, error) {
	return d.dialWith(ctx, network, address, nil)
}

func init() {
	proto.Dial = func(ctx context.Context, d any, p proto.Protocol, network, address string) (net.Conn, error) {
		rd, _ := d.(*Dialer)
		if rd == nil {
			rd = new(Dialer)
		}
		c, err := rd.dialWith(ctx, network, address, p)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// dialWith is DialContext, speaking p on each connection if p is not nil.
// A Conn with a protocol always sends from its writer, as with Async: the
// protocol's answers come while it writes.
func (d *Dialer) dialWith(ctx context.Context, network, address string, p proto.Protocol) (*Conn, error) {
	if ctx == nil {
		panic("reconn: nil context")
	}
	dd := *d
	if p != nil {
		dd.Async = true
	}
	cfg, err := dd.resolve(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: dialAddr{network, address}, Err: err}
	}
	if p != nil {
		// The session's reader finds the end of a connection: no check of
		// the socket, no watch.
		cfg.proto, cfg.op, cfg.watch = p, 0, false
		if k, ok := p.(proto.KernelAcked); ok {
			cfg.kernelAcked = k.KernelAcked()
		}
	}
	if cfg.async {
		c := newConn(cfg, ctx)
		c.cur.Store(placeholderLink(cfg))
		if cfg.spoolDir != "" {
			if err := c.openSpool(); err != nil {
				return nil, &net.OpError{Op: "dial", Net: network, Addr: dialAddr{network, address}, Err: err}
			}
		}
		c.downSince.Store(time.Now().UnixNano())
		c.startWriter()
		return c, nil
	}
	c := newConn(cfg, ctx)
	l, err := c.dialFirst(ctx)
	if err != nil {
		return nil, err
	}
	// Nobody else has c yet: the right to write is free.
	h, _ := c.gate.lockCtx(context.Background())
	c.install(h, l, nil)
	c.gate.unlock(h)
	return c, nil
}

// config is a Dialer with its defaults resolved, fixed for one Conn.
type config struct {
	network         string
	addrs           []string // the address given to Dial, then the fallbacks
	dialer          ContextDialer
	tls             []*tls.Config // per address; nil without TLS
	op              sock.Op       // what the check asks the socket; 0 for none
	watch           bool          // CheckWatch: check only after an event
	userTimeout     time.Duration
	keepAlive       time.Duration
	attempt         time.Duration // bounds one dial attempt; 0 for none
	attemptDeadline time.Time     // a custom net.Dialer's Deadline
	redialTimeout   time.Duration
	minBackoff      time.Duration
	maxBackoff      time.Duration
	replay          int64
	flushTimeout    time.Duration
	failback        time.Duration  // 0 without failback
	lifetime        time.Duration  // ConnMaxLifetime; 0 without
	handoff         time.Duration  // negative for no wait
	proto           proto.Protocol // nil for the stream itself
	kernelAcked     bool           // proto's sessions are acknowledged by the kernel's count
	async           bool
	failWhenFull    bool
	onFull          func()
	onRedial        func(RedialEvent)
	spoolDir        string
	spoolLimit      int64
	spoolSync       time.Duration
	onSpoolDamage   func(error)
}

// configError reports a Dialer field that cannot work.
type configError struct {
	field string
	msg   string
}

func (e *configError) Error() string { return "reconn: Dialer." + e.field + " " + e.msg }

func (d *Dialer) resolve(network, address string) (*config, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, net.UnknownNetworkError(network)
	}
	switch d.Check {
	case CheckDefault, CheckPeek, CheckState, CheckWatch, CheckNone:
	default:
		return nil, &configError{"Check", "is " + d.Check.String() + ", not one of the CheckMode constants"}
	}
	if d.MinBackoff < 0 {
		return nil, &configError{"MinBackoff", "is negative (" + d.MinBackoff.String() + ")"}
	}
	if d.MaxBackoff < 0 {
		return nil, &configError{"MaxBackoff", "is negative (" + d.MaxBackoff.String() + ")"}
	}
	if d.MaxBackoff > 0 && d.MinBackoff > d.MaxBackoff {
		return nil, &configError{"MaxBackoff", "(" + d.MaxBackoff.String() + ") is less than MinBackoff (" + d.MinBackoff.String() + ")"}
	}
	cfg := &config{
		network:       network,
		addrs:         append([]string{address}, d.Fallbacks...),
		dialer:        d.Dialer,
		userTimeout:   orDefault(d.UserTimeout, defaultUserTimeout),
		keepAlive:     orDefault(d.KeepAlive, defaultKeepAlive),
		redialTimeout: orDefault(d.RedialTimeout, defaultRedialTimeout),
		minBackoff:    orDefault(d.MinBackoff, defaultMinBackoff),
		maxBackoff:    orDefault(d.MaxBackoff, max(defaultMaxBackoff, d.MinBackoff)),
		replay:        int64(d.ReplayBuffer),
		flushTimeout:  orDefault(d.FlushTimeout, defaultFlushTimeout),
		failback:      orDefault(d.FailbackInterval, defaultFailback),
		lifetime:      max(d.ConnMaxLifetime, 0),
		handoff:       orDefault(d.HandoffTimeout, defaultHandoff),
		async:         d.Async,
		failWhenFull:  d.FailWhenFull,
		onFull:        d.OnFull,
		onRedial:      d.OnRedial,
		spoolDir:      d.SpoolDir,
		spoolLimit:    d.SpoolLimit,
		spoolSync:     d.SpoolSync,
		onSpoolDamage: d.OnSpoolDamage,
	}
	if d.Async && d.ReplayBuffer < 0 {
		return nil, &configError{"ReplayBuffer", "is negative (replay off), which Async cannot work without"}
	}
	if d.SpoolDir != "" {
		if d.ReplayBuffer < 0 {
			return nil, &configError{"ReplayBuffer", "is negative (replay off), which SpoolDir cannot work without"}
		}
		if d.SpoolLimit < 0 {
			return nil, &configError{"SpoolLimit", "is negative (" + itoa(d.SpoolLimit) + ")"}
		}
		cfg.async = true
		if cfg.spoolLimit == 0 {
			cfg.spoolLimit = defaultSpoolLimit
		}
	}
	if cfg.async || len(d.Fallbacks) > 0 {
		if err := checkAddress(network, address); err != nil {
			return nil, err
		}
	}
	for i, a := range d.Fallbacks {
		if err := checkAddress(network, a); err != nil {
			return nil, &configError{"Fallbacks[" + itoa(int64(i)) + "]", strconvQuote(a) + ": " + err.Error()}
		}
	}
	if len(d.Fallbacks) == 0 || cfg.failback < 0 {
		cfg.failback = 0
	}
	switch {
	case cfg.replay == 0:
		cfg.replay = defaultReplayBuffer
	case cfg.replay > 0 && cfg.replay < minReplayBuffer:
		cfg.replay = minReplayBuffer
	}
	if cfg.userTimeout > 0 && cfg.userTimeout < time.Millisecond {
		cfg.userTimeout = time.Millisecond // the finest unit any platform's option takes
	}
	cfg.attempt = cfg.userTimeout
	if cfg.attempt < 0 {
		cfg.attempt = defaultAttempt
	}
	switch nd := cfg.dialer.(type) {
	case nil:
		cfg.dialer = &net.Dialer{KeepAlive: -1} // keep-alive is set after the dial
	case *net.Dialer:
		if nd.Timeout > 0 || !nd.Deadline.IsZero() {
			cfg.attempt, cfg.attemptDeadline = nd.Timeout, nd.Deadline
		}
	}
	if d.Dialer != nil {
		cfg.keepAlive = -1 // a custom dialer keeps its own
		if d.KeepAlive > 0 {
			cfg.keepAlive = d.KeepAlive
		}
	}
	if d.TLSConfig != nil {
		for _, a := range cfg.addrs {
			tc := d.TLSConfig.Clone()
			if tc.ServerName == "" {
				if host, _, err := net.SplitHostPort(a); err == nil {
					tc.ServerName = host
				}
			}
			cfg.tls = append(cfg.tls, tc)
		}
	}
	check := d.Check
	if check == CheckDefault {
		check = platformCheck()
		if sock.WatchSupported {
			check = CheckWatch
		}
	}
	if check == CheckWatch {
		check = platformCheck()
		if sock.WatchSupported {
			// Sockets that cannot be watched fall back to the state
			// check, which also classifies what the watch reported.
			cfg.watch, check = true, CheckState
		}
	}
	switch check {
	case CheckPeek:
		cfg.op = sock.Peek
	case CheckState:
		cfg.op = sock.State
	}
	return cfg, nil
}

// checkAddress reports an address that no dial on network could use, so
// that an Async DialContext, which does not dial, fails at once on it as
// a synchronous one would, and a bad fallback fails at once too.
func checkAddress(network, address string) error {
	if address == "" {
		return errors.New("missing address")
	}
	if network == "unix" {
		return nil
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if _, err := net.LookupPort(network, port); err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip != nil {
		if v4 := ip.To4() != nil; (network == "tcp4" && !v4) || (network == "tcp6" && v4) {
			return errors.New("address " + host + " is not of network " + network)
		}
	}
	return nil
}

func strconvQuote(s string) string { return strconv.Quote(s) }

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}
