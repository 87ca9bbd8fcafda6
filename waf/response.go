package waf

import (
	"bufio"
	"net"
	"net/http"
	"sync"

	"github.com/corazawaf/coraza/v3/types"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/respond"
)

// responseInspector holds back the response status and the first bytes of an
// inspectable body until the rules (phases 3 and 4) have seen them, so that a
// leaking response can still be replaced by the deny page. Bodies of other
// types stream through untouched.
type responseInspector struct {
	w     http.ResponseWriter
	r     *http.Request
	tx    types.Transaction
	entry *audit.Entry
	stage *Stage
	held  *slot // the request's hold on the inspection gate, taken per phase
	limit int

	status    int
	decided   bool // headers were sent or the response was denied
	denied    bool
	buffering bool
	buf       []byte // the held-back start of the body, from responseBufs
}

// responseBufs holds the buffers of held-back response bodies between
// requests: each grows to at most about response_inspection.limit, and
// without the pool every inspected response would grow a new one (about
// twice the limit allocated for a body past it). Scratch space without
// state, so sharing it between stages and reloads is safe.
var responseBufs sync.Pool

func takeResponseBuf() []byte {
	if b, ok := responseBufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

// releaseBuf returns the buffer to the pool; ri.buf must not be used after.
func (ri *responseInspector) releaseBuf() {
	if cap(ri.buf) > 0 {
		b := ri.buf[:0]
		responseBufs.Put(&b)
	}
	ri.buf = nil
}

func newResponseInspector(w http.ResponseWriter, r *http.Request, tx types.Transaction, entry *audit.Entry, s *Stage, held *slot) *responseInspector {
	return &responseInspector{w: w, r: r, tx: tx, entry: entry, stage: s, held: held, limit: int(s.settings.ResponseLimit)}
}

// resume takes an inspection slot for a response phase. If the client left
// while it waited, the response is not sent (nobody would read it) and
// not inspected; the record says so.
func (ri *responseInspector) resume() bool {
	if err := ri.held.resume(); err != nil {
		ri.entry.Fail(audit.StageWAF, "the client went away while the response waited for an inspection slot")
		ri.decided, ri.denied, ri.buffering = true, true, false
		ri.releaseBuf()
		return false
	}
	return true
}

func (ri *responseInspector) Header() http.Header { return ri.w.Header() }

// Unwrap lets http.ResponseController reach Hijack and deadlines (WebSocket).
func (ri *responseInspector) Unwrap() http.ResponseWriter { return ri.w }

func (ri *responseInspector) WriteHeader(code int) {
	if ri.status != 0 || ri.decided {
		return
	}
	if code < 200 { // informational (100, 101, 103): not a final response
		ri.w.WriteHeader(code)
		return
	}
	ri.status = code
	for k, vs := range ri.w.Header() {
		for _, v := range vs {
			ri.tx.AddResponseHeader(k, v)
		}
	}
	if !ri.resume() {
		return
	}
	it := ri.tx.ProcessResponseHeaders(code, ri.r.Proto)
	ri.held.leave()
	if it != nil {
		ri.denyNow(it)
		return
	}
	if ri.tx.IsResponseBodyProcessable() && ri.r.Method != http.MethodHead {
		ri.buffering = true
		return
	}
	ri.send()
}

func (ri *responseInspector) Write(p []byte) (int, error) {
	if ri.status == 0 && !ri.decided {
		ri.WriteHeader(http.StatusOK)
	}
	switch {
	case ri.denied:
		return len(p), nil // the client already has the deny page
	case ri.buffering:
		if ri.buf == nil {
			ri.buf = takeResponseBuf()
		}
		room := ri.limit - len(ri.buf)
		if len(p) < room {
			ri.buf = append(ri.buf, p...)
			return len(p), nil
		}
		ri.buf = append(ri.buf, p[:room]...)
		if !ri.inspectBody() {
			return len(p), nil
		}
		if _, err := ri.w.Write(p[room:]); err != nil {
			return room, err
		}
		return len(p), nil
	default:
		return ri.w.Write(p)
	}
}

// Flush passes a flush on once the response is decided. While an
// inspectable body is still being buffered it does nothing: deciding early
// would let everything after the first flush stream through uninspected
// (httputil.ReverseProxy flushes after every write when the upstream sends no
// Content-Length). Streams of an inspected type are therefore held until the
// limit or their end; leave streaming types such as text/event-stream out of
// response_inspection.mime_types.
func (ri *responseInspector) Flush() {
	if ri.buffering || ri.denied {
		return
	}
	if f, ok := ri.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over (WebSocket after its inspected handshake).
func (ri *responseInspector) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(ri.w).Hijack()
}

// finish decides on a body that ended before the limit.
func (ri *responseInspector) finish() {
	if ri.buffering {
		ri.inspectBody()
	}
}

// inspectBody runs phase 4 on the buffered bytes and either denies or sends
// headers and buffer. It reports whether the response goes on.
func (ri *responseInspector) inspectBody() bool {
	ri.buffering = false
	if !ri.resume() {
		return false
	}
	it, _, err := ri.tx.WriteResponseBody(ri.buf)
	if err == nil && it == nil {
		it, err = ri.tx.ProcessResponseBody()
	}
	ri.held.leave()
	if err != nil {
		if ri.stage.settings.OnError == config.OnErrorPass {
			ri.entry.FailOpen = true
			ri.entry.Fail(audit.StageWAF, "response inspection error, passed by on_error: pass: "+err.Error())
		} else {
			ri.entry.Fail(audit.StageWAF, "response inspection error: "+err.Error())
			ri.decided, ri.denied = true, true
			ri.releaseBuf()
			respond.Error(ri.w, ri.r, http.StatusInternalServerError, ri.entry.ID)
			return false
		}
	}
	if it != nil {
		ri.denyNow(it)
		return false
	}
	ri.send()
	if len(ri.buf) > 0 {
		_, _ = ri.w.Write(ri.buf)
	}
	ri.releaseBuf()
	return true
}

func (ri *responseInspector) send() {
	ri.decided = true
	ri.w.WriteHeader(ri.status)
}

func (ri *responseInspector) denyNow(it *types.Interruption) {
	ri.decided, ri.denied, ri.buffering = true, true, false
	ri.releaseBuf()
	ri.stage.deny(ri.w, ri.r, ri.entry, ri.tx, it, "response")
}
