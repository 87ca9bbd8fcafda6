// Package storetest generates realistic audit records for the stores'
// tests, benchmarks and dashboard demos: a steady stream of mostly allowed
// traffic from a few thousand clients with a long tail, about 5% blocked
// (mostly by OWASP CRS rules, some by rate limits, bans and GeoIP), a few
// detections and upstream errors, from a weighted mix of countries, hosts
// and paths, including scanners probing for well-known files.
//
// Place in the request path: none. Output is deterministic for a seed.
package storetest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// Generator produces records with increasing times, spread evenly (with
// jitter) over a span.
type Generator struct {
	rnd     *rand.Rand
	zipf    *rand.Zipf
	start   time.Time
	step    time.Duration
	i       int
	clients []client
	bad     []client
}

type client struct {
	ip      string
	country string
	asn     uint
}

// Clients and Attackers are the sizes of the generated client pools.
const (
	Clients   = 5000
	Attackers = 300
)

// NewGenerator returns a generator of n records from start over span.
func NewGenerator(seed uint64, start time.Time, span time.Duration, n int) *Generator {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &Generator{rnd: rnd, start: start.UTC(), step: span / time.Duration(max(n, 1))}
	g.zipf = rand.NewZipf(rnd, 1.2, 4, Clients-1)
	for range Clients {
		g.clients = append(g.clients, g.newClient(countries))
	}
	for range Attackers {
		g.bad = append(g.bad, g.newClient(attackCountries))
	}
	return g
}

type weighted struct {
	value  string
	weight int
}

var countries = []weighted{
	{"US", 30}, {"DE", 12}, {"GB", 8}, {"FR", 7}, {"NL", 4}, {"CA", 4}, {"JP", 3}, {"IN", 4},
	{"BR", 3}, {"AU", 2}, {"ES", 2}, {"IT", 2}, {"SE", 1}, {"PL", 2}, {"CH", 1}, {"AT", 1},
	{"BE", 1}, {"MX", 1}, {"KR", 1}, {"SG", 1}, {"", 2},
}

var attackCountries = []weighted{
	{"CN", 20}, {"RU", 15}, {"US", 15}, {"VN", 6}, {"BR", 6}, {"IN", 6}, {"NL", 5}, {"DE", 5},
	{"ID", 4}, {"UA", 3}, {"IR", 3}, {"KR", 3}, {"RO", 2}, {"TR", 2}, {"HK", 2}, {"", 3},
}

var hosts = []weighted{{"shop.example", 50}, {"api.example", 30}, {"www.example", 12}, {"admin.example", 3}, {"static.example", 5}}

func pick(r *rand.Rand, ws []weighted) string {
	total := 0
	for _, w := range ws {
		total += w.weight
	}
	n := r.IntN(total)
	for _, w := range ws {
		if n < w.weight {
			return w.value
		}
		n -= w.weight
	}
	return ws[0].value
}

func (g *Generator) newClient(cs []weighted) client {
	var ip string
	if g.rnd.IntN(10) == 0 {
		var b [16]byte
		b[0], b[1] = 0x20, 0x01
		for i := 2; i < 16; i++ {
			b[i] = byte(g.rnd.UintN(256))
		}
		ip = netip.AddrFrom16(b).String()
	} else {
		ip = netip.AddrFrom4([4]byte{byte(1 + g.rnd.IntN(222)), byte(g.rnd.UintN(256)), byte(g.rnd.UintN(256)), byte(1 + g.rnd.IntN(254))}).String()
	}
	return client{ip: ip, country: pick(g.rnd, cs), asn: uint(1000 + g.rnd.IntN(60000))}
}

var appPaths = []string{
	"/", "/index.html", "/products", "/products/%d", "/products/%d/reviews", "/cart", "/cart/items/%d",
	"/checkout", "/account", "/account/orders/%d", "/login", "/logout", "/search", "/static/app.js",
	"/static/app.css", "/static/img/%d.png", "/favicon.ico", "/robots.txt", "/api/v1/products",
	"/api/v1/products/%d", "/api/v1/cart", "/api/v1/orders", "/api/v1/orders/%d", "/api/v1/users/me",
	"/api/v1/search", "/api/v2/graphql", "/healthz", "/blog", "/blog/post-%d", "/contact", "/admin/dashboard",
}

