//go:build unix

package reconn

import "runtime"

// The check of a Conn on the unix systems, through internal/sock:
//
//   - Linux: one getsockopt(TCP_INFO) gives the TCP state and the
//     acknowledgement count (tcpi_bytes_acked, which survives a reset),
//     so CheckState costs no more than a peek and is the check before a
//     Write. A unix socket gets a peek, and SIOCOUTQ for what its peer has
//     not read.
//   - darwin: a peek, and the state (TCP_CONNECTION_INFO) only where the
//     peek cannot answer, since x/sys allocates it; SO_NWRITE counts what
//     is not yet acknowledged.
//   - FreeBSD: a peek, tcpi_state, and FIONWRITE.
//   - NetBSD, OpenBSD, DragonFly, illumos, Solaris, AIX: a peek only, and
//     no acknowledgement count: a redial re-sends everything held.
//
// Where sock.WatchSupported (Linux, darwin and the BSDs), CheckWatch
// replaces the check before each Write by an event queue, and runs this
// check only after an event.
//
// No check sees a peer that dies between the check and the write: replay
// covers it. A silent peer is found by UserTimeout (Linux, darwin) or
// keep-alive.

// platformCheck is the check before each Write where CheckWatch does not
// apply.
func platformCheck() CheckMode {
	if runtime.GOOS == "linux" {
		return CheckState
	}
	return CheckPeek
}
