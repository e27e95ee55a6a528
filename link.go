package reconn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reconn/reconn/internal/proto"
	"github.com/reconn/reconn/internal/sock"
)

// A link is one underlying connection. Who may touch each field: "set"
// fields are set by dialLink (or install) before the link is shared and
// never change; "holder" fields are the holder's of the right to write
// (gate.go); atomic ones are anyone's.
type link struct {
	nc   net.Conn   // set: what reads and writes go through, the socket or TLS over it
	cc   *countConn // set: counts TCP bytes under TLS; nil without TLS
	p    sock.Probe // holder: Run and Control; MarkReset by anyone
	addr int        // set: index in config.addrs of the address dialed

	sent    int64       // holder: bytes written without TLS
	state   sock.Health // holder: healthy or broken, never anything else
	quiet   bool        // holder: healthy, and a Write needs no check unless the watcher flags it
	cause   error       // holder: what found it broken
	peerFIN bool        // holder: the peer half-closed at accept and reads on; the link carries the stream
	wclosed bool        // holder: this side was half-closed
	aborted bool        // holder: its close is a reset
	ackable bool        // set: the platform counts acknowledgements for this socket
	watched bool        // set: registered with the watcher

	// A link whose peer sent a FIN and is leaving is broken and leaving;
	// it drains until drainBy (see Conn.drain). Holder's.
	leaving bool
	full    bool      // its session reached its limit: the redial that replaces it is a rotation
	drained bool      // the drain is over
	drainBy time.Time // when the drain ends at the latest

	afterFIN bool      // set by install: the link it replaced was left for its peer's FIN
	upAt     time.Time // set: when the connection was made
	conf0    int64     // set by install: the Conn's confirmed count then
	sent0    int64     // set: sentNow once the link was set up (a TLS handshake counts)

	placeholder bool        // set: stands for the connection an Async Conn has not made yet
	expire      *time.Timer // set by install: ends the link's life (ConnMaxLifetime)
	retired     atomic.Bool // replaced by a newer link
	closed      atomic.Bool
	owner       atomic.Pointer[Conn] // the Conn the link serves, for the watcher
	flagged     atomic.Bool          // the watcher saw a FIN, hang-up or error, or the session ended, since the last check

	// A session of an application protocol (see internal/proto), if the
	// Conn speaks one: its answers, not the kernel's, acknowledge.
	sess       proto.Session         // set
	sessN      int64                 // holder: messages written in the session
	wbuf       []byte                // holder: frames being written
	scratch    []byte                // holder: a message that wraps in the ring
	spans      []heldSpan            // holder: the messages being framed
	answered   atomic.Int64          // messages 1 to answered of the session are answered
	kacked     bool                  // set: the session's answers are the kernel's (proto.KernelAcked)
	frameEnds  []frameEnd            // holder: with kacked, where the frames written end, oldest first
	ended      atomic.Pointer[error] // why the session ended
	readerDone chan struct{}         // set by install: closed when the session's reader has returned
}

// A link's state: the holder marks a healthy link broken once a check, a
// write or its session finds it dead, or its peer is leaving.
const (
	healthy = sock.Healthy
	broken  = sock.Broken
)

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

// dialLink makes one underlying connection to the i-th address and sets
// up its socket. The connect and the TLS handshake together are bounded
// by ctx and by the per-attempt bound of the configuration.
func (c *Conn) dialLink(ctx context.Context, i int) (_ *link, err error) {
	cfg := c.cfg
	if o, ok := cfg.proto.(proto.DialObserver); ok {
		defer func() { o.Dialed(err) }()
	}
	if cfg.attempt > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.attempt)
		defer cancel()
	}
	if !cfg.attemptDeadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, cfg.attemptDeadline)
		defer cancel()
	}
	nc, err := cfg.dialer.DialContext(ctx, cfg.network, cfg.addrs[i])
	if err != nil {
		return nil, err
	}
	l := &link{nc: nc, addr: i}
	l.p.Init(nc)
	if tc, ok := nc.(*net.TCPConn); ok {
		if cfg.keepAlive > 0 {
			idle := min(cfg.keepAlive, maxKeepAlive)
			tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: max(idle/3, time.Second), Count: 3})
		}
		if cfg.userTimeout > 0 {
			// Best effort: where the option is missing, keep-alive and
			// write errors remain.
			l.p.SetUserTimeout(cfg.userTimeout)
		}
	}
	// Bytes the dialer wrote itself (a proxy handshake, say) precede
	// reconn's own in the kernel's counts.
	l.p.Run(sock.Init, 0)
	if cfg.replay > 0 {
		if r, ok := l.p.Run(sock.Acks, 0); ok && r.AckOK {
			l.ackable = true
		}
	}
	if cfg.watch {
		l.watched = l.p.Watch(func() {
			l.flagged.Store(true)
			if c := l.owner.Load(); c != nil {
				c.noticed(l)
			}
		})
	}
	if cfg.tls != nil {
		l.cc = &countConn{Conn: nc}
		tc := tls.Client(l.cc, cfg.tls[i])
		if err := tc.HandshakeContext(ctx); err != nil {
			l.p.Unwatch()
			nc.Close()
			return nil, err
		}
		l.nc = tc
	}
	if cfg.proto != nil {
		sess, err := cfg.proto.Open(ctx, l.nc)
		if err != nil {
			l.p.Unwatch()
			l.nc.Close()
			return nil, err
		}
		l.sess = sess
		if cfg.kernelAcked {
			// Acknowledged bytes are counted from here: what Open
			// wrote (a handshake) precedes the frames. Under TLS the
			// count of bytes written already includes it.
			l.kacked = true
			if l.cc == nil {
				l.p.Run(sock.Init, 0)
			}
		} else {
			l.ackable = true
		}
	}
	l.upAt, l.sent0 = time.Now(), l.sentNow()
	l.quiet = l.sess == nil && (l.watched || cfg.op == 0)
	return l, nil
}

