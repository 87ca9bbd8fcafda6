package fastop

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/coreruleset/go-ftw/v2/test"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/rules"
)

// request is one HTTP request for the engine-level differential, fed to a
// Coraza transaction directly (no network).
type request struct {
	name        string
	method, uri string
	proto       string
	headers     [][2]string
	body        []byte
}

// verdict is what an engine decided about a request.
type verdict struct {
	interrupted bool
	rule        int
	status      int
	action      string
	matched     []int // every matched rule, chain starters by their id
}

func (v verdict) String() string {
	s := "pass"
	if v.interrupted {
		s = fmt.Sprintf("%s %d by rule %d", v.action, v.status, v.rule)
	}
	return fmt.Sprintf("%s, rules %v", s, v.matched)
}

// engineSettings are the rule sets the engine-level differential compiles:
// Portcullis's defaults (CRS, paranoia 1, blocking) and, with FASTOP_FULL=1,
// paranoia 4, where every CRS rule runs.
func engineSettings() map[string]config.WAFSettings {
	levels := map[string]config.WAFSettings{"PL1": config.DefaultWAF()}
	if os.Getenv("FASTOP_FULL") == "1" {
		pl4 := config.DefaultWAF()
		pl4.Paranoia = 4
		levels["PL4"] = pl4
	}
	return levels
}

func compileRules(s config.WAFSettings) (coraza.WAF, error) {
	return coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(rules.FS()).WithDirectives(rules.Text(rules.Build(s))))
}

func judge(w coraza.WAF, r request) verdict {
	tx := w.NewTransaction()
	defer tx.Close()
	tx.ProcessConnection("192.0.2.10", 40000, "192.0.2.1", 80)
	tx.ProcessURI(r.uri, r.method, r.proto)
	for _, h := range r.headers {
		tx.AddRequestHeader(h[0], h[1])
	}
	it := tx.ProcessRequestHeaders()
	if it == nil && len(r.body) > 0 {
		if it2, _, err := tx.WriteRequestBody(r.body); err == nil {
			it = it2
		}
	}
	if it == nil {
		it, _ = tx.ProcessRequestBody()
	}
	tx.ProcessLogging()
	var v verdict
	if it != nil {
		v.interrupted, v.rule, v.status, v.action = true, it.RuleID, it.Status, it.Action
	}
	for _, mr := range tx.MatchedRules() {
		v.matched = append(v.matched, mr.Rule().ID())
	}
	slices.Sort(v.matched)
	return v
}

