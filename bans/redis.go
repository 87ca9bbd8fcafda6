package bans

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-waf/portcullis/internal/redisconn"
)

// Shared replicates a Store through Redis, so that every instance of a
// cluster enforces the same bans (issue 16). Lookups stay local: Banned
// never waits for Redis; only changes travel.
//
// Redis holds the truth: a hash of ban records by prefix, with sorted sets
// of the active bans (and of the automatic ones) by end, and tombstones of
// lifted bans for a day. Every change is made by one Lua script, which
// keeps the rules of Add (an operator's ban outranks an automatic one, the
// table is bounded by max_entries and makes room by dropping the automatic
// ban that ends first), bumps a version counter and publishes the change.
//
// How changes reach every instance:
//   - pub/sub: each instance applies published changes within
//     milliseconds. Messages carry the version; a gap (a lost message)
//     triggers a full resync at once.
//   - periodic check: every ResyncInterval (default 1s) the version and the
//     table's epoch are read (one round trip); a difference triggers a full
//     resync. So a change missed for any reason is repaired within about a
//     second.
//   - reconnects: every (re)subscription and every recovery of the
//     connection resyncs.
//
// Outages. A change made while Redis is unreachable (by the API, the CLI's
// spool or a strike) applies locally at once and is queued in an outbox,
// kept in a file beside the state file so that a restart does not lose it
// either. On recovery the queue is pushed before the resync, each change
// with the time it was made: a change made meanwhile on another instance
// that is newer wins, an older one loses. The local state file is written
// as today, so an instance restarted while Redis is down still enforces
// every ban it knew.
//
// Redis losing its data (a restart without persistence) is noticed by the
// table's epoch, a random value written with the first ban table: when it
// changes, each instance pushes the bans it holds back, so the table is
// rebuilt from the instances instead of lifting every ban.
//
// Strikes are counted in Redis too (Tracker uses Shared when set), so the
// strikes a client collects on N instances add up to the threshold; while
// Redis is down, the local tracker counts.
type Shared struct {
	conn     *redisconn.Conn
	store    *Store
	log      *slog.Logger
	ns       string // key prefix
	keys     []string
	channel  string
	interval time.Duration
	outPath  string // "" without a state file

	syncMu  sync.Mutex // orders resyncs and the application of messages
	applied int64      // newest version applied
	epoch   string     // the table's epoch at the last resync ("" before)

	outMu  sync.Mutex
	outbox []record // changes made while Redis was down, oldest first

	startOnce sync.Once
	resync    chan string // reasons; buffered 1
	done      chan struct{}
	wg        sync.WaitGroup
	unhook    func()
}

// record is a ban or, with Removed, a lifted ban, as stored in Redis and
// in the outbox. ModMS orders changes of one prefix made during an outage.
type record struct {
	Ban
	UntilMS int64 `json:"until_ms"`
	ModMS   int64 `json:"mod_ms"`
	Removed bool  `json:"removed,omitempty"`
}

// SharedOptions configure Shared; zero values take the defaults.
type SharedOptions struct {
	// StateFile is the Store's state file; the outbox is kept beside it
	// (StateFile + ".outbox"). Empty: the outbox is in memory only.
	StateFile string
	// ResyncInterval is how often the version is checked. Default 1s.
	ResyncInterval time.Duration
	// Log receives resyncs after gaps, outbox pushes and problems.
	Log *slog.Logger
}

// tombstoneKeep is how long a lifted ban is remembered in Redis, so that an
// instance pushing its outbox after an outage cannot bring back a ban that
// was lifted elsewhere after it was made there.
const tombstoneKeep = 24 * time.Hour

// NewShared attaches replication to store. Start begins it; until then
// changes are queued. The outbox file, if any, is read now.
func NewShared(conn *redisconn.Conn, store *Store, opts SharedOptions) (*Shared, error) {
	ns := conn.Prefix() + "bans:"
	sh := &Shared{
		conn:     conn,
		store:    store,
		log:      opts.Log,
		ns:       ns,
		keys:     []string{ns + "table", ns + "live", ns + "auto", ns + "tomb", ns + "ver", ns + "epoch"},
		channel:  ns + "events",
		interval: opts.ResyncInterval,
		resync:   make(chan string, 1),
		done:     make(chan struct{}),
	}
	if sh.log == nil {
		sh.log = slog.New(slog.DiscardHandler)
	}
	if sh.interval <= 0 {
		sh.interval = time.Second
	}
	if opts.StateFile != "" {
		sh.outPath = opts.StateFile + ".outbox"
		if err := sh.loadOutbox(); err != nil {
			return nil, err
		}
	}
	if !store.repl.CompareAndSwap(nil, sh) {
		return nil, errors.New("bans: store is already shared")
	}
	return sh, nil
}

