package waf

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/portcullis-waf/portcullis/audit"
)

// Request trailers (issue 13). A chunked HTTP/1.1 body or an HTTP/2 stream
// may end with header fields, the trailer section. Upstreams that merge
// trailers into the headers (Tomcat, Apache httpd with MergeTrailers) or
// applications that read them take them as header fields or as input, so
// the rule engine must judge them before they go upstream, and they arrive
// only once the whole body has been read, after phase 1 (which judged the
// head before the body was read) and while phase 2 has yet to run.
//
// They are judged in a second, small transaction run right after the
// request's own phases 1 and 2: the request line and header fields again,
// with the trailer fields added both as request headers (what a merging
// upstream sees: every header rule of phases 1 and 2 runs over them) and
// as arguments (ARGS_PATH, which nothing else fills: an application that
// reads a trailer reads input, and the CRS judges most attack classes only
// in arguments, not in arbitrary headers). Findings that the request's own
// transaction already has are not repeated in the record; a trailer
// transaction that interrupts blocks the request ("request trailers denied
// by rule N"). Trailers are rare in legitimate requests (browsers never send
// them, gRPC clients do not send request trailers), so the second
// transaction costs nothing to ordinary traffic.
//
// The fields judged are handed to the protocol guard through the request's
// context (InspectedTrailers); the guard forwards those alone, and only
// those a trailer may carry. Trailers that arrive after the body went
// upstream uninspected (gRPC body passthrough, inspect_partial past the
// limit, a rule that turned body access off, WAF mode off) were never judged
// and are never forwarded.

// trailerFindings is what the trailer transaction found.
type trailerFindings struct {
	fields      http.Header         // the trailer fields judged
	rules       []audit.MatchedRule // findings beyond the request's own transaction
	score       int                 // the trailer transaction's inbound anomaly score
	interrupted bool                // the trailer transaction interrupted
}

type trailersKey struct{}

// InspectedTrailers returns the trailer fields the rule engine judged and
// let through, and whether there are any. Trailers the engine did not judge
// must not be forwarded.
func InspectedTrailers(ctx context.Context) (http.Header, bool) {
	t, ok := ctx.Value(trailersKey{}).(http.Header)
	return t, ok && len(t) > 0
}

// inspectTrailers judges r's trailer fields, when it has any, in a trailer
// transaction beside main, whose phases 1 and 2 have run. It returns the
// trailer transaction's interruption.
func (s *Stage) inspectTrailers(main types.Transaction, r *http.Request, entry *audit.Entry, out *trailerFindings) (*types.Interruption, error) {
	for k, vs := range r.Trailer {
		if len(vs) > 0 {
			if out.fields == nil {
				out.fields = http.Header{}
			}
			out.fields[k] = append([]string(nil), vs...)
		}
	}
	if len(out.fields) == 0 {
		return nil, nil
	}
	tx := s.engine.waf.(experimental.WAFWithOptions).NewTransactionWithOptions(experimental.Options{
		ID: entry.ID + "-trailers", Context: r.Context(),
	})
	defer func() { _ = tx.Close() }()
	serverIP, serverPort := localAddr(r)
	tx.ProcessConnection(entry.ClientIP, entry.ClientPort, serverIP, serverPort)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	addHeaders(tx, r)
	for k, vs := range out.fields {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
			tx.AddPathRequestArgument(k, v)
		}
	}
	it := tx.ProcessRequestHeaders()
	if it == nil {
		var err error
		if it, err = tx.ProcessRequestBody(); err != nil {
			return nil, fmt.Errorf("process request trailers: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, mr := range main.MatchedRules() {
		seen[findingKey(mr)] = true
	}
	for _, mr := range tx.MatchedRules() {
		if l, ok := mr.(interface{ Log() bool }); (ok && !l.Log()) || seen[findingKey(mr)] {
			continue
		}
		out.rules = append(out.rules, s.matchedRule(mr))
	}
	if state, ok := tx.(plugintypes.TransactionState); ok {
		out.score = firstInt(state.Variables().TX().Get("blocking_inbound_anomaly_score"))
	}
	out.interrupted = it != nil
	return it, nil
}

// findingKey identifies a finding: the rule and what it matched.
func findingKey(mr types.MatchedRule) string {
	k := fmt.Sprint(mr.Rule().ID())
	for _, md := range mr.MatchedDatas() {
		k += "\x00" + md.Variable().Name() + ":" + md.Key() + "=" + md.Value()
	}
	return k
}

// eofWatch notes whether a request body was read to its end, when the
// server has filled in the request's trailers.
type eofWatch struct {
	io.ReadCloser
	eof bool
}

func (b *eofWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// cancelledBefore records a request its client cancelled before what (an
// HTTP/2 stream reset, or an HTTP/1 connection the client closed) and
// reports whether it was. Such a request is neither inspected nor
// forwarded: the client cannot receive an answer, and a flood of opened and
// cancelled streams ("rapid reset") must cost no rule evaluation. The
// reason is fixed text, so that records of a flood can be counted together.
func cancelledBefore(r *http.Request, entry *audit.Entry, what string) bool {
	if r.Context().Err() == nil {
		return false
	}
	entry.Fail(audit.StageProtocol, CancelledReason(r, what))
	entry.Status = 499 // nginx's "client closed request"
	return true
}

// CancelledReason is the record's reason for a request the client cancelled
// before what ("inspection", "forwarding").
func CancelledReason(r *http.Request, what string) string {
	if r.ProtoMajor == 2 {
		return "stream cancelled by the client before " + what
	}
	return "connection closed by the client before " + what
}
