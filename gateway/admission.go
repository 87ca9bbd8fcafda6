package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/respond"
	"github.com/portcullis-waf/portcullis/wire"
)

// admit counts the request in its client's requests in flight
// (server.client_requests), or refuses it with 429 and a record when the
// client already has that many. Allow-listed clients are not counted. The
// returned release must be called when the request ends.
func (p *Pipeline) admit(w http.ResponseWriter, r *http.Request, entry *audit.Entry, client netip.Addr) (release func(), ok bool) {
	if entry.AllowListed != "" {
		return func() {}, true
	}
	release, ok = p.inflight.Acquire(client)
	if ok {
		return release, true
	}
	entry.Block(audit.StageRateLimit, fmt.Sprintf("more than %d requests in flight from this client (server.client_requests)", p.inflight.Limit()))
	respond.ErrorWithHeaders(w, r, http.StatusTooManyRequests, entry.ID, http.Header{"Retry-After": {"1"}})
	return nil, false
}

// sendTimeout is server.send_timeout: every write of the response to the
// client must complete within the timeout, measured from the start of that
// write (as nginx's send_timeout), not over the whole response. A client
// that stops reading, or reads a byte a second, is cut within one timeout
// of its last progress; the handler returns and the upstream connection it
// held is released (closed: its response was not read to the end). Long
// downloads and streams that the client keeps reading are never cut, and
// neither is a stream that is quiet because its upstream is (server-sent
// events, gRPC streams): only a write in progress counts.
//
// A write only notes when it started; one sendWatch per server looks at
// every response in progress a few times per timeout and cuts a write that
// has run too long, by setting a write deadline in the past through
// http.ResponseController: on the connection for HTTP/1, on the stream for
// HTTP/2 (which resets it). Setting a deadline on every write would cost
// an HTTP/2 connection's serving goroutine two messages per write, and
// under a stream flood those messages queued up handlers by the hundred.
// After the handler, HTTP/1's final flush is bounded by a deadline on the
// connection, lifted when the connection is idle again.
type sendTimeout struct {
	http.ResponseWriter
	rc      http.ResponseController // a value: one allocation less per request
	watch   *sendWatch
	shard   uint32 // of watch, where add put it
	h1      bool
	d       time.Duration
	writing atomic.Int64 // unix nanoseconds the write in progress started; 0: none
}

// newSendTimeout wraps w, or returns nil when send_timeout is off or the
// server watches none.
func newSendTimeout(w http.ResponseWriter, r *http.Request, watch *sendWatch, d time.Duration) *sendTimeout {
	if d <= 0 || watch == nil {
		return nil
	}
	sw := &sendTimeout{ResponseWriter: w, rc: *http.NewResponseController(w), watch: watch, h1: r.ProtoMajor == 1, d: d}
	sw.shard = watch.add(sw)
	return sw
}

func (sw *sendTimeout) Write(p []byte) (int, error) {
	sw.writing.Store(time.Now().UnixNano())
	n, err := sw.ResponseWriter.Write(p)
	sw.writing.Store(0)
	return n, err
}

// Flush sends what is buffered, within the timeout.
func (sw *sendTimeout) Flush() {
	sw.writing.Store(time.Now().UnixNano())
	_ = sw.rc.Flush()
	sw.writing.Store(0)
}

// end stops watching, and bounds what net/http writes on an HTTP/1
// connection after the handler returns (the buffered end of the response);
// connState lifts that deadline once the connection is idle again.
func (sw *sendTimeout) end() {
	sw.watch.remove(sw)
	if sw.h1 {
		_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.d)) // hijacked (WebSocket): not ours any more
	}
}

// Unwrap lets http.ResponseController reach the connection (Hijack for
// WebSocket upgrades: net/http clears the deadlines of a hijacked
// connection).
func (sw *sendTimeout) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// sendWatch holds the responses in progress of one server and cuts writes
// that run past their timeout.
type sendWatch struct {
	shards [16]struct {
		mu sync.Mutex
		m  map[*sendTimeout]struct{}
	}
	next atomic.Uint32
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// newSendWatch starts watching, looking every tick (a quarter of the
// timeout, at most a second); close stops it.
func newSendWatch(timeout time.Duration) *sendWatch {
	w := &sendWatch{stop: make(chan struct{}), done: make(chan struct{})}
	for i := range w.shards {
		w.shards[i].m = map[*sendTimeout]struct{}{}
	}
	tick := min(max(timeout/4, 10*time.Millisecond), time.Second)
	go w.run(tick)
	return w
}

// add watches sw and returns the shard it went to, for remove.
func (w *sendWatch) add(sw *sendTimeout) uint32 {
	i := w.next.Add(1) % uint32(len(w.shards))
	sh := &w.shards[i]
	sh.mu.Lock()
	sh.m[sw] = struct{}{}
	sh.mu.Unlock()
	return i
}

func (w *sendWatch) remove(sw *sendTimeout) {
	sh := &w.shards[sw.shard]
	sh.mu.Lock()
	delete(sh.m, sw)
	sh.mu.Unlock()
}

func (w *sendWatch) run(tick time.Duration) {
	defer close(w.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	var late []*sendTimeout
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		for i := range w.shards {
			sh := &w.shards[i]
			sh.mu.Lock()
			for sw := range sh.m {
				if started := sw.writing.Load(); started != 0 && now.UnixNano()-started > int64(sw.d) {
					late = append(late, sw)
				}
			}
			sh.mu.Unlock()
		}
		for _, sw := range late {
			// A deadline in the past ends the blocked write: the
			// connection (HTTP/1) or the stream (HTTP/2) is cut.
			_ = sw.rc.SetWriteDeadline(now.Add(-time.Second))
		}
		clear(late)
		late = late[:0]
	}
}

func (w *sendWatch) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// connState is the servers' ConnState hook: wire's, and on an HTTP/1
// connection that became idle, the end of the last response's send
// deadline, which must not cut the next response on the connection.
func connState(c net.Conn, st http.ConnState) {
	wire.ConnState(c, st)
	if st == http.StateIdle {
		if wc, ok := c.(*wire.Conn); ok {
			_ = wc.SetWriteDeadline(time.Time{})
		}
	}
}
