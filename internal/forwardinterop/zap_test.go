package forwardinterop

import (
	"fmt"
	"log"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/reconn/reconn/forward"
)

// A Conn as zap's output: a forward.Conn has a Sync method, so
// zapcore.AddSync hands it to the core as it is, and the logger's Sync,
// at shutdown, waits until the collector has acknowledged every record
// (one per log entry, its "message" field the entry's JSON). Without a
// Sync of its own, AddSync would wrap the writer with a Sync that does
// nothing.
func Example_zap() {
	c, err := (&forward.Dialer{Tag: "app.web"}).Dial("tcp", "fluentd.example.com:24224")
	if err != nil {
		log.Fatal(err) // a malformed address or bad options; the server may be down
	}
	defer c.Close()
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(c), zap.InfoLevel)
	logger := zap.New(core)
	defer logger.Sync()
	logger.Info("request served", zap.String("path", "/"), zap.Int("status", 200))
}

// TestZapSync logs through zap into a forward.Conn and the Collector's
// receiver, and checks that the logger's Sync returns only once every
// entry is in the receiver's sink: the receiver acknowledges a request
// once its next consumer has taken it, and Sync waits for the acks.
func TestZapSync(t *testing.T) {
	const entries = 500
	next := newSink()
	addr := freeAddr(t)
	r := startReceiver(t, addr, next)
	defer r.shutdown(t)
	c, err := (&forward.Dialer{Tag: interopTag}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ws := zapcore.AddSync(c)
	if _, same := ws.(*forward.Conn); !same {
		t.Fatalf("zapcore.AddSync wrapped the Conn in a %T: its Sync would not reach the Conn", ws)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "" // the record carries the time
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), ws, zap.InfoLevel))
	for i := range entries {
		logger.Info("request served", zap.Int("n", i))
	}
	if err := logger.Sync(); err != nil {
		t.Fatalf("logger.Sync = %v", err)
	}
	// Sync has returned: the sink must hold every entry, now.
	got := tally(t, next.records())
	for i := range entries {
		line := fmt.Sprintf(`{"level":"info","msg":"request served","n":%d}`, i)
		if got[line] != 1 {
			t.Errorf("entry %d arrived %d times; want once: %s", i, got[line], line)
		}
	}
	if len(got) != entries {
		t.Errorf("the sink holds %d distinct records; want %d", len(got), entries)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}
