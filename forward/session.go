package forward

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sync"
	"time"

	"github.com/reconn/reconn/internal/proto"
)

// protocol starts Forward sessions for a Conn.
type protocol struct {
	tag          []byte // the tag, encoded as a str
	window       int    // records
	batchRecords int
	maxEntry     int
	ackTimeout   time.Duration
	auth         *auth    // nil without a shared key
	gz           *gzipper // nil without Compress
	noAcks       bool     // DisableAcks

	firstOnce sync.Once
	first     chan error // the first dial attempt's end, for DialContext
}

func (p *protocol) MaxMessage() int { return p.maxEntry }

// KernelAcked: with DisableAcks, the server's kernel acknowledges.
func (p *protocol) KernelAcked() bool { return p.noAcks }

// Open starts a session on nc: with a shared key, after the handshake;
// without, at once, since Forward has no other greeting.
func (p *protocol) Open(ctx context.Context, nc net.Conn) (proto.Session, error) {
	if p.auth != nil {
		if err := p.auth.handshake(ctx, nc); err != nil {
			return nil, err
		}
	}
	return &session{p: p}, nil
}

// Dialed hands the end of the Conn's first dial attempt to DialContext.
func (p *protocol) Dialed(err error) {
	if p.first == nil {
		return
	}
	p.firstOnce.Do(func() { p.first <- err })
}

// A session sends PackedForward requests, each with a chunk id of its own,
// and takes the server's {"ack": id} answers, in any order.
//
// Append and Finish run on the Conn's writer; Run on a goroutine of its
// own. They share pending, under mu.
type session struct {
	p *protocol

	// The request being built (writer only): its bin32 length field is
	// at lenAt in the frames' buffer, its entries start at binStart.
	open            bool
	lenAt, binStart int
	count           int
	last            int64 // the session's number of its last record

	mu      sync.Mutex
	pending []request // sent, oldest first; acked ones leave from the front
}

// request is a request sent and not yet acknowledged with the records
// before it: last is the session's number of its last record.
type request struct {
	id    [chunkIDLen]byte
	last  int64
	sent  time.Time
	acked bool
}

// chunkIDLen is the length of a chunk id: base64 of 16 random bytes, as
// Fluentd makes them.
const chunkIDLen = 24

// Append appends the entry msg (a record the Conn encoded at Write) to
// the request being built, starting one if none is: [tag, bin, option]
// with a bin32 length that Finish fills in.
func (s *session) Append(dst []byte, n int64, msg []byte) []byte {
	if !s.open {
		dst = appendArrayHeader(dst, 3)
		dst = append(dst, s.p.tag...)
		dst = append(dst, 0xc6, 0, 0, 0, 0)
		s.open, s.lenAt, s.binStart, s.count = true, len(dst)-4, len(dst), 0
	}
	dst = append(dst, msg...)
	s.count++
	s.last = n
	if s.count >= s.p.batchRecords {
		dst = s.Finish(dst)
	}
	return dst
}

// Finish ends the request being built: the entries' length, and the option
// {"chunk": id, "size": records}, without the chunk with DisableAcks.
func (s *session) Finish(dst []byte) []byte {
	if !s.open {
		return dst
	}
	s.open = false
	options := 2
	if s.p.noAcks {
		options--
	}
	if s.p.gz != nil {
		dst = append(dst[:s.binStart], s.p.gz.compress(dst[s.binStart:])...)
		options++
	}
	binary.BigEndian.PutUint32(dst[s.lenAt:], uint32(len(dst)-s.binStart))
	dst = appendMapHeader(dst, options)
	if !s.p.noAcks {
		r := request{last: s.last, sent: time.Now()}
		newChunkID(&r.id)
		dst = appendStr(dst, "chunk")
		dst = appendStr(dst, r.id[:])
		s.mu.Lock()
		s.pending = append(s.pending, r)
		s.mu.Unlock()
	}
	dst = appendStr(dst, "size")
	dst = appendUint(dst, uint64(s.count))
	if s.p.gz != nil {
		dst = appendStr(dst, "compressed")
		dst = appendStr(dst, "gzip")
	}
	return dst
}

