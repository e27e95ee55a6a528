package reconn

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"
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
	// CheckDefault is CheckWatch on Linux, CheckState on Windows,
	// CheckPeek on the other unix systems, and CheckNone on js, wasip1 and
	// plan9. On Linux a check before each Write (CheckState or CheckPeek)
	// measured 1.2 to 1.8 times the cost of a plain TCP write, since it
	// adds a system call to one; CheckWatch measured the same as no check
	// (see the README), and replay covers the few microseconds by which
	// its event may trail the kernel.
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
	// CheckState acts as CheckPeek.
	CheckState CheckMode = 2

	// CheckWatch makes the kernel report a peer's FIN or reset as an
	// event, so a healthy Write makes no system call for the check: on
	// Linux one private epoll instance and one goroutine serve every
	// watched Conn in the process, and the goroutine exits when the last
	// one is closed. The event arrives a few microseconds after the kernel
	// knows, where a check before the Write would see it at once; replay
	// covers that gap. Elsewhere CheckWatch acts as CheckDefault.
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
	defaultHandoff       = 2 * time.Second
	defaultFlushTimeout  = 15 * time.Second
)

// A Dialer contains options for connecting to an address and keeping the
// connection up.
//
// The zero value for each field is equivalent to dialing with its
// documented default. A Dialer is safe for concurrent use; changing its
// fields affects only later dials.
type Dialer struct {
	// Dialer makes every underlying connection, the first and each
	// redial. If nil, a net.Dialer is used whose keep-alive is set by the
	// KeepAlive field. A custom Dialer keeps its own timeouts, LocalAddr,
	// Control hook or proxy.
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

	// Check selects the liveness check run before each Write. The zero
	// value is CheckDefault.
	Check CheckMode

	// UserTimeout is how long written data may stay unacknowledged before
	// the connection counts as dead: TCP_USER_TIMEOUT on Linux,
	// TCP_RXT_CONNDROPTIME on darwin, TCP_MAXRT (whole seconds) on Windows.
	// FreeBSD, the other BSDs, illumos and AIX have no per-socket
	// equivalent. It also bounds each redial attempt. If zero, the default
	// is 10 seconds. If negative, the socket is left as Dialer made it and
	// redial attempts are bounded only by Dialer and RedialTimeout.
	UserTimeout time.Duration

	// KeepAlive is the idle time before TCP keep-alive probes start; three
	// probes are then sent a third of that apart. It finds a dead peer on
	// an idle connection; on Linux, UserTimeout then also bounds the probes.
	// If zero, the default is 15 seconds, unless the Dialer field is set:
	// a custom dialer's keep-alive is then left as it made it. If
	// negative, the socket is always left as Dialer made it.
	KeepAlive time.Duration

	// RedialTimeout bounds how long one Write, Flush or Close may spend
	// redialing before it gives up with an error that wraps ErrRedialLimit
	// and the last dial error. A write deadline, the context given to
	// DialContext, and Close end the wait sooner. If zero, the default is
	// 30 seconds. If negative, there is no limit.
	RedialTimeout time.Duration

	// MinBackoff and MaxBackoff bound the wait between redial attempts.
	// The first attempt after a failure is immediate; the wait before
	// attempt n+1 is drawn at random between half and all of
	// MinBackoff·2^(n-1), capped at MaxBackoff. If zero, the defaults are
	// 100 milliseconds and 5 seconds.
	MinBackoff, MaxBackoff time.Duration

	// ReplayBuffer bounds the memory, in bytes, that holds messages not yet
	// acknowledged by the peer's kernel, counting 16 bytes of bookkeeping
	// per message. When it is full, Write waits for acknowledgements (up to
	// its deadline); a single message larger than the bound fails with
	// ErrTooLarge. If zero, the default is 4 MiB. If negative, replay is
	// off: a redial re-sends only the message whose write failed, and
	// Close and Flush do not wait for acknowledgements.
	ReplayBuffer int

	// HandoffTimeout bounds the wait, after the peer closed its side
	// gracefully (FIN), for the peer's kernel to acknowledge what was
	// already sent, before the rest is re-sent on a new connection. A peer
	// that keeps reading after its FIN thus loses nothing and receives
	// nothing twice. If zero, the default is 2 seconds. If negative, there
	// is no wait and a FIN is handled like a reset.
	HandoffTimeout time.Duration

	// FlushTimeout bounds how long Close waits for everything written to
	// be acknowledged, redialing and replaying if the peer dies meanwhile.
	// A write deadline, if set, bounds it instead. If zero, the default is
	// 15 seconds. If negative, Close does not wait.
	FlushTimeout time.Duration

	// OnRedial, if not nil, is called after each successful redial, from
	// the goroutine whose Write, Flush or Close found the connection dead,
	// before that call goes on; in CheckWatch mode, also from a background
	// goroutine that redials as soon as the kernel reports the close while
	// messages are waiting for acknowledgement. It must not call the Conn's
	// Write, Flush or Close.
	OnRedial func(RedialEvent)
}

