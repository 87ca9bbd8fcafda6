package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Sink persists encoded records. Write is only ever called from the Writer's
// single goroutine, so sinks need no locking of their own.
type Sink interface {
	Write(e *Entry) error
	// Flush makes everything written so far durable enough to survive a
	// process exit (the OS page cache is enough; a crash may lose the tail).
	Flush() error
	Close() error
}

// Writer takes entries from request goroutines through a bounded queue and
// writes them to its sinks on one background goroutine, so a slow disk never
// stalls a request. When the queue is full the entry is dropped, counted and
// logged (at most once per second) rather than blocking traffic.
type Writer struct {
	queue   chan *Entry
	sinks   []Sink
	log     *slog.Logger
	done    chan struct{}
	dropped atomic.Uint64
	written atomic.Uint64
	errors  atomic.Uint64

	closeOnce  sync.Once
	mu         sync.RWMutex // guards closed against a concurrent Submit
	closed     bool
	lastWarned atomic.Int64
}

// DefaultQueueSize bounds the number of records waiting to be written.
const DefaultQueueSize = 8192

// NewWriter starts a Writer with a queue of queueSize records (DefaultQueueSize
// when <= 0) that writes to sinks in order.
func NewWriter(queueSize int, log *slog.Logger, sinks ...Sink) *Writer {
	if queueSize <= 0 {
		queueSize = DefaultQueueSize
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Writer{queue: make(chan *Entry, queueSize), sinks: sinks, log: log, done: make(chan struct{})}
	go w.run()
	return w
}

// Submit queues e for writing without blocking. It reports false when the
// record was dropped because the queue was full or the writer closed.
func (w *Writer) Submit(e *Entry) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.drop("writer closed")
		return false
	}
	select {
	case w.queue <- e:
		return true
	default:
		w.drop("queue full")
		return false
	}
}

func (w *Writer) drop(why string) {
	n := w.dropped.Add(1)
	now := time.Now().Unix()
	if last := w.lastWarned.Load(); last != now && w.lastWarned.CompareAndSwap(last, now) {
		w.log.Warn("audit records dropped", "reason", why, "dropped_total", n)
	}
}

// Stats reports records written, dropped and sink write errors so far.
func (w *Writer) Stats() (written, dropped, errs uint64) {
	return w.written.Load(), w.dropped.Load(), w.errors.Load()
}

// QueueDepth is the number of records waiting to be written.
func (w *Writer) QueueDepth() int { return len(w.queue) }

func (w *Writer) run() {
	defer close(w.done)
	flush := time.NewTicker(200 * time.Millisecond)
	defer flush.Stop()
	dirty := false
	for {
		select {
		case e, ok := <-w.queue:
			if !ok {
				w.flushAll()
				return
			}
			w.writeOne(e)
			dirty = true
			// Drain what is already queued before flushing: one flush per burst.
			if len(w.queue) == 0 {
				w.flushAll()
				dirty = false
			}
		case <-flush.C:
			if dirty {
				w.flushAll()
				dirty = false
			}
		}
	}
}

func (w *Writer) writeOne(e *Entry) {
	for _, s := range w.sinks {
		if err := s.Write(e); err != nil {
			w.errors.Add(1)
			w.log.Error("audit sink write failed", "record", e.ID, "err", err)
		}
	}
	w.written.Add(1)
}

func (w *Writer) flushAll() {
	for _, s := range w.sinks {
		if err := s.Flush(); err != nil {
			w.errors.Add(1)
			w.log.Error("audit sink flush failed", "err", err)
		}
	}
}

// Close stops accepting records, writes everything already queued, flushes
// and closes the sinks. It is safe to call more than once.
func (w *Writer) Close() error {
	var errs []error
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.queue)
		w.mu.Unlock()
		<-w.done
		for _, s := range w.sinks {
			if err := s.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// FileSink appends JSON lines to a file. The file is created 0600 because
// records contain request data.
type FileSink struct {
	path string
	f    *os.File
	buf  *bufio.Writer
	enc  *json.Encoder
}

// OpenFileSink opens (creating if needed) the JSON-lines file at path.
func OpenFileSink(path string) (*FileSink, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create audit directory %s: %w", dir, err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit file %s: %w", path, err)
	}
	buf := bufio.NewWriterSize(f, 64<<10)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	return &FileSink{path: path, f: f, buf: buf, enc: enc}, nil
}

// Write encodes e as one line.
func (s *FileSink) Write(e *Entry) error {
	if err := s.enc.Encode(e); err != nil {
		return fmt.Errorf("write audit record to %s: %w", s.path, err)
	}
	return nil
}

// Flush writes buffered lines to the file.
func (s *FileSink) Flush() error {
	if err := s.buf.Flush(); err != nil {
		return fmt.Errorf("flush audit file %s: %w", s.path, err)
	}
	return nil
}

// Close flushes and closes the file.
func (s *FileSink) Close() error {
	ferr := s.Flush()
	cerr := s.f.Close()
	return errors.Join(ferr, cerr)
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
