package forwardinterop

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/fluentforwardreceiver"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/reconn/reconn/forward"
)

// tagAttribute is where the receiver puts a record's tag: conversion.go
// of fluentforwardreceiver (v0.165.1) sets the log record's attribute
// "fluent.tag" for every mode (Message, Forward, PackedForward). The
// field "message" (or "log") becomes the log record's body; every other
// field becomes an attribute of its own name.
const tagAttribute = "fluent.tag"

const interopTag = "app.interop"

// waitTimeout bounds the wait for the sink to hold a batch.
const waitTimeout = time.Minute

// sink is the receiver's next consumer: a consumertest.LogsSink. With
// holdAt set, the first batch that comes once the sink
// holds holdAt records is held, not taken, until the receiver's context
// ends (its Shutdown), and then refused with the context's error, as a
// pipeline that stops with the collector: the receiver acknowledges
// none of its records, and the client must send them again.
type sink struct {
	*consumertest.LogsSink
	holdAt int
	held   chan struct{} // closed when a batch is held

	mu      sync.Mutex
	holding bool
	refused int           // records in the batch held and refused
	took    chan struct{} // closed and replaced when a batch is taken
}

func newSink() *sink {
	return &sink{LogsSink: new(consumertest.LogsSink), held: make(chan struct{}), took: make(chan struct{})}
}

// waitCount waits until the sink holds n log records, or waitTimeout.
func (s *sink) waitCount(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		s.mu.Lock()
		ch := s.took
		s.mu.Unlock()
		if s.LogRecordCount() >= n {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("the sink holds %d log records after %v; want %d", s.LogRecordCount(), waitTimeout, n)
		}
	}
}

func (s *sink) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	s.mu.Lock()
	hold := s.holdAt > 0 && !s.holding && s.LogRecordCount() >= s.holdAt
	if hold {
		s.holding = true
		s.refused = ld.LogRecordCount()
		close(s.held)
	}
	s.mu.Unlock()
	if hold {
		<-ctx.Done()
		return ctx.Err()
	}
	err := s.LogsSink.ConsumeLogs(ctx, ld)
	s.mu.Lock()
	close(s.took)
	s.took = make(chan struct{})
	s.mu.Unlock()
	return err
}

// records returns every log record the sink holds, in arrival order.
func (s *sink) records() []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range s.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, lr)
				}
			}
		}
	}
	return out
}

// otelReceiver is a running fluentforwardreceiver.
type otelReceiver struct {
	rcv    receiver.Logs
	cancel context.CancelFunc
	once   sync.Once
}

// freeAddr returns a loopback address whose port is free for both TCP
// and UDP: the receiver listens on both (UDP for the protocol's
// heartbeats).
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("found no port free for both TCP and UDP")
	return ""
}

// startReceiver starts a fluentforwardreceiver on addr that hands what
// it takes to next.
//
// The receiver's Start listens on TCP and then on UDP, and returns the
// error if either fails, without closing the TCP listener it may already
// hold (receiver.go, v0.165.1), which would then keep the port from any
// later receiver. So the port is first probed until both protocols can
// bind it: after a Shutdown, the old receiver's UDP socket is closed by
// a goroutine of its own, a little later, and the TCP port may be
// lingering in TIME_WAIT (SO_REUSEADDR, Go's default on listeners, lets
// a new listener bind it then).
func startReceiver(t *testing.T, addr string, next *sink) *otelReceiver {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := probe(addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the port of %s did not become free: %v", addr, err)
		}
		// The old socket's close is an event this test cannot wait
		// on: give its goroutine the processor and try again.
		time.Sleep(time.Millisecond)
	}
	f := fluentforwardreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*fluentforwardreceiver.Config)
	cfg.ListenAddress = addr
	rcv, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	// Start derives the context of its goroutines from this one; if
	// Start fails, cancelling it ends the collector goroutine that
	// Start had already started, which Shutdown would not.
	ctx, cancel := context.WithCancel(context.Background())
	if err := rcv.Start(ctx, componenttest.NewNopHost()); err != nil {
		cancel()
		t.Fatalf("starting the receiver on %s: %v", addr, err)
	}
	r := &otelReceiver{rcv: rcv, cancel: cancel}
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

func probe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	return pc.Close()
}

// shutdown shuts the receiver down; only the first call does anything.
// Shutdown returns without waiting for the receiver's goroutines, which
// end soon after: goleak, in TestMain, waits for them.
func (r *otelReceiver) shutdown(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		if err := r.rcv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		r.cancel()
	})
}

