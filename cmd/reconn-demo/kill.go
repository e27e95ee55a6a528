package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/reconn/reconn/faultnet"
)

// The kill fault runs the writer as a child process (this program again,
// with childEnv set), so that it can be killed as a deploy or the OOM
// killer would: once the server has read a third of the messages, the
// server goes down (it refuses new connections and resets the open one),
// the writer writes the rest, and is killed with SIGKILL right after its
// last Write returned. Then the server listens again and a second writer
// process, of the same client and on the same spool directory, starts,
// writes nothing and closes. Only the clients whose Write returns while
// the server is down take part: reconn async and reconn spool.

const childEnv = "RECONN_DEMO_CHILD"

// killClients are the clients that the kill fault runs with.
var killClients = []string{"reconn async", "reconn spool"}

// childSpec is what a writer process is told, as JSON in childEnv.
type childSpec struct {
	Client, Addr, Dir string
	N, Size           int
	// Pause is how many messages to write before printing "paused" and
	// waiting for a line on stdin; 0 writes nothing and closes.
	Pause int
}

// runChild is the writer process. With Pause > 0 it writes spec.N
// messages, pausing after Pause of them, prints "written <write
// errors>" and waits to be killed; with Pause 0 it closes the Conn at
// once and prints "closed <redials> <Close's error>".
func runChild(env string) error {
	var spec childSpec
	if err := json.Unmarshal([]byte(env), &spec); err != nil {
		return fmt.Errorf("%s: %v", childEnv, err)
	}
	ctx := context.Background()
	c, err := dialClient(ctx, spec.Client, spec.Addr, spec.Dir)
	if err != nil {
		return err
	}
	if spec.Pause == 0 {
		cerr := c.Close()
		fmt.Printf("closed %d %v\n", c.counters().redials, cerr)
		return nil
	}
	in := bufio.NewReader(os.Stdin)
	var written, errs atomic.Int64
	o := options{n: spec.Pause, size: spec.Size}
	stream(ctx, o, c, 0, &written, &errs)
	fmt.Println("paused")
	if _, err := in.ReadString('\n'); err != nil {
		return err
	}
	o.n = spec.N
	stream(ctx, o, c, spec.Pause, &written, &errs)
	fmt.Printf("written %d\n", errs.Load())
	io.Copy(io.Discard, in) // until killed
	return nil
}

// writer is a child process and its output, line by line.
type writer struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines *bufio.Scanner
}

func startWriter(ctx context.Context, spec childSpec) (*writer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(spec)
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	w := &writer{cmd: cmd}
	if w.in, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w.lines = bufio.NewScanner(out)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a writer process: %w", err)
	}
	return w, nil
}

// expect reads the writer's next line, which must begin with word, and
// returns the rest of it.
func (w *writer) expect(word string) (string, error) {
	if !w.lines.Scan() {
		w.cmd.Process.Kill()
		return "", fmt.Errorf("the writer process ended before it said %q: %v", word, w.cmd.Wait())
	}
	line := w.lines.Text()
	rest, ok := strings.CutPrefix(line, word)
	if !ok {
		w.cmd.Process.Kill()
		w.cmd.Wait()
		return "", fmt.Errorf("the writer process said %q; want %q", line, word)
	}
	return strings.TrimSpace(rest), nil
}

// runKill runs the kill fault with the named client.
func runKill(ctx context.Context, o options, fault, name string, prog *progress) (row, error) {
	rw := row{fault: fault, client: name}
	srv, err := faultnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rw, err
	}
	defer srv.Close()
	dir, err := spoolDir(name)
	if err != nil {
		return rw, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	start := time.Now()
	prog.begin("kill / "+name, o.n)
	spec := childSpec{Client: name, Addr: srv.Addr().String(), Dir: dir, N: o.n, Size: o.size, Pause: o.n / 3}
	w, err := startWriter(ctx, spec)
	if err != nil {
		prog.end()
		return rw, err
	}
	if _, err := w.expect("paused"); err != nil {
		prog.end()
		return rw, err
	}
	prog.written.Store(int64(o.n / 3))
	if err := srv.WaitReceived(ctx, o.n/3); err != nil {
		w.cmd.Process.Kill()
		w.cmd.Wait()
		prog.end()
		return rw, fmt.Errorf("waiting for the server to read %d messages: %w", o.n/3, err)
	}
	if err := srv.Refuse(); err != nil {
		w.cmd.Process.Kill()
		w.cmd.Wait()
		prog.end()
		return rw, err
	}
	srv.RST()
	fmt.Fprintln(w.in, "go")
	errs, err := w.expect("written")
	w.cmd.Process.Kill() // SIGKILL: the writer gets no chance to send or save anything
	w.cmd.Wait()
	prog.written.Store(int64(o.n))
	prog.end()
	if err != nil {
		return rw, err
	}
	fmt.Sscan(errs, &rw.errs)

	if err := srv.Accept(); err != nil {
		return rw, err
	}
	spec.Pause = 0
	if w, err = startWriter(ctx, spec); err != nil {
		return rw, err
	}
	closed, err := w.expect("closed")
	w.cmd.Wait()
	if err != nil {
		return rw, err
	}
	redials, cerr, _ := strings.Cut(closed, " ")
	fmt.Sscan(redials, &rw.redials)
	if cerr != "<nil>" {
		rw.note = fmt.Sprintf("kill/%s: the second writer's Close: %s", name, cerr)
	}
	wctx, wcancel := context.WithTimeout(ctx, waitTimeout)
	defer wcancel()
	if err := srv.WaitEOF(wctx); err != nil {
		return rw, fmt.Errorf("kill/%s: waiting for the server to read to the end: %w", name, err)
	}
	rw.r = faultnet.ReportAll(o.n, srv)
	rw.took = time.Since(start)
	return rw, nil
}