// RedialEvent describes one replacement of an underlying connection.
type RedialEvent struct {
	// Cause is what ended the old connection: a write error, or
	// ErrPeerClosed or ErrPeerReset when the check found it.
	Cause error
	// Attempts is the number of dials it took; Downtime is the time from
	// finding the old connection dead to the new one being ready.
	Attempts int
	Downtime time.Duration
	// Replayed is the number of messages re-sent on the new connection.
	Replayed int
	// Graceful reports that the old peer closed with FIN and was given
	// HandoffTimeout to acknowledge what it had.
	Graceful bool
}

// Dial connects to the address on the named network using a zero Dialer.
// See Dialer.DialContext.
func Dial(network, address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to the address on the named network using a zero
// Dialer and the provided context. See Dialer.DialContext.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(ctx, network, address)
}

// Dial connects to the address on the named network. See DialContext.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to the address on the named network and returns a
// *Conn that redials the same address whenever the connection dies.
//
// Known networks are "tcp", "tcp4", "tcp6" and "unix" (stream sockets);
// any other fails with an error naming it. The first connection is made
// before DialContext returns, and its error is returned as it is, so a
// wrong address or a refused port fails at once.
//
// The context bounds the first dial and every later redial: once it is
// done, a Write that finds the connection dead fails instead of redialing.
// Pass a context that lives as long as the connection, and put a timeout
// for each dial in Dialer.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if ctx == nil {
		panic("reconn: nil context")
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	cfg := d.resolve(network, address)
	l, err := cfg.dialLink(ctx)
	if err != nil {
		return nil, err
	}
	c := newConn(cfg, ctx)
	c.install(l, nil)
	c.st.dials.Add(1)
	return c, nil
}

// config is a Dialer with its defaults resolved, fixed for one Conn.
type config struct {
	network, address string
	dialer           ContextDialer
	tls              *tls.Config
	op               int  // probe operations of the check; 0 for none
	watch            bool // CheckWatch: check only after an event
	userTimeout      time.Duration
	keepAlive        time.Duration
	redialTimeout    time.Duration
	minBackoff       time.Duration
	maxBackoff       time.Duration
	replay           int64
	handoff          time.Duration
	flushTimeout     time.Duration
	onRedial         func(RedialEvent)
}

