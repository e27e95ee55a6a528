// Package relp speaks the client side of RELP, the Reliable Event Logging
// Protocol of rsyslog (librelp; rsyslog's imrelp and omrelp modules), on
// top of reconn's redial and replay.
//
// TCP tells a client only what the server's kernel has received. A
// message that the kernel acknowledged and the server never read is lost
// when the server restarts, and no TCP client can tell. RELP adds an
// answer from the server application to every message; a client keeps
// each message until it is answered and sends it again, in a new session,
// if the session ends first.
//
// # Frames
//
// Both directions carry frames:
//
//	TXNR SP COMMAND SP DATALEN [SP DATA] LF
//
// TXNR, the transaction number, is 1 to 9 decimal digits; COMMAND is 1 to
// 32 ASCII letters; DATALEN is 1 to 9 decimal digits and counts the bytes
// of DATA, which may hold any byte, LF included. A frame with DATALEN 0
// has no SP and no DATA ("3 close 0"). Leading zeros are accepted in TXNR
// and DATALEN, as librelp does, and never sent. Any other byte where the
// syntax does not allow it, a field too long, or a DATALEN above the
// reader's maximum is an error, and the specification says to close the
// connection then. A client reads at most 128 KiB of DATA per frame,
// librelp's default maximum.
//
// # Session
//
// A session is one TCP (or TLS) connection. The client sends "open" with
// TXNR 1 and its offers:
//
//	1 open 51 relp_version=0
//	relp_software=reconn
//	commands=syslog
//
// The server answers with an "rsp" frame that carries the same TXNR, a
// status code, and its own offers:
//
//	1 rsp 93 200 OK
//	relp_version=0
//	relp_software=librelp,1.11.0,http://librelp.adiscon.com
//	commands=syslog
//
// The session is usable only once this answer has arrived. The client
// must close the session if the answer lacks relp_version or names a
// version above its own (0, as in every librelp), and must not send
// "syslog" unless the answer lists it in commands. imrelp refuses a client
// that does not offer commands=syslog ("500 required command not
// supported by client").
//
// Each message is then one "syslog" command, with TXNRs that increase by
// one from 2. The server answers every command, in the order it received
// them, with "rsp" and the command's TXNR: "200 OK" if it took the
// message, another code (the specification names 500) if not. The data of
// an rsp is a three-digit code, then SP and a text up to LF, or LF and
// data (the offers of an open answer). A client may send up to a window
// of commands before their answers come: librelp's client uses 128, and
// imrelp sets no limit of its own (a client that sent 100,000 before
// reading any answer had all of them answered).
//
// The client ends a session with "close"; imrelp answers it with an rsp
// that has no data at all ("3 rsp 0"), then sends the hint
// "0 serverclose 0" and closes the connection. A server that is stopped
// sends the same hint, with TXNR 0, after answering every command it has
// read; it is only a hint: a client must also treat a plain close or a
// reset as the end of the session, and every command unanswered then as
// not taken.
//
// imrelp ends a session, with serverclose and no answer to the offending
// command, when a TXNR is skipped or repeated, a frame is malformed, or a
// command is unknown. It answers "syslog" before "open" with "500 command
// disabled" and keeps the session.
//
// TXNRs after 999,999,999 start again at 1 in the specification. librelp
// counts on to 1,000,000,000 instead, which it can neither send nor
// accept, so a client opens a new session before its TXNR would wrap.
//
// # What an answer means
//
// imrelp answers 200 once rsyslogd's main queue holds the message, before
// any action has written it. What the answer promises therefore depends on
// rsyslogd's configuration:
//
//   - The queue is in memory unless configured otherwise: a message
//     answered 200 is lost if rsyslogd crashes, or if at shutdown its
//     actions cannot write out within queue.timeoutShutdown and
//     queue.timeoutActionCompletion.
//   - When the main queue is full, imrelp's default flow control
//     (flowcontrol="light") waits about a second, then the queue waits
//     queue.timeoutEnqueue (2 s by default) and drops the message, and
//     imrelp still answers 200. With flowcontrol="full" it answers only
//     once the queue has room.
//   - A message longer than rsyslogd's maxMessageSize (8096 bytes by
//     default) is cut to that length and answered 200. No offer tells the
//     client the limit.
//
// When rsyslogd is stopped with SIGTERM while a client streams, imrelp
// answers what it has read, sends serverclose and closes; the commands
// still unread in its socket stay unanswered and are not written, so
// sending them again in a new session duplicates nothing. When its output
// is blocked at that moment, a command may be written without an answer;
// sending it again then writes it twice. And what it answered 200 sits in
// its queue: if the output comes back only as rsyslogd shuts down, it may
// give the output up and drop those messages (measured: all 20 queued,
// in about 1 run in 10 on a busy machine). RELP delivers at least once up
// to the server's queue; past it, what survives a stop is the server's
// to keep (a disk-assisted queue, say).
//
// # TLS
//
// imrelp speaks RELP over TLS from the first byte (tls="on"); a client
// must present a certificate unless the server says otherwise, and
// anonymous TLS, imrelp's mode without certificates, uses anonymous
// Diffie-Hellman, which crypto/tls does not implement.
package relp
