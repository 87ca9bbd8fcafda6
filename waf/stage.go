package waf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/respond"
	"github.com/portcullis-waf/portcullis/wire"
)

// Stage is the rule-engine stage of one route.
type Stage struct {
	engine   *Engine
	settings config.WAFSettings // the route's own; the engine may be shared
	next     http.Handler
	redactor *audit.Redactor
	keep     int   // bytes of body kept in decided or sampled records
	gate     *Gate // shared by every stage of the process; nil: unbounded
}

// Recording is what the stage copies into audit records beyond findings.
type Recording struct {
	// Redactor decides which matched values and body arguments are
	// credentials.
	Redactor *audit.Redactor
	// BodyLimit is how many bytes of the request body a blocked, flagged
	// or sampled record keeps (for replay); 0 keeps none.
	BodyLimit int64
}

var _ http.Handler = (*Stage)(nil)

// NewStage returns a handler that inspects each request with e and passes
// clean ones to next. settings are the route's own WAF settings: e is shared
// between routes whose rule sets are equal, and settings that do not change
// the rule set (on_error) may still differ between them.
func NewStage(e *Engine, settings config.WAFSettings, next http.Handler, rec Recording) *Stage {
	return &Stage{engine: e, settings: settings, next: next, redactor: rec.Redactor, keep: int(rec.BodyLimit)}
}

// WithGate makes the stage take a slot of g for the CPU work of each
// inspection (see Gate); call it before the stage serves.
func (s *Stage) WithGate(g *Gate) *Stage {
	s.gate = g
	return s
}

