package reconn

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ringModel is what a ring must behave like, written as plainly as
// possible: a slice of messages, each with its bytes and the link offset
// at which the current link carried its last byte (notOnLink if it did
// not), and the stream offsets of the first held byte and of the first
// byte not yet written on the current link.
type ringModel struct {
	msgs  []modelMsg
	ms    int   // messages from the first written on the current link
	start int64 // stream offset of the first held byte
	sent  int64 // stream offset after the last byte written on the current link
	link  int64 // bytes the current link carried
	max   int64
}

type modelMsg struct {
	data    []byte
	end     int64 // stream offset after it
	linkEnd int64
}

func (m *ringModel) end() int64 {
	if len(m.msgs) == 0 {
		return m.start
	}
	return m.msgs[len(m.msgs)-1].end
}

// push appends a message of data, carried up to linkEnd.
func (m *ringModel) push(data []byte, linkEnd int64) {
	m.msgs = append(m.msgs, modelMsg{data, m.end() + int64(len(data)), linkEnd})
}

func (m *ringModel) usage() int64 {
	return m.end() - m.start + int64(len(m.msgs))*heldSize
}

func (m *ringModel) fits(n int) bool { return m.usage()+int64(n)+heldSize <= m.max }

// ends returns the stream offset after message i; ends(-1) is start.
func (m *ringModel) ends(i int) int64 {
	if i < 0 {
		return m.start
	}
	return m.msgs[i].end
}

func (m *ringModel) drop(k int) (int, int64) {
	n := m.ends(k-1) - m.start
	m.msgs = m.msgs[k:]
	m.start += n
	m.ms -= k
	return k, n
}

// FuzzRing drives a ring and its model with the same operations, drawn
// from the input, and compares them after each: the held messages, their
// bytes and link offsets, the counts, and what is left to write. The
// bound and the distance at which the ring moves its backlog to the front
// are small, so that growth, wrapping, eviction and rebasing all happen.
func FuzzRing(f *testing.F) {
	f.Add([]byte{0, 10, 0, 200, 3, 0, 1, 50, 2, 255, 3, 1, 5, 4, 3, 0})
	f.Add(bytes.Repeat([]byte{0, 180, 0, 90, 3, 2}, 40))
	f.Add(bytes.Repeat([]byte{1, 120, 2, 77, 3, 9, 6, 2, 1}, 30))
	f.Add(bytes.Repeat([]byte{0, 250, 1, 250, 2, 100, 4, 200, 5, 0}, 25))
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 1))
		in := make([]byte, 4000)
		for i := range in {
			in[i] = byte(rng.Uint32())
		}
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 6 << 10
		var r ring
		r.init(max)
		r.far = 512
		m := &ringModel{max: max}
		next := func() int {
			if len(in) == 0 {
				return 0
			}
			b := in[0]
			in = in[1:]
			return int(b)
		}
		var seq byte
		message := func(n int) []byte {
			b := make([]byte, n)
			for i := range b {
				seq++
				b[i] = seq
			}
			return b
		}
		for step := 0; len(in) > 0; step++ {
			op := next() % 8
			arg := next()
			var what string
			switch op {
			case 0: // a synchronous Write: everything held is on the link
				n := 1 + arg
				if r.sent != r.end || !r.fits(n) {
					continue
				}
				b := message(n)
				m.link += int64(n)
				r.push(b, m.link)
				m.push(b, m.link)
				m.ms, m.sent = len(m.msgs), m.end()
				what = fmt.Sprintf("push %d", n)
			case 1: // an Async Write: held, not yet written
				n := 1 + arg
				if !r.fits(n) {
					continue
				}
				b := message(n)
				r.add(b, notOnLink)
				m.push(b, notOnLink)
				what = fmt.Sprintf("add %d", n)
			case 2: // a write of part of what is not yet on the link
				left := int(m.end() - m.sent)
				n := min(arg*7, left)
				s := r.toWrite(n)
				if int64(len(s)) < int64(n) {
					n = len(s) // the buffer wraps: one contiguous run at a time
				}
				// With an odd arg the link adds bytes of its own, as TLS
				// records do: a message then ends where the write that
				// carried its last byte left the link's count.
				exact := arg%2 == 0
				before, after := m.link, m.link+int64(n)
				if !exact {
					after += 5
				}
				r.advance(n, before, after, exact)
				from := m.sent
				m.sent += int64(n)
				m.link = after
				for m.ms < len(m.msgs) && m.ends(m.ms) <= m.sent {
					m.msgs[m.ms].linkEnd = after
					if exact {
						m.msgs[m.ms].linkEnd = before + (m.ends(m.ms) - from)
					}
					m.ms++
				}
				what = fmt.Sprintf("advance %d (exact %v)", n, exact)
			case 3: // the peer's kernel acknowledged up to some offset
				acked := m.link - int64(arg)
				k, n := r.trim(acked)
				j := 0
				for j < m.ms && m.msgs[j].linkEnd <= acked {
					j++
				}
				mk, mn := m.drop(j)
				if k != mk || n != mn {
					t.Fatalf("step %d: trim(%d) = %d, %d; model %d, %d", step, acked, k, n, mk, mn)
				}
				what = fmt.Sprintf("trim %d", acked)
			case 4: // no acknowledgement count: the oldest make room
				n := 1 + arg
				k, b := r.evict(n)
				j := 0
				for j < m.ms && !m.fitsAfter(j, n) {
					j++
				}
				mk, mb := m.drop(j)
				if k != mk || b != mb {
					t.Fatalf("step %d: evict(%d) = %d, %d; model %d, %d", step, n, k, b, mk, mb)
				}
				what = fmt.Sprintf("evict %d", n)
			case 5: // a redial: everything held goes again on a new link
				r.unlink()
				for i := range m.msgs {
					m.msgs[i].linkEnd = notOnLink
				}
				m.ms, m.sent, m.link = 0, m.start, 0
				what = "unlink"
			case 6: // a session carried the next messages, numbered from first
				k := min(arg%4, len(m.msgs)-m.ms)
				if m.sent != m.ends(m.ms-1) {
					continue // part of a message is on the link: sessions frame whole ones
				}
				first := m.link + 1
				r.carried(k, first)
				for j := range k {
					m.msgs[m.ms].linkEnd = first + int64(j)
					m.ms++
				}
				m.link += int64(k)
				if m.ms > 0 {
					m.sent = m.ends(m.ms - 1)
				}
				what = fmt.Sprintf("carried %d", k)
			case 7: // a look at what is confirmed up to an offset
				off := m.start + int64(arg*11)
				k, n := r.upTo(off)
				mk, mn := 0, int64(0)
				for mk < len(m.msgs) && m.ends(mk) <= off {
					mk++
				}
				if mk > 0 {
					mn = m.ends(mk-1) - m.start
				}
				if k != mk || n != mn {
					t.Fatalf("step %d: upTo(%d) = %d, %d; model %d, %d", step, off, k, n, mk, mn)
				}
				continue
			}
			compare(t, step, what, &r, m)
		}
	})
}

