// Command sqlmap is the real-attacker benchmark of issue 15: Debian's
// sqlmap, with its tamper scripts, against a small deliberately injectable
// application on loopback, once directly (to prove the application is
// injectable) and once behind Portcullis per configuration profile. It
// prints, for every profile, injection point and tamper set, whether sqlmap
// confirmed an injection, how many requests it sent and how many of them
// Portcullis blocked.
//
//	go run ./bench/sqlmap                          # everything (about 15-30 minutes)
//	go run ./bench/sqlmap -points id,login -tampers ,space2comment
//
// Nothing leaves loopback: the application, Portcullis and sqlmap all run
// on 127.0.0.1, every sqlmap run is bounded in time, and every process is
// stopped when the program ends.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	_ "modernc.org/sqlite"
)

// The injectable application. Every handler builds its SQL by string
// concatenation on purpose: it is the target, not an example.

type app struct {
	db       *sql.DB
	requests atomic.Int64
}

func newApp(dir string) (*app, error) {
	db, err := sql.Open("sqlite", filepath.Join(dir, "shop.db"))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	db.SetMaxOpenConns(4)
	stmts := []string{
		`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, category TEXT, price REAL)`,
		`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, pass TEXT, tenant TEXT, email TEXT)`,
	}
	for i, n := range []string{"Hiking boots", "Rain jacket", "Tent", "Sleeping bag", "Headlamp", "Water filter", "Camp stove", "Trekking poles"} {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO items VALUES (%d, '%s', '%s', %d.95)`, i+1, n, []string{"shoes", "jackets", "camping"}[i%3], 20+i*7))
	}
	for i, u := range []string{"alice", "bob", "carol", "dave"} {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO users VALUES (%d, '%s', 's3cret-%d', '%s', '%s@example.com')`, i+1, u, i, []string{"acme", "globex"}[i%2], u))
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			return nil, fmt.Errorf("seed database: %w", err)
		}
	}
	return &app{db: db}, nil
}

