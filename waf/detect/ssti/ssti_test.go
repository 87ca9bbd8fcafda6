package ssti

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
	path = detect.WherePath
	body = detect.WhereBody
)

var cases = []tt.Case{
	// Probes that compute.
	{Value: "{{7*7}}", Where: q, Want: tt.Attack},
	{Value: "{{ 7 * '7' }}", Where: q, Want: tt.Attack},
	{Value: "${7*7}", Where: q, Want: tt.Attack},
	{Value: "#{7*7}", Where: q, Want: tt.Attack},
	{Value: "*{7*7}", Where: q, Want: tt.Attack},
	{Value: "@(7*7)", Where: q, Want: tt.Attack},
	{Value: "<%= 7*7 %>", Where: q, Want: tt.Attack},
	{Value: "${{7*7}}", Where: q, Want: tt.Attack},
	{Value: "{{ 1337 - 1 }}", Where: form, Want: tt.Attack},
	{Value: "Hello {{ 9 + 9 }} world", Where: form, Want: tt.Attack},
	{Value: "%{3*3}", Where: q, Want: tt.Attack},
	{Value: "#set($x = 7*7)${x}", Where: q, Want: tt.Attack},
	{Value: "[#assign x = 7*7]${x}", Where: q, Want: tt.Attack},
	{Value: "{{'a'+'b'}}", Where: q, Want: tt.Attack},
	{Value: "/page/{{7*7}}", Where: path, Want: tt.Attack},

	// Jinja2 / Twig sandbox escapes and context reads.
	{Value: "{{ ''.__class__.__mro__[1].__subclasses__() }}", Where: q, Want: tt.Attack},
	{Value: "{{config.items()}}", Where: q, Want: tt.Attack},
	{Value: "{{ config }}", Where: q, Want: tt.Attack},
	{Value: "{{ settings.SECRET_KEY }}", Where: form, Want: tt.Attack},
	{Value: "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}", Where: q, Want: tt.Attack},
	{Value: "{{ lipsum.__globals__['os'].popen('id').read() }}", Where: q, Want: tt.Attack},
	{Value: "{{ cycler.__init__.__globals__.os.popen('id').read() }}", Where: q, Want: tt.Attack},
	{Value: "{{ request|attr('application')|attr('\\x5f\\x5fglobals\\x5f\\x5f') }}", Where: q, Want: tt.Attack},
	{Value: "{{ request['application']['__globals__']['__builtins__']['__import__']('os') }}", Where: q, Want: tt.Attack},
	{Value: "{{ ''['__cla'+'ss__'] }}", Where: q, Want: tt.Attack},
	{Value: "{% for c in [].__class__.__base__.__subclasses__() %}{% endfor %}", Where: q, Want: tt.Attack},
	{Value: "{% import os %}{{ os.popen('id').read() }}", Where: q, Want: tt.Attack},
	{Value: "{% debug %}", Where: q, Want: tt.Attack},
	{Value: "{% include '/etc/passwd' %}", Where: q, Want: tt.Attack},
	{Value: "{{_self.env.registerUndefinedFilterCallback(\"exec\")}}{{_self.env.getFilter(\"id\")}}", Where: q, Want: tt.Attack},
	{Value: "{{['id']|filter('system')}}", Where: q, Want: tt.Attack},
	{Value: "{{['cat /etc/passwd']|map('passthru')|join}}", Where: q, Want: tt.Attack},
	{Value: "{{ namespace.__init__.__globals__ }}", Where: q, Want: tt.Attack},
	{Value: "{{ request.environ }}", Where: q, Want: tt.Attack},
	{Value: "{{ get_flashed_messages.__globals__ }}", Where: q, Want: tt.Attack},
	{Value: "{{ constructor.constructor('return process')() }}", Where: q, Want: tt.Attack},
	{Value: "{{#with \"s\" as |string|}}{{#with \"e\"}}{{#with split as |conslist|}}{{this.pop}}{{this.push (lookup string.sub \"constructor\")}}{{this.pop}}{{/with}}{{/with}}{{/with}}", Where: form, Want: tt.Attack},
	{Value: "{{#with this as |o|}}{{lookup o 'constructor'}}{{/with}}", Where: form, Want: tt.Attack},

	// Java EL, Spring, Thymeleaf, OGNL, Freemarker, Velocity.
	{Value: "${T(java.lang.Runtime).getRuntime().exec('id')}", Where: q, Want: tt.Attack},
	{Value: "*{T(org.apache.commons.io.IOUtils).toString(T(java.lang.Runtime).getRuntime().exec('id').getInputStream())}", Where: q, Want: tt.Attack},
	{Value: "__${T(java.lang.Runtime).getRuntime().exec('id')}__::.x", Where: path, Want: tt.Attack},
	{Value: "${''.getClass().forName('java.lang.Runtime').getMethods()[6].invoke(null)}", Where: q, Want: tt.Attack},
	{Value: "#{session.setAttribute('a', 1)}", Where: q, Want: tt.Attack},
	{Value: "${applicationScope}", Where: q, Want: tt.Attack},
	{Value: "${pageContext.request.getSession()}", Where: q, Want: tt.Attack},
	{Value: "%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(#_memberAccess=#dm)}", Where: hdr, Want: tt.Attack},
	{Value: "${@java.lang.Runtime@getRuntime().exec('id')}", Where: q, Want: tt.Attack},
	{Value: "<#assign ex=\"freemarker.template.utility.Execute\"?new()>${ex(\"id\")}", Where: q, Want: tt.Attack},
	{Value: "${\"freemarker.template.utility.Execute\"?new()(\"id\")}", Where: q, Want: tt.Attack},
	{Value: "<#assign value=\"freemarker.template.utility.ObjectConstructor\"?new()>${value(\"java.lang.ProcessBuilder\",\"id\").start()}", Where: q, Want: tt.Attack},
	{Value: "${product.getClass().getProtectionDomain().getCodeSource()}", Where: q, Want: tt.Attack},
	{Value: "#set($s=\"\")#set($rt=$s.class.forName(\"java.lang.Runtime\"))$rt.getRuntime().exec(\"id\")", Where: q, Want: tt.Attack},
	{Value: "$class.inspect(\"java.lang.Runtime\").type.getRuntime().exec(\"id\")", Where: q, Want: tt.Attack},
	{Value: "${new java.lang.ProcessBuilder('id').start()}", Where: q, Want: tt.Attack},

	// ERB, JSP, EJS, Mako, Smarty, Razor, Go.
	{Value: "<%= `id` %>", Where: q, Want: tt.Attack},
	{Value: "<%= system('cat /etc/passwd') %>", Where: q, Want: tt.Attack},
	{Value: "<%= File.open('/etc/passwd').read %>", Where: q, Want: tt.Attack},
	{Value: "<%= IO.popen('id').readlines() %>", Where: q, Want: tt.Attack},
	{Value: "<% Runtime.getRuntime().exec(request.getParameter(\"c\")); %>", Where: body, Want: tt.Attack},
	{Value: "<%- global.process.mainModule.require('child_process').execSync('id') %>", Where: q, Want: tt.Attack},
	{Value: "<% import os; x=os.popen('id').read() %>${x}", Where: q, Want: tt.Attack},
	{Value: "{php}echo `id`;{/php}", Where: q, Want: tt.Attack},
	{Value: "{system('id')}", Where: q, Want: tt.Attack},
	{Value: "{Smarty_Internal_Write_File::writeFile($SCRIPT_NAME,\"<?php passthru($_GET['c']); ?>\",self::clearConfig())}", Where: q, Want: tt.Attack},
	{Value: "{if system('id')}{/if}", Where: q, Want: tt.Attack},
	{Value: "@System.Diagnostics.Process.Start(\"cmd.exe\",\"/c whoami\")", Where: q, Want: tt.Attack},
	{Value: "@{ var x = System.IO.File.ReadAllText(\"C:/Windows/win.ini\"); }", Where: q, Want: tt.Attack},
	{Value: "{{ call .Exec \"id\" }}", Where: q, Want: tt.Attack},

	{Value: "#{`uname -a`}", Where: form, Want: tt.Attack},
	{Value: "{{#with \"s\" as |string|}}{{#with string.split as |conslist|}}{{this.pop}}{{/with}}{{/with}}", Where: form, Want: tt.Attack},

	// Polyglot probe.
	{Value: "${{<%[%'\"}}%\\.", Where: q, Want: tt.Attack},

	// Near-misses.
	{Value: "{{name}}", Where: form, Want: tt.Benign},
	{Value: "Hi {{ user.first_name }}, your order shipped", Where: form, Want: tt.Benign},
	{Value: "${price}", Where: form, Want: tt.Benign},
	{Value: "Each seat costs ${price} plus ${fee} in fees", Where: form, Want: tt.Benign},
	{Value: "export PATH=${HOME}/bin:${PATH}", Where: form, Want: tt.Benign},
	{Value: "${HOME}", Where: q, Want: tt.Benign},
	{Value: "I paid $45 for {two} items", Where: form, Want: tt.None},
	{Value: "{\"a\": {\"b\": 1}}", Where: body, Want: tt.None},
	{Value: "function f() { return {a: 1}; }", Where: form, Want: tt.None},
	{Value: "const s = `Hello ${user.name}, you have ${items.length} items`;", Where: form, Want: tt.Benign},
	{Value: "In Vue you write {{ message | capitalize }} or {{ formatDate(date) }} in the template", Where: form, Want: tt.Benign},
	{Value: "<li v-for=\"item in items\">{{ item.title }}</li>", Where: form, Want: tt.Benign},
	{Value: "{% for post in posts %}<h2>{{ post.title }}</h2>{% endfor %}", Where: form, Want: tt.Benign},
	{Value: "{% if user.is_authenticated %}Hi{% endif %}", Where: form, Want: tt.Benign},
	{Value: "Use {{ }} for expressions and {% %} for statements", Where: form, Want: tt.Benign},
	{Value: "#hashtag #summer2024 #{not_really}", Where: form, Want: tt.Benign},
	{Value: "Email me at anna@Example.com", Where: form, Want: tt.None},
	{Value: "Follow @Github for news", Where: form, Want: tt.None},
	{Value: "<%@ page contentType=\"text/html\" %>", Where: form, Want: tt.Benign},
	{Value: "50% off <%s> discount", Where: form, Want: tt.None},
	{Value: "<#if>", Where: form, Want: tt.Benign},
	{Value: "[#section-2]", Where: form, Want: tt.None},
	{Value: "$scope.items = $http.get('/api/items');", Where: form, Want: tt.None},
	{Value: "$(this).val()", Where: form, Want: tt.None},
	{Value: "{{ 'hello' }}", Where: form, Want: tt.Benign},
	{Value: "{{ . }}", Where: form, Want: tt.Benign},
	{Value: "Total: {{ a + b }}", Where: form, Want: tt.Weak},
	{Value: "{{#each items}}{{this}}{{/each}}", Where: form, Want: tt.Benign},
	{Value: "Contact {support} or {{", Where: form, Want: tt.None},
	{Value: "{{{{{{{{", Where: form, Want: tt.None},
	{Value: "${", Where: form, Want: tt.None},
	{Value: "a{b}c", Where: q, Want: tt.None},
	{Value: "#set the table", Where: form, Want: tt.None},
	{Value: "#if (defined(__x86_64__) || defined(__i386__))", Where: form, Want: tt.Benign},
	{Value: "v.reset(OpConst); v.AuxInt = {C:int64(c)}", Where: q, Want: tt.None},
	{Value: "{{range $i, $f := .Files}}{{$f.Name}}{{end}}", Where: form, Want: tt.Benign},
	{Value: "var r = unicode.Range16{{Lo: 0, Hi: 1<<16 - 1, Stride: 1}}", Where: form, Want: tt.Benign},
	{Value: "{{`\"output\"`}}", Where: form, Want: tt.Benign},
	{Value: "{{#each items as |item|}}{{item.name}}{{/each}}", Where: form, Want: tt.Weak},
	{Value: "{include file='header.tpl'}", Where: form, Want: tt.Benign},
}

