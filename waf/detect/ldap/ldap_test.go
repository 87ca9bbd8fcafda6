package ldap

import (
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/waf/detect"
	tt "github.com/portcullis-waf/portcullis/waf/detect/internal/tabletest"
)

const (
	q    = detect.WhereQuery
	form = detect.WhereForm
	js   = detect.WhereJSON
	hdr  = detect.WhereHeader
	ck   = detect.WhereCookie
)

var cases = []tt.Case{
	// Closing the assertion and adding components.
	{Value: "*)(|(objectclass=*))", Where: form, Want: tt.Attack},
	{Value: "*)(uid=*))(|(uid=*", Where: form, Want: tt.Attack},
	{Value: "admin)(&)", Where: form, Want: tt.Attack},
	{Value: "admin)(&))", Where: form, Want: tt.Attack},
	{Value: "admin)(|)", Where: form, Want: tt.Attack},
	{Value: "x)(|(password=*))", Where: form, Want: tt.Attack},
	{Value: "x)(|(userPassword=a*", Where: form, Want: tt.Attack},
	{Value: "jsmith)(!(cn=nobody))", Where: q, Want: tt.Attack},
	{Value: "jsmith)(cn=admin", Where: q, Want: tt.Attack},
	{Value: "alice)(mail=alice@example.com", Where: js, Want: tt.Attack},
	{Value: "admin))(|(objectClass=*", Where: form, Want: tt.Attack},
	{Value: "admin)))(&(uid=admin", Where: form, Want: tt.Attack},
	{Value: "*)(objectClass=user)(sAMAccountName=*", Where: form, Want: tt.Attack},
	{Value: "x)(2.5.4.3=*", Where: form, Want: tt.Attack},
	{Value: "x)(cn:dn:2.4.6.8.10:=Dino", Where: form, Want: tt.Attack},
	{Value: "x)(cn;lang-en=*)", Where: form, Want: tt.Attack},
	{Value: "x)(uidNumber>=0", Where: form, Want: tt.Attack},
	{Value: "x)(cn~=admin", Where: form, Want: tt.Attack},
	{Value: "admin)\x00", Where: form, Want: tt.Attack},
	{Value: "*))\x00", Where: form, Want: tt.Attack},
	{Value: "admin)(|(a=b)(c=d))\x00trailing", Where: form, Want: tt.Attack},
	{Value: "printer)(uid=*))(|(uid=*", Where: q, Want: tt.Attack},
	{Value: "void)(objectCategory=computer)(description=*pass*", Where: ck, Want: tt.Attack},
	{Value: "x)(!(|(a=1)(b=2)))", Where: hdr, Want: tt.Attack},
	{Value: "a\\29b)(|(cn=*))", Where: form, Want: tt.Attack},

	{Value: "root) (|(userPassword=*))", Where: q, Want: tt.Attack},
	{Value: "*) (sn=*)) (|(sn=*", Where: form, Want: tt.Attack},
	{Value: "svc) (&)", Where: form, Want: tt.Attack},
	{Value: "guest*)((|mail=*)", Where: form, Want: tt.Attack},
	{Value: "x) (mail=a) (mail=b)", Where: form, Want: tt.Attack},
	// Complete composite filters carried whole.
	{Value: "(|(uid=*)(cn=*))", Where: q, Want: tt.Attack},
	{Value: "(&(objectClass=person)(uid=admin))", Where: q, Want: tt.Attack},
	{Value: "*(|(mail=*))", Where: q, Want: tt.Attack},
	{Value: "*(|(objectclass=*))", Where: q, Want: tt.Attack},
	{Value: "(!(userAccountControl:1.2.840.113556.1.4.803:=2))", Where: q, Want: tt.Attack},

	// Near-misses.
	{Value: "John (Jack) Smith", Where: form, Want: tt.None},
	{Value: "Nice one :)", Where: form, Want: tt.None},
	{Value: ":)", Where: form, Want: tt.None},
	{Value: ":-) (see attached)", Where: form, Want: tt.None},
	{Value: "foo*", Where: q, Want: tt.None},
	{Value: "*", Where: q, Name: "ARGS:q", Want: tt.Benign},
	{Value: "*", Where: form, Name: "ARGS:password", Want: tt.Weak},
	{Value: "(555) 123-4567", Where: form, Want: tt.None},
	{Value: "1) first item 2) second item", Where: form, Want: tt.None},
	{Value: "a) b (c)", Where: form, Want: tt.None},
	{Value: "x)(y)", Where: form, Want: tt.None},
	{Value: "f(x)(y=2)", Where: form, Want: tt.None},
	{Value: "(a+b)(c=d)", Where: form, Want: tt.None},
	{Value: "max(a, b)", Where: form, Want: tt.None},
	{Value: "if (x == 1) { y = 2 }", Where: form, Want: tt.None},
	{Value: "Price (incl. VAT): 12.50", Where: form, Want: tt.None},
	{Value: "smile :) (really)", Where: form, Want: tt.None},
	{Value: "O'Brien (née Kelly)", Where: form, Want: tt.None},
	{Value: "(see page 4)", Where: form, Want: tt.None},
	{Value: "done)", Where: form, Want: tt.None},
	{Value: "ok) (and=more)", Where: form, Want: tt.None},
	{Value: "Use a filter like (&(objectClass=user)(cn=x)) in ldapsearch", Where: form, Want: tt.Weak},
	{Value: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)", Where: hdr, Want: tt.None},
	{Value: "a\\29(cn=x)", Where: form, Want: tt.None},
	{Value: "\x89PNG\r\n\x1a\n\x00\x00)\x00\x00", Where: detect.WhereBody, Want: tt.None},
	{Value: "step 1) (see fig=3)", Where: form, Want: tt.None},
	{Value: "chapter 2) (page=4) and more", Where: form, Want: tt.None},
	{Value: "=)(=", Where: form, Want: tt.None},
}