// Start subscribes to changes, pushes the outbox and resyncs, and keeps
// doing so in the background until Close. Calling it again does nothing.
func (sh *Shared) Start() {
	sh.startOnce.Do(func() {
		sh.unhook = sh.conn.OnRecover(func() { sh.requestResync("reconnect") })
		sh.requestResync("start")
		sh.wg.Add(2)
		go sh.subscribe()
		go sh.syncLoop()
	})
}

// Close stops replication and detaches it from the store. Queued changes
// stay in the outbox file for the next start.
func (sh *Shared) Close() {
	sh.store.repl.CompareAndSwap(sh, nil)
	select {
	case <-sh.done:
		return
	default:
	}
	close(sh.done)
	if sh.unhook != nil {
		sh.unhook()
	}
	sh.wg.Wait()
}

// Pending is the number of changes waiting for Redis.
func (sh *Shared) Pending() int {
	sh.outMu.Lock()
	defer sh.outMu.Unlock()
	return len(sh.outbox)
}

func (sh *Shared) requestResync(reason string) {
	select {
	case sh.resync <- reason:
	default: // one is pending already
	}
}

// syncLoop runs resyncs when asked and checks the version periodically.
func (sh *Shared) syncLoop() {
	defer sh.wg.Done()
	t := time.NewTicker(sh.interval)
	defer t.Stop()
	for {
		reason := ""
		select {
		case <-sh.done:
			return
		case reason = <-sh.resync:
		case <-t.C:
			if !sh.conn.Up() || sh.unchanged() {
				continue
			}
			reason = "periodic"
		}
		if !sh.conn.Up() {
			continue // the recovery asks again
		}
		if err := sh.flushOutbox(); err != nil {
			sh.log.Warn("ban changes made while redis was unreachable are still queued", "pending", sh.Pending(), "err", err)
			continue
		}
		if err := sh.fullResync(reason); err != nil {
			sh.log.Warn("ban table resync failed; local bans stay in force", "reason", reason, "err", err)
		}
	}
}

// unchanged reports whether Redis's version and epoch are what this
// instance last applied (one round trip). An error counts as changed only
// when the connection is still up.
func (sh *Shared) unchanged() bool {
	var vals []any
	err := sh.conn.Do("ban_resync", func(ctx context.Context) error {
		var err error
		vals, err = sh.conn.Client.MGet(ctx, sh.keys[4], sh.keys[5]).Result()
		return err
	})
	if err != nil {
		return true // down now: the recovery resyncs
	}
	ver, _ := vals[0].(string)
	epoch, _ := vals[1].(string)
	v, _ := strconv.ParseInt(ver, 10, 64)
	sh.syncMu.Lock()
	defer sh.syncMu.Unlock()
	return v == sh.applied && epoch == sh.epoch
}

// subscribe applies published changes. A (re)subscription asks for a
// resync: messages may have been missed before it.
func (sh *Shared) subscribe() {
	defer sh.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps := sh.conn.Client.Subscribe(ctx, sh.channel)
	defer ps.Close()
	go func() {
		<-sh.done
		cancel()
		ps.Close()
	}()
	for {
		msg, err := ps.Receive(ctx)
		select {
		case <-sh.done:
			return
		default:
		}
		if err != nil {
			sh.conn.Failed("ban_subscribe", err)
			// The next Receive reconnects; not faster than the probe.
			select {
			case <-sh.done:
				return
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				sh.requestResync("reconnect")
			}
		case *redis.Message:
			sh.applyMessage(m.Payload)
		}
	}
}

// applyMessage applies "<version> <record JSON>".
func (sh *Shared) applyMessage(payload string) {
	v, rec, ok := parseMessage(payload)
	if !ok {
		sh.conn.Metrics().Message("invalid")
		sh.log.Warn("ignored a malformed ban change from redis", "bytes", len(payload))
		return
	}
	sh.syncMu.Lock()
	defer sh.syncMu.Unlock()
	if v <= sh.applied {
		sh.conn.Metrics().Message("stale") // already in a resync's snapshot
		return
	}
	if v != sh.applied+1 {
		sh.requestResync("gap")
	}
	sh.applied = v
	sh.conn.Metrics().Message("applied")
	sh.store.apply(rec)
}

