package faultnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"

	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/platformtest"
)

// startServer starts a server and connects a plain client to it.
func startServer() (*faultnet.Server, net.Conn) {
	srv, err := faultnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.WaitConns(context.Background(), 1); err != nil {
		log.Fatal(err)
	}
	return srv, c
}

func ExampleServer_FIN() {
	srv, c := startServer()
	defer srv.Close()
	defer c.Close()

	srv.FIN()
	_, err := c.Read(make([]byte, 1))
	fmt.Println(err == io.EOF)
	// Output: true
}

func ExampleServer_RST() {
	srv, c := startServer()
	defer srv.Close()
	defer c.Close()

	srv.RST()
	_, err := c.Read(make([]byte, 1))
	fmt.Println(platformtest.IsReset(err))
	// Output: true
}

func ExampleServer_Blackhole() {
	srv, c := startServer()
	defer srv.Close()
	defer c.Close()

	err := srv.Blackhole()
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		fmt.Println("no blackhole on this platform")
	case errors.Is(err, os.ErrPermission):
		fmt.Println("blackhole needs CAP_NET_ADMIN")
	case err != nil:
		log.Fatal(err)
	default:
		// Writes succeed until the send buffer is full; then they block
		// until the client's TCP_USER_TIMEOUT, if it set one.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		for err == nil {
			_, err = c.Write(make([]byte, 64<<10))
		}
		fmt.Println(errors.Is(err, os.ErrDeadlineExceeded))
	}
}

func ExampleServer_Restart() {
	srv, c := startServer()
	defer srv.Close()
	defer c.Close()

	if err := srv.Restart(50 * time.Millisecond); err != nil {
		log.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	fmt.Println("old connection:", platformtest.IsReset(err))

	if err := srv.WaitEvent(context.Background(), faultnet.EventListening, 1); err != nil {
		log.Fatal(err)
	}
	c2, err := net.Dial("tcp", srv.Addr().String())
	fmt.Println("new connection:", err)
	c2.Close()
	// Output:
	// old connection: true
	// new connection: <nil>
}

func ExampleServer_Report() {
	srv, c := startServer()
	defer srv.Close()

	// The client sends 0 to 9 but loses 3, repeats 5 and swaps 7 and 8.
	var b []byte
	for _, seq := range []int{0, 1, 2, 4, 5, 5, 6, 8, 7, 9} {
		b = faultnet.AppendMessage(b, faultnet.Newline, seq, 20)
	}
	c.Write(b)
	c.Close()

	if err := srv.WaitEOF(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(srv.Report(10))
	// Output:
	// sent=10 received=9 lost=1 unavoidable=0 client-lost=1 duplicated=1 out-of-order=1 unread=0 stalled=0 invalid=0 exact=true
	//   conn 1: received=10 duplicated=1 out-of-order=1 unread=0 stalled=0 invalid=0 bytes=200 unread-bytes=0 end=peer-closed
	//   client-lost seqs: [3]
}

func ExampleAppendMessage() {
	fmt.Printf("%q\n", faultnet.AppendMessage(nil, faultnet.Newline, 42, 16))
	fmt.Printf("%q\n", faultnet.AppendMessage(nil, faultnet.OctetCounting, 42, 16))
	// Output:
	// "seq=42 ........\n"
	// "13 seq=42 ......"
}
