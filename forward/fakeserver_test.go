package forward

import (
	"bytes"
	"compress/gzip"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeServer is a Forward server for the tests. It decodes each request
// as strictly as the client decodes answers, and counts a record only
// when it acknowledges the request that carried it. Its options make it
// acknowledge out of order, never, or "crash": reset its connections,
// forget what it had not acknowledged, and listen again after a pause.
type fakeServer struct {
	t    testing.TB
	addr string
	key  string
	opt  fakeOptions

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]bool
	got      map[string]int // record text → times acknowledged
	tags     map[string]int
	requests int // requests decoded
	gzipped  int // of them, compressed
	acked    int // requests acknowledged
	crashes  int
	unread   map[string]bool // ackless: records the server's socket held unread at a crash
	inexact  bool            // ackless: a crash could not freeze the socket, so unread may miss some
	served   int             // connections served
	badSent  bool            // opt.answer was sent
	bad      []error         // requests that did not decode
	refused  []error         // handshakes the server refused
	changed  chan struct{}
	closed   bool
	wg       sync.WaitGroup
}

type fakeOptions struct {
	noAck       bool          // never acknowledge
	ackless     bool          // the client asks for no acks (DisableAcks): count each request as decoded
	reorder     bool          // acknowledge in groups of up to 4, last first
	crashEvery  int           // crash after about this many requests (random 1 to 2x); 0 never
	crashPause  time.Duration // before listening again
	answer      []byte        // if set, sent instead of the first ack
	silentFirst bool          // acknowledge nothing on the first connection
	tls         *tls.Config   // if set, serve over TLS

	// sharedKey, if set, makes each connection start with the handshake;
	// users, if not nil, makes it ask for a user and password too.
	// badProof makes it accept the client with a PONG whose digest is
	// not made with the key, as a server that does not hold it would.
	sharedKey string
	users     map[string]string
	badProof  bool
}

func newFakeServer(t testing.TB, key string, opt fakeOptions) *fakeServer {
	t.Helper()
	ln, err := listenFake("127.0.0.1:0", opt)
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, addr: ln.Addr().String(), key: key, opt: opt, ln: ln,
		conns: map[net.Conn]bool{}, got: map[string]int{}, tags: map[string]int{}, unread: map[string]bool{}, changed: make(chan struct{})}
	s.wg.Go(func() { s.accept(ln) })
	t.Cleanup(s.close)
	return s
}

// listenFake listens on addr, over TLS if opt says.
func listenFake(addr string, opt fakeOptions) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || opt.tls == nil {
		return ln, err
	}
	return tls.NewListener(ln, opt.tls), nil
}

// tcpOf returns the TCP connection beneath nc, or nil.
func tcpOf(nc net.Conn) *net.TCPConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	tcp, _ := nc.(*net.TCPConn)
	return tcp
}

func (s *fakeServer) accept(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[nc] = true
		s.mu.Unlock()
		s.wg.Go(func() { s.serve(nc) })
	}
}

// update changes the server's accounting under its lock and wakes wait.
func (s *fakeServer) update(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait waits until cond, called with the lock held, is true, or a minute.
func (s *fakeServer) wait(what string, cond func() bool) {
	s.t.Helper()
	timeout := time.After(time.Minute)
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			s.t.Fatalf("the server waited a minute for %s", what)
		}
	}
}

// decoded is one request as the server read it.
type decoded struct {
	tag     string
	records []string
	chunk   string
	gzipped bool // CompressedPackedForward
}

