package replay

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
)

const base = `waf: {profile: stock-crs} # the records were judged by the CRS
upstreams:
  - name: app
    targets: ["http://127.0.0.1:9"]
sites:
  - name: shop
    hosts: ["shop.test"]
    routes:
      - path: /
        upstream: app
`

func inspector(t *testing.T, yamlText string) *gateway.Inspector {
	t.Helper()
	cfg, err := config.Parse("candidate.yaml", []byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	in, err := gateway.NewInspector(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func rec(id, action, stage, method, uri, body string) *audit.Entry {
	h := map[string][]string{"Host": {"shop.test"}, "User-Agent": {"Mozilla/5.0"}, "Accept": {"*/*"}}
	if body != "" {
		h["Content-Type"] = []string{"application/x-www-form-urlencoded"}
	}
	return &audit.Entry{ID: id, ClientIP: "192.0.2.1", ClientPort: 1234, Host: "shop.test", Method: method, URI: uri,
		Protocol: "HTTP/1.1", Headers: h, RequestBody: body, Action: action, Stage: stage}
}

func TestReplayReportsWhatAConfigChanges(t *testing.T) {
	sqli := url.QueryEscape("1' UNION SELECT password FROM users --")
	records := []*audit.Entry{
		rec("fp", audit.ActionBlocked, audit.StageWAF, "POST", "/review", "text="+url.QueryEscape("We had a union meeting; select members from each team where possible")),
		rec("attack", audit.ActionBlocked, audit.StageWAF, "GET", "/item?id="+sqli, ""),
		rec("benign", audit.ActionAllowed, "", "GET", "/item?id=42", ""),
		rec("curl", audit.ActionAllowed, "", "GET", "/debug", ""),
		rec("limited", audit.ActionBlocked, audit.StageRateLimit, "GET", "/item?id=1", ""),
	}
	// The candidate excludes the prose rules for the review text and adds a
	// custom rule that blocks /debug.
	candidate := base + `    waf:
      exclusions:
        - rule_ids: ["942270", "942350"]
          target: ARGS:text
          path_prefix: /review
      rules_after:
        - inline: 'SecRule REQUEST_FILENAME "@streq /debug" "id:10001,phase:1,deny,status:403,log,msg:debug endpoint"'
`
	for _, tc := range []struct {
		name     string
		config   string
		nowPass  []string
		nowBlock []string
		skipped  int
	}{
		{"same config changes nothing", base, nil, nil, 1},
		{"candidate", candidate, []string{"fp"}, []string{"curl"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := inspector(t, tc.config)
			var rp Report
			for _, e := range records {
				res, err := Judge(context.Background(), in, e)
				if err != nil {
					t.Fatal(err)
				}
				rp.Add(res)
			}
			var pass, block []string
			for _, c := range rp.Changes {
				if c.Before == Blocked {
					pass = append(pass, c.Record.ID)
				} else if c.After == Blocked {
					block = append(block, c.Record.ID)
				}
			}
			if !slices.Equal(pass, tc.nowPass) || !slices.Equal(block, tc.nowBlock) || rp.Skipped != tc.skipped || rp.Total != len(records) {
				t.Errorf("now pass %v, now block %v, report %+v", pass, block, rp)
			}
		})
	}
}

func TestRebuildNotes(t *testing.T) {
	tests := []struct {
		name string
		e    *audit.Entry
		want []string
	}{
		{"clean", rec("a", audit.ActionBlocked, audit.StageWAF, "GET", "/x?q=1", ""), nil},
		{"redacted query", rec("b", audit.ActionBlocked, audit.StageWAF, "GET", "/x?token=[redacted]", ""), []string{"replayed with redacted values"}},
		{"cut body", func() *audit.Entry {
			e := rec("c", audit.ActionBlocked, audit.StageWAF, "POST", "/x", "a=1")
			e.RequestBodyTruncated = true
			return e
		}(), []string{"body cut at 3 bytes (audit.body_limit)"}},
		{"body not kept", func() *audit.Entry {
			e := rec("d", audit.ActionBlocked, audit.StageWAF, "POST", "/x", "")
			e.Headers["Content-Length"] = []string{"99"}
			return e
		}(), []string{"body not kept (blocked before it was read, or recorded without a body)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, notes, err := Rebuild(tt.e)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(notes, tt.want) {
				t.Errorf("notes %q, want %q", notes, tt.want)
			}
			if r.Host != "shop.test" || r.Header.Get("Host") != "" || r.RemoteAddr != "192.0.2.1:1234" {
				t.Errorf("host %q header %q remote %q", r.Host, r.Header.Get("Host"), r.RemoteAddr)
			}
			if tt.e.RequestBody != "" && r.ContentLength != int64(len(tt.e.RequestBody)) {
				t.Errorf("content length %d", r.ContentLength)
			}
		})
	}
	if _, _, err := Rebuild(&audit.Entry{ID: "x", Method: "GET"}); err == nil || !strings.Contains(err.Error(), "no request target") {
		t.Errorf("no target: %v", err)
	}
}
