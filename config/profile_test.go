package config

import (
	"strings"
	"testing"
)

// TestWAFProfile: the profile decides whether the CRS loads unless crs is
// set, at any level, and a route inherits both from its site.
func TestWAFProfile(t *testing.T) {
	base := "upstreams: [{name: app, targets: [\"http://127.0.0.1:3000\"]}]\n"
	site := func(siteWAF, routeWAF string) string {
		return "sites:\n  - hosts: [\"*\"]\n" + siteWAF + "    routes:\n      - path: /\n        upstream: app\n" + routeWAF
	}
	for _, tt := range []struct {
		name, text string
		profile    string
		crs        bool
		threshold  int
	}{
		{"default", base + site("", ""), ProfilePortcullis, false, DefaultDetectionThreshold},
		{"stock-crs", base + "waf:\n  profile: stock-crs\n" + site("", ""), ProfileStockCRS, true, DefaultDetectionThreshold},
		{"stock-crs without crs", base + "waf:\n  profile: stock-crs\n  crs: false\n" + site("", ""), ProfileStockCRS, false, DefaultDetectionThreshold},
		{"portcullis plus crs", base + "waf:\n  crs: true\n" + site("", ""), ProfilePortcullis, true, DefaultDetectionThreshold},
		{"site override", base + site("    waf:\n      profile: stock-crs\n", ""), ProfileStockCRS, true, DefaultDetectionThreshold},
		{"route override", base + "waf:\n  profile: stock-crs\n" + site("", "        waf:\n          profile: portcullis\n          detection_threshold: 85\n"), ProfilePortcullis, false, 85},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("p.yaml", []byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			w := cfg.Sites[0].Routes[0].WAF
			if w.Profile != tt.profile || w.CRS != tt.crs || w.DetectionThreshold != tt.threshold {
				t.Errorf("profile %q crs %v threshold %d, want %q %v %d", w.Profile, w.CRS, w.DetectionThreshold, tt.profile, tt.crs, tt.threshold)
			}
		})
	}
}

// TestWAFProfileErrors: bad values are reported at file:line with the field.
func TestWAFProfileErrors(t *testing.T) {
	base := "upstreams: [{name: app, targets: [\"http://127.0.0.1:3000\"]}]\nsites: [{hosts: [\"*\"], routes: [{path: /, upstream: app}]}]\n"
	for _, tt := range []struct {
		name, waf, want string
	}{
		{"profile", "waf:\n  profile: modsecurity\n", `p.yaml:4: waf.profile: must be portcullis or stock-crs, got "modsecurity"`},
		{"threshold", "waf:\n  detection_threshold: 0\n", "p.yaml:4: waf.detection_threshold: must be 1..100, got 0"},
		{"class", "waf:\n  exclusions:\n    - classes: [sql]\n", `p.yaml:5: waf.exclusions[0].classes[0]: must be one of sqli, xss, shell, traversal, ssti, ssrf, ldap, nosql, xxe, crlf, jndi, deserialization, ssi, got "sql"`},
		{"detector", "waf:\n  exclusions:\n    - detectors: [\"XSS JS\"]\n", `p.yaml:5: waf.exclusions[0].detectors[0]: must be a detector name such as sqli or xss/js, got "XSS JS"`},
		{"empty", "waf:\n  exclusions:\n    - target: ARGS:q\n", "p.yaml:5: waf.exclusions[0]: name at least one of rule_ids, tags, detectors or classes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(base+tt.waf))
			var got []string
			for _, e := range ErrorList(err) {
				got = append(got, e.Error())
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDetectorExclusion: a detector or class exclusion is kept with its
// target and conditions.
func TestDetectorExclusion(t *testing.T) {
	text := "upstreams: [{name: app, targets: [\"http://127.0.0.1:3000\"]}]\nsites: [{hosts: [\"*\"], routes: [{path: /, upstream: app}]}]\n" +
		"waf:\n  exclusions:\n    - {detectors: [xss/js], classes: [shell], target: \"JSON:post.*\", path_prefix: /forum/, methods: [post]}\n"
	cfg, err := Parse("p.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ex := cfg.Sites[0].Routes[0].WAF.Exclusions
	if len(ex) != 1 || ex[0].Detectors[0] != "xss/js" || ex[0].Classes[0] != "shell" || ex[0].Target != "JSON:post.*" || ex[0].PathPrefix != "/forum/" || ex[0].Methods[0] != "POST" {
		t.Fatalf("%+v", ex)
	}
}
