//go:build unix && !linux && !darwin && !freebsd

package sock

import "time"

// On the other unix systems (NetBSD, OpenBSD, DragonFly, illumos, Solaris,
// AIX) a probe only peeks: there is neither a state nor an acknowledgement
// count.

type sysProbe struct {
	peek [1]byte
}

func (p *Probe) sense(fd uintptr) {
	if p.op&(Peek|State|Acks) != 0 {
		p.out.Health, _ = p.peek(fd)
	}
}

// setUserTimeout does nothing: these systems have no per-socket user
// timeout. Keepalive still finds a dead idle peer.
func setUserTimeout(fd uintptr, d time.Duration) error { return nil }