// ServeHTTP runs phases 1 and 2, then next, then (optionally) phases 3 and 4
// on the response, and phase 5. Every outcome is written into the audit entry.
//
// Every phase runs inside a slot of the stage's gate, and a transaction
// exists only from the first slot on: the body (up to readAheadMax) is read
// before, so that a slow client holds no slot and a waiting request no
// transaction. Without response inspection, phase 5 runs and the
// transaction is closed before the request goes upstream (no rule could see
// the response anyway), so a slow upstream or a long download holds no
// transaction either.
func (s *Stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := audit.FromContext(r.Context())
	settings := &s.settings
	entry.WAFMode = settings.Mode
	if s.engine.waf == nil { // mode off
		s.next.ServeHTTP(w, r)
		return
	}

	// A request the client has already cancelled (an HTTP/2 stream reset,
	// the "rapid reset" flood) costs no inspection and is never forwarded;
	// the same holds once its body has been read ahead.
	if cancelledBefore(r, entry, "inspection") {
		return
	}
	var body *eofWatch
	if r.Body != nil && r.Body != http.NoBody {
		body = &eofWatch{ReadCloser: r.Body}
		r.Body = body
	}
	ahead := s.readAhead(r)
	if cancelledBefore(r, entry, "inspection") {
		return
	}
	if s.native() && s.engineIdle(r, ahead) {
		s.serveDetectorsOnly(w, r, entry, ahead)
		return
	}
	held := &slot{gate: s.gate, ctx: r.Context()}
	if err := held.enter(); err != nil {
		s.refuseBusy(w, r, entry, err)
		return
	}
	// Registered first, so it runs last, even if what follows panics.
	defer held.leave()
	start := time.Now()
	tx := s.engine.waf.(experimental.WAFWithOptions).NewTransactionWithOptions(experimental.Options{
		ID: entry.ID, Context: r.Context(),
	})
	var forwarded *engineBody // the body streamed from the engine's buffer, if so
	var trailers trailerFindings
	inspected, open := false, true
	finish := func() {
		if !open {
			return
		}
		open = false
		// Phase 5 runs even if the client left: the record needs it. It
		// waits for a slot like any in-flight work (ahead of new requests)
		// whether or not the client is still there, so leaving clients
		// cannot run the engine past server.inspections.
		held.ctx = context.WithoutCancel(held.ctx)
		_ = held.resume()
		tx.ProcessLogging()
		s.record(entry, tx, inspected, &trailers)
		forwarded.detach()
		_ = tx.Close()
		held.leave()
	}
	// Phase 5 (CRS correlation rules) runs after the response, then the
	// findings go into the record, even when a later stage panicked.
	defer finish()

	it, forwarded, err := s.inspectRequest(tx, r, ahead, held)
	if err == nil && it == nil && body != nil && body.eof {
		// The whole body was read before forwarding: its trailer fields
		// (if any) are final and are judged before anything goes upstream.
		// Otherwise they arrive after the request left and are never
		// forwarded (the protocol guard drops uninspected trailers).
		if it, err = s.inspectTrailers(tx, r, entry, &trailers); err == nil && it == nil && len(trailers.fields) > 0 {
			r = r.WithContext(context.WithValue(r.Context(), trailersKey{}, trailers.fields))
		}
	}
	// The detectors judge what the engine let through (profile
	// portcullis): the engine has run the protocol checks and the custom
	// rules, and holds the body.
	refused := false
	if err == nil && it == nil && s.native() {
		body, truncated := s.nativeBody(tx, r, ahead)
		judged := r
		if len(trailers.fields) > 0 {
			// Trailer fields go upstream beside the headers: judged as such.
			judged = r.Clone(r.Context())
			for k, vs := range trailers.fields {
				judged.Header[k] = append(judged.Header[k], vs...)
			}
		}
		refused = s.judge(judged, entry, body, truncated)
	}
	entry.Durations.WAF = time.Since(start).Microseconds()
	switch {
	case refused:
		respond.Error(w, r, http.StatusForbidden, entry.ID)
		return
	case errors.Is(err, errBusy):
		s.refuseBusy(w, r, entry, err)
		return
	case errors.Is(err, errFieldsTooLarge):
		// Like the engine's own body limit, it bounds memory rather than
		// judging content, so it applies in detect mode too.
		entry.Block(audit.StageWAF, fmt.Sprintf("%v (%d bytes)", err, settings.BodyNoFilesLimit))
		respond.Error(w, r, http.StatusRequestEntityTooLarge, entry.ID)
		return
	case errors.Is(err, errClientBody):
		entry.Block(audit.StageProtocol, err.Error())
		respond.Error(w, r, http.StatusBadRequest, entry.ID)
		return
	case errors.Is(err, errBodyConsumed):
		// Part of the body is gone into a failed buffer: it can no longer
		// be forwarded intact, so even on_error: pass cannot pass it.
		entry.Fail(audit.StageWAF, "rule engine error: "+err.Error())
		respond.Error(w, r, http.StatusInternalServerError, entry.ID)
		return
	case err != nil:
		if settings.OnError == config.OnErrorPass {
			entry.FailOpen = true
			entry.Fail(audit.StageWAF, "rule engine error, passed by on_error: pass: "+err.Error())
			break
		}
		entry.Fail(audit.StageWAF, "rule engine error: "+err.Error())
		respond.Error(w, r, http.StatusInternalServerError, entry.ID)
		return
	case it != nil && trailers.interrupted:
		s.deny(w, r, entry, tx, it, "request trailers")
		return
	case it != nil:
		s.deny(w, r, entry, tx, it, "request")
		return
	}
	inspected = true

	// Response inspection with no rule to run in phases 3 to 5 (the
	// portcullis profile without custom response rules) would only hold
	// the transaction open: the response goes out as without it.
	inspectResponse := settings.ResponseInspect && s.engine.census.responsePhases
	if !inspectResponse && forwarded == nil {
		// The body forwarded is the stage's own copy (or none), so the
		// transaction is no longer needed: close it before going upstream.
		finish()
		s.next.ServeHTTP(w, r)
		s.keepBodyAfter(entry, r, ahead)
		return
	}
	held.leave()
	if !inspectResponse {
		s.next.ServeHTTP(w, r)
		return
	}
	rw := newResponseInspector(w, r, tx, entry, s, held)
	s.next.ServeHTTP(rw, r)
	rw.finish()
}

