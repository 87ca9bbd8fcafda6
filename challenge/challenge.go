// Package challenge answers requests on challenged routes with a
// JavaScript proof-of-work page instead of passing them on, until the
// client proves it runs a script: a browser solves it in a fraction of a
// second, a bot that does not run JavaScript never gets through, and one
// that does pays CPU time for every pass.
//
// Place in the request path: in the gateway, after the cheap filters (bans,
// lists, rate limits) and before the rule engine, for routes with
// challenge: true. A request with a valid pass cookie goes on (the cookie
// removed, the upstream never sees it); any other gets the challenge page
// (403, audited with stage "challenge").
//
// The challenge is also the answer of a filter hit instead of a block
// (Answer): rate limits, deny lists and GeoIP rules with action:
// challenge serve the page to a client they hit and let a client with a
// pass through (a rate limit within a ceiling), audited under their own
// stage.
//
// Everything is stateless and cheap to verify: the page carries a nonce
// that names its expiry and is signed (HMAC-SHA-256) together with the
// client's address, User-Agent and host; the script searches a counter
// such that SHA-256(nonce ":" counter) starts with the configured number
// of zero bits, stores "nonce:counter" in a cookie and reloads. The server
// checks the signature, the expiry and one hash, and sets the pass cookie:
// an expiry signed with the same binding. Nothing is stored server-side.
package challenge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/bits"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cookie names. The pass cookie is HttpOnly; the answer cookie is written
// by the page's script.
const (
	PassCookie   = "portcullis_pass"
	AnswerCookie = "portcullis_pow"
)

// Results of a challenged request, for metrics.
const (
	ResultPassed   = "passed"   // a valid pass cookie
	ResultSolved   = "solved"   // a valid answer: pass cookie set
	ResultServed   = "served"   // the page was served (no or expired pass)
	ResultRejected = "rejected" // an answer that was wrong, expired or forged
)

// Options configure a Challenger.
type Options struct {
	// Key signs nonces and passes; at least 32 bytes. Instances that share
	// it accept each other's passes.
	Key []byte
	// Difficulty is the number of leading zero bits the answer's hash needs
	// (each bit doubles the client's expected work). 8..28.
	Difficulty int
	// PassTTL is how long a pass is valid.
	PassTTL time.Duration
	// NonceTTL is how long a page's nonce may be answered.
	NonceTTL time.Duration
}

// Challenger issues and verifies challenges. Safe for concurrent use.
type Challenger struct {
	o Options
}

// New returns a challenger for o.
func New(o Options) (*Challenger, error) {
	switch {
	case len(o.Key) < 32:
		return nil, errors.New("challenge: the key must have at least 32 bytes")
	case o.Difficulty < 1 || o.Difficulty > 32:
		return nil, errors.New("challenge: difficulty must be 1..32 bits")
	case o.PassTTL <= 0 || o.NonceTTL <= 0:
		return nil, errors.New("challenge: lifetimes must be positive")
	}
	return &Challenger{o: o}, nil
}

// Client is what a challenge is bound to.
type Client struct {
	Addr      string // the real client address (clientip), without port
	UserAgent string
	Host      string // the request's host, without port
	Secure    bool   // the request came over TLS: cookies get Secure
}

// ClientOf builds the binding of r from the client address.
func ClientOf(r *http.Request, addr string) Client {
	host := r.Host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	return Client{Addr: addr, UserAgent: r.UserAgent(), Host: strings.ToLower(host), Secure: r.TLS != nil}
}

