package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sink persists encoded records. The Writer calls Write and Flush of a sink
// from one goroutine at a time, so sinks need no locking of their own.
//
// The Writer's counters are only as truthful as this contract:
//   - Write accepts one record, usually into memory. An error means that
//     record was not accepted; records accepted before are unaffected.
//   - Flush makes every record accepted since the previous Flush durable
//     enough to survive a process exit (the OS page cache is enough; a crash
//     may lose the tail). An error means the sink has discarded all of them
//     (the Writer counts them lost for this sink) and is ready for new
//     records: a sink never keeps an error, so it works again by itself once
//     the cause (a full disk) is gone.
//   - Close flushes as Flush does, then releases the sink.
type Sink interface {
	Write(e *Entry) error
	Flush() error
	Close() error
}

// Synchronous is implemented by sinks that must be written before the
// response to the request ends, in request order, instead of through the
// queue. The rule log is one: tools that send a request and then read the log
// (go-ftw, fail2ban) expect the request's lines to be complete by then. Such
// writes are serialised by the Writer and flushed at once. Synchronous sinks
// get every record: aggregation (see AggregateOptions) applies to the queued
// sinks only, because the tools that read them count lines.
type Synchronous interface {
	Sink
	WritesSynchronously()
}

// Named sinks give the name that metrics and logs show for them ("file",
// "store", "rule_log"); others are "sink1", "sink2", ...
type Named interface {
	SinkName() string
}

// Prober is implemented by sinks that can tell whether writing works again
// without writing a record. While a sink is failing the Writer probes it
// every ProbeInterval, so a degraded audit recovers (and an instance that
// refuses traffic while it is degraded serves again) even when no record
// arrives to try.
type Prober interface {
	Probe() error
}

// Failure policies: what the gateway does while the audit cannot be written
// (audit.on_failure).
const (
	// OnFailureServe keeps serving; the records of the meantime are lost,
	// counted and reported (metrics, /readyz text, rate-limited log lines).
	OnFailureServe = "serve"
	// OnFailureRefuse answers new requests 503 until every sink writes
	// again; /readyz fails so a load balancer sends traffic elsewhere.
	OnFailureRefuse = "refuse"
)

// Drop reasons: why a record reached no sink, or not every sink.
const (
	DropQueueFull    = "queue_full"
	DropWriterClosed = "writer_closed"
	DropSinkFailed   = "sink_failed"
)

// Options configure a Writer. The zero value is a Writer with the default
// queue, no aggregation and the serve failure policy.
type Options struct {
	// QueueSize bounds the records waiting to be written. Default:
	// DefaultQueueSize.
	QueueSize int
	// Log receives drop warnings and sink errors (rate-limited). Default:
	// slog.Default().
	Log *slog.Logger
	// Aggregate folds floods of near-identical decided records into summary
	// records. The zero value writes every record in full.
	Aggregate AggregateOptions
	// OnFailure is OnFailureServe (default) or OnFailureRefuse; see Refusing.
	OnFailure string
	// BatchSize is the most records handed to the sinks between two
	// flushes (one file write, one database transaction). Default: 256.
	BatchSize int
	// FlushInterval is the longest a written record waits for its flush
	// when the queue does not run empty. Default: 200ms.
	FlushInterval time.Duration
	// ErrorLogInterval is how often a failing sink is logged at most: one
	// line per interval with the counts since the previous one. Default: 10s.
	ErrorLogInterval time.Duration
	// ProbeInterval is how often a failing sink is probed. Default: 1s.
	ProbeInterval time.Duration
	// Now is the clock for aggregation windows, probes and log intervals.
	// Default: time.Now.
	Now func() time.Time
}

// DefaultQueueSize bounds the number of records waiting to be written.
const DefaultQueueSize = 8192

// Writer takes entries from request goroutines through a bounded queue and
// writes them to its sinks on one background goroutine, so a slow disk never
// stalls a request. When the queue is full the entry is dropped, counted and
// logged (at most once per second) rather than blocking traffic.
//
// Every submitted record ends in exactly one counter, weighted by the
// requests it stands for (a summary record of 5,000 refusals counts 5,000):
// written (every sink made it durable), or dropped by reason (queue full,
// writer closed, a sink failed). Requests folded into a summary whose window
// is still open are in neither yet.
type Writer struct {
	opts   Options
	log    *slog.Logger
	queue  chan item
	async  []*sinkState // written by the background goroutine
	syncMu sync.Mutex
	syncs  []*sinkState // written by Submit itself
	agg    *aggregator  // nil when aggregation is off
	done   chan struct{}
	syncCh chan chan struct{}

	written    atomic.Uint64
	dropped    [3]atomic.Uint64 // by dropIndex
	summaries  atomic.Uint64
	failing    atomic.Int32 // sinks currently failing
	refusing   atomic.Bool
	lastWarned atomic.Int64

	closeOnce sync.Once
	mu        sync.RWMutex // guards closed against a concurrent Submit
	closed    bool

	// Owned by the background goroutine.
	batch       int    // records handed to the sinks since the last flush
	batchWeight uint64 // requests they stand for
	batchFailed uint64 // of those, requests some sink did not accept
	lastSweep   time.Time
	lastProbe   time.Time
}

