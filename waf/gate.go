package waf

import (
	"container/list"
	"context"
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// Gate bounds how many requests are inside the rule engine at once, for the
// whole process (server.inspections). Inspection is CPU work: beyond a few
// per core, more at once buys no throughput, only memory — every Coraza
// transaction in flight holds its variables and a transformation cache
// that, pooled, keeps the size of the largest request it has seen (about
// 300 KiB after a 4 KB form) — and a slower p99, as the scheduler
// time-slices hundreds of half-done inspections.
//
// Work for a transaction that already exists (phase 2 after a long body,
// the response phases, phase 5) goes before new requests, first come,
// first served. Finishing what was started is what frees memory; admitting
// new requests first would let transactions pile up behind them.
//
// New requests are served round robin across client addresses (issue 18):
// each client with requests waiting has its own first-come queue, and a
// freed slot goes to the next client in turn. A client that keeps a
// thousand requests waiting gets one slot in turn like a client with one,
// so it cannot take every slot and cannot push others past
// inspection_wait. The client is the audit entry's address (decided by
// clientip), with IPv6 addresses grouped by /64 as the rate limiter does.
//
// A nil *Gate admits everything (tools that inspect one request at a time).
type Gate struct {
	mu      sync.Mutex
	slots   int
	inside  int
	urgent  list.List // of *waiter, transactions in flight
	turns   list.List // of *clientQueue with new requests waiting, in the order they are served
	clients map[string]*clientQueue
	waiting int // new requests waiting, over every client
	wait    time.Duration
}

// clientQueue holds one client's new requests waiting for a slot. It exists
// only while it has waiters.
type clientQueue struct {
	key     string
	waiters list.List // of *waiter
	turn    *list.Element
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
	return &Gate{slots: n, wait: wait, clients: map[string]*clientQueue{}}
}

// clientKey names the client of a request for the round robin: its audit
// entry's address, IPv6 grouped by /64 (one host can use any address of its
// /64). Requests without an address share one queue.
func clientKey(ctx context.Context) string {
	ip := audit.FromContext(ctx).ClientIP
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr().String()
		}
	}
	return ip
}

// Enter takes a slot for a new request, waiting for one if all are taken.
// It fails with ErrBusy after the gate's wait, or with the context's error
// when the request is cancelled (the client left) while it waits. A nil
// error must be paired with Leave.
func (g *Gate) Enter(ctx context.Context) error {
	if g == nil {
		return nil
	}
	return g.enter(ctx, false, g.wait)
}

// Resume takes a slot for a transaction already in flight: it waits behind
// other in-flight work only, never behind new requests, and without the
// gate's time limit (the request is already admitted); only the client
// leaving ends the wait. A nil error must be paired with Leave.
func (g *Gate) Resume(ctx context.Context) error {
	if g == nil {
		return nil
	}
	return g.enter(ctx, true, 0)
}

func (g *Gate) enter(ctx context.Context, urgent bool, limit time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err // the client already left: neither take nor queue for a slot
	}
	g.mu.Lock()
	if g.inside < g.slots && g.urgent.Len() == 0 && (urgent || g.waiting == 0) {
		g.inside++
		g.mu.Unlock()
		return nil
	}
	w := &waiter{ready: make(chan struct{})}
	var elem *list.Element
	var cq *clientQueue
	if urgent {
		elem = g.urgent.PushBack(w)
	} else {
		key := clientKey(ctx)
		cq = g.clients[key]
		if cq == nil {
			cq = &clientQueue{key: key}
			cq.turn = g.turns.PushBack(cq)
			g.clients[key] = cq
		}
		elem = cq.waiters.PushBack(w)
		g.waiting++
	}
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
	if urgent {
		g.urgent.Remove(elem)
	} else {
		g.dequeue(cq, elem)
	}
	return err
}

// dequeue removes one waiter of cq, and cq itself when it has no more.
func (g *Gate) dequeue(cq *clientQueue, elem *list.Element) {
	cq.waiters.Remove(elem)
	g.waiting--
	if cq.waiters.Len() == 0 {
		g.turns.Remove(cq.turn)
		delete(g.clients, cq.key)
	}
}

// Leave gives back the slot taken by Enter or Resume: to the oldest
// in-flight waiter, else to the oldest new request of the client whose
// turn it is (that client then goes to the back of the turns), else to the
// pool.
func (g *Gate) Leave() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if front := g.urgent.Front(); front != nil {
		g.urgent.Remove(front)
		close(front.Value.(*waiter).ready) // the slot passes on: inside is unchanged
		return
	}
	if turn := g.turns.Front(); turn != nil {
		cq := turn.Value.(*clientQueue)
		front := cq.waiters.Front()
		g.dequeue(cq, front)
		if cq.waiters.Len() > 0 {
			g.turns.MoveToBack(turn)
		}
		close(front.Value.(*waiter).ready)
		return
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
	return g.inside, g.urgent.Len() + g.waiting
}
