//go:build unix

package spool

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFirstWrite measures what the first write to each page of a
// segment's mapping costs, which decides how a spool keeps its mappings:
// a new mapping of a file whose pages are already in the page cache
// (what a segment made or reopened gets), the same after prefault (what
// prepare does), and a mapping whose pages were written before (what a
// spare that keeps its mapping gets). It reports ns/page; one op writes
// one byte in each page of 8 MiB.
//
//	go test -run '^$' -bench FirstWrite ./internal/spool/
func BenchmarkFirstWrite(b *testing.B) {
	const size = DefaultSegSize
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "seg"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := preallocate(f, size); err != nil {
		b.Fatal(err)
	}
	// A store alone, as Append's copy makes: a read first would fault the
	// page in for reading, then again for writing.
	var v byte
	touch := func(data []byte) {
		v++
		for i := 0; i < len(data); i += pageSize {
			data[i] = v
		}
	}
	mapped := func(b *testing.B) []byte {
		data, mh, err := mapFile(f, size)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { unmapFile(data, mh) })
		return data
	}
	pages := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(size/pageSize), "ns/page")
	}
	touch(mapped(b)) // the file's pages are in the page cache from here on
	for _, populate := range []bool{false, true} {
		name := "new-mapping"
		if populate {
			name = "new-mapping-prefaulted"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				data, mh, err := mapFile(f, size)
				if err != nil {
					b.Fatal(err)
				}
				if populate {
					prefault(data)
				}
				b.StartTimer()
				touch(data)
				b.StopTimer()
				unmapFile(data, mh)
				b.StartTimer()
			}
			pages(b)
		})
	}
	b.Run("kept-mapping", func(b *testing.B) {
		data := mapped(b)
		touch(data)
		for b.Loop() {
			touch(data)
		}
		pages(b)
	})
}
