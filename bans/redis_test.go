package bans

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
	"github.com/portcullis-waf/portcullis/internal/redistest"
)

// instance is one Portcullis instance's ban table, shared through Redis.
type instance struct {
	store  *Store
	shared *Shared
	conn   *redisconn.Conn
}

// newInstance opens a store (state file in dir, if not empty) shared
// through a new connection with cfg.
func newInstance(t *testing.T, cfg *config.RedisConfig, stateFile string, resync time.Duration) *instance {
	t.Helper()
	c := *cfg
	conn := redistest.Connect(t, &c)
	st, err := Open(stateFile, 100)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := NewShared(conn, st, SharedOptions{StateFile: stateFile, ResyncInterval: resync})
	if err != nil {
		t.Fatal(err)
	}
	sh.Start()
	t.Cleanup(func() { sh.Close(); st.Close() })
	return &instance{store: st, shared: sh, conn: conn}
}

func sharedCfg(t *testing.T) *config.RedisConfig {
	conn := redistest.Shared(t) // skips without Redis; cleans the prefix up
	cfg := redistest.Config(t, redistest.SharedAddr)
	cfg.KeyPrefix = conn.Prefix()
	return cfg
}

func isBanned(st *Store, addr string) bool {
	_, hit := st.Banned(netip.MustParseAddr(addr), time.Now())
	return hit
}

func manualBan(prefix string, d time.Duration) Ban {
	now := time.Now()
	return Ban{Prefix: netip.MustParsePrefix(prefix), Reason: "test", Source: SourceManual, Created: now, Until: now.Add(d)}
}

// waitSynced waits until the instance has done its first resync.
func waitSynced(t *testing.T, in *instance) {
	t.Helper()
	redistest.Eventually(t, 10*time.Second, "first resync", func() bool {
		in.shared.syncMu.Lock()
		defer in.shared.syncMu.Unlock()
		return in.shared.epoch != ""
	})
}

// A ban added on one instance is enforced by the other through pub/sub
// (the periodic check is off here), and lifted the same way.
func TestSharedBanPropagatesByPubSub(t *testing.T) {
	cfg := sharedCfg(t)
	a := newInstance(t, cfg, "", time.Hour)
	b := newInstance(t, cfg, "", time.Hour)
	waitSynced(t, a)
	waitSynced(t, b)
	if err := a.store.Add(manualBan("192.0.2.0/24", time.Hour)); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "ban on instance b", func() bool { return isBanned(b.store, "192.0.2.77") })
	if ok, err := b.store.Remove(netip.MustParsePrefix("192.0.2.0/24")); !ok || err != nil {
		t.Fatalf("remove on b: %v %v", ok, err)
	}
	redistest.Eventually(t, 10*time.Second, "lifted on instance a", func() bool { return !isBanned(a.store, "192.0.2.77") })
}

// A change whose message never arrived (written to Redis without
// publishing, as a lost message would leave it) is picked up by the
// periodic version check.
func TestSharedMissedMessageRepairedByResync(t *testing.T) {
	cfg := sharedCfg(t)
	b := newInstance(t, cfg, "", 50*time.Millisecond)
	waitSynced(t, b)
	ban := manualBan("198.51.100.7/32", time.Hour)
	rec := record{Ban: ban, UntilMS: ban.Until.UnixMilli(), ModMS: time.Now().UnixMilli()}
	js, _ := json.Marshal(rec)
	ctx := context.Background()
	ns := b.conn.Prefix() + "bans:"
	cl := b.conn.Client
	if err := cl.HSet(ctx, ns+"table", "198.51.100.7/32", js).Err(); err != nil {
		t.Fatal(err)
	}
	cl.ZAdd(ctx, ns+"live", redisZ(float64(rec.UntilMS), "198.51.100.7/32"))
	cl.Incr(ctx, ns+"ver")
	redistest.Eventually(t, 10*time.Second, "unpublished ban on b", func() bool { return isBanned(b.store, "198.51.100.7") })
	if n := seriesSum(t, b.conn, "portcullis_redis_ban_resyncs_total"); n < 2 {
		t.Errorf("resyncs %v, want the start and at least one periodic", n)
	}
}

