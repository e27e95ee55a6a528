// Package syslog sends messages to a syslog server with the API of the
// standard library's log/syslog, the same names and the same messages on
// the wire, and stops losing them when a TCP syslog server restarts.
//
// Changing the import path from "log/syslog" to
// "github.com/reconn/reconn/syslog" is enough: a program that compiles
// against log/syslog compiles against this package, and sends the same
// bytes by default.
//
// # Delivery
//
// On the stream networks ("tcp", "tcp4", "tcp6" and "unix"), a Writer
// writes through a *reconn.Conn: before each message it learns from the
// kernel whether the connection died, redials with backoff, and re-sends
// every message the old server's kernel had not acknowledged. Once a
// write returns nil, the message is delivered at least once, in order, to
// the server's kernel, unless Close or Flush later reports it unconfirmed.
// A message the server's kernel acknowledged but the server never read
// (still in its receive buffer when it stopped) is lost to any TCP
// client; see the reconn package for the guarantee and its limits.
//
// log/syslog instead retries a message once after a write fails. The
// write that fails is not the first one after the server went away, so
// every message the send buffer accepted in between is lost without an
// error.
//
// A write to a stream network blocks while the server is down, redialing,
// up to reconn.Dialer.RedialTimeout (30 seconds by default); log/syslog
// fails at once and drops the message.
//
// The datagram networks ("udp", "udp4", "udp6", "unixgram") and the local
// syslog daemon (an empty network) work as in log/syslog, with no
// delivery guarantee: a message is sent once, and sent again on a new
// connection only if the write fails.
//
// # Beyond log/syslog
//
// DialConfig takes a Config that selects the RFC 5424 format, octet
// counting (RFC 6587), TLS (RFC 5425) and every transport option of
// reconn.Dialer. NewHandler makes a log/slog Handler that writes each
// record as one message. Writer.Flush waits until everything written has
// reached the server's kernel.
//
// # Messages
//
// Each write is one message. On a stream network with newline framing
// (the default, as in log/syslog), a newline ends each message: one is
// added when the message does not end with one, and a newline inside the
// message is sent as the four characters "#012", as rsyslog records a
// newline it receives inside a message, so that one write is never split
// into two messages. With octet counting a message is sent as it is, but
// for a trailing newline, which ends a line rather than belongs to the
// message. On datagram networks each message is one datagram: in RFC3164
// as log/syslog sends it, with a newline added if missing; in RFC5424 as
// it is, but for a trailing newline.
//
// The tag, and a hostname set in Config, must be printable US-ASCII
// characters that the format allows in that field (see Dial and Config);
// a Writer never sends a malformed header. A message that cannot fit the
// transport fails the write: on a datagram network with the error of the
// socket (EMSGSIZE), as log/syslog does; on a stream network with
// reconn.ErrTooLarge when it is larger than reconn.Dialer.ReplayBuffer.
//
// # Platforms
//
// log/syslog does not exist on Windows and Plan 9. This package builds
// everywhere. On Windows, Plan 9, js and wasip1, New and NewLogger, and
// Dial with an empty network, fail with an error: there is no local
// syslog daemon to reach. On js and wasip1 the other networks are what
// package net offers there.
package syslog

import (
	"context"
	"errors"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/relp"
)

// The Priority is a combination of the syslog facility and severity. For
// example, LOG_ALERT | LOG_FTP sends an alert severity message from the
// FTP facility. The default severity is LOG_EMERG; the default facility is
// LOG_KERN. The values are those of log/syslog.
type Priority int

const (
	severityMask = 0x07
	facilityMask = 0xf8
)

// Severities, from /usr/include/sys/syslog.h; they are the same on Linux,
// BSD and macOS.
const (
	LOG_EMERG Priority = iota
	LOG_ALERT
	LOG_CRIT
	LOG_ERR
	LOG_WARNING
	LOG_NOTICE
	LOG_INFO
	LOG_DEBUG
)

// Facilities, from /usr/include/sys/syslog.h; they are the same up to
// LOG_FTP on Linux, BSD and macOS.
const (
	LOG_KERN Priority = iota << 3
	LOG_USER
	LOG_MAIL
	LOG_DAEMON
	LOG_AUTH
	LOG_SYSLOG
	LOG_LPR
	LOG_NEWS
	LOG_UUCP
	LOG_CRON
	LOG_AUTHPRIV
	LOG_FTP
	_ // unused
	_ // unused
	_ // unused
	_ // unused
	LOG_LOCAL0
	LOG_LOCAL1
	LOG_LOCAL2
	LOG_LOCAL3
	LOG_LOCAL4
	LOG_LOCAL5
	LOG_LOCAL6
	LOG_LOCAL7
)

