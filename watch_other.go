//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package reconn

// CheckWatch needs epoll or kqueue; elsewhere it falls back to the
// platform's check before each Write.

const watchSupported = false

func (l *link) watch() bool { return false }

func (l *link) unwatch() {}
