package bans

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/every"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
	"github.com/portcullis-waf/portcullis/respond"
)

// Guard is the ban stage's state for one configuration: the ban table
// (shared through Redis with cluster.redis), the strike tracker, the worker
// that turns strikes into bans, and the upkeep that applies spooled
// commands and sweeps expired bans. A nil *Guard (bans off) refuses nobody
// and counts no strike.
//
// On a reload the next configuration's Guard takes over the same table
// (it holds the state file's lock) and, unless the strike settings
// changed, the strike counts.
type Guard struct {
	store    *Store
	shared   *Shared // the table's replication; nil without cluster.redis
	tracker  *Tracker
	strikes  map[int]bool // response statuses that count as strikes
	file     string
	settings config.BansConfig
	trusted  func(netip.Addr) bool
	log      *slog.Logger
	drain    every.Loop // applies spooled ban commands, sweeps expired bans

	strikeMu sync.RWMutex // guards pending against Close
	// pending strikes go to one worker: a ban is saved to disk, and that
	// must not happen on a request's goroutine.
	pending chan strike
	workers sync.WaitGroup
	dropped atomic.Uint64
	onBan   atomic.Pointer[func(Ban)]

	inherited, released bool // the table: taken over and not yet owned; taken over by a successor
}

type strike struct {
	addr   netip.Addr
	reason string
}

// GuardOptions say how a Guard is built.
type GuardOptions struct {
	// Source is the configuration file, for errors.
	Source string
	// Conn shares a new table through Redis (cluster.redis); nil: local.
	Conn *redisconn.Conn
	// From is the previous configuration's Guard on a reload (nil at start).
	From *Guard
	// Trusted tells the trusted proxies, which never collect strikes (a
	// load balancer's own requests).
	Trusted func(netip.Addr) bool
	Log     *slog.Logger
}

// NewGuard opens the ban table of cfg (or takes over From's). It returns
// nil and no error when bans are off.
func NewGuard(cfg config.BansConfig, opts GuardOptions) (*Guard, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	trusted := opts.Trusted
	if trusted == nil {
		trusted = func(netip.Addr) bool { return false }
	}
	g := &Guard{strikes: map[int]bool{}, file: cfg.StateFile, settings: cfg, trusted: trusted, log: log}
	fail := func(path string, err error) (*Guard, error) {
		return nil, config.Errors{{File: opts.Source, Path: path, Msg: err.Error()}}
	}
	if from := opts.From; from != nil && from.store != nil && from.file == cfg.StateFile {
		// The same table (it holds the file's lock); the strike counts
		// carry on unless the strike settings changed.
		g.store, g.shared, g.inherited = from.store, from.shared, true
		fs := from.settings
		if fs.Threshold == cfg.Threshold && fs.Window == cfg.Window && fs.Duration == cfg.Duration && fs.MaxEntries == cfg.MaxEntries {
			g.tracker = from.tracker
		}
	} else {
		var err error
		if g.store, err = Open(cfg.StateFile, cfg.MaxEntries); err != nil {
			return fail("bans.state_file", err)
		}
		if opts.Conn != nil {
			if g.shared, err = NewShared(opts.Conn, g.store, SharedOptions{StateFile: cfg.StateFile, Log: log.With("component", "bans")}); err != nil {
				_ = g.store.Close()
				return fail("bans.state_file", err)
			}
		}
	}
	if g.tracker == nil {
		var err error
		if g.tracker, err = NewTracker(g.store, cfg.Threshold, cfg.Window, cfg.Duration, cfg.MaxEntries); err != nil {
			if !g.inherited {
				if g.shared != nil {
					g.shared.Close()
				}
				_ = g.store.Close()
			}
			return fail("bans", err)
		}
	}
	for _, code := range cfg.StatusCodes {
		g.strikes[code] = true
	}
	return g, nil
}

// Store returns the ban table (nil when bans are off). A reload keeps the
// same table, so the admin listener may hold it for the process's life.
func (g *Guard) Store() *Store {
	if g == nil {
		return nil
	}
	return g.store
}

// OnBan sets what is told of every automatic ban (metrics, alerts); call it
// before Start.
func (g *Guard) OnBan(f func(Ban)) {
	if g != nil {
		g.onBan.Store(&f)
	}
}