// ftwRequests turns every stage of the CRS regression tests into a request
// (the raw ones of encoded_request parsed as HTTP/1.1; the few that do not
// parse are left out and counted).
func ftwRequests(t testing.TB) (reqs []request, skipped int) {
	t.Helper()
	eachFTWStage(t, func(ft *test.FTWTest, ti, i int) {
		tc, st := ft.Tests[ti], ft.Tests[ti].Stages[i]
		in := st.Input
		name := fmt.Sprintf("%d-%d stage %d", ft.RuleId, tc.TestId, i)
		if in.EncodedRequest != "" {
			raw, err := base64.StdEncoding.DecodeString(in.EncodedRequest)
			if err != nil {
				skipped++
				return
			}
			r, ok := parseRaw(name, raw)
			if !ok {
				skipped++
				return
			}
			reqs = append(reqs, r)
			return
		}
		r := request{name: name, method: "GET", uri: "/", proto: "HTTP/1.1"}
		if in.Method != nil {
			r.method = *in.Method
		}
		if in.URI != nil {
			r.uri = *in.URI
		}
		if in.Version != nil {
			r.proto = *in.Version
		}
		//lint:ignore SA1019 the embedded CRS tests still use the deprecated headers map; both forms are read
		for k, v := range in.Headers {
			r.headers = append(r.headers, [2]string{k, v})
		}
		for _, h := range in.OrderedHeaders {
			r.headers = append(r.headers, [2]string{h.Name, h.Value})
		}
		slices.SortStableFunc(r.headers, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		if in.Data != nil {
			r.body = []byte(*in.Data)
		}
		if in.EncodedData != nil {
			if b, err := base64.StdEncoding.DecodeString(*in.EncodedData); err == nil {
				r.body = b
			}
		}
		// As with the operator corpus: the few 64 KB bodies would cost
		// stock Coraza seconds each.
		if len(r.body) > 20000 {
			skipped++
			return
		}
		reqs = append(reqs, r)
	})
	return reqs, skipped
}

func parseRaw(name string, raw []byte) (request, bool) {
	hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return request{}, false
	}
	body, _ := io.ReadAll(io.LimitReader(hr.Body, 20001))
	if len(body) > 20000 {
		return request{}, false
	}
	r := request{name: name, method: hr.Method, uri: hr.RequestURI, proto: hr.Proto, body: body}
	for k, vs := range hr.Header {
		for _, v := range vs {
			r.headers = append(r.headers, [2]string{k, v})
		}
	}
	if hr.Host != "" {
		r.headers = append(r.headers, [2]string{"Host", hr.Host})
	}
	slices.SortStableFunc(r.headers, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return r, true
}

// benignRequests are generated from the words of the bench/ form post:
// browser-like GETs with query strings, form posts, JSON API calls, and
// the three bench/ workloads themselves.
func benignRequests(t testing.TB, n int) []request {
	t.Helper()
	form, err := os.ReadFile("../../bench/workloads/post-body.txt")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := url.QueryUnescape(string(form))
	words := strings.FieldsFunc(text, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') })
	browser := [][2]string{
		{"Host", "shop.example"},
		{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"},
		{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		{"Accept-Language", "en-US,en;q=0.5"},
		{"Accept-Encoding", "gzip, deflate, br, zstd"},
		{"Cookie", "session=3f9a0c1b2d4e; theme=dark"},
	}
	with := func(extra ...[2]string) [][2]string { return append(slices.Clone(browser), extra...) }
	rng := rand.New(rand.NewPCG(8, 1))
	sentence := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		return b.String()
	}
	reqs := []request{
		{name: "bench get", method: "GET", uri: "/products?category=shoes&page=2&sort=price", proto: "HTTP/1.1", headers: browser},
		{name: "bench post", method: "POST", uri: "/contact", proto: "HTTP/1.1", body: form,
			headers: with([2]string{"Content-Type", "application/x-www-form-urlencoded"})},
		{name: "bench attack", method: "GET", uri: "/?id=1%27%20OR%20%271%27%3D%271", proto: "HTTP/1.1", headers: browser},
	}
	for i := range n {
		switch i % 3 {
		case 0:
			q := url.Values{"q": {sentence(1 + rng.IntN(4))}, "page": {fmt.Sprint(rng.IntN(50))}, "sort": {words[rng.IntN(len(words))]}}
			reqs = append(reqs, request{name: fmt.Sprint("benign get ", i), method: "GET", proto: "HTTP/1.1", headers: browser,
				uri: "/" + strings.ToLower(words[rng.IntN(len(words))]) + "?" + q.Encode()})
		case 1:
			f := url.Values{"name": {sentence(2)}, "email": {"ann@example.com"}, "subject": {sentence(5)}, "message": {sentence(20 + rng.IntN(600))}}
			reqs = append(reqs, request{name: fmt.Sprint("benign form ", i), method: "POST", uri: "/contact", proto: "HTTP/1.1",
				headers: with([2]string{"Content-Type", "application/x-www-form-urlencoded"}), body: []byte(f.Encode())})
		default:
			body := fmt.Sprintf(`{"title":%q,"tags":[%q,%q],"count":%d,"draft":false,"body":%q}`,
				sentence(4), words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(1000), sentence(10+rng.IntN(200)))
			reqs = append(reqs, request{name: fmt.Sprint("benign json ", i), method: "POST", uri: "/api/v1/posts", proto: "HTTP/1.1",
				headers: with([2]string{"Content-Type", "application/json"}), body: []byte(body)})
		}
	}
	return reqs
}

// TestEngineDifferential runs the CRS regression requests and a benign
// corpus through the whole rule set compiled twice, with Coraza's own
// operators and with this package's, and asserts the same interruption
// (rule, status, action) and the same matched rules for every request:
// at paranoia 1 (Portcullis's default) and, with FASTOP_FULL=1, at
// paranoia 4 as well.
func TestEngineDifferential(t *testing.T) {
	h := getHarness(t)
	ftw, skipped := ftwRequests(t)
	benign := benignRequests(t, 300)
	reqs := append(ftw, benign...)
	if testing.Short() {
		var some []request
		for i := 0; i < len(reqs); i += 10 {
			some = append(some, reqs[i])
		}
		reqs = some
	}
	for _, level := range slices.Sorted(maps.Keys(h.engines)) {
		e := h.engines[level]
		var differ, blocked atomic.Int64
		forEachReq(reqs, func(r request) {
			if differ.Load() > 20 {
				return
			}
			stock, fast := judge(e[0], r), judge(e[1], r)
			if stock.interrupted {
				blocked.Add(1)
			}
			if stock.interrupted != fast.interrupted || stock.rule != fast.rule || stock.status != fast.status ||
				stock.action != fast.action || !slices.Equal(stock.matched, fast.matched) {
				differ.Add(1)
				t.Errorf("%s, %s %s: stock %v; fast %v", level, r.name, truncate(r.uri, 100), stock, fast)
			}
		})
		t.Logf("differential (%s): %d requests compared (%d CRS test stages, %d benign; %d stages not replayable), %d blocked by stock, %d differ",
			level, len(reqs), len(ftw), len(benign), skipped, blocked.Load(), differ.Load())
	}
}

func forEachReq(reqs []request, f func(request)) {
	names := make([]string, len(reqs))
	for i := range reqs {
		names[i] = reqs[i].name
	}
	forEach(names, func(i int, _ string) { f(reqs[i]) })
}
