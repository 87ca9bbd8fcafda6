package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// testPool builds a pool over n unreachable targets (nothing is sent in
// these tests) with the given policy and weights.
func testPool(t testing.TB, policy string, weights ...int) *Pool {
	t.Helper()
	u := &config.UpstreamConfig{Name: "t", Policy: policy, HashCookie: "sid", Passive: config.PassiveConfig{Enabled: true, ConsecutiveFailures: 2, CoolDown: time.Minute}}
	for i, w := range weights {
		tu, _ := url.Parse(fmt.Sprintf("http://10.0.0.%d:80", i+1))
		u.Targets = append(u.Targets, config.TargetConfig{URL: tu, Weight: w})
	}
	p := NewPool(u, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(p.Close)
	return p
}

func pickN(p *Pool, n int, key func(i int) uint64) []int {
	got := make([]int, len(p.targets))
	now := time.Now().UnixNano()
	for i := 0; i < n; i++ {
		var tried triedSet
		var k uint64
		if key != nil {
			k = key(i)
		}
		if j := p.pick(&tried, k, now); j >= 0 {
			got[j]++
		}
	}
	return got
}

func TestPickDistribution(t *testing.T) {
	if got := pickN(testPool(t, config.PolicyRoundRobin, 1, 5, 1), 300, nil); got[0] != 100 || got[1] != 100 || got[2] != 100 {
		t.Errorf("round_robin ignores weights: %v", got)
	}
	if got := pickN(testPool(t, config.PolicyWeightedRoundRobin, 1, 2, 3, 4), 1000, nil); got[0] != 100 || got[1] != 200 || got[2] != 300 || got[3] != 400 {
		t.Errorf("weighted_round_robin: %v", got)
	}
	// Random two choices with nothing in flight: uniform within 15%.
	got := pickN(testPool(t, config.PolicyRandomTwoChoices, 1, 1, 1, 1), 40000, nil)
	for _, n := range got {
		if n < 8500 || n > 11500 {
			t.Errorf("random_two_choices: %v", got)
			break
		}
	}
	// Consistent hash: weights hold within 15% over many keys.
	hp := testPool(t, config.PolicyIPHash, 1, 1, 2)
	got = pickN(hp, 40000, func(i int) uint64 { return hashString(fmt.Sprintf("10.1.%d.%d", i/256, i%256)) })
	if got[0] < 8500 || got[0] > 11500 || got[1] < 8500 || got[1] > 11500 || got[2] < 17000 || got[2] > 23000 {
		t.Errorf("ip_hash with weights 1,1,2: %v", got)
	}
}

func TestLeastConnectionsWeighted(t *testing.T) {
	p := testPool(t, config.PolicyLeastConnections, 1, 3)
	p.targets[0].inflight.Store(2)
	p.targets[1].inflight.Store(5) // 5/3 < 2/1
	var tried triedSet
	if i := p.pick(&tried, 0, time.Now().UnixNano()); i != 1 {
		t.Errorf("picked %d, want the weight-3 target with fewer requests per weight", i)
	}
}

// TestConsistentHashMovesOnlyTheDeadShare: when a target is out, only its
// keys move; the others keep their target (sticky sessions survive).
func TestConsistentHashMovesOnlyTheDeadShare(t *testing.T) {
	p := testPool(t, config.PolicyHash, 1, 1, 1, 1)
	now := time.Now().UnixNano()
	before := make([]int, 2000)
	for i := range before {
		var tried triedSet
		before[i] = p.pick(&tried, hashString(fmt.Sprint("user-", i)), now)
	}
	p.targets[2].down.Store(true)
	moved := 0
	for i := range before {
		var tried triedSet
		after := p.pick(&tried, hashString(fmt.Sprint("user-", i)), now)
		if after == 2 {
			t.Fatal("picked a down target")
		}
		if before[i] != 2 && after != before[i] {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("%d sessions on healthy targets moved", moved)
	}
}

func TestPickSkipsUnusable(t *testing.T) {
	for _, policy := range []string{config.PolicyRoundRobin, config.PolicyWeightedRoundRobin, config.PolicyLeastConnections, config.PolicyRandomTwoChoices, config.PolicyIPHash} {
		p := testPool(t, policy, 1, 1, 1)
		now := time.Now().UnixNano()
		p.targets[0].down.Store(true)
		p.targets[1].ejectedUntil.Store(now + int64(time.Hour))
		for i := 0; i < 50; i++ {
			var tried triedSet
			if j := p.pick(&tried, uint64(i)*7919, now); j != 2 {
				t.Fatalf("%s picked %d, want 2 (the only usable)", policy, j)
			}
			tried.add(2)
			if j := p.pick(&tried, uint64(i), now); j != -1 {
				t.Fatalf("%s picked %d with everything tried or out", policy, j)
			}
		}
		p.targets[2].down.Store(true)
		if !errors.Is(p.unavailable(), ErrNoTarget) {
			t.Errorf("%s: %v", policy, p.unavailable())
		}
	}
	p := testPool(t, config.PolicyRoundRobin, 1)
	p.targets[0].maxConns = 1
	p.targets[0].inflight.Store(1)
	var tried triedSet
	if j := p.pick(&tried, 0, time.Now().UnixNano()); j != -1 || !errors.Is(p.unavailable(), ErrBusy) {
		t.Errorf("target at max_conns picked (%d) or wrong error %v", j, p.unavailable())
	}
}

func TestPassiveEjection(t *testing.T) {
	p := testPool(t, config.PolicyRoundRobin, 1, 1)
	p.passive.FailureRatio, p.passive.MinRequests, p.passive.Window = 0.5, 4, time.Minute
	t0 := p.targets[0]
	p.failed(t0)
	p.observe(t0, 200) // a response resets the run of failures
	p.failed(t0)
	if t0.ejectedUntil.Load() != 0 {
		t.Fatal("ejected after failures that were not consecutive")
	}
	p.failed(t0)
	if t0.ejectedUntil.Load() == 0 {
		t.Fatal("not ejected after 2 consecutive failures")
	}
	t1 := p.targets[1]
	for _, s := range []int{200, 500, 200} {
		p.observe(t1, s)
	}
	if t1.ejectedUntil.Load() != 0 {
		t.Fatal("ejected before min_requests")
	}
	p.observe(t1, 503) // 2 of 4 are 5xx: ratio 0.5 reached
	if t1.ejectedUntil.Load() == 0 {
		t.Fatal("not ejected at the 5xx ratio")
	}
}

// BenchmarkPick is the balancing overhead per request; it must not allocate.
func BenchmarkPick(b *testing.B) {
	for _, policy := range []string{config.PolicyRoundRobin, config.PolicyWeightedRoundRobin, config.PolicyLeastConnections, config.PolicyRandomTwoChoices, config.PolicyIPHash} {
		b.Run(policy, func(b *testing.B) {
			p := testPool(b, policy, 1, 2, 3, 1, 2, 3, 1, 2)
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", "a=b; sid=12345")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var tried triedSet
				var key uint64
				if p.bal.ring != nil {
					key = p.hashKey(r, "192.0.2.1")
				}
				if p.pick(&tried, key, int64(i)) < 0 {
					b.Fatal("no target")
				}
			}
		})
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	for _, policy := range []string{config.PolicyRoundRobin, config.PolicyWeightedRoundRobin, config.PolicyLeastConnections, config.PolicyRandomTwoChoices, config.PolicyHash} {
		p := testPool(t, policy, 1, 2, 3)
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", "a=b; sid=12345")
		allocs := testing.AllocsPerRun(1000, func() {
			var tried triedSet
			p.pick(&tried, p.hashKey(r, "192.0.2.1"), 1)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per pick", policy, allocs)
		}
	}
}

func TestCookieValue(t *testing.T) {
	tests := []struct {
		lines []string
		v     string
		ok    bool
	}{
		{[]string{"sid=abc"}, "abc", true},
		{[]string{"a=1; sid=\"q\"; b=2"}, "q", true},
		{[]string{"xsid=1; sidx=2"}, "", false},
		{[]string{"a=1", " sid=z "}, "z", true},
		{[]string{"sid="}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		if v, ok := cookieValue(tt.lines, "sid"); v != tt.v || ok != tt.ok {
			t.Errorf("%q: %q %v", tt.lines, v, ok)
		}
	}
}

func TestSetTarget(t *testing.T) {
	tests := []struct{ target, in, want string }{
		{"http://b:1", "/x?q=1", "http://b:1/x?q=1"},
		{"http://b:1/base", "/x", "http://b:1/base/x"},
		{"http://b:1/base/", "/x", "http://b:1/base/x"},
		{"http://b:1/base", "/a%2Fb", "http://b:1/base/a%2Fb"},
		{"http://b:1", "", "http://b:1/"},
	}
	for _, tt := range tests {
		target, _ := url.Parse(tt.target)
		u, _ := url.Parse(tt.in)
		setTarget(u, target)
		if got := u.String(); got != tt.want {
			t.Errorf("%s + %s = %s, want %s", tt.target, tt.in, got, tt.want)
		}
	}
}

func TestGRPCTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"2562047H": 2562047 * time.Hour, "99999999S": 99999999 * time.Second, "1S": time.Second, "250m": 250 * time.Millisecond, "3H": 3 * time.Hour, "10u": 10 * time.Microsecond} {
		if d, ok := parseGRPCTimeout(in); !ok || d != want {
			t.Errorf("%q: %v %v", in, d, ok)
		}
	}
	for _, bad := range []string{"", "S", "1", "1x", "123456789S", "-1S", "9999999H", "99999999H", "0S", "0n"} {
		if _, ok := parseGRPCTimeout(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestReplayBody(t *testing.T) {
	b := &replayBody{src: io.NopCloser(strings.NewReader("hello world")), limit: 64}
	v1 := b.view()
	buf := make([]byte, 5)
	n, _ := v1.Read(buf)
	if string(buf[:n]) != "hello" || !b.replayable() {
		t.Fatalf("first read %q", buf[:n])
	}
	b.rewind()
	if _, err := v1.Read(buf); !errors.Is(err, errAbandoned) {
		t.Errorf("abandoned view read: %v", err)
	}
	all, _ := io.ReadAll(b.view())
	if string(all) != "hello world" {
		t.Errorf("replay %q", all)
	}
	// Past the limit the body cannot be replayed.
	nb := &replayBody{src: io.NopCloser(strings.NewReader("hello world")), limit: 4}
	_, _ = io.ReadAll(nb.view())
	if nb.replayable() {
		t.Error("replayable past its limit")
	}
	// A rewind that finds the body grown past the limit: the next view
	// refuses to send a body with a hole in it.
	late := &replayBody{src: io.NopCloser(strings.NewReader("0123456789")), limit: 4}
	_, _ = late.view().Read(make([]byte, 8))
	late.rewind()
	if _, err := late.view().Read(buf); !errors.Is(err, errNotReplayable) {
		t.Errorf("view after overflow: %v", err)
	}
	// Nothing read: replayable even with no buffer (a connect error).
	zero := &replayBody{src: io.NopCloser(strings.NewReader("x")), limit: 0}
	if !zero.replayable() || mayResend(failConn, false, zero) || !mayResend(failDial, false, zero) {
		t.Error("resend rules for an unread body")
	}
	_, _ = zero.view().Read(buf)
	if mayResend(failDial, false, zero) {
		t.Error("a POST whose body was read may not be resent")
	}
	if mayResend(failTimeout, true, nil) || mayResend(failCanceled, true, nil) || !mayResend(failConn, true, nil) {
		t.Error("resend rules by failure kind")
	}
}

// TestRetryBudget: no new attempt starts once the budget is spent.
func TestRetryBudget(t *testing.T) {
	p := testPool(t, config.PolicyRoundRobin, 1, 1, 1)
	p.retries = config.RetryConfig{Attempts: 5, Budget: time.Nanosecond}
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(audit.WithEntry(context.Background(), &audit.Entry{}))
	// Every connection is refused at once, and counted.
	attempts := 0
	p.transport.DialContext = countingDial(&attempts)
	_, err := p.roundTrip(r, &attemptOptions{})
	if err == nil || attempts != 1 {
		t.Errorf("attempts %d, err %v; want 1 attempt with a spent budget", attempts, err)
	}
	p.retries.Budget = time.Minute
	attempts = 0
	_, err = p.roundTrip(r, &attemptOptions{})
	if err == nil || attempts != 3 {
		t.Errorf("attempts %d, want 3 (each target once)", attempts)
	}
	var de *dialError
	if !errors.As(err, &de) {
		t.Errorf("error %v is not the dial error", err)
	}
}

func countingDial(n *int) func(context.Context, string, string) (net.Conn, error) {
	return func(_ context.Context, _, addr string) (net.Conn, error) {
		*n++
		return nil, &dialError{addr: addr, err: errors.New("connection refused")}
	}
}

// TestClientFailuresNotCounted: a broken client body and the request's own
// deadline are never the target's failure, nor retried.
func TestClientFailuresNotCounted(t *testing.T) {
	broken := &replayBody{src: io.NopCloser(io.MultiReader(strings.NewReader("abc"), iotestErr{io.ErrUnexpectedEOF})), limit: 64}
	_, err := io.ReadAll(broken.view())
	var ce *clientBodyError
	if !errors.As(err, &ce) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("client body error not wrapped: %v", err)
	}
	if k := classify(errors.New("write: broken pipe"), context.Background(), broken); k != failClient || countsAgainst(k, false) || mayResend(k, true, broken) {
		t.Errorf("broken client body: kind %d", k)
	}
	limited := &replayBody{src: &limitedBody{ReadCloser: io.NopCloser(strings.NewReader(strings.Repeat("x", 10))), left: 5}, limit: 64}
	if _, err := io.ReadAll(limited.view()); !errors.Is(err, errBodyTooLarge) || limited.clientFailure() == nil {
		t.Errorf("oversized body: %v", err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if k := classify(context.DeadlineExceeded, ctx, nil); k != failDeadline || countsAgainst(k, true) || mayResend(k, true, nil) {
		t.Errorf("route deadline: kind %d", k)
	}
	if k := classify(&headerTimeout{d: time.Second}, context.Background(), nil); k != failTimeout || !countsAgainst(k, true) {
		t.Errorf("header timeout: kind %d", k)
	}
	if k := classify(&dialError{addr: "x", err: errors.New("refused")}, context.Background(), nil); !countsAgainst(k, false) {
		t.Errorf("dial error: kind %d", k)
	}
	if countsAgainst(failConn, false) || !countsAgainst(failConn, true) {
		t.Error("a connection error counts only once the request was written")
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

// TestGRPCDeadlineNeverLiftsTheRouteTimeout: an overflowing grpc-timeout
// must leave the route's own timeout in force.
func TestGRPCDeadlineNeverLiftsTheRouteTimeout(t *testing.T) {
	rt := &Route{cfg: config.RouteProxyConfig{GRPC: true, Timeout: 30 * time.Second}}
	for _, v := range []string{"9999999H", "99999999H", "0S", "junk", ""} {
		r := httptest.NewRequest("POST", "/svc/M", nil)
		r.Header.Set("Grpc-Timeout", v)
		if d := rt.deadline(r); d != 30*time.Second {
			t.Errorf("grpc-timeout %q: deadline %v, want the route's 30s", v, d)
		}
	}
	r := httptest.NewRequest("POST", "/svc/M", nil)
	r.Header.Set("Grpc-Timeout", "2S")
	if d := rt.deadline(r); d != 2*time.Second+grpcGrace {
		t.Errorf("grpc-timeout 2S: %v", d)
	}
}

func TestIdempotencyKeyOptIn(t *testing.T) {
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Idempotency-Key", "k")
	if isIdempotent(r, false) || !isIdempotent(r, true) {
		t.Error("Idempotency-Key must count only when the upstream honours it")
	}
	if put := httptest.NewRequest("PUT", "/", nil); !isIdempotent(put, false) {
		t.Error("PUT is idempotent")
	}
}

// TestRandomTwoChoicesWeighted: weights count at equal load too: idle, the
// weight-4 target wins every pair it is in (half of them with 4 targets).
func TestRandomTwoChoicesWeighted(t *testing.T) {
	got := pickN(testPool(t, config.PolicyRandomTwoChoices, 1, 1, 1, 4), 40000, nil)
	if got[3] < 18000 || got[3] > 22000 {
		t.Errorf("random_two_choices with weights 1,1,1,4 idle: %v, want about half on the heavy target", got)
	}
	// Under load the lighter target still wins: 5 in flight on weight 4
	// (6/4) against none on weight 1 (1/1).
	p := testPool(t, config.PolicyRandomTwoChoices, 1, 4)
	p.targets[1].inflight.Store(5)
	if got := pickN(p, 100, nil); got[0] != 100 {
		t.Errorf("busy heavy target still picked: %v", got)
	}
}
