package nosql

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
	an   = detect.WhereArgName
	body = detect.WhereBody
	ck   = detect.WhereCookie
)

var cases = []tt.Case{
	// Operators in argument names (qs-style brackets).
	{Value: "user[$ne]", Where: an, Want: tt.Attack},
	{Value: "password[$ne]", Where: an, Want: tt.Attack},
	{Value: "username[$gt]", Where: an, Want: tt.Attack},
	{Value: "password[$regex]", Where: an, Want: tt.Attack},
	{Value: "login[$exists]", Where: an, Want: tt.Attack},
	{Value: "email[$in][]", Where: an, Want: tt.Attack},
	{Value: "pin[$nin][0]", Where: an, Want: tt.Attack},
	{Value: "id[$ne]", Where: an, Want: tt.Attack},
	{Value: "$where", Where: an, Want: tt.Attack},
	{Value: "filter[$where]", Where: an, Want: tt.Attack},
	{Value: "user[$function][body]", Where: an, Want: tt.Attack},
	{Value: "token[$gte]", Where: an, Want: tt.Attack},
	{Value: "user.$ne", Where: an, Want: tt.Attack},
	{Value: "x", Where: form, Name: "ARGS:password[$ne]", Want: tt.Attack},
	{Value: ".*", Where: q, Name: "ARGS:password[$regex]", Want: tt.Attack},
	{Value: "", Where: js, Name: "JSON:username.$gt", Want: tt.Attack},
	{Value: "null", Where: js, Name: "JSON:credentials.password.$ne", Want: tt.Attack},
	{Value: "sleep(5000)", Where: js, Name: "JSON:$where", Want: tt.Attack},
	{Value: "return true", Where: q, Name: "ARGS:$where", Want: tt.Attack},

	// Operator objects in JSON bodies and JSON-in-a-parameter.
	{Value: `{"username": {"$ne": null}, "password": {"$ne": null}}`, Where: body, Want: tt.Attack},
	{Value: `{"username":"admin","password":{"$gt":""}}`, Where: body, Want: tt.Attack},
	{Value: `{"user":{"$regex":"^adm"},"pass":{"$regex":".*"}}`, Where: body, Want: tt.Attack},
	{Value: `{"$where": "this.password.length > 0"}`, Where: body, Want: tt.Attack},
	{Value: `{"$where": "function() { return true; }"}`, Where: body, Want: tt.Attack},
	{Value: `{"name": {"$function": {"body": "function(){return 1}", "args": [], "lang": "js"}}}`, Where: body, Want: tt.Attack},
	{Value: `{"$expr": {"$function": {"body": "function(){sleep(3000)}", "args": [], "lang": "js"}}}`, Where: body, Want: tt.Attack},
	{Value: `{"login": {"$in": ["admin", "root"]}}`, Where: body, Want: tt.Attack},
	{Value: `{"$or": [{"user": "a"}, {"user": {"$exists": true}}]}`, Where: body, Want: tt.Attack},
	{Value: `[{"$lookup": {"from": "users", "localField": "a", "foreignField": "b", "as": "c"}}]`, Where: body, Want: tt.Attack},
	{Value: `{"group": {"$accumulator": {"init": "function(){}", "accumulate": "function(){}"}}}`, Where: body, Want: tt.Attack},
	{Value: `{"$set": {"role": "admin"}}`, Where: body, Want: tt.Attack},
	{Value: `{"$ne": 1}`, Where: q, Name: "ARGS:user", Want: tt.Attack},
	{Value: `{$ne: null}`, Where: q, Name: "ARGS:password", Want: tt.Attack},
	{Value: `{"$gt": ""}`, Where: ck, Name: "REQUEST_COOKIES:session", Want: tt.Attack},

	// $where JavaScript pasted into a value.
	{Value: "'; return true; var a='", Where: form, Want: tt.Attack},
	{Value: "' || this.password.match(/.*/) || '", Where: form, Want: tt.Attack},
	{Value: "this.password.match(/^a.*/)", Where: form, Want: tt.Attack},
	{Value: "1; while(true){}", Where: q, Want: tt.Attack},
	{Value: "1; sleep(5000)", Where: q, Want: tt.Attack},
	{Value: "a'; sleep(3000); var x='", Where: form, Want: tt.Attack},
	{Value: "' && this.username == 'admin' && '1'=='1", Where: form, Want: tt.Attack},
	{Value: "0; db.users.drop()", Where: form, Want: tt.Attack},
	{Value: "\"; return(true); var b=\"", Where: js, Want: tt.Attack},

	{Value: "'; return db.accounts.find(); var y='", Where: form, Want: tt.Attack},
	{Value: "0;var t0=new Date(); do{t1 = new Date();}while(t1-t0<3000)", Where: q, Want: tt.Attack},
	{Value: "' || 2==2//", Where: form, Want: tt.Attack},
	{Value: "' || 'x'=='x", Where: js, Want: tt.Attack},
	{Value: "'; while(1){}; '", Where: an, Want: tt.Attack},
	{Value: "2; return true", Where: an, Want: tt.Attack},

	// Near-misses.
	{Value: "costs $5", Where: form, Want: tt.None},
	{Value: "Use $ne to compare values in MongoDB", Where: form, Want: tt.None},
	{Value: "I paid US$20 and €15", Where: form, Want: tt.None},
	{Value: "$HOME/bin", Where: form, Want: tt.None},
	{Value: "user[name]", Where: an, Want: tt.None},
	{Value: "items[0][price]", Where: an, Want: tt.None},
	{Value: "filters[title][$eq]", Where: an, Want: tt.Benign},
	{Value: "filters[$or][0][date][$lt]", Where: an, Want: tt.Benign},
	{Value: "hello", Where: q, Name: "ARGS:filters[title][$containsi]", Want: tt.Benign},
	{Value: `{"_id": {"$oid": "5f1d7f5e2c3b4a0012345678"}, "created": {"$date": "2024-01-02T03:04:05Z"}}`, Where: body, Want: tt.None},
	{Value: `{"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "$ref": "#/$defs/a"}`, Where: body, Want: tt.None},
	{Value: `{"price": "$5.00", "currency": "USD"}`, Where: body, Want: tt.None},
	{Value: `{"template": "Hello ${name}"}`, Where: body, Want: tt.None},
	{Value: "In Mongo you write { \"age\": { \"$gt\": 18 } } to filter adults", Where: form, Want: tt.Benign},
	{Value: "Sleep well, and return tomorrow", Where: form, Want: tt.None},
	{Value: "this is the best product", Where: form, Want: tt.None},
	{Value: "while you wait, read this.", Where: form, Want: tt.None},
	{Value: "I need more sleep (8 hours) every night, and this.. is why", Where: form, Want: tt.Benign},
	{Value: "return policy: 30 days", Where: form, Want: tt.None},
	{Value: "function", Where: q, Want: tt.None},
	{Value: "db.example.com", Where: q, Want: tt.None},
	{Value: "In React you write this.setState({a: 1}) inside a handler method", Where: form, Want: tt.Benign},
	{Value: "return true\n}", Where: form, Want: tt.Benign},
	{Value: "if (this.props.count == 1) {\n  return true;\n}", Where: form, Want: tt.Benign},
	{Value: "return (int)(s.b); }", Where: q, Want: tt.Benign},
	{Value: "x := 1; return true", Where: q, Want: tt.Benign},
	{Value: "if (a == 1 && 1 == 1) { go(); }", Where: form, Want: tt.Benign},
	{Value: "const t = new Date(); for (const x of xs) { render(x); }", Where: form, Want: tt.Benign},
	{Value: "$", Where: an, Want: tt.None},
	{Value: "price[$]", Where: an, Want: tt.None},
}

