package audit

import (
	"bufio"
	"bytes"
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

// Synchronous is implemented by sinks that must be written before the
// response to the request ends, in request order, instead of through the
// queue. The rule log is one: tools that send a request and then read the log
// (go-ftw, fail2ban) expect the request's lines to be complete by then. Such
// writes are serialised by the Writer and flushed at once.
type Synchronous interface {
	Sink
	WritesSynchronously()
}

// Writer takes entries from request goroutines through a bounded queue and
// writes them to its sinks on one background goroutine, so a slow disk never
// stalls a request. When the queue is full the entry is dropped, counted and
// logged (at most once per second) rather than blocking traffic.
type Writer struct {
	queue   chan *Entry
	sinks   []Sink // written by the background goroutine
	syncMu  sync.Mutex
	syncs   []Sink // written by Submit itself
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
	w := &Writer{queue: make(chan *Entry, queueSize), log: log, done: make(chan struct{})}
	for _, s := range sinks {
		if _, ok := s.(Synchronous); ok {
			w.syncs = append(w.syncs, s)
		} else {
			w.sinks = append(w.sinks, s)
		}
	}
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
	if len(w.syncs) > 0 {
		w.writeSync(e)
	}
	if len(w.sinks) == 0 {
		return true
	}
	select {
	case w.queue <- e:
		return true
	default:
		w.drop("queue full")
		return false
	}
}

func (w *Writer) writeSync(e *Entry) {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	for _, s := range w.syncs {
		err := s.Write(e)
		if err == nil {
			err = s.Flush()
		}
		if err != nil {
			w.errors.Add(1)
			w.log.Error("audit sink write failed", "record", e.ID, "err", err)
		}
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
		for _, s := range append(w.sinks, w.syncs...) {
			if err := s.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// lineFile appends whole lines to a file through a buffer. A buffer flush
// never splits a line, so a reader tailing the file (a log shipper, go-ftw)
// never sees half a record unless the process dies mid-write.
type lineFile struct {
	path string
	f    *os.File
	buf  *bufio.Writer
}

func openLineFile(path string) (*lineFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &lineFile{path: path, f: f, buf: bufio.NewWriterSize(f, 64<<10)}, nil
}

// writeLine writes one complete line (ending in '\n').
func (l *lineFile) writeLine(line []byte) error {
	if len(line) > l.buf.Available() && l.buf.Buffered() > 0 {
		if err := l.buf.Flush(); err != nil {
			return err
		}
	}
	_, err := l.buf.Write(line) // a line longer than the buffer goes out in one write
	return err
}

func (l *lineFile) flush() error { return l.buf.Flush() }

func (l *lineFile) close() error { return errors.Join(l.buf.Flush(), l.f.Close()) }

// FileSink appends JSON lines to a file. The file is created 0600 because
// records contain request data.
type FileSink struct {
	file *lineFile
	line bytes.Buffer
	enc  *json.Encoder
}

// OpenFileSink opens (creating if needed) the JSON-lines file at path.
func OpenFileSink(path string) (*FileSink, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create audit directory %s: %w", dir, err)
		}
	}
	lf, err := openLineFile(path)
	if err != nil {
		return nil, fmt.Errorf("open audit file %s: %w", path, err)
	}
	s := &FileSink{file: lf}
	s.enc = json.NewEncoder(&s.line)
	s.enc.SetEscapeHTML(false)
	return s, nil
}

// Write encodes e as one line.
func (s *FileSink) Write(e *Entry) error {
	s.line.Reset()
	if err := s.enc.Encode(e); err != nil {
		return fmt.Errorf("encode audit record %s: %w", e.ID, err)
	}
	if err := s.file.writeLine(s.line.Bytes()); err != nil {
		return fmt.Errorf("write audit file %s: %w", s.file.path, err)
	}
	return nil
}

// Flush writes buffered lines to the file.
func (s *FileSink) Flush() error {
	if err := s.file.flush(); err != nil {
		return fmt.Errorf("flush audit file %s: %w", s.file.path, err)
	}
	return nil
}

// Close flushes and closes the file.
func (s *FileSink) Close() error { return s.file.close() }

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