// A Writer is a connection to a syslog server. Multiple goroutines may
// invoke methods on a Writer simultaneously; each call sends one message.
type Writer struct {
	priority       Priority
	network, raddr string
	stream         bool           // the network goes through reconn
	dialer         *reconn.Dialer // for stream networks
	relp           *relp.Dialer   // for RELP; dialer is its reconn.Dialer
	f              frame          // fixed once Dial returns

	// mu serializes connecting and closing, and whole writes on datagram
	// and local connections. A reconn.Conn takes concurrent writes and
	// redials itself, so a write on a stream network takes no lock.
	mu   sync.Mutex
	conn atomic.Pointer[netConn] // nil until connected and once closed
}

// netConn holds the Writer's connection: a *reconn.Conn on stream
// networks.
type netConn struct{ net.Conn }

// New establishes a new connection to the system log daemon. Each write
// to the returned writer sends a log message with the given priority (a
// combination of the syslog facility and severity) and prefix tag. If tag
// is empty, os.Args[0] is used.
//
// The local daemon is reached as log/syslog reaches it, with no delivery
// guarantee. On Windows, Plan 9, js and wasip1, New fails.
func New(priority Priority, tag string) (*Writer, error) {
	return Dial("", "", priority, tag)
}

// Dial establishes a connection to a log daemon by connecting to address
// raddr on the specified network. Each write to the returned writer sends
// a log message with the facility and severity (from priority) and tag. If
// tag is empty, os.Args[0] is used, with every character the format does
// not allow in a tag replaced by '_'. If network is empty, Dial connects to
// the local syslog server (not on Windows, Plan 9, js and wasip1).
// Otherwise, see the documentation for net.Dial for valid values of
// network and raddr.
//
// "tcp", "tcp4", "tcp6" and "unix" go through a *reconn.Conn made by a
// zero reconn.Dialer; every other network is dialed as log/syslog dials
// it. Dial is DialConfig with a nil Config.
//
// A tag must be printable US-ASCII other than space, ':', '[' and ']',
// which end a tag in the RFC 3164 header; any other tag fails Dial. An invalid
// priority also fails Dial, as in log/syslog.
func Dial(network, raddr string, priority Priority, tag string) (*Writer, error) {
	return DialConfig(network, raddr, priority, tag, nil)
}

// NewLogger creates a log.Logger whose output is written to the system
// log service with the specified priority, a combination of the syslog
// facility and severity. The logFlag argument is the flag set passed
// through to log.New to create the Logger. It fails where New does.
func NewLogger(p Priority, logFlag int) (*log.Logger, error) {
	s, err := New(p, "")
	if err != nil {
		return nil, err
	}
	return log.New(s, "", logFlag), nil
}

// errPriority is returned by Dial for a priority that is not a facility
// and a severity.
var errPriority = errors.New("syslog: invalid priority")

// connect makes a connection to the syslog server, in place of the
// current one if any. w.mu is held.
func (w *Writer) connect() (*netConn, error) {
	if old := w.conn.Swap(nil); old != nil {
		// As in log/syslog: the old connection is of no more use.
		old.Close()
	}
	var (
		c   net.Conn
		err error
	)
	switch {
	case w.network == "":
		c, err = dialLocal()
	case w.relp != nil:
		c, err = w.relp.DialContext(context.Background(), w.network, w.raddr)
	case w.stream:
		c, err = w.dialer.DialContext(context.Background(), w.network, w.raddr)
	default:
		c, err = net.Dial(w.network, w.raddr)
	}
	if err != nil {
		return nil, err
	}
	nc := &netConn{c}
	w.conn.Store(nc)
	return nc, nil
}

