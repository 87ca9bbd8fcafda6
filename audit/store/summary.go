package store

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
)

// MaxSeriesPoints bounds a Summary's series: a requested bucket that would
// give more points is widened.
const MaxSeriesPoints = 2000

// niceBuckets are the widths an automatic bucket is chosen from.
var niceBuckets = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour,
}

// pickBucket returns the series width for a range of span: the requested
// one if it gives at most MaxSeriesPoints points, otherwise the smallest
// nice width giving about 60 (or at most MaxSeriesPoints) points.
func pickBucket(span, requested time.Duration) time.Duration {
	if requested > 0 && span/requested <= MaxSeriesPoints {
		return requested
	}
	want := span / 60
	if requested > 0 {
		want = span / MaxSeriesPoints
	}
	for _, b := range niceBuckets {
		if b >= want {
			return b
		}
	}
	return niceBuckets[len(niceBuckets)-1] * time.Duration(math.Ceil(float64(want)/float64(niceBuckets[len(niceBuckets)-1])))
}

// nanos converts t to Unix nanoseconds, clamped to the int64 range.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

const (
	kindOther = iota
	kindBlocked
	kindDetected
	kindError
	kindAllowed
)

func kindOf(action string) uint8 {
	switch action {
	case audit.ActionBlocked:
		return kindBlocked
	case audit.ActionDetected:
		return kindDetected
	case audit.ActionError:
		return kindError
	case audit.ActionAllowed:
		return kindAllowed
	}
	return kindOther
}

type point struct {
	t    int64
	kind uint8
	n    int
}

// aggregator builds a Summary from records or pre-counted rollups.
type aggregator struct {
	total, blocked, detected, errors int
	allowed, other                   int
	points                           []point // decided records, for the series
	rules                            map[int]int
	msgs                             map[int]string
	dims                             [dimHost + 1]map[string]int // by dim*; rules kept apart
}

func newAggregator() *aggregator {
	a := &aggregator{rules: map[int]int{}, msgs: map[int]string{}}
	for i := range a.dims {
		a.dims[i] = map[string]int{}
	}
	return a
}

// count adds n records of action at time t (Unix ns) to totals and series.
func (a *aggregator) count(t int64, action string, n int) {
	a.total += n
	k := kindOf(action)
	switch k {
	case kindBlocked:
		a.blocked += n
	case kindDetected:
		a.detected += n
	case kindError:
		a.errors += n
	case kindAllowed:
		a.allowed += n
		return
	default:
		a.other += n
		return
	}
	a.points = append(a.points, point{t, k, n})
}

func (a *aggregator) dim(d int, v string, n int) {
	if v != "" {
		a.dims[d][v] += n
	}
}

// entry adds one record read from a file, weighted by the requests it
// stands for (a summary record's count).
func (a *aggregator) entry(e *audit.Entry) {
	n := e.Weight()
	a.count(e.Time.UnixNano(), e.Action, n)
	client := ""
	if ip, err := query.ParsePrefix(e.ClientIP); err == nil {
		client = ip.Addr().String()
	}
	a.dim(dimClient, client, n)
	a.dim(dimPath, query.RequestPath(e.URI), n)
	a.dim(dimCountry, upper(e.Country), n)
	a.dim(dimHost, query.NormalizeHost(e.Host), n)
	var seen []int
	for i := range e.Rules {
		r := &e.Rules[i]
		if slices.Contains(seen, r.ID) {
			continue
		}
		seen = append(seen, r.ID)
		a.rules[r.ID] += n
		if r.Message != "" {
			a.msgs[r.ID] = r.Message
		}
	}
}

// dropEmpty forgets values whose counts a subtraction brought to zero.
func (a *aggregator) dropEmpty() {
	for id, n := range a.rules {
		if n <= 0 {
			delete(a.rules, id)
		}
	}
	for _, m := range a.dims {
		for v, n := range m {
			if n <= 0 {
				delete(m, v)
			}
		}
	}
}

// messages records the rule messages of e without counting it.
func (a *aggregator) messages(e *audit.Entry) {
	for i := range e.Rules {
		if r := &e.Rules[i]; r.Message != "" {
			a.msgs[r.ID] = r.Message
		}
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// finish turns the counts into a Summary with a series over [since, until)
// (Unix ns) in buckets of width.
func (a *aggregator) finish(since, until int64, width time.Duration, top int) *Summary {
	s := &Summary{Total: a.total, Blocked: a.blocked, Detected: a.detected, Errors: a.errors,
		Allowed: a.allowed, Other: a.other, Bucket: width}
	if since < until {
		s.Since, s.Until = time.Unix(0, since).UTC(), time.Unix(0, until).UTC()
		w := int64(width)
		base := floorDiv(since, w) * w
		n := floorDiv(until-1-base, w) + 1
		s.Series = make([]Bucket, n)
		for i := range s.Series {
			s.Series[i].Start = time.Unix(0, base+int64(i)*w).UTC()
		}
		for _, p := range a.points {
			i := floorDiv(p.t-base, w)
			if i < 0 || i >= n {
				continue
			}
			b := &s.Series[i]
			switch p.kind {
			case kindBlocked:
				b.Blocked += p.n
			case kindDetected:
				b.Detected += p.n
			case kindError:
				b.Errors += p.n
			}
		}
	}
	for id, n := range a.rules {
		if audit.IsBookkeepingID(id) {
			continue // 949110 and friends match every blocked request
		}
		s.TopRules = append(s.TopRules, RuleCount{ID: id, Message: a.msgs[id], Count: n})
	}
	slices.SortFunc(s.TopRules, func(x, y RuleCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.ID, y.ID))
	})
	if len(s.TopRules) > top {
		s.TopRules = s.TopRules[:top]
	}
	s.TopClients = topOf(a.dims[dimClient], top)
	s.TopPaths = topOf(a.dims[dimPath], top)
	s.TopCountries = topOf(a.dims[dimCountry], top)
	s.TopHosts = topOf(a.dims[dimHost], top)
	return s
}

func topOf(m map[string]int, top int) []Count {
	out := make([]Count, 0, len(m))
	for v, n := range m {
		out = append(out, Count{Value: v, Count: n})
	}
	slices.SortFunc(out, func(x, y Count) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Value, y.Value))
	})
	if len(out) > top {
		out = out[:top]
	}
	return out
}

func topN(opts SummaryOptions) int {
	if opts.Top <= 0 {
		return 10
	}
	return opts.Top
}

// summaryRange resolves the range a summary covers: since defaults to the
// oldest matching record; until to now when since is given, else to just
// after the newest record.
func summaryRange(f query.Filter, oldest, newest int64, now time.Time) (int64, int64) {
	since, until := oldest, newest+1
	if !f.Since.IsZero() {
		since = nanos(f.Since)
		until = max(nanos(now), since+1)
	}
	if !f.Until.IsZero() {
		until = nanos(f.Until)
	}
	return since, until
}
