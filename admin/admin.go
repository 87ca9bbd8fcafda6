// Package admin is the operator's side of Portcullis: the web dashboard
// (overview, events, event detail with the anomaly score broken down per
// rule by review/score, the breakdown `audit show` prints too, bans, and the
// operator's console of console.go: running state, checked reload, WAF mode
// switch, action log) and its JSON API under /api/, served on the admin
// listener.
//
// It also serves the running process's endpoints: /healthz, /readyz,
// /metrics, /api/reload and /api/cache/purge, from small interfaces
// (Reloader, CachePurger, ReadinessReporter, Console, a metrics handler) that the
// composition package, instance, passes in Options. More handlers can be
// mounted with Server.Handle.
//
// Place in the request path: none. The admin listener is separate from the
// traffic listeners (default 127.0.0.1:9090); it reads the audit records the
// audit stage wrote (through audit/store) and changes the ban table that the
// gateway's ban filter consults (bans.Store). It never imports the pipeline
// (gateway): what it needs of it comes through those interfaces.
//
// Security model. Record values (URIs, headers, matched data) are written by
// attackers; every page is rendered by html/template, which escapes them for
// their context, and matched data is only ever shown as text. Every request
// needs a session (login form, bcrypt) or an API token (Authorization:
// Bearer), unless Auth.None was chosen on a loopback-only listener. Every
// state-changing request made with a session cookie must carry the session's
// CSRF token; bearer-token calls are exempt because browsers never attach
// that header on their own. Responses forbid framing, sniffing and any
// script or style not served by this package (Content-Security-Policy).
package admin

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/bans"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
)

// Options are what the admin server works with. Store is required; the rest
// may be left zero.
type Options struct {
	// Store holds the audit records the dashboard and the API read.
	// Required.
	Store store.Store
	// Bans is the table of current bans the gateway consults; the Bans page
	// and /api/bans list, add and lift them. Nil hides the page and answers
	// the API with 404.
	Bans *bans.Store
	// Explain returns a suggested exclusion (YAML) for a blocked or flagged
	// record; the event page shows it with a copy button, or its error
	// (for a record another stage decided, the error says which and why).
	// A suggestion whose first line starts with NotAFix is for a request
	// judged a real attack, and is shown as a warning. Nil means no
	// suggestion is available.
	Explain func(*audit.Entry) (string, error)
	// Reload serves POST /api/reload (reload now, answer the result) and
	// GET /api/reload (the history). Nil: no such endpoint.
	Reload Reloader
	// Cache serves POST /api/cache/purge. Nil: no such endpoint.
	Cache CachePurger
	// Config serves GET /api/config (the configuration in force, secrets
	// masked) and POST /api/config (check and apply a new one, as a
	// reload). Nil: no such endpoints.
	Config ConfigManager
	// Ready serves GET /readyz and GET /healthz ("ok": the process
	// answers), both without authentication. Nil: neither (mount your own
	// with Handle).
	Ready ReadinessReporter
	// Metrics is served at GET /metrics (Prometheus), behind the same
	// authentication as the API. Nil: no such endpoint.
	Metrics http.Handler
	// Console serves the operator's console (/console): the running
	// state, the reload button and the WAF mode switch. Nil: no console.
	Console Console
	// ActionLog is the file the action log is appended to (JSON lines),
	// so that it survives a restart; "" keeps it in memory only.
	ActionLog string
	// ActionLogMaxBytes is the size past which the action log file is
	// rotated (ActionLog.1, .2 …), and ActionLogKeep how many rotated
	// files are kept. Zero: DefaultActionLogMaxBytes (10 MiB) and
	// DefaultActionLogKeep (5).
	ActionLogMaxBytes int64
	ActionLogKeep     int
	// Auth says who may use the dashboard and the API.
	Auth Auth
	// Log receives logins, refused logins and ban changes (never passwords
	// or tokens). Nil discards.
	Log *slog.Logger
	// Redis, when set (cluster.redis), holds the dashboard sessions and
	// the CSRF key, so that a load-balanced admin UI keeps its users
	// logged in on every instance. Login rate limits stay per instance.
	Redis *redisconn.Conn
	// Now is the clock; nil means time.Now. Tests set it to pin "the last
	// 24 hours" and ban expiry.
	Now func() time.Time
}

// NotAFix starts the first line of an Explain answer for a request judged a
// real attack (review/explain.AttackWarning): its exclusions are commented
// out and the page says so.
const NotAFix = "# NOT A FIX:"

// Auth says who may use the admin listener. Exactly one of None, or at least
// one of Users and Tokens, must be set.
type Auth struct {
	// None turns authentication off. It is only accepted on a listener bound
	// to loopback addresses (Validate, Serve), and even then requests must
	// come from a loopback peer and name a loopback host (so a web page that
	// rebinds its DNS name to 127.0.0.1 cannot reach it). Every local user
	// and process can then read audit records and change bans.
	None bool
	// Users log in through the login form.
	Users []User
	// Tokens authenticate API clients (Authorization: Bearer <token>).
	Tokens []Token
}

// User is one dashboard login.
type User struct {
	Name string
	// PasswordHash is a bcrypt hash; the password itself is never held.
	PasswordHash string
}

