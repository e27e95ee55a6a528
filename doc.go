// Package reconn provides a net.Conn for one-way streams (syslog, metrics,
// log shipping) that survives the server restarting or the network failing
// without losing what was written.
//
// A TCP write succeeds as soon as the local send buffer takes the bytes.
// When the server has closed or died, the first write still succeeds, and
// every message written until the error surfaces is lost. A Conn learns
// from the kernel when the connection dies (on Linux from an epoll event,
// elsewhere by asking before each Write); redials with backoff; and
// re-sends, before anything new, every message the old peer's kernel had
// not acknowledged.
//
// # Guarantee
//
// Each Write is one message. Once Write returns nil, the message is
// delivered at least once to the peer's kernel, in order, unless Close or
// Flush later reports it unconfirmed. Concretely:
//
//   - A message is re-sent whole, on a new connection, if the old peer's
//     kernel had not acknowledged every byte of it. A message cut in the
//     middle is thus sent again whole, and may arrive twice.
//   - A message the peer's kernel acknowledged but the peer application
//     never read (it was still in the server's receive buffer when the
//     server died) cannot be recovered without acknowledgements from the
//     application, which TCP does not carry. Use RELP or an application
//     protocol with acknowledgements when that matters.
//   - A peer's FIN means it is leaving: a server that restarts stops
//     listening and half-closes, and closes a while later, discarding
//     what it has not read by then. At the FIN the Conn stops writing on
//     that connection, half-closes it too (so that a server that reads
//     until the client's EOF gets it), and dials a new one at once. The
//     old connection stays open until its peer has acknowledged (TCP) or
//     read (unix sockets) everything it was given, or its socket ends, or
//     Dialer.HandoffTimeout passes; then what the old peer never took is
//     re-sent on the new connection, whole, before anything new. A server
//     that reads until the client's EOF thus loses and duplicates
//     nothing, and one that closes after a drain period loses nothing it
//     had time to read. Meanwhile Writes wait within their deadlines
//     (with Async they buffer).
//   - A receiver that half-closes right after accept and reads on is not
//     leaving. A FIN that came before the Conn wrote anything on the
//     connection, or (TCP) before the peer's kernel acknowledged any of
//     it, or within a second of a connection that replaced one left for a
//     FIN, is taken for one: the Conn goes on writing to it, so that such
//     a receiver costs at most one more connection. If it closes later,
//     the Conn redials as after any reset.
//   - Over TLS a server's close_notify comes with its FIN, which the
//     Conn sees on the TCP socket beneath; the same holds. Package relp's
//     sessions end at the server's FIN or close: unanswered messages go
//     again on a new session, as RELP requires. With replay off, a FIN
//     ends the connection at once.
//   - A unix socket's peer that closes with data unread discards it, and
//     its bytes leave the client's send queue as if read; but the close
//     also reports ECONNRESET once, after which the Conn re-sends every
//     message not confirmed before it: on Linux nothing written to a unix
//     socket is lost to a server's close, though a message read just
//     before the close may arrive twice.
//   - A peer that stops acknowledging (a silent drop) is found after
//     Dialer.UserTimeout where the platform supports it.
//   - A deadline or Close that stops a write leaves the connection as it
//     is: a Write that reports n bytes written wrote exactly those, and a
//     replay stopped midway goes on, on the same connection, at the next
//     Write, Flush or Close. A TCP connection given up while it carries
//     messages that will go again on the next one is closed with a reset,
//     so that it cannot deliver them late, after the next one did; a unix
//     socket cannot be reset, and its peer may read them twice.
//
// Acknowledgements are counted with tcpi_bytes_acked on Linux (SIOCOUTQ
// for unix sockets, which counts bytes the peer application has not yet
// read), SO_NWRITE on darwin, FIONWRITE on FreeBSD and SIO_TCP_INFO on
// Windows 10 1703 and later. Elsewhere (NetBSD, OpenBSD, illumos, AIX,
// older Windows and Wine, which lack SIO_TCP_INFO, a custom Dialer
// returning another connection type) there is no count: a redial re-sends
// every message still held, and when Dialer.ReplayBuffer is full (with
// Async, seven eighths full, so that Write need not wait for the writer)
// the oldest held message is assumed delivered to make room. On js,
// wasip1 and plan9 no check runs; a failed write still redials.
//
// The check only sees a FIN or reset that the kernel already has: under
// load a peer may die between the check and the write. Replay closes that
// gap; with replay off (a negative Dialer.ReplayBuffer) the check narrows
// it but cannot close it.
//
// # Bounds
//
// No call waits longer than its bound, whatever runs in the background:
// a Write ends at the write deadline, a Flush when its context ends, a
// Close at its flush limit (see Conn.Close), and each of them after
// Dialer.RedialTimeout spent waiting for a connection to come back, or at
// Close. The error then says why the call stopped and wraps the last dial
// or write error: test it with errors.Is (os.ErrDeadlineExceeded,
// ErrRedialLimit, net.ErrClosed, the context's error, syscall.ECONNREFUSED
// and the like) or net.Error's Timeout.
//
// reconn is built for streams that write and rarely read. A Conn also
// serves request-response protocols such as HTTP through Dialer.DialContext,
// but there a redial only happens on Write and Read never redials: a
// request re-sent on a new connection is answered on that connection, and
// a response lost with the old one is not recovered. Prefer the protocol's
// own retry logic there, and replay off.
package reconn
