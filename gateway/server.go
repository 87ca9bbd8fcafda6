package gateway

//lint:file-ignore SA1019 net/http cannot serve HTTP/2 on one connection it did not accept (TLS ends in tlsmgr, and wire reads the frames along), which x/net/http2's Server.ServeConn does.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/clientip"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/connlimit"
	"github.com/portcullis-waf/portcullis/tlsmgr"
	"github.com/portcullis-waf/portcullis/wire"
)

// Server runs the listeners of a configuration and hands every request to the
// current Pipeline. Swap replaces the pipeline in one atomic step: requests
// already running finish on the pipeline they started with.
type Server struct {
	current   atomic.Pointer[Pipeline]
	certs     *tlsmgr.Manager // nil when no site has TLS
	log       *slog.Logger
	servers   []*http.Server
	closers   []io.Closer      // listeners we wrap ourselves (TLS), UDP sockets
	udp       []net.PacketConn // per listener: its HTTP/3 socket, or nil; set by Listen
	h3servers []*http3.Server
	addrs     []net.Addr
	serveErr  chan error
	wg        sync.WaitGroup

	reloadMu sync.Mutex     // one reload at a time
	retiring sync.WaitGroup // pipelines being retired after a reload

	limits *connlimit.Limiter // admission at accept, shared by every listener; set by Listen
	sends  *sendWatch         // server.send_timeout; nil when off

	h2mu      sync.Mutex
	h2wg      sync.WaitGroup
	h2open    map[*tls.Conn]struct{}
	h2closing bool // set by Shutdown: new HTTP/2 connections are refused
	// h2clients holds the per-client HTTP/2 stream budgets (rapid reset),
	// across connections and reloads.
	h2clients *wire.H2Clients
}

// NewServer prepares a server for p's listeners. certs serves the https
// listeners and the ACME HTTP-01 challenges on http listeners; it may be nil
// when no listener is https.
func NewServer(p *Pipeline, certs *tlsmgr.Manager, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{log: log, certs: certs, h2open: map[*tls.Conn]struct{}{}}
	s.current.Store(p)
	// Trusted proxies carry many clients on one address: no per-address
	// budget for them (each of their connections still has its own).
	s.h2clients = wire.NewH2Clients(func(a netip.Addr) bool { return s.current.Load().clients.Trusted(a) })
	if d := p.Config.Server.SendTimeout; d > 0 {
		s.sends = newSendWatch(d)
	}
	return s
}

// ServeHTTP hands r to the current pipeline.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 && r.Trailer == nil {
		// net/http fills the trailer fields into the request it created
		// (this one) when the body ends, into r.Trailer if it is a map
		// already; otherwise only this object's field would get them, and
		// the copies every stage works on would not. With a map every stage
		// sees them and the WAF can judge them (waf.InspectedTrailers).
		r.Trailer = http.Header{}
	}
	wire.BeginRequest(r)
	if r.TLS == nil {
		// HTTP/1 over TLS terminated by tlsmgr.Listener: net/http cannot know.
		r.TLS = wire.TLS(r.Context())
	}
	p := s.acquire()
	defer p.active.Add(-1)
	if sw := newSendTimeout(w, r, s.sends, p.Config.Server.SendTimeout); sw != nil {
		defer sw.end()
		w = sw
	}
	p.serve(w, r)
}

// Limits returns the admission state of the listeners (nil before Listen).
func (s *Server) Limits() *connlimit.Limiter { return s.limits }

// acquire returns the current pipeline with the request already counted
// in it. Counting first and checking the pipeline is still current closes
// the gap in which a reload could swap and retire it before the request
// is counted (Retire would see no request and close it under our feet).
func (s *Server) acquire() *Pipeline {
	for {
		p := s.current.Load()
		p.active.Add(1)
		if s.current.Load() == p {
			return p
		}
		p.active.Add(-1)
	}
}

// Swap makes p the pipeline for new requests and returns the previous one.
func (s *Server) Swap(p *Pipeline) *Pipeline { return s.current.Swap(p) }

// Certificates returns the certificate manager, or nil without TLS sites.
func (s *Server) Certificates() *tlsmgr.Manager { return s.certs }

// Pipeline returns the pipeline serving new requests.
func (s *Server) Pipeline() *Pipeline { return s.current.Load() }

