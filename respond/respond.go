// Package respond writes the one neutral page that every stage answers with
// when it refuses or fails a request, or the site's own templates for it
// (pages.go).
//
// Place in the request path: called by any stage that ends a request early
// (protocol checks, waf, proxy errors). The page shows the status and the
// request id and nothing else: no rule ids, no messages, no upstream errors,
// so an attacker learns nothing about what tripped or what sits behind.
package respond

import (
	"context"
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

// RequestIDHeader carries the request id on every response.
const RequestIDHeader = "X-Request-Id"

var page = template.Must(template.New("deny").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>{{.Status}} {{.Text}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#eee;padding:.1rem .3rem}</style>
</head><body>
<h1>{{.Status}} {{.Text}}</h1>
<p>{{.Explain}}</p>
<p>If you think this is a mistake, contact the site's administrator and quote this request id: <code>{{.ID}}</code></p>
</body></html>
`))

// explanations are deliberately generic per status class.
func explain(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "Too many requests were sent. Please wait and try again."
	case status == http.StatusRequestEntityTooLarge:
		return "The request is larger than this site accepts."
	case status >= 500:
		return "The site could not answer this request right now."
	case status == http.StatusForbidden:
		return "This request was blocked by the site's security policy."
	default:
		return "This request could not be processed."
	}
}

type condemnedKey struct{}

// Condemn marks a request as already refused with status (a malformed
// request): later stages still inspect it, so the audit record is complete,
// but whichever stage answers it answers with this status, and it is never
// forwarded.
func Condemn(ctx context.Context, status int) context.Context {
	return context.WithValue(ctx, condemnedKey{}, status)
}

// Condemned returns the status a request was condemned with, or 0.
func Condemned(ctx context.Context) int {
	s, _ := ctx.Value(condemnedKey{}).(int)
	return s
}

// Error writes the neutral page for status with the request id. It answers
// JSON when the client prefers JSON (Accept), HTML otherwise; HEAD gets
// headers only. It is safe to call before anything was written.
//
// For a condemned request (Condemn) the condemned status wins: a malformed
// request is answered as malformed even when a rule would also deny it, and
// an HTTP/1 connection is closed after it: where one request's framing or
// syntax is in doubt, so is where the next one starts.
func Error(w http.ResponseWriter, r *http.Request, status int, requestID string) {
	write(w, r, status, requestID, false)
}

func write(w http.ResponseWriter, r *http.Request, status int, requestID string, closeConn bool) {
	writeWith(w, r, status, requestID, closeConn, nil)
}

func writeWith(w http.ResponseWriter, r *http.Request, status int, requestID string, closeConn bool, extra http.Header) {
	if r != nil {
		if s := Condemned(r.Context()); s != 0 {
			status = s
			closeConn = closeConn || r.ProtoMajor == 1
		}
	}
	h := w.Header()
	// Drop headers a stage or upstream may have set before failing.
	for k := range h {
		delete(h, k)
	}
	for k, vs := range extra {
		h[k] = vs
	}
	h.Set(RequestIDHeader, requestID)
	if closeConn {
		h.Set("Connection", "close")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	asJSON := WantsJSON(r)
	if r != nil {
		if body, ok := pagesFrom(r.Context()).render(asJSON, status, requestID); ok {
			ct := "text/html; charset=utf-8"
			if asJSON {
				ct = "application/json"
			}
			h.Set("Content-Type", ct)
			h.Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(status)
			if r.Method != http.MethodHead {
				_, _ = w.Write(body)
			}
			return
		}
	}
	if asJSON {
		body := `{"status":` + strconv.Itoa(status) + `,"error":` + strconv.Quote(text) + `,"request_id":` + strconv.Quote(requestID) + "}\n"
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(body))
		}
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r != nil && r.Method == http.MethodHead {
		return
	}
	_ = page.Execute(w, struct {
		Status        int
		Text, Explain string
		ID            string
	}{status, text, explain(status), requestID})
}

// ErrorWithHeaders is Error with extra response headers that say how to
// recover (Retry-After and RateLimit-* on a 429).
func ErrorWithHeaders(w http.ResponseWriter, r *http.Request, status int, requestID string, extra http.Header) {
	writeWith(w, r, status, requestID, false, extra)
}

// ErrorAndClose is Error for a rule that asked to drop the connection: the
// page is sent with "Connection: close", so net/http closes it afterwards.
func ErrorAndClose(w http.ResponseWriter, r *http.Request, status int, requestID string) {
	write(w, r, status, requestID, true)
}

// WantsJSON reports whether r's client prefers a JSON answer to an HTML
// page (its Accept header ranks a JSON type above HTML). It is the one
// decision every refusal follows, the neutral page here and the
// challenge's answer (package challenge), so that an API client gets JSON
// from each. A nil request gets HTML.
func WantsJSON(r *http.Request) bool {
	return r != nil && wantsJSON(r.Header.Get("Accept"))
}

// wantsJSON reports whether the Accept header ranks a JSON type above HTML.
// A missing header or */* gets HTML, which a browser shows and a script can
// still read.
func wantsJSON(accept string) bool {
	if accept == "" {
		return false
	}
	bestJSON, bestHTML := -1.0, -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch {
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			bestJSON = max(bestJSON, q)
		case mt == "text/html":
			bestHTML = max(bestHTML, q)
		}
	}
	return bestJSON > 0 && bestJSON > bestHTML
}
