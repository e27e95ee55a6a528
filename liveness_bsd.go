//go:build unix && !linux && !darwin && !freebsd

package reconn

import "time"

// On the other unix systems (NetBSD, OpenBSD, DragonFly, illumos, Solaris,
// AIX) the check is a peek, and there is no acknowledgement count: replay
// re-sends everything it holds.

const platformCheck = CheckPeek

type sysProbe struct {
	peek [1]byte
}

func (p *probe) sense(fd uintptr) {
	if p.op&(opPeek|opState|opAcks) != 0 {
		p.out.h, _ = p.peek(fd)
	}
}

// setUserTimeout does nothing: these systems have no per-socket user
// timeout. Keepalive still finds a dead idle peer.
func setUserTimeout(fd uintptr, d time.Duration) error { return nil }
