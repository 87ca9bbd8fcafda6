package waf

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

func TestGateDefaults(t *testing.T) {
	tests := []struct {
		name string
		n    int
		want int
	}{
		{"explicit", 3, 3},
		{"automatic", 0, max(4, 2*runtime.GOMAXPROCS(0))},
		{"negative is automatic", -1, max(4, 2*runtime.GOMAXPROCS(0))},
	}
	for _, tt := range tests {
		if got := NewGate(tt.n, time.Second).Slots(); got != tt.want {
			t.Errorf("%s: %d slots, want %d", tt.name, got, tt.want)
		}
	}
	var none *Gate
	if err := none.Enter(context.Background()); err != nil {
		t.Errorf("nil gate refused: %v", err)
	}
	none.Leave()
	if in, w := none.Busy(); in != 0 || w != 0 {
		t.Errorf("nil gate busy %d/%d", in, w)
	}
}

func TestGateRefusals(t *testing.T) {
	g := NewGate(1, 20*time.Millisecond)
	if err := g.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Full: a second request times out, or leaves with its client.
	if err := g.Enter(context.Background()); !errors.Is(err, ErrBusy) {
		t.Errorf("full gate: %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	long := NewGate(1, time.Hour)
	if err := long.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := long.Enter(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v, want context.Canceled", err)
	}
	if in, w := long.Busy(); in != 1 || w != 0 {
		t.Errorf("after the refusals: %d inside, %d waiting; want 1, 0", in, w)
	}
	g.Leave()
	if err := g.Enter(context.Background()); err != nil {
		t.Errorf("freed slot not reusable: %v", err)
	}
}

// TestGateBound: never more than n inside at once, and every request gets
// in once slots free up.
func TestGateBound(t *testing.T) {
	const n, requests = 2, 40
	g := NewGate(n, time.Minute)
	var (
		mu              sync.Mutex
		inside, maxSeen int
		admitted        int
		wg              sync.WaitGroup
	)
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Enter(context.Background()); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			admitted++
			maxSeen = max(maxSeen, inside)
			mu.Unlock()
			runtime.Gosched() // let others try while this one is inside
			mu.Lock()
			inside--
			mu.Unlock()
			g.Leave()
		}()
	}
	wg.Wait()
	if maxSeen > n || admitted != requests {
		t.Errorf("%d inside at once (bound %d), %d of %d admitted", maxSeen, n, admitted, requests)
	}
}

// In-flight work (Resume) goes before new requests, and is not bound by
// the gate's wait; new requests keep their arrival order.
func TestGateResumeFirst(t *testing.T) {
	g := NewGate(1, time.Hour) // new requests that do not time out
	order := make(chan string, 3)
	queue := func(name string, enter func(context.Context) error) {
		go func() {
			if err := enter(context.Background()); err != nil {
				order <- name + ": " + err.Error()
				return
			}
			order <- name
			g.Leave()
		}()
	}
	waitFor := func(n int) {
		for {
			if _, w := g.Busy(); w == n {
				return
			}
			runtime.Gosched()
		}
	}
	if err := g.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	queue("new 1", g.Enter)
	waitFor(1)
	queue("new 2", g.Enter)
	waitFor(2)
	queue("in flight", g.Resume)
	waitFor(3)
	g.Leave()
	var got []string
	for range 3 {
		got = append(got, <-order)
	}
	if want := "in flight,new 1,new 2"; strings.Join(got, ",") != want {
		t.Errorf("admission order %v, want %s", got, want)
	}

	// Resume outlasts the wait that refuses new requests.
	short := NewGate(1, 10*time.Millisecond)
	if err := short.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := short.Enter(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("new request: %v, want ErrBusy", err)
	}
	done := make(chan error, 1)
	go func() { done <- short.Resume(context.Background()) }()
	for {
		if _, w := short.Busy(); w == 1 {
			break
		}
		runtime.Gosched()
	}
	time.Sleep(30 * time.Millisecond) // three times the wait: still waiting
	select {
	case err := <-done:
		t.Fatalf("Resume returned %v before a slot was free", err)
	default:
	}
	short.Leave()
	if err := <-done; err != nil {
		t.Errorf("Resume: %v", err)
	}
	short.Leave()
	if in, w := short.Busy(); in != 0 || w != 0 {
		t.Errorf("after all left: %d inside, %d waiting", in, w)
	}
}

