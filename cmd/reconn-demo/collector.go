package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/forward"
)

// The collector fault streams to a Forward collector (collector) instead
// of a line server, and crashes it once it has stored a third of the
// records: every connection is reset, what its sockets held unread is
// lost, and it is down for restartDown before it listens again. It runs
// with the two Forward clients: fluent-style, which writes each record
// in the protocol's Message mode over TCP without asking for acks,
// reconnecting and writing once more on an error (the requests of
// fluent-logger-golang without RequestAck), and forward, package forward with its defaults
// (PackedForward requests, each acknowledged).

// forwardClients are the clients that the collector fault runs with.
var forwardClients = []string{"fluent-style", "forward"}

// maxRequest bounds what the collector takes as one request, and what a
// compressed one expands to.
const maxRequest = 16 << 20

// collector is a Forward server that stores each record it decodes (by
// the seq= of its "message" field) and acknowledges each request that
// asks, once it has stored its records.
type collector struct {
	addr string

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*collConn]bool
	stored map[int]int // seq -> times stored
	unread map[int]bool
	n      int // records stored, duplicates included
	wake   chan struct{}
	wg     sync.WaitGroup
	closed bool
}

func listenCollector() (*collector, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &collector{addr: ln.Addr().String(), conns: map[*collConn]bool{},
		stored: map[int]int{}, unread: map[int]bool{}, wake: make(chan struct{})}
	c.start(ln)
	return c, nil
}

func (c *collector) start(ln net.Listener) {
	c.ln = ln
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			if c.ln != ln {
				c.mu.Unlock()
				nc.Close()
				return
			}
			cc := &collConn{nc: nc, done: make(chan struct{})}
			c.conns[cc] = true
			c.wg.Add(1)
			c.mu.Unlock()
			go c.serve(cc)
		}
	}()
}

// changed wakes those waiting for the collector's state. mu is held.
func (c *collector) changed() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// waitFor waits until cond, called with mu held, is true, or ctx ends.
func (c *collector) waitFor(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ok, wake := cond(), c.wake
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// collConn is a connection of the collector.
type collConn struct {
	nc   net.Conn
	done chan struct{} // closed when serve returns
	left []byte        // what serve had read and not stored, when it returned
}

// serve reads requests from cc until it ends, storing their records and
// acknowledging those that ask.
func (c *collector) serve(cc *collConn) {
	defer c.wg.Done()
	defer close(cc.done)
	defer func() {
		c.mu.Lock()
		if c.conns[cc] {
			delete(c.conns, cc)
			cc.nc.Close()
		}
		c.changed()
		c.mu.Unlock()
	}()
	var buf []byte
	chunk := make([]byte, 64<<10)
	for {
		k, err := cc.nc.Read(chunk)
		buf = append(buf, chunk[:k]...)
		for len(buf) > 0 {
			seqs, ack, used, derr := decodeRequest(buf)
			if errors.Is(derr, errShort) && len(buf) < maxRequest {
				break
			}
			if derr != nil {
				fmt.Fprintf(os.Stderr, "reconn-demo: collector: %v\n", derr)
				return
			}
			c.mu.Lock()
			if !c.conns[cc] { // crashing
				c.mu.Unlock()
				cc.left = buf
				return
			}
			for _, s := range seqs {
				c.stored[s]++
			}
			c.n += len(seqs)
			c.changed()
			c.mu.Unlock()
			if ack != nil {
				if _, err := cc.nc.Write(appendAck(nil, ack)); err != nil {
					return
				}
			}
			buf = buf[used:]
		}
		if err != nil {
			cc.left = buf
			return
		}
	}
}

// crash stops reading, counts as unread the records that the
// connections' sockets and buffers held, resets every connection, and
// listens again after down.
func (c *collector) crash(down time.Duration) error {
	c.mu.Lock()
	c.ln.Close()
	c.ln = nil
	conns := c.conns
	c.conns = map[*collConn]bool{}
	c.changed()
	c.mu.Unlock()
	for cc := range conns {
		cc.nc.SetReadDeadline(time.Now())
		<-cc.done
		// What the kernel acknowledged and the collector had not read
		// (and what it had read and not stored): read it now, to count
		// it lost.
		cc.nc.SetReadDeadline(time.Time{})
		rest := drainNow(cc.nc, cc.left)
		for len(rest) > 0 {
			seqs, _, used, err := decodeRequest(rest)
			if err != nil {
				break
			}
			c.mu.Lock()
			for _, s := range seqs {
				c.unread[s] = true
			}
			c.mu.Unlock()
			rest = rest[used:]
		}
		if tc, ok := cc.nc.(*net.TCPConn); ok {
			tc.SetLinger(0) // an RST, as from a process that dies
		}
		cc.nc.Close()
	}
	time.Sleep(down)
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		ln.Close()
		return nil
	}
	c.start(ln)
	return nil
}

