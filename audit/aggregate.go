package audit

import (
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// AggregateOptions shape flood handling (audit.aggregate). A flood of
// near-identical decided records from one source (a client address, or its
// /64 for IPv6) keeps full detail for the first Samples records of each
// Window and counts the rest into one summary record, written when the
// window ends (or the writer closes). "Near-identical" is one key: source,
// site, route, stage, action, status, the reason with its numbers and quoted
// values blanked, and the matched rule ids. Allowed records (log_all,
// sample_allowed) are never aggregated.
//
// Per window the queued sinks therefore get at most
// (MaxKeys + catch-all keys) × (Samples + 1) decided records, whatever the
// request rate: a 1,000 req/s flood from one address costs Samples + 1
// records a window instead of 60,000 a minute.
type AggregateOptions struct {
	// Samples is how many records of one key are kept in full per window;
	// 0 turns aggregation off.
	Samples int
	// Window is how long one key's window lasts from its first record.
	// Default: 1m.
	Window time.Duration
	// MaxKeys bounds the keys held at once (memory: about 2 KiB each).
	// Beyond it, records are counted into catch-all keys per stage, action
	// and status, whose summaries say so (overflow: true). Default: 10000.
	MaxKeys int
}

func (o AggregateOptions) enabled() bool { return o.Samples > 0 }

const (
	aggShards = 16
	// maxCatchAll bounds the catch-all keys; beyond it everything shares
	// one key with stage, action and status left empty.
	maxCatchAll = 256
	// maxTemplateURI bounds the example URI a summary keeps.
	maxTemplateURI = 1024
	maxClassRules  = 32
	maxClassReason = 160
)

type aggKey struct {
	source, site, route, stage, action, class string
	status                                    int
	overflow                                  bool
}

type aggState struct {
	start       time.Time // window start (writer clock)
	kept        int       // records kept in full this window
	samples     []string  // their ids
	count       int       // records counted instead
	first, last time.Time // request times of the counted records
	tmpl        *Entry    // the first counted record, trimmed
}

type aggShard struct {
	mu sync.Mutex
	m  map[aggKey]*aggState
}

// aggregator decides per decided record whether it is kept in full or
// counted, and produces the summary records of ended windows. admit runs on
// request goroutines: it holds one shard's lock for a map lookup.
type aggregator struct {
	opts       AggregateOptions
	now        func() time.Time
	seed       maphash.Seed
	shards     [aggShards]aggShard
	keys       atomic.Int64 // ordinary keys held
	catchAll   atomic.Int64 // catch-all keys held
	aggregated atomic.Uint64
	overflow   atomic.Uint64
}

func newAggregator(opts AggregateOptions, now func() time.Time) *aggregator {
	if opts.Window <= 0 {
		opts.Window = time.Minute
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = 10000
	}
	a := &aggregator{opts: opts, now: now, seed: maphash.MakeSeed()}
	for i := range a.shards {
		a.shards[i].m = map[aggKey]*aggState{}
	}
	return a
}

// admit reports whether e is to be written in full; false means it was
// counted into its key's summary.
func (a *aggregator) admit(e *Entry) bool {
	k := aggKey{
		source: source(e.ClientIP), site: e.Site, route: e.Route,
		stage: e.Stage, action: e.Action, status: e.Status, class: class(e),
	}
	now := a.now()
	sh := a.shard(k)
	sh.mu.Lock()
	st := sh.m[k]
	if st == nil {
		if a.keys.Load() >= int64(a.opts.MaxKeys) {
			sh.mu.Unlock()
			return a.admitOverflow(e, now)
		}
		a.keys.Add(1)
		st = &aggState{start: now}
		sh.m[k] = st
	}
	keep := a.count(st, e)
	sh.mu.Unlock()
	return keep
}

// admitOverflow counts e into the catch-all key of its stage, action and
// status: the key table is full.
func (a *aggregator) admitOverflow(e *Entry, now time.Time) bool {
	a.overflow.Add(1)
	k := aggKey{stage: e.Stage, action: e.Action, status: e.Status, overflow: true}
	for {
		sh := a.shard(k)
		sh.mu.Lock()
		st := sh.m[k]
		if st == nil {
			if last := (aggKey{overflow: true}); a.catchAll.Load() >= maxCatchAll && k != last {
				sh.mu.Unlock()
				k = last
				continue
			}
			a.catchAll.Add(1)
			st = &aggState{start: now}
			sh.m[k] = st
		}
		keep := a.count(st, e)
		sh.mu.Unlock()
		return keep
	}
}

// count keeps e in full while the window has samples left, else counts it.
// The caller holds the shard's lock.
func (a *aggregator) count(st *aggState, e *Entry) bool {
	if st.kept < a.opts.Samples {
		st.kept++
		st.samples = append(st.samples, e.ID)
		return true
	}
	a.aggregated.Add(1)
	if st.count == 0 {
		st.tmpl = trimmed(e)
		st.first, st.last = e.Time, e.Time
	}
	st.count++
	if e.Time.Before(st.first) {
		st.first = e.Time
	}
	if e.Time.After(st.last) {
		st.last = e.Time
	}
	return false
}

func (a *aggregator) shard(k aggKey) *aggShard {
	var h maphash.Hash
	h.SetSeed(a.seed)
	h.WriteString(k.source)
	h.WriteString(k.class)
	return &a.shards[h.Sum64()%aggShards]
}

// sweep removes the keys whose window has ended (every key when all) and
// returns the summary records of those that counted anything.
func (a *aggregator) sweep(all bool) []*Entry {
	now := a.now()
	var out []*Entry
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for k, st := range sh.m {
			if !all && now.Sub(st.start) < a.opts.Window {
				continue
			}
			delete(sh.m, k)
			if k.overflow {
				a.catchAll.Add(-1)
			} else {
				a.keys.Add(-1)
			}
			if st.count > 0 {
				out = append(out, a.summary(k, st, now))
			}
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(x, y *Entry) int { return x.Time.Compare(y.Time) })
	return out
}

// summary builds the record that stands for the requests st counted.
func (a *aggregator) summary(k aggKey, st *aggState, now time.Time) *Entry {
	e := st.tmpl
	e.ID = newID()
	e.Time = st.first
	e.Summary = &Summary{
		Count: st.count, First: st.first, Last: st.last,
		WindowStart: st.start.UTC(), WindowEnd: now.UTC(),
		Source: k.source, Key: k.describe(), Samples: st.samples, Overflow: k.overflow,
	}
	if k.overflow {
		// Many sources: the first one's address would mislead.
		e.ClientIP, e.ClientPort, e.Peer, e.Country, e.ASN, e.ASOrg, e.AllowListed = "", 0, "", "", 0, "", ""
		e.Summary.Source = ""
	}
	return e
}

// describe is the key in words, for the summary record.
func (k aggKey) describe() string {
	if k.overflow {
		return "overflow stage=" + k.stage + " action=" + k.action + " status=" + strconv.Itoa(k.status)
	}
	return "source=" + k.source + " site=" + k.site + " route=" + k.route + " stage=" + k.stage +
		" action=" + k.action + " status=" + strconv.Itoa(k.status) + " " + k.class
}

// source is the aggregation source of a client address: the address, or the
// /64 of an IPv6 address (one subscriber's usual allocation), so rotating
// through one's own prefix does not escape aggregation.
func source(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		if len(ip) > 64 {
			ip = ip[:64]
		}
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// class is the part of the key that says why: the reason with numbers and
// quoted values blanked (a ban's expiry, a host name the client sent, an
// upstream's port), and the distinct matched rule ids in order.
func class(e *Entry) string {
	var b strings.Builder
	b.WriteString("reason=")
	inQuote, inDigits := false, false
	for _, r := range e.Reason {
		if b.Len() >= maxClassReason {
			break
		}
		switch {
		case r == '"':
			inQuote = !inQuote
			b.WriteRune(r)
		case inQuote:
		case r >= '0' && r <= '9':
			if !inDigits {
				b.WriteByte('#')
			}
			inDigits = true
			continue
		case r == utf8.RuneError:
		default:
			b.WriteRune(r)
		}
		inDigits = false
	}
	if len(e.Rules) > 0 {
		ids := make([]int, 0, len(e.Rules))
		for i := range e.Rules {
			if !slices.Contains(ids, e.Rules[i].ID) {
				ids = append(ids, e.Rules[i].ID)
			}
		}
		slices.Sort(ids)
		b.WriteString(" rules=")
		for i, id := range ids {
			if i == maxClassRules {
				b.WriteString(",…")
				break
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(id))
		}
	}
	return b.String()
}

// trimmed copies what a summary record keeps of its first counted record:
// no headers, no body, no matched data (the sample records have them), a
// bounded URI. A few hundred bytes held per key.
func trimmed(e *Entry) *Entry {
	t := &Entry{
		ClientIP: e.ClientIP, Peer: e.Peer, Country: e.Country, ASN: e.ASN, ASOrg: e.ASOrg,
		AllowListed: e.AllowListed, Host: e.Host, Method: e.Method, URI: e.URI, Protocol: e.Protocol,
		Site: e.Site, Route: e.Route, Status: e.Status, Action: e.Action, Stage: e.Stage, Reason: e.Reason,
		WAFMode: e.WAFMode, FailOpen: e.FailOpen, InboundScore: e.InboundScore, OutboundScore: e.OutboundScore,
		Upstream: e.Upstream,
	}
	if len(t.URI) > maxTemplateURI {
		cut := maxTemplateURI
		for cut > 0 && !utf8.RuneStart(t.URI[cut]) {
			cut--
		}
		t.URI = t.URI[:cut]
	}
	t.URI = strings.Clone(t.URI) // do not pin the request's buffers
	for _, r := range e.Rules {
		t.Rules = append(t.Rules, MatchedRule{ID: r.ID, Message: r.Message, MatchedVariable: r.MatchedVariable,
			Severity: r.Severity, Tags: r.Tags, ParanoiaLevel: r.ParanoiaLevel, Phase: r.Phase})
	}
	return t
}

// newID returns 16 random bytes in hex, like a request id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
