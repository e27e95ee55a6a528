package reconn

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestQuiesceNotOvertaken checks that a holder of the right to write
// waiting in quiesce gets gate.fast from the fast Write in progress, and that a
// fast Write arriving meanwhile steps aside instead of taking fast first.
// Taking it first, again and again, is how a tight loop of Writes kept a
// Flush, Close or move waiting without bound where goroutines are not
// preempted (js), and for hundreds of milliseconds on one busy core.
func TestQuiesceNotOvertaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, s)
		s.Close()
	}()
	c, err := Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := c.newOp(c.life, ctx, time.Time{}, false)
	defer o.end()
	g := &c.gate
	if ended := g.takeTok(o.ctx, nil); ended != nil {
		t.Fatal(context.Cause(ended))
	}
	// A fast Write in progress: the holder of tok must wait for it.
	g.fast.Lock()
	quiesced := make(chan error, 1)
	go func() { quiesced <- g.quiesce(o.ctx) }()
	for g.quiescing.Load() == 0 {
		runtime.Gosched()
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("after the holder of tok\n"))
		wrote <- err
	}()
	// The fast Write in progress ends without waking anyone: only a Write
	// that comes later can wake the waiting quiesce, by stepping aside.
	g.fast.Unlock()
	qerr := <-quiesced
	early := c.st.messages.Load()
	var returned bool
	select {
	case err = <-wrote:
		returned = true
	default:
	}
	g.unlock(hold{})
	if qerr != nil {
		t.Fatalf("quiesce: %v", qerr)
	}
	if early != 0 {
		t.Fatalf("%d fast Writes went ahead of the waiting holder of tok", early)
	}
	if returned {
		t.Fatalf("a Write returned (%v) while another goroutine held the right to write", err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("the Write that stepped aside: %v", err)
	}
	if n := c.st.messages.Load(); n != 1 {
		t.Fatalf("%d messages written, want 1", n)
	}
}
