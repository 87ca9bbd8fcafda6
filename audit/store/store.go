// Package store keeps audit records where operators can search, summarise
// and review them: an embedded SQLite database (the default) or plain JSONL
// files read directly. Both implement Store, so the CLI and the dashboard
// work the same on either, and Follower, for live views.
//
//	OpenSQLite   the database: (*SQLite).Sink for an audit.Writer, retention
//	             by age and size, rollups for fast summaries (sqlite.go has
//	             the schema)
//	OpenFiles    read-only over JSON-lines audit files
//	OpenPostgres the cluster's shared store (cluster.postgres): every
//	             instance's records, daily partitions, COPY ingest, and
//	             (*Postgres).Sink, which spools to disk while PostgreSQL is
//	             unreachable (postgres.go, pg_*.go)
//	export       JSON lines, CSV and OCSF writers
//	storetest    realistic generated records for tests, benchmarks, demos
//
// Measured on 2 shared cores with 1,000,000 generated records over a week
// (bench_test.go): ingest about 7,500 records/s, a search with two filters
// under 65 ms, a summary filtered by time and action under 135 ms, 598 MiB
// on disk. A summary filtered on anything else reads the matching records:
// about 2.7 µs each, 2 s when 745,000 match.
//
// Place in the request path: after it. The gateway hands finished records to
// an audit.Writer; the SQLite store's Sink takes them from there in batches,
// never on the request's goroutine.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
)

// ErrNotFound is returned by Get for an unknown record id or prefix.
var ErrNotFound = errors.New("audit record not found")

// MinIDPrefix is the shortest id prefix Get resolves: request ids are 32
// hex digits, and six of them (16.7 million values) name one record among
// the thousands an operator looks at, while shorter ones would mostly be
// ambiguous.
const MinIDPrefix = 6

// MaxIDCandidates is how many record ids an AmbiguousIDError lists.
const MaxIDCandidates = 10

// AmbiguousIDError is returned by Get for a prefix that several record
// ids start with.
type AmbiguousIDError struct {
	Prefix string
	// Candidates are ids that start with Prefix, sorted, at most
	// MaxIDCandidates of them.
	Candidates []string
	// More is true when further ids start with Prefix.
	More bool
}

func (e *AmbiguousIDError) Error() string {
	more := ""
	if e.More {
		more = ", …"
	}
	return fmt.Sprintf("audit record id prefix %q is ambiguous: %s%s start with it; give more characters", e.Prefix, strings.Join(e.Candidates, ", "), more)
}

// ambiguous builds the error from the distinct ids found, sorted, of which
// there may be one more than MaxIDCandidates.
func ambiguous(prefix string, ids []string) *AmbiguousIDError {
	e := &AmbiguousIDError{Prefix: prefix, Candidates: ids}
	if len(ids) > MaxIDCandidates {
		e.Candidates, e.More = ids[:MaxIDCandidates], true
	}
	return e
}

// notFound is the error for an id that no record has (nor starts with).
func notFound(id string) error {
	if len(id) < MinIDPrefix {
		return fmt.Errorf("%w: %q (an id prefix needs at least %d characters)", ErrNotFound, id, MinIDPrefix)
	}
	return fmt.Errorf("%w: %q", ErrNotFound, id)
}

// Store is a searchable collection of audit records. Implementations are safe
// for concurrent use.
type Store interface {
	// Search returns records matching f, newest first, at most page.Limit
	// (a default of 100 when zero), continuing after page.After when set.
	Search(ctx context.Context, f query.Filter, page Page) (Result, error)
	// Get returns the record with this id, or, when no record has exactly
	// this id, the record whose id starts with it (at least MinIDPrefix
	// characters): operators copy ids from a terminal, and 32 hex digits
	// are long. A prefix that several ids start with is an
	// *AmbiguousIDError listing them; no match at all is ErrNotFound. When
	// records share an id (a record written twice), the newest is returned.
	Get(ctx context.Context, id string) (*audit.Entry, error)
	// Summary aggregates the records matching f.
	Summary(ctx context.Context, f query.Filter, opts SummaryOptions) (*Summary, error)
	Close() error
}

// Page bounds one Search call.
type Page struct {
	Limit int
	// After is the Result.Next cursor of the previous page; empty for the
	// first page.
	After string
}

// Result is one page of records.
type Result struct {
	Entries []*audit.Entry
	// Next continues the search after the last entry; empty when there is
	// nothing more.
	Next string
}

// SummaryOptions shape a Summary.
type SummaryOptions struct {
	// Bucket is the width of one point of the time series; zero picks one
	// that gives about 60 points over the filtered range.
	Bucket time.Duration
	// Top is how many rows each top list has; zero means 10.
	Top int
}

// Summary is what an operator looks at first: how much, when, and what.
type Summary struct {
	// Total counts every matching record: Blocked + Detected + Errors +
	// Allowed + Other. Allowed records are there when audit.log_all or
	// audit.sample_allowed keeps them; Other counts records with an action
	// this version does not know (none are written today).
	Total, Blocked, Detected, Errors int
	Allowed, Other                   int
	// Since and Until are the range the series covers: the filter's, or
	// from the oldest to the newest matching record when it has none
	// (until now when only Since is set).
	Since, Until time.Time
	// Bucket is the width of one point of Series.
	Bucket                 time.Duration
	Series                 []Bucket
	TopRules               []RuleCount
	TopClients, TopPaths   []Count
	TopCountries, TopHosts []Count
}

// Composition says what Total is made of, in one line for people:
// "1200 records: 1000 blocked, 150 detected, 2 errors, 48 allowed".
func (s *Summary) Composition() string {
	out := fmt.Sprintf("%d records: %d blocked, %d detected, %d errors, %d allowed", s.Total, s.Blocked, s.Detected, s.Errors, s.Allowed)
	if s.Other > 0 {
		out += fmt.Sprintf(", %d other", s.Other)
	}
	return out
}

// Bucket is one point of the time series.
type Bucket struct {
	Start                     time.Time
	Blocked, Detected, Errors int
}

// RuleCount is how often one rule matched in the selected records. Top
// lists leave out CRS bookkeeping rules (949110, 959100, 980170, ...):
// they match every blocked request and say nothing about the attack.
type RuleCount struct {
	ID      int
	Message string
	Count   int
}

// Count is how many selected records share one value.
type Count struct {
	Value string
	Count int
}
