// Package waf is the rule-engine stage: one Coraza transaction per request,
// running the rule set that rules built for the request's route.
//
// Place in the request path: after the cheap filters, before the proxy. It
// inspects the request line, headers and body (phases 1 and 2), denies through
// the shared neutral page, and, when response inspection is on, inspects the
// upstream's response (phases 3 and 4) before the client sees it. It writes
// its findings (matched rules, anomaly scores, verdict) into the request's
// audit entry and nothing else.
//
// Engines are compiled once per distinct rule set (rules.Key) and shared by
// every route with the same settings; compiling the CRS takes about a second
// and tens of megabytes, so this matters. One Gate, shared by every stage of
// the process, bounds how many requests are inside the engine at once
// (server.inspections).
package waf

import (
	"errors"
	"fmt"
	"sync"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/rules"
	"github.com/portcullis-waf/portcullis/waf/fastop"
)

// Engine is a compiled rule set with the settings it was built from. It is
// immutable and safe for concurrent use.
type Engine struct {
	Settings config.WAFSettings
	Key      string
	waf      coraza.WAF
	census   ruleCensus
}

// ruleCensus is what the compiled rule set holds, as far as the stage can
// skip the engine: which phases have rules, and whether any rule is not
// one of the engine rules that rules.Build always writes. It is taken
// from every rule added while compiling (removals by exclusions only make
// the set smaller, so it may overstate, never understate).
type ruleCensus struct {
	// responsePhases: a rule may run in phase 3, 4 or 5 (or in every
	// phase: phase 0). Without one, response inspection and phase 5 have
	// nothing to run. (Coraza's multiphase build tag, which runs rules in
	// inferred phases too, is not used by Portcullis.)
	responsePhases bool
	// others: a rule that is not one of engineRules (a custom rule, the
	// CRS, a plugin, a generated exclusion), or any custom SecLang text.
	others bool
}

// engineRules are the rules rules.Build writes for the portcullis profile
// without the CRS, whose effect the stage can tell from the request alone
// (see Stage.engineIdle): the URI parse error (200009), the argument limit
// in phases 1 and 2 (200004, 200005) and the lowered body limit for
// parsed bodies (rules.ParsedBodyLimitID, rules.ParsedTypeLimitID).
var engineRules = map[int]bool{200004: true, 200005: true, 200009: true, rules.ParsedBodyLimitID: true, rules.ParsedTypeLimitID: true}

func (c *ruleCensus) observe(r types.RuleMetadata) {
	if p := r.Phase(); p != types.PhaseRequestHeaders && p != types.PhaseRequestBody {
		c.responsePhases = true
	}
	if !engineRules[r.ID()] {
		c.others = true
	}
}

// argumentLimit is the engine's SecArgumentsLimit (rules.engineDirectives).
const argumentLimit = 1000

// Compile builds the engine for s. A rule error names the config field or
// file that holds the faulty rule.
func Compile(s config.WAFSettings) (*Engine, error) {
	key := rules.Key(s)
	if s.Mode == config.ModeOff {
		return &Engine{Settings: s, Key: key}, nil
	}
	pieces := rules.Build(s)
	fastop.Register() // faster @rx and @pm, same verdicts (issue 8, bench/FAST.md)
	var census ruleCensus
	// Custom SecLang may hold directives without a rule
	// (SecArgumentsLimit, SecRequestBodyLimit, …) that change what the
	// engine rules do; the observer sees rules only, so any custom text
	// keeps the engine in the path.
	census.others = len(s.RulesBefore)+len(s.RulesAfter) > 0
	cfg := experimental.WAFConfigWithRuleObserver(coraza.NewWAFConfig().WithRootFS(rules.FS()).WithDirectives(rules.Text(pieces)), census.observe)
	w, err := coraza.NewWAF(cfg)
	if err != nil {
		return nil, blame(pieces, err)
	}
	return &Engine{Settings: s, Key: key, waf: w, census: census}, nil
}

// blame finds the piece that breaks compilation by compiling ever longer
// prefixes of the rule set (a piece may depend on earlier ones, as an
// exclusion depends on the CRS), so the operator reads
// "sites[0].waf.rules_after[1].inline: ..." rather than a position in a
// generated document. Only a failed configuration pays for this.
func blame(pieces []rules.Piece, whole error) error {
	for i := range pieces {
		if _, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(rules.FS()).WithDirectives(rules.Text(pieces[:i+1]))); err != nil {
			return &CompileError{Origin: pieces[i].Origin, Err: err}
		}
	}
	return fmt.Errorf("compile rule set: %w", whole)
}

// CompileError is a rule set that does not compile, blamed on the piece
// that breaks it.
type CompileError struct {
	Origin string // a field path of the configuration, a rules file, or a part of the generated rule set
	Err    error
}

func (e *CompileError) Error() string { return e.Origin + ": " + e.Err.Error() }

func (e *CompileError) Unwrap() error { return e.Err }

// Close releases cached resources of the compiled rule set.
func (e *Engine) Close() error {
	if c, ok := e.waf.(experimental.WAFCloser); ok {
		return c.Close()
	}
	return nil
}

// Cache deduplicates engines by rule-set key. A reload builds its pipeline
// with Next of the previous cache, so an unchanged rule set is not compiled
// again, and the previous pipeline, once retired, closes only the engines
// nobody took over.
type Cache struct {
	mu      sync.Mutex
	engines map[string]*Engine
	prev    *Cache          // engines to take over before compiling
	handed  map[string]bool // keys a successor took over
	taken   map[string]bool // keys taken over from prev
}

// Discard undoes a Next whose configuration was not used (a failed
// reload): engines compiled for it are closed, those taken over are given
// back to the previous cache.
func (c *Cache) Discard() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for key, e := range c.engines {
		if c.taken[key] {
			c.prev.giveBack(key)
			continue
		}
		errs = append(errs, e.Close())
	}
	c.engines = map[string]*Engine{}
	return errors.Join(errs...)
}

func (c *Cache) giveBack(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.handed, key)
}

// Next returns an empty cache for the next configuration that takes engines
// over from c instead of compiling them again.
func (c *Cache) Next() *Cache {
	return &Cache{engines: map[string]*Engine{}, prev: c}
}

// Release closes the engines no successor took over. Call it when the
// pipeline that used c is retired.
func (c *Cache) Release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for key, e := range c.engines {
		if !c.handed[key] {
			errs = append(errs, e.Close())
		}
	}
	c.engines = map[string]*Engine{}
	c.prev = nil
	return errors.Join(errs...)
}

// take moves the engine for key from c to a successor, if c has it.
func (c *Cache) take(key string) *Engine {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.engines[key]
	if !ok {
		return nil
	}
	if c.handed == nil {
		c.handed = map[string]bool{}
	}
	c.handed[key] = true
	return e
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{engines: map[string]*Engine{}} }

// Get returns the engine for s, compiling it on first use.
func (c *Cache) Get(s config.WAFSettings) (*Engine, error) {
	key := rules.Key(s)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.engines[key]; ok {
		return e, nil
	}
	if c.prev != nil {
		if e := c.prev.take(key); e != nil {
			c.engines[key] = e
			if c.taken == nil {
				c.taken = map[string]bool{}
			}
			c.taken[key] = true
			return e, nil
		}
	}
	e, err := Compile(s)
	if err != nil {
		return nil, err
	}
	c.engines[key] = e
	return e, nil
}

// Len is the number of distinct compiled engines.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.engines)
}

// Close closes every engine.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, e := range c.engines {
		errs = append(errs, e.Close())
	}
	return errors.Join(errs...)
}
