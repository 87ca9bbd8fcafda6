package challenge

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testChallenger(t testing.TB) *Challenger {
	t.Helper()
	c, err := New(Options{Key: []byte(strings.Repeat("k", 32)), Difficulty: 10, PassTTL: time.Hour, NonceTTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Solve finds the answer a browser's script would (for tests).
func solve(nonce string, bits int) string {
	for i := 0; ; i++ {
		a := nonce + ":" + strconv.Itoa(i)
		if LeadingZeroBits(sha256.Sum256([]byte(a))) >= bits {
			return a
		}
	}
}

func TestCheckAnswer(t *testing.T) {
	c := testChallenger(t)
	now := time.Unix(1_800_000_000, 0)
	cl := Client{Addr: "203.0.113.9", UserAgent: "Mozilla/5.0", Host: "shop.test"}
	nonce := c.Nonce(cl, now)
	good := solve(nonce, 10)
	// An answer that hashes to fewer zero bits than needed.
	weak := ""
	for i := 0; ; i++ {
		a := nonce + ":" + strconv.Itoa(i)
		if LeadingZeroBits(sha256.Sum256([]byte(a))) < 10 {
			weak = a
			break
		}
	}
	parts := strings.Split(nonce, ".")
	tests := []struct {
		name   string
		answer string
		client Client
		at     time.Time
		want   string // "" accepted
	}{
		{"solved", good, cl, now, ""},
		{"solved, just before expiry", good, cl, now.Add(5 * time.Minute), ""},
		{"expired", good, cl, now.Add(5*time.Minute + time.Second), "nonce expired"},
		{"other address", good, Client{Addr: "203.0.113.10", UserAgent: cl.UserAgent, Host: cl.Host}, now, "not issued to this client"},
		{"other user agent", good, Client{Addr: cl.Addr, UserAgent: "curl/8", Host: cl.Host}, now, "not issued to this client"},
		{"other host", good, Client{Addr: cl.Addr, UserAgent: cl.UserAgent, Host: "other.test"}, now, "not issued to this client"},
		{"not enough work", weak, cl, now, "proof of work insufficient"},
		{"expiry pushed forward", strings.Replace(good, parts[0], strconv.FormatInt(now.Add(time.Hour).Unix(), 10), 1), cl, now, "not issued to this client"},
		{"no counter", nonce + ":", cl, now, "malformed"},
		{"counter not a number", nonce + ":1e5", cl, now, "malformed"},
		{"no colon", nonce, cl, now, "malformed"},
		{"garbage", "a.b:1", cl, now, "nonce malformed"},
		{"too long", strings.Repeat("a", 300), cl, now, "too long"},
	}
	for _, tt := range tests {
		err := c.CheckAnswer(tt.answer, tt.client, tt.at)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestPass(t *testing.T) {
	c := testChallenger(t)
	now := time.Unix(1_800_000_000, 0)
	cl := Client{Addr: "2001:db8::1", UserAgent: "Mozilla/5.0", Host: "shop.test"}
	v := c.Pass(cl, now)
	if !c.CheckPass(v, cl, now.Add(59*time.Minute)) {
		t.Error("fresh pass refused")
	}
	if c.CheckPass(v, cl, now.Add(61*time.Minute)) {
		t.Error("expired pass accepted")
	}
	if c.CheckPass(v, Client{Addr: "2001:db8::2", UserAgent: cl.UserAgent, Host: cl.Host}, now) {
		t.Error("pass accepted from another address")
	}
	other, _ := New(Options{Key: []byte(strings.Repeat("x", 32)), Difficulty: 10, PassTTL: time.Hour, NonceTTL: time.Minute})
	if other.CheckPass(v, cl, now) {
		t.Error("pass accepted under another key")
	}
	exp, sig, _ := strings.Cut(v, ".")
	n, _ := strconv.ParseInt(exp, 10, 64)
	if c.CheckPass(strconv.FormatInt(n+86400, 10)+"."+sig, cl, now) {
		t.Error("pass with a forged expiry accepted")
	}
}

func TestJudgeAndStripCookies(t *testing.T) {
	c := testChallenger(t)
	now := time.Now()
	r, _ := http.NewRequest("GET", "http://shop.test/", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0")
	cl := ClientOf(r, "203.0.113.9")
	if res, _, _ := c.Judge(r, cl, now); res != ResultServed {
		t.Errorf("no cookie: %s", res)
	}
	r.Header.Set("Cookie", "session=abc; "+AnswerCookie+"="+solve(c.Nonce(cl, now), 10)+"; theme=dark")
	res, set, _ := c.Judge(r, cl, now)
	if res != ResultSolved || set == nil || set.Name != PassCookie || !set.HttpOnly || set.Secure {
		t.Fatalf("solved: %s %+v", res, set)
	}
	StripCookies(r)
	if got := r.Header.Get("Cookie"); got != "session=abc; theme=dark" {
		t.Errorf("cookies after strip %q", got)
	}
	r.Header.Set("Cookie", PassCookie+"="+set.Value)
	if res, _, _ := c.Judge(r, cl, now); res != ResultPassed {
		t.Errorf("with the pass: %s", res)
	}
	StripCookies(r)
	if _, ok := r.Header["Cookie"]; ok {
		t.Error("Cookie header left with only the pass removed")
	}
	r.Header.Set("Cookie", AnswerCookie+"=bogus:1")
	if res, _, why := c.Judge(r, cl, now); res != ResultRejected || why == "" {
		t.Errorf("bogus answer: %s %q", res, why)
	}
}

// FuzzVerify: answers and passes come from clients; whatever they hold,
// verification never panics and never accepts what the key did not sign.
func FuzzVerify(f *testing.F) {
	c := testChallenger(f)
	now := time.Unix(1_800_000_000, 0)
	cl := Client{Addr: "203.0.113.9", UserAgent: "UA", Host: "h"}
	f.Add(solve(c.Nonce(cl, now), 10))
	f.Add(c.Pass(cl, now))
	f.Add("1.2.3:4")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		if c.CheckAnswer(v, cl, now) == nil {
			nonce, _, _ := strings.Cut(v, ":")
			p := strings.Split(nonce, ".")
			if len(p) != 3 {
				t.Fatalf("accepted %q", v)
			}
		}
		_ = c.CheckPass(v, cl, now)
		r, _ := http.NewRequest("GET", "http://h/", nil)
		r.Header.Set("Cookie", v)
		StripCookies(r)
		for _, ck := range r.Cookies() {
			if ck.Name == PassCookie || ck.Name == AnswerCookie {
				t.Fatalf("%q left after strip", ck.Name)
			}
		}
	})
}

// TestServePageNegotiates: a client that asks for JSON (the decision block
// pages follow, respond.WantsJSON) gets a JSON answer with the status, the
// reason and the request id, and no nonce (it cannot run the script); any
// other client gets the proof-of-work page.
func TestServePageNegotiates(t *testing.T) {
	c := testChallenger(t)
	tests := []struct {
		name, method, accept string
		status               int
		wantJSON, wantBody   bool
	}{
		{"browser", "GET", "text/html,application/xhtml+xml,*/*;q=0.8", 403, false, true},
		{"no Accept (curl's default is */*)", "GET", "", 403, false, true},
		{"any", "GET", "*/*", 429, false, true},
		{"API client", "GET", "application/json", 403, true, true},
		{"API client after a rate limit", "POST", "application/json", 429, true, true},
		{"problem+json preferred", "GET", "application/problem+json, text/html;q=0.5", 403, true, true},
		{"HTML preferred over JSON", "GET", "text/html, application/json;q=0.9", 403, false, true},
		{"JSON refused", "GET", "application/json;q=0", 403, false, true},
		{"HEAD from an API client", "HEAD", "application/json", 403, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://shop.test/api/orders", nil)
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			w := httptest.NewRecorder()
			c.ServePage(w, r, ClientOf(r, "203.0.113.9"), "req-42", time.Now(), tt.status)
			body := w.Body.String()
			if w.Code != tt.status || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d, headers %v", w.Code, w.Header())
			}
			if !tt.wantJSON {
				if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, `data-nonce="`) ||
					!strings.Contains(body, "req-42") || w.Header().Get("Content-Security-Policy") == "" {
					t.Errorf("want the page: %q\n%s", ct, body)
				}
				return
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if !tt.wantBody {
				if body != "" {
					t.Errorf("HEAD got a body %q", body)
				}
				return
			}
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, body)
			}
			want := map[string]any{"status": float64(tt.status), "error": http.StatusText(tt.status), "reason": ReasonChallengeRequired, "request_id": "req-42"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
			if msg, _ := got["message"].(string); !strings.Contains(msg, "cannot pass it") {
				t.Errorf("message %q does not say the client cannot pass", msg)
			}
			if len(got) != len(want)+1 || strings.Contains(body, "nonce") || strings.Contains(body, "/api/orders") {
				t.Errorf("more than the status, reason, id and message: %s", body)
			}
			if w.Header().Get("Content-Length") != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length %q for %d bytes", w.Header().Get("Content-Length"), len(body))
			}
		})
	}
}
