// Package memtest measures what code allocates and what it leaves live, for
// tests that guard the request path against whole-body copies and bodies
// kept past their request (issue 8: a 10 MB upload must not cost 10 MB).
// It is used by tests only.
package memtest

import (
	"io"
	"runtime"
)

// LiveHeap is the heap in use by live objects after full collections.
func LiveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC() // the second one empties the sync.Pool victim caches
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Measure runs f n times. It returns the bytes allocated per run, and the
// live heap before the first run and after the last.
func Measure(n int, f func()) (perRun, before, after uint64) {
	before = LiveHeap()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		f()
	}
	runtime.ReadMemStats(&m1)
	return (m1.TotalAlloc - m0.TotalAlloc) / uint64(n), before, LiveHeap()
}

// Repeat yields n bytes of pattern, repeated, without holding them: a
// 10 MB upload body that costs the test nothing.
func Repeat(pattern []byte, n int64) io.Reader {
	return &repeater{pattern: pattern, n: n}
}

type repeater struct {
	pattern []byte
	n, off  int64
}

func (p *repeater) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		b[i] = p.pattern[(p.off+int64(i))%int64(len(p.pattern))]
	}
	p.off += int64(len(b))
	return len(b), nil
}