// engineIdle reports whether the rule engine has nothing to do for r: its
// rule set is only the engine rules of the portcullis profile (see
// engineRules), and r is one none of them can act on. Such a request is
// judged by the detectors alone, without a transaction. Each condition
// mirrors what the engine would see:
//   - the URI parses as the engine parses it (else 200009 refuses it), and
//     its query cannot hold more than the argument limit (200004);
//   - no body, or a body read whole ahead, within request_body.limit and
//     no_files_limit (the engine's own limit and 200011/200013 cannot
//     refuse or cut it), without trailer fields (judged by the engine);
//   - no multipart body (its fields limit and parser are the engine's),
//     and a form body within the argument limit (200005).
//
// Anything else goes through the engine as before.
func (s *Stage) engineIdle(r *http.Request, ahead bodyAhead) bool {
	if s.engine.census.others || s.engine.census.responsePhases || r.Trailer != nil {
		return false
	}
	if r.Body != nil && r.Body != http.NoBody {
		if !ahead.complete || ahead.err != nil {
			return false
		}
		limit := s.settings.BodyLimit
		if n := s.settings.BodyNoFilesLimit; n > 0 && n < limit {
			limit = n
		}
		if int64(len(ahead.data)) > limit {
			return false
		}
		// The engine picks a body processor from the first Content-Type.
		switch ct := r.Header["Content-Type"]; {
		case len(ct) > 1:
			return false
		case len(ct) == 1:
			v := strings.TrimSpace(ct[0])
			if hasPrefixFold(v, "multipart/") {
				return false
			}
			if hasPrefixFold(v, "application/x-www-form-urlencoded") && bytes.Count(ahead.data, []byte("&"))+1 >= argumentLimit {
				return false
			}
		}
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	if i := strings.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	if strings.Count(uri, "&")+1 >= argumentLimit {
		return false
	}
	_, err := url.ParseRequestURI(uri)
	return err == nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// serveDetectorsOnly judges a request the engine has nothing to do for
// (engineIdle) with the detectors, inside an inspection slot like any
// inspection, and passes it on or refuses it.
func (s *Stage) serveDetectorsOnly(w http.ResponseWriter, r *http.Request, entry *audit.Entry, ahead bodyAhead) {
	held := &slot{gate: s.gate, ctx: r.Context()}
	if err := held.enter(); err != nil {
		s.refuseBusy(w, r, entry, err)
		return
	}
	start := time.Now()
	refused := func() bool {
		defer held.leave()
		return s.judge(r, entry, ahead.data, false)
	}()
	entry.Durations.WAF = time.Since(start).Microseconds()
	if refused {
		s.keepBodyAfter(entry, r, ahead)
		respond.Error(w, r, http.StatusForbidden, entry.ID)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = prepend(ahead.data, r.Body)
	}
	s.next.ServeHTTP(w, r)
	s.keepBodyAfter(entry, r, ahead)
}

// keepBodyAfter keeps the body of a request whose transaction was closed
// before it went upstream but that a later stage decided on (the proxy's
// body limit, an upstream failure): the stage's own copy is still there.
func (s *Stage) keepBodyAfter(entry *audit.Entry, r *http.Request, ahead bodyAhead) {
	if s.keep <= 0 || entry.RequestBody != "" || len(ahead.data) == 0 || !(entry.Decided() || entry.Sampled) {
		return
	}
	n := min(len(ahead.data), s.keep+1) // one more byte tells whether there was more
	entry.RequestBody, entry.RequestBodyTruncated = s.redactor.Body(r.Header.Get("Content-Type"), ahead.data[:n], s.keep)
}

// slot is one request's hold on the gate: it may leave and come back
// (around a long body read, and for the response phases), and leave is
// safe to call when not inside.
type slot struct {
	gate *Gate
	ctx  context.Context
	in   bool
}

// enter takes a slot for a new request.
func (sl *slot) enter() error { return sl.take(sl.gate.Enter) }

// resume takes a slot again for the request's transaction, ahead of new
// requests; it fails only if the client leaves while it waits.
func (sl *slot) resume() error { return sl.take(sl.gate.Resume) }

func (sl *slot) take(wait func(context.Context) error) error {
	if sl.in {
		return nil
	}
	if err := wait(sl.ctx); err != nil {
		return fmt.Errorf("%w: %w", errBusy, err)
	}
	sl.in = true
	return nil
}

func (sl *slot) leave() {
	if sl.in {
		sl.in = false
		sl.gate.Leave()
	}
}

// errBusy marks a request that got no inspection slot: the gate's wait ran
// out, or the client left while it waited.
var errBusy = errors.New("not inspected")

// refuseBusy answers a request that got no inspection slot. It is never
// forwarded uninspected, whatever on_error says: on_error is about engine
// faults, and passing on overload would let a flood carry attacks through.
func (s *Stage) refuseBusy(w http.ResponseWriter, r *http.Request, entry *audit.Entry, err error) {
	reason := fmt.Sprintf("no inspection slot free within server.inspection_wait (%d slots): %v", s.gate.Slots(), err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		reason = "the client went away while waiting for an inspection slot"
	}
	entry.Fail(audit.StageWAF, reason)
	respond.Error(w, r, http.StatusServiceUnavailable, entry.ID)
}

// readAheadMax bounds the body read before an inspection slot is taken; it
// is the engine's in-memory body limit (SecRequestBodyInMemoryLimit), so a
// body read ahead is one the engine would hold in memory anyway.
const readAheadMax = 128 << 10

// bodyAhead is the start (or the whole) of a request body, read before the
// request's transaction exists.
type bodyAhead struct {
	data     []byte
	complete bool  // data is the whole body
	err      error // the client failed while sending it
}

// readAhead reads the request body before inspection when it is small
// enough: a declared length up to readAheadMax (and the route's limit), or
// a chunked body that turns out to be. It reads nothing when the request
// has no body, declares a length over the route's limit (refused after
// phase 1 without reading a byte), or expects 100-continue (phase 1 decides
// before the client is told to send).
func (s *Stage) readAhead(r *http.Request) bodyAhead {
	limit := min(s.settings.BodyLimit+1, readAheadMax)
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		return bodyAhead{}
	case r.ContentLength > limit:
		return bodyAhead{}
	case wire.ExpectsContinue(r):
		// Reading would send "100 Continue" before phase 1 has judged the
		// head: the client would send a body we are about to refuse.
		return bodyAhead{}
	}
	most := int(limit)
	// Start small and grow as bytes arrive: a large declared length
	// reserves nothing before the client sends it.
	size := 4 << 10
	if r.ContentLength >= 0 && r.ContentLength <= 16<<10 {
		size = int(r.ContentLength) + 1 // +1: room to read the EOF
	}
	buf := make([]byte, 0, min(most, size))
	for len(buf) < most {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), most-len(buf)))
		}
		n, err := r.Body.Read(buf[len(buf):min(cap(buf), most)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return bodyAhead{data: buf, complete: true}
		}
		if err != nil {
			return bodyAhead{data: buf, err: err}
		}
	}
	return bodyAhead{data: buf}
}

