package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

func blocked() *audit.Entry {
	return &audit.Entry{
		ID: "5f0c", Time: time.Date(2026, 11, 26, 0, 11, 47, 123456789, time.UTC),
		ClientIP: "203.0.113.7", ClientPort: 40000, Country: "de", ASN: 64500, ASOrg: "Example AS",
		Host: "shop.example", Method: "GET", URI: "/search?q=1%27%20OR%20%271%27%3D%271", Protocol: "HTTP/1.1",
		Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF, Reason: "request denied by rule 949110",
		WAFMode: "block", InboundScore: 5,
		Rules: []audit.MatchedRule{
			{ID: 942100, Message: "SQL Injection Attack Detected via libinjection", MatchedVariable: "ARGS:q", MatchedData: "1' OR '1'='1",
				Severity: "critical", Tags: []string{"attack-sqli", "paranoia-level/1"}, ParanoiaLevel: 1, Phase: 2},
			{ID: 949110, Message: "Inbound Anomaly Score Exceeded (Total Score: 5)", Tags: []string{"anomaly-evaluation"}, Phase: 2},
		},
		Headers:   map[string][]string{"User-Agent": {"sqlmap/1.8"}, "Authorization": {audit.Redacted}},
		Durations: audit.Durations{WAF: 2248, Total: 2415},
	}
}

// Facts from the OCSF 1.1.0 JSON schema of HTTP Activity.
var (
	ocsfRequired    = []string{"category_uid", "src_endpoint", "time", "severity_id", "activity_id", "type_uid", "http_response", "http_request", "class_uid", "metadata", "action_id", "dst_endpoint"}
	ocsfActivityIDs = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 99}
	ocsfActionIDs   = []int{0, 1, 2, 99}
	ocsfSeverityIDs = []int{0, 1, 2, 3, 4, 5, 6, 99}
	ocsfDispIDs     = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 99}
)

func TestOCSF(t *testing.T) {
	cases := []struct {
		name                             string
		edit                             func(*audit.Entry)
		activity, typeUID, action, disp  int
		severity                         int
		dispName, activityName, path, qs string
		urlString                        string
	}{
		{"blocked GET", func(*audit.Entry) {}, 3, 400203, 2, 2, 4, "Blocked", "Get", "/search", "q=1%27%20OR%20%271%27%3D%271", ""},
		{"detected POST", func(e *audit.Entry) { e.Action, e.Method, e.Status = audit.ActionDetected, "POST", 200 }, 6, 400206, 1, 15, 3, "Detected", "Post", "/search", "q=1%27%20OR%20%271%27%3D%271", ""},
		{"error PATCH", func(e *audit.Entry) { e.Action, e.Method, e.Status, e.Rules = audit.ActionError, "PATCH", 502, nil }, 99, 400299, 0, 99, 2, "Error", "Patch", "/search", "q=1%27%20OR%20%271%27%3D%271", ""},
		{"allowed absolute-form", func(e *audit.Entry) {
			e.Action, e.Status, e.Rules, e.URI = audit.ActionAllowed, 200, nil, "http://other.example/a/b?x=1"
		}, 3, 400203, 1, 1, 1, "Allowed", "Get", "/a/b", "x=1", "http://other.example/a/b?x=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := blocked()
			tc.edit(e)
			var buf bytes.Buffer
			w, err := New("ocsf", &buf, Options{Version: "1.2.3"})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(e); err != nil {
				t.Fatal(err)
			}
			var ev map[string]any
			if err := json.Unmarshal(buf.Bytes(), &ev); err != nil {
				t.Fatal(err)
			}
			for _, k := range ocsfRequired {
				if _, ok := ev[k]; !ok {
					t.Errorf("required attribute %s missing", k)
				}
			}
			num := func(k string) int { return int(ev[k].(float64)) }
			if num("class_uid") != 4002 || num("category_uid") != 4 || num("time") != 1795651907123 {
				t.Errorf("class %v category %v time %v", ev["class_uid"], ev["category_uid"], ev["time"])
			}
			if num("activity_id") != tc.activity || num("type_uid") != tc.typeUID || ev["activity_name"] != tc.activityName {
				t.Errorf("activity %v %v type %v, want %d %s %d", ev["activity_id"], ev["activity_name"], ev["type_uid"], tc.activity, tc.activityName, tc.typeUID)
			}
			if num("action_id") != tc.action || num("disposition_id") != tc.disp || ev["disposition"] != tc.dispName || num("severity_id") != tc.severity {
				t.Errorf("action %v disposition %v %v severity %v", ev["action_id"], ev["disposition_id"], ev["disposition"], ev["severity_id"])
			}
			for k, allowed := range map[string][]int{"activity_id": ocsfActivityIDs, "action_id": ocsfActionIDs, "severity_id": ocsfSeverityIDs, "disposition_id": ocsfDispIDs} {
				if !slices.Contains(allowed, num(k)) {
					t.Errorf("%s %d is not in the OCSF 1.1 enum", k, num(k))
				}
			}
			req := ev["http_request"].(map[string]any)
			u := req["url"].(map[string]any)
			if u["path"] != tc.path || u["query_string"] != tc.qs || req["user_agent"] != "sqlmap/1.8" || req["version"] != "1.1" {
				t.Errorf("http_request %v", req)
			}
			if got, _ := u["url_string"].(string); got != tc.urlString {
				t.Errorf("url_string %q, want %q", got, tc.urlString)
			}
			src := ev["src_endpoint"].(map[string]any)
			if src["ip"] != "203.0.113.7" || src["location"].(map[string]any)["country"] != "DE" {
				t.Errorf("src_endpoint %v", src)
			}
			if ev["http_response"].(map[string]any)["code"] == nil {
				t.Error("http_response.code missing")
			}
			md := ev["metadata"].(map[string]any)
			product := md["product"].(map[string]any)
			if md["version"] != "1.1.0" || product["name"] != "Portcullis" || product["vendor_name"] == "" || product["version"] != "1.2.3" || md["uid"] != "5f0c" {
				t.Errorf("metadata %v", md)
			}
			enr, _ := ev["enrichments"].([]any)
			if len(enr) != len(e.Rules) {
				t.Fatalf("%d enrichments for %d rules", len(enr), len(e.Rules))
			}
			for _, x := range enr {
				m := x.(map[string]any)
				if m["name"] == nil || m["value"] == nil || m["data"] == nil {
					t.Errorf("enrichment without name, value or data: %v", m)
				}
			}
			if len(enr) > 0 {
				data := enr[0].(map[string]any)["data"].(map[string]any)
				if enr[0].(map[string]any)["value"] != "942100" || data["matched_data"] != "1' OR '1'='1" || data["severity"] != "critical" {
					t.Errorf("first enrichment %v", enr[0])
				}
			}
			if un := ev["unmapped"].(map[string]any); un["stage"] != "waf" || un["inbound_anomaly_score"] != 5.0 {
				t.Errorf("unmapped %v", un)
			}
			if strings.Contains(buf.String(), "cloud") {
				t.Error("cloud profile attribute present")
			}
		})
	}
}

