//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package sock

// There is no event queue for sockets here (epoll or kqueue): Watch always
// reports false.

// WatchSupported reports whether Watch can work on this platform.
const WatchSupported = false

// Watch reports false: see WatchSupported.
func (p *Probe) Watch(notify func()) bool { return false }

// Unwatch does nothing.
func (p *Probe) Unwatch() {}