// mac signs kind and the fields with the client binding. Fields are
// length-prefixed so that no two different inputs sign alike.
func (c *Challenger) mac(kind string, cl Client, fields ...string) []byte {
	h := hmac.New(sha256.New, c.o.Key)
	for _, f := range append([]string{kind, cl.Addr, cl.UserAgent, cl.Host}, fields...) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

var b64 = base64.RawURLEncoding

// Nonce returns a fresh nonce for cl: "expiry.random.signature".
func (c *Challenger) Nonce(cl Client, now time.Time) string {
	var r [12]byte
	_, _ = rand.Read(r[:])
	exp := strconv.FormatInt(now.Add(c.o.NonceTTL).Unix(), 10)
	rnd := b64.EncodeToString(r[:])
	return exp + "." + rnd + "." + b64.EncodeToString(c.mac("nonce", cl, exp, rnd))
}

// Difficulty is the number of leading zero bits an answer needs.
func (c *Challenger) Difficulty() int { return c.o.Difficulty }

// CheckAnswer verifies "nonce:counter" for cl at now: the nonce is ours,
// for this client, not expired, and the hash has enough zero bits.
func (c *Challenger) CheckAnswer(answer string, cl Client, now time.Time) error {
	if len(answer) > 256 {
		return errors.New("answer too long")
	}
	nonce, counter, ok := strings.Cut(answer, ":")
	if !ok || counter == "" || len(counter) > 20 {
		return errors.New("answer malformed")
	}
	for i := 0; i < len(counter); i++ {
		if counter[i] < '0' || counter[i] > '9' {
			return errors.New("answer malformed")
		}
	}
	parts := strings.Split(nonce, ".")
	if len(parts) != 3 {
		return errors.New("nonce malformed")
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, c.mac("nonce", cl, parts[0], parts[1])) {
		return errors.New("nonce not issued to this client")
	}
	exp, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || now.Unix() > exp {
		return errors.New("nonce expired")
	}
	if LeadingZeroBits(sha256.Sum256([]byte(answer))) < c.o.Difficulty {
		return errors.New("proof of work insufficient")
	}
	return nil
}

// LeadingZeroBits counts the zero bits at the start of sum.
func LeadingZeroBits(sum [32]byte) int {
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// Pass returns the pass cookie's value for cl: "expiry.signature".
func (c *Challenger) Pass(cl Client, now time.Time) string {
	exp := strconv.FormatInt(now.Add(c.o.PassTTL).Unix(), 10)
	return exp + "." + b64.EncodeToString(c.mac("pass", cl, exp))
}

// CheckPass verifies a pass cookie's value for cl at now.
func (c *Challenger) CheckPass(v string, cl Client, now time.Time) bool {
	exp, sigText, ok := strings.Cut(v, ".")
	if !ok || len(v) > 128 {
		return false
	}
	sig, err := b64.DecodeString(sigText)
	if err != nil || !hmac.Equal(sig, c.mac("pass", cl, exp)) {
		return false
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && now.Unix() <= e
}

// PassCookie is the Set-Cookie for a pass.
func (c *Challenger) PassCookie(cl Client, now time.Time) *http.Cookie {
	return &http.Cookie{Name: PassCookie, Value: c.Pass(cl, now), Path: "/", MaxAge: int(c.o.PassTTL / time.Second),
		HttpOnly: true, Secure: cl.Secure, SameSite: http.SameSiteLaxMode}
}

// Judge decides a request of cl: ResultPassed or ResultSolved (let it
// through; with ResultSolved set the returned cookie), ResultServed or
// ResultRejected (answer with the page; why says what was wrong with a
// rejected answer).
func (c *Challenger) Judge(r *http.Request, cl Client, now time.Time) (result string, set *http.Cookie, why string) {
	for _, ck := range r.Cookies() {
		if ck.Name == PassCookie && c.CheckPass(ck.Value, cl, now) {
			return ResultPassed, nil, ""
		}
	}
	answer := ""
	for _, ck := range r.Cookies() {
		if ck.Name == AnswerCookie {
			answer = ck.Value
		}
	}
	if answer == "" {
		return ResultServed, nil, ""
	}
	if err := c.CheckAnswer(answer, cl, now); err != nil {
		return ResultRejected, nil, err.Error()
	}
	return ResultSolved, c.PassCookie(cl, now), ""
}

// StripCookies removes the challenge's cookies from r's Cookie headers, so
// that neither the rule engine nor the upstream sees them.
func StripCookies(r *http.Request) {
	lines := r.Header.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var kept []string
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name == PassCookie || name == AnswerCookie || strings.TrimSpace(part) == "" {
				continue
			}
			kept = append(kept, strings.TrimSpace(part))
		}
	}
	if len(kept) == 0 {
		r.Header.Del("Cookie")
		return
	}
	r.Header.Set("Cookie", strings.Join(kept, "; "))
}