func (d *Dialer) resolve(network, address string) *config {
	cfg := &config{
		network:       network,
		address:       address,
		dialer:        d.Dialer,
		userTimeout:   orDefault(d.UserTimeout, defaultUserTimeout),
		keepAlive:     orDefault(d.KeepAlive, defaultKeepAlive),
		redialTimeout: orDefault(d.RedialTimeout, defaultRedialTimeout),
		minBackoff:    orDefault(d.MinBackoff, defaultMinBackoff),
		maxBackoff:    orDefault(d.MaxBackoff, defaultMaxBackoff),
		replay:        int64(d.ReplayBuffer),
		handoff:       orDefault(d.HandoffTimeout, defaultHandoff),
		flushTimeout:  orDefault(d.FlushTimeout, defaultFlushTimeout),
		onRedial:      d.OnRedial,
	}
	if cfg.replay == 0 {
		cfg.replay = defaultReplayBuffer
	}
	if cfg.maxBackoff < cfg.minBackoff {
		cfg.maxBackoff = cfg.minBackoff
	}
	if cfg.dialer == nil {
		cfg.dialer = &net.Dialer{KeepAlive: -1} // keep-alive is set after the dial
	} else {
		cfg.keepAlive = -1 // a custom dialer keeps its own
		if d.KeepAlive > 0 {
			cfg.keepAlive = d.KeepAlive
		}
	}
	if d.TLSConfig != nil {
		cfg.tls = d.TLSConfig.Clone()
		if cfg.tls.ServerName == "" {
			if host, _, err := net.SplitHostPort(address); err == nil {
				cfg.tls.ServerName = host
			}
		}
	}
	check := d.Check
	if check == CheckDefault {
		check = platformCheck
		if watchSupported {
			check = CheckWatch
		}
	}
	if check == CheckWatch {
		check = platformCheck
		if watchSupported {
			// Sockets that cannot be watched fall back to the state
			// check, which also classifies what the watch reported.
			cfg.watch, check = true, CheckState
		}
	}
	switch check {
	case CheckPeek:
		cfg.op = opPeek
	case CheckState:
		cfg.op = opState
	}
	return cfg
}

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// link is one underlying connection.
type link struct {
	nc   net.Conn   // what reads and writes go through: the socket, or TLS over it
	cc   *countConn // counts TCP bytes under TLS; nil without TLS
	p    probe
	sent int64 // bytes written without TLS; guarded by Conn.wmu

	// Guarded by Conn.wmu.
	state   health // healthy until the link is found dead
	cause   error  // what found it dead
	ackable bool   // the platform counts acknowledgements for this socket

	retired atomic.Bool // replaced by a newer link
	closed  atomic.Bool

	owner    atomic.Pointer[Conn] // the Conn the link serves, for the watcher
	watched  bool                 // registered with the watcher at dial; never changes
	watchTok uint64               // registration with the watcher, guarded by it; 0 if none
	flagged  atomic.Bool          // the watcher saw a FIN, hang-up or error
}

// countConn counts the bytes written to the socket under TLS, handshake
// and record overhead included, so TLS records map to TCP offsets.
type countConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// dialLink makes one underlying connection and sets up its socket.
func (cfg *config) dialLink(ctx context.Context) (*link, error) {
	nc, err := cfg.dialer.DialContext(ctx, cfg.network, cfg.address)
	if err != nil {
		return nil, err
	}
	l := &link{nc: nc}
	l.p.init(nc)
	if tc, ok := nc.(*net.TCPConn); ok {
		if cfg.keepAlive > 0 {
			iv := cfg.keepAlive / 3
			if iv < time.Second {
				iv = time.Second
			}
			tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: cfg.keepAlive, Interval: iv, Count: 3})
		}
		if cfg.userTimeout > 0 {
			// Best effort: where the option is missing, keep-alive and
			// write errors remain.
			l.p.control(func(fd uintptr) error { return setUserTimeout(fd, cfg.userTimeout) })
		}
	}
	// Bytes the dialer wrote itself (a proxy handshake, say) precede
	// reconn's own in the kernel's counts.
	l.p.run(opInit)
	if cfg.replay > 0 && l.p.run(opAcks) && l.p.ackOK {
		l.ackable = true
	}
	if cfg.watch && l.p.kind != sockOther {
		l.watched = l.watch()
	}
	if cfg.tls != nil {
		l.cc = &countConn{Conn: nc}
		tc := tls.Client(l.cc, cfg.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			l.unwatch()
			nc.Close()
			return nil, err
		}
		l.nc = tc
	}
	return l, nil
}

// sentNow is the number of bytes written on the socket by reconn.
func (l *link) sentNow() int64 {
	if l.cc != nil {
		return l.cc.n.Load()
	}
	return l.sent
}

// run probes the link's socket with the given operations.
func (l *link) run(op int) bool {
	l.p.sent = l.sentNow()
	return l.p.run(op)
}

func (l *link) write(b []byte) (int, error) {
	n, err := l.nc.Write(b)
	if l.cc == nil {
		l.sent += int64(n)
	}
	return n, err
}

// kill marks the link dead.
func (l *link) kill(h health, cause error) {
	if l.state == healthy {
		l.state, l.cause = h, cause
	}
}

// closeWrite half-closes the link: close_notify under TLS, then FIN.
func (l *link) closeWrite() {
	if tc, ok := l.nc.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	if l.cc != nil {
		if cw, ok := l.cc.Conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		return
	}
	if cw, ok := l.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

func (l *link) close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	l.unwatch()
	return l.nc.Close()
}
