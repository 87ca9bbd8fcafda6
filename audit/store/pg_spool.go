package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// SpoolOptions configure a PostgreSQL sink's on-disk queue.
type SpoolOptions struct {
	// Dir holds the spooled batches, one file each (created 0700; files
	// 0600: records hold client addresses and request bodies).
	Dir string
	// MaxBytes bounds the files together. A batch that does not fit is
	// not spooled: Flush fails, the audit writer counts its records lost
	// (and reports degraded), and SpoolStats.Dropped counts them. Default:
	// 1 GiB.
	MaxBytes int64
	// Retry is how often delivery is tried while PostgreSQL is down.
	// Default: 1s.
	Retry time.Duration
}

// SpoolStats are the sink's counters, for metrics and readiness.
type SpoolStats struct {
	// Delivered counts records written to PostgreSQL (directly or from
	// the spool); Duplicates those already there (a redelivery).
	Delivered, Duplicates uint64
	// Spooled counts records put in the spool, Dropped records refused
	// because it was full.
	Spooled, Dropped uint64
	// Failures counts failed writes to PostgreSQL (direct or from the
	// spool).
	Failures uint64
	// Batches and Bytes are what the spool holds now.
	Batches int
	Bytes   int64
	// Down is true while PostgreSQL cannot be written to; LastError says
	// why.
	Down      bool
	LastError string
}

// PostgresSink writes audit records to the shared store in batches (one
// per audit writer Flush). While PostgreSQL cannot be written to, each
// batch goes to a file in the spool directory instead, and a background
// loop delivers the files oldest first once it answers. Records reach the
// database in the order they were flushed, and exactly once: a file is
// removed only after its batch committed, and a batch delivered twice (the
// commit happened but its answer was lost) is skipped by the (id, time)
// primary key. A restart finds the files left and goes on delivering.
type PostgresSink struct {
	p    *Postgres
	opts SpoolOptions

	pending   []row
	instances []string
	buf       bytes.Buffer

	mu      sync.Mutex // guards files, bytes, next; held for direct writes
	files   []string   // spooled batches, oldest first
	bytes   int64
	next    uint64
	stopped bool
	refused int64 // size of the last batch the full spool refused

	delivered, duplicates, spooled, dropped, failures atomic.Uint64
	down                                              atomic.Bool
	lastErr                                           atomic.Value // string

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

var (
	_ audit.Sink   = (*PostgresSink)(nil)
	_ audit.Named  = (*PostgresSink)(nil)
	_ audit.Prober = (*PostgresSink)(nil)
)

// Sink returns a sink for an audit.Writer that spools to opts.Dir while
// PostgreSQL is unreachable. Batches already in the directory (from a
// previous run) are delivered first.
func (p *Postgres) Sink(opts SpoolOptions) (*PostgresSink, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 30
	}
	if opts.Retry <= 0 {
		opts.Retry = time.Second
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit spool %s: %w", opts.Dir, err)
	}
	k := &PostgresSink{p: p, opts: opts, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	k.lastErr.Store("")
	ents, err := os.ReadDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("audit spool %s: %w", opts.Dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			// A batch cut off while being written: its Flush failed, so
			// the writer counted its records lost already.
			_ = os.Remove(filepath.Join(opts.Dir, name))
		case strings.HasSuffix(name, ".batch"):
			n, err := strconv.ParseUint(strings.TrimSuffix(name, ".batch"), 10, 64)
			if err != nil {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("audit spool %s: %w", opts.Dir, err)
			}
			k.files = append(k.files, name)
			k.bytes += info.Size()
			k.next = max(k.next, n+1)
		}
	}
	slices.Sort(k.files) // zero-padded: name order is spool order
	if len(k.files) > 0 {
		k.down.Store(true) // not known to be up until the backlog is out
	}
	go k.deliverLoop()
	k.signal()
	return k, nil
}

// SinkName is the name metrics and logs give this sink.
func (k *PostgresSink) SinkName() string { return "postgres" }

// Write adds e to the current batch.
func (k *PostgresSink) Write(e *audit.Entry) error {
	r, err := k.p.pgRow(e, &k.buf)
	if err != nil {
		return err
	}
	inst := e.Instance
	if inst == "" {
		inst = k.p.opts.Instance
	}
	k.pending = append(k.pending, r)
	k.instances = append(k.instances, inst)
	return nil
}

// Flush writes the batch to PostgreSQL or, when that fails or earlier
// batches wait in the spool, appends it to the spool. It fails only when
// the spool is full (or the disk refuses the file).
func (k *PostgresSink) Flush() error {
	rows, insts := k.pending, k.instances
	k.pending, k.instances = nil, nil
	if len(rows) == 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.files) == 0 && !k.down.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), k.p.opts.Timeout)
		n, err := k.p.insertRows(ctx, rows, insts)
		cancel()
		if err == nil {
			k.delivered.Add(uint64(n))
			k.duplicates.Add(uint64(len(rows) - n))
			return nil
		}
		k.failed(err)
	}
	return k.spool(rows)
}

// failed marks PostgreSQL down, logging once per outage.
func (k *PostgresSink) failed(err error) {
	k.failures.Add(1)
	k.lastErr.Store(err.Error())
	if !k.down.Swap(true) {
		k.p.opts.Log.Warn("audit store: postgres unreachable; spooling records to disk until it returns",
			"error", err, "spool", k.opts.Dir, "spool_max_bytes", k.opts.MaxBytes)
	}
}