// errClientBody marks a failure to read the request body from the client:
// a protocol error of the client (bad chunking, early close), not the engine's.
var errClientBody = errors.New("request body could not be read")

// errEngineWrite marks the engine failing to take body bytes (feedBody).
// Whether the body is lost with them depends on whether the stage still
// holds a copy.
var errEngineWrite = errors.New("buffer request body")

// errBodyConsumed marks an engine failure after the body was partly read.
var errBodyConsumed = errors.New("request body lost")

// bodyChunk is the size of the buffer a request body is read through into
// the engine.
const bodyChunk = 32 << 10

// bodyChunks holds the read buffers between requests: scratch space with no
// state, so sharing it between stages and reloads is safe. Coraza's
// ReadRequestBodyFrom would allocate a fresh one (io.CopyN) per request.
var bodyChunks = sync.Pool{New: func() any { b := make([]byte, bodyChunk); return &b }}

// feedBody reads the request body into the engine's body buffer, which
// holds at most the engine's limit and spills what is past 128 KiB to a
// temporary file (SecRequestBodyInMemoryLimit), so that buffering costs the
// same memory whatever the body's size. It is tx.ReadRequestBodyFrom without the copy
// buffer per request, with the same limit semantics, because
// WriteRequestBody applies the same checks: the engine stops at its limit
// (SecRequestBodyLimit, request_body.limit+1 bytes, or a ctl:requestBodyLimit)
// and then either interrupts with 413 (reject) or runs phase 2 on what it
// holds (inspect_partial). Reading stops there; bytes that were read but not
// taken are returned in rest, to be forwarded before the unread remainder.
func feedBody(tx types.Transaction, body io.Reader) (it *types.Interruption, rest []byte, err error) {
	bufp := bodyChunks.Get().(*[]byte)
	defer bodyChunks.Put(bufp)
	buf := *bufp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			it, taken, werr := tx.WriteRequestBody(buf[:n])
			if werr != nil {
				return nil, nil, fmt.Errorf("%w: %v", errEngineWrite, werr)
			}
			if it != nil {
				return it, nil, nil
			}
			if taken < n {
				// The engine took all it will (inspect_partial at the limit,
				// or the rule engine turned off by a rule); the rest goes to
				// the upstream uninspected, as if it came from the client.
				return nil, append([]byte(nil), buf[taken:n]...), nil
			}
			if engineLimitReached(tx) {
				return nil, nil, nil // inspect_partial: phase 2 has run on the first bytes
			}
		}
		switch {
		case rerr == io.EOF:
			return nil, nil, nil
		case rerr != nil:
			return nil, nil, fmt.Errorf("%w: %v", errClientBody, rerr)
		}
	}
}