// A gzipper compresses the records of a request. The Conn's sessions
// share one: only Finish uses it, and the Conn's writer serializes every
// session's Append and Finish.
type gzipper struct {
	w   *gzip.Writer
	out bytes.Buffer
}

// compress returns b gzip-compressed, in a buffer that the next call
// reuses.
func (z *gzipper) compress(b []byte) []byte {
	z.out.Reset()
	if z.w == nil {
		z.w, _ = gzip.NewWriterLevel(&z.out, gzip.BestSpeed) // a valid level
	} else {
		z.w.Reset(&z.out)
	}
	z.w.Write(b) // into a bytes.Buffer: never fails
	z.w.Close()
	return z.out.Bytes()
}

// newChunkID fills id with base64 of 16 random bytes.
func newChunkID(id *[chunkIDLen]byte) {
	var raw [16]byte
	rand.Read(raw[:]) // never fails (crypto/rand)
	base64.StdEncoding.Encode(id[:], raw[:])
}

// Window is the Dialer's; with DisableAcks, the core does not use it.
func (s *session) Window() int { return s.p.window }

// Limit: a session may carry any number of records.
func (s *session) Limit() int64 { return math.MaxInt64 / 2 }

// Close adds nothing: Forward has no command that ends a session, and the
// Conn has waited for the acks it wanted before.
func (s *session) Close(ctx context.Context, nc net.Conn, n int64) error { return nil }

// ErrAckTimeout is the cause of a session's end when a request waited
// longer than Dialer.AckTimeout for its ack: the Conn redials and sends
// again what was not acknowledged.
var ErrAckTimeout = errors.New("forward: no ack within the ack timeout")

// Run reads the server's acks until the connection ends. An ack covers
// its request alone; once every request up to one is acknowledged, its
// records count as delivered. An ack for no request sent, anything that is
// not an ack, or a request unanswered for AckTimeout ends the session.
func (s *session) Run(nc net.Conn, acked func(int64), refused func(int64, error)) error {
	r := answerReader{nc: nc}
	if s.p.noAcks {
		// Nothing is due: read only to find the end of the connection.
		if _, err := r.next(); err != nil {
			return err
		}
		return fmt.Errorf("%w: an answer, and DisableAcks asked for none", errMalformed)
	}
	for {
		nc.SetReadDeadline(s.due())
		v, err := r.next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if s.overdue() {
				return ErrAckTimeout
			}
			continue // a request sent since; what was read stays
		}
		if err != nil {
			return err
		}
		id, _, err := parseAck(v)
		if err != nil {
			if _, herr := command(v, "HELO", 2); herr == nil {
				return fmt.Errorf("%w: the server asks for the shared-key handshake (HELO), and Dialer.SharedKey is empty", ErrAuthFailed)
			}
			return err
		}
		last, err := s.ack(id)
		if err != nil {
			return err
		}
		if last > 0 {
			acked(last)
		}
	}
}

// ack marks the request id acknowledged, and returns the number of the
// last record of the requests now acknowledged from the oldest on, or 0
// if the oldest is still waiting.
func (s *session) ack(id []byte) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < len(s.pending) && string(s.pending[i].id[:]) != string(id) {
		i++
	}
	if i == len(s.pending) || s.pending[i].acked {
		return 0, fmt.Errorf("%w: an ack for no request waiting (%q)", errMalformed, id)
	}
	s.pending[i].acked = true
	k := 0
	for k < len(s.pending) && s.pending[k].acked {
		k++
	}
	if k == 0 {
		return 0, nil
	}
	last := s.pending[k-1].last
	s.pending = append(s.pending[:0], s.pending[k:]...)
	return last, nil
}

// due is when the oldest request waiting must have its ack; with none
// waiting, one AckTimeout from now, when Run looks again.
func (s *session) due() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.pending {
		if !r.acked {
			return r.sent.Add(s.p.ackTimeout)
		}
	}
	return time.Now().Add(s.p.ackTimeout)
}

// overdue reports whether a request has waited for its ack longer than
// AckTimeout.
func (s *session) overdue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.pending {
		if !r.acked {
			return time.Since(r.sent) >= s.p.ackTimeout
		}
	}
	return false
}