// Token is one API token, known only by its SHA-256, so the configuration
// never holds a usable secret.
type Token struct {
	Name string
	// SHA256 is the hex SHA-256 of the token (64 hex digits).
	SHA256 string
}

// Validate reports whether auth may be used on a listener at listenAddr
// (host:port): None only when the host is loopback-only.
func (a Auth) Validate(listenAddr string) error {
	if !a.None {
		return nil
	}
	host, _, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return fmt.Errorf("admin: listen address %q: %w", listenAddr, err)
	}
	if !loopbackHost(host) {
		return fmt.Errorf("admin: authentication none is only allowed on a loopback-only listener (127.0.0.1, ::1 or localhost), not %q", listenAddr)
	}
	return nil
}

// loopbackHost reports whether a listen host or Host header names only this
// machine. An empty host or a wildcard address is every interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Server is the admin HTTP handler and, through Serve, the admin listener.
// It is safe for concurrent use.
type Server struct {
	opts  Options
	now   func() time.Time
	log   *slog.Logger
	mux   *http.ServeMux
	auth  *authenticator
	pages *pageSet
	// actions is the log of operator actions (actions.go).
	actions *actionLog
	origin  *http.CrossOriginProtection
	// pause waits before a slowed-down login attempt (sleep; tests record
	// the delay instead of waiting it out).
	pause func(context.Context, time.Duration) error

	mu      sync.Mutex
	servers []*http.Server
	closed  bool
}

var _ http.Handler = (*Server)(nil)

// New validates opts and returns the server with its routes. It does not
// listen; call Serve, or mount it with ServeHTTP.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("admin: Options.Store is required")
	}
	s := &Server{opts: opts, now: opts.Now, log: opts.Log, mux: http.NewServeMux(),
		origin: http.NewCrossOriginProtection(), pause: sleep}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("admin: CSRF key: %w", err)
	}
	a, err := newAuthenticator(opts.Auth, key, s.now)
	if err != nil {
		return nil, err
	}
	s.auth = a
	if opts.Redis != nil {
		a.useRedis(opts.Redis, s.log)
	}
	if s.pages, err = loadPages(); err != nil {
		return nil, err
	}
	if s.actions, err = openActionLog(opts.ActionLog, opts.ActionLogMaxBytes, opts.ActionLogKeep); err != nil {
		return nil, err
	}
	s.routes()
	s.processRoutes()
	s.configRoutes()
	s.consoleRoutes()
	return s, nil
}

// Handle mounts h at pattern (http.ServeMux syntax) behind the same
// authentication as the dashboard, or without any when public is true
// (health checks). Security headers apply either way. Like
// http.ServeMux.Handle it panics on a pattern that conflicts with an
// existing one: that is a wiring mistake, not a runtime condition.
func (s *Server) Handle(pattern string, h http.Handler, public bool) {
	if public {
		s.mux.Handle(pattern, h)
		return
	}
	s.mux.Handle(pattern, s.authenticated(h, false))
}

// ServeHTTP answers one admin request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header(), r.TLS != nil)
	if s.opts.Auth.None && !localRequest(r) {
		// Without authentication only this machine may come in, by a
		// loopback name: a DNS-rebinding page reaches 127.0.0.1 under its
		// own host name and is refused here.
		http.Error(w, "forbidden: the admin listener without authentication answers loopback requests only", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// localRequest reports whether r came from a loopback peer and names a
// loopback host.
func localRequest(r *http.Request) bool {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !peer.Addr().IsLoopback() {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return loopbackHost(host)
}

// setSecurityHeaders sets what every admin response carries. The CSP allows
// only this package's own script and stylesheet; charts are inline SVG,
// which the CSP does not govern, styled by class from the stylesheet.
func setSecurityHeaders(h http.Header, tls bool) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if tls {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// Serve answers admin requests on l until Shutdown, over TLS when tlsConfig
// is not nil (it must hold a certificate or GetCertificate). It refuses to
// start when Auth.None is set and l is not loopback-only. It returns nil
// after Shutdown, and http.ErrServerClosed when called after Shutdown; l is
// closed when it returns. Serve may be called for several listeners
// (127.0.0.1 and ::1); Shutdown stops them all.
func (s *Server) Serve(l net.Listener, tlsConfig *tls.Config) error {
	if err := s.opts.Auth.Validate(l.Addr().String()); err != nil {
		_ = l.Close()
		return err
	}
	if host, _, _ := net.SplitHostPort(l.Addr().String()); tlsConfig == nil && len(s.opts.Auth.Users) > 0 && !loopbackHost(host) {
		// Session cookies are Secure: browsers keep them over HTTPS and on
		// localhost only, so users could not log in from elsewhere.
		s.log.Warn("admin listener is plain HTTP on a non-loopback address: browsers will refuse the Secure session cookie and credentials cross the network in clear; set cert_file and key_file", "address", l.Addr().String())
	}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = l.Close()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()

	var err error
	if tlsConfig != nil {
		hs.TLSConfig = tlsConfig.Clone()
		err = hs.ServeTLS(l, "", "")
	} else {
		err = hs.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops every listener started by Serve and waits for requests in
// flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	servers := s.servers
	s.mu.Unlock()
	var errs []error
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
