package rules

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3"

	"github.com/portcullis-waf/portcullis/config"
)

// pluginSettings loads testdata/config/valid-crs-plugins.yaml: site 0 has
// the Acme Notes exclusion plugin (testdata/crs-plugins), site 1 not.
func pluginSettings(t *testing.T) (with, without config.WAFSettings) {
	t.Helper()
	cfg, err := config.Load("../testdata/config/valid-crs-plugins.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Sites[0].Routes[0].WAF, cfg.Sites[1].Routes[0].WAF
}

// TestPluginOrder: the CRS's plugin order — setup, *-config, *-before, the
// CRS rules, *-after — around Portcullis's own pieces.
func TestPluginOrder(t *testing.T) {
	with, without := pluginSettings(t)
	var order []string
	for _, p := range Build(with) {
		o := p.Origin
		if i := strings.LastIndex(o, "/"); i >= 0 {
			o = o[i+1:]
		}
		order = append(order, o)
	}
	want := []string{"engine settings", "OWASP CRS setup", "acme-notes-rule-exclusions-config.conf",
		"acme-notes-rule-exclusions-before.conf", "OWASP CRS", "acme-notes-rule-exclusions-after.conf", "request_body.no_files_limit"}
	if !slices.Equal(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
	text := Text(Build(with))
	setup := strings.Index(text, "Include @crs-setup.conf.example")
	paranoia := strings.Index(text, "tx.blocking_paranoia_level=")
	cfg := strings.Index(text, "id:9511010")
	rulesAt := strings.Index(text, "Include @owasp_crs/*.conf")
	after := strings.Index(text, "SecRuleUpdateTargetById 942100")
	if !(setup < paranoia && paranoia < cfg && cfg < rulesAt && rulesAt < after) {
		t.Errorf("positions setup %d, paranoia %d, plugin config %d, CRS rules %d, plugin after %d", setup, paranoia, cfg, rulesAt, after)
	}
	if Key(with) == Key(without) {
		t.Error("a plugin did not change the rule set's key")
	}
	if len(Build(without)) != 3 {
		t.Errorf("without plugins the CRS stays one piece: %d pieces", len(Build(without)))
	}
	off := with
	off.CRS = false
	if strings.Contains(Text(Build(off)), "9511010") {
		t.Error("plugins loaded without the CRS")
	}
}

// TestPluginExcludesInTheEngine compiles both rule sets with the embedded
// CRS and judges requests: the plugin lets a note's HTML body and the
// search query through, and nothing else.
func TestPluginExcludesInTheEngine(t *testing.T) {
	with, without := pluginSettings(t)
	compile := func(s config.WAFSettings) coraza.WAF {
		w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(FS()).WithDirectives(Text(Build(s))))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	withWAF, withoutWAF := compile(with), compile(without)
	blocked := func(w coraza.WAF, method, uri string, form url.Values) bool {
		tx := w.NewTransaction()
		defer tx.Close()
		tx.ProcessConnection("192.0.2.1", 40000, "127.0.0.1", 80)
		tx.ProcessURI(uri, method, "HTTP/1.1")
		tx.AddRequestHeader("Host", "notes.example.com")
		tx.AddRequestHeader("User-Agent", "Mozilla/5.0")
		tx.AddRequestHeader("Accept", "text/html")
		body := form.Encode()
		if method == "POST" {
			tx.AddRequestHeader("Content-Type", "application/x-www-form-urlencoded")
			tx.AddRequestHeader("Content-Length", strconv.Itoa(len(body)))
		}
		if it := tx.ProcessRequestHeaders(); it != nil {
			return true
		}
		if _, _, err := tx.WriteRequestBody([]byte(body)); err != nil {
			t.Fatal(err)
		}
		it, err := tx.ProcessRequestBody()
		if err != nil {
			t.Fatal(err)
		}
		return it != nil
	}
	xss := "<script>alert(document.cookie)</script>"
	sqli := "1' or '1'='1"
	tests := []struct {
		name          string
		method, uri   string
		form          url.Values
		withPlugin    bool // blocked with the plugin
		withoutPlugin bool
	}{
		{"note body with HTML", "POST", "/notes/save", url.Values{"body": {xss}}, false, true},
		{"other field of a note", "POST", "/notes/save", url.Values{"title": {xss}}, true, true},
		{"body on another path", "POST", "/notes/other", url.Values{"body": {xss}}, true, true},
		{"body by GET", "GET", "/notes/save?body=" + url.QueryEscape(xss), nil, true, true},
		{"search query", "GET", "/notes/find?search=" + url.QueryEscape(sqli), nil, false, true},
		{"same query in another parameter", "GET", "/notes/find?q=" + url.QueryEscape(sqli), nil, true, true},
		{"benign", "GET", "/notes/find?search=groceries", nil, false, false},
	}
	for _, tt := range tests {
		if got := blocked(withWAF, tt.method, tt.uri, tt.form); got != tt.withPlugin {
			t.Errorf("%s: blocked with the plugin = %v, want %v", tt.name, got, tt.withPlugin)
		}
		if got := blocked(withoutWAF, tt.method, tt.uri, tt.form); got != tt.withoutPlugin {
			t.Errorf("%s: blocked without the plugin = %v, want %v", tt.name, got, tt.withoutPlugin)
		}
	}
}
