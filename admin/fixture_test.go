package admin

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/store"
)

// Realistic audit records for tests, the screenshot and the benchmark:
// CRS rule ids, messages and severities as CRS v4 logs them, a skewed mix
// of attackers, and a burst in the middle of the day.

type attack struct {
	weight  int
	method  string
	path    string
	query   string
	rules   []audit.MatchedRule
	action  string
	stage   string
	status  int
	reason  string
	inbound int
}

func crsRule(id int, msg, sev, variable, data string, tags ...string) audit.MatchedRule {
	return audit.MatchedRule{ID: id, Message: msg, Severity: sev, MatchedVariable: variable, MatchedData: data,
		Data: "Matched Data: " + data + " found within " + variable, Tags: tags, ParanoiaLevel: 1, Phase: 2}
}

func evaluation(score int) []audit.MatchedRule {
	return []audit.MatchedRule{
		{ID: 949110, Message: fmt.Sprintf("Inbound Anomaly Score Exceeded (Total Score: %d)", score), Severity: "emergency", Tags: []string{"anomaly-evaluation"}, Phase: 2},
		{ID: 980170, Message: fmt.Sprintf("Anomaly Scores: (Inbound Scores: blocking=%d, detection=%d, per_pl=%d-0-0-0, threshold=5) - (Outbound Scores: blocking=0, detection=0, per_pl=0-0-0-0, threshold=4) - (SQLI=0, XSS=0, RFI=0, LFI=0, RCE=0, PHPI=0, HTTP=0, SESS=0, COMBINED_SCORE=%d)", score, score, score, score), Tags: []string{"reporting"}, Phase: 5},
	}
}

