// Package replay judges recorded requests again, against the running
// configuration or a candidate one, and reports what would change: the
// operator's way to test an exclusion or a paranoia level on real traffic
// before deploying it.
//
// Place in the request path: none. It sits above audit/ and above the
// pipeline, like the CLI. It rebuilds requests from audit records
// (request line, headers, the kept body) and runs them through
// gateway.Inspector — the protocol checks, routing and rule engine of a
// pipeline built for the candidate configuration — without filters or
// upstreams.
//
// What a record keeps is redacted: credential headers, cookies, password-
// like arguments replay as "[redacted]", and bodies longer than
// audit.body_limit replay cut. Results for such records are marked, because
// the engine may judge the redacted text differently from the original.
package replay

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/gateway"
)

// Verdicts compared by replay.
const (
	Blocked  = "blocked"
	Detected = "detected"
	Allowed  = "allowed"
	// Skipped records were decided by a stage replay does not judge
	// (bans, lists, GeoIP, rate limits, upstream errors).
	Skipped = "skipped"
)

// Verdict reduces a record to what replay compares: whether the protocol
// checks, routing or the rule engine blocked it, flagged it or let it pass.
func Verdict(e *audit.Entry) string {
	switch e.Action {
	case audit.ActionBlocked:
		switch e.Stage {
		case audit.StageWAF, audit.StageProtocol, audit.StageGateway:
			return Blocked
		}
		return Skipped
	case audit.ActionDetected:
		return Detected
	case audit.ActionAllowed:
		return Allowed
	}
	// Errors (engine failures, upstream failures) say nothing about the
	// rules; an upstream error still means the rules passed the request.
	if e.Stage == audit.StageProxy {
		return Allowed
	}
	return Skipped
}

// Rebuild turns a record back into the request it describes. Notes say
// where the rebuilt request differs from the original (redacted values, a
// cut body, a body that was not kept).
func Rebuild(e *audit.Entry) (*http.Request, []string, error) {
	var notes []string
	uri := e.URI
	if uri == "" {
		return nil, nil, fmt.Errorf("record %s has no request target", e.ID)
	}
	r, err := http.NewRequest(e.Method, "http://replay.invalid/", nil)
	if err != nil {
		return nil, nil, fmt.Errorf("record %s: method %q: %w", e.ID, e.Method, err)
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		// Records of malformed requests keep their target as received; the
		// protocol checks judge it, so keep it raw rather than refuse.
		u = &url.URL{Path: uri, RawPath: uri}
	}
	r.URL, r.RequestURI = u, uri
	r.Proto = e.Protocol
	if major, minor, ok := http.ParseHTTPVersion(e.Protocol); ok {
		r.ProtoMajor, r.ProtoMinor = major, minor
	}
	r.Header = http.Header{}
	redacted := strings.Contains(uri, audit.Redacted)
	for k, vs := range e.Headers {
		for _, v := range vs {
			redacted = redacted || v == audit.Redacted
			r.Header.Add(k, v)
		}
	}
	r.Host = e.Host
	if h := r.Header.Values("Host"); len(h) > 0 {
		r.Host = h[0]
	}
	r.Header.Del("Host")
	if te := r.Header.Values("Transfer-Encoding"); len(te) > 0 {
		r.TransferEncoding = te
		r.Header.Del("Transfer-Encoding")
	}
	declared, _ := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
	switch {
	case e.RequestBody != "":
		body := []byte(e.RequestBody)
		r.Body, r.ContentLength = readCloser{bytes.NewReader(body)}, int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		redacted = redacted || strings.Contains(e.RequestBody, audit.Redacted)
		if e.RequestBodyTruncated {
			notes = append(notes, fmt.Sprintf("body cut at %d bytes (audit.body_limit)", len(body)))
		}
	case declared > 0 || len(r.TransferEncoding) > 0:
		r.Header.Del("Content-Length")
		notes = append(notes, "body not kept (blocked before it was read, or recorded without a body)")
	}
	if redacted {
		notes = append(notes, "replayed with redacted values")
	}
	r.RemoteAddr = net.JoinHostPort(e.ClientIP, strconv.Itoa(e.ClientPort))
	return r, notes, nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// Result is one record judged again.
type Result struct {
	Record *audit.Entry // as stored
	Now    *audit.Entry // as the candidate judges it
	Before string       // Verdict(Record)
	After  string       // Verdict(Now)
	Notes  []string
}

// Changed reports whether the candidate decides differently.
func (r Result) Changed() bool { return r.Before != r.After }

// Judge runs one record through in.
func Judge(ctx context.Context, in *gateway.Inspector, e *audit.Entry) (Result, error) {
	res := Result{Record: e, Before: Verdict(e)}
	if res.Before == Skipped {
		res.After = Skipped
		return res, nil
	}
	req, notes, err := Rebuild(e)
	if err != nil {
		return res, err
	}
	res.Notes = notes
	res.Now = in.Inspect(req.WithContext(ctx))
	res.Now.ID, res.Now.Time = e.ID, e.Time
	res.After = Verdict(res.Now)
	return res, nil
}

// Report counts the outcome of a replay.
type Report struct {
	Total, Skipped, Same int
	NowPass              int // blocked before, not blocked now
	NowBlock             int // not blocked before, blocked now
	Other                int // detected ↔ allowed
	WithNotes            int // judged on redacted or cut input
	Changes              []Result
}

// Add counts one result.
func (rp *Report) Add(r Result) {
	rp.Total++
	if len(r.Notes) > 0 {
		rp.WithNotes++
	}
	switch {
	case r.Before == Skipped:
		rp.Skipped++
		return
	case !r.Changed():
		rp.Same++
		return
	case r.Before == Blocked:
		rp.NowPass++
	case r.After == Blocked:
		rp.NowBlock++
	default:
		rp.Other++
	}
	rp.Changes = append(rp.Changes, r)
}
