package forward

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/proto"
)

// Default values of the Dialer fields.
const (
	defaultKey          = "message"
	defaultWindow       = 32768
	defaultBatchRecords = 1024
	defaultMaxRecord    = 1 << 20
	defaultAckTimeout   = 30 * time.Second
)

// A Dialer contains options for Forward connections.
//
// The zero value for each field is equivalent to dialing with its
// documented default. A Dialer is safe for concurrent use.
type Dialer struct {
	// Dialer carries reconn's options: Dialer, TLSConfig (Forward over
	// TLS, Fluentd's and Fluent Bit's tls on), UserTimeout, KeepAlive,
	// RedialTimeout, MinBackoff, MaxBackoff, ReplayBuffer, FlushTimeout,
	// Fallbacks, FailbackInterval, ConnMaxLifetime, HandoffTimeout,
	// FailWhenFull, OnFull, OnRedial and SpoolDir mean what they mean
	// there. Check is ignored: the session's reader finds the end of a
	// connection. A Forward Conn always works as with Async, whatever
	// Async says: Write encodes the record, buffers it and returns, and
	// one goroutine per Conn sends.
	reconn.Dialer

	// Tag is the tag of every record, which servers route by. If empty,
	// the default is the program's name (the base of os.Args[0]).
	Tag string

	// Key is the record field that carries the bytes of a Write. If
	// empty, the default is "message": what Fluentd's own inputs
	// (in_syslog, in_tail without a parser) and Vector's log schema call
	// the line. (Docker's fluentd driver and Fluent Bit's tail say "log".)
	Key string

	// Window is the most records sent that may wait for their acks at a
	// time; the others wait in the Conn until acks come. Writes go on
	// meanwhile until the ReplayBuffer is full, and then wait as with
	// reconn's Async. If zero, the default is 32768: with a round trip of
	// 2 ms, about 2.3 million records of 100 bytes a second here, where
	// 8192 allow 1.4 million (records of that size fill the default
	// ReplayBuffer about when the default Window is reached, so the two
	// bound alike). A negative Window fails DialContext.
	Window int

	// BatchRecords is the most records in one request (PackedForward).
	// A request also ends with what the Conn has to send at the moment,
	// and at 64 KiB of records: records are not held back to fill it.
	// If zero, the default is 1024. A negative value fails DialContext.
	BatchRecords int

	// MaxRecordSize is the longest encoded record a Write takes; a
	// longer one fails with reconn.ErrTooLarge. If zero, the default is
	// 1 MiB. A negative value fails DialContext.
	MaxRecordSize int

	// AckTimeout bounds the wait for each request's ack: a request
	// unacknowledged for that long ends the connection, and the Conn
	// redials and sends again every record not acknowledged. If zero,
	// the default is 30 seconds. A negative value fails DialContext.
	AckTimeout time.Duration

	// DisableAcks sends requests without the chunk option, so that the
	// server sends no acks: for a server that cannot acknowledge, or a
	// stream where throughput matters more than what a crash of the
	// server takes with it. A record then counts as delivered once the
	// server's kernel has acknowledged the bytes of its request, as
	// reconn counts a plain stream: a reset, a server that closes or a
	// dead connection still makes the Conn redial and send again what
	// the kernel did not acknowledge, but what the server's kernel took
	// and the server never processed (a crash, a restart with a full
	// socket) is lost. Where the platform counts no acknowledgements
	// (see reconn's package documentation: js, wasip1, Wine), a record
	// counts as delivered once written. Window and AckTimeout do not
	// apply: the ReplayBuffer bounds what waits.
	DisableAcks bool

	// IntegerTime sends each record's time as integer seconds instead of
	// EventTime (nanoseconds), for servers older than Fluentd 0.14.
	IntegerTime bool

	// Compress sends each request in the protocol's CompressedPackedForward
	// mode: its records gzip-compressed (at gzip.BestSpeed, so that the
	// writer keeps up with the application), with the option
	// "compressed": "gzip". It spends CPU on the writer for bandwidth:
	// log lines compress several times over, which pays across a slow or
	// metered link and costs throughput on a fast one. A record's
	// MaxRecordSize and the 64 KiB of a request count its bytes before
	// compression.
	Compress bool

	// SharedKey, if not empty, starts each connection with the
	// protocol's shared-key handshake (the server's HELO, the client's
	// PING, the server's PONG): the client proves to the server that it
	// holds the key, and the server proves it to the client, each by a
	// SHA-512 digest of the key with random salt and nonce. It is
	// Fluentd's <security> shared_key and Fluent Bit's Shared_Key. The
	// handshake authenticates and does not encrypt: across a network
	// that others can read, use it with TLSConfig. With a SharedKey,
	// DialContext waits for the end of the first dial attempt (bounded
	// by ctx and by reconn's per-attempt bound): a server that refuses
	// the key, the user or the password fails DialContext with an error
	// wrapping ErrAuthFailed; a server that cannot be reached does not,
	// and the Conn keeps dialing as without a key. A refusal met on a
	// later connection ends that connection, like any dial error.
	SharedKey string

	// Hostname is the client's name in the handshake (Fluentd's
	// self_hostname). If empty, the default is os.Hostname, or
	// "localhost" where that fails.
	Hostname string

	// Username and Password answer a server that asks for users
	// (Fluentd's <user> in <security>) in the handshake. They are used
	// only with a SharedKey.
	Username, Password string
}

