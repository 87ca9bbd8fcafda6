package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/review/score"
)

// scoreRow is one rule of a breakdown as a front end shows it.
type scoreRow struct {
	ID       int
	Points   int
	Severity string
}

// scoreSplit is the per-rule split a front end shows for one record.
type scoreSplit struct {
	Inbound, Outbound               []scoreRow
	InboundSum, OutboundSum         int
	RecordedInbound, RecordedOutbnd int
	InboundDiffers, OutboundDiffers bool // the difference is explained
	Bookkeeping                     []int
	Other                           []scoreRow
}

// TestScoreBreakdownSameEverywhere renders the same records through
// `audit show` and the dashboard (the event page and /api/events/{id}) and
// compares the split rule by rule (issue 14: the two explained one record
// differently).
func TestScoreBreakdownSameEverywhere(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	rule := func(id int, sev string, phase int, tags ...string) audit.MatchedRule {
		return audit.MatchedRule{ID: id, Severity: sev, Phase: phase, Tags: tags, Message: fmt.Sprintf("rule %d matched", id),
			MatchedVariable: "ARGS:q", MatchedData: "x"}
	}
	cases := []struct {
		name string
		e    audit.Entry
		want scoreSplit
	}{
		{"CRS rules in both phases", audit.Entry{InboundScore: 8, OutboundScore: 4, Rules: []audit.MatchedRule{
			rule(942100, "critical", 2, "attack-sqli"), rule(920350, "warning", 1), rule(951220, "ERROR", 4),
			rule(949110, "emergency", 2, "anomaly-evaluation"), rule(959100, "", 4, "anomaly-evaluation"), rule(980170, "", 5, "reporting"),
		}}, scoreSplit{
			Inbound: []scoreRow{{942100, 5, "critical"}, {920350, 3, "warning"}}, InboundSum: 8, RecordedInbound: 8,
			Outbound: []scoreRow{{951220, 4, "error"}}, OutboundSum: 4, RecordedOutbnd: 4,
			Bookkeeping: []int{949110, 959100, 980170},
		}},
		{"custom rules with and without severity", audit.Entry{InboundScore: 10, Reason: "request denied by rule 100002", Rules: []audit.MatchedRule{
			rule(100001, "critical", 1), rule(100002, "", 2), rule(941100, "CRITICAL", 2), rule(200002, "", 2), rule(949110, "emergency", 2),
		}}, scoreSplit{
			Inbound: []scoreRow{{941100, 5, "critical"}}, InboundSum: 5, RecordedInbound: 10, InboundDiffers: true,
			Bookkeeping: []int{949110},
			Other:       []scoreRow{{100001, 0, "critical"}, {100002, 0, ""}, {200002, 0, ""}},
		}},
		{"numeric severities", audit.Entry{InboundScore: 14, OutboundScore: 5, Rules: []audit.MatchedRule{
			rule(942100, "2", 2), rule(920100, "3", 1), rule(920300, "4", 1), rule(920320, "5", 1), rule(920001, "1", 1),
			rule(951120, "2", 0), rule(901001, "", 1), rule(980170, "", 5, "reporting"),
		}}, scoreSplit{
			Inbound:    []scoreRow{{942100, 5, "critical"}, {920100, 4, "error"}, {920300, 3, "warning"}, {920320, 2, "notice"}},
			InboundSum: 14, RecordedInbound: 14,
			Outbound: []scoreRow{{951120, 5, "critical"}}, OutboundSum: 5, RecordedOutbnd: 5,
			Bookkeeping: []int{901001, 980170},
			Other:       []scoreRow{{920001, 0, "alert"}},
		}},
		{"bookkeeping by tag and an unexplained outbound score", audit.Entry{OutboundScore: 3, Rules: []audit.MatchedRule{
			rule(100500, "critical", 2, "anomaly-evaluation"), rule(100501, "", 5, "reporting"), rule(942999, "", 2),
		}}, scoreSplit{
			RecordedOutbnd: 3, OutboundDiffers: true,
			Bookkeeping: []int{100500, 100501},
			Other:       []scoreRow{{942999, 0, ""}},
		}},
		{"no rules", audit.Entry{Action: audit.ActionBlocked, Stage: audit.StageBan}, scoreSplit{}},
	}

	dbPath := filepath.Join(t.TempDir(), "audit.db")
	s, err := store.OpenSQLite(dbPath, store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range cases {
		e := &cases[i].e
		e.ID = fmt.Sprintf("score%02d0000000000000000000000000", i)
		e.Time = t0.Add(time.Duration(i) * time.Second)
		e.ClientIP, e.Host, e.Method, e.URI, e.Protocol, e.Status = "203.0.113.7", "shop.example", "GET", "/search?q=x", "HTTP/1.1", 403
		if e.Action == "" {
			e.Action, e.Stage, e.WAFMode = audit.ActionBlocked, audit.StageWAF, "block"
		}
		if err := s.Insert(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}

	srv, err := admin.New(admin.Options{Store: s, Auth: admin.Auth{None: true}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l, nil) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(t *testing.T, path string) []byte {
		t.Helper()
		resp, err := client.Get("http://" + l.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, body)
		}
		return body
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runAudit("show", tc.e.ID, "--db", dbPath)
			if code != 0 {
				t.Fatalf("audit show: exit %d: %s", code, stderr)
			}
			cli := cliScoreSplit(t, out)
			page := pageScoreSplit(t, get(t, "/events/"+url.PathEscape(tc.e.ID)))
			var api struct {
				Score score.Breakdown `json:"score"`
			}
			if err := json.Unmarshal(get(t, "/api/events/"+url.PathEscape(tc.e.ID)), &api); err != nil {
				t.Fatal(err)
			}
			fromAPI := breakdownSplit(api.Score)
			for name, got := range map[string]scoreSplit{"audit show": cli, "event page": page, "/api/events/{id}": fromAPI} {
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s:\n got %+v\nwant %+v", name, got, tc.want)
				}
				for _, sec := range []struct {
					rows []scoreRow
					sum  int
				}{{got.Inbound, got.InboundSum}, {got.Outbound, got.OutboundSum}} {
					total := 0
					for _, r := range sec.rows {
						total += r.Points
					}
					if total != sec.sum {
						t.Errorf("%s: rows add up to %d, the sum shown is %d", name, total, sec.sum)
					}
				}
			}
			if t.Failed() {
				t.Logf("audit show:\n%s", out)
			}
		})
	}
}

