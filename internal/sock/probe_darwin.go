package sock

import (
	"time"

	"golang.org/x/sys/unix"
)

// On darwin a probe peeks. When bytes are waiting, or when the state is
// asked for (State), TCP_CONNECTION_INFO gives the state; x/sys allocates
// that struct, so it is only asked for when a peek cannot answer.
// Acknowledgements come from SO_NWRITE: the bytes still in the send buffer,
// sent but unacknowledged ones included.

// darwin TCP states (netinet/tcp_fsm.h).
const (
	bsdClosed      = 0
	bsdEstablished = 4
	bsdCloseWait   = 5
)

type sysProbe struct {
	peek [1]byte
}

func (p *Probe) sense(fd uintptr) {
	if p.op&Init != 0 {
		return // SO_NWRITE is relative to what is queued, so no preamble is needed
	}
	pending, err := 0, error(nil)
	if p.op&Acks != 0 {
		pending, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NWRITE)
	}
	h, data := p.peek(fd)
	p.out.Health = h
	// Bytes waiting may hide a FIN, and a FIN may hide a reset: the state
	// answers both.
	if p.kind == TCP && h != Broken && (data || h == PeerClosed || p.op&State != 0) {
		info, ierr := unix.GetsockoptTCPConnectionInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_CONNECTION_INFO)
		if ierr == nil {
			p.out.Health = stateHealth(uint32(info.State), bsdEstablished, bsdCloseWait, bsdClosed)
		}
	}
	if p.op&Acks != 0 && err == nil && p.out.Health != Broken {
		p.ackedFromPending(int64(pending))
	}
}

// setUserTimeout sets TCP_RXT_CONNDROPTIME, darwin's nearest equivalent of
// TCP_USER_TIMEOUT: the connection drops after retransmitting for that many
// seconds.
func setUserTimeout(fd uintptr, d time.Duration) error {
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_RXT_CONNDROPTIME, ceilUnits(d, time.Second))
}
