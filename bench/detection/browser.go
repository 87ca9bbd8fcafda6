package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser corpus: Debian's Chromium, headless, driven through pages we
// serve on loopback, with the requests captured exactly as Chromium sends
// them (header order and spelling included) by a raw HTTP/1.1 server. Host
// names under .example are mapped to the loopback server, over TLS with a
// throw-away certificate, so pages are secure contexts (client hints,
// Reporting API) and navigations between sites are cross-site.

func chromiumPath() string {
	for _, p := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

type captured struct {
	method, target string
	headers        [][2]string
	body           []byte
	chunked        bool
}

// capServer is a minimal HTTP/1.1 server that keeps every request as
// received.
type capServer struct {
	ln      net.Listener
	mu      sync.Mutex
	reqs    []captured
	handler func(c *captured) (int, [][2]string, []byte)
	wg      sync.WaitGroup
}

func newCapServer(handler func(c *captured) (int, [][2]string, []byte)) (*capServer, error) {
	cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	// HTTP/1.1 only, so the capture is the request line and header lines
	// as Chromium writes them.
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	s := &capServer{ln: tln, handler: handler}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	return s, nil
}

func (s *capServer) addr() string { return s.ln.Addr().String() }

func (s *capServer) close() {
	s.ln.Close()
	s.wg.Wait()
}

func (s *capServer) count(pred func(*captured) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := range s.reqs {
		if pred(&s.reqs[i]) {
			n++
		}
	}
	return n
}

func (s *capServer) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		c, err := readCaptured(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, c)
		s.mu.Unlock()
		status, hdrs, body := s.handler(&c)
		var w strings.Builder
		fmt.Fprintf(&w, "HTTP/1.1 %d %s\r\n", status, statusText(status))
		for _, h := range hdrs {
			fmt.Fprintf(&w, "%s: %s\r\n", h[0], h[1])
		}
		fmt.Fprintf(&w, "Content-Length: %d\r\n\r\n", len(body))
		if _, err := io.WriteString(conn, w.String()); err != nil {
			return
		}
		if _, err := conn.Write(body); err != nil {
			return
		}
	}
}

// errCapture is any malformed request: the connection is dropped.
var errCapture = errors.New("malformed request")

