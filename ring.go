package reconn

import (
	"math"
	"sort"
	"unsafe"
)

// ring holds the messages written but not yet known to be acknowledged by
// the peer, in the order written. Bytes live in a power-of-two byte ring
// addressed by stream offset; message boundaries live in a second ring.
// Both grow by doubling up to the bound and are then reused, so a steady
// stream allocates nothing.
//
// Stream offsets only grow. The held bytes are [start, end); of those,
// [start, sent) have been written on the current link and [sent, end)
// not yet: after a redial, unlink moves sent back to start so that
// everything held is written again.
//
// The byte at stream offset o lives at (o-base) modulo the buffer's
// length. A healthy link holds little at a time, but the buffer keeps the
// size of the largest backlog it ever held (ReplayBuffer, after an
// outage), and a copy into memory that was last touched a buffer's length
// ago misses every cache: for 4 KiB Writes that cost 10 to 15% of a TCP
// write. So when a trim leaves a small backlog far into the buffer,
// rebase moves it to the front, and Writes go on copying into the same
// few hundred KiB.
type ring struct {
	buf    []byte
	msgs   []held
	mh, mn int   // index of the oldest held message; number held
	ms     int   // number of held messages, from the oldest, written on the current link
	start  int64 // stream offset of the oldest held byte
	sent   int64 // stream offset after the last byte written on the current link
	hw     int64 // stream offset after the last byte ever written, on any link
	end    int64 // stream offset after the newest held byte
	max    int64 // bound on held bytes plus heldSize per message
	mark   int64 // usage at which to ask for acknowledgements; at most max
	base   int64 // the stream offset whose byte is at buf[0]
	far    int64 // rebase moves a backlog that starts this far into buf
}

// trimEvery is how much a synchronous Write adds to the ring, at most,
// between two looks at acknowledgements; rebaseAt is how far into the
// buffer a backlog must start before rebase moves it to the front.
const (
	trimEvery = 256 << 10
	rebaseAt  = 128 << 10
)

// init readies an empty ring that holds at most max bytes (see usage).
func (r *ring) init(max int64) {
	r.max, r.mark, r.far = max, max/2, rebaseAt
}

// held is one message's bookkeeping.
type held struct {
	end     int64 // stream offset after the message
	linkEnd int64 // the link's byte count once the whole message was written on it
}

// heldSize is what each held message costs beyond its bytes.
const heldSize = int64(unsafe.Sizeof(held{}))

// notOnLink marks a message not yet written on the current link.
const notOnLink = math.MaxInt64

// usage is what the held messages count against the bound.
func (r *ring) usage() int64 { return r.end - r.start + int64(r.mn)*heldSize }

// fits reports whether a message of n bytes can be held now.
func (r *ring) fits(n int) bool { return r.usage()+int64(n)+heldSize <= r.max }

// below reports whether a message of n bytes can be held and leaves the
// ring below its mark, and everything held is written on the current
// link: what a synchronous Write needs to know to go on without asking
// for acknowledgements.
func (r *ring) below(n int) bool {
	return r.sent == r.end && r.usage()+int64(n)+heldSize < r.mark
}

// remark sets the mark above the usage, after acknowledgements were asked
// for: an eighth of the bound above, or trimEvery if that is less.
func (r *ring) remark() { r.mark = min(r.usage()+min(r.max/8, trimEvery), r.max) }

// pos returns where the byte at stream offset o lives in buf.
func (r *ring) pos(o int64) int64 { return (o - r.base) & int64(len(r.buf)-1) }

// rebase moves the held bytes to the front of the buffer if they are few
// and start far into it, so that the next copies go to memory touched
// recently (see ring).
func (r *ring) rebase() {
	n, p := r.end-r.start, r.pos(r.start)
	if p < r.far || n > p || p+n > int64(len(r.buf)) {
		return // near the front already, or too much to move, or wrapped
	}
	copy(r.buf[:n], r.buf[p:p+n])
	r.base = r.start
}

// push appends a message of b that is already written on the current
// link, which then counted linkEnd bytes. Every message before it must be
// written on that link too: push is for the synchronous mode, where a
// Write writes on a link only after replay put everything held on it.
// The caller has checked fits.
func (r *ring) push(b []byte, linkEnd int64) {
	r.add(b, linkEnd)
	r.sent, r.hw = r.end, r.end
	r.ms = r.mn
}

// add appends a message, written on the current link up to linkEnd or
// not at all (notOnLink).
func (r *ring) add(b []byte, linkEnd int64) {
	if r.end-r.start+int64(len(b)) > int64(len(r.buf)) || r.mn == len(r.msgs) {
		r.grow(len(b))
	}
	p := r.pos(r.end)
	if k := copy(r.buf[p:], b); k < len(b) {
		copy(r.buf, b[k:])
	}
	r.end += int64(len(b))
	r.msgs[(r.mh+r.mn)&(len(r.msgs)-1)] = held{end: r.end, linkEnd: linkEnd}
	r.mn++
}

// grow makes room for one more message of n bytes.
func (r *ring) grow(n int) {
	if need := r.end - r.start + int64(n); need > int64(len(r.buf)) {
		r.growBytes(need)
	}
	if r.mn == len(r.msgs) {
		r.growMsgs()
	}
}

