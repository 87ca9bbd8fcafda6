package every

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoopRunsUntilStopped(t *testing.T) {
	var l Loop
	var n atomic.Int32
	l.Start(time.Millisecond, func(context.Context) { n.Add(1) })
	l.Start(time.Millisecond, func(context.Context) { t.Error("second Start ran its own function") })
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	l.Stop()
	after := n.Load()
	if after < 3 {
		t.Fatalf("ran %d times", after)
	}
	time.Sleep(10 * time.Millisecond)
	if n.Load() != after {
		t.Error("ran after Stop")
	}
	l.Stop() // idempotent
}

func TestStopCancelsARunningCall(t *testing.T) {
	var l Loop
	started := make(chan struct{})
	l.Start(time.Millisecond, func(ctx context.Context) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
	})
	<-started
	l.Stop() // returns only because the context was cancelled
}
