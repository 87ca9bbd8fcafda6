package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"go.yaml.in/yaml/v3"
)

// Attack sources other than our generators: Debian's wfuzz word lists and
// sqlmap payload definitions, and the CRS regression tests shipped in the
// coraza-coreruleset Go module.

const wfuzzDir = "/usr/share/wfuzz/wordlist"

func readLines(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s (apt-get install wfuzz): %w", p, err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

var (
	sqlWorking  = regexp.MustCompile(`(?i)(\b(or|and|union|select|exec|sleep|like|order\s+by|having|waitfor|xp_\w+|utl_http|insert|user\(\))\b|--|#|/\*)`)
	sqlBreakout = regexp.MustCompile(`['"0-9)]`)
	ldapFilter  = regexp.MustCompile(`^\*?\(\|?\(\w+=\*\)\)+$`)
)

// wfuzzAttacks turns wfuzz's injection and traversal lists into requests.
// Lines are put in the request target verbatim, as wfuzz does with FUZZ.
// Only lines that are a working attack on their own are kept: the lists
// also hold single characters and bare keywords ("'", "select", "asc")
// that probe for errors but are no attack.
func wfuzzAttacks(seed uint64) ([]Item, error) {
	r := rand.New(rand.NewPCG(seed, 0xf022))
	var out []Item
	add := func(class, file, line, placement string) {
		dec, err := url.PathUnescape(strings.ReplaceAll(line, "+", "%2B"))
		if err != nil {
			dec = line
		}
		enc := "none"
		if strings.Contains(strings.ToLower(dec), "%2e") || strings.Contains(strings.ToLower(dec), "%2f") || strings.Contains(strings.ToLower(dec), "%5c") {
			enc = "double_url"
		}
		host := pick(r, hosts)
		h, _ := headersFor(r, host, navigate, true)
		raw := targetSafe(line)
		it := Item{Set: setAttack, Class: class, Placement: placement, Encoding: enc, Source: "wfuzz:" + file, Payload: dec, Method: "GET", Headers: h}
		if placement == "path" {
			if !strings.HasPrefix(raw, "/") {
				raw = "/" + raw
			}
			it.Target = pick(r, []string{"/static", "/download", "/files", ""}) + raw
		} else {
			it.Target = pick(r, apiPaths) + "?" + pick(r, []string{"id", "q", "file", "page", "name", "search"}) + "=" + raw
		}
		out = append(out, it)
	}
	for _, f := range []string{"Injections/SQL.txt", "vulns/sql_inj.txt"} {
		lines, err := readLines(path.Join(wfuzzDir, f))
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			dec, _ := url.PathUnescape(l)
			switch {
			case ldapFilter.MatchString(dec):
				add("ldap", f, l, "query")
			case len(strings.TrimSpace(dec)) >= 5 && sqlWorking.MatchString(dec) && sqlBreakout.MatchString(dec) && !strings.Contains(dec, "&lt;"):
				add("sqli", f, l, "query")
			}
		}
	}
	lines, err := readLines(path.Join(wfuzzDir, "Injections/XSS.txt"))
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		if dec, _ := url.PathUnescape(l); strings.Contains(dec, "<") && (strings.Contains(strings.ToLower(dec), "script") || strings.Contains(strings.ToLower(dec), "on")) {
			add("xss", "Injections/XSS.txt", l, "query")
		}
	}
	for _, f := range []string{"Injections/Traversal.txt", "vulns/dirTraversal-nix.txt", "vulns/dirTraversal-win.txt", "vulns/dirTraversal.txt"} {
		lines, err := readLines(path.Join(wfuzzDir, f))
		if err != nil {
			return nil, err
		}
		var keep []string
		for _, l := range lines {
			l = strings.ReplaceAll(l, "{FILE}", pick(r, []string{"etc/passwd", "etc/shadow", "windows/win.ini", "boot.ini"}))
			if len(l) > 200 || strings.Contains(l, "AAAA") || !strings.ContainsAny(l, "./\\%") {
				continue
			}
			keep = append(keep, l)
		}
		// the long lists are permutations of a few patterns; a sample
		// keeps the class from being dominated by them
		r.Shuffle(len(keep), func(i, j int) { keep[i], keep[j] = keep[j], keep[i] })
		if len(keep) > 200 {
			keep = keep[:200]
		}
		for _, l := range keep {
			add("traversal", f, l, pick(r, []string{"query", "query", "path"}))
		}
	}
	return out, nil
}

