package platformtest

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// refusedHere and resetHere match Windows' numbers for a refused dial and
// a reset.
func refusedHere(err error) bool { return errors.Is(err, windows.WSAECONNREFUSED) }
func resetHere(err error) bool   { return errors.Is(err, windows.WSAECONNRESET) }

// sioTCPInfo is SIO_TCP_INFO (mstcpip.h); the library has its own copy.
const sioTCPInfo = 0xD8000027

var (
	tcpInfoOnce sync.Once
	tcpInfoWhy  string
	eofOnce     sync.Once
	eofWhy      string
	unixOnce    sync.Once
	unixWhy     string
)

// NoTCPInfo returns why SIO_TCP_INFO fails on a loopback TCP connection
// here, or "" where it works.
func NoTCPInfo() string {
	tcpInfoOnce.Do(func() {
		client, server, err := loopback()
		if err != nil {
			tcpInfoWhy = "no loopback connection to try SIO_TCP_INFO on: " + err.Error()
			return
		}
		defer client.Close()
		defer server.Close()
		raw, err := client.(*net.TCPConn).SyscallConn()
		if err != nil {
			tcpInfoWhy = "no socket to try SIO_TCP_INFO on: " + err.Error()
			return
		}
		var version, returned uint32
		var info [11]uint64 // TCP_INFO_v0: 88 bytes
		var ioErr error
		raw.Control(func(fd uintptr) {
			ioErr = windows.WSAIoctl(windows.Handle(fd), sioTCPInfo,
				(*byte)(unsafe.Pointer(&version)), uint32(unsafe.Sizeof(version)),
				(*byte)(unsafe.Pointer(&info[0])), uint32(unsafe.Sizeof(info)),
				&returned, nil, 0)
		})
		if ioErr != nil {
			tcpInfoWhy = "SIO_TCP_INFO fails here (" + ioErr.Error() + "; Windows before 10 1703, or Wine): a Conn runs no check and counts no acknowledgements"
		}
	})
	return tcpInfoWhy
}

// ResetReadsAsEOF returns why a Read after the peer's reset may return
// io.EOF here, or "" where it reports the reset (WSAECONNRESET), as
// Windows does.
//
// Under Wine it may: Wine's server watches the socket too, and when it
// sees the reset before the Read is issued it takes the socket's error,
// leaving the Read an end of stream; a Read already waiting, or issued
// first, gets WSAECONNRESET. Which comes first is a race (measured: a Read
// issued as the resetting Close returned got EOF 1,199 times in 1,200 on a
// loaded machine, WSAECONNRESET once), so no single Read can tell: Wine is
// recognised by the export its ntdll.dll has and Windows' lacks. Elsewhere
// one Read after a reset decides.
func ResetReadsAsEOF() string {
	eofOnce.Do(func() {
		if UnderWine() {
			eofWhy = "a Read after the peer's reset may return EOF under Wine, not WSAECONNRESET: a reset cannot be told from a FIN by reading"
			return
		}
		client, server, err := loopback()
		if err != nil {
			return // the tests that need a reset will say why
		}
		defer client.Close()
		server.(*net.TCPConn).SetLinger(0)
		server.Close()
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := client.Read(make([]byte, 1)); err == io.EOF {
			eofWhy = "a Read after the peer's reset returns EOF here, not WSAECONNRESET: a reset cannot be told from a FIN by reading"
		}
	})
	return eofWhy
}

// UnderWine reports whether this process runs under Wine, whose ntdll.dll
// exports wine_get_version.
func UnderWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// NoUnixSockets returns why a unix socket cannot be made here (Wine has
// no AF_UNIX), or "" where it can (Windows 10 1803 and later).
func NoUnixSockets() string {
	unixOnce.Do(func() {
		dir, err := os.MkdirTemp("", "platformtest")
		if err != nil {
			unixWhy = "no directory to try a unix socket in: " + err.Error()
			return
		}
		defer os.Remove(dir)
		ln, err := net.Listen("unix", filepath.Join(dir, "s"))
		if err != nil {
			unixWhy = "no unix sockets here (" + err.Error() + "; Windows before 10 1803, or Wine)"
			return
		}
		ln.Close()
		os.Remove(filepath.Join(dir, "s"))
	})
	return unixWhy
}

// loopback returns both ends of a new TCP connection on 127.0.0.1.
func loopback() (client, server net.Conn, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, server, nil
}
