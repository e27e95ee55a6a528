// Package faultnet breaks TCP connections for real, on loopback, and
// accounts for every message sent over them, so that tests can prove
// that a client survives faults and can tell which losses were its own.
//
// A Server reads framed messages (see Framing) that carry a sequence
// number (see AppendMessage), processes each one as soon as it is read,
// and breaks its connections on request:
//
//	srv := faultnet.NewServer(t)
//	client := dial(srv.Addr())            // the client under test
//	srv.WaitConns(ctx, 1)
//	srv.RST()                             // reset every connection
//	...                                   // the client sends seq 0..n-1
//	srv.WaitEOF(ctx)
//	r := srv.Report(n)
//	if r.ClientLost > 0 { t.Errorf("%v", r) }
//
// # Faults
//
// Each fault exists as a method on Server, for every open connection, and
// on Conn, for one. A Server's fault acts on the connections it has
// accepted so far: a client's connection may still wait in the listen
// backlog just after its dial returns, so wait for it with WaitConns
// first. This is what each one does at the TCP level, and what a client
// sees:
//
//   - FIN closes the socket gracefully: the client reads EOF, and a
//     non-blocking MSG_PEEK returns 0. Its next write still succeeds and
//     draws a reset, as does data the server's kernel had not yet
//     acknowledged; later writes fail with EPIPE. What the server's kernel
//     had acknowledged but the server had not processed is measured as
//     unread, and the kernel acknowledges nothing after that (freeze,
//     drain, shutdown, close; see Conn.FIN).
//   - HalfClose sends a FIN but keeps reading to EOF, like a draining
//     server: the client reads EOF and can still deliver what it writes.
//   - RST closes abortively (SO_LINGER 0): the client gets ECONNRESET, then
//     EOF or EPIPE. What the server's kernel had acknowledged but the
//     server had not processed is measured as unread (freeze, drain, reset;
//     see Conn.RST). RSTUnread resets without measuring.
//   - Blackhole attaches a socket filter that drops every incoming packet:
//     the server's kernel stops acknowledging, the client retransmits and
//     learns nothing until its TCP_USER_TIMEOUT (ETIMEDOUT) or for about
//     15 minutes by default.
//   - Stall reads and throws away: the kernel still acknowledges, so the
//     client sees a healthy connection while its messages vanish. Stall is
//     not Blackhole.
//   - Pause stops reading until Resume: the receive window closes and the
//     client's writes block (backpressure).
//   - Latency delays the processing of every read.
//   - CutAfter closes as FIN does after a number of bytes, typically in
//     the middle of a message, and is measured as FIN is.
//   - Refuse closes the listener (dials fail with ECONNREFUSED), Accept
//     listens again on the same address, and Restart does both around an
//     RST of every connection.
//   - DropSYN attaches the drop filter to the listener: dials time out
//     until AcceptSYN.
//
// One line each:
//
//	srv.FIN()
//	srv.HalfClose()
//	srv.RST()                  // or srv.RSTUnread()
//	err := srv.Blackhole()     // needs CAP_NET_ADMIN, Linux only
//	srv.Stall()
//	srv.Pause(); srv.Resume()
//	srv.Latency(10 * time.Millisecond)
//	srv.CutAfter(1500)
//	srv.Refuse(); srv.Accept()
//	srv.Restart(100 * time.Millisecond)
//	srv.WaitEvent(ctx, faultnet.EventListening, 1)
//	err := srv.DropSYN()       // needs CAP_NET_ADMIN, Linux only; undo with AcceptSYN
//
// A Proxy applies the same faults, per Direction, to connections to a
// server that the test does not control:
//
//	p := faultnet.NewProxy(t, "127.0.0.1:514")
//	p.RST(faultnet.Downstream) // the client gets a reset, the server a FIN
//
// # Accounting
//
// Report sorts every message the client sent into processed, duplicated,
// unread at a close (acknowledged by the server's kernel but never
// processed: no client could have saved it without acknowledgements from
// the application), stalled, and lost by the client. A frame split
// across reads is assembled before it is processed. When the measurement
// is exact (Report.Exact), every message that the server's kernel
// acknowledged before RST, FIN or a cut is processed or unread, so a
// message lost by the client is one that its own kernel never saw
// acknowledged.
//
// # Platforms and privileges
//
// Blackhole, DropSYN and the freeze that makes the measurement of RST,
// FIN and CutAfter exact use a classic BPF socket filter
// (SO_ATTACH_FILTER). They work on Linux only, and only with
// CAP_NET_ADMIN (root, or a user and network namespace): Blackhole and
// DropSYN return an error that wraps ErrUnsupported elsewhere and one
// that satisfies errors.Is(err, os.ErrPermission) without the privilege,
// while RST and the others fall back to an inexact measurement
// (Report.Exact is false). The measurement of unread data needs a
// non-blocking receive, available on Unix systems but AIX; on other
// systems it counts only what the server had read. The other faults work
// wherever the net package does.
package faultnet