// Write sends a log message to the syslog daemon, with the Writer's
// priority. It returns len(b) once the message is written.
//
// As in log/syslog, a Write after Close connects again.
func (w *Writer) Write(b []byte) (int, error) {
	if err := send(w, w.priority, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close closes the connection to the syslog daemon. On a stream network
// it first waits until the server's kernel has acknowledged every message
// written, up to reconn.Dialer.FlushTimeout (15 seconds by default),
// redialing and replaying if the server restarts meanwhile; if it gives
// up, Close returns a *net.OpError wrapping a *reconn.UnconfirmedError
// that counts the messages not confirmed. Close ends the writes still in
// progress on other goroutines.
//
// As in log/syslog, Close on a closed Writer returns nil, and a write
// after Close connects again.
func (w *Writer) Close() error {
	w.mu.Lock()
	c := w.conn.Swap(nil)
	w.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}

// Flush waits until the server's kernel has acknowledged every message
// written before the call, redialing and replaying if the server restarts
// meanwhile, or until ctx is done. If it gives up, it returns a
// *net.OpError wrapping a *reconn.UnconfirmedError. On datagram networks
// and the local syslog, and on a closed Writer, there is nothing to wait
// for and Flush returns nil at once.
func (w *Writer) Flush(ctx context.Context) error {
	if c := w.conn.Load(); c != nil {
		if rc, ok := c.Conn.(*reconn.Conn); ok {
			return rc.Flush(ctx)
		}
	}
	return nil
}

// Sync is Flush bounded as Close is: by reconn.Dialer.FlushTimeout (15
// seconds by default). It lets a Writer serve as a logging library's
// syncer (zap's WriteSyncer, for one), so that what was logged reaches
// the server's kernel at shutdown. Where Flush has nothing to wait for,
// Sync returns nil at once.
func (w *Writer) Sync() error {
	if c := w.conn.Load(); c != nil {
		if rc, ok := c.Conn.(*reconn.Conn); ok {
			return rc.Sync()
		}
	}
	return nil
}

// Emerg logs a message with severity LOG_EMERG, ignoring the severity
// passed to New.
func (w *Writer) Emerg(m string) error { return send(w, LOG_EMERG, m) }

// Alert logs a message with severity LOG_ALERT, ignoring the severity
// passed to New.
func (w *Writer) Alert(m string) error { return send(w, LOG_ALERT, m) }

// Crit logs a message with severity LOG_CRIT, ignoring the severity passed
// to New.
func (w *Writer) Crit(m string) error { return send(w, LOG_CRIT, m) }

// Err logs a message with severity LOG_ERR, ignoring the severity passed
// to New.
func (w *Writer) Err(m string) error { return send(w, LOG_ERR, m) }

// Warning logs a message with severity LOG_WARNING, ignoring the severity
// passed to New.
func (w *Writer) Warning(m string) error { return send(w, LOG_WARNING, m) }

// Notice logs a message with severity LOG_NOTICE, ignoring the severity
// passed to New.
func (w *Writer) Notice(m string) error { return send(w, LOG_NOTICE, m) }

// Info logs a message with severity LOG_INFO, ignoring the severity passed
// to New.
func (w *Writer) Info(m string) error { return send(w, LOG_INFO, m) }

// Debug logs a message with severity LOG_DEBUG, ignoring the severity
// passed to New.
func (w *Writer) Debug(m string) error { return send(w, LOG_DEBUG, m) }

// send formats msg as one message with the Writer's facility and the
// severity of sev, and writes it.
func send[M string | []byte](w *Writer, sev Priority, msg M) error {
	pri := w.priority&facilityMask | sev&severityMask
	bp := getBuf()
	defer putBuf(bp)
	var b []byte
	*bp, b = appendFrame(*bp, &w.f, pri, time.Now(), nil, msg)
	return w.write(b)
}

// write writes one formatted message: on a stream network straight to
// the reconn.Conn, which redials itself; elsewhere, as log/syslog does,
// once more on a new connection if the write fails. Either way, as in
// log/syslog, a closed Writer connects again. w.mu is held only to
// connect, never across a write, so that Close ends a write blocked on
// a daemon that stopped reading.
func (w *Writer) write(b []byte) error {
	c := w.conn.Load()
	if w.stream {
		if c == nil {
			var err error
			if c, err = w.connection(nil); err != nil {
				return err
			}
		}
		_, err := c.Write(b)
		return err
	}
	if c != nil {
		_, err := c.Write(b)
		if err == nil || errors.Is(err, net.ErrClosed) {
			return err // Close ended the write: no new connection
		}
	}
	c, err := w.connection(c)
	if err != nil {
		return err
	}
	_, err = c.Write(b)
	return err
}

// connection returns the connection to write on in place of failed (nil
// if there was none): the current one if another write connected again
// meanwhile, else a new one. It holds w.mu only to connect.
func (w *Writer) connection(failed *netConn) (*netConn, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur := w.conn.Load(); cur != nil && cur != failed {
		return cur, nil
	}
	return w.connect()
}

// bufPool holds message buffers; one larger than maxPooled is dropped.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooled = 64 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooled {
		*bp = (*bp)[:0]
		bufPool.Put(bp)
	}
}

// defaultHostname is os.Hostname, or, as in log/syslog, "localhost" for
// the local syslog and the connection's local address elsewhere.
func defaultHostname(network string, c net.Conn) string {
	if h, _ := os.Hostname(); h != "" {
		return h
	}
	if network == "" {
		return "localhost"
	}
	return c.LocalAddr().String()
}