// item is one queued record.
type item struct {
	e          *Entry
	syncFailed bool // a synchronous sink could not write it
}

// sinkState is one sink with its counters and health.
type sinkState struct {
	sink    Sink
	name    string
	written atomic.Uint64 // records made durable
	lost    atomic.Uint64 // records accepted or offered, then lost
	errors  atomic.Uint64 // failed writes, flushes and probes
	failing atomic.Bool
	pending int // records accepted since the last flush (async sinks)

	mu                 sync.Mutex // guards the fields below
	lastErr            string
	since              time.Time // failing since
	outageLost         uint64    // records lost since then
	lastLog            time.Time
	unloggedErrs       uint64
	unloggedLost       uint64
	unloggedRecoveries int
}

// NewWriter starts a Writer with a queue of queueSize records (DefaultQueueSize
// when <= 0) that writes every record in full to sinks, in order.
func NewWriter(queueSize int, log *slog.Logger, sinks ...Sink) *Writer {
	return New(Options{QueueSize: queueSize, Log: log}, sinks...)
}

// New starts a Writer for opts that writes to sinks in order.
func New(opts Options, sinks ...Sink) *Writer {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.OnFailure == "" {
		opts.OnFailure = OnFailureServe
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 200 * time.Millisecond
	}
	if opts.ErrorLogInterval <= 0 {
		opts.ErrorLogInterval = 10 * time.Second
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Writer{
		opts: opts, log: opts.Log,
		queue: make(chan item, opts.QueueSize), done: make(chan struct{}), syncCh: make(chan chan struct{}),
	}
	for i, s := range sinks {
		st := &sinkState{sink: s, name: "sink" + strconv.Itoa(i+1)}
		if n, ok := s.(Named); ok {
			st.name = n.SinkName()
		}
		if _, ok := s.(Synchronous); ok {
			w.syncs = append(w.syncs, st)
		} else {
			w.async = append(w.async, st)
		}
	}
	if opts.Aggregate.enabled() && len(w.async) > 0 {
		w.agg = newAggregator(opts.Aggregate, opts.Now)
	}
	w.lastSweep, w.lastProbe = opts.Now(), opts.Now()
	go w.run()
	return w
}

// Submit hands e to the sinks without blocking. It reports false when the
// record was dropped because the queue was full or the writer closed. A
// decided record that aggregation folds into a summary is accepted (true)
// without being queued.
func (w *Writer) Submit(e *Entry) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.drop(DropWriterClosed, 1)
		return false
	}
	syncOK := true
	if len(w.syncs) > 0 {
		syncOK = w.writeSync(e)
	}
	if len(w.async) == 0 {
		if syncOK {
			w.written.Add(1)
		} else {
			w.drop(DropSinkFailed, 1)
		}
		return true
	}
	if w.agg != nil && e.Decided() && e.Summary == nil && !w.agg.admit(e) {
		return true // counted into its key's summary record
	}
	select {
	case w.queue <- item{e: e, syncFailed: !syncOK}:
		return true
	default:
		w.drop(DropQueueFull, 1)
		return false
	}
}

// Refusing reports whether the gateway should refuse new requests because
// the audit cannot be written and the operator chose OnFailureRefuse. It is
// one atomic load, cheap enough for every request.
func (w *Writer) Refusing() bool { return w.refusing.Load() }

// Degraded reports whether some sink is failing, and says which and why.
func (w *Writer) Degraded() (bool, string) {
	if w.failing.Load() == 0 {
		return false, ""
	}
	var parts []string
	for _, s := range w.all() {
		if !s.failing.Load() {
			continue
		}
		s.mu.Lock()
		parts = append(parts, fmt.Sprintf("%s sink failing since %s (%d records lost): %s", s.name, s.since.UTC().Format(time.RFC3339), s.outageLost, s.lastErr))
		s.mu.Unlock()
	}
	if len(parts) == 0 {
		return false, "" // recovered meanwhile
	}
	return true, strings.Join(parts, "; ")
}