func TestCSV(t *testing.T) {
	e := blocked()
	e.URI = "=HYPERLINK(\"http://evil.example\")"
	e.Headers["User-Agent"] = []string{"+cmd|' /C calc'!A0"}
	var buf bytes.Buffer
	w, err := New("csv", &buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || !slices.Equal(rows[0], CSVHeader) {
		t.Fatalf("rows: %q", rows)
	}
	row := map[string]string{}
	for i, h := range CSVHeader {
		row[h] = rows[1][i]
	}
	want := map[string]string{
		"time": "2026-11-26T00:11:47.123456789Z", "id": "5f0c", "client_ip": "203.0.113.7", "asn": "64500",
		"uri": "'=HYPERLINK(\"http://evil.example\")", "user_agent": "'+cmd|' /C calc'!A0", "status": "403",
		"rule_ids": "942100 949110", "inbound_anomaly_score": "5", "duration_us": "2415",
	}
	for k, v := range want {
		if row[k] != v {
			t.Errorf("%s = %q, want %q", k, row[k], v)
		}
	}
}

func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "abc", "=1+1": "'=1+1", "-2": "'-2", "@SUM": "'@SUM", "\tx": "'\tx", "a=b": "a=b"} {
		if got := CSVCell(in); got != want {
			t.Errorf("CSVCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJSONLAndUnknownFormat(t *testing.T) {
	var buf bytes.Buffer
	w, err := New("jsonl", &buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(blocked()); err != nil {
		t.Fatal(err)
	}
	var back audit.Entry
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.ID != "5f0c" || !strings.HasSuffix(buf.String(), "}\n") {
		t.Fatalf("jsonl: %q %v", buf.String(), err)
	}
	if _, err := New("xml", &buf, Options{}); err == nil || err.Error() != `unknown export format "xml" (want jsonl, csv, ocsf)` {
		t.Fatalf("unknown format: %v", err)
	}
}