// errFieldsTooLarge marks a multipart body whose fields (parts that are not
// files) are over request_body.no_files_limit: refused with 413 in every
// mode, since the engine cannot parse part of a multipart body.
var errFieldsTooLarge = errors.New("multipart fields larger than request_body.no_files_limit")

// multipartFieldsLimited reports whether the body goes to the engine's
// multipart processor under a no_files_limit smaller than the body limit
// (the other processors get it as their body limit, rule 200011).
func (s *Stage) multipartFieldsLimited(tx types.Transaction) bool {
	if s.settings.BodyNoFilesLimit <= 0 || s.settings.BodyNoFilesLimit >= s.settings.BodyLimit {
		return false
	}
	state, ok := tx.(plugintypes.TransactionState)
	return ok && state.Variables().RequestBodyProcessor().Get() == "MULTIPART"
}

// multipartFieldsTooLarge applies request_body.no_files_limit to the fields
// of a multipart body (see multipartFieldsOver).
func (s *Stage) multipartFieldsTooLarge(tx types.Transaction, r *http.Request, body io.Reader) bool {
	return s.multipartFieldsLimited(tx) && multipartFieldsOver(body, r.Header.Get("Content-Type"), s.settings.BodyNoFilesLimit)
}

// engineLimitReached reports whether the engine has reached its body limit
// (INBOUND_DATA_ERROR), whatever set it: request_body.limit, no_files_limit
// or a rule's ctl:requestBodyLimit.
func engineLimitReached(tx types.Transaction) bool {
	state, ok := tx.(plugintypes.TransactionState)
	return ok && state.Variables().InboundDataError().Get() == "1"
}

// inspectRequest feeds the request to the transaction. It returns the
// interruption if a rule denied the request, and the body now forwarded if
// it streams from the engine's buffer (nil when the stage forwards its own
// copy, or no body), which must be detached before tx is closed. held is
// the request's slot: a body too large to have been read ahead is read
// outside it.
func (s *Stage) inspectRequest(tx types.Transaction, r *http.Request, ahead bodyAhead, held *slot) (*types.Interruption, *engineBody, error) {
	entry := audit.FromContext(r.Context())
	serverIP, serverPort := localAddr(r)
	tx.ProcessConnection(entry.ClientIP, entry.ClientPort, serverIP, serverPort)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	addHeaders(tx, r)
	if it := tx.ProcessRequestHeaders(); it != nil {
		return it, nil, nil
	}

	var forwarded *engineBody
	if r.Body != nil && r.Body != http.NoBody {
		settings := &s.settings
		// A declared length over the limit is refused without reading the
		// body (readAhead reads none past request_body.limit).
		if limit, _ := s.bodyLimit(tx); tx.IsRequestBodyAccessible() && settings.BodyOverLimit == config.OverLimitReject && r.ContentLength > limit {
			return &types.Interruption{Action: "deny", Status: http.StatusRequestEntityTooLarge}, nil, nil
		}
		if ahead.err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errClientBody, ahead.err)
		}
		switch {
		case !tx.IsRequestBodyAccessible():
			// A rule turned body access off: forward what was read ahead,
			// then the rest.
			r.Body = prepend(ahead.data, r.Body)
		case ahead.complete:
			// The stage holds the whole body, so an engine fault here loses
			// nothing (on_error applies). Forwarding the stage's copy whole
			// is what forwarding the engine's buffer plus what it did not
			// take (inspect_partial, engine off) would send.
			it, _, err := feedBody(tx, bytes.NewReader(ahead.data))
			if err != nil || it != nil {
				return it, nil, err
			}
			if s.multipartFieldsTooLarge(tx, r, bytes.NewReader(ahead.data)) {
				return nil, nil, errFieldsTooLarge
			}
			r.Body = prepend(ahead.data, r.Body)
		default:
			var it *types.Interruption
			var err error
			if it, forwarded, err = s.feedLongBody(tx, r, ahead, held); err != nil || it != nil {
				return it, forwarded, err
			}
			r.Body = forwarded
		}
	}
	it, err := tx.ProcessRequestBody()
	if err != nil {
		return nil, forwarded, fmt.Errorf("process request body: %w", err)
	}
	return it, forwarded, nil
}

