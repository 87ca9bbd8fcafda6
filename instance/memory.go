package instance

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/config"
)

// limitMemory applies the memory limit for the instance's life and, when
// it is automatic, gives memory a burst left free back when idle.
func (i *Instance) limitMemory() error {
	var restore func()
	stopRelease := func() {}
	return i.add(Component{
		Name: "memory limit",
		Start: func() error {
			var auto bool
			restore, auto = applyMemoryLimit(i.cfg.Server, i.log)
			if auto {
				ctx, cancel := context.WithCancel(context.Background())
				stopRelease = cancel
				go releaseIdleMemory(ctx, i.log)
			}
			return nil
		},
		Stop: func() error {
			stopRelease()
			restore()
			return nil
		},
	})
}

// applyMemoryLimit sets the Go runtime's soft memory limit (issue 18, item
// 7) and returns a function that restores the previous one:
//
//   - server.memory_limit when the configuration sets it;
//   - else GOMEMLIMIT from the environment, which the runtime already
//     applied (GOMEMLIMIT=off: none);
//   - else automatic: three quarters of the container's memory limit
//     (cgroup v2 memory.max), or half of the machine's memory, at least
//     256 MiB. Near a container's limit the collector works harder before
//     the kernel's OOM killer would act.
//
// auto reports the automatic case: then memory that a burst left free is
// also given back to the system when it is idle (releaseIdleMemory). A
// limit close to what bursts use would return memory too, but one below the
// live heap of a legitimate load makes the collector run all the time: 128
// MiB under a 4,000-request burst cost 2,197 of them their inspection slot
// (503), where the automatic handling answered all and was back from 270 to
// 92 MiB within 30 s, against 272 MiB without (bench/dos, burst-open*).
func applyMemoryLimit(sc config.ServerConfig, log *slog.Logger) (restore func(), auto bool) {
	switch {
	case sc.MemoryLimit > 0:
		previous := debug.SetMemoryLimit(sc.MemoryLimit)
		return func() { debug.SetMemoryLimit(previous) }, false
	case os.Getenv("GOMEMLIMIT") != "":
		return func() {}, false
	}
	limit := automaticMemoryLimit()
	previous := debug.SetMemoryLimit(limit)
	log.Debug("memory limit (automatic)", "bytes", limit)
	return func() { debug.SetMemoryLimit(previous) }, true
}

// minAutomaticLimit is the least automatic limit: the compiled CRS alone
// takes about 25 MiB, and a busy proxy's live heap a few times that.
const minAutomaticLimit = 256 << 20

func automaticMemoryLimit() int64 {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return max(minAutomaticLimit, n/4*3)
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err == nil && kb > 0 {
					return max(minAutomaticLimit, kb<<10/2)
				}
			}
		}
	}
	return 1 << 30 // unknown: 1 GiB
}

// Idle release: every releaseCheck, when the heap (objects, live or not
// yet collected, plus free memory the runtime keeps for reuse) has grown by
// more than releaseGrowth over what was live after the last release, and
// at least releaseGrowth of it is free, one
// collection returns the free memory to the system, at most every
// releaseEvery. After a burst the runtime keeps what the burst needed until
// a collection happens to run and its background scavenger catches up;
// this returns it within about half a minute, at the cost of one
// collection of what is live (milliseconds), which under load the collector
// runs far more often anyway.
const (
	releaseCheck  = 10 * time.Second
	releaseEvery  = 30 * time.Second
	releaseGrowth = 64 << 20
)

func releaseIdleMemory(ctx context.Context, log *slog.Logger) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	read := func() (free, objects uint64, ok bool) {
		metrics.Read(samples)
		if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 {
			return 0, 0, false // not reported by this runtime
		}
		return samples[0].Value.Uint64(), samples[1].Value.Uint64(), true
	}
	_, baseline, ok := read()
	if !ok {
		return
	}
	var last time.Time
	t := time.NewTicker(releaseCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		free, objects, _ := read()
		// Free memory the runtime keeps is what a release returns: under
		// steady load there is little of it, and nothing is forced.
		if free < releaseGrowth || free+objects < baseline+releaseGrowth || time.Since(last) < releaseEvery {
			continue
		}
		last = time.Now()
		// Twice: the first collection moves pooled objects (sync.Pool)
		// to the pools' victim caches, the second frees them.
		debug.FreeOSMemory()
		debug.FreeOSMemory()
		_, baseline, _ = read()
		log.Debug("memory returned to the system", "heap_before", free+objects, "live_after", baseline)
	}
}
