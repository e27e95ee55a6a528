//go:build !(js || wasip1)

// The in-memory network of js/wasm and wasip1 refuses a dial with a flat
// message, not ECONNREFUSED, which is what this example shows.

package faultnet_test

import (
	"fmt"
	"net"

	"github.com/reconn/reconn/internal/platformtest"
)

func ExampleServer_Refuse() {
	srv, c := startServer()
	defer srv.Close()
	defer c.Close()

	srv.Refuse()
	_, err := net.Dial("tcp", srv.Addr().String())
	fmt.Println(platformtest.IsRefused(err))
	srv.Accept()
	c2, err := net.Dial("tcp", srv.Addr().String())
	fmt.Println(err)
	c2.Close()
	// Output:
	// true
	// <nil>
}