// rows runs q and renders the result like a naive application does,
// database errors included (so error-based detection works too).
func (a *app) rows(w http.ResponseWriter, q string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	rs, err := a.db.Query(q)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "<html><body><p>Database error: %s</p></body></html>", html.EscapeString(err.Error()))
		return
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	fmt.Fprint(w, "<html><body><table>")
	n := 0
	for rs.Next() && n < 100 {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			break
		}
		fmt.Fprint(w, "<tr>")
		for _, v := range vals {
			fmt.Fprintf(w, "<td>%s</td>", html.EscapeString(fmt.Sprint(v)))
		}
		fmt.Fprint(w, "</tr>")
		n++
	}
	fmt.Fprintf(w, "</table><p>%d results</p></body></html>", n)
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	// numeric context, query string
	mux.HandleFunc("GET /item", func(w http.ResponseWriter, r *http.Request) {
		a.rows(w, "SELECT id, name, price FROM items WHERE id = "+r.URL.Query().Get("id"))
	})
	// string context, query string
	mux.HandleFunc("GET /search", func(w http.ResponseWriter, r *http.Request) {
		a.rows(w, "SELECT id, name, price FROM items WHERE name LIKE '%"+r.URL.Query().Get("q")+"%'")
	})
	// string context, urlencoded form
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		a.rows(w, "SELECT id, name FROM users WHERE name = '"+r.PostForm.Get("user")+"' AND pass = '"+r.PostForm.Get("pass")+"'")
	})
	// string context, JSON body
	mux.HandleFunc("POST /api/items", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Category string `json:"category"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		a.rows(w, "SELECT id, name, price FROM items WHERE category = '"+in.Category+"'")
	})
	// numeric context, cookie
	mux.HandleFunc("GET /profile", func(w http.ResponseWriter, r *http.Request) {
		// the raw header, URL-decoded like PHP's $_COOKIE: net/http's
		// cookie parser drops values with spaces and quotes
		uid, ok := "", false
		for _, part := range strings.Split(r.Header.Get("Cookie"), ";") {
			if k, v, found := strings.Cut(strings.TrimSpace(part), "="); found && k == "uid" {
				uid, ok = v, true
				if d, err := url.QueryUnescape(v); err == nil {
					uid = d
				}
			}
		}
		if !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		a.rows(w, "SELECT id, name, email FROM users WHERE id = "+uid)
	})
	// string context, ordinary request header
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
		a.rows(w, "SELECT name, email FROM users WHERE tenant = '"+r.Header.Get("X-Tenant")+"'")
	})
	// numeric context, base64-encoded query parameter
	mux.HandleFunc("GET /b64", func(w http.ResponseWriter, r *http.Request) {
		v, err := base64.StdEncoding.DecodeString(r.URL.Query().Get("data"))
		if err != nil {
			http.Error(w, "bad data", http.StatusBadRequest)
			return
		}
		a.rows(w, "SELECT id, name, price FROM items WHERE id = "+string(v))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
		mux.ServeHTTP(w, r)
	})
}

// point is one injection point and the sqlmap arguments that target it.
type point struct {
	name string
	args func(base string) []string
}

var points = []point{
	{"id", func(b string) []string { return []string{"-u", b + "/item?id=1", "-p", "id"} }},
	{"search", func(b string) []string { return []string{"-u", b + "/search?q=tent", "-p", "q"} }},
	{"login", func(b string) []string {
		return []string{"-u", b + "/login", "--data", "user=alice&pass=x", "-p", "user"}
	}},
	{"json", func(b string) []string {
		return []string{"-u", b + "/api/items", "--data", `{"category":"shoes*"}`, "--headers", "Content-Type: application/json"}
	}},
	{"cookie", func(b string) []string { return []string{"-u", b + "/profile", "--cookie", "uid=1*"} }},
	{"header", func(b string) []string { return []string{"-u", b + "/report", "--headers", "X-Tenant: acme*"} }},
	{"b64", func(b string) []string {
		return []string{"-u", b + "/b64?data=MQ==", "-p", "data", "--base64", "data"}
	}},
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("sqlmap-bench: ")
	profilesFlag := flag.String("profiles", "default,stock-crs", "Portcullis profiles (bench/detection/profiles/NAME.yaml)")
	pointsFlag := flag.String("points", "id,search,login,json,cookie,header,b64", "injection points to attack")
	tampersFlag := flag.String("tampers", ",space2comment+randomcase,between+equaltolike+space2randomblank", "tamper sets, comma-separated, + inside a set; empty for none")
	timeout := flag.Duration("timeout", 120*time.Second, "time limit of one sqlmap run")
	flag.Parse()
	if err := run(*profilesFlag, *pointsFlag, *tampersFlag, *timeout); err != nil {
		log.Fatal(err)
	}
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("run inside the repository")
		}
		dir = filepath.Dir(dir)
	}
}

func run(profileList, pointList, tamperList string, timeout time.Duration) error {
	if _, err := exec.LookPath("sqlmap"); err != nil {
		return errors.New("sqlmap is not installed (apt-get install sqlmap)")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "portcullis-sqlmap-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Ctrl-C ends the running sqlmap (its whole process group) and
	// Portcullis before the program exits.
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	a, err := newApp(tmp)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	appURL := "http://" + ln.Addr().String()

	bin := filepath.Join(root, "bench", ".bin", "portcullis")
	log.Printf("building %s", bin)
	build := exec.Command("go", "build", "-o", bin, "./cmd/portcullis")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build portcullis: %w", err)
	}

	var sel []point
	for _, n := range strings.Split(pointList, ",") {
		for _, p := range points {
			if p.name == strings.TrimSpace(n) {
				sel = append(sel, p)
			}
		}
	}
	tampers := strings.Split(tamperList, ",")

	fmt.Printf("%-10s %-8s %-42s %-10s %8s %8s\n", "profile", "point", "tampers", "injection", "requests", "blocked")
	// direct: the application is injectable at every point, and each
	// tamper set still produces working payloads for it (a tamper that
	// breaks the payload for this application proves nothing behind a WAF)
	for _, p := range sel {
		for _, t := range tampers {
			if p.name == "b64" && t != "" {
				continue
			}
			res := attack(ctx, tmp, appURL, p, strings.ReplaceAll(t, "+", ","), 2*timeout, nil)
			fmt.Printf("%-10s %-8s %-42s %-10s %8d %8s\n", "none", p.name, tamperLabel(p, t), res.verdict(), res.requests, "-")
		}
	}
	for _, prof := range strings.Split(profileList, ",") {
		prof = strings.TrimSpace(prof)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		proc, base, audit, err := startPortcullis(root, bin, tmp, prof, appURL)
		if err != nil {
			return err
		}
		for _, p := range sel {
			for _, t := range tampers {
				if p.name == "b64" && t != "" {
					continue // one run: the point is the encoding
				}
				res := attack(ctx, tmp, base, p, strings.ReplaceAll(t, "+", ","), timeout, audit)
				fmt.Printf("%-10s %-8s %-42s %-10s %8d %8d\n", prof, p.name, tamperLabel(p, t), res.verdict(), res.requests, res.blocked)
			}
		}
		stop(proc)
	}
	return nil
}

func tamperLabel(p point, t string) string {
	switch {
	case p.name == "b64":
		return "--base64 data"
	case t == "":
		return "(none)"
	}
	return t
}

type result struct {
	confirmed, timedOut bool
	requests, blocked   int
}

func (r result) verdict() string {
	switch {
	case r.confirmed:
		return "CONFIRMED"
	case r.timedOut:
		return "timeout"
	}
	return "no"
}

var identified = regexp.MustCompile(`sqlmap identified the following injection point|sqlmap resumed the following injection point`)

// attack runs one bounded sqlmap against base and reads what it found and
// what Portcullis recorded.
func attack(ctx context.Context, tmp, base string, p point, tampers string, timeout time.Duration, audit *auditCounter) result {
	out, err := os.MkdirTemp(tmp, "run-")
	if err != nil {
		return result{}
	}
	traffic := filepath.Join(out, "traffic.txt")
	args := append(p.args(base), "--batch", "--random-agent", "--flush-session", "--output-dir", out, "-t", traffic,
		"--host", "shop.example", "--level", "2", "--risk", "1", "--technique", "BEU", "--time-sec", "2", "--threads", "2", "--disable-coloring")
	if tampers != "" {
		args = append(args, "--tamper", tampers)
	}
	var before audStat
	if audit != nil {
		before = audit.read()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sqlmap", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdout, _ := cmd.CombinedOutput()
	res := result{confirmed: identified.Match(stdout), timedOut: ctx.Err() != nil}
	if b, err := os.ReadFile(traffic); err == nil {
		res.requests = strings.Count(string(b), "HTTP request [#")
	}
	if audit != nil {
		after := audit.read()
		res.blocked = after.blocked - before.blocked
	}
	return res
}

type audStat struct{ total, blocked int }

// auditCounter reads Portcullis's audit file (JSON lines).
type auditCounter struct{ path string }

func (a *auditCounter) read() audStat {
	var s audStat
	f, err := os.Open(a.path)
	if err != nil {
		return s
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e struct {
			Action string `json:"action"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			s.total++
			if e.Action == "blocked" {
				s.blocked++
			}
		}
	}
	return s
}

