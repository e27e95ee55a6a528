//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package reconn

import "sync"

// CheckWatch: one private kernel event queue per process (epoll on Linux,
// watch_linux.go; kqueue on darwin and the BSDs, watch_kqueue.go) watches
// every watched socket for the peer's FIN, a reset or a timeout. Data from
// the peer never raises the flag. One goroutine waits on the queue and
// raises the link's flag; Write only loads it. The queue is separate from
// Go's own poller and does not disturb it. The goroutine starts with the
// first watched socket and ends, and is waited for, when the last one is
// closed.
//
// Sockets are known to the queue by descriptor. A descriptor is removed
// from the queue before it is closed, under watcher.mu, so an event read
// just before that can at worst flag a later socket that reused the
// number: a spurious flag only costs that socket one check.

const watchSupported = true

var watcher struct {
	mu    sync.Mutex
	q     *eventQueue // nil when no socket is watched
	done  chan struct{}
	links map[int]*link // by descriptor
}

// watch registers l's socket. It reports false if the socket cannot be
// watched; the caller then falls back to a check before each Write.
func (l *link) watch() bool {
	w := &watcher
	w.mu.Lock()
	if w.q == nil && !startWatcher() {
		w.mu.Unlock()
		return false
	}
	fd := -1
	err := l.p.control(func(s uintptr) error {
		fd = int(s)
		return w.q.add(fd)
	})
	if err != nil || fd < 0 {
		if len(w.links) == 0 {
			done := stopWatcherLocked()
			w.mu.Unlock()
			<-done
			return false
		}
		w.mu.Unlock()
		return false
	}
	w.links[fd] = l
	l.watchFD = fd
	w.mu.Unlock()
	return true
}

// unwatch removes l's socket, before it is closed. The last one stops the
// goroutine and waits for it.
func (l *link) unwatch() {
	if l.watchFD < 0 {
		return
	}
	w := &watcher
	w.mu.Lock()
	// A descriptor already closed may have been reused by another watched
	// socket: leave its entry, and remove the number from the queue only
	// through the socket (a closed one's close removed it already).
	if w.links[l.watchFD] == l {
		delete(w.links, l.watchFD)
	}
	l.p.control(func(uintptr) error {
		w.q.del(l.watchFD)
		return nil
	})
	l.watchFD = -1
	if len(w.links) > 0 {
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
	w.links = make(map[int]*link)
	go watchLoop(q, w.done)
	return true
}

// stopWatcherLocked tells the goroutine to exit and returns the channel
// closed when it has. watcher.mu is held.
func stopWatcherLocked() chan struct{} {
	w := &watcher
	w.q.wake()
	done := w.done
	w.q, w.done, w.links = nil, nil, nil
	return done
}

// watchLoop flags the links whose sockets the queue reports, until woken
// to exit.
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
		var flagged [len(fds)]*link
		k := 0
		w.mu.Lock()
		for _, fd := range fds[:n] {
			if l := w.links[fd]; l != nil {
				l.flagged.Store(true)
				flagged[k] = l
				k++
			}
		}
		w.mu.Unlock()
		for _, l := range flagged[:k] {
			if c := l.owner.Load(); c != nil {
				c.heal(l)
			}
		}
	}
}
