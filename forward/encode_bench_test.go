package forward

import (
	"bytes"
	"testing"
	"time"
)

// benchFields is the structured record of BenchmarkEncode, and of the
// libraries' benchmark in internal/forwardinterop/msgpacklibs: keep the
// two alike.
var benchFields = map[string]any{
	"level":  "info",
	"msg":    "request served",
	"status": 200,
	"bytes":  int64(5120),
	"user":   "u-1234",
	"ok":     true,
	"ratio":  0.25,
}

// BenchmarkEncode measures package forward's own MessagePack encoder on
// what a Write and a WriteRecord encode: an entry [EventTime, {"message":
// 100 bytes}], and one of benchFields. Its figures stand beside those of
// the msgpack libraries in internal/forwardinterop/msgpacklibs, which
// encode the same entries:
//
//	go test -run '^$' -bench Encode -count 3 ./forward/
func BenchmarkEncode(b *testing.B) {
	c := &Conn{key: appendStr(nil, defaultKey)}
	t := time.Unix(1700000000, 123456789)
	buf := make([]byte, 0, 512)
	b.Run("line", func(b *testing.B) {
		line := bytes.Repeat([]byte("x"), 100)
		b.ReportAllocs()
		for b.Loop() {
			buf = c.appendLine(buf, t, line)
		}
		b.ReportMetric(float64(len(buf)), "bytes/entry")
	})
	b.Run("fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = c.appendRecord(buf, t, benchFields); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/entry")
	})
}