var attacks = []attack{
	{weight: 30, method: "GET", path: "/products", query: "?id=1%27%20OR%201=1--", action: audit.ActionBlocked, stage: audit.StageWAF, status: 403, inbound: 10,
		rules: append([]audit.MatchedRule{
			crsRule(942100, "SQL Injection Attack Detected via libinjection", "CRITICAL", "ARGS:id", "s&1c", "attack-sqli", "paranoia-level/1"),
			crsRule(942190, "Detects MSSQL code execution and information gathering attempts", "CRITICAL", "ARGS:id", "' OR 1=1--", "attack-sqli", "paranoia-level/1"),
		}, evaluation(10)...)},
	{weight: 18, method: "GET", path: "/search", query: "?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", action: audit.ActionBlocked, stage: audit.StageWAF, status: 403, inbound: 15,
		rules: append([]audit.MatchedRule{
			crsRule(941100, "XSS Attack Detected via libinjection", "CRITICAL", "ARGS:q", "<script>alert(document.cookie)</script>", "attack-xss", "paranoia-level/1"),
			crsRule(941110, "XSS Filter - Category 1: Script Tag Vector", "CRITICAL", "ARGS:q", "<script>", "attack-xss", "paranoia-level/1"),
			crsRule(941160, "NoScript XSS InjectionChecker: HTML Injection", "CRITICAL", "ARGS:q", "<script", "attack-xss", "paranoia-level/1"),
		}, evaluation(15)...)},
	{weight: 14, method: "GET", path: "/.env", action: audit.ActionBlocked, stage: audit.StageWAF, status: 403, inbound: 5,
		rules: append([]audit.MatchedRule{
			crsRule(930130, "Restricted File Access Attempt", "CRITICAL", "REQUEST_FILENAME", "/.env", "attack-lfi", "paranoia-level/1"),
		}, evaluation(5)...)},
	{weight: 12, method: "GET", path: "/static/../../etc/passwd", action: audit.ActionBlocked, stage: audit.StageWAF, status: 403, inbound: 15,
		rules: append([]audit.MatchedRule{
			crsRule(930100, "Path Traversal Attack (/../) or (/.. /)", "CRITICAL", "REQUEST_URI_RAW", "/../", "attack-lfi", "paranoia-level/1"),
			crsRule(930110, "Path Traversal Attack (/../) or (/.. /)", "CRITICAL", "REQUEST_URI", "/../", "attack-lfi", "paranoia-level/1"),
			crsRule(930120, "OS File Access Attempt", "CRITICAL", "REQUEST_FILENAME", "etc/passwd", "attack-lfi", "paranoia-level/1"),
		}, evaluation(15)...)},
	{weight: 10, method: "POST", path: "/wp-login.php", action: audit.ActionBlocked, stage: audit.StageWAF, status: 403, inbound: 5,
		rules: append([]audit.MatchedRule{
			crsRule(913100, "Found User-Agent associated with security scanner", "CRITICAL", "REQUEST_HEADERS:User-Agent", "wpscan", "attack-reputation-scanner", "paranoia-level/1"),
		}, evaluation(5)...)},
	{weight: 8, method: "GET", path: "/cgi-bin/status", query: "?cmd=;cat%20/etc/shadow", action: audit.ActionBlocked, stage: audit.StageWAF, status: 403, inbound: 10,
		rules: append([]audit.MatchedRule{
			crsRule(932160, "Remote Command Execution: Unix Shell Code Found", "CRITICAL", "ARGS:cmd", "/etc/shadow", "attack-rce", "paranoia-level/1"),
			crsRule(930120, "OS File Access Attempt", "CRITICAL", "ARGS:cmd", "etc/shadow", "attack-lfi", "paranoia-level/1"),
		}, evaluation(10)...)},
	{weight: 6, method: "POST", path: "/api/v1/render", action: audit.ActionBlocked, stage: audit.StageWAF, status: 403, inbound: 5,
		rules: append([]audit.MatchedRule{
			crsRule(933160, "PHP Injection Attack: High-Risk PHP Function Call Found", "CRITICAL", "ARGS:template", "system(", "attack-injection-php", "paranoia-level/1"),
		}, evaluation(5)...)},
	{weight: 14, method: "GET", path: "/", action: audit.ActionDetected, stage: audit.StageWAF, status: 200, inbound: 3,
		rules: []audit.MatchedRule{
			crsRule(920350, "Host header is a numeric IP address", "WARNING", "REQUEST_HEADERS:Host", "203.0.113.10", "attack-protocol", "paranoia-level/1"),
		}},
	{weight: 8, method: "GET", path: "/api/v1/items", action: audit.ActionDetected, stage: audit.StageWAF, status: 200, inbound: 2,
		rules: []audit.MatchedRule{
			crsRule(920320, "Missing User Agent Header", "NOTICE", "REQUEST_HEADERS", "", "attack-protocol", "paranoia-level/1"),
		}},
	{weight: 10, method: "POST", path: "/login", action: audit.ActionBlocked, stage: audit.StageRateLimit, status: 429, reason: "rate limit login: 5/min per client"},
	{weight: 6, method: "GET", path: "/products", action: audit.ActionBlocked, stage: audit.StageBan, status: 403, reason: "banned until later: 8 WAF blocks in 10m"},
	{weight: 2, method: "GET", path: "/checkout", action: audit.ActionError, stage: audit.StageProxy, status: 502, reason: "upstream: connection refused"},
}

var countries = []struct {
	code string
	w    int
}{{"US", 24}, {"CN", 16}, {"RU", 12}, {"DE", 9}, {"NL", 8}, {"BR", 7}, {"IN", 6}, {"VN", 5}, {"FR", 4}, {"GB", 4}, {"SG", 3}, {"UA", 2}}

var hosts = []string{"shop.example.com", "shop.example.com", "shop.example.com", "api.example.com", "www.example.com"}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
	"sqlmap/1.7.2#stable (https://sqlmap.org)",
	"WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
	"curl/8.5.0",
	"python-requests/2.31.0",
}