// maxKeepAlive is the longest keep-alive idle time and interval: Linux
// refuses more than 32767 seconds (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL in
// include/net/tcp.h).
const maxKeepAlive = 32767 * time.Second

// sentNow is the number of bytes written on the socket by reconn, or, in
// a session, the number of messages. It is the holder's, or the dialer's
// before the link is shared.
func (l *link) sentNow() int64 {
	if l.sess != nil {
		return l.sessN
	}
	return l.wire()
}

// wire is the number of bytes written on the socket by reconn, under TLS
// its records'.
func (l *link) wire() int64 {
	if l.cc != nil {
		return l.cc.n.Load()
	}
	return l.sent
}

// probe asks the kernel about l's socket.
func (l *link) probe(h hold, op sock.Op) (sock.Result, bool) {
	return l.p.Run(op, l.sentNow())
}

func (l *link) write(h hold, b []byte) (int, error) {
	n, err := l.nc.Write(b)
	if l.cc == nil {
		l.sent += int64(n)
	}
	if err != nil && errors.Is(err, syscall.ECONNRESET) {
		// The write took the socket's reset, which the check's peek
		// will not see: on a unix socket whose peer closed with data
		// unread, the pending count then reads 0 as if all was read.
		l.p.MarkReset()
	}
	return n, err
}

// kill marks the link broken.
func (l *link) kill(h hold, cause error) {
	if l.state == healthy {
		l.state, l.cause, l.quiet = broken, cause, false
	}
}

// closeWrite half-closes the link: close_notify under TLS, then FIN.
func (l *link) closeWrite(h hold) {
	if l.wclosed || l.sess != nil {
		return // a session ends with its protocol's close instead
	}
	l.wclosed = true
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

// abort makes the link's close a reset, so that what it still has queued
// is not sent after the stream moved on (SO_LINGER 0). A connection the
// kernel already closed has nothing queued and is left as it is; a unix
// socket cannot be reset, and its peer may still read what it queued.
func (l *link) abort(h hold) {
	if r, ok := l.probe(h, sock.State); ok && r.Health == broken {
		return
	}
	nc := l.nc
	if l.cc != nil {
		nc = l.cc.Conn
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		l.aborted = tc.SetLinger(0) == nil
	}
}

// close closes the link once, from any goroutine: it unwatches the
// socket and closes it, and waits for a session's reader to return.
func (l *link) close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	if l.expire != nil {
		l.expire.Stop()
	}
	l.p.Unwatch()
	err := l.nc.Close()
	if l.readerDone != nil {
		<-l.readerDone // the session's reader returns once the socket is closed
	}
	return err
}

// placeholderLink stands for the first connection of an Async Conn until
// the writer makes it: it is dead, so the writer dials, and a Read waits.
func placeholderLink(cfg *config) *link {
	nc := notConnected{dialAddr{cfg.network, cfg.addrs[0]}}
	l := &link{nc: nc, placeholder: true}
	l.p.Init(nc)
	l.state, l.cause = broken, errNotConnected
	return l
}

// notConnected is the net.Conn of a placeholder link.
type notConnected struct{ addr dialAddr }

func (notConnected) Read([]byte) (int, error)  { return 0, errNotConnected }
func (notConnected) Write([]byte) (int, error) { return 0, errNotConnected }
func (notConnected) Close() error              { return nil }

// LocalAddr returns the zero address of the network, so that callers can
// print it.
func (n notConnected) LocalAddr() net.Addr {
	if n.addr.network == "unix" {
		return &net.UnixAddr{Net: "unix"}
	}
	return &net.TCPAddr{}
}

func (n notConnected) RemoteAddr() net.Addr             { return n.addr }
func (notConnected) SetDeadline(t time.Time) error      { return nil }
func (notConnected) SetReadDeadline(t time.Time) error  { return nil }
func (notConnected) SetWriteDeadline(t time.Time) error { return nil }

// dialAddr is an address as given to Dial, not yet resolved.
type dialAddr struct{ network, address string }

func (a dialAddr) Network() string { return a.network }
func (a dialAddr) String() string  { return a.address }