// drainQuiet appends to dst what nc yields until it is quiet for 2 ms.
func drainQuiet(nc net.Conn, dst []byte) []byte {
	chunk := make([]byte, 64<<10)
	for len(dst) < maxRequest {
		nc.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
		k, err := nc.Read(chunk)
		dst = append(dst, chunk[:k]...)
		if err != nil {
			break
		}
	}
	return dst
}

// idle waits until no connection is open: the client closed its own.
func (c *collector) idle(ctx context.Context) error {
	return c.waitFor(ctx, func() bool { return len(c.conns) == 0 })
}

func (c *collector) close() {
	c.mu.Lock()
	c.closed = true
	if c.ln != nil {
		c.ln.Close()
	}
	for cc := range c.conns {
		cc.nc.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// report is the collector's account of a run of sent records.
func (c *collector) report(sent int) faultnet.Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := faultnet.Report{Sent: sent}
	for s, k := range c.stored {
		if s >= 0 && s < sent {
			r.Received++
			r.Duplicated += k - 1
		}
	}
	r.Lost = sent - r.Received
	for s := range c.unread {
		if c.stored[s] == 0 {
			r.Unavoidable++
		}
	}
	r.ClientLost = r.Lost - r.Unavoidable
	return r
}

// A small MessagePack decoder for what the two clients send: Message
// mode [tag, time, record, option?] and PackedForward [tag, bin of
// entries, option?] (CompressedPackedForward too), a record being a map
// whose "message" is a str.

var errShort = errors.New("short")

type decoder struct {
	b []byte
	i int
}

func (d *decoder) byte() (byte, error) {
	if d.i >= len(d.b) {
		return 0, errShort
	}
	d.i++
	return d.b[d.i-1], nil
}

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.i {
		return nil, errShort
	}
	d.i += n
	return d.b[d.i-n : d.i], nil
}

// uint reads a big-endian unsigned integer of n bytes.
func (d *decoder) uint(n int) (uint64, error) {
	b, err := d.take(n)
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v, err
}

// header reads a value's first byte and returns it, with the length of
// a str, bin, array, map or ext (its count of elements or bytes).
func (d *decoder) header() (t byte, n int, err error) {
	t, err = d.byte()
	if err != nil {
		return 0, 0, err
	}
	var size int
	switch {
	case t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3:
		return t, 0, nil
	case t >= 0x80 && t <= 0x8f:
		return 0x80, int(t & 0x0f), nil
	case t >= 0x90 && t <= 0x9f:
		return 0x90, int(t & 0x0f), nil
	case t >= 0xa0 && t <= 0xbf:
		return 0xa0, int(t & 0x1f), nil
	case t == 0xd9 || t == 0xc4 || t == 0xc7:
		size = 1
	case t == 0xda || t == 0xc5 || t == 0xc8 || t == 0xdc || t == 0xde:
		size = 2
	case t == 0xdb || t == 0xc6 || t == 0xc9 || t == 0xdd || t == 0xdf:
		size = 4
	case t >= 0xcc && t <= 0xd3: // integers: the caller reads them
		return t, 0, nil
	case t >= 0xd4 && t <= 0xd8: // fixext 1, 2, 4, 8, 16
		return t, 1 << (t - 0xd4), nil
	case t == 0xca || t == 0xcb:
		return t, 0, nil
	default:
		return 0, 0, fmt.Errorf("collector: unknown MessagePack type 0x%02x", t)
	}
	v, err := d.uint(size)
	if v > maxRequest {
		return 0, 0, fmt.Errorf("collector: a length of %d", v)
	}
	return t, int(v), err
}

