package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Header sets of real clients, for generated requests. The browser
// corpus (browser.go) captures Chromium's own; these follow the same
// shapes for Chrome, Firefox, Safari and common API clients so that
// generated requests do not all look alike.

var hosts = []string{"shop.example", "www.example.org", "forum.example.net", "api.example.com", "app.example.io", "docs.example.org", "cms.example.com"}

type client struct {
	name    string
	ua      string
	browser bool
	chrome  bool // sends Sec-CH-UA client hints
}

var clients = []client{
	{name: "chrome-linux", browser: true, chrome: true, ua: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36"},
	{name: "chrome-win", browser: true, chrome: true, ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36"},
	{name: "chrome-mac", browser: true, chrome: true, ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36"},
	{name: "chrome-android", browser: true, chrome: true, ua: "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Mobile Safari/537.36"},
	{name: "edge", browser: true, chrome: true, ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%[1]d.0.0.0 Safari/537.36 Edg/%[1]d.0.0.0"},
	{name: "firefox-linux", browser: true, ua: "Mozilla/5.0 (X11; Linux x86_64; rv:%[1]d.0) Gecko/20100101 Firefox/%[1]d.0"},
	{name: "firefox-win", browser: true, ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:%[1]d.0) Gecko/20100101 Firefox/%[1]d.0"},
	{name: "safari-mac", browser: true, ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.%d Safari/605.1.15"},
	{name: "safari-ios", browser: true, ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"},
	{name: "curl", ua: "curl/%d.88.1"},
	{name: "python-requests", ua: "python-requests/2.%d.0"},
	{name: "okhttp", ua: "okhttp/4.%d.0"},
	{name: "go", ua: "Go-http-client/1.1"},
	{name: "node-fetch", ua: "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"},
	{name: "axios", ua: "axios/1.%d.2"},
	{name: "android-app", ua: "Dalvik/2.1.0 (Linux; U; Android 13; Pixel 7 Build/TQ3A.230805.001)"},
	{name: "ios-app", ua: "ShopApp/5.%d (iPhone; iOS 17.4; Scale/3.00)"},
}

var acceptLanguages = []string{
	"en-US,en;q=0.9", "en-GB,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7",
	"es-ES,es;q=0.9", "ja,en-US;q=0.9,en;q=0.8", "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "pl-PL,pl;q=0.9,en-US;q=0.8",
	"pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7", "it-IT,it;q=0.9", "nl-NL,nl;q=0.9,en;q=0.8", "zh-CN,zh;q=0.9,en;q=0.8",
	"en-US,en;q=0.5", "de,en-US;q=0.7,en;q=0.3",
}

func userAgent(c client, r *rand.Rand) string {
	if !strings.Contains(c.ua, "%") {
		return c.ua
	}
	v := 118 + r.IntN(14)
	switch c.name {
	case "safari-mac", "safari-ios":
		v = 1 + r.IntN(5)
	case "curl":
		v = 7
	case "python-requests":
		v = 28 + r.IntN(4)
	case "okhttp", "axios":
		v = r.IntN(12)
	case "ios-app":
		v = r.IntN(30)
	}
	return fmt.Sprintf(c.ua, v)
}

// reqKind is what kind of request a browser is making: it decides Accept
// and the Sec-Fetch-* headers.
type reqKind int

const (
	navigate    reqKind = iota // top-level navigation (link, typed URL)
	formNav                    // form submission (navigation with a body)
	fetchAPI                   // fetch()/XHR from page script
	beacon                     // navigator.sendBeacon, reports
	subresource                // image, script
)

// headersFor returns a realistic header list for a request of kind k sent
// by a random client to host, in the order the client sends them. Body
// headers (Content-Type) are added by the caller.
func headersFor(r *rand.Rand, host string, k reqKind, browserOnly bool) ([][2]string, client) {
	var c client
	for {
		c = clients[r.IntN(len(clients))]
		if c.browser || !browserOnly && k == fetchAPI {
			break
		}
	}
	ua := userAgent(c, r)
	h := [][2]string{{"Host", host}}
	if !c.browser {
		h = append(h, [2]string{"User-Agent", ua}, [2]string{"Accept", pick(r, []string{"*/*", "application/json", "application/json, text/plain, */*"})}, [2]string{"Accept-Encoding", pick(r, []string{"gzip, deflate", "gzip", "gzip, deflate, br"})})
		if r.IntN(3) == 0 {
			h = append(h, [2]string{"Authorization", "Bearer " + b64url(randStr(r, 24)) + "." + b64url(randStr(r, 40)) + "." + b64url(randStr(r, 32))})
		}
		if r.IntN(2) == 0 {
			h = append(h, [2]string{"Connection", "keep-alive"})
		}
		return h, c
	}
	lang := pick(r, acceptLanguages)
	if c.chrome {
		ver := strings.SplitN(strings.SplitN(ua, "Chrome/", 2)[1], ".", 2)[0]
		mobile := "?0"
		platform := `"Windows"`
		switch c.name {
		case "chrome-linux":
			platform = `"Linux"`
		case "chrome-mac":
			platform = `"macOS"`
		case "chrome-android":
			platform, mobile = `"Android"`, "?1"
		}
		brand := `"Google Chrome";v="` + ver + `"`
		if c.name == "edge" {
			brand = `"Microsoft Edge";v="` + ver + `"`
		}
		h = append(h,
			[2]string{"Sec-Ch-Ua", `"Chromium";v="` + ver + `", ` + brand + `, "Not?A_Brand";v="99"`},
			[2]string{"Sec-Ch-Ua-Mobile", mobile},
			[2]string{"Sec-Ch-Ua-Platform", platform})
	}
	switch k {
	case navigate, formNav:
		if c.chrome {
			h = append(h, [2]string{"Upgrade-Insecure-Requests", "1"})
		}
		h = append(h, [2]string{"User-Agent", ua})
		if c.chrome {
			h = append(h, [2]string{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"})
		} else {
			h = append(h, [2]string{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
		}
		site := pick(r, []string{"none", "same-origin", "cross-site", "same-site"})
		if k == formNav {
			site = "same-origin"
		}
		h = append(h, [2]string{"Sec-Fetch-Site", site}, [2]string{"Sec-Fetch-Mode", "navigate"})
		if site == "none" || k == formNav || r.IntN(2) == 0 {
			h = append(h, [2]string{"Sec-Fetch-User", "?1"})
		}
		h = append(h, [2]string{"Sec-Fetch-Dest", "document"})
		if site != "none" {
			h = append(h, [2]string{"Referer", referer(r, host, site)})
		}
	case fetchAPI:
		h = append(h, [2]string{"User-Agent", ua}, [2]string{"Accept", pick(r, []string{"*/*", "application/json", "application/json, text/plain, */*"})},
			[2]string{"Origin", "https://" + host}, [2]string{"Sec-Fetch-Site", "same-origin"}, [2]string{"Sec-Fetch-Mode", "cors"}, [2]string{"Sec-Fetch-Dest", "empty"},
			[2]string{"Referer", "https://" + host + pick(r, []string{"/", "/account", "/cart", "/posts/" + fmt.Sprint(r.IntN(9000)), "/search?q=" + randStr(r, 5)})})
	case beacon:
		h = append(h, [2]string{"User-Agent", ua}, [2]string{"Accept", "*/*"}, [2]string{"Origin", "https://" + host},
			[2]string{"Sec-Fetch-Site", "same-origin"}, [2]string{"Sec-Fetch-Mode", "no-cors"}, [2]string{"Sec-Fetch-Dest", "empty"},
			[2]string{"Referer", "https://" + host + "/"})
	case subresource:
		h = append(h, [2]string{"User-Agent", ua}, [2]string{"Accept", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"},
			[2]string{"Sec-Fetch-Site", "same-origin"}, [2]string{"Sec-Fetch-Mode", "no-cors"}, [2]string{"Sec-Fetch-Dest", "image"},
			[2]string{"Referer", "https://" + host + "/"})
	}
	h = append(h, [2]string{"Accept-Encoding", "gzip, deflate, br, zstd"}, [2]string{"Accept-Language", lang})
	if r.IntN(3) > 0 {
		h = append(h, [2]string{"Cookie", sessionCookies(r)})
	}
	if !c.chrome && r.IntN(2) == 0 {
		h = append(h, [2]string{"Connection", "keep-alive"})
	}
	if r.IntN(6) == 0 {
		h = append(h, [2]string{"Priority", pick(r, []string{"u=0, i", "u=1, i", "u=4"})})
	}
	return h, c
}

var refererSites = []string{
	"https://www.google.com/", "https://www.bing.com/search?q=%s", "https://duckduckgo.com/", "https://news.ycombinator.com/item?id=%d",
	"https://www.reddit.com/r/golang/comments/%d/", "https://t.co/%s", "https://github.com/search?q=%s&type=repositories",
	"https://stackoverflow.com/questions/%d/", "https://de.wikipedia.org/wiki/%s", "https://mail.example.net/",
}

func referer(r *rand.Rand, host, site string) string {
	switch site {
	case "cross-site":
		s := pick(r, refererSites)
		if strings.Contains(s, "%s") {
			s = fmt.Sprintf(s, randStr(r, 6))
		} else if strings.Contains(s, "%d") {
			s = fmt.Sprintf(s, 1000000+r.IntN(9000000))
		}
		return s
	case "same-site":
		return "https://" + pick(r, []string{"blog.", "help.", "m."}) + strings.TrimPrefix(host, "www.") + "/"
	}
	return "https://" + host + pick(r, []string{"/", "/products?page=2", "/login", "/forum/t/" + fmt.Sprint(r.IntN(99999)), "/account/settings"})
}

// sessionCookies is a typical cookie header: a session id, consent and
// analytics cookies, preferences.
func sessionCookies(r *rand.Rand) string {
	parts := []string{pick(r, []string{"session", "sessionid", "PHPSESSID", "JSESSIONID", "connect.sid", "_app_session"}) + "=" + sessionValue(r)}
	if r.IntN(2) == 0 {
		parts = append(parts, fmt.Sprintf("_ga=GA1.2.%d.%d", 100000000+r.IntN(899999999), 1690000000+r.IntN(30000000)))
	}
	if r.IntN(3) == 0 {
		parts = append(parts, "csrftoken="+b64url(randStr(r, 24)))
	}
	if r.IntN(3) == 0 {
		parts = append(parts, pick(r, []string{"cookie_consent=accepted", "theme=dark", "lang=de", "currency=EUR", "tz=Europe%2FBerlin", "cc_cookie=%7B%22categories%22%3A%5B%22necessary%22%2C%22analytics%22%5D%7D"}))
	}
	return strings.Join(parts, "; ")
}

func sessionValue(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return randHex(r, 32)
	case 1:
		return b64url(randStr(r, 30))
	case 2: // express-session signed cookie
		return "s%3A" + b64url(randStr(r, 24)) + "." + b64raw(randStr(r, 30))
	}
	return jwt("role", "user", r)
}

func randHex(r *rand.Rand, n int) string {
	const hx = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = hx[r.IntN(16)]
	}
	return string(b)
}