// breakdownSplit is the split of the JSON breakdown.
func breakdownSplit(b score.Breakdown) scoreSplit {
	rows := func(rs []score.Rule) []scoreRow {
		var out []scoreRow
		for _, r := range rs {
			out = append(out, scoreRow{r.ID, r.Points, r.SeverityName})
		}
		return out
	}
	sp := scoreSplit{
		Inbound: rows(b.Inbound), Outbound: rows(b.Outbound), InboundSum: b.InboundSum, OutboundSum: b.OutboundSum,
		RecordedInbound: b.RecordedInbound, RecordedOutbnd: b.RecordedOutbound,
		InboundDiffers: b.InboundSum != b.RecordedInbound, OutboundDiffers: b.OutboundSum != b.RecordedOutbound,
		Other: rows(b.Other),
	}
	for _, r := range b.Bookkeeping {
		sp.Bookkeeping = append(sp.Bookkeeping, r.ID)
	}
	return sp
}

// cliScoreSplit reads the score sections of `audit show`.
func cliScoreSplit(t *testing.T, out string) scoreSplit {
	t.Helper()
	var sp scoreSplit
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("not a number %q in:\n%s", s, out)
		}
		return n
	}
	section := ""
	headers := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case line == "":
			section = ""
		case strings.HasPrefix(line, "Anomaly score: "):
			if _, err := fmt.Sscanf(line, "Anomaly score: inbound %d, outbound %d", &sp.RecordedInbound, &sp.RecordedOutbnd); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			headers++
		case strings.HasPrefix(line, "Inbound scoring rules ("):
			section = "inbound"
		case line == "Outbound scoring rules":
			section = "outbound"
		case strings.HasPrefix(line, "CRS bookkeeping rules ("):
			section = "bookkeeping"
		case strings.HasPrefix(line, "Other rules ("):
			section = "other"
		case section == "" || f[0] == "RULE":
		case section == "inbound" || section == "outbound":
			sum, rows, differs := &sp.InboundSum, &sp.Inbound, &sp.InboundDiffers
			if section == "outbound" {
				sum, rows, differs = &sp.OutboundSum, &sp.Outbound, &sp.OutboundDiffers
			}
			switch {
			case f[0] == "total":
				*sum = atoi(f[1])
			case strings.HasPrefix(f[0], "(the"):
				*differs = true
			default:
				*rows = append(*rows, scoreRow{atoi(f[0]), atoi(f[1]), f[2]})
			}
		case section == "bookkeeping":
			if !strings.HasPrefix(line, "   ") { // indented further: the matched variable
				sp.Bookkeeping = append(sp.Bookkeeping, atoi(f[0]))
			}
		case section == "other":
			sev := f[1]
			if sev == "-" {
				sev = ""
			}
			sp.Other = append(sp.Other, scoreRow{atoi(f[0]), 0, sev})
		}
	}
	if headers != 1 {
		t.Fatalf("no score heading in:\n%s", out)
	}
	return sp
}