// skip reads one value of any type, to depth 8.
func (d *decoder) skip(depth int) error {
	if depth > 8 {
		return errors.New("collector: nested too deep")
	}
	t, n, err := d.header()
	if err != nil {
		return err
	}
	switch t {
	case 0x90, 0xdc, 0xdd:
		for range n {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case 0x80, 0xde, 0xdf:
		for range 2 * n {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		_, err = d.take(n + 1) // the ext's type, then its data
		return err
	case 0xcc, 0xd0:
		_, err = d.take(1)
	case 0xcd, 0xd1:
		_, err = d.take(2)
	case 0xce, 0xd2, 0xca:
		_, err = d.take(4)
	case 0xcf, 0xd3, 0xcb:
		_, err = d.take(8)
	default:
		_, err = d.take(n)
	}
	return err
}

// bytes reads a str or a bin.
func (d *decoder) bytes() ([]byte, error) {
	t, n, err := d.header()
	if err != nil {
		return nil, err
	}
	switch t {
	case 0xa0, 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6:
		return d.take(n)
	}
	return nil, fmt.Errorf("collector: type 0x%02x where a str was due", t)
}

// record reads a record map and returns the seq of its "message".
func (d *decoder) record() (int, error) {
	t, n, err := d.header()
	if err != nil {
		return 0, err
	}
	if t != 0x80 && t != 0xde && t != 0xdf {
		return 0, fmt.Errorf("collector: a record of type 0x%02x, not a map", t)
	}
	seq, found := 0, false
	for range n {
		k, err := d.bytes()
		if err != nil {
			return 0, err
		}
		if string(k) != "message" {
			if err := d.skip(1); err != nil {
				return 0, err
			}
			continue
		}
		v, err := d.bytes()
		if err != nil {
			return 0, err
		}
		seq, found = faultnet.ParseSeq(v)
	}
	if !found {
		return 0, errors.New("collector: a record without a seq= in its message")
	}
	return seq, nil
}

// decodeRequest decodes the request at the start of b: the seqs of its
// records, its chunk id if it asks for an ack, and its length. It
// returns errShort if b holds only part of it.
func decodeRequest(b []byte) (seqs []int, chunk []byte, n int, err error) {
	d := &decoder{b: b}
	t, elems, err := d.header()
	if err != nil {
		return nil, nil, 0, err
	}
	if (t != 0x90 && t != 0xdc) || elems < 2 || elems > 4 {
		return nil, nil, 0, fmt.Errorf("collector: a request of type 0x%02x with %d elements", t, elems)
	}
	if _, err := d.bytes(); err != nil { // the tag
		return nil, nil, 0, err
	}
	mark := d.i
	t, _, err = d.header()
	if err != nil {
		return nil, nil, 0, err
	}
	d.i = mark
	rest := elems - 2
	var entries []byte
	switch t {
	case 0xa0, 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6: // PackedForward
		if entries, err = d.bytes(); err != nil {
			return nil, nil, 0, err
		}
	default: // Message mode: time, record
		if err := d.skip(0); err != nil {
			return nil, nil, 0, err
		}
		seq, err := d.record()
		if err != nil {
			return nil, nil, 0, err
		}
		seqs = append(seqs, seq)
		rest--
	}
	compressed := false
	if rest == 1 {
		if chunk, compressed, err = d.option(); err != nil {
			return nil, nil, 0, err
		}
	}
	if entries != nil {
		if compressed {
			if entries, err = gunzip(entries); err != nil {
				return nil, nil, 0, err
			}
		}
		e := &decoder{b: entries}
		for e.i < len(entries) {
			t, n, err := e.header()
			if err == nil && (t != 0x90 || n != 2) {
				err = fmt.Errorf("collector: an entry of type 0x%02x", t)
			}
			if err == nil {
				err = e.skip(0) // the time
			}
			var seq int
			if err == nil {
				seq, err = e.record()
			}
			if err != nil {
				if errors.Is(err, errShort) {
					err = errors.New("collector: an entry cut short")
				}
				return nil, nil, 0, err
			}
			seqs = append(seqs, seq)
		}
	}
	return seqs, chunk, d.i, nil
}

// option reads a request's option map: its "chunk", and whether its
// entries are gzip-compressed.
func (d *decoder) option() (chunk []byte, compressed bool, err error) {
	t, n, err := d.header()
	if err != nil {
		return nil, false, err
	}
	if t != 0x80 && t != 0xde {
		return nil, false, fmt.Errorf("collector: an option of type 0x%02x", t)
	}
	for range n {
		k, err := d.bytes()
		if err != nil {
			return nil, false, err
		}
		switch string(k) {
		case "chunk":
			if chunk, err = d.bytes(); err != nil {
				return nil, false, err
			}
		case "compressed":
			v, err := d.bytes()
			if err != nil {
				return nil, false, err
			}
			compressed = string(v) == "gzip"
		default:
			if err := d.skip(1); err != nil {
				return nil, false, err
			}
		}
	}
	return chunk, compressed, nil
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxRequest+1))
	if err == nil && len(out) > maxRequest {
		err = errors.New("collector: a compressed request expands past its bound")
	}
	return out, err
}