// genEntries returns n records between now-span and now, newest last. The
// same seed gives the same records.
func genEntries(n int, now time.Time, span time.Duration, seed uint64) []*audit.Entry {
	rng := rand.New(rand.NewPCG(seed, 1))
	totalW := 0
	for _, a := range attacks {
		totalW += a.weight
	}
	totalC := 0
	for _, c := range countries {
		totalC += c.w
	}
	// A few hundred clients, a handful of them loud (Zipf-like).
	clients := make([]netip.Addr, 400)
	clientCountry := make([]string, len(clients))
	for i := range clients {
		switch i % 4 {
		case 0:
			clients[i] = netip.AddrFrom4([4]byte{203, 0, 113, byte(i%250 + 1)})
		case 1:
			clients[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i%250 + 1)})
		case 2:
			clients[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i%250 + 1)})
		default:
			clients[i] = netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::%x", i, i*7+1))
		}
		pick := rng.IntN(totalC)
		for _, c := range countries {
			if pick -= c.w; pick < 0 {
				clientCountry[i] = c.code
				break
			}
		}
	}
	zipf := rand.NewZipf(rand.New(rand.NewPCG(seed, 2)), 1.3, 2, uint64(len(clients)-1))
	start := now.Add(-span)
	out := make([]*audit.Entry, 0, n)
	for i := range n {
		// Uniform background plus a burst two thirds of the way through.
		frac := rng.Float64()
		if rng.IntN(4) == 0 {
			frac = 0.66 + rng.NormFloat64()*0.02
			frac = min(max(frac, 0), 0.999)
		}
		t := start.Add(time.Duration(frac * float64(span))).Truncate(time.Microsecond)
		pick := rng.IntN(totalW)
		var a attack
		for _, c := range attacks {
			if pick -= c.weight; pick < 0 {
				a = c
				break
			}
		}
		ci := int(zipf.Uint64())
		ua := userAgents[rng.IntN(len(userAgents))]
		if a.path == "/wp-login.php" {
			ua = userAgents[2]
		}
		e := &audit.Entry{
			ID:        fmt.Sprintf("%016x%08x", uint64(t.UnixNano()), uint32(i)),
			Time:      t.UTC(),
			ClientIP:  clients[ci].String(),
			Country:   clientCountry[ci],
			Host:      hosts[rng.IntN(len(hosts))],
			Method:    a.method,
			URI:       a.path + a.query,
			Protocol:  "HTTP/2.0",
			Site:      "shop",
			Route:     "/",
			Status:    a.status,
			Action:    a.action,
			Stage:     a.stage,
			Reason:    a.reason,
			WAFMode:   "block",
			Rules:     a.rules,
			Headers:   map[string][]string{"User-Agent": {ua}, "Accept": {"*/*"}, "Cookie": {audit.Redacted}},
			BytesSent: 1234,
			Durations: audit.Durations{WAF: 180 + int64(rng.IntN(400)), Total: 900 + int64(rng.IntN(4000))},
		}
		if a.stage == audit.StageWAF {
			e.InboundScore = a.inbound
			if a.action == audit.ActionDetected {
				e.WAFMode = "detect"
			} else {
				e.Reason = fmt.Sprintf("inbound anomaly score %d reached the threshold 5", a.inbound)
			}
		}
		if a.stage == audit.StageProxy {
			e.Upstream = "http://10.0.0.12:8080"
		}
		out = append(out, e)
	}
	return out
}

// testClock is a settable clock shared by the server, the store and bans.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openStore opens a real SQLite audit store in a temporary directory and
// inserts entries.
func openStore(t testing.TB, now func() time.Time, entries []*audit.Entry) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "audit.db"), store.SQLiteOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	insertAll(t, st, entries)
	return st
}

func insertAll(t testing.TB, st *store.SQLite, entries []*audit.Entry) {
	t.Helper()
	const batch = 5000
	for i := 0; i < len(entries); i += batch {
		if err := st.Insert(context.Background(), entries[i:min(i+batch, len(entries))]...); err != nil {
			t.Fatal(err)
		}
	}
}