// parseMessage reads "<version> <record JSON>" as published by the change
// script. ok is false for anything else.
func parseMessage(payload string) (v int64, rec record, ok bool) {
	vs, js, found := strings.Cut(payload, " ")
	v, err := strconv.ParseInt(vs, 10, 64)
	if !found || err != nil || v < 0 || json.Unmarshal([]byte(js), &rec) != nil || !rec.Prefix.IsValid() {
		return 0, record{}, false
	}
	rec.Prefix = normalize(rec.Prefix)
	return v, rec, true
}

// The scripts keep these keys: KEYS[1] table (hash prefix → record JSON),
// [2] live (zset of active bans by end, ms), [3] auto (the automatic ones),
// [4] tomb (zset of lifted bans by when they are forgotten), [5] version,
// [6] epoch. Expired bans and old tombstones are collected by every script
// run, a bounded number at a time.
const gcLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function gc(z, also)
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 200)
  for _, p in ipairs(old) do
    redis.call('HDEL', KEYS[1], p)
    redis.call('ZREM', z, p)
    if also then redis.call('ZREM', also, p) end
  end
end
gc(KEYS[2], KEYS[3])
gc(KEYS[4], nil)
`

// changeScript applies one change. ARGV: channel, prefix, record JSON,
// "ban" or "del", source, until (ms), the change's time (ms), "1" for a
// change replayed from an outbox (then a newer change of the prefix wins),
// max entries, tombstone lifetime (ms). Returns {1, version} when applied,
// {0, current record or ""} when not (the current one wins), {-1} when the
// table is full of manual bans.
var changeScript = redis.NewScript(gcLua + `
local prefix, rec, kind, source = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local untilms, modms, replay = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8] == '1'
local maxn, keep = tonumber(ARGV[9]), tonumber(ARGV[10])
local cur = redis.call('HGET', KEYS[1], prefix)
if cur then
  local c = cjson.decode(cur)
  if replay and c.mod_ms and c.mod_ms > modms then return {0, cur} end
  if kind == 'ban' and source == 'auto' and not c.removed and c.source == 'manual' and c.until_ms > now then
    return {0, cur}
  end
end
if kind == 'ban' then
  if untilms <= now then return {0, ''} end
  if not redis.call('ZSCORE', KEYS[2], prefix) and redis.call('ZCARD', KEYS[2]) >= maxn then
    local victim = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
    if not victim then return {-1} end
    redis.call('HDEL', KEYS[1], victim)
    redis.call('ZREM', KEYS[2], victim)
    redis.call('ZREM', KEYS[3], victim)
    local vv = redis.call('INCR', KEYS[5])
    redis.call('PUBLISH', ARGV[1], vv .. ' {"prefix":"' .. victim .. '","removed":true,"mod_ms":' .. now .. ',"until_ms":0}')
  end
  redis.call('HSET', KEYS[1], prefix, rec)
  redis.call('ZREM', KEYS[4], prefix)
  redis.call('ZADD', KEYS[2], untilms, prefix)
  if source == 'auto' then redis.call('ZADD', KEYS[3], untilms, prefix) else redis.call('ZREM', KEYS[3], prefix) end
else
  redis.call('HSET', KEYS[1], prefix, rec)
  redis.call('ZREM', KEYS[2], prefix)
  redis.call('ZREM', KEYS[3], prefix)
  redis.call('ZADD', KEYS[4], now + keep, prefix)
end
local v = redis.call('INCR', KEYS[5])
redis.call('PUBLISH', ARGV[1], v .. ' ' .. rec)
return {1, v}
`)

// snapshotScript returns {epoch, created (1 if this call set it),
// version, table as HGETALL}. ARGV[1] is the epoch to set if none exists.
var snapshotScript = redis.NewScript(gcLua + `
local created = 0
local e = redis.call('GET', KEYS[6])
if not e then
  redis.call('SET', KEYS[6], ARGV[1])
  e = ARGV[1]
  created = 1
