package every

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

func TestLoopRunsUntilStopped(t *testing.T) {
	var l Loop
	var n atomic.Int32
	l.Start(time.Millisecond, func(context.Context) { n.Add(1) })
	l.Start(time.Millisecond, func(context.Context) { t.Error("second Start ran its own function") })
	waitfor.True(5*time.Second, func() bool { return n.Load() >= 3 })
	l.Stop()
	after := n.Load()
	if after < 3 {
		t.Fatalf("ran %d times", after)
	}
	// Not a synchronisation: Stop already waited for the goroutine to end.
	// A grace period for the negative assertion, ten intervals long, in
	// which a loop that outlived Stop would run again.
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