// TestGateFairAcrossClients: new requests are served round robin across
// client addresses (issue 18: 1,500 connections of one address sending
// blocked requests left another address at 28% success, because the queue
// was first come, first served). Within one client the order is kept; an
// IPv6 /64 is one client.
func TestGateFairAcrossClients(t *testing.T) {
	tests := []struct {
		name    string
		arrive  []string // client address of each queued request, in order
		want    string   // admission order
		waiting int
	}{
		{"one busy client and one other", []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1", "198.51.100.7"},
			"192.0.2.1#1,198.51.100.7#1,192.0.2.1#2,192.0.2.1#3,192.0.2.1#4", 5},
		{"three clients take turns", []string{"192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.3"},
			"192.0.2.1#1,192.0.2.2#1,192.0.2.3#1,192.0.2.1#2,192.0.2.2#2", 5},
		{"an IPv6 /64 is one client", []string{"2001:db8::1", "2001:db8::2", "2001:db8:0:1::1"},
			"2001:db8::1#1,2001:db8:0:1::1#1,2001:db8::2#1", 3},
		{"one client keeps its order", []string{"192.0.2.1", "192.0.2.1", "192.0.2.1"},
			"192.0.2.1#1,192.0.2.1#2,192.0.2.1#3", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGate(1, time.Hour)
			if err := g.Enter(context.Background()); err != nil {
				t.Fatal(err)
			}
			order := make(chan string, len(tt.arrive))
			seen := map[string]int{}
			for i, ip := range tt.arrive {
				seen[ip]++
				name := fmt.Sprintf("%s#%d", ip, seen[ip])
				ctx := audit.WithEntry(context.Background(), &audit.Entry{ClientIP: ip})
				go func() {
					if err := g.Enter(ctx); err != nil {
						order <- name + ": " + err.Error()
						return
					}
					order <- name
				}()
				for { // queued in this order
					if _, w := g.Busy(); w == i+1 {
						break
					}
					runtime.Gosched()
				}
			}
			if _, w := g.Busy(); w != tt.waiting {
				t.Fatalf("%d waiting, want %d", w, tt.waiting)
			}
			var got []string
			for range tt.arrive {
				g.Leave() // hand the slot to the next in turn
				got = append(got, <-order)
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("admission order\n got %s\nwant %s", strings.Join(got, ","), tt.want)
			}
			g.Leave()
			if in, w := g.Busy(); in != 0 || w != 0 || len(g.clients) != 0 || g.turns.Len() != 0 {
				t.Errorf("after all left: %d inside, %d waiting, %d client queues", in, w, len(g.clients))
			}
		})
	}
}

// TestGateFairTimeouts: a request that gives up (timeout, client gone)
// leaves its client's queue, and an emptied queue leaves the turns.
func TestGateFairTimeouts(t *testing.T) {
	g := NewGate(1, time.Hour)
	if err := g.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(audit.WithEntry(context.Background(), &audit.Entry{ClientIP: "192.0.2.1"}))
	done := make(chan error, 1)
	go func() { done <- g.Enter(ctx) }()
	for {
		if _, w := g.Busy(); w == 1 {
			break
		}
		runtime.Gosched()
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if _, w := g.Busy(); w != 0 || len(g.clients) != 0 || g.turns.Len() != 0 {
		t.Fatalf("after the cancelled wait: %d waiting, %d client queues, %d turns", w, len(g.clients), g.turns.Len())
	}
	g.Leave()
	if in, _ := g.Busy(); in != 0 {
		t.Errorf("%d inside after Leave", in)
	}
}