// An operator's ban outranks an automatic one on every instance: strikes
// collected elsewhere cannot shorten it.
func TestSharedManualOutranksAuto(t *testing.T) {
	cfg := sharedCfg(t)
	a := newInstance(t, cfg, "", time.Hour)
	b := newInstance(t, cfg, "", time.Hour)
	waitSynced(t, a)
	waitSynced(t, b)
	manual := manualBan("203.0.113.9/32", 24*time.Hour)
	if err := a.store.Add(manual); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "manual ban on b", func() bool { return isBanned(b.store, "203.0.113.9") })
	// b had not seen it yet in a race; here it has, and its own rule
	// keeps it; Redis keeps it too when b pushes an auto ban regardless.
	auto := Ban{Prefix: manual.Prefix, Reason: "strikes", Source: SourceAuto, Created: time.Now(), Until: time.Now().Add(time.Minute)}
	b.shared.push(record{Ban: auto, UntilMS: auto.Until.UnixMilli(), ModMS: time.Now().UnixMilli()}, false)
	for _, in := range []*instance{a, b} {
		got, _ := in.store.Banned(netip.MustParseAddr("203.0.113.9"), time.Now())
		if got.Source != SourceManual || !got.Until.Equal(manual.Until) {
			t.Errorf("ban after an automatic one was pushed: %+v, want the manual one", got)
		}
	}
}

// Strikes on two instances add up to the threshold.
func TestSharedStrikesAddUp(t *testing.T) {
	cfg := sharedCfg(t)
	a := newInstance(t, cfg, "", time.Hour)
	b := newInstance(t, cfg, "", time.Hour)
	ta, _ := NewTracker(a.store, 4, time.Minute, time.Hour, 100)
	tb, _ := NewTracker(b.store, 4, time.Minute, time.Hour, 100)
	client := netip.MustParseAddr("192.0.2.200")
	now := time.Now()
	for i, tr := range []*Tracker{ta, tb, ta} {
		if banned, err := tr.Strike(client, "waf block", now.Add(time.Duration(i)*time.Second)); banned || err != nil {
			t.Fatalf("strike %d: banned %v err %v", i+1, banned, err)
		}
	}
	banned, err := tb.Strike(client, "status 404", now.Add(3*time.Second))
	if !banned || err != nil {
		t.Fatalf("fourth strike (on b): banned %v err %v, want banned", banned, err)
	}
	got, _ := b.store.Banned(client, time.Now())
	if got.Reason != "4 strikes within 1m0s: waf block (3), status 404 (1)" {
		t.Errorf("reason %q", got.Reason)
	}
	redistest.Eventually(t, 10*time.Second, "auto ban on a", func() bool { return isBanned(a.store, "192.0.2.200") })
	// Each local tracker alone saw fewer than 4: nothing was counted locally.
	if ta.Stats().Counters != 0 || tb.Stats().Counters != 0 {
		t.Errorf("local counters used while redis was up: %+v %+v", ta.Stats(), tb.Stats())
	}
}

