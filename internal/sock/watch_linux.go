package sock

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// The watch's queue on Linux: an epoll instance with each socket
// registered for EPOLLRDHUP (the peer's FIN), EPOLLHUP and EPOLLERR (a
// reset or a timeout), edge-triggered and without EPOLLIN, so data from
// the peer never wakes it (epoll_ctl(2)). An eventfd, registered for
// EPOLLIN, wakes the goroutine to exit (eventfd(2)).

type eventQueue struct {
	epfd   int
	evfd   int
	events [64]unix.EpollEvent // wait's buffer; only the watcher's goroutine uses it
}

const watchEvents = unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR | unix.EPOLLET

func openQueue() (*eventQueue, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, err
	}
	return &eventQueue{epfd: epfd, evfd: evfd}, nil
}

func (q *eventQueue) add(fd int) error {
	ev := unix.EpollEvent{Events: watchEvents, Fd: int32(fd)}
	return unix.EpollCtl(q.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

func (q *eventQueue) del(fd int) {
	unix.EpollCtl(q.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// wake makes wait report stop.
func (q *eventQueue) wake() {
	var one [8]byte // eventfd(2) adds a native-endian uint64
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(q.evfd, one[:])
}

// wait blocks until events arrive and stores the descriptors to notify in
// fds. It reports stop once wake was called.
func (q *eventQueue) wait(fds []int) (n int, stop bool, err error) {
	for {
		m, err := unix.EpollWait(q.epfd, q.events[:len(fds)], -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		for _, ev := range q.events[:m] {
			if int(ev.Fd) == q.evfd {
				return 0, true, nil
			}
			fds[n] = int(ev.Fd)
			n++
		}
		return n, false, nil
	}
}

func (q *eventQueue) close() {
	unix.Close(q.evfd)
	unix.Close(q.epfd)
}