// addHeaders feeds r's header fields to tx.
func addHeaders(tx types.Transaction, r *http.Request) {
	for k, vs := range r.Header {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	// net/http moves Host and Transfer-Encoding out of the header map; the
	// rules need them (e.g. CRS 920171 on Transfer-Encoding smuggling).
	if r.Host != "" {
		tx.AddRequestHeader("Host", r.Host)
		tx.SetServerName(hostOnly(r.Host))
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
}

// feedLongBody reads a body too large to read ahead into the engine's
// buffer (memory up to 128 KiB, then a temporary file) outside the slot,
// so that a slow client holds none, and returns the body to forward,
// streamed back from that buffer. Up to request_body.limit bytes the
// engine only buffers; the byte past it makes the engine refuse the body
// (reject) or run phase 2 on what it holds (inspect_partial), so that byte
// is fed with the slot held again. (A ctl:requestBodyLimit lowered by a
// phase 1 rule moves the limit below that point; the engine then runs phase
// 2 outside the slot.)
func (s *Stage) feedLongBody(tx types.Transaction, r *http.Request, ahead bodyAhead, held *slot) (*types.Interruption, *engineBody, error) {
	held.leave()
	client := io.MultiReader(bytes.NewReader(ahead.data), r.Body)
	lost := func(err error) error {
		if errors.Is(err, errEngineWrite) {
			return fmt.Errorf("%w: %v", errBodyConsumed, err)
		}
		return err
	}
	limit, _ := s.bodyLimit(tx)
	it, rest, err := feedBody(tx, io.LimitReader(client, limit))
	if err != nil || it != nil {
		return it, nil, lost(err)
	}
	if rest == nil {
		// Past the limit? One byte tells, read before the slot is taken.
		var one [1]byte
		n, rerr := io.ReadFull(client, one[:])
		if rerr != nil && rerr != io.EOF {
			return nil, nil, fmt.Errorf("%w: %v", errClientBody, rerr)
		}
		if err := held.resume(); err != nil {
			return nil, nil, err
		}
		if n == 1 {
			if it, rest, err = feedBody(tx, bytes.NewReader(one[:])); err != nil || it != nil {
				return it, nil, lost(err)
			}
			if rest == nil && !engineLimitReached(tx) {
				// The engine took the byte: a phase 1 rule raised its limit
				// (ctl:requestBodyLimit). The rest goes to the engine too,
				// read outside the slot, never upstream uninspected. The
				// engine's buffer holds at most request_body.limit+1 bytes
				// whatever the rule says, so a longer body fails closed.
				held.leave()
				if it, rest, err = feedBody(tx, client); err != nil || it != nil {
					return it, nil, lost(err)
				}
				if err := held.resume(); err != nil {
					return nil, nil, err
				}
			}
		}
	} else if err := held.resume(); err != nil {
		return nil, nil, err
	}
	if s.multipartFieldsLimited(tx) {
		// The count reads the engine's buffer (a temporary file past 128
		// KiB): outside the slot.
		held.leave()
		body, err := tx.RequestBodyReader()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: read back request body: %v", errBodyConsumed, err)
		}
		if s.multipartFieldsTooLarge(tx, r, body) {
			return nil, nil, errFieldsTooLarge
		}
		if err := held.resume(); err != nil {
			return nil, nil, err
		}
	}
	buffered, err := tx.RequestBodyReader()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read back request body: %v", errBodyConsumed, err)
	}
	// What the engine buffered goes first, streamed back from its memory or
	// temporary file (never copied whole); then what it did not take (past
	// the limit with inspect_partial, or with the engine turned off by a
	// rule), then the rest of the client's body, unread so far.
	return nil, &engineBody{
		src:    io.MultiReader(buffered, bytes.NewReader(rest), client),
		closer: r.Body,
	}, nil
}

