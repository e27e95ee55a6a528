package sock

import (
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Go's Windows sockets are overlapped and blocking, so a MSG_PEEK recv with
// nothing waiting would block: Windows uses WSAIoctl(SIO_TCP_INFO) instead,
// for both the state and the acknowledgement count (BytesOut minus
// BytesInFlight). SIO_TCP_INFO needs Windows 10 1703 or later; where it
// fails (before Windows 10 1703, and under Wine), a probe learns nothing.

// sioTCPInfo is SIO_TCP_INFO, _WSAIORW(IOC_VENDOR, 39) in mstcpip.h.
const sioTCPInfo = 0xD8000027

// TCPSTATE values (mstcpip.h).
const (
	winClosed      = 0
	winEstablished = 4
	winCloseWait   = 7
)

// tcpInfoV0 is TCP_INFO_v0 (mstcpip.h), the output of SIO_TCP_INFO
// version 0.
type tcpInfoV0 struct {
	State             uint32 // TCPSTATE
	Mss               uint32
	ConnectionTimeMs  uint64
	TimestampsEnabled uint8
	_                 [3]byte
	RttUs             uint32
	MinRttUs          uint32
	BytesInFlight     uint32
	Cwnd              uint32
	SndWnd            uint32
	RcvWnd            uint32
	RcvBuf            uint32
	BytesOut          uint64
	BytesIn           uint64
	BytesReordered    uint32
	BytesRetrans      uint32
	FastRetrans       uint32
	DupAcksIn         uint32
	TimeoutEpisodes   uint32
	SynRetrans        uint8
	_                 [3]byte
}

// The layout must match the C struct: 88 bytes, BytesInFlight at 28,
// BytesOut at 48. Each line fails to compile if that changes.
var (
	_ [88 - unsafe.Sizeof(tcpInfoV0{})]byte
	_ [unsafe.Sizeof(tcpInfoV0{}) - 88]byte
	_ [28 - unsafe.Offsetof(tcpInfoV0{}.BytesInFlight)]byte
	_ [unsafe.Offsetof(tcpInfoV0{}.BytesInFlight) - 28]byte
	_ [48 - unsafe.Offsetof(tcpInfoV0{}.BytesOut)]byte
	_ [unsafe.Offsetof(tcpInfoV0{}.BytesOut) - 48]byte
)

type sysProbe struct {
	info        tcpInfoV0
	version     uint32 // input of SIO_TCP_INFO: 0
	returned    uint32
	unsupported bool
}

func (p *Probe) sense(fd uintptr) {
	if p.kind != TCP || p.sys.unsupported {
		return
	}
	err := windows.WSAIoctl(windows.Handle(fd), sioTCPInfo,
		(*byte)(unsafe.Pointer(&p.sys.version)), uint32(unsafe.Sizeof(p.sys.version)),
		(*byte)(unsafe.Pointer(&p.sys.info)), uint32(unsafe.Sizeof(p.sys.info)),
		&p.sys.returned, nil, 0)
	if err != nil || p.sys.returned < uint32(unsafe.Sizeof(p.sys.info)) {
		p.sys.unsupported = true // before Windows 10 1703
		return
	}
	if p.op&Init != 0 {
		p.preamble = int64(p.sys.info.BytesOut)
		return
	}
	p.out.Health = stateHealth(p.sys.info.State, winEstablished, winCloseWait, winClosed)
	if p.out.Health != Broken {
		p.ackedFromTotal(int64(p.sys.info.BytesOut) - int64(p.sys.info.BytesInFlight))
	}
}

// setUserTimeout sets TCP_MAXRT, Windows' nearest equivalent of
// TCP_USER_TIMEOUT: the connection drops after retransmitting for that many
// seconds.
func setUserTimeout(fd uintptr, d time.Duration) error {
	return windows.SetsockoptInt(windows.Handle(fd), windows.IPPROTO_TCP, windows.TCP_MAXRT, ceilUnits(d, time.Second))
}