// readCaptured reads one HTTP/1.1 request (head and body, Content-Length
// or chunked, at most 16 MiB) keeping the header lines in order.
func readCaptured(br *bufio.Reader) (captured, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return captured{}, err
	}
	parts := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 3)
	if len(parts) != 3 {
		return captured{}, errCapture
	}
	c := captured{method: parts[0], target: parts[1]}
	length := 0
	for n := 0; ; n++ {
		hl, err := br.ReadString('\n')
		if err != nil {
			return c, err
		}
		hl = strings.TrimRight(hl, "\r\n")
		if hl == "" {
			break
		}
		name, value, ok := strings.Cut(hl, ":")
		if !ok || n > 200 {
			return c, errCapture
		}
		value = strings.TrimSpace(value)
		c.headers = append(c.headers, [2]string{name, value})
		switch strings.ToLower(name) {
		case "content-length":
			length, err = strconv.Atoi(value)
			if err != nil || length < 0 || length > 16<<20 {
				return c, errCapture
			}
		case "transfer-encoding":
			c.chunked = strings.Contains(strings.ToLower(value), "chunked")
		}
	}
	if c.chunked {
		for {
			sz, err := br.ReadString('\n')
			if err != nil {
				return c, err
			}
			n, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(sz, ";", 2)[0]), 16, 64)
			if err != nil || n < 0 || int64(len(c.body))+n > 16<<20 {
				return c, errCapture
			}
			if n == 0 {
				_, err = br.ReadString('\n')
				return c, err
			}
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return c, err
			}
			c.body = append(c.body, chunk[:n]...)
		}
	}
	if length > 0 {
		c.body = make([]byte, length)
		if _, err := io.ReadFull(br, c.body); err != nil {
			return c, err
		}
	}
	return c, nil
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 303:
		return "See Other"
	case 404:
		return "Not Found"
	}
	return "OK"
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"*.example", "*.example.com", "*.example.org", "*.example.net", "*.example.io"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// The pages. Every page links across sites and loads a few resources;
// the app page defines the functions the driver calls.
const pageHead = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>%s</title><link rel="stylesheet" href="/static/site.css"><script src="/static/app.js"></script></head><body>`

func pageFor(c *captured, host string) (int, [][2]string, []byte) {
	path, _, _ := strings.Cut(c.target, "?")
	hdr := [][2]string{{"Content-Type", "text/html; charset=utf-8"}, {"Cache-Control", "no-store"}}
	cookie := ""
	for _, h := range c.headers {
		if strings.EqualFold(h[0], "Cookie") {
			cookie = h[1]
		}
	}
	if !strings.Contains(cookie, "sid=") {
		hdr = append(hdr, [2]string{"Set-Cookie", "sid=" + randHexCrypto(16) + "; Path=/; Secure; HttpOnly; SameSite=Lax"}, [2]string{"Set-Cookie", "prefs=lang%3Den%7Ctheme%3Dlight; Path=/; Secure"})
	}
	if c.method != "GET" && c.method != "HEAD" {
		switch {
		case strings.HasPrefix(path, "/form-post"):
			return 303, [][2]string{{"Location", "/thanks"}}, nil
		default:
			return 200, [][2]string{{"Content-Type", "application/json"}, {"Access-Control-Allow-Origin", "*"}}, []byte(`{"ok":true}`)
		}
	}
	switch {
	case path == "/static/app.js":
		return 200, [][2]string{{"Content-Type", "text/javascript"}}, []byte(appJS)
	case path == "/static/site.css":
		return 200, [][2]string{{"Content-Type", "text/css"}}, []byte("body{font-family:sans-serif}")
	case strings.HasPrefix(path, "/img/"), path == "/favicon.ico":
		return 200, [][2]string{{"Content-Type", "image/png"}}, tinyPNG
	case path == "/csp":
		hdr = append(hdr, [2]string{"Content-Security-Policy", "default-src 'self'; img-src 'self'; script-src 'self'; report-uri /csp-report"})
		return 200, hdr, []byte(fmt.Sprintf(pageHead, "CSP") + `<p>csp</p><script>document.title='inline'</script><img src="https://cdn.example.net/x.png"><div style="color:red" onclick="x()">x</div></body></html>`)
	case path == "/csp2":
		hdr = append(hdr, [2]string{"Reporting-Endpoints", `main-endpoint="https://` + host + `/reports", default="https://` + host + `/reports"`},
			[2]string{"Content-Security-Policy", "script-src 'self'; img-src 'self'; report-to main-endpoint"}, [2]string{"Document-Policy", "document-write=?0;report-to=main-endpoint"})
		return 200, hdr, []byte(fmt.Sprintf(pageHead, "Reports") + `<p>reports</p><script>document.title='inline'</script><img src="https://cdn.example.net/y.png"><script src="/static/app.js"></script></body></html>`)
	case path == "/form":
		return 200, hdr, []byte(fmt.Sprintf(pageHead, "Comment") + `<form id="f" method="post" action="/form-post/comment"><input name="author" id="author"><input name="email" id="email" type="email"><textarea name="comment" id="comment"></textarea><input type="hidden" name="csrf" value="` + randHexCrypto(12) + `"><button id="go" type="submit">Post</button></form></body></html>`)
	case path == "/upload":
		return 200, hdr, []byte(fmt.Sprintf(pageHead, "Upload") + `<form id="f" method="post" enctype="multipart/form-data" action="/form-post/upload"><input name="title" id="title"><textarea name="description" id="description"></textarea><input type="file" name="file" id="file"><button id="go" type="submit">Upload</button></form></body></html>`)
	case path == "/search-page":
		return 200, hdr, []byte(fmt.Sprintf(pageHead, "Search") + `<form id="f" method="get" action="/search"><input name="q" id="q"><select name="lang"><option>en</option></select><button id="go" type="submit">Search</button></form></body></html>`)
	}
	var links strings.Builder
	for i, h := range []string{"shop.example", "blog.example.org", "forum.example.net", "docs.example.io"} {
		fmt.Fprintf(&links, `<a id="l%d" href="https://%s/articles/%d?ref=%s">%s</a> `, i, h, 100+i, strings.Split(host, ".")[0], h)
	}
	return 200, hdr, []byte(fmt.Sprintf(pageHead, "Page "+path) + `<h1>` + path + `</h1><img src="/img/logo.png" alt="logo"><p>` + links.String() + `</p><a id="same" href="/articles/` + strconv.Itoa(len(path)) + `">more</a></body></html>`)
}

const appJS = `
window.sendJSON = function(method, url, obj, ct) {
  return fetch(url, {method: method, headers: {'Content-Type': ct || 'application/json', 'X-Requested-With': 'fetch'}, body: obj === null ? undefined : JSON.stringify(obj), credentials: 'same-origin'}).then(r => r.status);
};
window.sendXHR = function(method, url, fields) {
  return new Promise(function(res) {
    var x = new XMLHttpRequest(); x.open(method, url); x.onloadend = function(){ res(x.status); };
    var fd = new FormData(); for (var k in fields) fd.append(k, fields[k]); x.send(fd);
  });
};
window.sendXHRForm = function(url, fields) {
  return new Promise(function(res) {
    var x = new XMLHttpRequest(); x.open('POST', url); x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded; charset=UTF-8');
    x.onloadend = function(){ res(x.status); }; x.send(new URLSearchParams(fields).toString());
  });
};
window.beacon = function(url, obj, asBlob) {
  var data = JSON.stringify(obj);
  if (asBlob) { var fd = new URLSearchParams(); fd.append('e', data); return navigator.sendBeacon(url, fd); }
  return navigator.sendBeacon(url, data);
};
window.sendBytes = function(url, b64, ct) {
  var bin = atob(b64); var a = new Uint8Array(bin.length); for (var i = 0; i < bin.length; i++) a[i] = bin.charCodeAt(i);
  return fetch(url, {method: 'POST', headers: {'Content-Type': ct}, body: a}).then(r => r.status);
};
`

var tinyPNG = func() []byte {
	r := mrand.New(mrand.NewPCG(1, 2))
	return pngImage(r)
}()

func randHexCrypto(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// captureBrowser drives Chromium through the scenarios and returns the
// captured requests as corpus items.
func captureBrowser(seed uint64) ([]Item, error) {
	exe := chromiumPath()
	if exe == "" {
		return nil, errors.New("chromium is not installed (go run ./bench/detection -setup)")
	}
	t, err := loadTexts()
	if err != nil {
		return nil, err
	}
	r := mrand.New(mrand.NewPCG(seed, 0xb20))
	var srv *capServer
	srv, err = newCapServer(func(c *captured) (int, [][2]string, []byte) {
		host := ""
		for _, h := range c.headers {
			if strings.EqualFold(h[0], "Host") {
				host = h[1]
			}
		}
		return pageFor(c, host)
	})
	if err != nil {
		return nil, err
	}
	defer srv.close()
	_, port, _ := net.SplitHostPort(srv.addr())
	profile, err := os.MkdirTemp("", "portcullis-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("ignore-certificate-errors", true), chromedp.Flag("short-reporting-delay", true),
		chromedp.Flag("host-resolver-rules", "MAP *.example 127.0.0.1:"+port+", MAP *.example.com 127.0.0.1:"+port+", MAP *.example.org 127.0.0.1:"+port+", MAP *.example.net 127.0.0.1:"+port+", MAP *.example.io 127.0.0.1:"+port+", EXCLUDE localhost"),
		chromedp.Flag("proxy-server", "direct://"), chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	overall, cancelO := context.WithTimeout(ctx, 8*time.Minute)
	defer cancelO()
	if err := chromedp.Do(overall, chromedp.Navigate("https://shop.example/")); err != nil {
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	step := func(name string, acts ...chromedp.Action[chromedp.Void]) {
		sctx, c := context.WithTimeout(overall, 10*time.Second)
		defer c()
		if err := chromedp.Do(sctx, acts...); err != nil && overall.Err() == nil {
			log.Printf("browser scenario %s: %v", name, err)
		}
	}
	tmp, err := os.MkdirTemp("", "portcullis-upload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	sites := []string{"shop.example", "blog.example.org", "forum.example.net", "docs.example.io", "app.example.com"}
	rounds := 110
	for i := 0; i < rounds && overall.Err() == nil; i++ {
		site := "https://" + pick(r, sites)
		first, last, email := t.person(r)
		// typed navigation, then a click to another site and one on the same site
		step("browser_navigation", chromedp.Navigate(site+"/"+strings.ToLower(randStr(r, 5))+"?utm_source=mail"),
			chromedp.Click("#l"+strconv.Itoa(r.IntN(4))), chromedp.Sleep(150*time.Millisecond), chromedp.Click("#same"), chromedp.Sleep(150*time.Millisecond))
		step("browser_search", chromedp.Navigate(site+"/search-page"), chromedp.SendKeys("#q", t.query(r)), chromedp.Click("#go"), chromedp.Sleep(150*time.Millisecond))
		step("browser_form", chromedp.Navigate(site+"/form"), chromedp.SetValue("#author", first+" "+last), chromedp.SetValue("#email", email),
			chromedp.SetValue("#comment", clip(t.prose(r), 200+r.IntN(1200))), chromedp.Click("#go"), chromedp.Sleep(200*time.Millisecond))
		f := filepath.Join(tmp, fmt.Sprintf("file%d%s", i, pick(r, []string{".txt", ".png", ".md"})))
		switch filepath.Ext(f) {
		case ".png":
			_ = os.WriteFile(f, pngImage(r), 0o600)
		case ".md":
			_ = os.WriteFile(f, []byte(clip(pick(r, t.Markdown), 3000)), 0o600)
		default:
			_ = os.WriteFile(f, []byte(clip(t.prose(r), 2000)), 0o600)
		}
		step("browser_multipart", chromedp.Navigate(site+"/upload"), chromedp.SetValue("#title", clip(pick(r, t.Titles), 60)),
			chromedp.SetValue("#description", clip(t.prose(r), 400)), chromedp.SetUploadFiles("#file", []string{f}),
			chromedp.Click("#go"), chromedp.Sleep(200*time.Millisecond))
		body := map[string]any{"title": clip(pick(r, t.Titles), 80), "body": clip(t.prose(r), 800), "author": map[string]any{"name": first + " " + last, "email": email}, "tags": []string{pick(r, t.Words["en"])}}
		step("browser_fetch_json", chromedp.Navigate(site+"/app"),
			eval(fmt.Sprintf(`sendJSON(%q, "/api/v1/posts/%d", %s)`, pick(r, []string{"POST", "PUT", "PATCH"}), r.IntN(9999), jsonMarshal(body))),
			eval(fmt.Sprintf(`sendJSON("DELETE", "/api/v1/drafts/%d", null)`, r.IntN(9999))),
			eval(fmt.Sprintf(`sendJSON("POST", "/graphql", %s)`, jsonMarshal(map[string]any{"query": "mutation($b:String!){comment(body:$b){id}}", "variables": map[string]any{"b": clip(t.prose(r), 500)}}))))
		step("browser_xhr", eval(fmt.Sprintf(`sendXHR("POST", "/api/upload-form", %s)`, jsonMarshal(map[string]any{"name": first, "message": clip(t.prose(r), 600)}))),
			eval(fmt.Sprintf(`sendXHRForm("/api/v1/settings", %s)`, jsonMarshal(map[string]any{"display_name": first + " " + last, "bio": clip(t.prose(r), 300), "email": email}))))
		step("browser_beacon", eval(fmt.Sprintf(`beacon("/collect", %s, %v)`, jsonMarshal(map[string]any{"t": "pageview", "title": clip(pick(r, t.Titles), 60), "q": t.query(r), "ts": 1700000000000 + r.IntN(1e9)}), r.IntN(3) == 0)),
			eval(fmt.Sprintf(`sendBytes("/api/v1/events", %q, %q)`, b64(string(protoMessage(r, t))), pick(r, []string{"application/x-protobuf", "application/protobuf"}))))
		if i%3 == 0 {
			step("browser_csp_report", chromedp.Navigate(site+"/csp"), chromedp.Sleep(300*time.Millisecond))
			step("browser_reports_api", chromedp.Navigate(site+"/csp2"), chromedp.Sleep(300*time.Millisecond))
		}
	}
	// Reports are delivered in the background: wait for them, bounded.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && srv.count(func(c *captured) bool { return strings.HasPrefix(c.target, "/reports") }) == 0 {
		_ = chromedp.Do(overall, chromedp.Sleep(500*time.Millisecond))
	}
	cancel()
	srv.mu.Lock()
	reqs := append([]captured(nil), srv.reqs...)
	srv.mu.Unlock()
	var out []Item
	for _, c := range reqs {
		it := Item{Set: setBenign, Source: "chromium", Method: c.method, Target: c.target, Chunked: c.chunked}
		for _, h := range c.headers {
			if strings.EqualFold(h[0], "Content-Length") || strings.EqualFold(h[0], "Transfer-Encoding") {
				continue
			}
			if strings.EqualFold(h[0], "User-Agent") {
				// what the same Chromium sends with a window: headless mode
				// only renames itself
				h[1] = strings.Replace(h[1], "HeadlessChrome/", "Chrome/", 1)
			}
			it.Headers = append(it.Headers, h)
		}
		it.SetBody(c.body)
		out = append(out, it)
	}
	labelBrowser(out)
	log.Printf("browser corpus: %d requests captured from Chromium", len(out))
	return out, nil
}

// eval runs script in the page and waits for the promise it may return.
func eval(script string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[any](script, chromedp.EvalAwaitPromise)(ctx, t)
		return chromedp.Void{}, err
	}
}

// labelBrowser names each captured request's kind from the request itself
// (method, path, Content-Type, Sec-Fetch-*), never from the scenario that
// was running when it arrived: a form submission may land after the driver
// moved on. Then it numbers the items.
func labelBrowser(items []Item) {
	for i := range items {
		it := &items[i]
		path, _, _ := strings.Cut(it.Target, "?")
		ct := strings.ToLower(it.Header("Content-Type"))
		mode := strings.ToLower(it.Header("Sec-Fetch-Mode"))
		switch {
		case it.Method == "GET" && (strings.HasPrefix(path, "/static/") || strings.HasPrefix(path, "/img/") || path == "/favicon.ico"):
			it.Kind = "browser_subresource"
		case it.Method == "GET" && path == "/search":
			it.Kind = "browser_search"
		case it.Method == "GET":
			it.Kind = "browser_navigation"
		case strings.Contains(ct, "reports+json"):
			it.Kind = "browser_reports_api"
		case strings.Contains(ct, "csp-report"):
			it.Kind = "browser_csp_report"
		case mode == "navigate" && strings.Contains(ct, "multipart"):
			it.Kind = "browser_multipart"
		case mode == "navigate":
			it.Kind = "browser_form"
		case mode == "no-cors":
			it.Kind = "browser_beacon"
		case strings.Contains(ct, "protobuf"):
			it.Kind = "browser_fetch_protobuf"
		case strings.Contains(ct, "multipart") || strings.Contains(ct, "urlencoded"):
			it.Kind = "browser_xhr"
		default:
			it.Kind = "browser_fetch_json"
		}
	}
	numberIDs("b-chromium", items)
}