end
local v = tonumber(redis.call('GET', KEYS[5]) or '0')
return {e, created, v, redis.call('HGETALL', KEYS[1])}
`)

// pushBan shares a ban added through Store.Add.
func (sh *Shared) pushBan(b Ban) {
	sh.push(record{Ban: b, UntilMS: b.Until.UnixMilli(), ModMS: time.Now().UnixMilli()}, false)
}

// pushRemoval shares a ban lifted through Store.Remove.
func (sh *Shared) pushRemoval(p netip.Prefix) {
	sh.push(record{Ban: Ban{Prefix: p}, ModMS: time.Now().UnixMilli(), Removed: true}, false)
}

// push sends one change, or queues it when Redis is down or fails.
func (sh *Shared) push(rec record, replay bool) {
	if !sh.conn.Up() {
		sh.enqueue(rec)
		return
	}
	if err := sh.send(rec, replay); err != nil {
		sh.enqueue(rec)
	}
}

// send runs the change script and applies its verdict locally.
func (sh *Shared) send(rec record, replay bool) error {
	js, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("bans: encode %s: %w", rec.Prefix, err)
	}
	kind, rp := "ban", "0"
	if rec.Removed {
		kind = "del"
	}
	if replay {
		rp = "1"
	}
	var res []any
	err = sh.conn.Do("ban", func(ctx context.Context) error {
		var err error
		res, err = changeScript.Run(ctx, sh.conn.Client, sh.keys, sh.channel, rec.Prefix.String(), js, kind, rec.Source,
			rec.UntilMS, rec.ModMS, rp, sh.store.max, tombstoneKeep.Milliseconds()).Slice()
		return err
	})
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return fmt.Errorf("bans: change script returned nothing")
	}
	switch code, _ := res[0].(int64); code {
	case -1:
		sh.log.Warn("ban not shared: the cluster's ban table is full of manual bans", "prefix", rec.Prefix.String(), "max_entries", sh.store.max)
	case 0:
		// The change lost to what Redis holds (an operator's ban outranks
		// an automatic one; a newer change wins over a replayed one):
		// take that here too.
		if len(res) > 1 {
			if cur, _ := res[1].(string); cur != "" {
				var winner record
				if json.Unmarshal([]byte(cur), &winner) == nil && winner.Prefix.IsValid() {
					sh.store.apply(winner)
				}
			} else if !rec.Removed {
				sh.store.apply(record{Ban: Ban{Prefix: rec.Prefix}, Removed: true}) // already over
			}
		}
	}
	return nil
}

// fullResync makes the local table Redis's, except for changes still in
// the outbox. When Redis lost its table (the epoch changed), the bans held
// here are pushed back first.
func (sh *Shared) fullResync(reason string) error {
	sh.syncMu.Lock()
	defer sh.syncMu.Unlock()
	var b [16]byte
	_, _ = rand.Read(b[:])
	var res []any
	err := sh.conn.DoWithin("ban_resync", max(sh.conn.Timeout(), 5*time.Second), func(ctx context.Context) error {
		var err error
		res, err = snapshotScript.Run(ctx, sh.conn.Client, sh.keys, hex.EncodeToString(b[:])).Slice()
		return err
	})
	if err != nil {
		return err
	}
	if len(res) != 4 {
		return fmt.Errorf("bans: snapshot script returned %d values, want 4", len(res))
	}
	epoch, _ := res[0].(string)
	created, _ := res[1].(int64)
	ver, _ := res[2].(int64)
	flat, _ := res[3].([]any)
	if created == 1 || (sh.epoch != "" && epoch != sh.epoch) {
		// A new table: Redis was empty (the first instance of a cluster,
		// or a restart without persistence). Seed it with what this
		// instance holds; the others do the same when they notice.
		// Versions start again with the new table.
		sh.epoch, sh.applied = epoch, ver
		sh.syncMu.Unlock()
		n := sh.reseed()
		sh.syncMu.Lock()
		if n > 0 {
			sh.log.Info("ban table in redis was empty or new: pushed this instance's bans", "bans", n)
		}
		sh.conn.Metrics().Resync("reseed")
		return nil // the version moved if anything was pushed: the next check resyncs
	}
	now := time.Now()
	active := make([]Ban, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		js, _ := flat[i+1].(string)
		var rec record
		if json.Unmarshal([]byte(js), &rec) != nil || !rec.Prefix.IsValid() {
			continue
		}
		if !rec.Removed && acceptable(rec.Ban) && rec.Active(now) {
			active = append(active, rec.Ban)
		}
	}
	sh.outMu.Lock()
	keep := make(map[netip.Prefix]bool, len(sh.outbox))
	for _, r := range sh.outbox {
		keep[r.Prefix] = true
	}
	sh.outMu.Unlock()
	sh.store.replace(active, keep, now)
	sh.epoch, sh.applied = epoch, ver
	sh.conn.Metrics().Resync(reason)
	return nil
}

// reseed pushes every active local ban as a replayed change (its creation
// time orders it against changes made elsewhere). Returns how many.
func (sh *Shared) reseed() int {
	n := 0
	for _, b := range sh.store.List(time.Now()) {
		if sh.send(record{Ban: b, UntilMS: b.Until.UnixMilli(), ModMS: b.Created.UnixMilli()}, true) != nil {
			break
		}
		n++
	}
	return n
}

// enqueue keeps a change for later; a newer change of the same prefix
// replaces an older one.
func (sh *Shared) enqueue(rec record) {
	sh.outMu.Lock()
	defer sh.outMu.Unlock()
	sh.outbox = slices.DeleteFunc(sh.outbox, func(r record) bool { return r.Prefix == rec.Prefix })
	sh.outbox = append(sh.outbox, rec)
	if len(sh.outbox) > sh.store.max {
		sh.outbox = sh.outbox[len(sh.outbox)-sh.store.max:] // bounded like the table
	}
	sh.conn.Metrics().Outbox(len(sh.outbox))
	if err := sh.saveOutboxLocked(); err != nil {
		sh.log.Error("ban change queued for redis could not be saved; it is lost if this instance restarts before redis returns", "err", err)
	}
}

// flushOutbox pushes the queued changes, oldest first, as replays.
func (sh *Shared) flushOutbox() error {
	sh.outMu.Lock()
	queued := slices.Clone(sh.outbox)
	sh.outMu.Unlock()
	if len(queued) == 0 {
		return nil
	}
	sent := 0
	var err error
	for _, rec := range queued {
		if err = sh.send(rec, true); err != nil {
			break
		}
		sent++
	}
	sh.outMu.Lock()
	// Drop what was sent, unless a newer change of the prefix was queued
	// meanwhile.
	for _, rec := range queued[:sent] {
		sh.outbox = slices.DeleteFunc(sh.outbox, func(r record) bool { return r.Prefix == rec.Prefix && r.ModMS == rec.ModMS })
	}
	sh.conn.Metrics().Outbox(len(sh.outbox))
	serr := sh.saveOutboxLocked()
	sh.outMu.Unlock()
	if sent > 0 {
		sh.log.Info("ban changes made while redis was unreachable were pushed", "changes", sent)
	}
	return errors.Join(err, serr)
}

// outboxFile is the outbox on disk.
type outboxFile struct {
	Version int      `json:"version"`
	Changes []record `json:"changes"`
}

func (sh *Shared) loadOutbox() error {
	data, err := os.ReadFile(sh.outPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bans: read %s: %w", sh.outPath, err)
	}
	var f outboxFile
	if err := json.Unmarshal(data, &f); err != nil || f.Version != 1 {
		return fmt.Errorf("bans: %s is corrupt (version %d): %v", sh.outPath, f.Version, err)
	}
	for _, r := range f.Changes {
		r.Prefix = normalize(r.Prefix)
		if r.Prefix.IsValid() {
			sh.outbox = append(sh.outbox, r)
		}
	}
	sh.conn.Metrics().Outbox(len(sh.outbox))
	return nil
}

func (sh *Shared) saveOutboxLocked() error {
	if sh.outPath == "" {
		return nil
	}
	if len(sh.outbox) == 0 {
		if err := os.Remove(sh.outPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bans: remove %s: %w", sh.outPath, err)
		}
		return nil
	}
	data, err := json.Marshal(outboxFile{Version: 1, Changes: sh.outbox})
	if err != nil {
		return err
	}
	return writeAtomic(sh.outPath, data)
}

// strikeScript adds one strike and reports whether the client reached the
// threshold within the window. KEYS[1] is the client's strike set; ARGV:
// now (µs), window (µs), threshold, a unique member "<µs>:<random>:<reason>".
// Returns the strikes' members (and forgets them) at the threshold, else
// the count. The set keeps at most threshold strikes and expires with the
// window.
var strikeScript = redis.NewScript(`
local now, window, thr = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local n = redis.call('ZCARD', KEYS[1])
if n > thr then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - thr - 1)
  n = thr
