package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// TestDashboardUsesExportedSeries keeps docs/grafana-dashboard.json in step
// with the code: every portcullis_ series a panel queries must exist once
// each kind of event happened.
func TestDashboardUsesExportedSeries(t *testing.T) {
	raw, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash)
	if len(exprs) < 20 {
		t.Fatalf("only %d queries found", len(exprs))
	}

	m := New(BuildInfo{})
	m.ObserveRequest(allowed("shop", "/", 200))
	m.ObserveRequest(&audit.Entry{Site: "shop", Route: "/", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF,
		Rules: []audit.MatchedRule{{ID: 942100, ParanoiaLevel: 1}}, Durations: audit.Durations{WAF: 100}})
	m.ObserveReload(true, time.Second)
	m.ObserveStoreWrite(time.Millisecond, 1)
	m.SetSources(Sources{
		Lists:      func() []ListStat { return []ListStat{{Name: "l", LastSuccess: time.Now()}} },
		Audit:      func() AuditStat { return AuditStat{Sinks: []AuditSinkStat{{Name: "file"}}} },
		Certs:      func() map[string]time.Time { return map[string]time.Time{"h": time.Now()} },
		ActiveBans: func() int { return 0 },
		Alerts:     func() AlertStat { return AlertStat{} },
	})
	fams := scrape(t, m)
	name := regexp.MustCompile(`portcullis_[a-z_]+`)
	for _, e := range exprs {
		for _, n := range name.FindAllString(e, -1) {
			n = strings.TrimSuffix(n, "_bucket")
			if _, ok := fams[n]; !ok {
				t.Errorf("dashboard queries %s, which is not exported (in %q)", n, e)
			}
		}
	}
}
