package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/audit/query"
)

// Summary aggregates the records matching f. A filter on time and action
// only (what a dashboard opens with) is answered from the rollup tables,
// reading the records themselves only for the partial hours at either end
// of the range; any other filter scans the matching records.
func (s *SQLite) Summary(ctx context.Context, f query.Filter, opts SummaryOptions) (*Summary, error) {
	sum, err := s.summary(ctx, f, opts)
	if err != nil {
		return nil, fmt.Errorf("summarise audit database %s: %w", s.path, err)
	}
	return sum, nil
}

func (s *SQLite) summary(ctx context.Context, f query.Filter, opts SummaryOptions) (*Summary, error) {
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// One read transaction: every part sees the same snapshot.
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()

	// Two queries: SQLite answers MIN or MAX alone from the index's ends,
	// but scans the whole index for both in one statement.
	var oldest, newest sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MIN(t) FROM records").Scan(&oldest); err != nil {
		return nil, err
	}
	if err := tx.QueryRowContext(ctx, "SELECT MAX(t) FROM records").Scan(&newest); err != nil {
		return nil, err
	}
	since, until := summaryRange(f, oldest.Int64, newest.Int64, s.opts.Now())
	if !oldest.Valid && f.Since.IsZero() && f.Until.IsZero() {
		since, until = 0, 0 // empty store, no range given: no series
	}
	width := pickBucket(time.Duration(until-since), opts.Bucket)
	a := newAggregator()
	const hour, day = int64(time.Hour), 24 * int64(time.Hour)
	h0, h1 := ceilTo(since, hour), floorTo(until, hour)
	if f.OnlyTime() && width%time.Minute == 0 && h0 < h1 {
		if err := s.rawInto(ctx, tx, a, withRange(f, since, h0)); err != nil {
			return nil, err
		}
		if err := s.rawInto(ctx, tx, a, withRange(f, h1, until)); err != nil {
			return nil, err
		}
		acond, aargs := actionCond(f)
		if err := countsInto(ctx, tx, a, h0, h1, width, acond, aargs); err != nil {
			return nil, err
		}
		for _, seg := range topSegments(h0, h1) {
			if err := topsInto(ctx, tx, a, seg, acond, aargs); err != nil {
				return nil, err
			}
		}
		a.dropEmpty()
	} else if err := s.rawInto(ctx, tx, a, f); err != nil {
		return nil, err
	}
	sum := a.finish(since, until, width, topN(opts))
	if err := ruleMessages(ctx, tx, sum); err != nil {
		return nil, err
	}
	return sum, nil
}

type segment struct {
	level    int
	from, to int64 // Unix ns, aligned to the level
	sign     int   // +1 adds the counts, -1 subtracts them
}

// topSegments covers the whole hours [h0, h1) with as few rollup rows as
// it can: whole days from the day level; a day that is mostly covered as
// the day minus its hours outside the range (hours still to come cost
// nothing); a day that is mostly outside as its hours in the range.
func topSegments(h0, h1 int64) []segment {
	const hour, day = int64(time.Hour), 24 * int64(time.Hour)
	var segs []segment
	for d := floorTo(h0, day); d < h1; d += day {
		from, to := max(h0, d), min(h1, d+day)
		switch {
		case from == d && to == d+day:
			if n := len(segs); n > 0 && segs[n-1].level == levelDay && segs[n-1].sign > 0 && segs[n-1].to == d {
				segs[n-1].to = to // extend a run of whole days
			} else {
				segs = append(segs, segment{levelDay, d, to, 1})
			}
		case to-from >= 12*hour:
			segs = append(segs, segment{levelDay, d, d + day, 1})
			if from > d {
				segs = append(segs, segment{levelHour, d, from, -1})
			}
			if to < d+day {
				segs = append(segs, segment{levelHour, to, d + day, -1})
			}
		default:
			segs = append(segs, segment{levelHour, from, to, 1})
		}
	}
	return segs
}

func ceilTo(x, w int64) int64  { return -floorDiv(-x, w) * w }
func floorTo(x, w int64) int64 { return floorDiv(x, w) * w }

// withRange narrows f to [from, to).
func withRange(f query.Filter, from, to int64) query.Filter {
	f.Since, f.Until = time.Unix(0, from).UTC(), time.Unix(0, to).UTC()
	return f
}

