package waf

import (
	"container/list"
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
)

// Gate bounds how many requests are inside the rule engine at once, for the
// whole process (server.inspections). Inspection is CPU work: beyond a few
// per core, more at once buys no throughput, only memory — every Coraza
// transaction in flight holds its variables and a transformation cache
// that, pooled, keeps the size of the largest request it has seen (about
// 300 KiB after a 4 KB form) — and a slower p99, as the scheduler
// time-slices hundreds of half-done inspections.
//
// Waiters are served first come, first served, with one exception: work
// for a transaction that already exists (phase 2 after a long body, the
// response phases, phase 5) goes before new requests. Finishing what was
// started is what frees memory; admitting new requests first would let
// transactions pile up behind them.
//
// A nil *Gate admits everything (tools that inspect one request at a time).
type Gate struct {
	mu     sync.Mutex
	slots  int
	inside int
	urgent list.List // of *waiter, transactions in flight
	normal list.List // of *waiter, new requests
	wait   time.Duration
}

// waiter is one request waiting for a slot; ready is closed when the slot
// is handed over.
type waiter struct {
	ready chan struct{}
}

// ErrBusy is returned by Enter when no slot freed up within the wait.
var ErrBusy = errors.New("no inspection slot free within server.inspection_wait")

// NewGate returns a gate with n slots (n <= 0: twice runtime.GOMAXPROCS, at
// least 4) where a new request waits at most wait for one.
func NewGate(n int, wait time.Duration) *Gate {
	if n <= 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	return &Gate{slots: n, wait: wait}
}

// Enter takes a slot for a new request, waiting for one if all are taken.
// It fails with ErrBusy after the gate's wait, or with the context's error
// when the request is cancelled (the client left) while it waits. A nil
// error must be paired with Leave.
func (g *Gate) Enter(ctx context.Context) error {
	if g == nil {
		return nil
	}
	return g.enter(ctx, &g.normal, g.wait)
}

// Resume takes a slot for a transaction already in flight: it waits behind
// other in-flight work only, never behind new requests, and without the
// gate's time limit (the request is already admitted); only the client
// leaving ends the wait. A nil error must be paired with Leave.
func (g *Gate) Resume(ctx context.Context) error {
	if g == nil {
		return nil
	}
	return g.enter(ctx, &g.urgent, 0)
}

func (g *Gate) enter(ctx context.Context, queue *list.List, limit time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err // the client already left: neither take nor queue for a slot
	}
	g.mu.Lock()
	if g.inside < g.slots && g.urgent.Len() == 0 && (queue == &g.urgent || g.normal.Len() == 0) {
		g.inside++
		g.mu.Unlock()
		return nil
	}
	w := &waiter{ready: make(chan struct{})}
	elem := queue.PushBack(w)
	g.mu.Unlock()

	var timeout <-chan time.Time
	if limit > 0 {
		timer := time.NewTimer(limit)
		defer timer.Stop()
		timeout = timer.C
	}
	var err error
	select {
	case <-w.ready:
		return nil
	case <-timeout:
		err = ErrBusy
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-w.ready:
		// Handed a slot as the wait ended: take it after all, rather
		// than pass it on and refuse a request that got one.
		return nil
	default:
	}
	queue.Remove(elem)
	return err
}

// Leave gives back the slot taken by Enter or Resume: to the oldest
// in-flight waiter, else to the oldest new request, else to the pool.
func (g *Gate) Leave() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, q := range []*list.List{&g.urgent, &g.normal} {
		if front := q.Front(); front != nil {
			q.Remove(front)
			close(front.Value.(*waiter).ready) // the slot passes on: inside is unchanged
			return
		}
	}
	g.inside--
}

// Slots is the number of requests that may be inspected at once.
func (g *Gate) Slots() int {
	if g == nil {
		return 0
	}
	return g.slots
}

// Busy is how many slots are taken and how many requests wait for one.
func (g *Gate) Busy() (inside, waiting int) {
	if g == nil {
		return 0, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inside, g.urgent.Len() + g.normal.Len()
}
