// Command reconn-demo streams numbered messages through TCP faults and shows,
// for each client, how many messages the server never got.
//
// Usage:
//
//	reconn-demo [flags]
//
// With no flags it starts a local faultnet server for each run, streams
// 50000 messages of 100 bytes at full speed, and once the server has read a
// third of them applies one fault:
//
//	fin        the server closes (FIN)
//	rst        the server dies abruptly (RST)
//	drain      the server sends FIN and keeps reading (half-close)
//	restart    the server is down for 200 ms, then listens again
//	blackhole  the server's kernel stops acknowledging (needs root on Linux;
//	           skipped with a note otherwise)
//	failover   the server dies for good (RST, no more listening); a second
//	           server listens on another port, which the reconn clients
//	           have as their fallback
//	kill       the server goes down (refuses, resets) and the writer, a
//	           process of its own, writes the rest and is killed with
//	           SIGKILL right after its last Write; the server listens
//	           again and a second writer process starts and closes. Run
//	           with the two clients whose Write returns while the server
//	           is down: reconn async and reconn spool
//	collector  a Forward collector (Fluentd's protocol) crashes once it has
//	           stored a third of the records: it resets every connection,
//	           losing what its sockets held unread, and listens again
//	           200 ms later. Run with the two Forward clients alone
//
// Each fault is run with five clients:
//
//	plain+retry   a net.Conn that, on a write error, closes, redials and
//	              writes the message once more, as log/syslog does; a
//	              message that fails again is dropped. It uses a 1 s write
//	              deadline so that a blackhole ends.
//	check only    reconn with replay off (ReplayBuffer -1)
//	reconn        reconn with its defaults
//	reconn async  reconn with Async: Write returns at once, one goroutine
//	              sends in batches; in the kill fault, with FailWhenFull,
//	              so that a full queue fails Writes instead of blocking
//	reconn spool  reconn async with a SpoolDir, a new directory per run,
//	              removed after it
//
// and the collector fault with two Forward clients, each record
// {"message": line} with the tag reconn.demo:
//
//	fluent-style  one Message-mode request per record over a net.Conn,
//	              without acks, as fluent-logger-golang sends without
//	              RequestAck; on an error it closes, redials and writes once
//	              more, as plain+retry does (fluent-logger-golang retries
//	              longer, blocking its writer meanwhile)
//	forward       package forward with its defaults: PackedForward
//	              requests, each kept until the collector acknowledges it
//
// The reconn clients use UserTimeout 1s and MinBackoff 10ms, MaxBackoff
// 100ms. The program prints one table: messages sent, received, lost, how
// many of the lost were unavoidable (acknowledged by the server's kernel but
// never read by the server), duplicated, redials, write errors and the
// time of each run.
//
// Flags:
//
//	-n N          messages per run (default 50000)
//	-size B       bytes per message, newline included (default 100)
//	-rate R       messages per second; 0 is full speed (default 0)
//	-faults LIST  comma-separated faults (default fin,rst,drain,restart,blackhole,failover,kill,collector)
//	-clients LIST comma-separated clients: plain, check, reconn, async, spool, fluent,
//	              forward (default all)
//	-addr H:P     stream to a real server instead, such as an rsyslog imtcp
//	              port, with the reconn client unless -clients says
//	              otherwise, and print live counters once a second while you
//	              restart the server yourself. The program cannot see the
//	              server side, so there is no loss report. In this mode -rate
//	              defaults to 1000. With -clients forward (or fluent), stream to
//	              a Forward server such as Fluentd's in_forward port.
//
// A progress bar is shown on stderr when both stdout and stderr are
// terminals. Bad flags exit with status 2, other failures with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
)

var allFaults = []string{"fin", "rst", "drain", "restart", "blackhole", "failover", "kill", "collector"}

// clientKinds maps the accepted -clients names to the names shown.
var clientKinds = []struct{ key, name string }{
	{"plain", "plain+retry"},
	{"check", "check only"},
	{"reconn", "reconn"},
	{"async", "reconn async"},
	{"spool", "reconn spool"},
	{"fluent", "fluent-style"},
	{"forward", "forward"},
}

const (
	userTimeout   = time.Second
	plainDeadline = time.Second
	restartDown   = 200 * time.Millisecond
	waitTimeout   = 30 * time.Second
)