// targetSafe escapes what cannot appear raw in a request target (spaces,
// controls, #, non-ASCII) and leaves the rest as the list has it.
func targetSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '#' || c == '"' || c == '<' || c == '>' || c == '`' || c == '{' || c == '}' || c == '|' || c == '\\' || c == '^' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// sqlmapAttacks expands sqlmap's tests into n requests in the placements
// sqlmap tests (GET and POST parameters, cookies, User-Agent, Referer).
func sqlmapAttacks(n int, seed uint64) ([]Item, error) {
	tests, bounds, err := loadSQLMap(sqlmapXMLDir)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 0x5b1))
	payloads := expandSQLMap(tests, bounds, n, r)
	var out []Item
	for _, p := range payloads {
		pl := pick(r, []string{"query", "query", "query", "form", "form", "json", "cookie", "header"})
		a := atk{value: p, param: pick(r, []string{"id", "cat", "user", "name", "item", "pid"})}
		it, ok := placeAttack(r, "sqli", a, pl, "none")
		if !ok {
			continue
		}
		it.Source = "sqlmap"
		out = append(out, it)
	}
	return out, nil
}

// crsClass maps a CRS rule id to our attack class, or "" when the rule
// detects something that is not one of our classes (PHP injection,
// session fixation, protocol anomalies).
func crsClass(id int) string {
	switch {
	case id >= 921120 && id <= 921160 || id == 921190:
		return "crlf"
	case id == 921200:
		return "ldap"
	case id >= 930100 && id <= 930130:
		return "traversal"
	case id >= 931100 && id <= 931131:
		return "ssrf"
	case id >= 932100 && id <= 932380:
		return "shell"
	case id == 934100 || id == 934101:
		return "deserialization"
	case id == 934110:
		return "ssrf"
	case id >= 941100 && id <= 941400:
		return "xss"
	case id >= 942100 && id <= 942560:
		return "sqli"
	case id == 944150 || id == 944151 || id == 944152:
		return "jndi"
	case id >= 944100 && id <= 944260:
		return "deserialization"
	}
	return ""
}

// notAttacks are CRS rules whose tests are statistical anomalies (many
// special characters, comment sequences, long arguments) rather than
// attacks; their positive tests are not working attacks.
var notAttacks = map[int]bool{942420: true, 942421: true, 942430: true, 942431: true, 942432: true, 942460: true, 942440: false}

type crsInput struct {
	Method         string            `yaml:"method"`
	URI            string            `yaml:"uri"`
	Version        string            `yaml:"version"`
	Headers        map[string]string `yaml:"headers"`
	Data           string            `yaml:"data"`
	EncodedRequest string            `yaml:"encoded_request"`
}

type crsFile struct {
	RuleID int `yaml:"rule_id"`
	Tests  []struct {
		TestID int `yaml:"test_id"`
		Stages []struct {
			Input  crsInput `yaml:"input"`
			Output struct {
				Log struct {
					ExpectIDs []int `yaml:"expect_ids"`
				} `yaml:"log"`
			} `yaml:"output"`
		} `yaml:"stages"`
	} `yaml:"tests"`
}

var plTag = regexp.MustCompile(`id:(\d+),[\s\S]*?tag:'paranoia-level/(\d)'`)