// Redis stops answering (the process is frozen, its data kept): bans
// still apply locally, a ban added meanwhile is queued (in a file), and
// when Redis answers again the queue is pushed and every instance has it.
func TestSharedOutageQueuesAndConverges(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redistest.Config(t, srv.Addr)
	cfg.Timeout = time.Second
	dir := t.TempDir()
	a := newInstance(t, cfg, filepath.Join(dir, "a.json"), 50*time.Millisecond)
	b := newInstance(t, cfg, filepath.Join(dir, "b.json"), 50*time.Millisecond)
	waitSynced(t, a)
	waitSynced(t, b)
	if err := a.store.Add(manualBan("192.0.2.1/32", time.Hour)); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "first ban on b", func() bool { return isBanned(b.store, "192.0.2.1") })

	srv.Freeze()
	if err := a.store.Add(manualBan("192.0.2.2/32", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !isBanned(a.store, "192.0.2.2") || !isBanned(a.store, "192.0.2.1") {
		t.Fatal("local bans not enforced during the outage")
	}
	// (On a slow machine the first ban's push may have timed out too,
	// although Redis applied it: then it is queued as well, harmlessly.)
	if !a.shared.queued(netip.MustParsePrefix("192.0.2.2/32")) {
		t.Fatalf("the ban made during the outage is not queued (%d queued)", a.shared.Pending())
	}
	if _, err := os.Stat(filepath.Join(dir, "a.json.outbox")); err != nil {
		t.Fatalf("outbox file: %v", err)
	}
	if down, _ := a.conn.Degraded(); !down {
		t.Error("a not degraded during the outage")
	}

	srv.Thaw()
	redistest.Eventually(t, 15*time.Second, "queued ban on b", func() bool { return isBanned(b.store, "192.0.2.2") })
	if !isBanned(b.store, "192.0.2.1") || !isBanned(a.store, "192.0.2.1") {
		t.Error("a ban from before the outage was lost")
	}
	redistest.Eventually(t, 10*time.Second, "outbox drained", func() bool { return a.shared.Pending() == 0 })
	if _, err := os.Stat(filepath.Join(dir, "a.json.outbox")); !os.IsNotExist(err) {
		t.Errorf("outbox file still there after the push: %v", err)
	}
}

// Redis restarted empty (no persistence): the instances notice the new
// epoch and push back the bans they hold, so none is lifted.
func TestSharedRedisLosesDataReseeds(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redistest.Config(t, srv.Addr)
	cfg.Timeout = time.Second
	a := newInstance(t, cfg, "", 50*time.Millisecond)
	b := newInstance(t, cfg, "", 50*time.Millisecond)
	waitSynced(t, a)
	waitSynced(t, b)
	if err := a.store.Add(manualBan("192.0.2.1/32", time.Hour)); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "ban on b", func() bool { return isBanned(b.store, "192.0.2.1") })
	srv.Stop()
	srv.Restart()
	// A third instance, started after the restart, learns the ban from
	// the table the others rebuilt.
	c := newInstance(t, cfg, "", 50*time.Millisecond)
	redistest.Eventually(t, 15*time.Second, "ban rebuilt in redis", func() bool { return isBanned(c.store, "192.0.2.1") })
	if !isBanned(a.store, "192.0.2.1") || !isBanned(b.store, "192.0.2.1") {
		t.Error("ban lifted by the empty restart")
	}
}

