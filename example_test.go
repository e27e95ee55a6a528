package reconn_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reconn/reconn"
)

// The examples below each start a small server on the loopback interface
// that collects what it reads and hands it back once the client has gone,
// so that the output can be checked.

func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		defer func() { got <- lines }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s := bufio.NewScanner(c)
		for s.Scan() {
			lines = append(lines, s.Text())
		}
	}()

	c, err := reconn.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range []string{"first", "second", "third"} {
		// Each Write is one message: fmt.Fprintln makes a single Write.
		if _, err := fmt.Fprintln(c, line); err != nil {
			log.Fatal(err)
		}
	}
	// Close returns once the server's kernel has acknowledged every
	// message, redialing and re-sending if the server died meanwhile.
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}

	for _, line := range <-got {
		fmt.Println(line)
	}
	// Output:
	// first
	// second
	// third
}

// This example sends structured logs from log/slog to a collector. The
// text and JSON handlers write each record with a single Write call, so
// each record is one message: after a redial it is re-sent whole, never
// cut.
func Example_slog() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		defer func() { got <- lines }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s := bufio.NewScanner(c)
		for s.Scan() {
			lines = append(lines, s.Text())
		}
	}()

	c, err := reconn.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(c, &slog.HandlerOptions{
		// Leave out the time, so that the output below stays the same.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	logger.Info("server started", "port", 8080)
	logger.Warn("disk almost full", "free_mb", 512)
	logger.Error("request failed", "path", "/login", "err", errors.New("timeout"))
	// A Logger drops write errors; Close reports whether everything
	// written was delivered.
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}

	for _, line := range <-got {
		fmt.Println(line)
	}
	// Output:
	// level=INFO msg="server started" port=8080
	// level=WARN msg="disk almost full" free_mb=512
	// level=ERROR msg="request failed" path=/login err=timeout
}

// This example plugs a Dialer into an http.Transport: a Conn is a
// net.Conn, so it fits wherever a dial function is asked for.
func Example_http() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s\n", r.URL.Query().Get("name"))
	})
	srv := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	d := &reconn.Dialer{UserTimeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/hello?name=reconn")
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status)
	fmt.Print(string(body))

	// Closing the idle connections closes the Conns under them.
	tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	if err := <-served; err != http.ErrServerClosed {
		log.Fatal(err)
	}
	// Output:
	// 200 OK
	// hello, reconn
}

// This example is a syslog sender: RFC 5424 messages over TCP, framed by
// octet counting as RFC 6587 describes, each frame being the length of the
// message in bytes, a space, and the message. Unlike a newline after each
// message, octet counting lets a message hold newlines, such as a stack
// trace, and tells the receiver where it ends without looking inside.
func Example_syslog() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		var msgs []string
		defer func() { got <- msgs }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			// MSG-LEN SP SYSLOG-MSG; io.EOF here means the sender is done.
			prefix, err := r.ReadString(' ')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSuffix(prefix, " "))
			if err != nil || n <= 0 || n > 64<<10 {
				return
			}
			frame := make([]byte, n)
			if _, err := io.ReadFull(r, frame); err != nil {
				return
			}
			// PRI and VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID and
			// MSGID, then STRUCTURED-DATA (always "-" in this example),
			// then MSG.
			fields := strings.SplitN(string(frame), " ", 8)
			if len(fields) == 8 {
				msgs = append(msgs, fields[7])
			}
		}
	}()

	c, err := reconn.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	hostname, _ := os.Hostname()
	if hostname == "" {
		hostname = "-"
	}
	const facility = 1 // user-level messages
	send := func(severity int, msgid, msg string) error {
		m := fmt.Sprintf("<%d>1 %s %s %s %d %s - %s",
			facility*8+severity,
			time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
			hostname, "shop", os.Getpid(), msgid, msg)
		// One Write per frame, so a frame is re-sent whole or not at all.
		_, err := fmt.Fprintf(c, "%d %s", len(m), m)
		return err
	}
	if err := send(6, "ORDER", "order 1017 shipped"); err != nil {
		log.Fatal(err)
	}
	if err := send(3, "PAY", "payment failed:\n\tcard declined\n\tretry in 60s"); err != nil {
		log.Fatal(err)
	}
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}

	for _, msg := range <-got {
		fmt.Printf("%q\n", msg)
	}
	// Output:
	// "order 1017 shipped"
	// "payment failed:\n\tcard declined\n\tretry in 60s"
}

// This example writes to a unix domain stream socket. On Linux the
// acknowledgement count of a unix socket is what the server has read, so
// Close returns only once the server application has read every message.
func Example_unix() {
	dir, err := os.MkdirTemp("", "reconn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "log.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		defer func() { got <- lines }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s := bufio.NewScanner(c)
		for s.Scan() {
			lines = append(lines, s.Text())
		}
	}()

	c, err := reconn.Dial("unix", path)
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range []string{"over a unix socket", "the same as over TCP"} {
		if _, err := fmt.Fprintln(c, line); err != nil {
			log.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}

	for _, line := range <-got {
		fmt.Println(line)
	}
	// Output:
	// over a unix socket
	// the same as over TCP
}

// This example waits, before going on, until the server's kernel has
// acknowledged what was written, without closing the connection.
func ExampleConn_Flush() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		defer func() { got <- lines }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s := bufio.NewScanner(c)
		for s.Scan() {
			lines = append(lines, s.Text())
		}
	}()

	c, err := reconn.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.WriteString(c, "checkpoint 42 reached\n"); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// If ctx ends first, the error wraps an *UnconfirmedError that says
	// how many messages are still unacknowledged.
	err = c.Flush(ctx)
	fmt.Println("flush:", err)
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}

	for _, line := range <-got {
		fmt.Println("server got:", line)
	}
	// Output:
	// flush: <nil>
	// server got: checkpoint 42 reached
}

func ExampleConn_Stats() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
	}()

	c, err := reconn.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	for i := range 3 {
		if _, err := fmt.Fprintf(c, "metric.requests %d\n", i); err != nil {
			log.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
	<-done

	// Stats may be read at any time, also after Close.
	st := c.Stats()
	fmt.Println("dials:", st.Dials)
	fmt.Println("redials:", st.Redials)
	fmt.Println("messages:", st.Messages)
	fmt.Println("bytes:", st.Bytes)
	// Output:
	// dials: 1
	// redials: 0
	// messages: 3
	// bytes: 54
}

// This example sends lines over TLS to a server whose self-signed
// certificate is made on the spot. It is syslog over TLS (RFC 5425) in
// miniature; a real RFC 5425 sender frames its messages with octet
// counting, as in the syslog example. Each redial runs the handshake
// again.
func Example_tls() {
	// A self-signed certificate for 127.0.0.1, trusted by the client.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "log collector"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		defer func() { got <- lines }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s := bufio.NewScanner(c)
		for s.Scan() {
			lines = append(lines, s.Text())
		}
	}()

	d := &reconn.Dialer{
		// The server name is taken from the address: 127.0.0.1.
		TLSConfig: &tls.Config{RootCAs: roots},
	}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range []string{"encrypted", "and verified"} {
		if _, err := fmt.Fprintln(c, line); err != nil {
			log.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}

	for _, line := range <-got {
		fmt.Println(line)
	}
	// Output:
	// encrypted
	// and verified
}
