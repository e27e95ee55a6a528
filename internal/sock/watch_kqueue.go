//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package sock

import "golang.org/x/sys/unix"

// The watch's queue on darwin and the BSDs: a kqueue with each socket
// registered for EVFILT_READ with EV_CLEAR (report each change once).
// kqueue(2) (darwin, FreeBSD): once the socket's read direction has shut
// down (the peer's FIN, or a reset or timeout, which end both directions)
// the filter sets EV_EOF in flags and the socket error, if any, in fflags;
// with NOTE_LOWAT in fflags and a mark in data it reports readable data
// only once that many bytes wait, so a peer that sends a little does not
// wake the goroutine. That mark only saves wake-ups: darwin caps it at the
// receive buffer's size, a system may ignore it, and an event for data
// (neither EV_EOF nor a zero byte count) notifies nothing. An event with no
// EOF and no byte waiting is a socket error without a shutdown (FreeBSD
// and OpenBSD report one that way): it notifies, and the check
// classifies it. A pipe's read end, registered the same way, wakes the
// goroutine to exit.

type eventQueue struct {
	kq     int
	pipe   [2]int            // wake writes to pipe[1]
	events [64]unix.Kevent_t // wait's buffer; only the watcher's goroutine uses it
	change [1]unix.Kevent_t  // add's and del's; used under watcher.mu
}

// lowWater is NOTE_LOWAT's mark: more than any receive buffer holds.
const lowWater = 1 << 30

func openQueue() (*eventQueue, error) {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, err
	}
	q := &eventQueue{kq: kq}
	unix.CloseOnExec(kq)
	if err := unix.Pipe(q.pipe[:]); err != nil {
		unix.Close(kq)
		return nil, err
	}
	for _, fd := range q.pipe {
		unix.CloseOnExec(fd)
	}
	if err := unix.SetNonblock(q.pipe[1], true); err == nil {
		err = q.add(q.pipe[0])
	}
	if err != nil {
		q.close()
		return nil, err
	}
	return q, nil
}

func (q *eventQueue) add(fd int) error {
	k := &q.change[0]
	*k = unix.Kevent_t{}
	unix.SetKevent(k, fd, unix.EVFILT_READ, unix.EV_ADD|unix.EV_CLEAR)
	k.Fflags = unix.NOTE_LOWAT
	k.Data = lowWater
	_, err := unix.Kevent(q.kq, q.change[:], nil, nil)
	return err
}

func (q *eventQueue) del(fd int) {
	k := &q.change[0]
	*k = unix.Kevent_t{}
	unix.SetKevent(k, fd, unix.EVFILT_READ, unix.EV_DELETE)
	unix.Kevent(q.kq, q.change[:], nil, nil)
}

// wake makes wait report stop.
func (q *eventQueue) wake() {
	unix.Write(q.pipe[1], []byte{1})
}

// wait blocks until events arrive and stores the descriptors to notify in
// fds. It reports stop once wake was called.
func (q *eventQueue) wait(fds []int) (n int, stop bool, err error) {
	for {
		m, err := unix.Kevent(q.kq, nil, q.events[:len(fds)], nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		for _, ev := range q.events[:m] {
			fd := int(ev.Ident)
			switch {
			case fd == q.pipe[0]:
				return 0, true, nil
			case ev.Flags&(unix.EV_EOF|unix.EV_ERROR) != 0 || ev.Data == 0:
				fds[n] = fd
				n++
			}
		}
		if n > 0 {
			return n, false, nil
		}
	}
}

func (q *eventQueue) close() {
	unix.Close(q.pipe[0])
	unix.Close(q.pipe[1])
	unix.Close(q.kq)
}