// trim drops the oldest messages whose every byte the current link's peer
// has acknowledged (linkEnd <= acked). It returns how many messages and
// bytes it dropped. The messages on the current link end in order, so
// they are found by bisection: a trim costs no more for many messages.
func (r *ring) trim(acked int64) (int, int64) {
	k := sort.Search(r.ms, func(i int) bool { return r.at(i).linkEnd > acked })
	if k == 0 {
		return 0, 0
	}
	from := r.start
	r.start = r.at(k - 1).end
	r.mh = (r.mh + k) & (len(r.msgs) - 1)
	r.mn -= k
	r.ms -= k
	if r.mn == 0 {
		r.mh = 0
	}
	r.rebase()
	return k, r.start - from
}

// evict drops the oldest messages until one of n bytes fits, and returns
// how many messages and bytes it dropped. It serves links with no
// acknowledgement count, whose messages are assumed delivered once they
// are this old.
func (r *ring) evict(n int) (int, int64) {
	k, from := 0, r.start
	mask := len(r.msgs) - 1
	for r.ms > 0 && !r.fits(n) {
		r.start = r.msgs[r.mh].end
		r.mh = (r.mh + 1) & mask
		r.mn--
		r.ms--
		k++
	}
	return k, r.start - from
}

// unlink marks every held message as not yet written on the current link,
// before a new link receives them again.
func (r *ring) unlink() {
	for i := 0; i < r.ms; i++ {
		r.at(i).linkEnd = notOnLink
	}
	r.ms = 0
	r.sent = r.start
}

// toWrite returns the longest contiguous run of held bytes not yet written
// on the current link, at most limit bytes long.
func (r *ring) toWrite(limit int) []byte { return r.span(r.sent, limit) }

// advance records that the n bytes after sent were written on the current
// link. before is the link's byte count before that write and after its
// count after it. Each message now complete on the link gets its linkEnd:
// its exact offset where link bytes map one to one to stream bytes
// (exact), else after, the count once the write carrying its last byte
// was made, as under TLS, whose records add bytes.
func (r *ring) advance(n int, before, after int64, exact bool) {
	from := r.sent
	r.sent += int64(n)
	r.hw = max(r.hw, r.sent)
	for r.ms < r.mn {
		m := r.at(r.ms)
		if m.end > r.sent {
			break
		}
		if exact {
			m.linkEnd = before + (m.end - from)
		} else {
			m.linkEnd = after
		}
		r.ms++
	}
}

// message returns the bytes of the i-th held message (0 is the oldest):
// one span, or two where it wraps around the end of the buffer.
func (r *ring) message(i int) (a, b []byte) {
	from := r.start
	if i > 0 {
		from = r.at(i - 1).end
	}
	n := int(r.at(i).end - from)
	a = r.span(from, n)
	if len(a) < n {
		b = r.span(from+int64(len(a)), n-len(a))
	}
	return a, b
}

// carried records that the k held messages after the ms already on the
// current link were written on it, as its messages first, first+1, and so
// on: a protocol that frames each message counts messages, not bytes.
func (r *ring) carried(k int, first int64) {
	for j := 0; j < k; j++ {
		r.at(r.ms).linkEnd = first + int64(j)
		r.ms++
	}
	if r.ms > 0 {
		r.sent = r.at(r.ms - 1).end
	} else {
		r.sent = r.start
	}
	r.hw = max(r.hw, r.sent)
}

// upTo returns the number of held messages, and their bytes, that end at
// or before stream offset off.
func (r *ring) upTo(off int64) (int, int64) {
	k := 0
	for k < r.mn && r.at(k).end <= off {
		k++
	}
	if k == 0 {
		return 0, 0
	}
	return k, r.at(k-1).end - r.start
}

// at returns the i-th held message (0 is the oldest).
func (r *ring) at(i int) *held { return &r.msgs[(r.mh+i)&(len(r.msgs)-1)] }

// span returns the longest contiguous run of held bytes from stream offset
// from, at most limit bytes long.
func (r *ring) span(from int64, limit int) []byte {
	if from >= r.end {
		return nil
	}
	p := int(r.pos(from))
	n := r.end - from
	if n > int64(limit) {
		n = int64(limit)
	}
	if rest := int64(len(r.buf) - p); n > rest {
		n = rest
	}
	return r.buf[p : p+int(n)]
}

func (r *ring) growBytes(need int64) {
	size := int64(4096)
	for size < need {
		size *= 2
	}
	nb := make([]byte, size)
	for o := r.start; o < r.end; {
		s := r.span(o, math.MaxInt)
		put(nb, o-r.base, s)
		o += int64(len(s))
	}
	r.buf = nb
}

func (r *ring) growMsgs() {
	size := 64
	if len(r.msgs) > 0 {
		size = 2 * len(r.msgs)
	}
	nm := make([]held, size)
	for i := 0; i < r.mn; i++ {
		nm[i] = *r.at(i)
	}
	r.msgs, r.mh = nm, 0
}

// put copies b into the power-of-two ring buf at position off, taken
// modulo its length, wrapping at the end.
func put(buf []byte, off int64, b []byte) {
	n := copy(buf[off&int64(len(buf)-1):], b)
	copy(buf, b[n:])
}