// A Conn sends records to a Forward server (Fluentd, Fluent Bit, Vector,
// the OpenTelemetry Collector) and keeps each until the server has
// acknowledged the request that carried it.
//
// Its methods are safe for concurrent use.
type Conn struct {
	rc      *reconn.Conn
	key     []byte // the key, encoded as a str
	intTime bool
	bufs    sync.Pool // *[]byte for encoding a record
}

// Dial connects to the Forward server at the address on the named network
// using a zero Dialer. See Dialer.DialContext.
func Dial(network, address string) (*Conn, error) {
	var d Dialer
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects using a zero Dialer and the provided context. See
// Dialer.DialContext.
func DialContext(ctx context.Context, network, address string) (*Conn, error) {
	var d Dialer
	return d.DialContext(ctx, network, address)
}

// Dial connects to the address on the named network. See DialContext.
func (d *Dialer) Dial(network, address string) (*Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to the Forward server at the address on the named
// network, and returns a Conn that sends each Write as one record.
//
// As with reconn's Async, DialContext returns without waiting for the
// server; a malformed address or bad options fail at once. The Conn
// packs the records that wait into PackedForward requests, each with a
// chunk id of its own and the option asking for its ack; it keeps up to
// Window records waiting for acks, which may come in any order. A record
// is forgotten only once its request, and every request before it, is
// acknowledged. If the connection ends first (a reset, the server
// closing, an ack that does not come within AckTimeout, an answer that is
// not an ack), the Conn redials with backoff and sends again, in order
// and before anything new, every record not acknowledged. A record is
// thus delivered at least once, and may be delivered twice: the server
// may have taken a request whose ack the end of the connection lost.
// Flush, Sync and Close wait for the acks, within their bounds.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (_ *Conn, err error) {
	bad := func(what string) error {
		return &net.OpError{Op: "dial", Net: network, Err: errors.New("forward: Dialer." + what + " is negative")}
	}
	switch {
	case d.Window < 0:
		return nil, bad("Window")
	case d.BatchRecords < 0:
		return nil, bad("BatchRecords")
	case d.MaxRecordSize < 0:
		return nil, bad("MaxRecordSize")
	case d.AckTimeout < 0:
		return nil, bad("AckTimeout")
	}
	tag := d.Tag
	if tag == "" {
		tag = filepath.Base(os.Args[0])
	}
	key := d.Key
	if key == "" {
		key = defaultKey
	}
	p := &protocol{
		tag:          appendStr(nil, tag),
		window:       orDefault(d.Window, defaultWindow),
		batchRecords: orDefault(d.BatchRecords, defaultBatchRecords),
		maxEntry:     orDefault(d.MaxRecordSize, defaultMaxRecord),
		ackTimeout:   orDefault(d.AckTimeout, defaultAckTimeout),
		noAcks:       d.DisableAcks,
	}
	if d.Compress {
		p.gz = new(gzipper)
	}
	if d.SharedKey != "" {
		p.auth = &auth{sharedKey: d.SharedKey, hostname: d.Hostname, username: d.Username, password: d.Password}
		if p.auth.hostname == "" {
			p.auth.hostname, err = os.Hostname()
			if err != nil || p.auth.hostname == "" {
				p.auth.hostname = "localhost"
			}
		}
		p.first = make(chan error, 1)
	}
	nc, err := proto.Dial(ctx, &d.Dialer, p, network, address)
	if err != nil {
		return nil, err
	}
	c := &Conn{rc: nc.(*reconn.Conn), key: appendStr(nil, key), intTime: d.IntegerTime}
	if p.first == nil {
		return c, nil
	}
	select {
	case err = <-p.first:
		if !errors.Is(err, ErrAuthFailed) {
			return c, nil // up, or not reached: the Conn keeps dialing
		}
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	// Nothing written is lost: what a SpoolDir holds stays there.
	c.rc.SetWriteDeadline(time.Now())
	c.rc.Close()
	return nil, &net.OpError{Op: "dial", Net: network, Err: err}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Write sends b as one record, {Key: b} at the time of the call, and
// returns len(b) once the Conn holds it; a newline that ends b is not
// sent. It fails with reconn.ErrTooLarge for a record longer than
// MaxRecordSize, and otherwise as reconn.Conn's Write with Async does:
// at the write deadline (a net.Error with Timeout() true) if the Window
// or the ReplayBuffer is full, or once the Conn is closed.
func (c *Conn) Write(b []byte) (int, error) {
	text := b
	if k := len(text); k > 0 && text[k-1] == '\n' {
		text = text[:k-1]
	}
	bp := c.buf()
	e := c.appendLine(*bp, time.Now(), text)
	_, err := c.rc.Write(e)
	*bp = e
	c.bufs.Put(bp)
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// WriteRecord sends one record of the given fields at time t. A field's
// value may be nil, a bool, an integer, a float, a string, a []byte (sent
// as a string), a time.Time (as EventTime), a time.Duration (as
// nanoseconds), an error or a fmt.Stringer (as their text), or a
// map[string]any, map[string]string, []any or []string of those. It fails
// for any other type, and otherwise as Write.
func (c *Conn) WriteRecord(t time.Time, fields map[string]any) error {
	bp := c.buf()
	e, err := c.appendRecord(*bp, t, fields)
	if err == nil {
		_, err = c.rc.Write(e)
	}
	*bp = e
	c.bufs.Put(bp)
	return err
}

// appendLine replaces b with the entry of a Write: [t, {Key: text}].
func (c *Conn) appendLine(b []byte, t time.Time, text []byte) []byte {
	b = c.appendHead(b, t, 1)
	b = append(b, c.key...)
	return appendStr(b, text)
}

// appendRecord replaces b with the entry of WriteRecord: [t, fields].
func (c *Conn) appendRecord(b []byte, t time.Time, fields map[string]any) ([]byte, error) {
	b = c.appendHead(b, t, len(fields))
	var err error
	for k, v := range fields {
		b = appendStr(b, k)
		if b, err = appendValue(b, v, 1); err != nil {
			break
		}
	}
	return b, err
}

// appendHead replaces b with the start of an entry, [time, {, with n
// fields.
func (c *Conn) appendHead(b []byte, t time.Time, n int) []byte {
	b = append(b[:0], 0x92)
	if c.intTime {
		b = appendInt(b, t.Unix())
	} else {
		b = appendEventTime(b, t)
	}
	return appendMapHeader(b, n)
}

func (c *Conn) buf() *[]byte {
	if bp, ok := c.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 512)
	return &b
}

// Flush waits until every record written before the call is acknowledged,
// as reconn.Conn's Flush does, or ctx is done.
func (c *Conn) Flush(ctx context.Context) error { return c.rc.Flush(ctx) }

// Sync is Flush bounded as Close is (see reconn.Conn's Sync): what a
// logging library's syncer calls (zap's WriteSyncer).
func (c *Conn) Sync() error { return c.rc.Sync() }

// Close waits for every ack, within the write deadline or
// reconn.Dialer.FlushTimeout, and closes the connection. If records are
// left unacknowledged, it returns a *net.OpError wrapping a
// *reconn.UnconfirmedError that counts them.
func (c *Conn) Close() error { return c.rc.Close() }

// SetWriteDeadline sets the deadline of Write, Sync and Close, as
// reconn.Conn's does.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.rc.SetWriteDeadline(t) }

// Stats returns the Conn's counters; a message is a record.
func (c *Conn) Stats() reconn.Stats { return c.rc.Stats() }