// pageScoreSplit reads the score panel of the dashboard's event page.
func pageScoreSplit(t *testing.T, page []byte) scoreSplit {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		t.Fatal(err)
	}
	byID := func(id string) *html.Node {
		var found *html.Node
		var walk func(*html.Node)
		walk = func(n *html.Node) {
			for _, a := range n.Attr {
				if a.Key == "id" && a.Val == id {
					found = n
				}
			}
			for c := n.FirstChild; c != nil && found == nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(doc)
		return found
	}
	var text func(*html.Node) string
	text = func(n *html.Node) string {
		if n.Type == html.TextNode {
			return n.Data
		}
		var b strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			b.WriteString(text(c))
		}
		return strings.TrimSpace(b.String())
	}
	number := func(id string) int {
		n := byID(id)
		if n == nil {
			return 0 // not shown: nothing to count
		}
		v, err := strconv.Atoi(text(n))
		if err != nil {
			t.Fatalf("#%s: %v", id, err)
		}
		return v
	}
	// rows returns the cells of each row of a table's body, and of its sum row.
	rows := func(id string) (cells [][]string, sum []string) {
		table := byID(id)
		if table == nil {
			return nil, nil
		}
		var walk func(*html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode && n.Data == "tr" && n.Parent.Data == "tbody" {
				var row []string
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.Type == html.ElementNode && c.Data == "td" {
						row = append(row, text(c))
					}
				}
				if slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == "class" && a.Val == "sum" }) {
					sum = row
				} else {
					cells = append(cells, row)
				}
				return
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(table)
		return cells, sum
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("not a number %q", s)
		}
		return n
	}
	if byID("score") == nil {
		t.Fatalf("no score panel:\n%s", page)
	}
	sp := scoreSplit{
		InboundSum: number("inbound-sum"), RecordedInbound: number("inbound-recorded"),
		OutboundSum: number("outbound-sum"), RecordedOutbnd: number("outbound-recorded"),
		InboundDiffers: byID("inbound-difference") != nil, OutboundDiffers: byID("outbound-difference") != nil,
	}
	for _, sec := range []struct {
		id   string
		rows *[]scoreRow
		sum  int
	}{{"inbound-rules", &sp.Inbound, sp.InboundSum}, {"outbound-rules", &sp.Outbound, sp.OutboundSum}} {
		cells, sum := rows(sec.id)
		for _, c := range cells {
			*sec.rows = append(*sec.rows, scoreRow{atoi(c[0]), atoi(c[3]), c[2]})
		}
		if cells != nil && (len(sum) < 2 || atoi(sum[1]) != sec.sum) {
			t.Errorf("#%s: sum row %q, the heading says %d", sec.id, sum, sec.sum)
		}
	}
	cells, _ := rows("bookkeeping-rules")
	for _, c := range cells {
		sp.Bookkeeping = append(sp.Bookkeeping, atoi(c[0]))
	}
	cells, _ = rows("other-rules")
	for _, c := range cells {
		sp.Other = append(sp.Other, scoreRow{atoi(c[0]), 0, c[2]})
	}
	return sp
}
