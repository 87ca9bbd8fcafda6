package config

import (
	"path/filepath"

	"github.com/portcullis-waf/portcullis/respond"
)

// BlockPages are a site's own refusal pages (see respond.PageData for the
// fields a template may use). They answer every refusal Portcullis itself
// produces for the site: WAF blocks, deny lists, GeoIP rules, bans, rate
// limits, oversized bodies, and its own errors (502, 503, 504). Responses
// of the upstream are never replaced.
type BlockPages struct {
	// HTML is a Go html/template file, used unless the client's Accept
	// prefers JSON. Relative to the configuration file's directory.
	// Default: the built-in neutral page.
	HTML string `yaml:"html"`
	// JSON is a Go text/template file whose output must be one JSON value
	// (write fields as {{json .RequestID}}), used when Accept prefers JSON.
	// Default: the built-in {"status", "error", "request_id"} document.
	JSON string `yaml:"json"`
}

// blockPages reads and checks the templates of bp (at field path p); the
// result is nil when bp sets none. Problems are reported at the template's
// own file and line, listed where the config names the file.
func (c *checker) blockPages(bp *BlockPages, p string) *respond.Pages {
	if bp == nil || (bp.HTML == "" && bp.JSON == "") {
		return nil
	}
	read := func(name, field string) (string, string, bool) {
		if name == "" {
			return "", "", true
		}
		path := name
		if !filepath.IsAbs(path) && c.file != "" {
			path = filepath.Join(filepath.Dir(c.file), path)
		}
		data, err := readLimited(path)
		if err != nil {
			c.errorf(field, "%v", err)
			return "", "", false
		}
		if len(data) == 0 {
			c.errorf(field, "template file %s is empty", path)
			return "", "", false
		}
		return path, string(data), true
	}
	htmlPath, htmlText, ok1 := read(bp.HTML, p+".html")
	jsonPath, jsonText, ok2 := read(bp.JSON, p+".json")
	if !ok1 || !ok2 {
		return nil
	}
	pages, errs := respond.ParsePages(htmlPath, htmlText, jsonPath, jsonText)
	for _, e := range errs {
		field := p + ".html"
		if e.File == jsonPath && jsonPath != "" {
			field = p + ".json"
		}
		c.errs = append(c.errs, &FieldError{File: e.File, Line: e.Line, Path: field, Msg: e.Msg, order: c.lineOf(field)})
	}
	return pages
}
