//go:build linux

package relp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/syslogtest"
)

// imrelpConfig configures a private rsyslogd with one imrelp input.
type imrelpConfig struct {
	// module holds extra parameters of module(load="imrelp" ...), such
	// as tls.tlslib="openssl".
	module string
	// input holds extra parameters of input(type="imrelp" ...), such as
	// tls="on" and its certificates.
	input string
	// mainQueue holds the parameters of main_queue(). The default gives
	// rsyslogd a minute at SIGTERM to write out what it has queued, so
	// that what it acknowledged is written.
	mainQueue string
	// global holds extra parameters of global(), such as
	// maxMessageSize="256k".
	global string
	// extra holds more configuration lines, such as another input.
	extra string
	// forward, if not nil, makes the action forward each message over
	// TCP to the sink instead of writing it to a file, so that the test
	// decides when output flows.
	forward *sink
}

// imrelpd is a private rsyslogd that receives RELP with imrelp on a
// loopback port and writes each message's raw text and a newline to a
// file, or forwards it to a sink.
type imrelpd struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	out  string // the output file

	mu     sync.Mutex // guards stderr and running
	stderr bytes.Buffer
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current rsyslogd has exited
}

// startImrelp starts rsyslogd with imrelp and waits until it listens.
// The test skips if rsyslogd or its RELP module is not installed.
func startImrelp(t testing.TB, cfg imrelpConfig) *imrelpd {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/rsyslogd")
	}
	if err != nil {
		t.Skipf("rsyslogd not installed (apt-get install rsyslog rsyslog-relp): %v", err)
	}
	if m, _ := filepath.Glob("/usr/lib/*/rsyslog/imrelp.so"); len(m) == 0 {
		if m, _ = filepath.Glob("/usr/lib/rsyslog/imrelp.so"); len(m) == 0 {
			t.Skip("rsyslog's RELP input module imrelp.so not installed (apt-get install rsyslog-relp)")
		}
	}
	dir := t.TempDir()
	port := syslogtest.FreePort(t)
	r := &imrelpd{t: t, bin: bin, dir: dir, port: port, out: filepath.Join(dir, "out.log")}
	action := fmt.Sprintf(`action(type="omfile" file=%q template="raw")`, r.out)
	if cfg.forward != nil {
		// While the sink refuses connections the action is suspended and
		// retried every second, forever: messages stay queued.
		action = fmt.Sprintf(`action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" template="raw" action.resumeRetryCount="-1" action.resumeInterval="1")`, cfg.forward.port)
	}
	if cfg.mainQueue == "" {
		cfg.mainQueue = `queue.timeoutShutdown="60000" queue.timeoutActionCompletion="60000"`
	}
	conf := fmt.Sprintf(`global(workDirectory=%q %s)
main_queue(%s)
module(load="imrelp" %s)
input(type="imrelp" address="127.0.0.1" port="%d" %s)
template(name="raw" type="string" string="%%rawmsg%%\n")
%s
%s
`, dir, cfg.global, cfg.mainQueue, cfg.module, port, cfg.input, action, cfg.extra)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("rsyslog.conf:\n%s\nrsyslogd's stderr:\n%s", conf, r.errors())
		}
	})
	return r
}

func (r *imrelpd) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// errors returns what rsyslogd wrote to its stderr.
func (r *imrelpd) errors() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

// Write collects rsyslogd's stderr.
func (r *imrelpd) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.Write(b)
}

// start runs rsyslogd in the foreground and waits until its port listens.
func (r *imrelpd) start() {
	r.t.Helper()
	cmd := exec.Command(r.bin, "-n", "-f", filepath.Join(r.dir, "rsyslog.conf"), "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = r, r
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	r.waitListening(r.port)
}

// waitListening waits until rsyslogd listens on port. It gives no
// readiness signal: watch the kernel's socket table for the listening
// socket, backing off, for a bounded time.
func (r *imrelpd) waitListening(port int) {
	r.mu.Lock()
	exited := r.exited
	r.mu.Unlock()
	for d, until := time.Millisecond, time.Now().Add(20*time.Second); !listening(port); d = min(2*d, 50*time.Millisecond) {
		select {
		case <-exited:
			r.t.Fatalf("rsyslogd exited at start:\n%s", r.errors())
		case <-time.After(d):
		}
		if time.Now().After(until) {
			r.t.Fatalf("rsyslogd does not listen on port %d:\n%s", port, r.errors())
		}
	}
}

// listening reports whether a TCP socket listens on port, from
// /proc/net/tcp: probing by connecting would open a RELP session (and a
// TLS handshake) that rsyslogd logs as an error.
func listening(port int) bool {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
			return true
		}
	}
	return false
}

