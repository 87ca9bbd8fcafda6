package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/wire"
)

// Server runs the listeners of a configuration and hands every request to the
// current Pipeline. Swap replaces the pipeline in one atomic step: requests
// already running finish on the pipeline they started with.
type Server struct {
	current  atomic.Pointer[Pipeline]
	log      *slog.Logger
	servers  []*http.Server
	addrs    []net.Addr
	serveErr chan error
	wg       sync.WaitGroup
}

// NewServer prepares a server for p's listeners.
func NewServer(p *Pipeline, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{log: log}
	s.current.Store(p)
	return s
}

// ServeHTTP hands r to the current pipeline.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wire.BeginRequest(r)
	s.current.Load().ServeHTTP(w, r)
}

// Swap makes p the pipeline for new requests and returns the previous one.
func (s *Server) Swap(p *Pipeline) *Pipeline { return s.current.Swap(p) }

// Pipeline returns the pipeline serving new requests.
func (s *Server) Pipeline() *Pipeline { return s.current.Load() }

// Listen opens every listener of the current configuration. Nothing is served
// until Serve; if one address cannot be bound, the others are closed again.
func (s *Server) Listen() ([]net.Listener, error) {
	cfg := s.current.Load().Config
	var lns []net.Listener
	for _, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			for _, o := range lns {
				_ = o.Close()
			}
			return nil, fmt.Errorf("listen on %s (%s): %w", l.Address, l.Name, err)
		}
		// net/http answers some malformed requests itself; wire hands them
		// back to the pipeline so they are inspected and audited too.
		lns = append(lns, wire.NewListener(ln, cfg.Server.MaxHeaderBytes+4096, s.serveRejected))
	}
	return lns, nil
}

// serveRejected runs a request that net/http refused through the pipeline,
// marked so that it is inspected and audited but never forwarded.
func (s *Server) serveRejected(w http.ResponseWriter, r *http.Request, status int, reason string) {
	r = r.WithContext(context.WithValue(r.Context(), rejectedKey{}, &rejection{status: status, reason: reason}))
	s.current.Load().ServeHTTP(w, r)
}

// Serve serves on lns until Shutdown. It returns at once; serving errors
// arrive on Errors.
func (s *Server) Serve(lns []net.Listener) {
	cfg := s.current.Load().Config
	s.serveErr = make(chan error, len(lns))
	for _, ln := range lns {
		hs := newHTTPServer(cfg.Server, s, s.log)
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

// Shutdown stops accepting, waits for in-flight requests up to ctx's deadline,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
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
	wg.Wait()
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
		ConnState:         wire.ConnState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
