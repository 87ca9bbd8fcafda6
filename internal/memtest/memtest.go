// Package memtest measures what code allocates and what it leaves live, for
// tests that guard the request path against whole-body copies and bodies
// kept past their request (issue 8: a 10 MB upload must not cost 10 MB).
// It is used by tests only.
package memtest

import "runtime"

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
