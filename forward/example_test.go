package forward_test

import (
	"log"
	"log/slog"
	"time"

	"github.com/reconn/reconn/forward"
)

// A Conn as the writer of a slog handler: each log call is one Write,
// and so one record, whose "message" field holds the handler's line.
// Close, at shutdown, waits for the collector's acks.
func Example_slog() {
	c, err := (&forward.Dialer{Tag: "app.web"}).Dial("tcp", "fluentd.example.com:24224")
	if err != nil {
		log.Fatal(err) // a malformed address or bad options; the server may be down
	}
	defer c.Close()
	logger := slog.New(slog.NewJSONHandler(c, nil))
	logger.Info("request served", "path", "/", "took", 3*time.Millisecond)
}

// WriteRecord sends structured fields as a record of their own, which a
// collector can route and index without parsing a line.
func ExampleConn_WriteRecord() {
	c, err := forward.Dial("tcp", "fluentd.example.com:24224")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	err = c.WriteRecord(time.Now(), map[string]any{
		"level":  "info",
		"msg":    "request served",
		"status": 200,
		"took":   3 * time.Millisecond,
	})
	if err != nil {
		log.Print(err)
	}
}
