package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
)

// Rollup dimensions and levels of the tops table.
const (
	dimCount = iota // value "": records per bucket and action
	dimRule
	dimClient
	dimPath
	dimCountry
	dimHost
)

const (
	levelHour = 0
	levelDay  = 1
)

var levelWidth = [...]int64{levelHour: 3600, levelDay: 86400} // seconds

// row is one record reduced to what the tables hold.
type row struct {
	id      string
	t       int64 // Unix nanoseconds
	ip      []byte
	client  string // canonical address text; "" when unparsable
	host    string
	path    string
	action  string
	stage   string
	status  int
	country string
	n       int // requests the record stands for (audit.Entry.Weight)
	json    []byte
	rules   []ruleRow // distinct by id
	tags    []string  // distinct tags of all rules
}

type ruleRow struct {
	id      int
	message string
}

// toRow reduces e to its columns and plain JSON; compressRows compresses
// the JSON later, for a whole batch at once.
func toRow(e *audit.Entry, buf *bytes.Buffer) (row, error) {
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return row{}, fmt.Errorf("encode audit record %s: %w", e.ID, err)
	}
	r := row{
		id:      e.ID,
		t:       e.Time.UnixNano(),
		ip:      []byte{},
		host:    validText(query.NormalizeHost(e.Host)),
		path:    validText(query.RequestPath(e.URI)),
		action:  e.Action,
		stage:   e.Stage,
		status:  e.Status,
		country: strings.ToUpper(e.Country),
		n:       e.Weight(),
		json:    bytes.Clone(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))),
	}
	if a, err := netip.ParseAddr(e.ClientIP); err == nil {
		a = a.Unmap().WithZone("")
		r.ip, r.client = ipKey(a), a.String()
	}
	seen := map[int]bool{}
	for i := range e.Rules {
		m := &e.Rules[i]
		if seen[m.ID] {
			// The same rule matching twice counts once per record; its
			// tags are the same rule's tags.
			continue
		}
		seen[m.ID] = true
		r.rules = append(r.rules, ruleRow{id: m.ID, message: validText(m.Message)})
		for _, t := range m.Tags {
			if t = validText(t); !slices.Contains(r.tags, t) {
				r.tags = append(r.tags, t)
			}
		}
	}
	return r, nil
}

// validText is s with every invalid UTF-8 sequence replaced by U+FFFD, as
// the record's JSON has it. A client can send a request target that is not
// UTF-8 (net/http accepts /caf\xe9); PostgreSQL refuses such text outright,
// and one such record would fail its whole batch.
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// ipKey is the column form of an address: a family byte (4 or 6) and the
// address bytes, so that every prefix is one range of byte strings and an
// IPv6 prefix never covers IPv4 clients (as in netip.Prefix.Contains).
func ipKey(a netip.Addr) []byte {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return append([]byte{4}, b[:]...)
	}
	b := a.As16()
	return append([]byte{6}, b[:]...)
}