// OnFailure is the failure policy the writer was started with.
func (w *Writer) OnFailure() string { return w.opts.OnFailure }

func (w *Writer) all() []*sinkState { return append(append([]*sinkState(nil), w.syncs...), w.async...) }

func (w *Writer) writeSync(e *Entry) bool {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	ok := true
	for _, s := range w.syncs {
		err := s.sink.Write(e)
		if err == nil {
			err = s.sink.Flush()
		}
		if err != nil {
			w.sinkFailed(s, err, 1)
			ok = false
		} else {
			w.sinkOK(s, 1)
		}
	}
	return ok
}

func dropIndex(reason string) int {
	switch reason {
	case DropQueueFull:
		return 0
	case DropWriterClosed:
		return 1
	}
	return 2
}

func (w *Writer) drop(reason string, weight uint64) {
	w.dropped[dropIndex(reason)].Add(weight)
	if reason == DropSinkFailed {
		return // the sink's own rate-limited error line says it
	}
	now := w.opts.Now().Unix()
	if last := w.lastWarned.Load(); last != now && w.lastWarned.CompareAndSwap(last, now) {
		w.log.Warn("audit records dropped", "reason", reason, "dropped_total", w.dropped[dropIndex(reason)].Load())
	}
}

// SinkStats are one sink's counters.
type SinkStats struct {
	Name string
	// Written counts records the sink made durable, Lost records it could
	// not, Errors its failed writes, flushes and probes.
	Written, Lost, Errors uint64
	Failing               bool
}

// Stats are the Writer's counters. Written and the Dropped counts are
// weighted by the requests a record stands for (see Writer).
type Stats struct {
	Written uint64
	// Dropped by reason: DropQueueFull, DropWriterClosed, DropSinkFailed.
	DroppedQueueFull, DroppedWriterClosed, DroppedSinkFailed uint64
	// Aggregated counts requests folded into summary records instead of
	// being written in full; Summaries the summary records made;
	// Overflow the requests counted into a catch-all summary because the
	// key table was full; Keys the keys held now.
	Aggregated, Summaries, Overflow uint64
	Keys                            int
	QueueDepth                      int
	// Degraded is true while a sink is failing.
	Degraded bool
	Sinks    []SinkStats
}

// Dropped is the sum of the drop counters.
func (s Stats) Dropped() uint64 {
	return s.DroppedQueueFull + s.DroppedWriterClosed + s.DroppedSinkFailed
}

// Stats reports the counters so far.
func (w *Writer) Stats() Stats {
	st := Stats{
		Written:             w.written.Load(),
		DroppedQueueFull:    w.dropped[0].Load(),
		DroppedWriterClosed: w.dropped[1].Load(),
		DroppedSinkFailed:   w.dropped[2].Load(),
		Summaries:           w.summaries.Load(),
		QueueDepth:          len(w.queue),
		Degraded:            w.failing.Load() > 0,
	}
	if w.agg != nil {
		st.Aggregated, st.Overflow, st.Keys = w.agg.aggregated.Load(), w.agg.overflow.Load(), int(w.agg.keys.Load())
	}
	for _, s := range w.all() {
		st.Sinks = append(st.Sinks, SinkStats{Name: s.name, Written: s.written.Load(), Lost: s.lost.Load(), Errors: s.errors.Load(), Failing: s.failing.Load()})
	}
	return st
}

// QueueDepth is the number of records waiting to be written.
func (w *Writer) QueueDepth() int { return len(w.queue) }

// Sync writes what is queued now, closes the aggregation windows that have
// ended, flushes the sinks and probes failing ones, and returns when that is
// done (at once when the writer is closed). Tests and tools use it; serving
// needs no call.
func (w *Writer) Sync() {
	ch := make(chan struct{})
	select {
	case w.syncCh <- ch:
		<-ch
	case <-w.done:
	}
}

func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case it, ok := <-w.queue:
			if !ok {
				w.emitSummaries(true)
				w.flushAll()
				return
			}
			w.writeItem(it)
			// Flush once per burst, or per BatchSize records under load.
			if len(w.queue) == 0 || w.batch >= w.opts.BatchSize {
				w.flushAll()
			}
		case <-tick.C:
			w.periodic(false)
		case ch := <-w.syncCh:
			for drained := false; !drained; {
				select {
				case it, ok := <-w.queue:
					if !ok {
						drained = true
						break
					}
					w.writeItem(it)
					if w.batch >= w.opts.BatchSize {
						w.flushAll()
					}
				default:
					drained = true
				}
			}
			w.periodic(true)
			close(ch)
		}
	}
}

