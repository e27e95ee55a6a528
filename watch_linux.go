package reconn

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// CheckWatch on Linux: one private epoll instance per process watches every
// watched socket for EPOLLRDHUP (the peer's FIN), EPOLLHUP and EPOLLERR (a
// reset or a timeout), edge-triggered, so data from the peer never wakes
// it. One goroutine waits in epoll_wait and raises the link's flag; Write
// only loads the flag. The instance is separate from Go's own poller and
// does not disturb it. The goroutine starts with the first watched socket
// and ends, and is waited for, when the last one is closed.

const watchSupported = true

var watcher struct {
	mu    sync.Mutex
	epfd  int
	evfd  int // wakes the goroutine to exit
	done  chan struct{}
	links map[uint64]*link
	next  uint64
}

const watchEvents = unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR | unix.EPOLLET

// watch registers l's socket. It reports false if the socket cannot be
// watched; the caller then falls back to a check before each Write.
func (l *link) watch() bool {
	w := &watcher
	w.mu.Lock()
	if w.done == nil && !startWatcher() {
		w.mu.Unlock()
		return false
	}
	w.next++
	tok := w.next
	err := l.p.control(func(fd uintptr) error {
		ev := unix.EpollEvent{Events: watchEvents}
		*(*uint64)(unsafe.Pointer(&ev.Fd)) = tok
		return unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil {
		if len(w.links) == 0 {
			done := stopWatcherLocked()
			w.mu.Unlock()
			<-done
			return false
		}
		w.mu.Unlock()
		return false
	}
	w.links[tok] = l
	l.watchTok = tok
	w.mu.Unlock()
	return true
}

// unwatch removes l's socket, before it is closed. The last one stops the
// goroutine and waits for it.
func (l *link) unwatch() {
	if l.watchTok == 0 {
		return
	}
	w := &watcher
	w.mu.Lock()
	delete(w.links, l.watchTok)
	l.watchTok = 0
	l.p.control(func(fd uintptr) error {
		return unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	if len(w.links) > 0 {
		w.mu.Unlock()
		return
	}
	done := stopWatcherLocked()
	w.mu.Unlock()
	<-done
}

// startWatcher creates the epoll instance and its goroutine. watcher.mu is
// held.
func startWatcher() bool {
	w := &watcher
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return false
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // token 0
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return false
	}
	w.epfd, w.evfd = epfd, evfd
	w.done = make(chan struct{})
	w.links = make(map[uint64]*link)
	go watchLoop(epfd, evfd, w.done)
	return true
}

// stopWatcherLocked tells the goroutine to exit and returns the channel
// closed when it has. watcher.mu is held.
func stopWatcherLocked() chan struct{} {
	w := &watcher
	var one [8]byte
	one[0] = 1
	unix.Write(w.evfd, one[:])
	done := w.done
	w.done, w.links = nil, nil
	return done
}

func watchLoop(epfd, evfd int, done chan struct{}) {
	defer func() {
		unix.Close(evfd)
		unix.Close(epfd)
		close(done)
	}()
	var events [64]unix.EpollEvent
	for {
		n, err := unix.EpollWait(epfd, events[:], -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		w := &watcher
		var flagged [len(events)]*link
		k := 0
		w.mu.Lock()
		for i := range events[:n] {
			tok := *(*uint64)(unsafe.Pointer(&events[i].Fd))
			if tok == 0 {
				w.mu.Unlock()
				return
			}
			if l := w.links[tok]; l != nil {
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