// structured returns the fields of the i-th WriteRecord record, and the
// value each should have in the log record the receiver makes of it.
func structured(i int) (fields map[string]any, want map[string]any) {
	fields = map[string]any{
		"message": fmt.Sprintf("w-%d", i),
		"service": "checkout",
		"count":   1_000_000_007 * (i + 1),
		"neg":     -5 - i,
		"ratio":   0.25 + float64(i),
		"ok":      i%2 == 0,
		"ctx": map[string]any{
			"user":  "u-" + strconv.Itoa(i),
			"depth": 2,
			"inner": map[string]any{"flag": true, "pi": 3.5},
		},
	}
	// The receiver decodes integers to int64 (or uint64, made int64),
	// floats to float64, and maps to maps: pcommon's AsRaw gives them
	// back so.
	want = map[string]any{
		"service": "checkout",
		"count":   int64(1_000_000_007 * (i + 1)),
		"neg":     int64(-5 - i),
		"ratio":   0.25 + float64(i),
		"ok":      i%2 == 0,
		"ctx": map[string]any{
			"user":  "u-" + strconv.Itoa(i),
			"depth": int64(2),
			"inner": map[string]any{"flag": true, "pi": 3.5},
		},
	}
	return fields, want
}

// wantTypes is the pcommon type each structured field must arrive as.
var wantTypes = map[string]pcommon.ValueType{
	"service": pcommon.ValueTypeStr,
	"count":   pcommon.ValueTypeInt,
	"neg":     pcommon.ValueTypeInt,
	"ratio":   pcommon.ValueTypeDouble,
	"ok":      pcommon.ValueTypeBool,
	"ctx":     pcommon.ValueTypeMap,
}

// tally counts the log records by body, and fails the test for one
// whose tag is not interopTag or whose body is not a str.
func tally(t *testing.T, lrs []plog.LogRecord) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, lr := range lrs {
		tag, ok := lr.Attributes().Get(tagAttribute)
		if !ok || tag.Type() != pcommon.ValueTypeStr || tag.Str() != interopTag {
			t.Fatalf("log record %q: attribute %s = %v (present %v); want the str %q", lr.Body().AsString(), tagAttribute, tag.AsRaw(), ok, interopTag)
		}
		if lr.Body().Type() != pcommon.ValueTypeStr {
			t.Fatalf("log record body of type %v; want Str", lr.Body().Type())
		}
		got[lr.Body().Str()]++
	}
	return got
}

// TestOTelReceiverDelivers sends 1000 Writes and 10 WriteRecords to the
// OpenTelemetry Collector's fluentforwardreceiver and checks that each
// arrived once, with its tag, its text and its fields, in PackedForward
// and in CompressedPackedForward (Compress) requests.
//
// The receiver acknowledges a request whose option carries "chunk" with
// {"ack": chunk}, and only once its next consumer has taken the records
// (server.go and collector.go, v0.165.1): so once Close has returned nil,
// which it does only when every request is acknowledged, the sink holds
// everything, and the test looks at it without waiting.
//
// With DisableAcks the requests ask for no ack, which the receiver then
// does not send: Close returns once the receiver's kernel has every
// byte, and the test waits for the sink to hold the records.
func TestOTelReceiverDelivers(t *testing.T) {
	for _, mode := range []struct {
		name             string
		compress, noAcks bool
	}{{"PackedForward", false, false}, {"Compress", true, false}, {"DisableAcks", false, true}} {
		t.Run(mode.name, func(t *testing.T) { testOTelReceiverDelivers(t, mode.compress, mode.noAcks) })
	}
}

