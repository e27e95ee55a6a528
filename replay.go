package reconn

import (
	"math"
	"unsafe"
)

// ring holds the messages written but not yet known to be acknowledged by
// the peer's kernel, in the order written. Bytes live in a power-of-two
// byte ring addressed by stream offset; message boundaries live in a second
// ring. Both grow by doubling up to the bound and are then reused, so a
// steady stream allocates nothing.
type ring struct {
	buf    []byte
	msgs   []held
	mh, mn int   // index of the oldest held message; number held
	start  int64 // stream offset of the oldest held byte
	end    int64 // stream offset after the newest held byte
	max    int64 // bound on held bytes plus heldSize per message
}

// held is one message's bookkeeping.
type held struct {
	end     int64 // stream offset after the message
	linkEnd int64 // link byte count once the message was written on the current link
}

// heldSize is what each held message costs beyond its bytes.
const heldSize = int64(unsafe.Sizeof(held{}))

// notOnLink marks a message not yet written on the current link.
const notOnLink = math.MaxInt64

// usage is what the held messages count against the bound.
func (r *ring) usage() int64 { return r.end - r.start + int64(r.mn)*heldSize }

// fits reports whether a message of n bytes can be held now.
func (r *ring) fits(n int) bool { return r.usage()+int64(n)+heldSize <= r.max }

// push appends a message. The caller has checked fits.
func (r *ring) push(b []byte, linkEnd int64) {
	need := r.end - r.start + int64(len(b))
	if need > int64(len(r.buf)) {
		r.growBytes(need)
	}
	if r.mn == len(r.msgs) {
		r.growMsgs()
	}
	put(r.buf, r.end, b)
	r.end += int64(len(b))
	r.msgs[(r.mh+r.mn)&(len(r.msgs)-1)] = held{end: r.end, linkEnd: linkEnd}
	r.mn++
}

// trim drops the messages whose every byte the current link's peer has
// acknowledged (linkEnd <= acked). It returns how many it dropped.
func (r *ring) trim(acked int64) int {
	k := 0
	mask := len(r.msgs) - 1
	for r.mn > 0 {
		m := &r.msgs[r.mh]
		if m.linkEnd > acked {
			break
		}
		r.start = m.end
		r.mh = (r.mh + 1) & mask
		r.mn--
		k++
	}
	if r.mn == 0 {
		r.mh = 0
	}
	return k
}

// reset drops every held message.
func (r *ring) reset() {
	r.start, r.mh, r.mn = r.end, 0, 0
}

// unlink marks every held message as not yet written on the current link,
// before a new link replays them.
func (r *ring) unlink() {
	mask := len(r.msgs) - 1
	for i := 0; i < r.mn; i++ {
		r.msgs[(r.mh+i)&mask].linkEnd = notOnLink
	}
}

// at returns the i-th held message (0 is the oldest).
func (r *ring) at(i int) *held { return &r.msgs[(r.mh+i)&(len(r.msgs)-1)] }

// span returns the longest contiguous run of held bytes from stream offset
// from, at most limit bytes long.
func (r *ring) span(from int64, limit int) []byte {
	if from >= r.end {
		return nil
	}
	mask := int64(len(r.buf) - 1)
	p := int(from & mask)
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
	if len(r.buf) > 0 {
		for o := r.start; o < r.end; {
			s := r.span(o, math.MaxInt)
			put(nb, o, s)
			o += int64(len(s))
		}
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

// put copies b into the power-of-two ring buf at stream offset off,
// wrapping at the end.
func put(buf []byte, off int64, b []byte) {
	n := copy(buf[off&int64(len(buf)-1):], b)
	copy(buf, b[n:])
}

// evict drops the oldest messages until one of n bytes fits. It serves
// links with no acknowledgement count, whose messages are assumed
// delivered once they are this old.
func (r *ring) evict(n int) {
	mask := len(r.msgs) - 1
	for r.mn > 0 && !r.fits(n) {
		r.start = r.msgs[r.mh].end
		r.mh = (r.mh + 1) & mask
		r.mn--
	}
}