func (s *fakeServer) serve(nc net.Conn) {
	defer func() {
		nc.Close()
		s.update(func() { delete(s.conns, nc) })
	}()
	budget := 0
	if s.opt.crashEvery > 0 {
		budget = s.opt.crashEvery + rand.IntN(s.opt.crashEvery)
	}
	var held []decoded // taken, not acknowledged
	buf := make([]byte, 0, 256<<10)
	if s.opt.sharedKey != "" {
		rest, err := s.handshake(nc)
		if err != nil {
			s.update(func() { s.refused = append(s.refused, err) })
			return
		}
		buf = append(buf, rest...)
	}
	rd := make([]byte, 64<<10)
	s.mu.Lock()
	s.served++
	silent := s.opt.noAck || s.opt.silentFirst && s.served == 1
	s.mu.Unlock()
	for {
		k, err := nc.Read(rd)
		buf = append(buf, rd[:k]...)
		for {
			r, n, derr := decodeRequest(buf, s.key)
			if errors.Is(derr, errShort) {
				break
			}
			if derr != nil {
				s.update(func() { s.bad = append(s.bad, derr) })
				return
			}
			buf = append(buf[:0], buf[n:]...)
			if (r.chunk == "") != s.opt.ackless {
				s.update(func() {
					s.bad = append(s.bad, fmt.Errorf("request: chunk %q from a client that asks for acks: %v", r.chunk, !s.opt.ackless))
				})
				return
			}
			s.update(func() {
				s.requests++
				if r.gzipped {
					s.gzipped++
				}
				if s.opt.ackless {
					s.take(r)
				}
			})
			if !s.opt.ackless {
				held = append(held, r)
			}
			if budget > 0 {
				if budget--; budget == 0 {
					if s.opt.ackless {
						s.countUnread(nc, buf)
					}
					s.crash(nc)
					return
				}
			}
			if silent {
				continue
			}
			if s.opt.reorder && len(held) < 1+rand.IntN(4) {
				continue
			}
			if !s.ackHeld(nc, &held) {
				return
			}
		}
		// Nothing more read for now: what is held is answered, last first,
		// as a server answers what it has taken.
		if !silent && !s.ackHeld(nc, &held) {
			return
		}
		if err != nil {
			return
		}
	}
}

// ackHeld counts the records of the requests held and acknowledges them,
// the last first; it reports whether the connection is still good.
func (s *fakeServer) ackHeld(nc net.Conn, held *[]decoded) bool {
	for i := len(*held) - 1; i >= 0; i-- {
		r := (*held)[i]
		ans := appendMapHeader(nil, 1)
		ans = appendStr(ans, "ack")
		ans = appendStr(ans, r.chunk)
		s.mu.Lock()
		if !s.badSent && s.opt.answer != nil {
			ans, s.badSent = s.opt.answer, true
		}
		s.mu.Unlock()
		// Taken before the ack goes, as a server commits a request
		// before it acknowledges it: a client that has the ack finds
		// the records counted.
		s.update(func() {
			s.acked++
			s.take(r)
		})
		if _, err := nc.Write(ans); err != nil {
			return false
		}
	}
	*held = (*held)[:0]
	return true
}

// take counts the records of r as the server's. s.mu is held.
func (s *fakeServer) take(r decoded) {
	s.tags[r.tag]++
	for _, rec := range r.records {
		s.got[rec]++
	}
}

// countUnread records as unread, at a crash, the records of the whole
// requests that nc's socket and buf (read, not decoded) hold: the
// kernel acknowledged them and the server never took them. It first
// freezes the socket (sock.DropIncoming, Linux), so that the kernel
// acknowledges nothing more while the socket is read; where it cannot,
// the set may miss what arrived after the read.
func (s *fakeServer) countUnread(nc net.Conn, buf []byte) {
	rest, exact := unreadNow(nc)
	b := append(buf, rest...)
	s.update(func() {
		s.inexact = s.inexact || !exact
		for {
			r, n, err := decodeRequest(b, s.key)
			if err != nil {
				return // the end, or a request cut short: not acknowledged whole
			}
			for _, rec := range r.records {
				s.unread[rec] = true
			}
			b = b[n:]
		}
	})
}