end
if n >= thr then
  local m = redis.call('ZRANGE', KEYS[1], 0, -1)
  redis.call('DEL', KEYS[1])
  return m
end
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(window / 1000)))
return n
`)

// strike counts a strike of client p in Redis. ok is false when Redis
// could not count it (the caller counts locally instead); reasons are the
// reasons of the strikes that reached the threshold, nil below it.
func (sh *Shared) strike(p netip.Prefix, reason string, now time.Time, threshold int, window time.Duration) (reasons []string, ok bool) {
	if !sh.conn.Up() {
		sh.conn.Metrics().Fallback("strike")
		return nil, false
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	member := strconv.FormatInt(now.UnixMicro(), 10) + ":" + hex.EncodeToString(rnd[:]) + ":" + reason
	var res any
	err := sh.conn.Do("strike", func(ctx context.Context) error {
		var err error
		res, err = strikeScript.Run(ctx, sh.conn.Client, []string{sh.ns + "strikes:" + p.String()},
			now.UnixMicro(), window.Microseconds(), threshold, member).Result()
		return err
	})
	if err != nil {
		sh.conn.Metrics().Fallback("strike")
		return nil, false
	}
	list, _ := res.([]any)
	for _, m := range list {
		s, _ := m.(string)
		parts := strings.SplitN(s, ":", 3)
		if len(parts) == 3 {
			reasons = append(reasons, parts[2])
		} else {
			reasons = append(reasons, "")
		}
	}
	return reasons, true
}

// apply makes one change received from Redis, without sharing it again.
// The table's bound holds: a new ban that finds it full pushes out the
// automatic ban ending soonest, or is not kept if all are manual.
func (s *Store) apply(rec record) {
	rec.Prefix = normalize(rec.Prefix)
	s.mu.Lock()
	if rec.Removed {
		if _, ok := s.bans[rec.Prefix]; !ok {
			s.mu.Unlock()
			return
		}
		s.delete(rec.Prefix)
	} else {
		if !acceptable(rec.Ban) || !rec.Active(time.Now()) {
			s.mu.Unlock()
			return
		}
		if old, ok := s.bans[rec.Prefix]; ok && sameBan(old, rec.Ban) {
			s.mu.Unlock()
			return
		}
		if _, exists := s.bans[rec.Prefix]; !exists && len(s.bans) >= s.max {
			s.dropExpired(time.Now())
			if len(s.bans) >= s.max && !s.dropSoonestAuto() {
				s.mu.Unlock()
				return
			}
		}
		s.put(rec.Ban)
	}
	s.gen++
	gen := s.gen
	s.mu.Unlock()
	_ = s.save(gen) // the next change or resync writes again
}

// replace makes the table hold exactly bans, except that prefixes in keep
// (changes not yet shared) stay as they are here.
func (s *Store) replace(bans []Ban, keep map[netip.Prefix]bool, now time.Time) {
	want := make(map[netip.Prefix]Ban, len(bans))
	for _, b := range bans {
		b.Prefix = normalize(b.Prefix)
		if !keep[b.Prefix] {
			want[b.Prefix] = b
		}
	}
	s.mu.Lock()
	changed := false
	for p := range s.bans {
		if _, ok := want[p]; !ok && !keep[p] {
			s.delete(p)
			changed = true
		}
	}
	for p, b := range want {
		if old, ok := s.bans[p]; ok && sameBan(old, b) {
			continue
		}
		if _, exists := s.bans[p]; !exists && len(s.bans) >= s.max {
			s.dropExpired(now)
			if len(s.bans) >= s.max && !s.dropSoonestAuto() {
				continue
			}
		}
		s.put(b)
		changed = true
	}
	if !changed {
		s.mu.Unlock()
		return
	}
	s.gen++
	gen := s.gen
	s.mu.Unlock()
	_ = s.save(gen)
}

// acceptable reports whether a ban from Redis may be applied: valid as a
// local one must be, and no broader than an operator may ban by hand
// (a hostile or corrupted record for 0.0.0.0/0 would refuse everyone).
func acceptable(b Ban) bool {
	return b.validate() == nil && checkBreadth(Command{Op: OpAdd, Prefix: b.Prefix}) == nil
}

// sameBan compares bans by value (times by instant: a ban that went
// through JSON has another time zone pointer).
func sameBan(a, b Ban) bool {
	return a.Prefix == b.Prefix && a.Reason == b.Reason && a.Source == b.Source && a.Created.Equal(b.Created) && a.Until.Equal(b.Until)
}