// engineBody is a request body forwarded from the engine's buffer, which
// belongs to the transaction. The proxy's transport may still be sending it
// when the handler returns; once the transaction is closed (detach), reads
// fail instead of racing its reuse or ending early as if complete.
type engineBody struct {
	mu       sync.Mutex
	src      io.Reader
	closer   io.Closer
	detached bool
}

// errBodyGone is what a read of a detached engineBody returns: an error,
// never io.EOF, so a cut body cannot pass for a whole one upstream.
var errBodyGone = errors.New("request body no longer available: the inspection finished before the upstream read it all")

func (b *engineBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.detached {
		return 0, errBodyGone
	}
	return b.src.Read(p)
}

func (b *engineBody) Close() error { return b.closer.Close() }

// detach cuts the body off from the transaction before it is closed; nil
// is allowed (no body streamed from the engine).
func (b *engineBody) detach() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.detached = true
	b.mu.Unlock()
}

// prepend returns a body that reads head, then body; closing it closes body.
func prepend(head []byte, body io.ReadCloser) io.ReadCloser {
	if len(head) == 0 {
		return body
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), body), body}
}

// bodyLimit is the limit the engine applies to this request's body, and
// the setting it comes from: request_body.no_files_limit for bodies the
// engine parses (any processor but multipart; see rules.ParsedBodyLimitID),
// request_body.limit for the others.
func (s *Stage) bodyLimit(tx types.Transaction) (int64, string) {
	parsed := s.settings.BodyNoFilesLimit
	if state, ok := tx.(plugintypes.TransactionState); ok && parsed > 0 && parsed < s.settings.BodyLimit {
		if p := state.Variables().RequestBodyProcessor().Get(); p != "" && !strings.EqualFold(p, "MULTIPART") {
			return parsed, "request_body.no_files_limit"
		}
	}
	return s.settings.BodyLimit, "request_body.limit"
}

// deny answers an interruption with the neutral page.
func (s *Stage) deny(w http.ResponseWriter, r *http.Request, entry *audit.Entry, tx types.Transaction, it *types.Interruption, what string) {
	status := it.Status
	if status < 400 || status > 599 {
		status = http.StatusForbidden
	}
	reason := fmt.Sprintf("%s denied by rule %d", what, it.RuleID)
	if it.RuleID == 0 && status == http.StatusRequestEntityTooLarge {
		// Coraza's body limit, not a rule; it applies in detect mode too,
		// because it bounds memory rather than judging content.
		limit, field := s.bodyLimit(tx)
		reason = fmt.Sprintf("request body larger than %s (%d bytes)", field, limit)
	}
	entry.Block(audit.StageWAF, reason)
	switch it.Action {
	case "redirect":
		if it.Data != "" && (it.Status == 0 || (it.Status >= 300 && it.Status < 400)) {
			code := it.Status
			if code == 0 {
				code = http.StatusFound
			}
			w.Header().Set(respond.RequestIDHeader, entry.ID)
			http.Redirect(w, r, it.Data, code)
			return
		}
	case "drop":
		// The rule asked to drop the connection: answer, then close it.
		respond.ErrorAndClose(w, r, status, entry.ID)
		return
	}
	respond.Error(w, r, status, entry.ID)
}

