package reconn

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux one getsockopt(TCP_INFO) gives both the TCP state and
// tcpi_bytes_acked, which survives a reset and counts the SYN as one byte.
// unix.GetsockoptTCPInfo allocates its result, so sense calls getsockopt
// itself into a per-socket struct.

const platformCheck = CheckState

// Linux TCP states (include/net/tcp_states.h).
const (
	linuxEstablished = 1
	linuxClose       = 7
	linuxCloseWait   = 8
)

type sysProbe struct {
	info unix.TCPInfo
	peek [1]byte
}

func (p *probe) sense(fd uintptr) {
	if p.kind != sockTCP {
		p.senseUnix(fd)
		return
	}
	if p.op&opPeek != 0 {
		h, data := peek(fd, p.sys.peek[:])
		p.h = h
		if !data && p.op&(opAcks|opInit) == 0 {
			return
		}
		// Bytes are waiting, and a FIN may be queued behind them: the
		// state below answers that.
	}
	if !p.tcpInfo(fd) {
		return
	}
	if p.op&(opState|opPeek) != 0 {
		if h := stateHealth(uint32(p.sys.info.State), linuxEstablished, linuxCloseWait, linuxClose); h != healthy {
			p.h = h
		}
	}
	total := int64(p.sys.info.Bytes_acked) - 1 // the SYN counts one
	if p.op&opInit != 0 {
		outq, err := unix.IoctlGetUint32(int(fd), unix.SIOCOUTQ)
		if err == nil && total >= 0 {
			p.preamble = total + int64(outq)
		}
		return
	}
	if p.op&opAcks != 0 || p.op&opState != 0 {
		p.ackedFromTotal(total)
	}
}

func (p *probe) tcpInfo(fd uintptr) bool {
	n := uint32(unsafe.Sizeof(p.sys.info))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&p.sys.info)), uintptr(unsafe.Pointer(&n)), 0)
	return errno == 0
}

// senseUnix serves unix domain stream sockets: a peek for liveness, and
// SIOCOUTQ, the bytes the peer application has not yet read, for
// acknowledgements. The peer's close frees what it had not read; those
// bytes then count as delivered, like the unread receive buffer of a TCP
// server that dies.
func (p *probe) senseUnix(fd uintptr) {
	var outq uint32
	var err error
	if p.op&opAcks != 0 {
		outq, err = unix.IoctlGetUint32(int(fd), unix.SIOCOUTQ)
	}
	p.h, _ = peek(fd, p.sys.peek[:])
	if p.op&opAcks != 0 && err == nil {
		p.ackedFromPending(int64(outq))
	}
}

// setUserTimeout sets TCP_USER_TIMEOUT: how long written data may stay
// unacknowledged before the kernel drops the connection with ETIMEDOUT.
func setUserTimeout(fd uintptr, d time.Duration) error {
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
}