func testOTelReceiverDelivers(t *testing.T, compress, noAcks bool) {
	const writes, structs = 1000, 10
	next := newSink()
	addr := freeAddr(t)
	r := startReceiver(t, addr, next)
	defer r.shutdown(t)
	c, err := (&forward.Dialer{Tag: interopTag, Compress: compress, DisableAcks: noAcks}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range writes {
		if _, err := fmt.Fprintf(c, "r-%d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	for i := range structs {
		fields, _ := structured(i)
		if err := c.WriteRecord(base.Add(time.Duration(i)*time.Second), fields); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	st := c.Stats()
	t.Logf("client: %d records, %d dials, %d redials", st.Messages, st.Dials, st.Redials)
	if noAcks {
		next.waitCount(t, writes+structs)
	}

	lrs := next.records()
	got := tally(t, lrs)
	dups := 0
	for i := range writes {
		k := got[fmt.Sprintf("r-%d", i)]
		if k == 0 {
			t.Errorf("record r-%d did not arrive", i)
		}
		dups += max(k-1, 0)
	}
	for i := range structs {
		k := got[fmt.Sprintf("w-%d", i)]
		if k == 0 {
			t.Errorf("record w-%d did not arrive", i)
		}
		dups += max(k-1, 0)
	}
	if dups != 0 {
		t.Errorf("%d duplicates; want 0 (the receiver never went away)", dups)
	}
	if len(lrs) != writes+structs+dups {
		t.Errorf("the sink holds %d log records; want %d: some are not ours", len(lrs), writes+structs)
	}

	for _, lr := range lrs {
		body := lr.Body().Str()
		if strings.HasPrefix(body, "r-") {
			// A Write's record is {"message": text} and nothing else.
			if n := lr.Attributes().Len(); n != 1 {
				t.Errorf("record %s: %d attributes %v; want only %s", body, n, lr.Attributes().AsRaw(), tagAttribute)
			}
			continue
		}
		i, err := strconv.Atoi(strings.TrimPrefix(body, "w-"))
		if err != nil {
			t.Fatalf("unexpected body %q", body)
		}
		if ts, want := lr.Timestamp().AsTime(), base.Add(time.Duration(i)*time.Second); !ts.Equal(want) {
			t.Errorf("record %s: timestamp %v; want %v (EventTime keeps the nanoseconds)", body, ts, want)
		}
		_, want := structured(i)
		attrs := lr.Attributes()
		if n := attrs.Len(); n != len(want)+1 {
			t.Errorf("record %s: %d attributes %v; want %d", body, n, attrs.AsRaw(), len(want)+1)
		}
		for k, w := range want {
			v, ok := attrs.Get(k)
			if !ok {
				t.Errorf("record %s: no attribute %q", body, k)
				continue
			}
			if v.Type() != wantTypes[k] {
				t.Errorf("record %s: attribute %q of type %v; want %v", body, k, v.Type(), wantTypes[k])
			}
			if g := v.AsRaw(); !reflect.DeepEqual(g, w) {
				t.Errorf("record %s: attribute %q = %#v; want %#v", body, k, g, w)
			}
		}
	}
}

// TestOTelReceiverRestart streams 20,000 records while the receiver is
// shut down, after about 5,000 have reached the sink, and a new one is
// started on the same port: no record may be lost; duplicates (records
// the old receiver took whose acks the shutdown lost) are reported.
//
// The shutdown comes while the sink holds a batch (see sink): the
// receiver has read requests it has not acknowledged, which the client
// must send again to the new receiver.
func TestOTelReceiverRestart(t *testing.T) {
	const total = 20000
	next := newSink()
	next.holdAt = 5000
	addr := freeAddr(t)
	r := startReceiver(t, addr, next)

	d := &forward.Dialer{Tag: interopTag}
	d.MinBackoff = 5 * time.Millisecond
	d.MaxBackoff = 100 * time.Millisecond
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := fmt.Fprintf(c, "r-%d\n", i); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The first half goes while the receiver is up; the receiver is
	// shut down once 5,000 records have reached the sink and a batch is
	// held, with the rest still in the Conn or on the way.
	write(0, total/2)
	select {
	case <-next.held:
	case <-time.After(waitTimeout):
		t.Fatalf("the sink holds %d log records after %v; want at least %d", next.LogRecordCount(), waitTimeout, next.holdAt)
	}
	atShutdown := next.LogRecordCount()
	r.shutdown(t)
	next.mu.Lock()
	refused := next.refused
	next.mu.Unlock()
	t.Logf("the sink held %d records when the receiver was shut down, and refused a batch of %d", atShutdown, refused)
	// A quarter while no receiver listens, the last quarter once a new
	// one does.
	write(total/2, total*3/4)
	r = startReceiver(t, addr, next)
	write(total*3/4, total)
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	st := c.Stats()
	t.Logf("client: %d records, %d dials, %d redials, %d dial errors", st.Messages, st.Dials, st.Redials, st.DialErrors)

	got := tally(t, next.records())
	lost, dups := 0, 0
	for i := range total {
		k := got[fmt.Sprintf("r-%d", i)]
		if k == 0 {
			lost++
			if lost <= 10 {
				t.Errorf("record r-%d lost", i)
			}
		}
		dups += max(k-1, 0)
	}
	if lost > 0 {
		t.Errorf("%d of %d records lost", lost, total)
	}
	if len(got) != total {
		t.Errorf("the sink holds %d distinct records; want %d", len(got), total)
	}
	if st.Redials == 0 {
		t.Errorf("the client never redialed: the restart was not seen")
	}
	t.Logf("%d records delivered, %d duplicates", next.LogRecordCount(), dups)
}