func TestDetect(t *testing.T) { tt.Run(t, New(), cases) }

// maxStepsPerByte bounds the work per byte in the fuzz test; the scan
// itself stops at budgetPerByte. linearStepsPerByte is what the
// repetitive inputs below must stay under: well below the budget, so a
// regression shows here before the budget hides it.
const (
	maxStepsPerByte    = 16
	linearStepsPerByte = 4
)

func steps(in detect.Input) (detect.Finding, bool, int) {
	var s scan
	f, ok := s.run(in)
	return f, ok, s.steps
}

func TestStepsLinear(t *testing.T) {
	units := []string{"{{", "{{a", "${(", "<%", "{%", "#set(", "$a.b(", "@A.b(", "{a(", "{a('", "{{'", "${${", "{{ a.b.c(d)[e] ", "(", "<#assign ", "{{'{{", "{{ a '{{ b '"}
	for _, unit := range units {
		v := strings.Repeat(unit, 10000)
		_, _, n := steps(detect.Input{Value: v, Where: q})
		if bound := tt.StepBound(len(v), linearStepsPerByte, 64); n > bound {
			t.Errorf("%q x 10000: %d steps > %d", unit, n, bound)
		}
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
		if bound := tt.StepBound(len(v), maxStepsPerByte, 64); n > bound {
			t.Fatalf("%d steps for %d bytes > %d", n, len(v), bound)
		}
	})
}

