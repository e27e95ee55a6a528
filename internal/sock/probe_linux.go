package sock

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux one getsockopt(TCP_INFO) gives both the TCP state and
// tcpi_bytes_acked, which survives a reset and counts the SYN as one byte.
// unix.GetsockoptTCPInfo allocates its result, so sense calls getsockopt
// itself into a per-socket struct.

// Linux TCP states (include/net/tcp_states.h).
const (
	linuxEstablished = 1
	linuxClose       = 7
	linuxCloseWait   = 8
)

// Lengths of struct tcp_info up to and including tcpi_state and
// tcpi_bytes_acked (added in Linux 4.1). The kernel returns the length it
// filled; a field beyond it was not written and is never read.
const (
	tcpInfoStateEnd = uint32(unsafe.Offsetof(unix.TCPInfo{}.State) + unsafe.Sizeof(unix.TCPInfo{}.State))
	tcpInfoAckedEnd = uint32(unsafe.Offsetof(unix.TCPInfo{}.Bytes_acked) + unsafe.Sizeof(unix.TCPInfo{}.Bytes_acked))
)

type sysProbe struct {
	info unix.TCPInfo
	peek [1]byte
}

func (p *Probe) sense(fd uintptr) {
	if p.kind != TCP {
		p.senseUnix(fd)
		return
	}
	if p.op&Peek != 0 {
		h, data := p.peek(fd)
		p.out.Health = h
		if h == Healthy && !data && p.op&(Acks|Init) == 0 {
			return
		}
		// Bytes are waiting, and a FIN may be queued behind them; or the
		// peek saw a FIN, which a reset may have followed: the state
		// below answers both.
	}
	n, ok := p.tcpInfo(fd)
	if !ok {
		return
	}
	state, stateOK, total, ackedOK := p.sys.fields(n)
	if stateOK && p.op&(State|Peek) != 0 {
		p.out.Health = stateHealth(uint32(state), linuxEstablished, linuxCloseWait, linuxClose)
	}
	if !ackedOK {
		return // no acknowledgement count
	}
	if p.op&Init != 0 {
		outq, err := unix.IoctlGetUint32(int(fd), unix.SIOCOUTQ)
		if err == nil && total >= 0 {
			p.preamble = total + int64(outq)
		}
		return
	}
	p.ackedFromTotal(total) // free with the state
}

// fields returns tcpi_state, and tcpi_bytes_acked less the SYN, from a
// struct tcp_info the kernel filled to n bytes, each with whether n
// covers it.
func (s *sysProbe) fields(n uint32) (state uint8, stateOK bool, acked int64, ackedOK bool) {
	if n >= tcpInfoStateEnd {
		state, stateOK = s.info.State, true
	}
	if n >= tcpInfoAckedEnd {
		acked, ackedOK = int64(s.info.Bytes_acked)-1, true // the SYN counts one
	}
	return state, stateOK, acked, ackedOK
}

// tcpInfo reads struct tcp_info and returns the length the kernel filled.
func (p *Probe) tcpInfo(fd uintptr) (uint32, bool) {
	n := uint32(unsafe.Sizeof(p.sys.info))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&p.sys.info)), uintptr(unsafe.Pointer(&n)), 0)
	return n, errno == 0
}

// senseUnix serves unix domain stream sockets: a peek for liveness, and
// SIOCOUTQ for acknowledgements: the memory the peer application has not
// yet read, each buffer's overhead included, so that it only errs on the
// side of too little acknowledged, and reaches 0 once everything is read.
// A peer that closes with data unread frees it, and the count drops to 0
// as if it had been read; but the close also sets ECONNRESET on this
// socket, which the peek after the count reads (see probe.peek), and the
// count is not used from then on.
func (p *Probe) senseUnix(fd uintptr) {
	var outq uint32
	var err error
	if p.op&Acks != 0 {
		outq, err = unix.IoctlGetUint32(int(fd), unix.SIOCOUTQ)
	}
	p.out.Health, _ = p.peek(fd)
	if p.op&Acks != 0 && err == nil {
		p.ackedFromPending(int64(outq))
	}
}

// setUserTimeout sets TCP_USER_TIMEOUT: how long written data may stay
// unacknowledged before the kernel drops the connection with ETIMEDOUT.
// The option is in whole milliseconds, an int: d is rounded up to 1 ms and
// capped at the largest value the option takes.
func setUserTimeout(fd uintptr, d time.Duration) error {
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ceilUnits(d, time.Millisecond))
}
