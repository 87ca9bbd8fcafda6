package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// maxFormBytes bounds every request body the admin server reads: forms and
// JSON are a few hundred bytes.
const maxFormBytes = 64 << 10

// routes registers every page and API endpoint. Pages and API share one
// mux so a route table fits on one screen.
func (s *Server) routes() {
	page := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.authenticated(h, true)) }
	api := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.authenticated(h, false)) }

	s.mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler()))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	page("POST /logout", s.logout)

	page("GET /{$}", s.overview)
	page("GET /events", s.eventsPage)
	page("GET /events/{id}", s.eventPage)
	page("GET /bans", s.bansPage)
	page("POST /bans", s.addBanForm)
	page("POST /bans/lift", s.liftBanForm)

	api("GET /api/events", s.apiEvents)
	api("GET /api/events/{id}", s.apiEvent)
	api("GET /api/event/{id}", s.apiEvent)
	api("GET /api/summary", s.apiSummary)
	api("GET /api/bans", s.apiBans)
	api("POST /api/bans", s.apiAddBan)
	api("DELETE /api/bans/{prefix...}", s.apiLiftBan)
	api("GET /api/actions", s.apiActions)
}

// authenticated lets r through to h when it comes from a user, a token or
// (auth none) this machine; pages redirect strangers to the login form, the
// API answers 401. State-changing requests must also pass the CSRF check.
func (s *Server) authenticated(h http.Handler, page bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.auth.identify(r)
		if !ok {
			if page && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis admin"`)
			s.fail(w, r, http.StatusUnauthorized, "authentication required: log in, or send Authorization: Bearer <token>")
			return
		}
		if p.Kind == "none" && p.binding == "" && page {
			// Forms need a CSRF token even without authentication: any web
			// page the operator visits could otherwise post to this one.
			b, err := anonBinding(w, r)
			if err != nil {
				s.fail(w, r, http.StatusInternalServerError, "could not set up the session")
				return
			}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				p.binding = b
			}
		}
		if !safeMethod(r.Method) {
			if err := s.checkCSRF(r, p); err != nil {
				s.log.Warn("admin: request refused by the CSRF check", "method", r.Method, "path", r.URL.Path, "user", p.Name, "peer", r.RemoteAddr, "reason", err.Error())
				s.fail(w, r, http.StatusForbidden, "forbidden: "+err.Error())
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF decides whether a state-changing request was meant by its
// sender. Bearer tokens are never attached by a browser on its own, so a
// request carrying one was built on purpose. Everything else must come from
// our own origin (Sec-Fetch-Site / Origin, when the browser sends them) and
// carry the synchronizer token of its session, in the X-CSRF-Token header or
// the csrf form field.
//
// One exception: with authentication off, a JSON API call that carries none
// of our cookies is a script or curl, not a browser page (a cross-site form
// cannot send JSON, nor DELETE, without a CORS preflight we never allow),
// and passes on the origin check alone.
func (s *Server) checkCSRF(r *http.Request, p principal) error {
	page := !strings.HasPrefix(r.URL.Path, "/api/")
	if page {
		// Parsed here for every page form, whoever posts it (a bearer
		// token too), so handlers find PostForm filled whichever way the
		// token came.
		r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			return errors.New("unreadable form")
		}
	}
	if p.Kind == "token" {
		return nil
	}
	if err := s.origin.Check(r); err != nil {
		return errors.New("cross-origin request")
	}
	tok := r.Header.Get(csrfHeader)
	if page && tok == "" {
		tok = r.PostForm.Get(csrfField)
	}
	if p.Kind == "none" && p.binding == "" && strings.HasPrefix(r.URL.Path, "/api/") && !hasOurCookie(r) {
		if r.Method == http.MethodPost && !isJSON(r) {
			return errors.New("API requests must send Content-Type: application/json")
		}
		return nil
	}
	if tok == "" {
		return errors.New("missing CSRF token (reload the page and try again)")
	}
	if !s.auth.validCSRF(p.binding, tok) {
		return errors.New("invalid CSRF token (reload the page and try again)")
	}
	return nil
}

func hasOurCookie(r *http.Request) bool {
	for _, c := range r.Cookies() {
		if c.Name == sessionCookie || c.Name == anonCookie {
			return true
		}
	}
	return false
}

func isJSON(r *http.Request) bool {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/json")
}

// fail answers an error: JSON under /api/, a page elsewhere. msg is ours,
// never request data, but it is escaped all the same.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	s.render(w, r, status, "error", "Error", errorView{Status: status, Text: http.StatusText(status), Message: msg})
}

type errorView struct {
	Status  int
	Text    string
	Message string
	Links   []navLink // ways on, e.g. the records an ambiguous id may mean
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}

// localPath returns next when it is a path on this server, "/" otherwise,
// so the login form cannot be used to send someone elsewhere.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}