// startPortcullis runs the binary with the profile's configuration on a
// free loopback port and waits until it answers.
func startPortcullis(root, bin, tmp, profile, appURL string) (*exec.Cmd, string, *auditCounter, error) {
	text, err := os.ReadFile(filepath.Join(root, "bench", "detection", "profiles", profile+".yaml"))
	if err != nil {
		return nil, "", nil, fmt.Errorf("profile %s: %w", profile, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	addr := l.Addr().String()
	l.Close() // handed to Portcullis; the short window is harmless on loopback
	auditPath := filepath.Join(tmp, profile+"-audit.jsonl")
	cfg := strings.ReplaceAll(string(text), "${UPSTREAM}", appURL) + fmt.Sprintf("listeners:\n  - address: %q\naudit:\n  file: %q\n  log_all: true\n", addr, auditPath)
	cfgPath := filepath.Join(tmp, profile+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, "", nil, err
	}
	cmd := exec.Command(bin, "run", "-c", cfgPath)
	cmd.Dir = tmp
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, "", nil, fmt.Errorf("start portcullis: %w", err)
	}
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(base + "/item?id=1")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop(cmd)
			return nil, "", nil, fmt.Errorf("portcullis (%s) did not answer within 60s: %w", profile, err)
		}
		time.Sleep(200 * time.Millisecond) // polling a child process, bounded by the deadline
	}
	return cmd, base, &auditCounter{path: auditPath}, nil
}

func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(35 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