// spool writes rows as one file (JSON lines), k.mu held.
func (k *PostgresSink) spool(rows []row) error {
	var b bytes.Buffer
	for i := range rows {
		b.Write(rows[i].json)
		b.WriteByte('\n')
	}
	if k.bytes+int64(b.Len()) > k.opts.MaxBytes {
		k.refused = int64(b.Len())
		k.dropped.Add(uint64(len(rows)))
		return fmt.Errorf("audit spool %s is full (%d of %d bytes): %d records not kept", k.opts.Dir, k.bytes, k.opts.MaxBytes, len(rows))
	}
	name := fmt.Sprintf("%020d.batch", k.next)
	path := filepath.Join(k.opts.Dir, name)
	if err := writeFileSync(path+".tmp", b.Bytes()); err != nil {
		return fmt.Errorf("audit spool: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		_ = os.Remove(path + ".tmp")
		return fmt.Errorf("audit spool: %w", err)
	}
	k.next++
	k.files = append(k.files, name)
	k.bytes += int64(b.Len())
	k.spooled.Add(uint64(len(rows)))
	k.signal()
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	return f.Close()
}

func (k *PostgresSink) signal() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// deliverLoop sends spooled batches, oldest first, until the spool is
// empty; on failure it waits Retry and tries again.
func (k *PostgresSink) deliverLoop() {
	defer close(k.done)
	retry := time.NewTimer(k.opts.Retry)
	defer retry.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-k.wake:
		case <-retry.C:
		}
		for k.deliverOne() {
		}
		retry.Reset(k.opts.Retry)
	}
}

// deliverOne delivers the oldest spooled batch; false when there is none
// or it failed.
func (k *PostgresSink) deliverOne() bool {
	k.mu.Lock()
	if len(k.files) == 0 || k.stopped {
		if len(k.files) == 0 && k.down.Load() && !k.stopped {
			// Down with nothing spooled (the spool was full, or the last
			// direct write failed and then the spool emptied): probe, so
			// the next batch goes straight to PostgreSQL again.
			ctx, cancel := context.WithTimeout(context.Background(), k.p.opts.Timeout)
			_, err := k.p.Ping(ctx)
			cancel()
			if err == nil {
				k.recovered()
			}
		}
		k.mu.Unlock()
		return false
	}
	name := k.files[0]
	k.mu.Unlock()

	path := filepath.Join(k.opts.Dir, name)
	rows, insts, size, err := k.readBatch(path)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), k.p.opts.Timeout)
		var n int
		n, err = k.p.insertRows(ctx, rows, insts)
		cancel()
		if err == nil {
			k.delivered.Add(uint64(n))
			k.duplicates.Add(uint64(len(rows) - n))
		}
	}
	if err != nil {
		k.mu.Lock()
		k.failed(err)
		k.mu.Unlock()
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		// Delivered but still on disk: delivering it again is harmless
		// (ON CONFLICT DO NOTHING), so keep going.
		k.p.opts.Log.Warn("audit spool: cannot remove a delivered batch", "file", path, "error", rmErr)
	}
	k.files = k.files[1:]
	k.bytes -= size
	if len(k.files) == 0 {
		k.recovered()
	}
	return true
}

// recovered marks PostgreSQL up again, k.mu held.
func (k *PostgresSink) recovered() {
	if k.down.Swap(false) {
		k.p.opts.Log.Info("audit store: postgres reachable again; spool delivered", "delivered", k.delivered.Load())
	}
	k.lastErr.Store("")
}

// readBatch reads a spooled batch back into rows.
func (k *PostgresSink) readBatch(path string) ([]row, []string, int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read spooled batch: %w", err)
	}
	var rows []row
	var insts []string
	var buf bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, audit.MaxRecordSize)
	for sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, nil, 0, fmt.Errorf("spooled batch %s: %w", path, err)
		}
		r, err := k.p.pgRow(&e, &buf)
		if err != nil {
			return nil, nil, 0, err
		}
		rows = append(rows, r)
		insts = append(insts, e.Instance)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, 0, fmt.Errorf("spooled batch %s: %w", path, err)
	}
	return rows, insts, int64(len(data)), nil
}

// Probe says whether a batch would be kept now: the spool has room for
// one as large as the last it refused.
func (k *PostgresSink) Probe() error {
	k.mu.Lock()
	room := k.bytes+k.refused <= k.opts.MaxBytes
	k.mu.Unlock()
	if room {
		return nil
	}
	return fmt.Errorf("audit spool %s is full", k.opts.Dir)
}

// Stats returns the counters.
func (k *PostgresSink) Stats() SpoolStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	return SpoolStats{Delivered: k.delivered.Load(), Duplicates: k.duplicates.Load(), Spooled: k.spooled.Load(), Dropped: k.dropped.Load(), Failures: k.failures.Load(),
		Batches: len(k.files), Bytes: k.bytes, Down: k.down.Load(), LastError: k.lastErr.Load().(string)}
}

// Degraded says whether records wait in the spool, and why.
func (k *PostgresSink) Degraded() (bool, string) {
	st := k.Stats()
	if !st.Down && st.Batches == 0 {
		return false, ""
	}
	why := fmt.Sprintf("postgres audit store unreachable, %d batch(es) spooled (%d of %d bytes)", st.Batches, st.Bytes, k.opts.MaxBytes)
	if st.LastError != "" {
		why += ": " + st.LastError
	}
	return true, why
}

// Close flushes the last batch (to PostgreSQL or the spool) and stops
// delivery; what is left in the spool is delivered by the next run.
func (k *PostgresSink) Close() error {
	err := k.Flush()
	k.mu.Lock()
	k.stopped = true
	k.mu.Unlock()
	close(k.stop)
	<-k.done
	return err
}
