package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// Text from Debian packages, for the benign corpus: manual pages in several
// languages, HTML and markdown documentation that talks about SQL, shell,
// JavaScript and HTML, licenses and package descriptions. Files are taken
// from a fixed list of packages (dpkg -L), in sorted order, so the corpus
// is the same on every machine with the same package versions; the
// versions are part of the sources fingerprint.

// textPackages are the Debian packages the benign text comes from. setup
// installs the ones that are missing.
var textPackages = []string{
	// manual pages: English, and translations
	"manpages", "manpages-dev", "coreutils", "bash", "findutils", "grep", "sed", "tar", "gzip", "dpkg", "apt", "util-linux", "procps", "man-db",
	"manpages-de", "manpages-fr", "manpages-es", "manpages-ja", "manpages-ru", "manpages-pl", "manpages-it", "manpages-pt-br",
	// documentation full of SQL, shell, JavaScript and HTML
	"postgresql-doc-15", "sqlite3-doc", "bash-doc", "nodejs-doc", "debian-reference-en",
}

// toolPackages are the attack tools whose data the attack corpus reads,
// and the browser the browser corpus drives.
var toolPackages = []string{"sqlmap", "wfuzz", "chromium"}

// Texts is the text pool the benign generators draw from.
type Texts struct {
	Prose       map[string][]string // language → paragraphs
	Code        map[string][]string // sql, shell, js, html, c → snippets from documentation
	Titles      []string            // short titles: man NAME lines, doc headings
	Markdown    []string            // markdown documents (sections)
	Words       map[string][]string // language → words for search queries
	Names       []string            // first names
	PDFs        []string            // paths of PDF files to upload
	Fingerprint string
}

