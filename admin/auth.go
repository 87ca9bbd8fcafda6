package admin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Cookie names. The __Host- prefix makes the browser insist on Secure,
// Path=/ and no Domain, so a sibling host cannot plant or overwrite them.
const (
	sessionCookie = "__Host-portcullis-session"
	// anonCookie binds the CSRF token of the login form, and of every form
	// when authentication is off, to one browser.
	anonCookie = "__Host-portcullis-anon"
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// Session lifetimes: an idle dashboard logs out within the hour; nobody
// stays logged in for more than a working day.
const (
	sessionIdle     = time.Hour
	sessionAbsolute = 12 * time.Hour
	maxSessions     = 1024
)

// principal is who made a request.
type principal struct {
	Name string
	Kind string // "user", "token" or "none"
	// binding is what the CSRF token is derived from: the session id, or
	// the anonymous cookie when authentication is off. Empty for tokens.
	binding string
}

type principalKey struct{}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// authenticator checks passwords, tokens, sessions and CSRF tokens.
type authenticator struct {
	none   bool
	users  map[string][]byte // name → bcrypt hash
	tokens []tokenHash
	// dummy is compared against for unknown user names, so a refused login
	// costs the same time whether or not the name exists.
	dummy []byte
	// key is the HMAC key of CSRF tokens: random per process, or shared by
	// the cluster through Redis so that a form rendered by one instance
	// can be posted to another.
	key atomic.Pointer[[]byte]
	now func() time.Time

	// bcryptSlots bounds concurrent bcrypt comparisons: each costs tens of
	// milliseconds of CPU, and a flood of logins must not starve the host.
	bcryptSlots chan struct{}
	limiter     *loginLimiter

	sessions sessionStore
}

type tokenHash struct {
	name string
	sum  []byte
}

type session struct {
	user             string
	id               string
	created, lastUse time.Time
}

func newAuthenticator(a Auth, key []byte, now func() time.Time) (*authenticator, error) {
	au := &authenticator{none: a.None, users: map[string][]byte{}, now: now,
		bcryptSlots: make(chan struct{}, max(2, runtime.NumCPU())),
		limiter:     newLoginLimiter(now),
		sessions:    newMemorySessions()}
	au.key.Store(&key)
	var errs []error
	if a.None && (len(a.Users) > 0 || len(a.Tokens) > 0) {
		errs = append(errs, errors.New("auth none cannot be combined with users or tokens"))
	}
	if !a.None && len(a.Users) == 0 && len(a.Tokens) == 0 {
		errs = append(errs, errors.New("auth needs users and/or tokens, or none on a loopback-only listener"))
	}
	cost := bcrypt.MinCost
	for i, u := range a.Users {
		if strings.TrimSpace(u.Name) == "" {
			errs = append(errs, fmt.Errorf("user %d: name is empty", i))
			continue
		}
		if _, dup := au.users[u.Name]; dup {
			errs = append(errs, fmt.Errorf("user %q: listed twice", u.Name))
		}
		c, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			errs = append(errs, fmt.Errorf("user %q: password hash is not a bcrypt hash: %w", u.Name, err))
			continue
		}
		cost = max(cost, c)
		au.users[u.Name] = []byte(u.PasswordHash)
	}
	for i, t := range a.Tokens {
		sum, err := hex.DecodeString(t.SHA256)
		if err != nil || len(sum) != sha256.Size {
			errs = append(errs, fmt.Errorf("token %d (%q): sha256 must be 64 hex digits", i, t.Name))
			continue
		}
		au.tokens = append(au.tokens, tokenHash{name: t.Name, sum: sum})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	if len(au.users) > 0 {
		// The highest cost in use, so an unknown name is never answered
		// measurably faster than a known one.
		var err error
		if au.dummy, err = bcrypt.GenerateFromPassword([]byte("portcullis-no-such-user"), cost); err != nil {
			return nil, fmt.Errorf("admin: dummy hash: %w", err)
		}
	}
	return au, nil
}

// checkPassword reports whether name and password match a user. It takes
// one bcrypt comparison whatever the outcome.
func (a *authenticator) checkPassword(ctx context.Context, name, password string) (bool, error) {
	select {
	case a.bcryptSlots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-a.bcryptSlots }()
	hash, known := a.users[name]
	if !known {
		hash = a.dummy
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	return ok && known, nil
}

// checkToken returns the name of the token whose SHA-256 is that of tok.
// Every configured token is compared in constant time.
func (a *authenticator) checkToken(tok string) (string, bool) {
	sum := sha256.Sum256([]byte(tok))
	name, found := "", false
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum) == 1 {
			name, found = t.name, true
		}
	}
	return name, found
}

// newSession creates a session for user and returns its id: 256 random
// bits, hex-encoded.
func (a *authenticator) newSession(user string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	id := hex.EncodeToString(b)
	a.sessions.create(id, user, a.now())
	return id, nil
}

// session returns the live session with this id and records its use.
func (a *authenticator) session(id string) (*session, bool) {
	if len(id) != 64 {
		return nil, false
	}
	return a.sessions.lookup(id, a.now())
}

func (a *authenticator) endSession(id string) { a.sessions.end(id) }

// csrfToken is the synchronizer token for binding (a session id or the
// anonymous cookie): an HMAC under a per-process key, so it needs no storage,
// cannot be computed by anyone who does not hold the binding, and dies with
// the session.
func (a *authenticator) csrfToken(binding string) string {
	if binding == "" {
		return ""
	}
	m := hmac.New(sha256.New, *a.key.Load())
	m.Write([]byte("portcullis admin csrf\x00"))
	m.Write([]byte(binding))
	return hex.EncodeToString(m.Sum(nil))
}

func (a *authenticator) validCSRF(binding, token string) bool {
	if binding == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(a.csrfToken(binding)), []byte(token))
}

// identify returns who made r, or ok=false. A bearer token that is present
// must be valid: a bad token is not silently replaced by a cookie. Other
// Authorization schemes are ignored, so a proxy in front that asks for
// Basic credentials does not lock out the dashboard's own sessions.
func (a *authenticator) identify(r *http.Request) (principal, bool) {
	if scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		if len(a.tokens) == 0 {
			return principal{}, false
		}
		name, ok := a.checkToken(strings.TrimSpace(tok))
		return principal{Name: name, Kind: "token"}, ok
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if s, ok := a.session(c.Value); ok {
			return principal{Name: s.user, Kind: "user", binding: s.id}, true
		}
	}
	if a.none {
		p := principal{Name: "local", Kind: "none"}
		if c, err := r.Cookie(anonCookie); err == nil && validAnon(c.Value) {
			p.binding = c.Value
		}
		return p, true
	}
	return principal{}, false
}

// validAnon reports whether v looks like an anonymous cookie we issued
// (64 hex digits); anything else is replaced.
func validAnon(v string) bool {
	if len(v) != 64 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

// anonBinding returns the browser's anonymous cookie value, setting a new
// one when it has none, for the CSRF token of forms shown before login (and
// of every form when authentication is off).
func anonBinding(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(anonCookie); err == nil && validAnon(c.Value) {
		return c.Value, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("anonymous cookie: %w", err)
	}
	v := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: anonCookie, Value: v, Path: "/", Secure: true,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionAbsolute / time.Second)})
	// The cookie is also visible to this request's handlers (the login
	// page renders the token from it).
	r.AddCookie(&http.Cookie{Name: anonCookie, Value: v})
	return v, nil
}

func setSessionCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", Secure: true,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", Secure: true,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}