var probePaths = []string{
	"/.env", "/.git/config", "/wp-login.php", "/wp-admin/admin-ajax.php", "/xmlrpc.php", "/phpmyadmin/index.php",
	"/admin/config.php", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/cgi-bin/luci/;stok=/locale",
	"/.aws/credentials", "/server-status", "/actuator/env", "/console", "/boaform/admin/formLogin", "/HNAP1/",
	"/config.json", "/backup.sql", "/.DS_Store", "/owa/auth/logon.aspx", "/solr/admin/info/system",
}

// crsRule is a CRS rule as it appears in a record.
type crsRule struct {
	id       int
	msg      string
	severity string
	pl       int
	tags     []string
	variable string
	data     string
}

func tags(attack string, pl int, extra ...string) []string {
	t := []string{"application-multi", "language-multi", "platform-multi", attack, "paranoia-level/" + strconv.Itoa(pl), "OWASP_CRS"}
	return append(t, extra...)
}

// Rules are the CRS detection rules records are drawn from (CRS 4 ids and
// messages).
var Rules = []crsRule{
	{942100, "SQL Injection Attack Detected via libinjection", "critical", 1, tags("attack-sqli", 1, "capec/1000/152/248/66", "PCI/6.5.2"), "ARGS:q", "1' OR '1'='1"},
	{942190, "Detects MSSQL code execution and information gathering attempts", "critical", 1, tags("attack-sqli", 1, "capec/1000/152/248/66"), "ARGS:id", "union select"},
	{942260, "Detects basic SQL authentication bypass attempts 2/3", "critical", 2, tags("attack-sqli", 2, "capec/1000/152/248/66"), "ARGS:user", "admin' --"},
	{942430, "Restricted SQL Character Anomaly Detection (args): # of special characters exceeded (12)", "warning", 2, tags("attack-sqli", 2), "ARGS:filter", "((((((((((((("},
	{941100, "XSS Attack Detected via libinjection", "critical", 1, tags("attack-xss", 1, "capec/1000/152/242"), "ARGS:comment", "<script>alert(1)</script>"},
	{941110, "XSS Filter - Category 1: Script Tag Vector", "critical", 1, tags("attack-xss", 1, "capec/1000/152/242"), "ARGS:comment", "<script>"},
	{941160, "NoScript XSS InjectionChecker: HTML Injection", "critical", 1, tags("attack-xss", 1, "capec/1000/152/242"), "ARGS:name", "<img src=x onerror"},
	{930100, "Path Traversal Attack (/../) or (/.../)", "critical", 1, tags("attack-lfi", 1, "capec/1000/255/153/126"), "REQUEST_URI_RAW", "/../../etc/passwd"},
	{930120, "OS File Access Attempt", "critical", 1, tags("attack-lfi", 1, "capec/1000/255/153/126"), "REQUEST_FILENAME", "/.env"},
	{930130, "Restricted File Access Attempt", "critical", 1, tags("attack-lfi", 1, "capec/1000/255/153/126"), "REQUEST_FILENAME", "/.git/config"},
	{932100, "Remote Command Execution: Unix Command Injection", "critical", 1, tags("attack-rce", 1, "capec/1000/152/248/88"), "ARGS:host", ";cat /etc/passwd"},
	{932160, "Remote Command Execution: Unix Shell Code Found", "critical", 1, tags("attack-rce", 1, "capec/1000/152/248/88"), "ARGS:cmd", "bin/sh"},
	{933100, "PHP Injection Attack: PHP Open Tag Found", "critical", 1, tags("attack-injection-php", 1, "capec/1000/152/242"), "ARGS:data", "<?php"},
	{913100, "Found User-Agent associated with security scanner", "critical", 1, tags("attack-reputation-scanner", 1, "capec/1000/118/224/541/310"), "REQUEST_HEADERS:User-Agent", "nikto"},
	{920350, "Host header is a numeric IP address", "warning", 1, tags("attack-protocol", 1, "capec/1000/210/272"), "REQUEST_HEADERS:Host", "203.0.113.10"},
	{920280, "Request Missing a Host Header", "warning", 1, tags("attack-protocol", 1, "capec/1000/210/272"), "REQUEST_HEADERS", ""},
	{920320, "Missing User Agent Header", "notice", 2, tags("attack-protocol", 2, "capec/1000/210/272"), "REQUEST_HEADERS", ""},
	{920440, "URL file extension is restricted by policy", "critical", 1, tags("attack-protocol", 1, "capec/1000/210/272"), "REQUEST_BASENAME", ".sql"},
	{921110, "HTTP Request Smuggling Attack", "critical", 1, tags("attack-protocol", 1, "capec/1000/210/272/220/33"), "ARGS_NAMES", "GET /"},
	{944100, "Remote Command Execution: Suspicious Java class detected", "critical", 1, tags("attack-rce", 1, "language-java", "capec/1000/152/137/6"), "ARGS:x", "java.lang.Runtime"},
	{934100, "Node.js Injection Attack 1/2", "critical", 1, tags("attack-rce", 1, "language-javascript", "capec/1000/152/242"), "ARGS:payload", "require('child_process')"},
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"okhttp/4.12.0", "curl/8.11.0", "python-requests/2.32.3",
}