// signal sends sig to rsyslogd.
func (r *imrelpd) signal(sig os.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		r.cmd.Process.Signal(sig)
	}
}

// stop ends rsyslogd with SIGTERM and waits for it to exit: it first
// writes out what it has queued, within queue.timeoutShutdown.
func (r *imrelpd) stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-exited
		r.t.Errorf("rsyslogd did not exit within 90 s of SIGTERM")
	}
}

// wait waits for rsyslogd to exit after a signal sent with signal.
func (r *imrelpd) wait() {
	r.mu.Lock()
	exited := r.exited
	r.cmd = nil
	r.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(90 * time.Second):
		r.t.Fatalf("rsyslogd did not exit within 90 s")
	}
}

// seqs counts the sequence numbers in what rsyslogd wrote to its file.
func (r *imrelpd) seqs() map[int]int {
	r.t.Helper()
	f, err := os.Open(r.out)
	if err != nil {
		if os.IsNotExist(err) {
			return map[int]int{}
		}
		r.t.Fatal(err)
	}
	defer f.Close()
	return countSeqs(r.t, f)
}

func countSeqs(t testing.TB, rd io.Reader) map[int]int {
	t.Helper()
	got := make(map[int]int)
	sc := bufio.NewScanner(rd)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if seq, ok := faultnet.ParseSeq(sc.Bytes()); ok {
			got[seq]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// A sink is a TCP port on 127.0.0.1 that refuses connections until
// listen, then reads newline-framed messages from every connection.
type sink struct {
	t    *testing.T
	port int

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	buf   bytes.Buffer
	wg    sync.WaitGroup
}

// newSink reserves a port: it listens on a free one and closes it again.
func newSink(t *testing.T) *sink {
	s := &sink{t: t, port: syslogtest.FreePort(t)}
	t.Cleanup(func() { s.close() })
	return s
}

// listen starts accepting on the sink's port.
func (s *sink) listen() {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Go(func() {
				b := make([]byte, 64<<10)
				for {
					n, err := c.Read(b)
					s.mu.Lock()
					s.buf.Write(b[:n])
					s.mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
	})
}

// close stops listening, closes every connection and returns everything
// received. It may be called more than once.
func (s *sink) close() []byte {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Bytes()
}

// tlsInput returns imrelp's TLS parameters for the test certificates,
// with the given tls.authmode and any extra parameters.
func tlsInput(p *testPKI, authmode, extra string) string {
	return fmt.Sprintf(`tls="on" tls.cacert=%q tls.mycert=%q tls.myprivkey=%q tls.authmode=%q %s`,
		p.caFile, p.serverCert, p.serverKey, authmode, extra)
}

// checkAllWritten checks that rsyslogd wrote messages 0..n-1 once each.
func checkAllWritten(t *testing.T, got map[int]int, n int) {
	t.Helper()
	var missing []int
	nmissing, dup := 0, 0
	for seq := range n {
		switch c := got[seq]; {
		case c == 0:
			nmissing++
			if len(missing) < 20 {
				missing = append(missing, seq)
			}
		case c > 1:
			dup += c - 1
		}
	}
	if nmissing > 0 || dup > 0 || len(got) > n {
		t.Errorf("rsyslogd wrote %d distinct messages of %d: %d missing (first %v), %d duplicated, %d unknown", len(got), n, nmissing, missing, dup, len(got)-(n-nmissing))
	}
}

// TestImrelpDelivery sends 10,000 messages to imrelp with a window of
// 128, over plain TCP and over TLS with each TLS library and
// authentication mode, and checks that rsyslogd wrote every one of them
// once.
func TestImrelpDelivery(t *testing.T) {
	const n, window = 10000, 128
	tests := []struct {
		name string
		tls  bool
		cfg  func(p *testPKI) imrelpConfig
	}{
		{"tcp", false, func(*testPKI) imrelpConfig { return imrelpConfig{} }},
		{"tls gnutls certvalid", true, func(p *testPKI) imrelpConfig {
			return imrelpConfig{input: tlsInput(p, "certvalid", "")}
		}},
		{"tls gnutls name", true, func(p *testPKI) imrelpConfig {
			return imrelpConfig{input: tlsInput(p, "name", `tls.permittedpeer=["`+testClientName+`"]`)}
		}},
		{"tls openssl certvalid", true, func(p *testPKI) imrelpConfig {
			return imrelpConfig{module: `tls.tlslib="openssl"`, input: tlsInput(p, "certvalid", "")}
		}},
		{"tls openssl name", true, func(p *testPKI) imrelpConfig {
			return imrelpConfig{module: `tls.tlslib="openssl"`, input: tlsInput(p, "name", `tls.permittedpeer=["`+testClientName+`"]`)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPKI(t, t.TempDir())
			r := startImrelp(t, tt.cfg(p))
			var conf = p.client
			if !tt.tls {
				conf = nil
			}
			ctx := testContext(t)
			start := time.Now()
			c, o, err := dialTestClient(ctx, t, r.addr(), conf, window)
			if err != nil {
				t.Fatal(err)
			}
			sw, _ := o.get("relp_software")
			sendAll(ctx, t, c, n)
			if err := c.close(ctx); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			codes, serverClose := c.results()
			for i, code := range codes {
				if code != codeOK {
					t.Fatalf("message %d answered %d; want 200", i, code)
				}
			}
			if !serverClose {
				t.Error("no serverclose hint after close")
			}
			r.stop()
			checkAllWritten(t, r.seqs(), n)
			t.Logf("%d messages answered 200 in %v (window %d); server software %q; serverclose after close: %v",
				n, elapsed.Round(time.Millisecond), window, strings.Join(sw, ","), serverClose)
		})
	}
}

// TestImrelpTLSAuth records which client certificates imrelp accepts in
// each tls.authmode, with each TLS library.
func TestImrelpTLSAuth(t *testing.T) {
	for _, lib := range []string{"gnutls", "openssl"} {
		t.Run(lib, func(t *testing.T) {
			p := newTestPKI(t, t.TempDir())
			other := newTestPKI(t, t.TempDir()) // an unrelated CA
			fp := sha1Fingerprint(p.client.Certificates[0].Certificate[0])
			noCert := p.client.Clone()
			noCert.Certificates = nil
			foreign := p.client.Clone()
			foreign.Certificates = other.client.Certificates
			noAuthmode := fmt.Sprintf(`tls="on" tls.cacert=%q tls.mycert=%q tls.myprivkey=%q`, p.caFile, p.serverCert, p.serverKey)
			name := `tls.permittedpeer=["` + testClientName + `"]`
			// Whether a session opens, as measured with librelp 1.11.0.
			tests := []struct {
				name            string
				input           string
				client          *tls.Config
				gnutls, openssl bool
			}{
				{"certvalid", tlsInput(p, "certvalid", ""), p.client, true, true},
				{"certvalid without a client certificate", tlsInput(p, "certvalid", ""), noCert, false, false},
				// librelp 1.11.0's GnuTLS code checks the chain in name
				// mode only: in certvalid mode a certificate from any CA
				// passes (fixed upstream after 1.13).
				{"certvalid with a certificate from another CA", tlsInput(p, "certvalid", ""), foreign, true, false},
				{"name", tlsInput(p, "name", name), p.client, true, true},
				{"name with a certificate from another CA", tlsInput(p, "name", name), foreign, false, false},
				{"name not permitted", tlsInput(p, "name", `tls.permittedpeer=["someone.else"]`), p.client, false, false},
				{"fingerprint", tlsInput(p, "fingerprint", `tls.permittedpeer=["`+fp+`"]`), p.client, true, true},
				{"fingerprint not permitted", tlsInput(p, "fingerprint", `tls.permittedpeer=["`+sha1Fingerprint(nil)+`"]`), p.client, false, false},
				// Without tls.authmode, GnuTLS checks fingerprints (and
				// none is permitted here); OpenSSL takes any client, with
				// or without a certificate.
				{"no authmode", noAuthmode, p.client, false, true},
				{"no authmode without a client certificate", noAuthmode, noCert, false, true},
				// Without certificates imrelp offers only anonymous
				// Diffie-Hellman, which crypto/tls does not implement.
				{"anonymous", `tls="on"`, &tls.Config{InsecureSkipVerify: true}, false, false},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					cfg := imrelpConfig{input: tt.input}
					if lib == "openssl" {
						cfg.module = `tls.tlslib="openssl"`
					}
					r := startImrelp(t, cfg)
					ctx := testContext(t)
					c, _, err := dialTestClient(ctx, t, r.addr(), tt.client, 8)
					if err == nil {
						sendAll(ctx, t, c, 10)
						err = c.close(ctx)
					}
					want := tt.gnutls
					if lib == "openssl" {
						want = tt.openssl
					}
					if (err == nil) != want {
						t.Errorf("session: %v; want success %v", err, want)
					}
					t.Logf("%s, %s: %v", lib, tt.name, errOr(err, "accepted"))
				})
			}
		})
	}
}

// sha1Fingerprint returns a certificate's fingerprint as imrelp's
// tls.permittedpeer takes it: "SHA1:" and colon-separated hex pairs.
func sha1Fingerprint(der []byte) string {
	sum := sha1.Sum(der)
	var b strings.Builder
	b.WriteString("SHA1")
	for _, c := range sum {
		fmt.Fprintf(&b, ":%02X", c)
	}
	return b.String()
}

func errOr(err error, ok string) string {
	if err == nil {
		return ok
	}
	return err.Error()
}

// exchange writes b on a new connection to addr and reads until the
// server closes the connection or wait has passed. It returns what it
// read and how reading ended: io.EOF, a reset, or a timeout if the
// server kept the connection open.
func exchange(t *testing.T, addr string, b []byte, wait time.Duration) ([]byte, error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(wait))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// howEnded names the way a read ended.
func howEnded(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "still open"
	}
	return err.Error()
}

// TestImrelpWire records imrelp's exact answers to a session and to
// commands that break the protocol (see wireCases).
func TestImrelpWire(t *testing.T) {
	r := startImrelp(t, imrelpConfig{})
	for _, tt := range wireCases() {
		t.Run(tt.name, func(t *testing.T) {
			got, err := exchange(t, r.addr(), tt.send, 2*time.Second)
			if string(got) != tt.want || howEnded(err) != tt.end {
				t.Errorf("imrelp answered %q, then %s; want %q, then %s", got, howEnded(err), tt.want, tt.end)
			}
			t.Logf("%s: sent %.120q; imrelp answered %q, then %s", tt.name, tt.send, got, howEnded(err))
		})
	}
}

// TestImrelpWindow sends to imrelp with windows of several sizes, and
// once with the client not reading at all until it has sent everything:
// imrelp sets no limit on the commands a client leaves unanswered.
func TestImrelpWindow(t *testing.T) {
	tests := []struct {
		n, window int
		pause     bool // send everything before reading any answer
	}{
		{10000, 1, false},
		{10000, 128, false},
		{10000, 1024, false},
		{100000, 100000, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d messages, window %d", tt.n, tt.window), func(t *testing.T) {
			r := startImrelp(t, imrelpConfig{})
			ctx := testContext(t)
			c, _, err := dialTestClient(ctx, t, r.addr(), nil, tt.window)
			if err != nil {
				t.Fatal(err)
			}
			if tt.pause {
				c.pause()
			}
			start := time.Now()
			for i := range tt.n {
				if _, err := c.send(ctx, testMessage(i)); err != nil {
					t.Fatalf("sending message %d: %v", i, err)
				}
			}
			sent := time.Since(start)
			c.resume()
			if err := c.wait(ctx); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			if err := c.close(ctx); err != nil {
				t.Fatal(err)
			}
			codes, _ := c.results()
			for i, code := range codes {
				if code != codeOK {
					t.Fatalf("message %d answered %d; want 200", i, code)
				}
			}
			r.stop()
			checkAllWritten(t, r.seqs(), tt.n)
			c.mu.Lock()
			maxPending := c.maxPending
			c.mu.Unlock()
			if tt.pause && maxPending < tt.n/2 {
				t.Errorf("at most %d commands unanswered at once; want nearly all %d", maxPending, tt.n)
			}
			t.Logf("window %d: %d messages sent in %v, all answered 200 after %v; at most %d commands unanswered at once",
				tt.window, tt.n, sent.Round(time.Millisecond), elapsed.Round(time.Millisecond), maxPending)
		})
	}
}

