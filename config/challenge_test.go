package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const challengeBase = `
upstreams:
  - name: app
    targets: ["http://127.0.0.1:9"]
    h2c: true
EXTRA
sites:
  - hosts: ["shop.test"]
    filters:
FILTERS
    routes:
      - path: /
        upstream: app
ROUTE
`

// TestChallengeActions (issue 17, item 3): action: challenge on rate
// limits, deny lists and GeoIP rules; what check accepts and what it
// refuses, each problem at its file:line and field.
func TestChallengeActions(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte(strings.Repeat("k", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	lists := "reputation:\n  lists:\n    - name: bad\n      action: deny\n      inline: [\"192.0.2.0/24\"]\n"
	redis := "cluster:\n  name: c1\n  redis:\n    url: redis://127.0.0.1:6379\n"
	cases := []struct {
		name           string
		extra, filters string
		route          string
		want           []string // problems as "line: field: text"; nil: valid
	}{
		{name: "rate limit challenge with defaults",
			filters: "      rate_limits:\n        - rate: 2\n          burst: 5\n          action: challenge"},
		{name: "rate limit challenge with a ceiling",
			filters: "      rate_limits:\n        - rate: 2\n          burst: 5\n          action: challenge\n          ceiling:\n            rate: 20\n            burst: 50"},
		{name: "unknown action",
			filters: "      rate_limits:\n        - rate: 2\n          action: captcha",
			want:    []string{`:12: sites[0].filters.rate_limits[0].action: must be block or challenge, got "captcha"`}},
		{name: "ceiling without challenge",
			filters: "      rate_limits:\n        - rate: 2\n          ceiling:\n            rate: 20",
			want:    []string{`:13: sites[0].filters.rate_limits[0].ceiling: applies only with action: challenge`}},
		{name: "ceiling below the limit",
			filters: "      rate_limits:\n        - rate: 2\n          burst: 5\n          action: challenge\n          ceiling:\n            rate: 1\n            burst: 2",
			want: []string{`:15: sites[0].filters.rate_limits[0].ceiling.rate: must be at least the limit's rate (2)`,
				`:16: sites[0].filters.rate_limits[0].ceiling.burst: must be at least the limit's burst (5)`}},
		{name: "deny lists challenge", extra: lists,
			filters: "      deny_lists: [bad]\n      deny_lists_action: challenge"},
		{name: "deny lists action without lists",
			filters: "      deny_lists_action: challenge",
			want:    []string{`:10: sites[0].filters.deny_lists_action: challenge needs deny_lists to answer`}},
		{name: "geoip action without rules",
			filters: "      geoip_action: challenge",
			want:    []string{`:10: sites[0].filters.geoip_action: challenge needs countries or deny_asns to answer`}},
		{name: "bad deny lists action", extra: lists,
			filters: "      deny_lists: [bad]\n      deny_lists_action: allow",
			want:    []string{`:16: sites[0].filters.deny_lists_action: must be block or challenge, got "allow"`}},
		{name: "challenge on a grpc route", extra: lists,
			filters: "      deny_lists: [bad]\n      deny_lists_action: challenge",
			route:   "        grpc: true\n        rate_limits:\n          - rate: 1\n            action: challenge",
			want: []string{`:16: sites[0].filters.deny_lists_action: cannot answer with challenge: sites[0].routes[0] is a grpc route`,
				`:23: sites[0].routes[0].rate_limits[0].action: cannot answer with challenge: the route is a grpc route`}},
		{name: "cluster without a shared key", extra: redis,
			filters: "      rate_limits:\n        - rate: 2\n          action: challenge",
			want:    []string{`:16: sites[0].filters.rate_limits[0].action: with cluster.redis every instance must accept the passes of the others`}},
		{name: "cluster with a shared key", extra: redis + "challenge:\n  key_file: key\n",
			filters: "      rate_limits:\n        - rate: 2\n          action: challenge"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			filters := tc.filters
			text := strings.NewReplacer("EXTRA", tc.extra, "FILTERS", filters, "ROUTE", tc.route).Replace(challengeBase)
			path := filepath.Join(dir, "c"+string(rune('a'+i))+".yaml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused:\n%v\n%s", err, text)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q\n%s", tc.want, text)
			}
			got := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, path+w) {
					t.Errorf("problems lack %q:\n%s\n%s", path+w, got, numbered(text))
				}
			}
			if n := len(regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(path)+`:\d+`).FindAllString(got, -1)); n != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%s", n, len(tc.want), got)
			}
			_ = cfg
		})
	}

	// The resolved values.
	path := filepath.Join(dir, "values.yaml")
	text := strings.NewReplacer("EXTRA", lists, "FILTERS", "      deny_lists: [bad]\n      deny_lists_action: challenge\n      rate_limits:\n        - rate: 2\n          burst: 5\n          action: challenge\n        - rate: 3", "ROUTE", "").Replace(challengeBase)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.Sites[0]
	if sc.Filters.DenyListsAction != ActionChallenge || sc.Filters.GeoIPAction != ActionBlock {
		t.Errorf("filter actions %q %q", sc.Filters.DenyListsAction, sc.Filters.GeoIPAction)
	}
	if rl := sc.RateLimits[0]; rl.Action != ActionChallenge || rl.CeilingRate != 20 || rl.CeilingBurst != 50 {
		t.Errorf("challenge limit %+v, want the default ceiling 20/s burst 50", rl)
	}
	if rl := sc.RateLimits[1]; rl.Action != ActionBlock || rl.CeilingRate != 0 {
		t.Errorf("plain limit %+v", rl)
	}
	if used, at := cfg.UsesChallenge(); !used || at != "sites[0].filters.deny_lists_action" {
		t.Errorf("UsesChallenge %v %q", used, at)
	}
}

func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		b.WriteString(strings.Repeat(" ", 3-len(itoa(i+1))) + itoa(i+1) + " " + l + "\n")
	}
	return b.String()
}

func itoa(i int) string {
	s := ""
	for {
		s = string(rune('0'+i%10)) + s
		if i /= 10; i == 0 {
			return s
		}
	}
}
