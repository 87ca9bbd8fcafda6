package waf

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
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
