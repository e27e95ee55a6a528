package sock

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On FreeBSD a probe peeks, and reads the first byte of struct tcp_info
// (tcpi_state) when bytes are waiting or when the state is asked for.
// Acknowledgements come from FIONWRITE: the bytes in the send buffer, sent
// but unacknowledged ones included.

const (
	// fionwrite is FIONWRITE, _IOR('f', 119, int) in sys/filio.h; x/sys
	// does not define it.
	fionwrite = 0x40046677

	bsdClosed      = 0 // netinet/tcp_fsm.h
	bsdEstablished = 4
	bsdCloseWait   = 5
)

// FIONWRITE's code carries the size of what it writes (bits 16 to 28,
// sys/ioccom.h): pending must be exactly that size. Each line fails to
// compile if not.
var (
	_ [unsafe.Sizeof(sysProbe{}.pending) - (fionwrite>>16)&0x1fff]byte
	_ [(fionwrite>>16)&0x1fff - unsafe.Sizeof(sysProbe{}.pending)]byte
)

type sysProbe struct {
	info    [256]byte // struct tcp_info; only tcpi_state, its first byte, is read
	peek    [1]byte
	pending int32 // FIONWRITE writes a C int
}

func (p *Probe) sense(fd uintptr) {
	if p.op&Init != 0 {
		return // FIONWRITE is relative to what is queued, so no preamble is needed
	}
	var errno unix.Errno
	if p.op&Acks != 0 {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, fionwrite, uintptr(unsafe.Pointer(&p.sys.pending)))
	}
	h, data := p.peek(fd)
	p.out.Health = h
	// Bytes waiting may hide a FIN, and a FIN may hide a reset: the state
	// answers both.
	if p.kind == TCP && h != Broken && (data || h == PeerClosed || p.op&State != 0) {
		n := uint32(len(p.sys.info))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
			uintptr(unsafe.Pointer(&p.sys.info[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e == 0 && n > 0 {
			p.out.Health = stateHealth(uint32(p.sys.info[0]), bsdEstablished, bsdCloseWait, bsdClosed)
		}
	}
	if p.op&Acks != 0 && errno == 0 && p.out.Health != Broken {
		p.ackedFromPending(int64(p.sys.pending))
	}
}

// setUserTimeout does nothing: FreeBSD has no per-socket user timeout.
// Keepalive still finds a dead idle peer.
func setUserTimeout(fd uintptr, d time.Duration) error { return nil }