// TestImrelpAnswersAfterEnqueue finds when imrelp answers a message: once
// rsyslogd's main queue has taken it, before any action has written it,
// and also when the queue, full for queue.timeoutEnqueue, has thrown it
// away. Only flowcontrol="full" keeps imrelp from answering messages it
// could not queue.
//
// The output is forwarded to a sink that refuses connections until the
// test lets it listen, so that nothing leaves the queue before that.
func TestImrelpAnswersAfterEnqueue(t *testing.T) {
	const queue = `queue.size="20" queue.dequeueBatchSize="4" queue.timeoutEnqueue="100" queue.timeoutShutdown="60000" queue.timeoutActionCompletion="60000"`
	tests := []struct {
		flow string // imrelp's flowcontrol parameter
		n    int
		drop bool // whether imrelp answers messages that the queue dropped
	}{
		{"none", 40, true},
		{"light", 25, true}, // the default: 1 s of delay before each drop
		{"full", 40, false},
	}
	for _, tt := range tests {
		t.Run("flowcontrol "+tt.flow, func(t *testing.T) {
			snk := newSink(t)
			r := startImrelp(t, imrelpConfig{input: `flowcontrol="` + tt.flow + `"`, mainQueue: queue, forward: snk})
			ctx := testContext(t)
			c, _, err := dialTestClient(ctx, t, r.addr(), nil, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for i := range tt.n {
				if _, err := c.send(ctx, testMessage(i)); err != nil {
					t.Fatal(err)
				}
			}
			var before int
			if tt.drop {
				// Nothing can be written: answers beyond what the queue
				// holds are answers to messages it dropped.
				if err := c.wait(ctx); err != nil {
					t.Fatal(err)
				}
				before = c.numAnswered()
			} else {
				// Answers stop when the queue is full; watch for a while
				// that no more come.
				if err := c.waitAnswered(ctx, 1); err != nil {
					t.Fatal(err)
				}
				stalled, cancel := context.WithTimeout(ctx, 3*time.Second)
				c.waitAnswered(stalled, tt.n)
				cancel()
				before = c.numAnswered()
				if before >= tt.n {
					t.Fatalf("all %d messages answered with the output blocked", tt.n)
				}
			}
			snk.listen()
			if err := c.wait(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.close(ctx); err != nil {
				t.Fatal(err)
			}
			r.stop()
			written := countSeqs(t, bytes.NewReader(snk.close()))
			codes, _ := c.results()
			answered, lost := 0, 0
			for i, code := range codes {
				if code == codeOK {
					answered++
					if written[i] == 0 {
						lost++
					}
				}
			}
			c.mu.Lock()
			times := append([]time.Time(nil), c.times...)
			c.mu.Unlock()
			var gaps []string
			for i := 1; i < len(times) && len(gaps) < 6; i++ {
				if d := times[i].Sub(times[i-1]); d > 50*time.Millisecond {
					gaps = append(gaps, fmt.Sprintf("%d after %v", i, d.Round(10*time.Millisecond)))
				}
			}
			t.Logf("flowcontrol %s: %d sent; %d answered with the output blocked (first waits: %s); after the output was unblocked: %d answered 200, %d written, %d answered 200 and never written; %v in all",
				tt.flow, tt.n, before, strings.Join(gaps, ", "), answered, len(written), lost, time.Since(start).Round(10*time.Millisecond))
			if answered != tt.n {
				t.Errorf("%d of %d answered 200", answered, tt.n)
			}
			if tt.drop && lost == 0 {
				t.Errorf("every message answered was written; want some answered and dropped by the full queue")
			}
			if !tt.drop && lost != 0 {
				t.Errorf("%d messages answered 200 and never written", lost)
			}
		})
	}
}

// TestImrelpSIGTERM stops rsyslogd with SIGTERM while a client streams to
// it, and records what the client sees (answers, serverclose, how the
// connection ends) and what rsyslogd wrote: every message answered 200
// must be written, once, except that with its output blocked at the
// SIGTERM rsyslogd may drop what it queued (recorded, not asserted).
// Messages sent and not answered are what a client re-sends; those of
// them that were written anyway would be duplicated.
func TestImrelpSIGTERM(t *testing.T) {
	t.Run("streaming", func(t *testing.T) {
		for run := range 3 {
			// Stop after a different number of answers in each run.
			stopAfter := 5000 * (run + 1)
			sigterm(t, imrelpConfig{}, 128, stopAfter, nil, false)
		}
	})
	t.Run("output blocked", func(t *testing.T) {
		// The output goes to a sink that refuses connections, the main
		// queue holds 20 messages, and imrelp's default flow control
		// makes it wait 1 s before it drops a message: rsyslogd is
		// stopped while imrelp waits for room in the queue. The sink
		// listens 3 s later, so that rsyslogd can write out before it
		// exits.
		snk := newSink(t)
		cfg := imrelpConfig{forward: snk,
			mainQueue: `queue.size="20" queue.dequeueBatchSize="4" queue.timeoutShutdown="60000" queue.timeoutActionCompletion="60000"`}
		// 19 messages fit; the 20th waits.
		sigterm(t, cfg, 40, 19, snk, true)
	})
	t.Run("output never unblocked", func(t *testing.T) {
		// As above, but the output stays blocked and rsyslogd gives up
		// after its shutdown timeouts: what it answered is lost.
		snk := newSink(t)
		cfg := imrelpConfig{forward: snk,
			mainQueue: `queue.size="20" queue.dequeueBatchSize="4" queue.timeoutShutdown="1000" queue.timeoutActionCompletion="1000"`}
		sigterm(t, cfg, 40, 19, snk, false)
	})
}

// sigterm streams messages to a new rsyslogd with the given window, sends
// it SIGTERM once stopAfter messages have been answered, and reports.
// snk, if not nil, is the sink of cfg; if unblock, it listens 3 s after
// SIGTERM or once the session has ended, if sooner, so that rsyslogd can
// write out. If it never listens, every message answered must be lost.
func sigterm(t *testing.T, cfg imrelpConfig, window, stopAfter int, snk *sink, unblock bool) {
	t.Helper()
	r := startImrelp(t, cfg)
	ctx := testContext(t)
	c, _, err := dialTestClient(ctx, t, r.addr(), nil, window)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < 10_000_000; n++ {
			if _, err := c.send(ctx, testMessage(n)); err != nil {
				break
			}
		}
		sent <- n
	}()
	if err := c.waitAnswered(ctx, stopAfter); err != nil {
		t.Fatal(err)
	}
	term := time.Now()
	r.signal(syscall.SIGTERM)
	var unblocked time.Duration
	if snk != nil && unblock {
		// Give imrelp a few seconds to end the session while the output
		// is still blocked, then unblock the output.
		select {
		case <-c.readDone:
		case <-time.After(3 * time.Second):
		}
		unblocked = time.Since(term)
		snk.listen()
	}
	<-c.readDone
	ended := time.Since(term)
	nsent := <-sent
	// What a write on the dead connection gives.
	_, werr := c.nc.Write(appendFrame(nil, 1, cmdSyslog, testMessage(nsent)))
	r.wait()
	var written map[int]int
	if snk != nil {
		written = countSeqs(t, bytes.NewReader(snk.close()))
	} else {
		written = r.seqs()
	}
	codes, serverClose := c.results()
	answered, unanswered, unansweredWritten, lost, dup := 0, 0, 0, 0, 0
	for i, code := range codes {
		if i >= nsent {
			break // the last send failed: never on the wire
		}
		switch {
		case code == codeOK:
			answered++
			if written[i] == 0 {
				lost++
			}
		case code == 0:
			unanswered++
			if written[i] > 0 {
				unansweredWritten++
			}
		}
		if written[i] > 1 {
			dup++
		}
	}
	unblockedAt := ""
	switch {
	case snk != nil && !unblock:
		unblockedAt = " (output never unblocked)"
	case snk != nil:
		unblockedAt = fmt.Sprintf(" (output unblocked %v after SIGTERM)", unblocked.Round(time.Millisecond))
	}
	t.Logf("window %d, SIGTERM after %d answers: %d sent, %d answered 200, %d unanswered (%d of them written anyway); serverclose %v; connection ended with %s %v after SIGTERM%s; a write then: %v",
		window, stopAfter, nsent, answered, unanswered, unansweredWritten, serverClose, howEnded(c.err()), ended.Round(time.Millisecond), unblockedAt, errOr(werr, "no error"))
	switch {
	case snk != nil && !unblock:
		if lost != answered || answered == 0 {
			t.Errorf("%d of %d messages answered 200 lost; want all", lost, answered)
		}
	case snk != nil && dup == 0:
		// Whether rsyslogd writes out what it answered depends on its
		// output's retry falling after the sink is back and before its
		// shutdown gives the action up: measured, it lost all it had
		// queued in about 1 run in 10 on a busy machine. Recorded, not
		// asserted (see the package documentation).
		if lost > 0 {
			t.Logf("rsyslogd answered %d messages 200 and never wrote them", lost)
		}
	case lost > 0 || dup > 0:
		t.Errorf("%d messages answered 200 and not written, %d written twice", lost, dup)
	}
	if unanswered > window {
		t.Errorf("%d messages unanswered; the window is %d", unanswered, window)
	}
}

// TestImrelpOversize records what imrelp does with long messages: it
// answers 200 and keeps the first 8096 bytes, rsyslog's default
// maxMessageSize, which no offer tells the client. imrelp's maxDataSize
// alone does not change that; global(maxMessageSize) does.
func TestImrelpOversize(t *testing.T) {
	sizes := []int{8000, 8096, 8097, 20000, 200000}
	tests := []struct {
		name string
		cfg  imrelpConfig
		max  int // the longest message written whole
	}{
		{"defaults", imrelpConfig{}, 8096},
		{`input(maxDataSize="256k")`, imrelpConfig{input: `maxDataSize="256k"`}, 8096},
		{`global(maxMessageSize="256k")`, imrelpConfig{global: `maxMessageSize="256k"`}, 256 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startImrelp(t, tt.cfg)
			ctx := testContext(t)
			c, _, err := dialTestClient(ctx, t, r.addr(), nil, 8)
			if err != nil {
				t.Fatal(err)
			}
			for i, size := range sizes {
				// A message of exactly size bytes, without a trailing LF.
				msg := faultnet.AppendMessage([]byte("<13>Nov 25 12:00:00 host app: "), faultnet.Newline, i, size-29)
				if _, err := c.send(ctx, msg[:len(msg)-1]); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.wait(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.close(ctx); err != nil {
				t.Fatal(err)
			}
			r.stop()
			data, err := os.ReadFile(r.out)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			codes, _ := c.results()
			var report []string
			for i, size := range sizes {
				got := -1
				if i < len(lines) {
					got = len(lines[i])
				}
				report = append(report, fmt.Sprintf("%d bytes: answered %d, %d written", size, codes[i], got))
				if codes[i] != codeOK {
					t.Errorf("a message of %d bytes answered %d; want 200", size, codes[i])
				}
				if want := min(size, tt.max); got != want {
					t.Errorf("a message of %d bytes: %d written; want %d", size, got, want)
				}
			}
			t.Logf("%s: %s", tt.name, strings.Join(report, "; "))
		})
	}
}

// TestImrelpRestart streams to imrelp, restarts rsyslogd with SIGTERM in
// mid-stream, and sends again, in a new session, every message the first
// session left unanswered, as a RELP client does: nothing may be lost,
// and only a message written but unanswered may be written twice.
func TestImrelpRestart(t *testing.T) {
	const n, window, stopAfter = 30000, 128, 10000
	r := startImrelp(t, imrelpConfig{})
	ctx := testContext(t)
	c1, _, err := dialTestClient(ctx, t, r.addr(), nil, window)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan int, 1)
	go func() {
		i := 0
		for ; i < n; i++ {
			if _, err := c1.send(ctx, testMessage(i)); err != nil {
				break
			}
		}
		sent <- i
	}()
	if err := c1.waitAnswered(ctx, stopAfter); err != nil {
		t.Fatal(err)
	}
	r.signal(syscall.SIGTERM)
	<-c1.readDone
	nsent := <-sent
	r.wait()
	r.start()

	codes, _ := c1.results()
	var again []int
	for i := range nsent {
		if codes[i] != codeOK {
			again = append(again, i)
		}
	}
	c2, _, err := dialTestClient(ctx, t, r.addr(), nil, window)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range again {
		if _, err := c2.send(ctx, testMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := nsent; i < n; i++ {
		if _, err := c2.send(ctx, testMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c2.wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c2.close(ctx); err != nil {
		t.Fatal(err)
	}
	r.stop()
	got := r.seqs()
	lost, dup := 0, 0
	for i := range n {
		switch {
		case got[i] == 0:
			lost++
		case got[i] > 1:
			dup += got[i] - 1
		}
	}
	t.Logf("%d messages; SIGTERM after %d answers; the first session sent %d and left %d unanswered, sent again after the restart; lost %d, written twice %d",
		n, stopAfter, nsent, len(again), lost, dup)
	if lost > 0 || dup > len(again) {
		t.Errorf("lost %d, duplicated %d; want 0 lost and at most %d duplicated", lost, dup, len(again))
	}
}
