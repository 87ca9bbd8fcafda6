// Package bans keeps the table of client addresses and networks that are
// refused outright for a while, and the strike counters that put
// misbehaving clients into it.
//
// Place in the request path: the first of the cheap filters after the site's
// allow lists (gateway/filters.go checks Store.Banned before deny lists and
// feeds), so a banned client never costs a rate-limit decision or a
// rule-engine evaluation; it gets the neutral 403 and an audit record. The
// gateway reports misbehaviour afterwards, through Tracker.Strike: a WAF
// block, or a response status the operator configured (404 bursts from
// scanners, 401 bursts from password guessing). A client that collects
// enough strikes within the window is banned automatically; operators add
// and remove bans through admin/.
//
// Bans are temporary by design: every ban has an end. Permanent refusals
// belong in reputation/'s deny lists, which live in the configuration and are
// reviewed like it.
//
// The Store is local to one process and optionally persisted to a JSON file
// so bans survive a restart; two processes must not share one state file.
// Instances of a cluster share bans and strikes through Redis (Shared,
// redis.go): lookups stay local, changes travel.
package bans

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sources of a ban.
const (
	SourceAuto   = "auto"   // set by Tracker
	SourceManual = "manual" // set by an operator
	// SourceCrowdSec marks a ban that mirrors a CrowdSec decision (package
	// crowdsec): the Local API owns it and lifts it. It yields to a manual
	// ban and, like an automatic one, may be pushed out of a full table.
	SourceCrowdSec = "crowdsec"
)

// MaxReasonLen bounds Ban.Reason, so the table and its file stay bounded.
const MaxReasonLen = 512

// Ban refuses every address in Prefix from Created until Until.
type Ban struct {
	// Prefix is the banned network; a single address is a /32 or /128.
	// Stored masked (203.0.113.7/24 becomes 203.0.113.0/24) and with
	// IPv4-mapped IPv6 prefixes converted to IPv4, as client addresses are.
	Prefix netip.Prefix `json:"prefix"`
	// Reason says why, for operators (audit records, dashboard). It must not
	// contain secrets or request data; it is shown and stored as is.
	Reason string `json:"reason"`
	// Source is SourceAuto or SourceManual.
	Source string `json:"source"`
	// Created is when the ban was made. Add also takes it as the current
	// time when it clears out expired bans.
	Created time.Time `json:"created"`
	// Until is when the ban ends; it must be after Created. The ban applies
	// at instants before Until.
	Until time.Time `json:"until"`
}

// Active reports whether the ban applies at now.
func (b Ban) Active(now time.Time) bool { return now.Before(b.Until) }

