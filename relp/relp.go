package relp

import (
	"context"
	"errors"
	"net"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/proto"
)

// Default values of the Dialer fields.
const (
	defaultWindow     = 128            // librelp's default window
	defaultMaxMessage = defaultMaxData // librelp's default maximum DATALEN
)

// A Dialer contains options for RELP connections.
//
// The zero value for each field is equivalent to dialing with its
// documented default. A Dialer is safe for concurrent use.
type Dialer struct {
	// Dialer carries reconn's options: Dialer, TLSConfig (RELP over TLS,
	// rsyslog's tls="on"), UserTimeout, KeepAlive, RedialTimeout,
	// MinBackoff, MaxBackoff, ReplayBuffer, FlushTimeout, Fallbacks,
	// FailbackInterval, ConnMaxLifetime, HandoffTimeout, FailWhenFull,
	// OnFull and OnRedial mean what they mean there. Check is ignored:
	// the session's reader finds the end of a connection. A RELP Conn
	// always works as with Async, whatever Async says: Write buffers the
	// message and returns, and one goroutine per Conn sends.
	reconn.Dialer

	// Window is the most messages that may wait for their answers at a
	// time. If zero, the default is 128, librelp's. A negative Window
	// fails DialContext.
	Window int

	// MaxMessageSize is the longest message a Write takes; a longer one
	// fails with reconn.ErrTooLarge. It should not exceed the server's
	// largest frame (imrelp's maxDataSize, 128 KiB by default); rsyslog
	// also cuts messages longer than its maxMessageSize (8 KiB by
	// default) and still answers 200. If zero, the default is 128 KiB. A
	// negative value fails DialContext.
	MaxMessageSize int
}

// Dial connects to the RELP server at the address on the named network
// using a zero Dialer. See Dialer.DialContext.
func Dial(network, address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects using a zero Dialer and the provided context. See
// Dialer.DialContext.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(ctx, network, address)
}

// Dial connects to the address on the named network. See DialContext.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to the RELP server at the address on the named
// network and returns a Conn that opens a RELP session on each
// connection. The returned net.Conn, if any, is always a *reconn.Conn:
// assert it to reach Flush and Stats.
//
// As with reconn's Async, DialContext returns without waiting for the
// server; a malformed address or bad options fail at once. Each Write is
// one syslog message, sent as a RELP "syslog" command; a newline that
// ends it is not sent. The message is held until the server answers its
// command; if the session ends first (the server's serverclose, a
// reset, a timeout), the Conn redials with backoff, opens a new session
// and sends again, in order, every message not yet answered. A message
// is thus delivered at least once, and may be delivered twice (as with
// librelp): the server may have taken a message whose answer the end of
// the session lost. A message the server answers with an error is
// dropped, counted in Stats.Refused, and reported by the next Write (which
// then does not take its message), Flush or Close. Flush and Close wait
// for the answers, within their bounds, and report what is unanswered as
// reconn's do. Read returns an error: the Conn reads the answers itself.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if d.Window < 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("relp: Dialer.Window is negative")}
	}
	if d.MaxMessageSize < 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("relp: Dialer.MaxMessageSize is negative")}
	}
	p := &protocol{window: d.Window, maxMessage: d.MaxMessageSize}
	if p.window == 0 {
		p.window = defaultWindow
	}
	if p.maxMessage == 0 {
		p.maxMessage = defaultMaxMessage
	}
	return proto.Dial(ctx, &d.Dialer, p, network, address)
}