// Start begins the replication, the upkeep and the strike worker.
func (g *Guard) Start() {
	if g == nil {
		return
	}
	if g.shared != nil {
		g.shared.Start() // once per table: a reload that took it over finds it running
	}
	// `portcullis bans add|remove` spools commands; apply them now (they
	// may have waited for a start) and every 2 s, and drop expired bans
	// from the state file.
	upkeep := func(context.Context) {
		if n, err := g.store.Drain(g.file, time.Now()); err != nil {
			g.log.Error("ban commands could not all be applied", "err", err)
		} else if n > 0 {
			g.log.Info("ban commands applied", "count", n)
		}
		if _, err := g.store.Sweep(time.Now()); err != nil {
			g.log.Error("expired bans could not be removed from the state file", "err", err)
		}
	}
	upkeep(context.Background())
	g.drain.Start(2*time.Second, upkeep)
	g.pending = make(chan strike, 4096)
	g.workers.Add(1)
	go func(pending chan strike) {
		defer g.workers.Done()
		for s := range pending {
			if banned, err := g.tracker.Strike(s.addr, s.reason, time.Now()); err != nil {
				g.log.Error("ban could not be saved", "client", s.addr.String(), "err", err)
			} else if banned {
				g.log.Warn("client banned", "client", s.addr.String(), "reason", s.reason)
				if f := g.onBan.Load(); f != nil {
					if b, ok := g.store.Banned(s.addr, time.Now()); ok {
						(*f)(b)
					}
				}
			}
		}
	}(g.pending)
}

// Close stops the worker and the upkeep and, unless a successor took it
// over (or it is not owned yet), closes the table.
func (g *Guard) Close() {
	if g == nil {
		return
	}
	g.drain.Stop()
	g.strikeMu.Lock()
	if g.pending != nil {
		close(g.pending)
		g.pending = nil
	}
	g.strikeMu.Unlock()
	g.workers.Wait()
	if !g.inherited && !g.released {
		// After the strike worker: its last bans are on disk (and in
		// Redis, or its outbox) first.
		if g.shared != nil {
			g.shared.Close()
		}
		_ = g.store.Close()
	}
}

// TakeOver commits a reload: g becomes the owner of the table it took over
// from prev, and prev stops its upkeep at once, so the spool is drained by
// one pipeline only. prev keeps serving its in-flight requests.
func (g *Guard) TakeOver(prev *Guard) {
	if prev == nil {
		return
	}
	prev.drain.Stop()
	if g != nil && g.inherited {
		prev.released, g.inherited = true, false
	}
}

// stage refuses banned clients.
type stage struct {
	store *Store
	next  http.Handler
}

// NewStage returns the ban stage in front of next: a banned client gets
// 403 and a record naming the ban. It returns next itself when bans are
// off.
func (g *Guard) NewStage(next http.Handler) http.Handler {
	if g == nil {
		return next
	}
	return &stage{store: g.store, next: next}
}

func (s *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := audit.FromContext(r.Context())
	if e.Addr.IsValid() {
		if ban, hit := s.store.Banned(e.Addr, time.Now()); hit {
			e.Block(audit.StageBan, fmt.Sprintf("banned (%s) until %s: %s", ban.Prefix, ban.Until.UTC().Format(time.RFC3339), ban.Reason))
			respond.Error(w, r, http.StatusForbidden, e.ID)
			return
		}
	}
	s.next.ServeHTTP(w, r)
}

var _ http.Handler = (*stage)(nil)

// strikeReason says why e is a strike, or "" when it is not one.
func (g *Guard) strikeReason(e *audit.Entry) string {
	if !e.Addr.IsValid() || e.AllowListed != "" || g.trusted(e.Addr) {
		return ""
	}
	switch {
	case e.Action == audit.ActionBlocked && e.Stage == audit.StageWAF:
		return "waf block"
	case e.Action == audit.ActionBlocked && e.Stage == audit.StageProtocol && e.InboundScore >= criticalScore:
		// Refused as malformed first, but the rules found an attack in it
		// too: a strike like any WAF block. Malformed requests alone are
		// not strikes; some broken but honest clients send them.
		return "waf findings in a malformed request"
	case e.Action != audit.ActionBlocked && e.Upstream != "" && g.strikes[e.Status]:
		return "status " + strconv.Itoa(e.Status)
	}
	return ""
}

// criticalScore is the CRS anomaly score of one critical finding.
const criticalScore = 5

// Strike reports misbehaviour once the record is complete: a WAF block, or
// a status the operator listed when it came from the upstream. Portcullis's
// own refusals (bans, lists, limits, unknown hosts) never count: a banned
// client would otherwise renew its own ban. Allow-listed clients and
// trusted proxies (a load balancer's own requests) never collect strikes.
func (g *Guard) Strike(e *audit.Entry) {
	if g == nil {
		return
	}
	reason := g.strikeReason(e)
	if reason == "" {
		return
	}
	g.strikeMu.RLock()
	defer g.strikeMu.RUnlock()
	if g.pending == nil {
		return
	}
	select {
	case g.pending <- strike{addr: e.Addr, reason: reason}:
	default:
		g.dropped.Add(1) // a flood of strikes: the worker catches up later
	}
}
