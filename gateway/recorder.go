package gateway

import (
	"net/http"
	"strconv"
)

// The recorder is how the gateway completes a request's audit entry: the
// status and body size the client got (Pipeline.complete).

// recorder notes the status and body size sent to the client. It forwards
// Flush and Hijack (via Unwrap) so streaming and WebSocket keep working.
//
// It also withholds a Flush once the response is complete (HEAD, a status
// without body, or Content-Length bytes written): the last bytes then reach
// the client when the handler returns, after the audit record was submitted.
// Tools that read the log right after a response (go-ftw, fail2ban) depend
// on that order, and withholding costs a complete response nothing.
type recorder struct {
	http.ResponseWriter
	head        bool // request method was HEAD
	status      int
	bytes       int64
	declared    int64 // Content-Length of the response, -1 if unknown
	wroteHeader bool
}

func (rec *recorder) WriteHeader(code int) {
	if code >= 200 && !rec.wroteHeader {
		rec.status, rec.wroteHeader = code, true
		if cl := rec.Header().Get("Content-Length"); cl != "" {
			if n, err := strconv.ParseInt(cl, 10, 64); err == nil {
				rec.declared = n
			}
		}
	} else if code == http.StatusSwitchingProtocols {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

func (rec *recorder) Flush() {
	if rec.complete() {
		return
	}
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// complete reports whether nothing more of the response body can follow.
func (rec *recorder) complete() bool {
	if !rec.wroteHeader {
		return false
	}
	return rec.head || rec.status == http.StatusNoContent || rec.status == http.StatusNotModified ||
		(rec.declared >= 0 && rec.bytes >= rec.declared)
}

// Unwrap lets http.ResponseController reach the connection (Hijack, deadlines).
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
