package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
)

// DefaultLimit and MaxLimit bound one Search page.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// where translates f into a condition on the records table (alias r) with
// the same meaning as f.Match.
func where(f query.Filter) (string, []any) {
	var conds []string
	var args []any
	if !f.Since.IsZero() {
		conds = append(conds, "r.t >= ?")
		args = append(args, nanos(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "r.t < ?")
		args = append(args, nanos(f.Until))
	}
	for _, neg := range []bool{false, true} {
		not := ""
		if neg {
			not = "NOT "
		}
		ips, hosts, paths, rules, tags, actions, stages, statuses, countries :=
			f.ClientIPs, f.Hosts, f.PathPrefixes, f.RuleIDs, f.Tags, f.Actions, f.Stages, f.Statuses, f.Countries
		if neg {
			ips, hosts, paths, rules, tags, actions, stages, statuses, countries =
				f.NotClientIPs, f.NotHosts, f.NotPathPrefixes, f.NotRuleIDs, f.NotTags, f.NotActions, f.NotStages, f.NotStatuses, f.NotCountries
		}
		if len(ips) > 0 {
			// A prefix as wide as a /0-/7 (or IPv6 /0-/19) holds most
			// clients: walking the ip index and sorting would cost more
			// than filtering rows found another way, so "+" hides the
			// index from the planner.
			col := "r.ip"
			for _, p := range ips {
				if p.Addr().Is4() && p.Bits() < 8 || p.Addr().Is6() && p.Bits() < 20 {
					col = "+r.ip"
				}
			}
			var ors []string
			for _, p := range ips {
				lo, hi := prefixRange(p)
				ors = append(ors, col+" BETWEEN ? AND ?")
				args = append(args, lo, hi)
			}
			conds = append(conds, not+"("+strings.Join(ors, " OR ")+")")
		}
		if len(paths) > 0 {
			var ors []string
			for _, p := range paths {
				if hi, ok := prefixUpper(p); ok {
					ors = append(ors, "(r.path >= ? AND r.path < ?)")
					args = append(args, p, hi)
				} else {
					ors = append(ors, "r.path >= ?")
					args = append(args, p)
				}
			}
			conds = append(conds, not+"("+strings.Join(ors, " OR ")+")")
		}
		inList := func(col string, vals []any) {
			if len(vals) == 0 {
				return
			}
			conds = append(conds, col+" "+not+"IN ("+placeholders(len(vals))+")")
			args = append(args, vals...)
		}
		inList("r.host", anys(hosts))
		inList("r.action", anys(actions))
		inList("r.stage", anys(stages))
		inList("r.status", anys(statuses))
		inList("r.country", anys(countries))
		if len(rules) > 0 {
			conds = append(conds, "r.seq "+not+"IN (SELECT seq FROM record_rules WHERE rule IN ("+placeholders(len(rules))+"))")
			args = append(args, anys(rules)...)
		}
		if len(tags) > 0 {
			conds = append(conds, "r.seq "+not+"IN (SELECT seq FROM record_tags WHERE tag IN ("+placeholders(len(tags))+"))")
			args = append(args, anys(tags)...)
		}
	}
	if len(conds) == 0 {
		return "1", nil
	}
	return strings.Join(conds, " AND "), args
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anys[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// prefixRange is the first and last ip column value inside p.
func prefixRange(p netip.Prefix) ([]byte, []byte) {
	p = p.Masked()
	lo := ipKey(p.Addr())
	hi := bytes.Clone(lo)
	for i := p.Bits(); i < p.Addr().BitLen(); i++ {
		hi[1+i/8] |= 1 << (7 - i%8)
	}
	return lo, hi
}

// prefixUpper is the smallest string greater than every string starting
// with p (byte order), or false when there is none.
func prefixUpper(p string) (string, bool) {
	b := []byte(p)
	for len(b) > 0 && b[len(b)-1] == 0xff {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return "", false
	}
	b[len(b)-1]++
	return string(b), true
}

// cursor is a position in newest-first order.
type cursor struct {
	t, seq int64
}

func (c cursor) String() string {
	return strconv.FormatInt(c.t, 10) + "." + strconv.FormatInt(c.seq, 10)
}

func parseCursor(s string) (cursor, error) {
	ts, ss, ok := strings.Cut(s, ".")
	t, err1 := strconv.ParseInt(ts, 10, 64)
	seq, err2 := strconv.ParseInt(ss, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return cursor{}, fmt.Errorf("invalid page cursor %q", s)
	}
	return cursor{t, seq}, nil
}

func pageLimit(p Page) int {
	switch {
	case p.Limit <= 0:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

// Search returns records matching f, newest first (by record time).
func (s *SQLite) Search(ctx context.Context, f query.Filter, page Page) (Result, error) {
	limit := pageLimit(page)
	var after *cursor
	if page.After != "" {
		c, err := parseCursor(page.After)
		if err != nil {
			return Result{}, err
		}
		after = &c
	}
	q, args := searchQuery(f, after, limit+1)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return Result{}, fmt.Errorf("search audit database %s: %w", s.path, err)
	}
	defer rows.Close()
	var res Result
	var last cursor
	for rows.Next() {
		var c cursor
		var data []byte
		if err := rows.Scan(&c.seq, &c.t, &data); err != nil {
			return Result{}, fmt.Errorf("search audit database %s: %w", s.path, err)
		}
		if len(res.Entries) == limit {
			res.Next = last.String()
			break
		}
		e, err := decode(data)
		if err != nil {
			return Result{}, fmt.Errorf("search audit database %s: record %d: %w", s.path, c.seq, err)
		}
		res.Entries = append(res.Entries, e)
		last = c
	}
	if err := rows.Err(); err != nil {
		return Result{}, fmt.Errorf("search audit database %s: %w", s.path, err)
	}
	return res, nil
}

// searchQuery selects seq, t and the stored record of at most limit
// records matching f after the cursor, newest first. A filter on exactly
// one rule or one tag walks that rule's or tag's (t, seq) index backwards,
// so the newest matches come first without sorting them all; other
// filters leave the choice of index to SQLite.
func searchQuery(f query.Filter, after *cursor, limit int) (string, []any) {
	from, tcol, seqcol := "records r", "r.t", "r.seq"
	var driver []string
	var dargs []any
	switch {
	case len(f.RuleIDs) == 1:
		from = "record_rules x JOIN records r ON r.seq = x.seq"
		driver, dargs = []string{"x.rule = ?"}, []any{f.RuleIDs[0]}
		f.RuleIDs = nil
	case len(f.Tags) == 1:
		from = "record_tags x JOIN records r ON r.seq = x.seq"
		driver, dargs = []string{"x.tag = ?"}, []any{f.Tags[0]}
		f.Tags = nil
	}
	if driver != nil {
		tcol, seqcol = "x.t", "x.seq"
		if !f.Since.IsZero() {
			driver, dargs = append(driver, "x.t >= ?"), append(dargs, nanos(f.Since))
		}
		if !f.Until.IsZero() {
			driver, dargs = append(driver, "x.t < ?"), append(dargs, nanos(f.Until))
		}
	}
	cond, args := where(f)
	conds := append(driver, cond)
	args = append(dargs, args...)
	if after != nil {
		conds = append(conds, "("+tcol+" < ? OR ("+tcol+" = ? AND "+seqcol+" < ?))")
		args = append(args, after.t, after.t, after.seq)
	}
	args = append(args, limit)
	return `SELECT r.seq, r.t, j.json FROM ` + from + ` JOIN record_json j ON j.seq = r.seq
		WHERE ` + strings.Join(conds, " AND ") + ` ORDER BY ` + tcol + ` DESC, ` + seqcol + ` DESC LIMIT ?`, args
}

func decode(blob []byte) (*audit.Entry, error) {
	data, err := expand(blob)
	if err != nil {
		return nil, err
	}
	var e audit.Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Get returns the newest record with this id, or with the one id that
// starts with it. The prefix is one range of the id index (id >= prefix AND
// id < the next string after every extension of it), never a scan.
func (s *SQLite) Get(ctx context.Context, id string) (*audit.Entry, error) {
	e, err := s.getExact(ctx, id)
	if !errors.Is(err, ErrNotFound) || len(id) < MinIDPrefix {
		return e, err
	}
	ids, err := s.idsWithPrefix(ctx, id)
	if err != nil {
		return nil, err
	}
	switch len(ids) {
	case 0:
		return nil, notFound(id)
	case 1:
		return s.getExact(ctx, ids[0])
	}
	return nil, ambiguous(id, ids)
}

func (s *SQLite) getExact(ctx context.Context, id string) (*audit.Entry, error) {
	var data []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT j.json FROM records r JOIN record_json j ON j.seq = r.seq
		WHERE r.id = ? ORDER BY r.seq DESC LIMIT 1`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get audit record %q from %s: %w", id, s.path, err)
	}
	e, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("get audit record %q from %s: %w", id, s.path, err)
	}
	return e, nil
}

// idsWithPrefixQuery selects up to MaxIDCandidates+1 distinct ids starting
// with a prefix, in order, from the id index.
const idsWithPrefixQuery = `SELECT DISTINCT id FROM records WHERE id >= ? AND id < ? ORDER BY id LIMIT ?`

// idsWithPrefix returns the distinct ids starting with prefix, sorted, at
// most MaxIDCandidates+1 of them (one more says the list goes on).
func (s *SQLite) idsWithPrefix(ctx context.Context, prefix string) ([]string, error) {
	hi, ok := prefixUpper(prefix)
	if !ok {
		return nil, nil // all 0xff bytes: no request id looks like that
	}
	rows, err := s.rdb.QueryContext(ctx, idsWithPrefixQuery, prefix, hi, MaxIDCandidates+1)
	if err != nil {
		return nil, fmt.Errorf("look up audit record id prefix %q in %s: %w", prefix, s.path, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("look up audit record id prefix %q in %s: %w", prefix, s.path, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up audit record id prefix %q in %s: %w", prefix, s.path, err)
	}
	return ids, nil
}
