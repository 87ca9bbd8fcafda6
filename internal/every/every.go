// Package every runs a function at a fixed interval on its own goroutine
// until stopped. The background upkeep of several stages uses it: reloading
// certificate files (tlsmgr), refreshing IP lists and GeoIP databases
// (reputation), applying spooled ban commands (gateway).
package every

import (
	"context"
	"sync"
	"time"
)

// Loop is a periodic task. The zero value is ready; a Loop may be started
// again after Stop.
type Loop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start calls fn every interval until Stop; fn's context ends at Stop, so a
// slow fn (a feed download) is cut short. Starting a running Loop does
// nothing.
func (l *Loop) Start(interval time.Duration, fn func(ctx context.Context)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l.cancel, l.done = cancel, done
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	}()
}

// Stop ends the loop and waits for a running fn to return.
func (l *Loop) Stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel, l.done = nil, nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