// crsParanoia reads each rule's paranoia level from the embedded rules.
func crsParanoia() (map[int]int, error) {
	out := map[int]int{}
	err := fs.WalkDir(coreruleset.FS, "@owasp_crs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".conf") {
			return err
		}
		b, err := fs.ReadFile(coreruleset.FS, p)
		if err != nil {
			return err
		}
		for _, rule := range strings.Split(string(b), "\nSecRule ") {
			if m := plTag.FindStringSubmatch(rule); m != nil {
				id, _ := strconv.Atoi(m[1])
				pl, _ := strconv.Atoi(m[2])
				if _, ok := out[id]; !ok {
					out[id] = pl
				}
			}
		}
		return nil
	})
	return out, err
}

// crsAttacks returns the positive tests of CRS attack rules at paranoia
// levels 1 and 2 as requests.
func crsAttacks() ([]Item, error) {
	pls, err := crsParanoia()
	if err != nil {
		return nil, fmt.Errorf("read CRS rules: %w", err)
	}
	var files []string
	err = fs.WalkDir(crstests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list CRS tests: %w", err)
	}
	sort.Strings(files)
	var out []Item
	for _, f := range files {
		b, err := fs.ReadFile(crstests.FS, f)
		if err != nil {
			return nil, err
		}
		var doc crsFile
		if err := yaml.Unmarshal(b, &doc); err != nil {
			continue // a few files use YAML features irrelevant here
		}
		class := crsClass(doc.RuleID)
		if class == "" || notAttacks[doc.RuleID] || pls[doc.RuleID] > 2 {
			continue
		}
		for _, t := range doc.Tests {
			for si, st := range t.Stages {
				if !containsInt(st.Output.Log.ExpectIDs, doc.RuleID) {
					continue
				}
				it, ok := crsItem(st.Input)
				if !ok {
					continue
				}
				it.Class = class
				it.Source = fmt.Sprintf("crs:%d/%d", doc.RuleID, t.TestID)
				if si > 0 {
					it.Source += fmt.Sprintf("/%d", si)
				}
				out = append(out, it)
			}
		}
	}
	return out, nil
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func crsItem(in crsInput) (Item, bool) {
	it := Item{Set: setAttack, Encoding: "none"}
	if in.EncodedRequest != "" {
		return it, false // raw protocol tests: not payloads in a placement
	}
	it.Method = in.Method
	if it.Method == "" {
		it.Method = "GET"
	}
	it.Target = in.URI
	if it.Target == "" {
		it.Target = "/"
	}
	names := make([]string, 0, len(in.Headers))
	for k := range in.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	hasCT := false
	for _, k := range names {
		if strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Transfer-Encoding") {
			continue
		}
		if strings.EqualFold(k, "Content-Type") {
			hasCT = true
		}
		it.Headers = append(it.Headers, [2]string{k, in.Headers[k]})
	}
	if it.Header("Host") == "" {
		it.Headers = append([][2]string{{"Host", "localhost"}}, it.Headers...)
	}
	if in.Data != "" && !hasCT {
		it.Headers = append(it.Headers, [2]string{"Content-Type", "application/x-www-form-urlencoded"})
	}
	it.Body = in.Data
	// where the attack is, roughly: the body, the query, a cookie or
	// another header
	ct := strings.ToLower(it.Header("Content-Type"))
	switch {
	case in.Data != "" && strings.Contains(ct, "json"):
		it.Placement = "json"
	case in.Data != "" && strings.Contains(ct, "xml"):
		it.Placement = "xml"
	case in.Data != "" && strings.Contains(ct, "multipart"):
		it.Placement = "multipart"
	case in.Data != "" && strings.Contains(ct, "urlencoded"):
		it.Placement = "form"
	case in.Data != "":
		it.Placement = "body"
	case strings.Contains(it.Target, "?"):
		it.Placement = "query"
	case it.Header("Cookie") != "":
		it.Placement = "cookie"
	case len(in.Headers) > 3:
		it.Placement = "header"
	default:
		it.Placement = "path"
	}
	it.Payload = in.Data
	if it.Payload == "" {
		it.Payload = it.Target
	}
	if _, err := it.Request(); err != nil {
		return it, false
	}
	if _, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(mustRaw(&it)))); err != nil {
		return it, false
	}
	return it, true
}

func mustRaw(it *Item) []byte {
	b, _ := it.Raw()
	return b
}