// periodic flushes what is written, emits the summaries of ended windows
// (about once a second) and probes failing sinks.
func (w *Writer) periodic(now bool) {
	t := w.opts.Now()
	if w.agg != nil && (now || t.Sub(w.lastSweep) >= time.Second) {
		w.lastSweep = t
		w.emitSummaries(false)
	}
	w.flushAll()
	if w.failing.Load() > 0 && (now || t.Sub(w.lastProbe) >= w.opts.ProbeInterval) {
		w.lastProbe = t
		w.probe()
	}
	w.logPending()
}

// emitSummaries writes the summary records of ended windows (all windows
// when closing).
func (w *Writer) emitSummaries(all bool) {
	if w.agg == nil {
		return
	}
	for _, e := range w.agg.sweep(all) {
		w.summaries.Add(1)
		w.writeItem(item{e: e})
		if w.batch >= w.opts.BatchSize {
			w.flushAll()
		}
	}
}

func (w *Writer) writeItem(it item) {
	failed := it.syncFailed
	for _, s := range w.async {
		if err := s.sink.Write(it.e); err != nil {
			w.sinkFailed(s, err, 1)
			failed = true
			continue
		}
		s.pending++
	}
	weight := uint64(it.e.Weight())
	w.batch++
	w.batchWeight += weight
	if failed {
		w.batchFailed += weight
	}
}

// flushAll flushes every queued sink and settles the batch's counters.
func (w *Writer) flushAll() {
	if w.batch == 0 {
		return
	}
	flushFailed := false
	for _, s := range w.async {
		n := s.pending
		s.pending = 0
		if err := s.sink.Flush(); err != nil {
			w.sinkFailed(s, err, n)
			flushFailed = true
		} else {
			w.sinkOK(s, n)
		}
	}
	if flushFailed {
		w.drop(DropSinkFailed, w.batchWeight)
	} else {
		w.written.Add(w.batchWeight - w.batchFailed)
		if w.batchFailed > 0 {
			w.drop(DropSinkFailed, w.batchFailed)
		}
	}
	w.batch, w.batchWeight, w.batchFailed = 0, 0, 0
}

// probe asks failing sinks whether they can write again.
func (w *Writer) probe() {
	for _, s := range w.all() {
		if !s.failing.Load() {
			continue
		}
		p, ok := s.sink.(Prober)
		if !ok {
			continue // recovers with its next successful write
		}
		var err error
		if w.isSync(s) {
			w.syncMu.Lock()
			err = p.Probe()
			w.syncMu.Unlock()
		} else {
			err = p.Probe()
		}
		if err != nil {
			w.sinkFailed(s, err, 0)
		} else {
			w.sinkOK(s, 0)
		}
	}
}

func (w *Writer) isSync(s *sinkState) bool {
	for _, x := range w.syncs {
		if x == s {
			return true
		}
	}
	return false
}

// sinkFailed counts a failure of s that lost records and marks it failing.
func (w *Writer) sinkFailed(s *sinkState, err error, lost int) {
	s.errors.Add(1)
	s.lost.Add(uint64(lost))
	now := w.opts.Now()
	s.mu.Lock()
	s.lastErr = err.Error()
	s.unloggedErrs++
	s.unloggedLost += uint64(lost)
	s.outageLost += uint64(lost)
	if !s.failing.Load() {
		s.since = now
		s.outageLost = uint64(lost)
		s.failing.Store(true)
		w.failing.Add(1)
		w.updateRefusing()
	}
	line := w.logLine(s, now)
	s.mu.Unlock()
	line()
}

// sinkOK counts written records and ends a failure.
func (w *Writer) sinkOK(s *sinkState, written int) {
	s.written.Add(uint64(written))
	if !s.failing.Load() {
		return
	}
	now := w.opts.Now()
	s.mu.Lock()
	if !s.failing.Load() {
		s.mu.Unlock()
		return
	}
	s.failing.Store(false)
	w.failing.Add(-1)
	w.updateRefusing()
	s.unloggedRecoveries++
	line := w.logLine(s, now)
	s.mu.Unlock()
	line()
}

// logPending writes the log lines that the interval held back.
func (w *Writer) logPending() {
	now := w.opts.Now()
	for _, s := range w.all() {
		s.mu.Lock()
		line := w.logLine(s, now)
		s.mu.Unlock()
		line()
	}
}