// ipFromKey reverses ipKey; ok is false for the empty (unparsable) key.
func ipFromKey(k []byte) (netip.Addr, bool) {
	switch {
	case len(k) == 5 && k[0] == 4:
		return netip.AddrFrom4([4]byte(k[1:])), true
	case len(k) == 17 && k[0] == 6:
		return netip.AddrFrom16([16]byte(k[1:])), true
	}
	return netip.Addr{}, false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// unixSeconds floors Unix nanoseconds to seconds.
func unixSeconds(ns int64) int64 { return floorDiv(ns, int64(time.Second)) }

// rollup accumulates count changes for one transaction.
type rollup struct {
	counts map[countKey]int
	tops   map[topKey]int
	msgs   map[int]string
}

type countKey struct {
	minute int64
	action string
}

type topKey struct {
	level  int
	dim    int
	bucket int64
	value  string
	action string
}

func newRollup() *rollup {
	return &rollup{counts: map[countKey]int{}, tops: map[topKey]int{}, msgs: map[int]string{}}
}

// add counts r with sign +1 (ingest) or -1 (retention), weighted by the
// requests it stands for. Retention passes rows without tags or messages;
// only rule ids matter for the counts.
func (ru *rollup) add(r *row, sign int) {
	sign *= max(r.n, 1)
	sec := unixSeconds(r.t)
	ru.counts[countKey{floorDiv(sec, 60) * 60, r.action}] += sign
	for level, width := range levelWidth {
		bucket := floorDiv(sec, width) * width
		put := func(dim int, v string) {
			if v != "" {
				ru.tops[topKey{level, dim, bucket, v, r.action}] += sign
			}
		}
		ru.tops[topKey{level, dimCount, bucket, "", r.action}] += sign
		put(dimClient, r.client)
		put(dimPath, r.path)
		put(dimCountry, r.country)
		put(dimHost, r.host)
		for _, rr := range r.rules {
			put(dimRule, strconv.Itoa(rr.id))
		}
	}
	if sign > 0 {
		for _, rr := range r.rules {
			if rr.message != "" {
				ru.msgs[rr.id] = rr.message
			}
		}
	}
}

func (ru *rollup) maxMinute() int64 {
	var m int64
	first := true
	for k := range ru.counts {
		if first || k.minute > m {
			m, first = k.minute, false
		}
	}
	return m
}

// apply writes the accumulated changes in tx and drops rows that reach 0.
func (ru *rollup) apply(ctx context.Context, tx *sql.Tx) error {
	countStmt, err := tx.PrepareContext(ctx, `INSERT INTO counts_minute (minute, action, n) VALUES (?, ?, ?)
		ON CONFLICT (minute, action) DO UPDATE SET n = n + excluded.n`)
	if err != nil {
		return err
	}
	defer countStmt.Close()
	negative := false
	for k, n := range ru.counts {
		if n == 0 {
			continue
		}
		negative = negative || n < 0
		if _, err := countStmt.ExecContext(ctx, k.minute, k.action, n); err != nil {
			return fmt.Errorf("update minute counts: %w", err)
		}
	}
	if negative {
		// Retention deletes the oldest records: the emptied minutes are the
		// first ones, found through the primary key.
		if _, err := tx.ExecContext(ctx, `DELETE FROM counts_minute WHERE minute <= ? AND n <= 0`, ru.maxMinute()); err != nil {
			return fmt.Errorf("drop empty minute counts: %w", err)
		}
	}
	topStmt, err := tx.PrepareContext(ctx, `INSERT INTO tops (level, dim, bucket, value, action, n) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (level, dim, bucket, value, action) DO UPDATE SET n = n + excluded.n`)
	if err != nil {
		return err
	}
	defer topStmt.Close()
	var emptied []topKey
	for k, n := range ru.tops {
		if n == 0 {
			continue
		}
		if n < 0 {
			emptied = append(emptied, k)
		}
		if _, err := topStmt.ExecContext(ctx, k.level, k.dim, k.bucket, k.value, k.action, n); err != nil {
			return fmt.Errorf("update top counts: %w", err)
		}
	}
	if len(emptied) > 0 {
		del, err := tx.PrepareContext(ctx, `DELETE FROM tops WHERE level = ? AND dim = ? AND bucket = ? AND value = ? AND action = ? AND n <= 0`)
		if err != nil {
			return err
		}
		defer del.Close()
		for _, k := range emptied {
			if _, err := del.ExecContext(ctx, k.level, k.dim, k.bucket, k.value, k.action); err != nil {
				return fmt.Errorf("drop empty top counts: %w", err)
			}
		}
	}
	if len(ru.msgs) > 0 {
		msgStmt, err := tx.PrepareContext(ctx, `INSERT INTO rules (id, message) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET message = excluded.message WHERE message != excluded.message`)
		if err != nil {
			return err
		}
		defer msgStmt.Close()
		for id, msg := range ru.msgs {
			if _, err := msgStmt.ExecContext(ctx, id, msg); err != nil {
				return fmt.Errorf("update rule messages: %w", err)
			}
		}
	}
	return nil
}

// insert compresses rows, then writes them and their rollups in one
// transaction.
func (s *SQLite) insert(ctx context.Context, rows []row) error {
	if err := compressRows(rows); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	recStmt, err := tx.PrepareContext(ctx, `INSERT INTO records (id, t, ip, host, path, action, stage, status, country, n)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer recStmt.Close()
	jsonStmt, err := tx.PrepareContext(ctx, `INSERT INTO record_json (seq, json) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	defer jsonStmt.Close()
	ruleStmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO record_rules (seq, rule, t) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ruleStmt.Close()
	tagStmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO record_tags (seq, tag, t) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer tagStmt.Close()
	ru := newRollup()
	for i := range rows {
		r := &rows[i]
		res, err := recStmt.ExecContext(ctx, r.id, r.t, r.ip, r.host, r.path, r.action, r.stage, r.status, r.country, max(r.n, 1))
		if err != nil {
			return fmt.Errorf("insert record %s: %w", r.id, err)
		}
		seq, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("insert record %s: %w", r.id, err)
		}
		if _, err := jsonStmt.ExecContext(ctx, seq, r.json); err != nil {
			return fmt.Errorf("insert record %s: %w", r.id, err)
		}
		for _, rr := range r.rules {
			if _, err := ruleStmt.ExecContext(ctx, seq, rr.id, r.t); err != nil {
				return fmt.Errorf("insert rules of record %s: %w", r.id, err)
			}
		}
		for _, tag := range r.tags {
			if _, err := tagStmt.ExecContext(ctx, seq, tag, r.t); err != nil {
				return fmt.Errorf("insert tags of record %s: %w", r.id, err)
			}
		}
		ru.add(r, 1)
	}
	if err := ru.apply(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	// Still holding the write lock: if the log outgrew its limit, copy it
	// into the file and truncate it now, a bounded pause of the (audit
	// writer's, never a request's) ingest.
	if s.walSize() >= s.opts.WALLimit {
		if _, err := s.truncateWAL(ctx); err != nil {
			s.checkpointFailed(err)
		}
	}
	return nil
}

var codecs = sync.Pool{New: func() any { return newCodec() }}

// compressRows replaces the JSON of rows by its stored form, on as many
// cores as there are: compression is most of the CPU an insert costs
// outside SQLite, and SQLite itself allows only one writer.
func compressRows(rows []row) error {
	workers := min(runtime.GOMAXPROCS(0), (len(rows)+63)/64)
	if workers <= 1 {
		return compressSome(rows)
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	per := (len(rows) + workers - 1) / workers
	for w := range workers {
		part := rows[min(w*per, len(rows)):min((w+1)*per, len(rows))]
		wg.Go(func() { errs[w] = compressSome(part) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func compressSome(rows []row) error {
	c := codecs.Get().(*codec)
	defer codecs.Put(c)
	for i := range rows {
		blob, err := c.compress(rows[i].json)
		if err != nil {
			return fmt.Errorf("compress audit record %s: %w", rows[i].id, err)
		}
		rows[i].json = blob
	}
	return nil
}

// Insert writes entries in one transaction, synchronously: for imports and
// tests. Running instances use Sink.
func (s *SQLite) Insert(ctx context.Context, entries ...*audit.Entry) error {
	if s.wdb == nil {
		return errors.New("audit database is open read-only")
	}
	var buf bytes.Buffer
	rows := make([]row, 0, len(entries))
	for _, e := range entries {
		r, err := toRow(e, &buf)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if err := s.insert(ctx, rows); err != nil {
		return fmt.Errorf("audit database %s: %w", s.path, err)
	}
	return nil
}

// Sink returns an audit.Sink that adds records to the database. Write only
// encodes and queues a record in memory; Flush commits what is queued in one
// transaction. The audit.Writer flushes whenever its queue runs empty, every
// audit.Options.BatchSize records and every FlushInterval, so batches grow
// with load and a record never waits long; requests never wait for it: it
// runs on the Writer's goroutine. A batch that cannot be committed (a full
// disk) is dropped and reported by Flush, as the audit.Sink contract asks,
// so memory stays bounded and the next batch is tried afresh.
func (s *SQLite) Sink() (audit.Sink, error) {
	if s.wdb == nil {
		return nil, errors.New("audit database is open read-only")
	}
	return &sqliteSink{s: s}, nil
}

type sqliteSink struct {
	s       *SQLite
	pending []row
	buf     bytes.Buffer
}

// SinkName labels the sink in metrics and logs.
func (k *sqliteSink) SinkName() string { return "store" }

func (k *sqliteSink) Write(e *audit.Entry) error {
	r, err := toRow(e, &k.buf)
	if err != nil {
		return err
	}
	k.pending = append(k.pending, r)
	return nil
}

// Flush commits the pending records. A batch that cannot be written is
// dropped with an error naming how many records it held.
func (k *sqliteSink) Flush() error {
	if len(k.pending) == 0 {
		return nil
	}
	rows := k.pending
	k.pending = k.pending[:0]
	err := k.s.insert(context.Background(), rows)
	clear(rows) // drop references to the JSON buffers
	if err != nil {
		return fmt.Errorf("audit database %s: %d record(s) lost: %w", k.s.path, len(rows), err)
	}
	return nil
}

// Probe checks that the database's directory takes writes again.
func (k *sqliteSink) Probe() error { return audit.ProbeDir(filepath.Dir(k.s.path)) }

// Close commits what is pending. The database stays open.
func (k *sqliteSink) Close() error { return k.Flush() }