// Listen opens every listener of the current configuration. Nothing is served
// until Serve; if one address cannot be bound, the others are closed again.
func (s *Server) Listen() ([]net.Listener, error) {
	p := s.current.Load()
	cfg := p.Config
	if s.limits == nil {
		// server.* and client_ip cannot change on reload: one set of
		// per-client counts for the process, across every listener.
		s.limits = connlimit.New(connlimit.Config{
			PerClient: cfg.Server.ClientConnections,
			Rate:      cfg.Server.ClientConnectionRate,
			Burst:     cfg.Server.ClientConnectionBurst,
			Trusted:   p.clients.Trusted,
			Reserve:   cfg.Server.DescriptorReserve,
			Log:       s.log,
		})
	}
	var lns []net.Listener
	s.udp = make([]net.PacketConn, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		ln, pc, err := listenPair(l)
		if err != nil {
			for _, o := range lns {
				_ = o.Close()
			}
			for _, pc := range s.udp {
				if pc != nil {
					_ = pc.Close()
				}
			}
			return nil, fmt.Errorf("listen on %s (%s): %w", l.Address, l.Name, err)
		}
		s.udp[i] = pc
		if l.ProxyProtocol {
			// Before TLS and wire: the PROXY header precedes everything.
			ln = clientip.ProxyProtocolListener(ln, cfg.ClientIP.Trusted, cfg.Server.ReadHeaderTimeout)
		}
		// Admission before any byte is read: descriptors, connections and
		// new connections per client (behind the PROXY protocol, the
		// header's client).
		ln = s.limits.Listener(ln, l.ProxyProtocol)
		// net/http answers some malformed requests itself; wire hands them
		// back to the pipeline so they are inspected and audited too.
		lns = append(lns, wire.NewListener(ln, cfg.Server.MaxHeaderBytes+4096, s.serveRejected))
	}
	return lns, nil
}

// serveRejected runs a request that net/http refused through the pipeline,
// marked so that it is inspected and audited but never forwarded.
func (s *Server) serveRejected(w http.ResponseWriter, r *http.Request, status int, reason string) {
	rej := &rejection{status: status, reason: reason}
	if status == wire.StatusHeadTimeout {
		sc := s.current.Load().Config.Server
		rej.headTimeout = headTimeoutSetting(sc.ReadHeaderTimeout, sc.ReadTimeout)
	}
	r = r.WithContext(context.WithValue(r.Context(), rejectedKey{}, rej))
	if r.TLS == nil { // HTTP/1 over TLS; wire sets it for HTTP/2
		r.TLS = wire.TLS(r.Context())
	}
	p := s.acquire()
	defer p.active.Add(-1)
	p.serve(w, r)
}

// Serve serves on lns (as returned by Listen, in the configuration's order)
// until Shutdown. It returns at once; serving errors arrive on Errors.
func (s *Server) Serve(lns []net.Listener) {
	cfg := s.current.Load().Config
	s.serveErr = make(chan error, 2*len(lns)) // TCP and UDP (HTTP/3) of each
	for i, ln := range lns {
		var handler http.Handler = s
		if s.certs != nil && !cfg.Listeners[i].HTTPS {
			// ACME HTTP-01 challenges are answered before anything else.
			handler = s.certs.HTTPHandler(s)
		}
		var pc net.PacketConn
		if i < len(s.udp) {
			pc = s.udp[i]
		}
		if pc != nil && s.certs != nil {
			// HTTP/3 beside it, and Alt-Svc on the TCP side to say so.
			s.serveHTTP3(s.newHTTP3Server(cfg.Server, s), pc)
			handler = advertiseHTTP3(handler, altSvcValue(pc.LocalAddr()))
		}
		hs := newHTTPServer(cfg.Server, handler, s.log)
		if cfg.Listeners[i].HTTPS {
			if s.certs == nil {
				_ = ln.Close()
				if pc != nil {
					_ = pc.Close()
				}
				s.serveErr <- fmt.Errorf("listener %s is https but no certificates are configured", ln.Addr())
				continue
			}
			// One HTTP/2 server per listener: ConfigureServer ties it to hs's
			// shutdown (GOAWAY) and settings.
			h2 := &http2.Server{}
			if err := http2.ConfigureServer(hs, h2); err != nil {
				_ = ln.Close()
				s.serveErr <- fmt.Errorf("HTTP/2 on %s: %w", ln.Addr(), err)
				continue
			}
			s.current.Load().useBoundHTTPSPort(ln.Addr())
			// TLS ends in tlsmgr, below wire: wire reads plaintext. HTTP/2
			// connections come back here (serveH2), which needs wire too.
			tl := tlsmgr.NewListener(unwrapWire(ln), s.certs.TLSConfig(), cfg.Server.ReadHeaderTimeout, func(tc *tls.Conn) { s.serveH2(hs, h2, tc) }, s.log)
			s.closers = append(s.closers, tl)
			ln = wire.NewListener(tl, cfg.Server.MaxHeaderBytes+4096, s.serveRejected)
		}
		s.servers = append(s.servers, hs)
		s.addrs = append(s.addrs, ln.Addr())
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.serveErr <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
			}
		}()
	}
}

// Errors delivers errors that stopped a listener.
func (s *Server) Errors() <-chan error { return s.serveErr }

