package relp_test

import (
	"context"
	"log"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/relp"
)

// Example sends log lines to rsyslogd's imrelp (module(load="imrelp")
// input(type="imrelp" port="2514")), and waits at the end until rsyslogd
// has answered every one.
func Example() {
	d := &relp.Dialer{Window: 256}
	d.Fallbacks = []string{"logs-b.example.com:2514"}
	nc, err := d.Dial("tcp", "logs-a.example.com:2514")
	if err != nil {
		log.Fatal(err) // a malformed address: the dial itself happens in the background
	}
	c := nc.(*reconn.Conn)
	for _, line := range []string{"<13>1 - host app - - - started", "<13>1 - host app - - - ready"} {
		if _, err := c.Write([]byte(line)); err != nil {
			log.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		log.Printf("not every message was answered: %v", err) // *reconn.UnconfirmedError
	}
	if err := c.Close(); err != nil {
		log.Print(err)
	}
}