var scannerAgents = []string{"Mozilla/5.00 (Nikto/2.5.0)", "sqlmap/1.8.11#stable (https://sqlmap.org)", "Go-http-client/1.1", "zgrab/0.x", "curl/7.68.0"}

// Next returns the next record.
func (g *Generator) Next() *audit.Entry {
	i := g.i
	g.i++
	r := g.rnd
	t := g.start.Add(time.Duration(i) * g.step)
	if g.step > 1 {
		t = t.Add(time.Duration(r.Int64N(int64(g.step))))
	}
	e := &audit.Entry{
		ID:            fmt.Sprintf("%016x%08x", t.UnixNano(), r.Uint32()),
		Time:          t,
		ClientPort:    1024 + r.IntN(64000),
		Protocol:      "HTTP/1.1",
		Host:          pick(r, hosts),
		Method:        "GET",
		Action:        audit.ActionAllowed,
		Status:        200,
		WAFMode:       "block",
		Site:          "main",
		Route:         "/",
		Upstream:      "http://10.0.1.5:8080",
		BytesSent:     int64(200 + r.IntN(40000)),
		Durations:     audit.Durations{WAF: int64(80 + r.IntN(900)), Upstream: int64(1000 + r.IntN(80000))},
		OutboundScore: 0,
	}
	if r.IntN(3) == 0 {
		e.Protocol = "HTTP/2.0"
	}
	roll := r.IntN(1000)
	var c client
	attacker := roll < 75 // blocked (50), detected (20) and some errors come mostly from attackers
	if attacker && r.IntN(5) != 0 {
		c = g.bad[r.IntN(len(g.bad))]
	} else {
		c = g.clients[g.zipf.Uint64()]
	}
	e.ClientIP, e.Country, e.ASN = c.ip, c.country, c.asn
	ua := userAgents[r.IntN(len(userAgents))]
	path := g.appPath()
	switch {
	case roll < 50: // blocked, ~5%
		g.block(e, &ua, &path)
	case roll < 70: // detected, ~2%
		rule := Rules[14+r.IntN(3)] // protocol warnings below the threshold
		e.Action, e.Stage = audit.ActionDetected, audit.StageWAF
		e.Rules = []audit.MatchedRule{matched(rule)}
		e.InboundScore = audit.SeverityPoints(rule.severity)
		e.Reason = fmt.Sprintf("1 rule(s) matched, anomaly score %d/0 below the threshold", e.InboundScore)
	case roll < 75: // upstream errors, ~0.5%
		e.Action, e.Stage, e.Status = audit.ActionError, audit.StageProxy, 502+r.IntN(3)
		e.Reason = "upstream app: connection refused"
	default:
		switch n := r.IntN(100); {
		case n < 8:
			e.Status = 304
		case n < 12:
			e.Status = 404
		case n < 14:
			e.Status = 301
		}
		if r.IntN(6) == 0 {
			e.Method = "POST"
		}
	}
	e.URI = path
	e.Headers = map[string][]string{
		"User-Agent":      {ua},
		"Accept":          {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"Accept-Language": {"en-US,en;q=0.9"},
		"Accept-Encoding": {"gzip, deflate, br"},
	}
	if r.IntN(3) == 0 {
		e.Headers["Cookie"] = []string{audit.Redacted}
	}
	e.Durations.Total = e.Durations.WAF + e.Durations.Upstream + 50
	return e
}

func (g *Generator) appPath() string {
	p := appPaths[g.rnd.IntN(len(appPaths))]
	if strings.Contains(p, "%d") {
		p = fmt.Sprintf(p, 1+g.rnd.IntN(40))
	}
	if g.rnd.IntN(4) == 0 {
		p += "?page=" + strconv.Itoa(1+g.rnd.IntN(9))
	}
	return p
}

func matched(rule crsRule) audit.MatchedRule {
	return audit.MatchedRule{
		ID: rule.id, Message: rule.msg, Severity: rule.severity, Tags: rule.tags, ParanoiaLevel: rule.pl, Phase: 2,
		MatchedVariable: rule.variable, MatchedData: rule.data,
		Data: "Matched Data: " + rule.data + " found within " + rule.variable + ": " + rule.data,
	}
}

func (g *Generator) block(e *audit.Entry, ua, path *string) {
	r := g.rnd
	e.Action, e.Status, e.Upstream, e.Durations.Upstream = audit.ActionBlocked, 403, "", 0
	switch n := r.IntN(100); {
	case n < 70:
		e.Stage = audit.StageWAF
		k := 1 + r.IntN(3)
		score := 0
		for range k {
			rule := Rules[r.IntN(14)]
			e.Rules = append(e.Rules, matched(rule))
			score += audit.SeverityPoints(rule.severity)
			if rule.id == 913100 {
				*ua = scannerAgents[r.IntN(len(scannerAgents))]
			}
			if rule.id == 930120 || rule.id == 930130 {
				*path = probePaths[r.IntN(len(probePaths))]
			}
		}
		if score < 5 {
			score = 5
		}
		e.InboundScore = score
		e.Rules = append(e.Rules,
			audit.MatchedRule{ID: 949110, Message: fmt.Sprintf("Inbound Anomaly Score Exceeded (Total Score: %d)", score), Severity: "emergency",
				Tags: []string{"anomaly-evaluation", "OWASP_CRS"}, Phase: 2},
			audit.MatchedRule{ID: 980170, Message: fmt.Sprintf("Anomaly Scores: (Inbound Scores: blocking=%d, detection=%d, per_pl=%d-0-0-0, threshold=5) - (Outbound Scores: blocking=0, detection=0, per_pl=0-0-0-0, threshold=4) - (SQLI=0, XSS=0, RFI=0, LFI=0, RCE=0, PHPI=0, HTTP=0, SESS=0, COMBINED_SCORE=%d)", score, score, score, score),
				Tags: []string{"reporting", "OWASP_CRS"}, Phase: 5},
		)
		e.Reason = "request denied by rule 949110"
		if r.IntN(4) == 0 {
			*path = probePaths[r.IntN(len(probePaths))]
		} else if r.IntN(2) == 0 {
			*path += "?q=" + "1%27%20OR%20%271%27%3D%271"
		}
	case n < 85:
		e.Stage, e.Status, e.Reason = audit.StageRateLimit, 429, "rate limit site:main exceeded"
	case n < 93:
		e.Stage, e.Reason = audit.StageBan, "banned until 2026-11-27T00:00:00Z: 5 strikes"
	case n < 97:
		e.Stage, e.Reason = audit.StageReputation, "deny list tor-exit: "+e.ClientIP
	case n < 99:
		e.Stage, e.Reason = audit.StageGeoIP, "country "+e.Country+" denied"
	default:
		e.Stage, e.Status, e.Reason = audit.StageProtocol, 400, "malformed request"
	}
}
