package reconn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/reconn/reconn/internal/proto"
)

// link is one underlying connection.
type link struct {
	nc   net.Conn   // what reads and writes go through: the socket, or TLS over it
	cc   *countConn // counts TCP bytes under TLS; nil without TLS
	p    probe
	sent int64 // bytes written without TLS; guarded by Conn.tok

	// Guarded by Conn.tok.
	state   health // healthy or broken; never peerClosed
	quiet   bool   // healthy, and a Write needs no check unless the watcher flags it
	cause   error  // what found it broken
	peerFIN bool   // the peer half-closed at accept and reads on: the link still carries the stream
	ackable bool   // the platform counts acknowledgements for this socket
	wclosed bool   // this side was half-closed

	// A link whose peer sent a FIN and is leaving is dead (broken) and
	// leaving; it drains until drainBy (see Conn.drain). Guarded by the
	// right to write.
	leaving  bool
	drained  bool      // the drain is over
	drainBy  time.Time // when the drain ends at the latest
	afterFIN bool      // the link it replaced was left for its peer's FIN; set before the link is shared
	upAt     time.Time // when the connection was made; set before the link is shared
	sent0    int64     // sentNow once the link was set up (a TLS handshake counts); set before the link is shared

	retired     atomic.Bool // replaced by a newer link
	closed      atomic.Bool
	aborted     bool        // its close is a reset (abort); guarded by Conn.tok
	placeholder bool        // stands for the connection an Async Conn has not made yet
	addr        int         // index in config.addrs of the address dialed
	expire      *time.Timer // ends the link's life (ConnMaxLifetime); set once, before the link is shared

	// A session of an application protocol (see internal/proto), if the
	// Conn speaks one: its answers, not the kernel's, acknowledge.
	sess       proto.Session
	sessN      int64                 // messages written in the session; guarded by Conn.tok
	answered   atomic.Int64          // messages 1 to answered of the session are answered
	ended      atomic.Pointer[error] // why the session ended
	readerDone chan struct{}         // closed when the session's reader has returned; nil before it starts
	wbuf       []byte                // frames being written; guarded by Conn.tok
	scratch    []byte                // a message that wraps in the ring; guarded by Conn.tok

	owner   atomic.Pointer[Conn] // the Conn the link serves, for the watcher
	watched bool                 // registered with the watcher at dial; never changes
	watchFD int                  // descriptor registered with the watcher, guarded by it; -1 if none
	flagged atomic.Bool          // the watcher saw a FIN, hang-up or error since the last check
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

// dialLink makes one underlying connection to the i-th address and sets
// up its socket. The connect and the TLS handshake together are bounded
// by ctx and by the per-attempt bound of the configuration.
func (cfg *config) dialLink(ctx context.Context, i int) (*link, error) {
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
	l := &link{nc: nc, addr: i, watchFD: -1}
	l.p.init(nc)
	if tc, ok := nc.(*net.TCPConn); ok {
		if cfg.keepAlive > 0 {
			idle := min(cfg.keepAlive, maxKeepAlive)
			tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: max(idle/3, time.Second), Count: 3})
		}
		if cfg.userTimeout > 0 {
			// Best effort: where the option is missing, keep-alive and
			// write errors remain.
			l.p.control(func(fd uintptr) error { return setUserTimeout(fd, cfg.userTimeout) })
		}
	}
	// Bytes the dialer wrote itself (a proxy handshake, say) precede
	// reconn's own in the kernel's counts.
	l.p.run(opInit, 0)
	if cfg.replay > 0 {
		if r, ok := l.p.run(opAcks, 0); ok && r.ackOK {
			l.ackable = true
		}
	}
	if cfg.watch && l.p.kind != sockOther {
		l.watched = l.watch()
	}
	if cfg.tls != nil {
		l.cc = &countConn{Conn: nc}
		tc := tls.Client(l.cc, cfg.tls[i])
		if err := tc.HandshakeContext(ctx); err != nil {
			l.unwatch()
			nc.Close()
			return nil, err
		}
		l.nc = tc
	}
	if cfg.proto != nil {
		sess, err := cfg.proto.Open(ctx, l.nc)
		if err != nil {
			l.unwatch()
			l.nc.Close()
			return nil, err
		}
		l.sess, l.ackable = sess, true
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
// a session, the number of messages.
func (l *link) sentNow() int64 {
	if l.sess != nil {
		return l.sessN
	}
	if l.cc != nil {
		return l.cc.n.Load()
	}
	return l.sent
}

// probe asks the kernel about l's socket.
func (l *link) probe(op int) (probeResult, bool) {
	return l.p.run(op, l.sentNow())
}

func (l *link) write(b []byte) (int, error) {
	n, err := l.nc.Write(b)
	if l.cc == nil {
		l.sent += int64(n)
	}
	return n, err
}

// kill marks the link broken.
func (l *link) kill(cause error) {
	if l.state == healthy {
		l.state, l.cause, l.quiet = broken, cause, false
	}
}

// closeWrite half-closes the link: close_notify under TLS, then FIN.
func (l *link) closeWrite() {
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
func (l *link) abort() {
	if r, ok := l.probe(opState); ok && r.h == broken {
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

func (l *link) close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	if l.expire != nil {
		l.expire.Stop()
	}
	l.unwatch()
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
	l := &link{nc: nc, placeholder: true, watchFD: -1}
	l.state, l.cause = broken, errNotConnected
	return l
}

var errNotConnected = errors.New("reconn: not connected yet")

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
