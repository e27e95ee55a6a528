//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package sock

import "sync"

// One private kernel event queue per process (epoll on Linux,
// watch_linux.go; kqueue on darwin and the BSDs, watch_kqueue.go) watches
// every watched socket for the peer's FIN, a reset or a timeout. Data from
// the peer raises no event. One goroutine waits on the queue and calls
// the notify function of each socket it reports. The queue is separate
// from Go's own poller and does not disturb it. The goroutine starts with
// the first watched socket and ends, and is waited for, when the last one
// is unwatched.
//
// Sockets are known to the queue by descriptor. A descriptor is removed
// from the queue before it is closed, under watcher.mu, so an event read
// just before that can at worst notify a later socket that reused the
// number: a spurious notification only costs that socket one check.

// WatchSupported reports whether Watch can work on this platform.
const WatchSupported = true

var watcher struct {
	mu     sync.Mutex
	q      *eventQueue // nil when no socket is watched
	done   chan struct{}
	probes map[int]*Probe // by descriptor
}

// Watch registers p's socket with the process's event queue: once its
// peer's FIN, a reset or a timeout reaches the socket, the queue's
// goroutine calls notify, which must not block. It reports false if the
// socket cannot be watched. Call Unwatch before the socket is closed.
func (p *Probe) Watch(notify func()) bool {
	if p.raw == nil {
		return false
	}
	w := &watcher
	w.mu.Lock()
	if w.q == nil && !startWatcher() {
		w.mu.Unlock()
		return false
	}
	fd := -1
	err := p.Control(func(s uintptr) error {
		fd = int(s)
		return w.q.add(fd)
	})
	if err != nil || fd < 0 {
		if len(w.probes) == 0 {
			done := stopWatcherLocked()
			w.mu.Unlock()
			<-done
			return false
		}
		w.mu.Unlock()
		return false
	}
	p.notify = notify
	w.probes[fd] = p
	p.watchFD = fd
	w.mu.Unlock()
	return true
}

// Unwatch removes p's socket from the queue, if Watch registered it. The
// last one stops the goroutine and waits for it.
func (p *Probe) Unwatch() {
	if p.watchFD < 0 {
		return
	}
	w := &watcher
	w.mu.Lock()
	// A descriptor already closed may have been reused by another watched
	// socket: leave its entry, and remove the number from the queue only
	// through the socket (a closed one's close removed it already).
	if w.probes[p.watchFD] == p {
		delete(w.probes, p.watchFD)
	}
	p.Control(func(uintptr) error {
		w.q.del(p.watchFD)
		return nil
	})
	p.watchFD = -1
	if len(w.probes) > 0 {
		w.mu.Unlock()
		return
	}
	done := stopWatcherLocked()
	w.mu.Unlock()
	<-done
}

// startWatcher opens the queue and starts its goroutine. watcher.mu is
// held.
func startWatcher() bool {
	w := &watcher
	q, err := openQueue()
	if err != nil {
		return false
	}
	w.q = q
	w.done = make(chan struct{})
	w.probes = make(map[int]*Probe)
	go watchLoop(q, w.done)
	return true
}

// stopWatcherLocked tells the goroutine to exit and returns the channel
// closed when it has. watcher.mu is held.
func stopWatcherLocked() chan struct{} {
	w := &watcher
	w.q.wake()
	done := w.done
	w.q, w.done, w.probes = nil, nil, nil
	return done
}

// watchLoop notifies the sockets the queue reports, until woken to exit.
func watchLoop(q *eventQueue, done chan struct{}) {
	defer func() {
		q.close()
		close(done)
	}()
	var fds [64]int
	for {
		n, stop, err := q.wait(fds[:])
		if stop || err != nil {
			return
		}
		w := &watcher
		var notify [len(fds)]func()
		k := 0
		w.mu.Lock()
		for _, fd := range fds[:n] {
			if p := w.probes[fd]; p != nil {
				notify[k] = p.notify
				k++
			}
		}
		w.mu.Unlock()
		for _, f := range notify[:k] {
			f()
		}
	}
}
