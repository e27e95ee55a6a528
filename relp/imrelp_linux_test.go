//go:build linux

package relp

import (
	"bufio"
	"bytes"
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
	// fifo makes the action write to a named pipe (see imrelpd.fifo)
	// instead of a file, so that the test decides when output flows.
	fifo bool
}

// imrelpd is a private rsyslogd that receives RELP with imrelp on a
// loopback port and writes each message's raw text and a newline to a
// file (or a named pipe).
type imrelpd struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	out  string // the output file or named pipe

	mu     sync.Mutex // guards stderr and running
	stderr bytes.Buffer
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current rsyslogd has exited
}

// startImrelp starts rsyslogd with imrelp and waits until it listens.
// The test skips if rsyslogd or its RELP module is not installed.
func startImrelp(t *testing.T, cfg imrelpConfig) *imrelpd {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &imrelpd{t: t, bin: bin, dir: dir, port: port, out: filepath.Join(dir, "out.log")}
	if cfg.fifo {
		r.out = filepath.Join(dir, "out.fifo")
		if err := syscall.Mkfifo(r.out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.mainQueue == "" {
		cfg.mainQueue = `queue.timeoutShutdown="60000" queue.timeoutActionCompletion="60000"`
	}
	conf := fmt.Sprintf(`global(workDirectory=%q)
main_queue(%s)
module(load="imrelp" %s)
input(type="imrelp" address="127.0.0.1" port="%d" %s)
template(name="raw" type="string" string="%%rawmsg%%\n")
action(type="omfile" file=%q template="raw")
`, dir, cfg.mainQueue, cfg.module, port, cfg.input, r.out)
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
	// rsyslogd gives no readiness signal: watch the kernel's socket table
	// for the listening socket, backing off, for a bounded time.
	for d, until := time.Millisecond, time.Now().Add(20*time.Second); !listening(r.port); d = min(2*d, 50*time.Millisecond) {
		select {
		case <-exited:
			r.t.Fatalf("rsyslogd exited at start:\n%s", r.errors())
		case <-time.After(d):
		}
		if time.Now().After(until) {
			r.t.Fatalf("rsyslogd does not listen on %s:\n%s", r.addr(), r.errors())
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

func countSeqs(t *testing.T, rd io.Reader) map[int]int {
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

// A fifoReader drains the named pipe that rsyslogd writes to.
type fifoReader struct {
	f    *os.File
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

// attach opens the named pipe and reads it until detach. It opens it
// for reading and writing, which does not block on Linux, so that a read
// waits for data instead of seeing the end when rsyslogd has not yet
// opened it or has closed it.
func (r *imrelpd) attach() *fifoReader {
	f, err := os.OpenFile(r.out, os.O_RDWR, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	fr := &fifoReader{f: f, done: make(chan struct{})}
	go func() {
		defer close(fr.done)
		b := make([]byte, 64<<10)
		for {
			n, err := f.Read(b)
			fr.mu.Lock()
			fr.buf.Write(b[:n])
			fr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	r.t.Cleanup(func() { fr.detach() })
	return fr
}

// detach stops reading and returns everything read.
// It may be called more than once.
func (fr *fifoReader) detach() []byte {
	fr.f.Close()
	<-fr.done
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.buf.Bytes()
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
