package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/portcullis-waf/portcullis/config"
)

// HTTP/3 sits beside the TCP side of an https listener: the same port
// number over UDP, the same certificates (tlsmgr.QUICConfig) and the same
// handler (Server.ServeHTTP), so the pipeline and the audit record treat
// an HTTP/3 request as any other (its Protocol is "HTTP/3.0"). There is no
// wire layer below it: QUIC frames requests itself, so the HTTP/1 framing
// checks do not apply, and no PROXY protocol (UDP carries no header).

// maxH3Streams bounds the concurrent requests of one HTTP/3 connection,
// as the HTTP/2 server's default (golang.org/x/net/http2: 250) does for
// HTTP/2.
const maxH3Streams = 250

// h3MaxAge is how long clients may remember the Alt-Svc advertisement.
const h3MaxAge = 24 * time.Hour

// listenPair binds l's TCP address and, when l serves HTTP/3, the UDP port
// of the same number. With port 0 the kernel picks the TCP port, which may
// be taken on UDP: a few other ports are tried.
func listenPair(l config.ListenerConfig) (net.Listener, net.PacketConn, error) {
	if !l.HTTP3 {
		ln, err := net.Listen("tcp", l.Address)
		return ln, nil, err
	}
	host, port, err := net.SplitHostPort(l.Address)
	if err != nil {
		return nil, nil, err
	}
	attempts := 1
	if port == "0" {
		attempts = 8
	}
	for n := 1; ; n++ {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			return nil, nil, err
		}
		_, bound, _ := net.SplitHostPort(ln.Addr().String())
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, bound))
		if err == nil {
			return ln, pc, nil
		}
		_ = ln.Close()
		if n >= attempts {
			return nil, nil, fmt.Errorf("HTTP/3 (UDP) on the same port: %w", err)
		}
	}
}

// newHTTP3Server prepares the HTTP/3 server of an https listener, with the
// limits of server.* that QUIC has an equivalent for: max_header_bytes,
// idle_timeout (both at the HTTP/3 layer and as the QUIC idle timeout),
// read_header_timeout for the handshake, and read_timeout / write_timeout
// as deadlines on each request stream.
func (s *Server) newHTTP3Server(sc config.ServerConfig, handler http.Handler) *http3.Server {
	qc := &quic.Config{
		// 0-RTT data can be replayed by anyone who captured it: a WAF in
		// front of applications must not forward replayable requests.
		Allow0RTT:          false,
		MaxIncomingStreams: maxH3Streams,
		// No extension uses unidirectional streams beyond the control
		// and QPACK streams (3 each way suffice; quic-go's default is 100).
		MaxIncomingUniStreams: 16,
	}
	if sc.ReadHeaderTimeout > 0 {
		qc.HandshakeIdleTimeout = sc.ReadHeaderTimeout
	}
	if sc.IdleTimeout > 0 {
		qc.MaxIdleTimeout = sc.IdleTimeout
	}
	return &http3.Server{
		TLSConfig:      s.certs.QUICConfig(),
		QUICConfig:     qc,
		Handler:        streamDeadlines(handler, sc.ReadTimeout, sc.WriteTimeout),
		MaxHeaderBytes: sc.MaxHeaderBytes,
		IdleTimeout:    sc.IdleTimeout,
		Logger:         s.log,
	}
}

// streamDeadlines bounds reading the request (read_timeout) and writing
// the response (write_timeout) of one HTTP/3 stream, as net/http does per
// request on HTTP/1 and HTTP/2.
func streamDeadlines(next http.Handler, read, write time.Duration) http.Handler {
	if read <= 0 && write <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if read > 0 {
			_ = rc.SetReadDeadline(now.Add(read))
		}
		if write > 0 {
			_ = rc.SetWriteDeadline(now.Add(write))
		}
		next.ServeHTTP(w, r)
	})
}

// serveHTTP3 serves HTTP/3 on pc until Shutdown; errors other than the
// server's closing go to serveErr. The QUIC transport admits new
// connections through the same per-client limits as the TCP listeners
// (connlimit: QUICConnContext refuses over server.client_connections and
// client_connection_rate, QUICVerifySourceAddress asks a full address for
// a Retry first).
func (s *Server) serveHTTP3(h3 *http3.Server, pc net.PacketConn) {
	s.h3servers = append(s.h3servers, h3)
	tr := &quic.Transport{Conn: pc}
	if s.limits != nil {
		tr.ConnContext = s.limits.QUICConnContext
		tr.VerifySourceAddress = s.limits.QUICVerifySourceAddress
	}
	// Closed after the server's shutdown, the transport before the socket:
	// http3.Server closes neither a listener it was given nor the socket.
	s.closers = append(s.closers, tr, pc)
	ln, err := tr.ListenEarly(http3.ConfigureTLSConfig(h3.TLSConfig), h3.QUICConfig)
	if err != nil {
		s.serveErr <- fmt.Errorf("HTTP/3 on %s: %w", pc.LocalAddr(), err)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := h3.ServeListener(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) {
			s.serveErr <- fmt.Errorf("serve HTTP/3 on %s: %w", pc.LocalAddr(), err)
		}
	}()
}

// altSvcValue advertises HTTP/3 on the UDP port bound at addr.
func altSvcValue(addr net.Addr) string {
	_, port, _ := net.SplitHostPort(addr.String())
	return `h3=":` + port + `"; ma=` + strconv.Itoa(int(h3MaxAge/time.Second))
}

// advertiseHTTP3 adds Alt-Svc to every response of an https listener's
// TCP side (HTTP/1.1 and HTTP/2), before the pipeline runs, so block pages
// carry it too: browsers switch to HTTP/3 for later requests.
func advertiseHTTP3(next http.Handler, value string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor < 3 {
			w.Header()["Alt-Svc"] = []string{value}
		}
		next.ServeHTTP(w, r)
	})
}

// shutdownHTTP3 sends GOAWAY on every HTTP/3 connection and waits for
// their requests within ctx, then closes what is left.
func (s *Server) shutdownHTTP3(ctx context.Context) []error {
	errs := make([]error, len(s.h3servers))
	done := make(chan int, len(s.h3servers))
	for i, h3 := range s.h3servers {
		go func() {
			if err := h3.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				errs[i] = fmt.Errorf("HTTP/3 shutdown: %w", err)
			}
			done <- i
		}()
	}
	for range s.h3servers {
		<-done
	}
	return errs
}