var benignInputs = []detect.Input{
	{Value: "Hello, I would like to change my delivery address to 12 Main St.", Where: form},
	{Value: `{"name":"Anna","email":"anna@example.com","items":[{"id":1,"qty":2}]}`, Where: body},
	{Value: "42", Where: q},
	{Value: "Each seat costs ${price} plus ${fee} in fees", Where: form},
	{Value: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Where: hdr},
	{Value: "#hashtag #summer2024 and @friends", Where: form},
}

var attackInputs = []detect.Input{
	{Value: "{{7*7}}", Where: q},
	{Value: "{{ ''.__class__.__mro__[1].__subclasses__() }}", Where: q},
	{Value: "${T(java.lang.Runtime).getRuntime().exec('id')}", Where: q},
	{Value: "<#assign ex=\"freemarker.template.utility.Execute\"?new()>${ex(\"id\")}", Where: q},
	{Value: "<%= `id` %>", Where: q},
	{Value: "{{ request|attr('application')|attr('\\x5f\\x5fglobals\\x5f\\x5f') }}", Where: q},
}

func BenchmarkDetect(b *testing.B) {
	b.Run("benign", func(b *testing.B) { tt.Bench(b, New(), benignInputs) })
	b.Run("attack", func(b *testing.B) { tt.Bench(b, New(), attackInputs) })
}

// TestStreamReadIsNotASink (issue 15): a method read() on a stream in a
// JavaScript template literal is code in a forum post; reading a file
// needs the call that opens it.
func TestStreamReadIsNotASink(t *testing.T) {
	d := New()
	for _, c := range []tt.Case{
		{Value: "{{ open('/etc/passwd').read() }}", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "{{ lipsum.__globals__.os.popen('id').read() }}", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "${T(java.lang.Runtime).getRuntime().exec('id')}", Where: detect.WhereJSON, Want: tt.Attack},
		{Value: "I tried `rr.on('readable', () => { console.log(`readable: ${rr.read()}`); });` but it hangs.", Where: detect.WhereForm, Want: tt.Benign},
		{Value: "console.log(`got ${stream.read()}`)", Where: detect.WhereJSON, Want: tt.Weak},
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
