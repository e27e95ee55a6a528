//go:build !linux

package reconn

// CheckWatch needs epoll; elsewhere it falls back to the platform's check
// before each Write.

const watchSupported = false

func (l *link) watch() bool { return false }

func (l *link) unwatch() {}
