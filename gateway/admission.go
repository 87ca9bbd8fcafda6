package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
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
// client, and the final flush after the handler, must complete within the
// timeout, measured from the start of that write (as nginx's send_timeout),
// not over the whole response. A client that stops reading, or reads a
// byte a second, is cut within one timeout of its last progress; the
// handler returns and the upstream connection it held is released (closed:
// its response was not read to the end). Long downloads and streams that
// the client keeps reading are never cut.
//
// The deadline is set through http.ResponseController: on the connection
// for HTTP/1, on the stream for HTTP/2 (where a stream blocked by flow
// control is reset). Between writes no deadline is set, so a stream that
// is quiet because its upstream is (server-sent events, gRPC streams) is
// not cut; write_timeout, when set, remains the bound on the whole
// response.
type sendTimeout struct {
	http.ResponseWriter
	rc   *http.ResponseController
	d    time.Duration
	hard time.Time // start + write_timeout; zero without one
}

// newSendTimeout wraps w, or returns nil when send_timeout is off.
func newSendTimeout(w http.ResponseWriter, sc config.ServerConfig) *sendTimeout {
	if sc.SendTimeout <= 0 {
		return nil
	}
	sw := &sendTimeout{ResponseWriter: w, rc: http.NewResponseController(w), d: sc.SendTimeout}
	if sc.WriteTimeout > 0 {
		sw.hard = time.Now().Add(sc.WriteTimeout)
	}
	return sw
}

// arm sets the deadline of the write about to start.
func (sw *sendTimeout) arm() {
	d := time.Now().Add(sw.d)
	if !sw.hard.IsZero() && sw.hard.Before(d) {
		d = sw.hard
	}
	_ = sw.rc.SetWriteDeadline(d) // not supported (a refused request's writer): no deadline
}

// disarm returns to the deadline between writes: write_timeout's, or none.
func (sw *sendTimeout) disarm() { _ = sw.rc.SetWriteDeadline(sw.hard) }

func (sw *sendTimeout) Write(p []byte) (int, error) {
	sw.arm()
	n, err := sw.ResponseWriter.Write(p)
	sw.disarm()
	return n, err
}

// Flush sends what is buffered, within the timeout.
func (sw *sendTimeout) Flush() {
	sw.arm()
	_ = sw.rc.Flush()
	sw.disarm()
}

// end bounds what net/http writes after the handler returns (the buffered
// end of the response); connState lifts it once an HTTP/1 connection is
// idle, an HTTP/2 stream drops it when it closes.
func (sw *sendTimeout) end() { sw.arm() }

// Unwrap lets http.ResponseController reach the connection (Hijack for
// WebSocket upgrades: net/http clears the deadlines of a hijacked
// connection).
func (sw *sendTimeout) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

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