// crash resets every connection, forgets what it had not acknowledged,
// stops listening, and listens again on the same address after the pause.
func (s *fakeServer) crash(cur net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.crashes++
	s.ln.Close()
	for nc := range s.conns {
		if tc := tcpOf(nc); tc != nil {
			tc.SetLinger(0)
			tc.Close() // a TLS close would send close_notify first
			continue
		}
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Go(func() {
		time.Sleep(s.opt.crashPause) // the crashed server's downtime
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		ln, err := listenFake(s.addr, s.opt)
		if err != nil {
			s.bad = append(s.bad, fmt.Errorf("listening again: %w", err))
			return
		}
		s.ln = ln
		s.wg.Go(func() { s.accept(ln) })
	})
}

func (s *fakeServer) close() {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, err := range s.bad {
		s.t.Errorf("fake server: %v", err)
	}
}

// decodeRequest decodes the PackedForward request at the start of b:
// [tag, bin or str of entries, {"chunk": str, "size": n}], each entry
// [EventTime or int, {key: str, ...}].
func decodeRequest(b []byte, key string) (decoded, int, error) {
	const limit = 16 << 20
	total, err := skipMax(b, 0, limit)
	if err != nil {
		return decoded{}, 0, err
	}
	var r decoded
	t, n, _ := headMax(b, limit)
	if t.kind != kArray || t.n != 3 {
		return r, 0, fmt.Errorf("request: want an array of 3, got kind %d of %d", t.kind, t.n)
	}
	tag, m, _ := headMax(b[n:], limit)
	if tag.kind != kStr || len(tag.b) == 0 {
		return r, 0, errors.New("request: the tag is not a non-empty str")
	}
	r.tag = string(tag.b)
	n += m
	ent, m, _ := headMax(b[n:], limit)
	if ent.kind != kBin && ent.kind != kStr {
		return r, 0, errors.New("request: the entries are not a bin or str")
	}
	n += m
	opt, m, _ := headMax(b[n:], limit)
	if opt.kind != kMap {
		return r, 0, errors.New("request: the option is not a map")
	}
	n += m
	size := int64(-1)
	for range opt.n {
		k, kn, _ := headMax(b[n:], limit)
		n += kn
		v, vn, _ := headMax(b[n:], limit)
		switch {
		case k.kind == kStr && string(k.b) == "chunk" && v.kind == kStr:
			r.chunk = string(v.b)
		case k.kind == kStr && string(k.b) == "size" && v.kind == kInt:
			size = v.i
		case k.kind == kStr && string(k.b) == "compressed" && v.kind == kStr && string(v.b) == "gzip":
			r.gzipped = true
		default:
			return r, 0, fmt.Errorf("request: option %q of kind %d", k.b, v.kind)
		}
		n += vn
	}
	entries := ent.b
	if r.gzipped {
		if entries, err = gunzip(entries, limit); err != nil {
			return r, 0, fmt.Errorf("request: %w", err)
		}
	}
	for e := entries; len(e) > 0; {
		rec, k, err := decodeEntry(e, key)
		if err != nil {
			return r, 0, err
		}
		r.records = append(r.records, rec)
		e = e[k:]
	}
	if r.chunk != "" && len(r.chunk) != chunkIDLen || size != int64(len(r.records)) {
		return r, 0, fmt.Errorf("request: chunk %q, size %d for %d records", r.chunk, size, len(r.records))
	}
	return r, total, nil
}

// gunzip returns what the gzip stream b holds, or an error for a stream
// that is damaged or decompresses beyond limit bytes.
func gunzip(b []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("gzip: %w", err)
	case int64(len(out)) > limit:
		return nil, fmt.Errorf("gzip: more than %d bytes", limit)
	}
	return out, nil
}

// decodeEntry decodes one entry and returns its key's text.
func decodeEntry(e []byte, key string) (string, int, error) {
	total, err := skip(e, 0)
	if err != nil {
		return "", 0, fmt.Errorf("entry: %w", err)
	}
	a, n, _ := head(e)
	if a.kind != kArray || a.n != 2 {
		return "", 0, errors.New("entry: not an array of 2")
	}
	tm, m, _ := head(e[n:])
	if !(tm.kind == kExt && len(tm.b) == 8 && e[n+1] == 0) && tm.kind != kInt {
		return "", 0, errors.New("entry: the time is neither EventTime nor an integer")
	}
	n += m
	mp, m, _ := head(e[n:])
	if mp.kind != kMap {
		return "", 0, errors.New("entry: the record is not a map")
	}
	n += m
	text, found := "", false
	for range mp.n {
		k, kn, _ := head(e[n:])
		n += kn
		vn, _ := skip(e[n:], 1)
		if k.kind == kStr && string(k.b) == key {
			v, _, _ := head(e[n:])
			if v.kind != kStr {
				return "", 0, errors.New("entry: the key's value is not a str")
			}
			text, found = string(v.b), true
		}
		n += vn
	}
	if !found && key != "" {
		return "", 0, fmt.Errorf("entry: no field %q", key)
	}
	return text, total, nil
}

