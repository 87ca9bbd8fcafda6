package sqli

import (
	"testing"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// TestScriptAndQuotationShapes: JavaScript in CSP report script samples
// (an empty array "[]" is no SQL identifier in any dialect) and short
// quoted tokens in sentences ("the special argument '--' marks …": the
// quote opens a quotation, it does not close the application's literal)
// are not injections; the same breakouts after a word still are.
func TestScriptAndQuotationShapes(t *testing.T) {
	d := New()
	for _, tt := range []struct {
		v      string
		where  detect.Where
		attack bool
	}{
		{"window.dataLayer = window.dataLayer || [];", detect.WhereJSON, false},
		{"a.b = a.b || [];", detect.WhereJSON, false},
		{"self.queue = self.queue || [ ]", detect.WhereJSON, false},
		{"The special argument '--' marks the end of client arguments and the beginning of server options.", detect.WhereJSON, false},
		{`The "#5" means that this is the fifth kernel built from this source base.`, detect.WhereJSON, false},
		{"Type '--', then the file name.", detect.WhereForm, false},
		{`x+n で開始し、 "--queue-balance x:x+n" を使用する`, detect.WhereJSON, false},
		{"Jean-Normand Union", detect.WhereForm, false},
		{"Maison Union", detect.WhereForm, false},
		// breakouts
		{"1 UNION SELECT 1,2", detect.WhereQuery, true},
		{"x' UNION ALL", detect.WhereQuery, true},
		{"1 OR [id]=[id]", detect.WhereQuery, true},
		{"x' OR [a]=[a]--", detect.WhereQuery, true},
		{"admin'--", detect.WhereForm, true},
		{"admin' #", detect.WhereForm, true},
		{`admin"-- `, detect.WhereForm, true},
		{"x' OR 'a'='a' -- '", detect.WhereForm, true},
		// a quotation the value ends with is no sentence: the query ends there
		{"admin '-- '", detect.WhereForm, true},
		{"admin '#'", detect.WhereForm, true},
		{"admin '-- ' x", detect.WhereForm, true},
	} {
		f, ok := d.Detect(detect.Input{Value: tt.v, Where: tt.where})
		if got := ok && f.Confidence >= 70; got != tt.attack {
			t.Errorf("%q: finding %+v ok=%v, want attack=%v", tt.v, f, ok, tt.attack)
		}
	}
}

// TestDelaySubqueryInEveryContext: a parenthesised subquery that calls a
// delay function, placed after a quote the value closes, is found in
// that quote's context, not only in number context.
func TestDelaySubqueryInEveryContext(t *testing.T) {
	d := New()
	for _, tt := range []struct {
		v      string
		attack bool
	}{
		{"' (SELECT 0 WHERE 1=1 AND SLEEP(5)) '", true},
		{"' (SELECT\t0\r\nWHERE 1=1  AND  SLEEP(5)) '", true},
		{"\" (SELECT pg_sleep(5)) \"", true},
		{"1(select*from(select(sleep(5)))d)", true},
		{"He said 'sleep (5 hours) is what I need'", false},
		{"'(select the best option)'", false},
	} {
		f, ok := d.Detect(detect.Input{Value: tt.v, Where: detect.WhereJSON})
		if got := ok && f.Confidence >= 70; got != tt.attack {
			t.Errorf("%q: finding %+v ok=%v, want attack=%v", tt.v, f, ok, tt.attack)
		}
	}
}