// appendAck appends the answer {"ack": chunk}.
func appendAck(b, chunk []byte) []byte {
	b = append(b, 0x81, 0xa3, 'a', 'c', 'k')
	return appendStr(b, chunk)
}

// appendStr appends s as a MessagePack str.
func appendStr(b, s []byte) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 1<<8:
		b = append(b, 0xd9, byte(n))
	case n < 1<<16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// fluentClient writes each record alone in the protocol's Message mode,
// [tag, seconds, {"message": line}], with no option: the collector sends
// no ack, and the client knows only that its kernel took the bytes. On a
// write error it reconnects and writes the record once more, as
// plainClient does.
type fluentClient struct {
	*plainClient
	buf []byte
}

// demoTag is the tag of the Forward clients' records.
var demoTag = []byte("reconn.demo")

func (f *fluentClient) Write(b []byte) (int, error) {
	line := bytes.TrimSuffix(b, []byte("\n"))
	f.buf = append(f.buf[:0], 0x93)
	f.buf = appendStr(f.buf, demoTag)
	f.buf = binary.BigEndian.AppendUint32(append(f.buf, 0xce), uint32(time.Now().Unix()))
	f.buf = append(f.buf, 0x81)
	f.buf = appendStr(f.buf, []byte("message"))
	f.buf = appendStr(f.buf, line)
	if _, err := f.plainClient.Write(f.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// forwardClient is package forward's Conn.
type forwardClient struct{ *forward.Conn }

func (c forwardClient) counters() counters {
	s := c.Stats()
	return counters{dials: s.Dials, redials: s.Redials, resent: s.ResentMessages, lastErr: s.LastError}
}

// dialForward connects the named Forward client to addr.
func dialForward(ctx context.Context, name, addr string) (client, error) {
	if name == "fluent-style" {
		p := &plainClient{addr: addr}
		if err := p.dial(); err != nil {
			return nil, err
		}
		return &fluentClient{plainClient: p}, nil
	}
	d := &forward.Dialer{Tag: string(demoTag)}
	d.UserTimeout = userTimeout
	d.MinBackoff, d.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return forwardClient{c}, nil
}

// runCollector streams to a fresh collector, crashes it once it has
// stored a third of the records, and returns its report.
func runCollector(ctx context.Context, o options, fault, name string, prog *progress) (row, error) {
	rw := row{fault: fault, client: name}
	col, err := listenCollector()
	if err != nil {
		return rw, err
	}
	defer col.close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := dialForward(ctx, name, col.addr)
	if err != nil {
		return rw, fmt.Errorf("%s: dial: %w", name, err)
	}
	errs, err := streamFaulted(ctx, o, c, fault+" / "+name, prog, func() error {
		err := col.waitFor(ctx, func() bool { return col.n >= o.n/3 })
		if err == nil {
			err = col.crash(restartDown)
		}
		if err != nil {
			return fmt.Errorf("crashing the collector after %d records: %w", o.n/3, err)
		}
		return nil
	})
	if err != nil {
		return rw, err
	}
	if err := c.Close(); err != nil {
		var ue *reconn.UnconfirmedError
		if errors.As(err, &ue) {
			rw.note = fmt.Sprintf("%s/%s: Close: %d records unacknowledged", fault, name, ue.Messages)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, waitTimeout)
	defer wcancel()
	if err := col.idle(wctx); err != nil {
		return rw, fmt.Errorf("%s/%s: waiting for the collector to read to the end: %w", fault, name, err)
	}
	rw.r = col.report(o.n)
	rw.redials = c.counters().redials
	rw.errs = errs
	rw.took = time.Since(start)
	return rw, nil
}
