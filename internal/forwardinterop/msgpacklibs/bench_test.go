// Package msgpacklibs measures the MessagePack libraries that package
// forward could have used, tinylib/msgp and vmihailenco/msgpack, on the
// entries that its own encoder's benchmark (BenchmarkEncode in package
// forward) encodes: [EventTime, {"message": 100 bytes}] for a Write, and
// [EventTime, fields] for a WriteRecord of fields.
//
//	go test -run '^$' -bench . -count 3 .
//	(cd ../../.. && go test -run '^$' -bench Encode -count 3 ./forward/)
package msgpacklibs

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// fields is benchFields of package forward's BenchmarkEncode.
var fields = map[string]any{
	"level":  "info",
	"msg":    "request served",
	"status": 200,
	"bytes":  int64(5120),
	"user":   "u-1234",
	"ok":     true,
	"ratio":  0.25,
}

var (
	when = time.Unix(1700000000, 123456789)
	line = strings.Repeat("x", 100)
)

// eventTime is Fluentd's EventTime, the extension of type 0: seconds and
// nanoseconds, each a big-endian uint32.
type eventTime struct{ t time.Time }

func (e *eventTime) ExtensionType() int8 { return 0 }
func (e *eventTime) Len() int            { return 8 }
func (e *eventTime) MarshalBinaryTo(b []byte) error {
	binary.BigEndian.PutUint32(b, uint32(e.t.Unix()))
	binary.BigEndian.PutUint32(b[4:], uint32(e.t.Nanosecond()))
	return nil
}
func (e *eventTime) UnmarshalBinary(b []byte) error { return nil }

func BenchmarkMsgp(b *testing.B) {
	et := &eventTime{when}
	buf := make([]byte, 0, 512)
	b.Run("line", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = msgp.AppendArrayHeader(buf[:0], 2)
			buf, _ = msgp.AppendExtension(buf, et)
			buf = msgp.AppendMapHeader(buf, 1)
			buf = msgp.AppendString(buf, "message")
			buf = msgp.AppendString(buf, line)
		}
		b.ReportMetric(float64(len(buf)), "bytes/entry")
	})
	b.Run("fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var err error
			buf = msgp.AppendArrayHeader(buf[:0], 2)
			buf, _ = msgp.AppendExtension(buf, et)
			if buf, err = msgp.AppendMapStrIntf(buf, fields); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/entry")
	})
}

func BenchmarkVmihailenco(b *testing.B) {
	var out bytes.Buffer
	enc := msgpack.NewEncoder(&out)
	var ts [8]byte
	binary.BigEndian.PutUint32(ts[:], uint32(when.Unix()))
	binary.BigEndian.PutUint32(ts[4:], uint32(when.Nanosecond()))
	head := func() {
		out.Reset()
		enc.EncodeArrayLen(2)
		enc.EncodeExtHeader(0, 8)
		out.Write(ts[:])
	}
	b.Run("line", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			head()
			enc.EncodeMapLen(1)
			enc.EncodeString("message")
			enc.EncodeString(line)
		}
		b.ReportMetric(float64(out.Len()), "bytes/entry")
	})
	b.Run("fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			head()
			if err := enc.Encode(fields); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(out.Len()), "bytes/entry")
	})
}