type options struct {
	n, size, rate int
	faults        []string
	clients       []string // display names
	addr          string
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	if env := os.Getenv(childEnv); env != "" {
		if err := runChild(env); err != nil {
			fmt.Fprintf(os.Stderr, "reconn-demo: writer process: %v\n", err)
			os.Exit(1)
		}
		return
	}
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var ue usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "reconn-demo: %v\nRun 'reconn-demo -h' for usage.\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "reconn-demo: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.addr != "" {
		return runAddr(ctx, o, stdout)
	}
	return runLocal(ctx, o, stdout, stderr)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("reconn-demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&o.n, "n", 50000, "messages per run")
	fs.IntVar(&o.size, "size", 100, "bytes per message, newline included")
	fs.IntVar(&o.rate, "rate", 0, "messages per second (0 = full speed; 1000 with -addr)")
	faults := fs.String("faults", strings.Join(allFaults, ","), "comma-separated faults: "+strings.Join(allFaults, ", "))
	clients := fs.String("clients", "", "comma-separated clients: plain, check, reconn, async, spool, fluent, forward (default all; reconn with -addr)")
	fs.StringVar(&o.addr, "addr", "", "stream to this host:port instead of the built-in server; no report")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "Usage: reconn-demo [flags]")
			fs.PrintDefaults()
			return o, err
		}
		return o, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return o, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if o.n < 1 {
		return o, usageError{fmt.Sprintf("-n %d: need at least 1 message", o.n)}
	}
	if min := len(faultnet.AppendMessage(nil, faultnet.Newline, o.n-1, 0)); o.size < min {
		return o, usageError{fmt.Sprintf("-size %d: messages up to seq=%d need at least %d bytes", o.size, o.n-1, min)}
	}
	if o.rate < 0 {
		return o, usageError{fmt.Sprintf("-rate %d: must be 0 (full speed) or more", o.rate)}
	}
	rateSet := false
	fs.Visit(func(f *flag.Flag) { rateSet = rateSet || f.Name == "rate" })
	if o.addr != "" && !rateSet {
		o.rate = 1000
	}
	for _, f := range splitList(*faults) {
		if !contains(allFaults, f) {
			return o, usageError{fmt.Sprintf("-faults: unknown fault %q (want %s)", f, strings.Join(allFaults, ", "))}
		}
		o.faults = append(o.faults, f)
	}
	if len(o.faults) == 0 && o.addr == "" {
		return o, usageError{"-faults: empty list"}
	}
	list := *clients
	if list == "" {
		list = "plain,check,reconn,async,spool,fluent,forward"
		if o.addr != "" {
			list = "reconn"
		}
	}
	for _, c := range splitList(list) {
		name := ""
		for _, k := range clientKinds {
			if c == k.key || c == k.name {
				name = k.name
			}
		}
		if name == "" {
			return o, usageError{fmt.Sprintf("-clients: unknown client %q (want plain, check, reconn, async, spool, fluent, forward)", c)}
		}
		o.clients = append(o.clients, name)
	}
	if len(o.clients) == 0 {
		return o, usageError{"-clients: empty list"}
	}
	if o.addr != "" {
		if _, _, err := net.SplitHostPort(o.addr); err != nil {
			return o, usageError{fmt.Sprintf("-addr %q: %v", o.addr, err)}
		}
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

// counters is what a client reports while it streams.
type counters struct {
	dials, redials, resent int64
	lastErr                error
}

type client interface {
	Write([]byte) (int, error)
	Close() error
	counters() counters
}

// dialClient connects the named client to addr; the spool client spools
// in dir; the reconn clients fall back to the fallback addresses.
func dialClient(ctx context.Context, name, addr, dir string, fallbacks ...string) (client, error) {
	if slices.Contains(forwardClients, name) {
		return dialForward(ctx, name, addr)
	}
	if name == "plain+retry" {
		p := &plainClient{addr: addr}
		if err := p.dial(); err != nil {
			return nil, err
		}
		return p, nil
	}
	d := &reconn.Dialer{
		UserTimeout: userTimeout,
		MinBackoff:  10 * time.Millisecond,
		MaxBackoff:  100 * time.Millisecond,
		Fallbacks:   fallbacks,
		Async:       name == "reconn async" || name == "reconn spool",
	}
	switch name {
	case "check only":
		d.ReplayBuffer = -1
	case "reconn async":
		// Only the kill fault's writer process has no server for long.
		d.FailWhenFull = os.Getenv(childEnv) != ""
	case "reconn spool":
		d.SpoolDir = dir
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return reconnClient{c.(*reconn.Conn)}, nil
}

type reconnClient struct{ *reconn.Conn }

func (c reconnClient) counters() counters {
	s := c.Stats()
	return counters{dials: s.Dials, redials: s.Redials, resent: s.ResentMessages, lastErr: s.LastError}
}

// plainClient writes to a net.Conn; on a write error it closes, redials and
// writes the message once more.
type plainClient struct {
	addr string
	c    net.Conn

	mu sync.Mutex
	n  counters
}

func (p *plainClient) dial() error {
	c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.n.lastErr = err
		return err
	}
	p.c = c
	p.n.dials++
	if p.n.dials > 1 {
		p.n.redials++
	}
	return nil
}

func (p *plainClient) write(b []byte) (int, error) {
	p.c.SetWriteDeadline(time.Now().Add(plainDeadline))
	return p.c.Write(b)
}

func (p *plainClient) Write(b []byte) (int, error) {
	if p.c != nil {
		n, err := p.write(b)
		if err == nil {
			return n, nil
		}
		p.mu.Lock()
		p.n.lastErr = err
		p.mu.Unlock()
		p.c.Close()
		p.c = nil
	}
	if err := p.dial(); err != nil {
		return 0, err
	}
	p.mu.Lock()
	p.n.resent++
	p.mu.Unlock()
	n, err := p.write(b)
	if err != nil {
		p.mu.Lock()
		p.n.lastErr = err
		p.mu.Unlock()
	}
	return n, err
}

func (p *plainClient) Close() error {
	if p.c == nil {
		return nil
	}
	err := p.c.Close()
	p.c = nil
	return err
}

func (p *plainClient) counters() counters {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// stream writes the messages numbered from..o.n-1 to c, paced by o.rate,
// and counts the failed writes. written is updated as it goes.
func stream(ctx context.Context, o options, c client, from int, written, errs *atomic.Int64) error {
	start := time.Now()
	var buf []byte
	for seq := from; seq < o.n; seq++ {
		if seq%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if o.rate > 0 {
			next := start.Add(time.Duration(seq-from) * time.Second / time.Duration(o.rate))
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
		buf = faultnet.AppendMessage(buf[:0], faultnet.Newline, seq, o.size)
		if _, err := c.Write(buf); err != nil {
			errs.Add(1)
		}
		written.Store(int64(seq + 1))
	}
	return nil
}

// row is one line of the table.
type row struct {
	fault, client string
	r             faultnet.Report
	redials       int64
	errs          int64
	took          time.Duration
	note          string
}

// faultError is a failure to apply the fault itself.
type faultError struct{ err error }

func (e faultError) Error() string { return e.err.Error() }

func applyFault(srv *faultnet.Server, fault string) error {
	switch fault {
	case "fin":
		srv.FIN()
	case "rst":
		srv.RST()
	case "drain":
		srv.HalfClose()
	case "restart":
		if err := srv.Restart(restartDown); err != nil {
			return faultError{err}
		}
	case "blackhole":
		if err := srv.Blackhole(); err != nil {
			return faultError{err}
		}
	case "failover":
		if err := srv.Refuse(); err != nil {
			return faultError{err}
		}
		srv.RST()
	}
	return nil
}

// runOne streams to a fresh server, applies fault once a third of the
// messages were read, and returns the server's report.
func runOne(ctx context.Context, o options, fault, name string, prog *progress) (row, error) {
	rw := row{fault: fault, client: name}
	srv, err := faultnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rw, err
	}
	defer srv.Close()
	servers := []*faultnet.Server{srv}
	var fallbacks []string
	if fault == "failover" {
		fb, err := faultnet.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return rw, err
		}
		defer fb.Close()
		servers = append(servers, fb)
		fallbacks = []string{fb.Addr().String()}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	dir, err := spoolDir(name)
	if err != nil {
		return rw, err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	c, err := dialClient(ctx, name, srv.Addr().String(), dir, fallbacks...)
	if err != nil {
		return rw, fmt.Errorf("%s: dial: %w", name, err)
	}
	errs, err := streamFaulted(ctx, o, c, fault+" / "+name, prog, func() error {
		if err := srv.WaitReceived(ctx, o.n/3); err != nil {
			return fmt.Errorf("waiting for the server to read %d messages: %w", o.n/3, err)
		}
		return applyFault(srv, fault)
	})
	if err != nil {
		return rw, err
	}
	if err := c.Close(); err != nil {
		var ue *reconn.UnconfirmedError
		if errors.As(err, &ue) {
			rw.note = fmt.Sprintf("%s/%s: Close: %d messages unconfirmed", fault, name, ue.Messages)
		}
	}
	n := c.counters()
	wctx, wcancel := context.WithTimeout(ctx, waitTimeout)
	defer wcancel()
	if len(servers) == 1 {
		if err := srv.WaitConns(wctx, int(n.dials)); err != nil {
			// A connection can complete its handshake just before the
			// listener closes and never be accepted; report it and go on.
			rw.note = fmt.Sprintf("%s/%s: server accepted %d of %d connections", fault, name, len(srv.Report(0).Conns), n.dials)
		}
	}
	for _, s := range servers {
		if err := s.WaitEOF(wctx); err != nil {
			return rw, fmt.Errorf("%s/%s: waiting for the server to read to the end: %w", fault, name, err)
		}
	}
	rw.r = faultnet.ReportAll(o.n, servers...)
	rw.redials = n.redials
	rw.errs = errs
	rw.took = time.Since(start)
	return rw, nil
}

// streamFaulted streams the messages to c while fault runs, and returns
// the count of failed writes once both are done. If either fails, it
// closes c and returns the error.
func streamFaulted(ctx context.Context, o options, c client, label string, prog *progress, fault func() error) (int64, error) {
	faulted := make(chan error, 1)
	go func() { faulted <- fault() }()
	var errs atomic.Int64
	prog.begin(label, o.n)
	err := stream(ctx, o, c, 0, &prog.written, &errs)
	prog.end()
	if ferr := <-faulted; err == nil {
		err = ferr
	}
	if err != nil {
		c.Close()
		return 0, err
	}
	return errs.Load(), nil
}

func runLocal(ctx context.Context, o options, stdout, stderr io.Writer) error {
	runs := 0
	for _, fault := range o.faults {
		runs += len(clientsFor(fault, o.clients))
	}
	prog := newProgress(stderr, runs)
	var rows []row
	start := time.Now()
	for _, fault := range o.faults {
		clients := clientsFor(fault, o.clients)
		if len(clients) == 0 {
			only := "plain+retry, check only, reconn, reconn async and reconn spool"
			if o := onlyClients(fault); o != nil {
				only = strings.Join(o, " and ")
			}
			fmt.Fprintf(stdout, "%s: skipped: runs with %s only\n", fault, only)
		}
		for _, name := range clients {
			run := runOne
			switch fault {
			case "kill":
				run = runKill
			case "collector":
				run = runCollector
			}
			rw, err := run(ctx, o, fault, name, prog)
			var fe faultError
			if errors.As(err, &fe) && fault == "blackhole" {
				fmt.Fprintf(stdout, "blackhole: skipped: %v\n", fe.err)
				prog.skip(len(clients) - 1)
				break
			}
			if err != nil {
				return err
			}
			rows = append(rows, rw)
		}
	}
	printTable(stdout, o, rows, time.Since(start))
	return nil
}

// onlyClients returns the clients that fault runs with, if it runs with
// some only.
func onlyClients(fault string) []string {
	switch fault {
	case "kill":
		return killClients
	case "collector":
		return forwardClients
	}
	return nil
}

// clientsFor returns the clients, of those chosen, that fault runs with:
// the Forward clients run in the collector fault alone.
func clientsFor(fault string, chosen []string) []string {
	only := onlyClients(fault)
	var out []string
	for _, c := range chosen {
		if only != nil && slices.Contains(only, c) || only == nil && !slices.Contains(forwardClients, c) {
			out = append(out, c)
		}
	}
	return out
}

// runAddr streams to a server the program does not control and prints
// live counters once a second.
func runAddr(ctx context.Context, o options, stdout io.Writer) error {
	pace := "full speed"
	if o.rate > 0 {
		pace = fmt.Sprintf("%d/s", o.rate)
	}
	fmt.Fprintf(stdout, "Streaming %d messages of %d bytes (seq=0..%d, newline-framed, %s) to %s.\n", o.n, o.size, o.n-1, pace, o.addr)
	fmt.Fprintln(stdout, "Restart or kill the server while it runs. The program cannot see the server side,")
	fmt.Fprintln(stdout, "so there is no loss report: count the seq= numbers the server stored.")
	for _, name := range o.clients {
		dir, err := spoolDir(name)
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c, err := dialClient(ctx, name, o.addr, dir)
		if err != nil {
			return fmt.Errorf("%s: dial %s: %w", name, o.addr, err)
		}
		fmt.Fprintf(stdout, "\nclient %s:\n", name)
		var written, errs atomic.Int64
		done := make(chan error, 1)
		go func() { done <- stream(ctx, o, c, 0, &written, &errs) }()
		start := time.Now()
		line := func() {
			n := c.counters()
			last := "none"
			if n.lastErr != nil {
				last = n.lastErr.Error()
			}
			fmt.Fprintf(stdout, "%6.1fs  written %d/%d  redials %d  re-sent %d  write errors %d  last error: %s\n",
				time.Since(start).Seconds(), written.Load(), o.n, n.redials, n.resent, errs.Load(), last)
		}
		tick := time.NewTicker(time.Second)
		var serr error
	loop:
		for {
			select {
			case serr = <-done:
				break loop
			case <-tick.C:
				line()
			}
		}
		tick.Stop()
		cerr := c.Close()
		line()
		if cerr != nil {
			fmt.Fprintf(stdout, "Close: %v\n", cerr)
		}
		if errors.Is(serr, context.Canceled) {
			fmt.Fprintln(stdout, "interrupted")
			return nil
		}
		if serr != nil {
			return serr
		}
	}
	return nil
}

// spoolDir makes a new directory for the spool client's spool, or
// returns "" for the other clients; the caller removes it.
func spoolDir(name string) (string, error) {
	if name != "reconn spool" {
		return "", nil
	}
	return os.MkdirTemp("", "reconn-demo-spool-")
}