func TestDetect(t *testing.T) { tt.Run(t, New(), cases) }

const maxStepsPerByte = 24

func steps(in detect.Input) (detect.Finding, bool, int) {
	var s scan
	f, ok := s.run(in)
	return f, ok, s.steps
}

func TestStepsLinear(t *testing.T) {
	units := []string{`{"$ne":`, `{`, `"a":`, `[$ne]`, "this.a==", "sleep(1)", "return true;", `"\`, "$a"}
	for _, unit := range units {
		v := strings.Repeat(unit, 10000)
		for _, w := range []detect.Where{body, an} {
			_, _, n := steps(detect.Input{Value: v, Where: w, Name: "ARGS:" + v})
			if bound := tt.StepBound(2*len(v), maxStepsPerByte, 64); n > bound {
				t.Errorf("%q x 10000 (%s): %d steps > %d", unit, w, n, bound)
			}
		}
	}
}

func FuzzDetect(f *testing.F) {
	for _, c := range cases {
		f.Add(c.Value, uint8(c.Where), c.Name)
	}
	d := New()
	f.Fuzz(func(t *testing.T, v string, where uint8, name string) {
		in := detect.Input{Value: v, Where: detect.Where(where % 11), Name: name}
		fd, ok, n := steps(in)
		if err := tt.Invariants(d, in, fd, ok); err != nil {
			t.Fatal(err)
		}
		if bound := tt.StepBound(len(v)+len(name), maxStepsPerByte, 64); n > bound {
			t.Fatalf("%d steps for %d bytes > %d", n, len(v)+len(name), bound)
		}
	})
}

var benignInputs = []detect.Input{
	{Value: `{"name":"Anna","email":"anna@example.com","items":[{"id":1,"qty":2}]}`, Where: body, Name: "REQUEST_BODY"},
	{Value: "Hello, I would like to change my delivery address to 12 Main St.", Where: form, Name: "ARGS:message"},
	{Value: "42", Where: q, Name: "ARGS:page"},
	{Value: "user[name]", Where: an, Name: "ARGS_NAMES:user[name]"},
	{Value: "costs $5", Where: form, Name: "ARGS:note"},
	{Value: "this is the best product", Where: form, Name: "ARGS:review"},
}

var attackInputs = []detect.Input{
	{Value: "user[$ne]", Where: an, Name: "ARGS_NAMES:user[$ne]"},
	{Value: "x", Where: form, Name: "ARGS:password[$ne]"},
	{Value: `{"username": {"$ne": null}, "password": {"$ne": null}}`, Where: body, Name: "REQUEST_BODY"},
	{Value: `{"$where": "this.password.length > 0"}`, Where: body, Name: "REQUEST_BODY"},
	{Value: "'; return true; var a='", Where: form, Name: "ARGS:user"},
	{Value: "1; while(true){}", Where: q, Name: "ARGS:id"},
}

func BenchmarkDetect(b *testing.B) {
	b.Run("benign", func(b *testing.B) { tt.Bench(b, New(), benignInputs) })
	b.Run("attack", func(b *testing.B) { tt.Bench(b, New(), attackInputs) })
}