// fitsAfter reports whether a message of n bytes fits once the first j
// messages are dropped.
func (m *ringModel) fitsAfter(j, n int) bool {
	u := m.usage() - (m.ends(j-1) - m.start) - int64(j)*heldSize
	return u+int64(n)+heldSize <= m.max
}

// compare fails t if r differs from m.
func compare(t *testing.T, step int, what string, r *ring, m *ringModel) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d (%s): %s", step, what, fmt.Sprintf(format, args...))
	}
	if r.mn != len(m.msgs) || r.ms != m.ms {
		fail("ring holds %d messages, %d on the link; model %d, %d", r.mn, r.ms, len(m.msgs), m.ms)
	}
	if r.start != m.start || r.end != m.end() || r.sent != m.sent {
		fail("ring [start %d, sent %d, end %d]; model [%d, %d, %d]", r.start, r.sent, r.end, m.start, m.sent, m.end())
	}
	if r.usage() > r.max {
		fail("usage %d over the bound %d", r.usage(), r.max)
	}
	for i, msg := range m.msgs {
		a, b := r.message(i)
		if len(a)+len(b) != len(msg.data) || !bytes.Equal(a, msg.data[:len(a)]) || !bytes.Equal(b, msg.data[len(a):]) {
			fail("message %d = % x % x; want % x", i, a, b, msg.data)
		}
		if le := r.at(i).linkEnd; le != msg.linkEnd {
			fail("message %d linkEnd %d; want %d", i, le, msg.linkEnd)
		}
	}
	// The unsent bytes: the model's, message by message from the one
	// holding offset sent, against the ring's spans.
	i, off := 0, m.start
	for i < len(m.msgs) && m.msgs[i].end <= m.sent {
		off = m.msgs[i].end
		i++
	}
	var want []byte
	if i < len(m.msgs) {
		want = m.msgs[i].data[m.sent-off:]
	}
	for o := r.sent; o < r.end; {
		s := r.span(o, math.MaxInt)
		if len(s) == 0 {
			fail("no bytes at stream offset %d below end %d", o, r.end)
		}
		for len(s) > 0 {
			for len(want) == 0 && i+1 < len(m.msgs) {
				i++
				want = m.msgs[i].data
			}
			n := min(len(s), len(want))
			if n == 0 {
				fail("ring holds unsent bytes past the model's end %d", m.end())
			}
			if !bytes.Equal(s[:n], want[:n]) {
				fail("unsent bytes at stream offset %d differ", o)
			}
			s, want, o = s[n:], want[n:], o+int64(n)
		}
	}
	if len(want) > 0 || i+1 < len(m.msgs) {
		fail("ring's unsent bytes end at %d; model's at %d", r.end, m.end())
	}
}