// DialContext makes the fake server a reconn.ContextDialer of in-memory
// connections (net.Pipe), for tests in a synctest bubble: each dial is
// served as an accepted connection is.
func (s *fakeServer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("fake server closed")
	}
	c, nc := net.Pipe()
	s.conns[nc] = true
	s.wg.Go(func() { s.serve(nc) })
	return c, nil
}

// newPipeServer is a fake server reached only through its DialContext.
func newPipeServer(t testing.TB, key string, opt fakeOptions) *fakeServer {
	s := &fakeServer{t: t, addr: "pipe", key: key, opt: opt,
		conns: map[net.Conn]bool{}, got: map[string]int{}, tags: map[string]int{}, changed: make(chan struct{})}
	t.Cleanup(s.close)
	return s
}

// handshake runs the server's side of the shared-key handshake, and
// returns what the client sent after its PING.
func (s *fakeServer) handshake(nc net.Conn) ([]byte, error) {
	nonce := make([]byte, 16)
	crand.Read(nonce)
	authSalt := ""
	if s.opt.users != nil {
		authSalt = "fake-auth-salt"
	}
	helo := appendArrayHeader(nil, 2)
	helo = appendStr(helo, "HELO")
	helo = appendMapHeader(helo, 3)
	helo = appendStr(helo, "nonce")
	helo = appendBin(helo, nonce)
	helo = appendStr(helo, "auth")
	helo = appendStr(helo, authSalt)
	helo = appendStr(helo, "keepalive")
	helo, _ = appendValue(helo, true, 0)
	if _, err := nc.Write(helo); err != nil {
		return nil, err
	}
	r := answerReader{nc: nc}
	ping, err := r.next()
	if err != nil {
		return nil, err
	}
	f, err := command(ping, "PING", 6)
	if err != nil {
		return nil, err
	}
	var str [5]string
	for i := range str {
		t, _, _ := head(f[i+1])
		if t.kind != kStr {
			return nil, fmt.Errorf("PING field %d is not a str", i+1)
		}
		str[i] = string(t.b)
	}
	host, salt, proof, user, pass := str[0], str[1], str[2], str[3], str[4]
	ok, reason := true, ""
	switch {
	case proof != digest(salt, host, string(nonce), s.opt.sharedKey):
		ok, reason = false, "shared_key mismatch"
	case s.opt.users != nil && (s.opt.users[user] == "" || pass != digest(authSalt, user, s.opt.users[user])):
		ok, reason = false, "username/password mismatch"
	}
	key := s.opt.sharedKey
	if s.opt.badProof {
		key = "not the key"
	}
	pong := appendArrayHeader(nil, 5)
	pong = appendStr(pong, "PONG")
	pong, _ = appendValue(pong, ok, 0)
	pong = appendStr(pong, reason)
	pong = appendStr(pong, "fake-server")
	pong = appendStr(pong, digest(salt, "fake-server", string(nonce), key))
	if _, err := nc.Write(pong); err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New(reason)
	}
	return append([]byte(nil), r.rest...), nil
}

// writeAndClose writes the records r-0 to r-(n-1), one a Write, and
// closes c; every error fails the test.
func writeAndClose(t *testing.T, c *Conn, n int) {
	t.Helper()
	for i := range n {
		if _, err := fmt.Fprintf(c, "r-%d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

// checkRecords fails the test unless every record r-0 to r-(n-1) was
// acknowledged, exactly once if once is set.
func (s *fakeServer) checkRecords(t *testing.T, n int, once bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		if k := s.got[fmt.Sprintf("r-%d", i)]; k == 0 || once && k != 1 {
			t.Fatalf("record r-%d acknowledged %d times; want %s", i, k, map[bool]string{true: "once", false: "at least once"}[once])
		}
	}
}