// record copies the transaction's findings, and those of the trailer
// transaction, into the audit entry.
func (s *Stage) record(entry *audit.Entry, tx types.Transaction, inspected bool, trailers *trailerFindings) {
	if state, ok := tx.(plugintypes.TransactionState); ok {
		txVars := state.Variables().TX()
		entry.InboundScore = firstInt(txVars.Get("blocking_inbound_anomaly_score"))
		entry.OutboundScore = firstInt(txVars.Get("blocking_outbound_anomaly_score"))
	}
	entry.InboundScore = max(entry.InboundScore, trailers.score)
	logged := 0
	for _, mr := range tx.MatchedRules() {
		if l, ok := mr.(interface{ Log() bool }); ok && !l.Log() {
			continue // bookkeeping rules (nolog) are not findings
		}
		entry.Rules = append(entry.Rules, s.matchedRule(mr))
		logged++
	}
	entry.Rules = append(entry.Rules, trailers.rules...)
	logged += len(trailers.rules)
	if logged > 0 && inspected && !tx.IsInterrupted() && !trailers.interrupted {
		if entry.WAFMode == config.ModeDetect && (entry.InboundScore >= s.settings.InboundThreshold || entry.OutboundScore >= s.settings.OutboundThreshold) {
			entry.Detect(audit.StageWAF, fmt.Sprintf("anomaly score %d/%d reached the threshold (detect mode: not blocked)", entry.InboundScore, entry.OutboundScore))
		} else {
			entry.Detect(audit.StageWAF, fmt.Sprintf("%d rule(s) matched, anomaly score %d/%d below the threshold", logged, entry.InboundScore, entry.OutboundScore))
		}
	}
	if s.keep > 0 && (entry.Decided() || entry.Sampled) {
		s.keepBody(entry, tx)
	}
}

// keepBody copies the start of the buffered request body into the record,
// redacted, so that replay can feed the engine the same request. Only what
// the engine buffered is available: a request stopped at its headers, or
// with body access off, keeps none.
func (s *Stage) keepBody(entry *audit.Entry, tx types.Transaction) {
	body, err := tx.RequestBodyReader()
	if err != nil {
		return
	}
	buf := make([]byte, s.keep+1) // one more byte tells whether there was more
	n, _ := io.ReadFull(body, buf)
	if n == 0 {
		return
	}
	var contentType string
	if state, ok := tx.(plugintypes.TransactionState); ok {
		if ct := state.Variables().RequestHeaders().Get("content-type"); len(ct) > 0 {
			contentType = ct[0]
		}
	}
	entry.RequestBody, entry.RequestBodyTruncated = s.redactor.Body(contentType, buf[:n], s.keep)
}

// maxMatchedData bounds matched data in a record; attackers control it.
const maxMatchedData = 512

func (s *Stage) matchedRule(mr types.MatchedRule) audit.MatchedRule {
	meta := mr.Rule()
	out := audit.MatchedRule{
		ID:       meta.ID(),
		Message:  mr.Message(),
		Data:     truncate(mr.Data(), maxMatchedData),
		Severity: severityName(meta.Severity()),
		Tags:     meta.Tags(),
		Phase:    int(meta.Phase()),
	}
	for _, t := range out.Tags {
		if lvl, ok := strings.CutPrefix(t, "paranoia-level/"); ok {
			out.ParanoiaLevel, _ = strconv.Atoi(lvl)
		}
	}
	mds := mr.MatchedDatas()
	if len(mds) > 0 {
		md := mds[0]
		out.MatchedVariable = md.Variable().Name()
		if k := md.Key(); k != "" {
			out.MatchedVariable += ":" + k
		}
		out.MatchedData = truncate(md.Value(), maxMatchedData)
	}
	// A credential that a rule matched must not reach the record through the
	// matched data or the rule's log data (which quotes the matched value),
	// whichever of the matched variables it was.
	for _, md := range mds {
		if s.redactor.IsSecretVariable(md.Variable().Name(), md.Key()) {
			out.MatchedData, out.Data = audit.Redacted, audit.Redacted
			break
		}
	}
	return out
}

func severityName(sev types.RuleSeverity) string {
	if int(sev) < 0 {
		return ""
	}
	return sev.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func firstInt(vs []string) int {
	if len(vs) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(vs[0])
	return n
}

func localAddr(r *http.Request) (string, int) {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return "", 0
	}
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String(), tcp.Port
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