// validate reports every problem with b, naming the prefix.
func (b Ban) validate() error {
	var errs []error
	if !b.Prefix.IsValid() {
		errs = append(errs, errors.New("prefix is missing or invalid"))
	}
	if b.Source != SourceAuto && b.Source != SourceManual && b.Source != SourceCrowdSec {
		errs = append(errs, fmt.Errorf("source %q must be %q or %q (or %q)", b.Source, SourceAuto, SourceManual, SourceCrowdSec))
	}
	if len(b.Reason) > MaxReasonLen {
		errs = append(errs, fmt.Errorf("reason is %d bytes, more than %d", len(b.Reason), MaxReasonLen))
	}
	if b.Created.IsZero() {
		errs = append(errs, errors.New("created time is missing"))
	}
	if !b.Until.After(b.Created) {
		errs = append(errs, fmt.Errorf("until %s is not after created %s",
			b.Until.Format(time.RFC3339), b.Created.Format(time.RFC3339)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ban %s: %w", b.Prefix, err)
	}
	return nil
}

// normalize puts a prefix in the form lookups use: masked, and an
// IPv4-mapped prefix (::ffff:192.0.2.0/120) as the IPv4 prefix it means,
// because Banned unmaps client addresses.
func normalize(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(a, p.Bits()).Masked()
}

// Errors Add may return; test with errors.Is.
var (
	// ErrFull means the table holds maxEntries bans none of which could be
	// made room for (all manual and active). The ban was not added.
	ErrFull = errors.New("ban table full")
	// ErrNotSaved means the change is in effect but could not be written
	// to the state file, so it will not survive a restart. The wrapped
	// error says why.
	ErrNotSaved = errors.New("ban change not saved")
)

// Store is the bounded table of bans. Safe for concurrent use: lookups take a
// shared lock and never wait for the disk; changes are written to the state
// file outside that lock.
type Store struct {
	path string
	max  int

	mu   sync.RWMutex
	bans map[netip.Prefix]Ban
	// lenCount counts bans per prefix length (index bits, plus 33 for IPv6
	// so both families fit one array); bits4 and bits6 list the lengths in
	// use, longest first. A lookup masks the address once per length in
	// use (typically one or two) instead of scanning the table.
	lenCount     [33 + 129]int
	bits4, bits6 []int
	gen          uint64 // bumped by every change

	saveMu   sync.Mutex // serialises writes of the state file
	savedGen uint64     // newest generation on disk

	lock *os.File // held while the store owns its state file

	// repl, when set, is told of every change made through Add and
	// Remove (not of changes it applies itself), to share them with the
	// other instances of a cluster (see Shared).
	repl atomic.Pointer[Shared]
}

// Open returns a store holding at most maxEntries bans. If path is not
// empty, bans are loaded from that JSON state file when it exists (bans
// already over are skipped, judged by the system clock) and every change is
// written back to it atomically. An empty path keeps bans in memory only.
//
// If the file holds more active bans than maxEntries (the limit was
// lowered), manual bans are kept first, then the auto bans that last longest.
// Open writes the file back at once, which drops what was skipped and proves
// that the directory is writable before the first ban needs it.
func Open(path string, maxEntries int) (*Store, error) {
	if maxEntries < 1 {
		return nil, fmt.Errorf("bans: maxEntries %d must be at least 1", maxEntries)
	}
	s := &Store{path: path, max: maxEntries, bans: make(map[netip.Prefix]Ban)}
	if path == "" {
		return s, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bans: create directory for %s: %w", path, err)
	}
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	loaded, err := load(path, time.Now())
	if err != nil {
		s.Close()
		return nil, err
	}
	if len(loaded) > maxEntries {
		slices.SortFunc(loaded, func(a, b Ban) int {
			if (a.Source == SourceManual) != (b.Source == SourceManual) {
				if a.Source == SourceManual {
					return -1
				}
				return 1
			}
			return b.Until.Compare(a.Until)
		})
		loaded = loaded[:maxEntries]
	}
	for _, b := range loaded {
		s.put(b)
	}
	s.gen++
	if err := s.save(s.gen); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the state file for another store (the next run, or a
// reloaded configuration that names another file). Every change is already
// on disk. A closed store still answers lookups.
func (s *Store) Close() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Banned returns the ban covering a at now, if any; with several, the most
// specific. It does not allocate. Expired bans never match, even before they
// are swept from the table.
func (s *Store) Banned(a netip.Addr, now time.Time) (Ban, bool) {
	if !a.IsValid() {
		return Ban{}, false
	}
	a = a.Unmap()
	s.mu.RLock()
	defer s.mu.RUnlock()
	bits := s.bits6
	if a.Is4() {
		bits = s.bits4
	}
	for _, n := range bits {
		p, _ := a.Prefix(n) // n <= BitLen, so no error; strips any zone
		if b, ok := s.bans[p]; ok && b.Active(now) {
			return b, true
		}
	}
	return Ban{}, false
}

// Add bans b.Prefix, replacing any ban of exactly that prefix (so adding
// again extends or shortens it). When the table is full it first drops
// expired bans (taking b.Created as the current time), then the automatic
// ban that would end soonest; manual bans are never pushed out, and if only
// they remain Add fails with ErrFull.
//
// The ban is in effect when Add returns nil or an error wrapping
// ErrNotSaved; any other error means it was not added.
func (s *Store) Add(b Ban) error {
	b.Prefix = normalize(b.Prefix)
	if err := b.validate(); err != nil {
		return fmt.Errorf("bans: add: %w", err)
	}
	s.mu.Lock()
	if old, exists := s.bans[b.Prefix]; exists && old.Source == SourceManual && b.Source != SourceManual && old.Active(b.Created) {
		// An operator's ban outranks an automatic one: a client must not
		// shorten its own manual ban by collecting strikes.
		s.mu.Unlock()
		return nil
	}
	if _, exists := s.bans[b.Prefix]; !exists && len(s.bans) >= s.max {
		s.dropExpired(b.Created)
		if len(s.bans) >= s.max && !s.dropSoonestAuto() {
			s.mu.Unlock()
			return fmt.Errorf("bans: add %s: %w (%d bans, all manual)", b.Prefix, ErrFull, s.max)
		}
	}
	s.put(b)
	s.gen++
	gen := s.gen
	s.mu.Unlock()
	err := s.save(gen)
	if r := s.repl.Load(); r != nil {
		r.pushBan(b)
	}
	return err
}

// Remove lifts the ban of exactly prefix (not bans of networks containing
// it), reporting whether there was one. The error, if any, wraps ErrNotSaved:
// the ban is lifted but would come back after a restart.
func (s *Store) Remove(prefix netip.Prefix) (bool, error) {
	prefix = normalize(prefix)
	if !prefix.IsValid() {
		return false, errors.New("bans: remove: invalid prefix")
	}
	s.mu.Lock()
	_, ok := s.bans[prefix]
	var gen uint64
	if ok {
		s.delete(prefix)
		s.gen++
		gen = s.gen
	}
	s.mu.Unlock()
	// Lifted everywhere, even when this instance had not heard of the
	// ban yet.
	if r := s.repl.Load(); r != nil {
		r.pushRemoval(prefix)
	}
	if !ok {
		return false, nil
	}
	return true, s.save(gen)
}

// RemoveFrom lifts the ban of exactly prefix only if source set it, so
// that a source lifting its own ban (a deleted CrowdSec decision) never
// lifts an operator's ban of the same prefix. It reports whether a ban
// was lifted; errors are as Remove's.
func (s *Store) RemoveFrom(prefix netip.Prefix, source string) (bool, error) {
	prefix = normalize(prefix)
	s.mu.RLock()
	b, ok := s.bans[prefix]
	s.mu.RUnlock()
	if !ok || b.Source != source {
		return false, nil
	}
	// A change between the look and the removal can only come from
	// another writer of the same prefix; the next stream update repairs it.
	return s.Remove(prefix)
}

// Sweep drops bans that are over at now and returns how many. Banned already
// ignores them; sweeping frees their room and removes them from the file.
// The gateway calls it periodically.
func (s *Store) Sweep(now time.Time) (int, error) {
	s.mu.Lock()
	n := s.dropExpired(now)
	if n == 0 {
		s.mu.Unlock()
		return 0, nil
	}
	s.gen++
	gen := s.gen
	s.mu.Unlock()
	return n, s.save(gen)
}

// List returns the bans in effect at now, ordered by prefix (IPv4 before
// IPv6, then by address, then shorter prefixes first).
func (s *Store) List(now time.Time) []Ban {
	s.mu.RLock()
	out := make([]Ban, 0, len(s.bans))
	for _, b := range s.bans {
		if b.Active(now) {
			out = append(out, b)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, byPrefix)
	return out
}

// Len returns the number of bans held, expired ones not yet swept included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.bans)
}

// put adds or replaces b; the prefix is normalised. Called with mu held.
func (s *Store) put(b Ban) {
	if _, exists := s.bans[b.Prefix]; !exists {
		s.countLen(b.Prefix, +1)
	}
	s.bans[b.Prefix] = b
}

// delete removes p, which must be present. Called with mu held.
func (s *Store) delete(p netip.Prefix) {
	delete(s.bans, p)
	s.countLen(p, -1)
}

func (s *Store) countLen(p netip.Prefix, delta int) {
	i := p.Bits()
	if p.Addr().Is6() {
		i += 33
	}
	before := s.lenCount[i]
	s.lenCount[i] += delta
	if (before == 0) == (s.lenCount[i] == 0) {
		return // the set of lengths in use is unchanged
	}
	// Rebuilt rather than edited: the slices may be held by a Banned call
	// that read them under the read lock before we took the write lock.
	s.bits4, s.bits6 = nil, nil
	for n := 32; n >= 0; n-- {
		if s.lenCount[n] > 0 {
			s.bits4 = append(s.bits4, n)
		}
	}
	for n := 128; n >= 0; n-- {
		if s.lenCount[33+n] > 0 {
			s.bits6 = append(s.bits6, n)
		}
	}
}

// dropExpired removes bans over at now. Called with mu held.
func (s *Store) dropExpired(now time.Time) int {
	n := 0
	for p, b := range s.bans {
		if !b.Active(now) {
			s.delete(p)
			n++
		}
	}
	return n
}

// dropSoonestAuto removes the automatic ban that ends first: it had the least
// time left to serve. Called with mu held.
func (s *Store) dropSoonestAuto() bool {
	var victim Ban
	found := false
	for _, b := range s.bans {
		if b.Source != SourceManual && (!found || b.Until.Before(victim.Until)) {
			victim, found = b, true
		}
	}
	if found {
		s.delete(victim.Prefix)
	}
	return found
}

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence,
// copying so a long original is not kept alive by the short one.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.Clone(strings.ToValidUTF8(s[:n], ""))
}

// byPrefix orders bans by prefix: IPv4 before IPv6, then by address, then
// shorter prefixes first.
func byPrefix(a, b Ban) int { return a.Prefix.Compare(b.Prefix) }