// actionCond is f's action filter on a rollup table's action column.
func actionCond(f query.Filter) (string, []any) {
	cond, args := "1", []any(nil)
	if len(f.Actions) > 0 {
		cond += " AND action IN (" + placeholders(len(f.Actions)) + ")"
		args = append(args, anys(f.Actions)...)
	}
	if len(f.NotActions) > 0 {
		cond += " AND action NOT IN (" + placeholders(len(f.NotActions)) + ")"
		args = append(args, anys(f.NotActions)...)
	}
	return cond, args
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// rawInto adds the records matching f, read from the records table.
func (s *SQLite) rawInto(ctx context.Context, q querier, a *aggregator, f query.Filter) error {
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return nil
	}
	cond, args := where(f)
	// n: a summary record counts the requests it stands for.
	rows, err := q.QueryContext(ctx, `SELECT r.t, r.ip, r.host, r.path, r.action, r.country, r.n FROM records r WHERE `+cond, args...)
	if err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	defer rows.Close()
	var t int64
	var ip []byte
	var host, path, action, country string
	var n int
	clients := map[string]string{}
	for rows.Next() {
		if err := rows.Scan(&t, &ip, &host, &path, &action, &country, &n); err != nil {
			return fmt.Errorf("scan records: %w", err)
		}
		a.count(t, action, n)
		if c, ok := clients[string(ip)]; ok {
			a.dim(dimClient, c, n)
		} else if addr, ok := ipFromKey(ip); ok {
			c = addr.String()
			clients[string(ip)] = c
			a.dim(dimClient, c, n)
		}
		a.dim(dimPath, path, n)
		a.dim(dimCountry, country, n)
		a.dim(dimHost, host, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	rows.Close()
	// CROSS JOIN keeps records outside: the matching records are found
	// first, then each one's rules through the primary key.
	rrows, err := q.QueryContext(ctx, `SELECT x.rule, SUM(r.n) FROM records r CROSS JOIN record_rules x ON x.seq = r.seq
		WHERE `+cond+` GROUP BY x.rule`, args...)
	if err != nil {
		return fmt.Errorf("count rules: %w", err)
	}
	defer rrows.Close()
	for rrows.Next() {
		var id, n int
		if err := rrows.Scan(&id, &n); err != nil {
			return fmt.Errorf("count rules: %w", err)
		}
		a.rules[id] += n
	}
	if err := rrows.Err(); err != nil {
		return fmt.Errorf("count rules: %w", err)
	}
	return nil
}

// countsInto adds the record counts of [from, to) (Unix ns, whole hours):
// per hour when the series bucket is whole hours, else per minute.
func countsInto(ctx context.Context, q querier, a *aggregator, from, to int64, width time.Duration, acond string, aargs []any) error {
	stmt := `SELECT minute, action, n FROM counts_minute WHERE minute >= ? AND minute < ? AND ` + acond
	if width%time.Hour == 0 {
		stmt = `SELECT bucket, action, n FROM tops WHERE level = 0 AND dim = 0 AND bucket >= ? AND bucket < ? AND ` + acond
	}
	rows, err := q.QueryContext(ctx, stmt, append([]any{from / 1e9, to / 1e9}, aargs...)...)
	if err != nil {
		return fmt.Errorf("read counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var start int64
		var action string
		var n int
		if err := rows.Scan(&start, &action, &n); err != nil {
			return fmt.Errorf("read counts: %w", err)
		}
		a.count(start*1e9, action, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read counts: %w", err)
	}
	return nil
}

// topsInto adds the rollup top counts of one segment.
func topsInto(ctx context.Context, q querier, a *aggregator, seg segment, acond string, aargs []any) error {
	args := append([]any{seg.level, seg.from / 1e9, seg.to / 1e9}, aargs...)
	rows, err := q.QueryContext(ctx, `SELECT dim, value, SUM(n) FROM tops
		WHERE level = ? AND dim IN (1, 2, 3, 4, 5) AND bucket >= ? AND bucket < ? AND `+acond+` GROUP BY dim, value`, args...)
	if err != nil {
		return fmt.Errorf("read top counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var dim, n int
		var value string
		if err := rows.Scan(&dim, &value, &n); err != nil {
			return fmt.Errorf("read top counts: %w", err)
		}
		n *= seg.sign
		if dim == dimRule {
			id, err := strconv.Atoi(value)
			if err == nil {
				a.rules[id] += n
			}
			continue
		}
		if dim > 0 && dim < len(a.dims) {
			a.dim(dim, value, n)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read top counts: %w", err)
	}
	return nil
}

// ruleMessages fills in the messages of the top rules.
func ruleMessages(ctx context.Context, q querier, sum *Summary) error {
	if len(sum.TopRules) == 0 {
		return nil
	}
	ids := make([]any, len(sum.TopRules))
	for i, r := range sum.TopRules {
		ids[i] = r.ID
	}
	rows, err := q.QueryContext(ctx, "SELECT id, message FROM rules WHERE id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+")", ids...)
	if err != nil {
		return fmt.Errorf("read rule messages: %w", err)
	}
	defer rows.Close()
	msgs := map[int]string{}
	for rows.Next() {
		var id int
		var msg string
		if err := rows.Scan(&id, &msg); err != nil {
			return fmt.Errorf("read rule messages: %w", err)
		}
		msgs[id] = msg
	}
	for i := range sum.TopRules {
		if m, ok := msgs[sum.TopRules[i].ID]; ok {
			sum.TopRules[i].Message = m
		}
	}
	return rows.Err()
}