func TestDetect(t *testing.T) { tt.Run(t, New(), cases) }

const maxStepsPerByte = 6

func steps(in detect.Input) (detect.Finding, bool, int) {
	var s scan
	f, ok := s.run(in)
	return f, ok, s.steps
}

func TestStepsLinear(t *testing.T) {
	for _, unit := range []string{"(|", "(&(a=b)", "(|(a=b)(", ")(", "x)(a=*", "(!(", "\\", "(|(a=b))"} {
		v := strings.Repeat(unit, 20000)
		_, _, n := steps(detect.Input{Value: v, Where: q})
		if bound := tt.StepBound(len(v), maxStepsPerByte, 64); n > bound {
			t.Errorf("%q x 20000: %d steps > %d", unit, n, bound)
		}
	}
}

func FuzzDetect(f *testing.F) {
	tt.Seeds(f, cases)
	d := New()
	f.Fuzz(func(t *testing.T, v string, where uint8) {
		in := detect.Input{Value: v, Where: detect.Where(where % 11), Name: "ARGS:user"}
		fd, ok, n := steps(in)
		if err := tt.Invariants(d, in, fd, ok); err != nil {
			t.Fatal(err)
		}
		if bound := tt.StepBound(len(v), maxStepsPerByte, 64); n > bound {
			t.Fatalf("%d steps for %d bytes > %d", n, len(v), bound)
		}
	})
}

var benignInputs = []detect.Input{
	{Value: "jsmith", Where: form},
	{Value: "John (Jack) Smith", Where: form},
	{Value: "Hello, I would like to change my delivery address to 12 Main St.", Where: form},
	{Value: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Where: hdr},
	{Value: "Thanks :)", Where: form},
	{Value: "42", Where: q},
}

var attackInputs = []detect.Input{
	{Value: "*)(|(objectclass=*))", Where: form},
	{Value: "*)(uid=*))(|(uid=*", Where: form},
	{Value: "admin)(&))", Where: form},
	{Value: "x)(|(password=*))", Where: form},
	{Value: "(|(uid=*)(cn=*))", Where: q},
	{Value: "admin)\x00", Where: form},
}

func BenchmarkDetect(b *testing.B) {
	b.Run("benign", func(b *testing.B) { tt.Bench(b, New(), benignInputs) })
	b.Run("attack", func(b *testing.B) { tt.Bench(b, New(), attackInputs) })
}

// TestOperatorAfterClose (issue 15): an operator directly after the
// closing parenthesis, opening a new filter, is a breakout lenient
// servers accept; the same punctuation in text is not.
func TestOperatorAfterClose(t *testing.T) {
	d := New()
	for _, c := range []tt.Case{
		{Value: "eb9adbd87d)!(sn=*", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "admin)|(uid=*", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "x)&(objectClass=*", Where: detect.WhereJSON, Want: tt.Attack},
		{Value: "great (really)! (yes)", Where: detect.WhereForm, Want: tt.None},
		{Value: "smile :)!", Where: detect.WhereForm, Want: tt.None},
		{Value: "f(x)!(y)", Where: detect.WhereQuery, Want: tt.None},
	} {
		in := c.Input()
		f, ok := d.Detect(in)
		if err := tt.Invariants(d, in, f, ok); err != nil {
			t.Error(err)
		}
		if pass, why := tt.Check(c.Want, f, ok); !pass {
			t.Errorf("%q (%s): want %s: %s", c.Value, c.Where, c.Want, why)
		}
	}
}
