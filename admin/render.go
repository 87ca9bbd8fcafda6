package admin

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/review/score"
)

// The dashboard's templates and assets are compiled in: the admin listener
// serves nothing from disk and loads nothing from other origins.
//
//go:embed ui/templates/*.html ui/static/*
var uiFS embed.FS

// pageNames are the templates under ui/templates besides layout.html.
var pageNames = []string{"overview", "events", "event", "bans", "login", "error", "console", "console_mode"}

type pageSet struct {
	pages map[string]*template.Template
}

func loadPages() (*pageSet, error) {
	funcs := template.FuncMap{
		"lower": strings.ToLower,
		"num":   thousands,
		"ruleURL": func(id int) string {
			return link("/events", query.Filter{RuleIDs: []int{id}})
		},
		"scoreLegend": score.Legend,
		"severityClass": func(s string) string {
			switch s {
			case "critical", "error", "warning", "notice":
				return "sev-" + s
			}
			return "sev-other"
		},
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(uiFS, "ui/templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("admin: layout template: %w", err)
	}
	ps := &pageSet{pages: map[string]*template.Template{}}
	for _, n := range pageNames {
		t, err := template.Must(layout.Clone()).ParseFS(uiFS, "ui/templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("admin: template %s: %w", n, err)
		}
		ps.pages[n] = t
	}
	return ps, nil
}

// layoutData is what every page's frame needs.
type layoutData struct {
	Title    string
	Page     string
	User     string
	CSRF     string
	Bans     bool
	Console  bool
	Logout   bool
	LoggedIn bool
	Content  any
}

// render executes page into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page, title string, content any) {
	p := principalFrom(r.Context())
	d := layoutData{Title: title, Page: page, User: p.Name, Bans: s.opts.Bans != nil, Console: s.opts.Console != nil,
		Logout: p.Kind == "user", LoggedIn: p.Kind != "", Content: content}
	if p.binding != "" {
		d.CSRF = s.auth.csrfToken(p.binding)
	}
	var buf bytes.Buffer
	if err := s.pages.pages[page].ExecuteTemplate(&buf, "layout.html", d); err != nil {
		s.log.Error("admin: render failed", "page", page, "error", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client went away; nothing left to tell it
}

// staticHandler serves the embedded stylesheet and script.
func staticHandler() http.Handler {
	sub, err := fs.Sub(uiFS, "ui/static")
	if err != nil {
		panic(err) // the directory is embedded above; this cannot fail
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// thousands writes n with thousands separators: 1234567 → 1,234,567.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
