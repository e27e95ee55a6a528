package sock

import (
	"net"
	"testing"
	"unsafe"
)

// TestTCPInfoLength checks that a struct tcp_info shorter than a field
// never yields that field: a kernel before 4.1 (or an emulator) that
// fills less than tcpi_bytes_acked gives no acknowledgement count, not a
// stale or zero one, and one that fills nothing gives no state.
func TestTCPInfoLength(t *testing.T) {
	var s sysProbe
	s.info.State = linuxEstablished
	s.info.Bytes_acked = 1001
	for _, tc := range []struct {
		n              uint32
		stateOK, ackOK bool
	}{
		{0, false, false},
		{4, true, false},
		{tcpInfoAckedEnd - 1, true, false},
		{tcpInfoAckedEnd, true, true},
		{uint32(unsafe.Sizeof(s.info)), true, true},
	} {
		state, stateOK, acked, ackOK := s.fields(tc.n)
		if stateOK != tc.stateOK || ackOK != tc.ackOK {
			t.Errorf("fields(%d): state ok %v, acked ok %v; want %v, %v", tc.n, stateOK, ackOK, tc.stateOK, tc.ackOK)
		}
		if stateOK && state != linuxEstablished {
			t.Errorf("fields(%d): state %d; want %d", tc.n, state, linuxEstablished)
		}
		if ackOK && acked != 1000 {
			t.Errorf("fields(%d): acked %d; want 1000 (the SYN counts one)", tc.n, acked)
		}
	}

	// This kernel fills the whole count, so the probe reports one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var p Probe
	p.Init(nc)
	var n uint32
	if err := p.Control(func(fd uintptr) error { n, _ = p.tcpInfo(fd); return nil }); err != nil {
		t.Fatal(err)
	}
	if n < tcpInfoAckedEnd {
		t.Fatalf("the kernel filled %d bytes of tcp_info; tcpi_bytes_acked ends at %d", n, tcpInfoAckedEnd)
	}
	if r, ok := p.Run(Acks, 0); !ok || !r.AckOK || r.Acked != 0 {
		t.Errorf("Run(Acks) = %+v, %v; want 0 bytes acknowledged, counted", r, ok)
	}
}
