package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

const maxUserName = 256

type loginView struct {
	CSRF    string
	Next    string
	User    string
	Message string
}

// loginPage shows the login form; a logged-in user goes straight on.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if p, ok := s.auth.identify(r); ok && p.Kind != "token" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.showLogin(w, r, http.StatusOK, loginView{Next: next})
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, status int, v loginView) {
	b, err := anonBinding(w, r)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "could not set up the login form")
		return
	}
	v.CSRF = s.auth.csrfToken(b)
	s.render(w, r, status, "login", "Log in", v)
}

// login checks a user name and password. Every refusal for a wrong name or
// a wrong password looks the same (status, text, timing); an address, or
// an address and name, over its budget is refused before any password is
// compared, and a name guessed from many addresses is slowed down (see
// limit.go).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, "unreadable form")
		return
	}
	next := localPath(r.PostForm.Get("next"))
	if s.auth.none {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	var binding string
	if c, err := r.Cookie(anonCookie); err == nil && validAnon(c.Value) {
		binding = c.Value
	}
	if s.origin.Check(r) != nil || !s.auth.validCSRF(binding, r.PostForm.Get(csrfField)) {
		// Login CSRF would sign the operator into someone else's session.
		s.showLogin(w, r, http.StatusForbidden, loginView{Next: next, Message: "The login form expired. Please try again."})
		return
	}
	name, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	if len(name) > maxUserName {
		name = name[:maxUserName]
	}
	var peer netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer = ap.Addr()
	}
	pair := pairKey(peer, name)
	keys := []limitKey{addrKey(peer), pair}
	if wait := s.auth.limiter.begin(keys...); wait > 0 {
		secs := int(wait.Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		s.log.Warn("admin: login refused, too many failures from this address", "user", name, "peer", r.RemoteAddr, "retry_after_s", secs)
		s.showLogin(w, r, http.StatusTooManyRequests, loginView{Next: next, User: name,
			Message: fmt.Sprintf("Too many failed logins. Try again in %s.", humanDuration(wait))})
		return
	}
	if d := s.auth.limiter.slowdown(name); d > 0 {
		// Many failures for this name from elsewhere: slow every guess at
		// it down, but let the owner in.
		s.log.Warn("admin: login slowed, many failures for this user name", "user", name, "peer", r.RemoteAddr, "delay", d)
		if err := s.pause(r.Context(), d); err != nil {
			s.auth.limiter.end(keys...)
			return // the client went away
		}
	}
	ok, err := s.auth.checkPassword(r.Context(), name, password)
	if err != nil {
		s.auth.limiter.end(keys...)
		return // the client went away while waiting for a bcrypt slot
	}
	if !ok {
		s.auth.limiter.fail(name, keys...)
		s.auth.limiter.end(keys...)
		s.log.Warn("admin: login failed", "user", name, "peer", r.RemoteAddr)
		s.showLogin(w, r, http.StatusUnauthorized, loginView{Next: next, User: name, Message: "Wrong user name or password."})
		return
	}
	s.auth.limiter.end(keys...)
	s.auth.limiter.succeed(pair)
	id, err := s.auth.newSession(name)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "could not create a session")
		return
	}
	s.log.Info("admin: login", "user", name, "peer", r.RemoteAddr)
	setSessionCookie(w, id)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session (server side, so a copied cookie dies too).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.auth.endSession(c.Value)
	}
	clearSessionCookie(w)
	s.log.Info("admin: logout", "user", principalFrom(r.Context()).Name, "peer", r.RemoteAddr)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// humanDuration rounds up to whole minutes or seconds for messages.
func humanDuration(d time.Duration) string {
	if d >= time.Minute {
		m := int((d + time.Minute - 1) / time.Minute)
		if m == 1 {
			return "1 minute"
		}
		return strconv.Itoa(m) + " minutes"
	}
	sec := max(int((d+time.Second-1)/time.Second), 1)
	if sec == 1 {
		return "1 second"
	}
	return strconv.Itoa(sec) + " seconds"
}

// sleep waits d or until ctx ends: Server.pause outside tests.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