// Addrs are the bound addresses (useful with port 0).
func (s *Server) Addrs() []net.Addr { return s.addrs }

// serveH2 serves one HTTP/2 connection; Shutdown waits for it. A connection
// whose handshake ends after Shutdown began would miss the GOAWAY, so it is
// closed instead.
func (s *Server) serveH2(hs *http.Server, h2 *http2.Server, tc *tls.Conn) {
	s.h2mu.Lock()
	if s.h2closing {
		s.h2mu.Unlock()
		_ = tc.Close()
		return
	}
	s.h2open[tc] = struct{}{}
	s.h2wg.Add(1)
	s.h2mu.Unlock()
	defer func() {
		s.h2mu.Lock()
		delete(s.h2open, tc)
		s.h2mu.Unlock()
		s.h2wg.Done()
	}()
	// The HTTP/2 server refuses some malformed requests before any
	// handler runs; wire reads along, with the server's own header limit,
	// so that they are inspected and audited too (the client still gets
	// the server's answer).
	hc := wire.NewH2Conn(tc, hs.MaxHeaderBytes, s.serveRejected, s.h2clients, func(a wire.H2Abuse) { s.recordH2Abuse(tc, a) })
	h2.ServeConn(hc, &http2.ServeConnOpts{Context: wire.H2Context(context.Background(), hc), BaseConfig: hs, Handler: hs.Handler})
}

// recordH2Abuse writes the one record of an HTTP/2 connection cut for abuse
// (rapid reset, CONTINUATION flood): the counts, not one record per stream.
// The connection's "request line" is the HTTP/2 preface, PRI * HTTP/2.0;
// the host is the TLS server name.
func (s *Server) recordH2Abuse(tc *tls.Conn, a wire.H2Abuse) {
	p := s.current.Load()
	entry, client := p.newEntry(&http.Request{Method: "PRI", RequestURI: "*", Proto: "HTTP/2.0", ProtoMajor: 2,
		Host: tc.ConnectionState().ServerName, RemoteAddr: tc.RemoteAddr().String(), Header: http.Header{}}, time.Now())
	entry.Sampled = false
	p.cheap.locate(entry, client)
	entry.Block(audit.StageProtocol, fmt.Sprintf("HTTP/2 connection closed: %s (%d streams opened, %d reset by the client in %s)",
		a.Reason, a.Opened, a.Reset, a.Duration.Round(time.Millisecond)))
	entry.Status = 0 // no response: the connection was closed
	p.observe.Metrics.ObserveRequest(entry)
	p.observe.Alerts.ObserveBlock(time.Now())
	p.records.Submit(entry)
}

// unwrapWire returns the raw listener under a wire.Listener: TLS must come
// before wire, which needs plaintext.
func unwrapWire(ln net.Listener) net.Listener {
	if wl, ok := ln.(*wire.Listener); ok {
		return wl.Listener
	}
	return ln
}

// Shutdown stops accepting, waits for in-flight requests up to ctx's deadline,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.h2mu.Lock()
	s.h2closing = true
	s.h2mu.Unlock()
	// All listeners stop accepting at once; each then waits for its own
	// in-flight requests within the same deadline.
	errs := make([]error, len(s.servers))
	var wg sync.WaitGroup
	for i, hs := range s.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Shutdown(ctx); err != nil {
				errs[i] = err
				_ = hs.Close()
			}
		}()
	}
	h3errs := s.shutdownHTTP3(ctx) // while the TCP servers above wait, same deadline
	wg.Wait()
	errs = append(errs, h3errs...)
	for _, c := range s.closers {
		_ = c.Close()
	}
	if s.limits != nil {
		s.limits.Close()
	}
	defer func() {
		if s.sends != nil {
			s.sends.close() // after the handlers: they remove themselves
		}
	}()
	// HTTP/2 connections got GOAWAY from the shutdown hook that
	// http2.ConfigureServer registered; wait for their streams, then cut.
	h2done := make(chan struct{})
	go func() { s.h2wg.Wait(); close(h2done) }()
	select {
	case <-h2done:
	case <-ctx.Done():
		s.h2mu.Lock()
		var open []*tls.Conn
		for c := range s.h2open {
			open = append(open, c)
		}
		s.h2mu.Unlock()
		for _, c := range open {
			// The raw connection: tls.Conn.Close may wait on close_notify.
			_ = c.NetConn().Close()
		}
		<-h2done
		errs = append(errs, ctx.Err())
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

func newHTTPServer(sc config.ServerConfig, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		ReadTimeout:       sc.ReadTimeout,
		WriteTimeout:      sc.WriteTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    sc.MaxHeaderBytes,
		ConnContext:       wire.ConnContext,
		ConnState:         connState,
		// "OPTIONS *" goes through the pipeline (inspected, audited,
		// answered by the protocol guard) instead of net/http's own 200.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
