package connlimit

import (
	"io"
	"os"
	"sync"
	"time"
)

// descriptors estimates the file descriptors in use: the client
// connections the Limiter counts exactly, plus everything else (upstream
// connections, files, the admin listener) as counted at the last sample.
// Sampling reads /proc/self/fd, which costs a directory read, so it runs at
// most every sampleEvery; the connections, which change fastest, are
// counted on every accept.
type descriptors struct {
	max, reserve int
	count        func() (int, bool)

	mu        sync.Mutex
	sampledAt time.Time
	other     int  // descriptors that are not client connections, at the last sample
	known     bool // count works here
}

const sampleEvery = 100 * time.Millisecond

// minReserve is the smallest automatic reserve: room for a burst of
// upstream dials, the audit files and a few admin requests.
const minReserve = 64

func (d *descriptors) init(limit, reserve int, count func() (int, bool)) {
	switch {
	case limit == 0:
		limit = fileLimit()
	case limit < 0:
		limit = 0 // off
	}
	if reserve <= 0 && limit > 0 {
		reserve = max(minReserve, limit/4)
	}
	if count == nil {
		count = procFDs
	}
	d.max, d.reserve, d.count = limit, reserve, count
}

// inUse returns the estimated descriptors in use with open client
// connections, sampling again when the last sample is old; ok is false
// when they cannot be counted here (then only connections count).
func (d *descriptors) inUse(open int64) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now := time.Now(); now.Sub(d.sampledAt) >= sampleEvery {
		d.sampledAt = now
		if n, ok := d.count(); ok {
			// Connections accepted or closed between the count and the
			// load of open make this off by a few, for one sample.
			d.other, d.known = max(0, n-int(open)), true
		}
	}
	return int(open) + d.other, d.known
}

// short reports whether the descriptors in use reach the limit less the
// reserve: then nothing more is accepted at all.
func (d *descriptors) short(open int64) bool {
	if d.max <= 0 {
		return false
	}
	used, _ := d.inUse(open)
	return used >= d.max-d.reserve
}

// clientBudget is how many descriptors client connections may hold before
// new connections are admitted by fair share only (0: no budget): half of
// what is above the reserve. Every client connection may need an upstream
// connection of its own (a request in flight to a target), so client
// connections alone must not fill the descriptors those dials need (issue
// 18: 1,500 connections under a limit of 1,024 made every dial fail).
func (d *descriptors) clientBudget() int {
	if d.max <= 0 {
		return 0
	}
	return max(1, (d.max-d.reserve)/2)
}

// procFDs counts this process's open descriptors where /proc exists.
func procFDs() (int, bool) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(1024)
		n += len(names)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, false
		}
	}
	return n - 1, true // the directory itself is one of them
}
