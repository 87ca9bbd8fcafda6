package waitfor

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestTrue(t *testing.T) {
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 3; i++ {
			n.Add(1)
		}
	}()
	if !True(10*time.Second, func() bool { return n.Load() == 3 }) {
		t.Fatal("condition that became true reported false")
	}
	<-done
	if True(3*Interval, func() bool { return false }) {
		t.Fatal("condition that never held reported true")
	}
	calls := 0
	if !True(time.Hour, func() bool { calls++; return true }) || calls != 1 {
		t.Fatalf("a condition already true: %d calls, want 1 and no wait", calls)
	}
}