// pkgFiles lists the regular files of an installed package, sorted.
func pkgFiles(pkg string) ([]string, string, error) {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil || len(out) == 0 {
		return nil, "", fmt.Errorf("package %s is not installed (run: go run ./bench/detection -setup)", pkg)
	}
	version := string(out)
	list, err := exec.Command("dpkg", "-L", pkg).Output()
	if err != nil {
		return nil, "", fmt.Errorf("dpkg -L %s: %w", pkg, err)
	}
	var files []string
	for _, f := range strings.Split(string(list), "\n") {
		if st, err := os.Lstat(f); err == nil && st.Mode().IsRegular() {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	return files, version, nil
}

func readMaybeGzip(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(p, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return io.ReadAll(io.LimitReader(zr, 4<<20))
	}
	return b, nil
}

var manLang = regexp.MustCompile(`^/usr/share/man/([a-z]{2}(?:_[A-Z]{2})?)/man`)

// loadTexts reads every text package.
func loadTexts() (*Texts, error) {
	t := &Texts{Prose: map[string][]string{}, Code: map[string][]string{}, Words: map[string][]string{}}
	fp := sha256.New()
	for _, pkg := range textPackages {
		files, version, err := pkgFiles(pkg)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(fp, "%s=%s\n", pkg, version)
		for _, f := range files {
			switch {
			case strings.HasPrefix(f, "/usr/share/man/") && strings.HasSuffix(f, ".gz"):
				lang := "en"
				if m := manLang.FindStringSubmatch(f); m != nil {
					lang = m[1]
				}
				b, err := readMaybeGzip(f)
				if err != nil || !utf8.Valid(b) {
					continue
				}
				t.addMan(lang, string(b))
			case strings.HasSuffix(f, ".html"):
				b, err := os.ReadFile(f)
				if err != nil {
					continue
				}
				t.addHTML(pkg, b)
			case strings.HasSuffix(f, ".md.gz") || strings.HasSuffix(f, ".md"):
				b, err := readMaybeGzip(f)
				if err != nil {
					continue
				}
				t.addMarkdown(string(b))
			}
		}
	}
	for _, l := range []string{"/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0", "/usr/share/common-licenses/MPL-2.0", "/usr/share/common-licenses/Artistic"} {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		fmt.Fprintf(fp, "%s %x\n", l, sha256.Sum256(b))
		t.Prose["en"] = append(t.Prose["en"], paragraphs(string(b))...)
	}
	names, err := readLines(filepath.Join(wfuzzDir, "others/names.txt"))
	if err == nil {
		t.Names = names
	}
	for lang, ps := range t.Prose {
		seen := map[string]bool{}
		for _, p := range ps {
			for _, w := range strings.FieldsFunc(p, func(r rune) bool { return strings.ContainsRune(" \t\n.,;:()[]\"'!?«»“”„", r) }) {
				if utf8.RuneCountInString(w) >= 3 && utf8.RuneCountInString(w) <= 20 && !seen[w] {
					seen[w] = true
					t.Words[lang] = append(t.Words[lang], w)
				}
			}
		}
	}
	t.Fingerprint = hex.EncodeToString(fp.Sum(nil))[:16]
	return t, nil
}

// paragraphs splits text at blank lines and joins wrapped lines.
func paragraphs(s string) []string {
	var out []string
	for _, p := range regexp.MustCompile(`\n\s*\n`).Split(s, -1) {
		p = strings.Join(strings.Fields(p), " ")
		if len(p) >= 40 && len(p) <= 3000 {
			out = append(out, p)
		}
	}
	return out
}

var (
	roffFont    = regexp.MustCompile(`\\f(\[[^\]]*\]|\(..|.)`)
	roffSpecial = regexp.MustCompile(`\\\(..|\\\[[^\]]*\]|\\\*\(..|\\\*\[[^\]]*\]|\\\*.|\\s[-+]?\d|\\[&|^%:c]`)
	roffNamed   = map[string]string{`\(aq`: "'", `\(dq`: `"`, `\(em`: "—", `\(en`: "–", `\(lq`: "“", `\(rq`: "”", `\(oq`: "‘", `\(cq`: "’", `\(bu`: "•", `\(co`: "©", `\(rs`: `\`, `\[aq]`: "'", `\[dq]`: `"`, `\[em]`: "—", `\[lq]`: "„", `\[rq]`: "“", `\(Fo`: "«", `\(Fc`: "»", `\[Fo]`: "«", `\[Fc]`: "»"}
)

// roffText turns one line of roff source into plain text.
func roffText(s string) string {
	for k, v := range roffNamed {
		s = strings.ReplaceAll(s, k, v)
	}
	s = roffFont.ReplaceAllString(s, "")
	s = strings.NewReplacer(`\-`, "-", `\e`, `\`, `\ `, " ", `\~`, " ", `\.`, ".", `\'`, "'", "\\\"", "").Replace(s)
	s = roffSpecial.ReplaceAllString(s, "")
	return s
}

// addMan extracts prose paragraphs, the NAME line and example blocks from
// a manual page's roff source.
func (t *Texts) addMan(lang, src string) {
	var para, code []string
	section := ""
	inCode := false
	flush := func() {
		if len(para) > 0 {
			p := strings.Join(strings.Fields(strings.Join(para, " ")), " ")
			switch {
			case section == "NAME" || section == "BEZEICHNUNG" || section == "NOM" || section == "NOMBRE" || section == "名前" || section == "ИМЯ" || section == "NAZWA" || section == "NOME":
				if len(p) > 5 && len(p) < 200 {
					t.Titles = append(t.Titles, p)
				}
			case len(p) >= 40 && len(p) <= 3000:
				t.Prose[lang] = append(t.Prose[lang], p)
			}
			para = nil
		}
		if len(code) > 0 {
			c := strings.TrimSpace(strings.Join(code, "\n"))
			if len(c) >= 8 && len(c) <= 2000 {
				kind := "shell"
				if strings.Contains(c, "#include") || strings.Contains(c, "int main") {
					kind = "c"
				}
				t.Code[kind] = append(t.Code[kind], c)
			}
			code = nil
		}
	}
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(line, `.\"`) || strings.HasPrefix(line, `'\"`) {
			continue
		}
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			macro := f[0]
			rest := strings.TrimSpace(strings.TrimPrefix(line, macro))
			switch macro {
			case ".SH", ".SS":
				flush()
				section = strings.Trim(roffText(rest), `" `)
			case ".PP", ".P", ".LP", ".TP", ".IP", ".HP", ".sp", ".br", ".RS", ".RE", ".in":
				flush()
				if macro == ".IP" && rest != "" && !inCode {
					para = append(para, strings.Trim(roffText(strings.Fields(rest)[0]), `"`))
				}
			case ".nf", ".EX":
				flush()
				inCode = true
			case ".fi", ".EE":
				flush()
				inCode = false
			case ".B", ".I", ".SM", ".SB":
				if inCode {
					code = append(code, roffText(strings.Trim(rest, `"`)))
				} else {
					para = append(para, roffText(strings.Trim(rest, `"`)))
				}
			case ".BR", ".BI", ".IB", ".IR", ".RB", ".RI":
				words := splitRoffArgs(rest)
				txt := roffText(strings.Join(words, ""))
				if inCode {
					code = append(code, txt)
				} else {
					para = append(para, txt)
				}
			}
			continue
		}
		if inCode {
			code = append(code, roffText(line))
		} else {
			para = append(para, roffText(line))
		}
	}
	flush()
}

func splitRoffArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inQ := false
	for _, c := range s {
		switch {
		case c == '"':
			inQ = !inQ
		case c == ' ' && !inQ:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// addHTML takes <p> paragraphs as prose and <pre> blocks as code, guessing
// the code's language from the package.
func (t *Texts) addHTML(pkg string, b []byte) {
	z := html.NewTokenizer(bytes.NewReader(b))
	var buf strings.Builder
	mode := "" // "p", "pre", "h"
	depth := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "p", "pre", "h1", "h2", "h3", "dd", "li":
				if mode == "" {
					mode = string(name)
					depth = 0
					buf.Reset()
				} else if string(name) == mode {
					depth++
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if string(name) != mode {
				continue
			}
			if depth > 0 {
				depth--
				continue
			}
			txt := buf.String()
			switch mode {
			case "pre":
				c := strings.TrimSpace(txt)
				if len(c) >= 8 && len(c) <= 2500 {
					t.Code[codeKind(pkg, c)] = append(t.Code[codeKind(pkg, c)], c)
				}
			case "h1", "h2", "h3":
				h := strings.Join(strings.Fields(txt), " ")
				if len(h) > 5 && len(h) < 150 {
					t.Titles = append(t.Titles, h)
				}
			default:
				p := strings.Join(strings.Fields(txt), " ")
				if len(p) >= 40 && len(p) <= 3000 {
					t.Prose["en"] = append(t.Prose["en"], p)
				}
			}
			mode = ""
		case html.TextToken:
			if mode != "" {
				buf.Write(z.Text())
			}
		}
	}
}

func codeKind(pkg, c string) string {
	switch {
	case strings.HasPrefix(pkg, "postgresql") || strings.HasPrefix(pkg, "sqlite"):
		u := strings.ToUpper(c)
		if strings.Contains(u, "SELECT") || strings.Contains(u, "CREATE") || strings.Contains(u, "INSERT") || strings.Contains(u, "UPDATE") || strings.Contains(u, "DELETE") {
			return "sql"
		}
		return "shell"
	case strings.HasPrefix(pkg, "nodejs"):
		return "js"
	case strings.Contains(c, "<html") || strings.Contains(c, "<div") || strings.Contains(c, "<script"):
		return "html"
	}
	return "shell"
}

var fence = regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```")

// addMarkdown keeps sections of markdown documents as they are (for the
// markdown kinds) and their fenced code blocks as code.
func (t *Texts) addMarkdown(s string) {
	for _, m := range fence.FindAllStringSubmatch(s, -1) {
		c := strings.TrimSpace(m[2])
		if len(c) < 8 || len(c) > 2500 {
			continue
		}
		kind := "js"
		switch m[1] {
		case "bash", "console", "sh":
			kind = "shell"
		case "c", "cpp":
			kind = "c"
		case "html":
			kind = "html"
		}
		t.Code[kind] = append(t.Code[kind], c)
	}
	for _, sec := range regexp.MustCompile(`\n## `).Split(s, -1) {
		sec = strings.TrimSpace(sec)
		if len(sec) > 200 && len(sec) < 6000 {
			t.Markdown = append(t.Markdown, "## "+strings.TrimPrefix(sec, "# "))
		}
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "# ") || strings.HasPrefix(l, "## ") {
			t.Titles = append(t.Titles, strings.TrimLeft(l, "# "))
		}
	}
}