// logLine returns the log line due for s, or a no-op: one line per
// ErrorLogInterval at most, with what happened since the previous one, so
// that a full disk costs one line per interval rather than one per record
// (and a sink that flaps near a full disk, two lines per flap). The caller
// holds s.mu; the line is written after it is released.
func (w *Writer) logLine(s *sinkState, now time.Time) func() {
	if s.unloggedErrs == 0 && s.unloggedRecoveries == 0 {
		return func() {}
	}
	if !s.lastLog.IsZero() && now.Sub(s.lastLog) < w.opts.ErrorLogInterval {
		return func() {}
	}
	s.lastLog = now
	errs, lost, flaps := s.unloggedErrs, s.unloggedLost, s.unloggedRecoveries
	s.unloggedErrs, s.unloggedLost, s.unloggedRecoveries = 0, 0, 0
	name, lastErr, lostTotal := s.name, s.lastErr, s.lost.Load()
	if s.failing.Load() {
		since := s.since
		return func() {
			w.log.Error("audit sink failing", "sink", name, "err", lastErr, "errors", errs, "records_lost", lost,
				"records_lost_total", lostTotal, "recovered_meanwhile", flaps, "failing_since", since.UTC().Format(time.RFC3339),
				"on_failure", w.opts.OnFailure, "next_line_after", w.opts.ErrorLogInterval.String())
		}
	}
	return func() {
		w.log.Warn("audit sink writes again", "sink", name, "errors", errs, "records_lost", lost, "records_lost_total", lostTotal, "last_err", lastErr)
	}
}

func (w *Writer) updateRefusing() {
	w.refusing.Store(w.opts.OnFailure == OnFailureRefuse && w.failing.Load() > 0)
}

// Close stops accepting records, writes everything already queued and the
// summaries of every open aggregation window, flushes and closes the sinks.
// It is safe to call more than once.
func (w *Writer) Close() error {
	var errs []error
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.queue)
		w.mu.Unlock()
		<-w.done
		for _, s := range w.all() {
			if err := s.sink.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// FileSink appends JSON lines to a file. The file is created 0600 because
// records contain request data. See lineFile for what it does on a full disk
// and with a torn last line.
type FileSink struct {
	file     *lineFile
	line     bytes.Buffer
	enc      *json.Encoder
	repaired int64
}

// OpenFileSink opens (creating if needed) the JSON-lines file at path. A
// torn last line (the process died mid-write) is cut off; Repaired says how
// many bytes that was.
func OpenFileSink(path string) (*FileSink, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create audit directory %s: %w", dir, err)
		}
	}
	lf, repaired, err := openLineFile(path)
	if err != nil {
		return nil, fmt.Errorf("open audit file %s: %w", path, err)
	}
	s := &FileSink{file: lf, repaired: repaired}
	s.enc = json.NewEncoder(&s.line)
	s.enc.SetEscapeHTML(false)
	return s, nil
}

// Repaired is how many bytes of a torn last line opening cut off.
func (s *FileSink) Repaired() int64 { return s.repaired }

// SinkName labels the sink in metrics and logs.
func (s *FileSink) SinkName() string { return "file" }

// Write encodes e as one line, written at the next Flush.
func (s *FileSink) Write(e *Entry) error {
	s.line.Reset()
	if err := s.enc.Encode(e); err != nil {
		return fmt.Errorf("encode audit record %s: %w", e.ID, err)
	}
	s.file.writeLine(s.line.Bytes())
	return nil
}

// Flush writes the lines written since the last Flush.
func (s *FileSink) Flush() error {
	if err := s.file.flush(); err != nil {
		return fmt.Errorf("write audit file %s: %w", s.file.path, err)
	}
	return nil
}

// Probe checks that the file's directory takes writes again.
func (s *FileSink) Probe() error { return s.file.probe() }

// Close flushes and closes the file.
func (s *FileSink) Close() error {
	if err := s.file.close(); err != nil {
		return fmt.Errorf("close audit file %s: %w", s.file.path, err)
	}
	return nil
}

// WriterSink writes JSON lines to any io.Writer (stdout, a test buffer).
type WriterSink struct {
	enc *json.Encoder
}

// NewWriterSink returns a sink that encodes each entry as one JSON line to w.
func NewWriterSink(w io.Writer) *WriterSink {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &WriterSink{enc: enc}
}

// Write encodes e.
func (s *WriterSink) Write(e *Entry) error { return s.enc.Encode(e) }

// Flush does nothing: the underlying writer is unbuffered from our side.
func (s *WriterSink) Flush() error { return nil }

// Close does nothing: the caller owns w.
func (s *WriterSink) Close() error { return nil }
