package waf

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"time"
)

// Gate bounds how many requests are inside the rule engine at once, for the
// whole process (server.inspections). Inspection is CPU work: beyond a few
// per core, more at once buys no throughput, only memory — every Coraza
// transaction in flight holds its variables and a transformation cache
// that, pooled, keeps the size of the largest request it has seen (about
// 300 KiB after a 4 KB form) — and a slower p99, as the scheduler time-slices
// hundreds of half-done inspections. Requests over the bound wait, queued
// by Go's channel (first come, first served), before their transaction
// exists.
//
// A nil *Gate admits everything (tools that inspect one request at a time).
type Gate struct {
	slots   chan struct{}
	wait    time.Duration
	waiting atomic.Int64
}

// ErrBusy is returned by Enter when no slot freed up within the wait.
var ErrBusy = errors.New("no inspection slot free within server.inspection_wait")

// NewGate returns a gate with n slots (n <= 0: twice runtime.GOMAXPROCS, at
// least 4) where a request waits at most wait for one.
func NewGate(n int, wait time.Duration) *Gate {
	if n <= 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	return &Gate{slots: make(chan struct{}, n), wait: wait}
}

// Enter takes a slot, waiting for one if all are taken. It fails with
// ErrBusy after the gate's wait, or with the context's error when the
// request is cancelled (the client left) while it waits. A nil error must
// be paired with Leave.
func (g *Gate) Enter(ctx context.Context) error {
	if g == nil {
		return nil
	}
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Leave gives back the slot taken by Enter.
func (g *Gate) Leave() {
	if g == nil {
		return
	}
	<-g.slots
}

// Slots is the number of requests that may be inspected at once.
func (g *Gate) Slots() int {
	if g == nil {
		return 0
	}
	return cap(g.slots)
}

// Busy is how many slots are taken and how many requests wait for one.
func (g *Gate) Busy() (inside, waiting int) {
	if g == nil {
		return 0, 0
	}
	return len(g.slots), int(g.waiting.Load())
}