// A change queued while Redis is down survives a restart of the instance
// (the outbox file), and is pushed once Redis answers.
func TestSharedOutboxSurvivesRestart(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redistest.Config(t, srv.Addr)
	cfg.Timeout = time.Second
	state := filepath.Join(t.TempDir(), "bans.json")
	b := newInstance(t, cfg, "", 50*time.Millisecond)
	waitSynced(t, b)
	srv.Freeze()

	c := *cfg
	conn := redistest.Connect(t, &c)
	st, err := Open(state, 100)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := NewShared(conn, st, SharedOptions{StateFile: state, ResyncInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sh.Start()
	if err := st.Add(manualBan("198.51.100.0/24", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !sh.queued(netip.MustParsePrefix("198.51.100.0/24")) {
		t.Fatalf("the ban is not queued (%d queued)", sh.Pending())
	}
	sh.Close()
	st.Close()

	// Redis answers again; the restarted instance pushes what it queued.
	srv.Thaw()
	a := newInstance(t, cfg, state, 50*time.Millisecond)
	redistest.Eventually(t, 15*time.Second, "queued ban on b", func() bool { return isBanned(b.store, "198.51.100.9") })
	redistest.Eventually(t, 10*time.Second, "outbox drained", func() bool { return a.shared.Pending() == 0 })
	if !isBanned(a.store, "198.51.100.9") {
		t.Error("the restarted instance lost its own queued ban")
	}
}

// A replayed change older than one made elsewhere loses: a ban queued
// during an outage does not bring back a ban lifted later on another
// instance.
func TestSharedReplayLosesToNewerChange(t *testing.T) {
	cfg := sharedCfg(t)
	a := newInstance(t, cfg, "", time.Hour)
	waitSynced(t, a)
	old := manualBan("192.0.2.128/25", time.Hour)
	// Lifted now (tombstone), then a replay of a ban made a minute ago.
	a.shared.push(record{Ban: Ban{Prefix: old.Prefix}, ModMS: time.Now().UnixMilli(), Removed: true}, false)
	old.Created = time.Now().Add(-time.Minute)
	if err := a.shared.send(record{Ban: old, UntilMS: old.Until.UnixMilli(), ModMS: old.Created.UnixMilli()}, true); err != nil {
		t.Fatal(err)
	}
	n, err := a.conn.Client.ZScore(context.Background(), a.conn.Prefix()+"bans:live", "192.0.2.128/25").Result()
	if err == nil {
		t.Errorf("older replayed ban is live in redis (score %v)", n)
	}
}

func redisZ(score float64, member string) goredis.Z { return goredis.Z{Score: score, Member: member} }

func seriesSum(t *testing.T, conn *redisconn.Conn, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(conn.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				if m.Counter != nil {
					sum += m.Counter.GetValue()
				}
			}
		}
	}
	return sum
}

// Records from Redis are checked like local changes: one that is malformed
// or broader than an operator may ban is not applied.
func TestSharedIgnoresHostileRecords(t *testing.T) {
	cfg := sharedCfg(t)
	a := newInstance(t, cfg, "", time.Hour)
	waitSynced(t, a)
	now := time.Now()
	for _, payload := range []string{
		`{"prefix":"0.0.0.0/0","reason":"x","source":"manual","created":"` + now.Format(time.RFC3339) + `","until":"` + now.Add(time.Hour).Format(time.RFC3339) + `"}`,
		`{"prefix":"::/16","reason":"x","source":"manual","created":"` + now.Format(time.RFC3339) + `","until":"` + now.Add(time.Hour).Format(time.RFC3339) + `"}`,
		`{"prefix":"192.0.2.1/32","reason":"x","source":"nobody","created":"` + now.Format(time.RFC3339) + `","until":"` + now.Add(time.Hour).Format(time.RFC3339) + `"}`,
		`not json`,
	} {
		a.shared.applyMessage("999999 " + payload)
	}
	if isBanned(a.store, "198.51.100.1") || isBanned(a.store, "192.0.2.1") || isBanned(a.store, "::1") {
		t.Errorf("a hostile record was applied: %v", a.store.List(time.Now()))
	}
}

// FuzzParseMessage: whatever arrives on the channel, parsing never panics,
// and what it accepts has a valid, normalised prefix and version.
func FuzzParseMessage(f *testing.F) {
	f.Add(`1 {"prefix":"192.0.2.0/24","reason":"r","source":"manual","created":"2026-01-01T00:00:00Z","until":"2026-01-01T01:00:00Z","until_ms":0,"mod_ms":0}`)
	f.Add(`7 {"prefix":"::ffff:192.0.2.1/128","removed":true,"mod_ms":1,"until_ms":0}`)
	f.Add(`x {}`)
	f.Add(`-1 {"prefix":"10.0.0.0/8"}`)
	f.Add("")
	f.Fuzz(func(t *testing.T, payload string) {
		v, rec, ok := parseMessage(payload)
		if !ok {
			return
		}
		if v < 0 || !rec.Prefix.IsValid() || rec.Prefix != normalize(rec.Prefix) {
			t.Fatalf("accepted %q as version %d, prefix %v", payload, v, rec.Prefix)
		}
	})
}

// queued reports whether a change of p waits in the outbox.
func (sh *Shared) queued(p netip.Prefix) bool {
	sh.outMu.Lock()
	defer sh.outMu.Unlock()
	for _, r := range sh.outbox {
		if r.Prefix == p {
			return true
		}
	}
	return false
}
