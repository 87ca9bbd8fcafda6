package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLiteOptions configure OpenSQLite. The zero value keeps records forever
// and opens the database for writing.
type SQLiteOptions struct {
	// MaxAge deletes records older than this (by record time). 0: no limit.
	MaxAge time.Duration
	// MaxBytes deletes the oldest records while the database file and its
	// write-ahead log together hold more than this, then returns the freed
	// pages to the file system. 0: no limit. The files are measured every
	// CheckpointInterval and retention starts at once when they are over,
	// so they exceed it by at most what arrives while retention runs.
	MaxBytes int64
	// ReadOnly opens an existing database for searching only (the CLI beside
	// a running instance): no schema changes, no retention, no Sink.
	ReadOnly bool
	// RetentionInterval is how often MaxAge and MaxBytes are enforced.
	// Default: 1m.
	RetentionInterval time.Duration
	// ManualRetention turns the periodic enforcement off: the caller runs
	// EnforceRetention itself (and can then count what one run deleted).
	ManualRetention bool
	// CheckpointInterval is how often the write-ahead log is copied into
	// the database file and truncated when ingest left some behind, and
	// how often the files' size is checked against MaxBytes (retention
	// runs at once when they exceed it). Default: 500ms.
	CheckpointInterval time.Duration
	// WALLimit is the write-ahead log size past which an ingest
	// transaction checkpoints and truncates it right after committing, so
	// that steady writes cannot grow it without bound. Default: 4 MiB, or
	// MaxBytes/8 when that is smaller.
	WALLimit int64
	// Log receives retention errors. Default: slog.Default().
	Log *slog.Logger
	// Now is the clock for retention and open-ended summaries. Default:
	// time.Now.
	Now func() time.Time
}

// SQLite is an audit store in one SQLite file (WAL mode, so searches never
// wait for ingest). It is safe for concurrent use; records enter through
// Sink.
type SQLite struct {
	path string
	opts SQLiteOptions
	rdb  *sql.DB // readers: query_only connections
	wdb  *sql.DB // the one writer connection; nil when ReadOnly

	writeMu sync.Mutex // serialises ingest, retention and checkpoints

	stop      chan struct{}
	retainNow chan struct{}  // the files grew past MaxBytes: retention now
	loops     sync.WaitGroup // retention and checkpoints
	closeErr  error
	once      sync.Once

	warnMu      sync.Mutex // guards the checkpoint warning's rate limit
	warnedAt    time.Time
	warnSkipped int
}

var _ Store = (*SQLite)(nil)

// schemaVersion is PRAGMA user_version of a database this code writes.
// Each entry of migrations upgrades from its index to index+1.
const schemaVersion = 2

var migrations = []func(ctx context.Context, tx *sql.Tx) error{
	0: createSchemaV1,
	1: addWeightsV2,
}

// defaultWALLimit bounds the write-ahead log between checkpoints.
const defaultWALLimit = 4 << 20

// OpenSQLite opens (creating 0600 if needed, unless read-only) the database
// at path, brings its schema up to date and starts retention.
func OpenSQLite(path string, opts SQLiteOptions) (*SQLite, error) {
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = time.Minute
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 500 * time.Millisecond
	}
	if opts.WALLimit <= 0 {
		opts.WALLimit = defaultWALLimit
		if opts.MaxBytes > 0 {
			opts.WALLimit = min(opts.WALLimit, opts.MaxBytes/8)
		}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &SQLite{path: path, opts: opts, stop: make(chan struct{}), retainNow: make(chan struct{}, 1)}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open audit database %s: %w", path, err)
		}
	} else if err := createFile(path); err != nil {
		return nil, err
	}
	ctx := context.Background()
	if !opts.ReadOnly {
		wdb, err := sql.Open("sqlite", dsn(path, false))
		if err != nil {
			return nil, fmt.Errorf("open audit database %s: %w", path, err)
		}
		wdb.SetMaxOpenConns(1)
		wdb.SetMaxIdleConns(1)
		wdb.SetConnMaxLifetime(0)
		wdb.SetConnMaxIdleTime(0)
		s.wdb = wdb
		if err := s.migrate(ctx); err != nil {
			_ = wdb.Close()
			return nil, fmt.Errorf("audit database %s: %w", path, err)
		}
	}
	rdb, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		s.closeWriter()
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(4)
	rdb.SetMaxIdleConns(4)
	s.rdb = rdb
	if err := s.checkVersion(ctx); err != nil {
		s.closeWriter()
		_ = rdb.Close()
		return nil, fmt.Errorf("audit database %s: %w", path, err)
	}
	if !opts.ReadOnly {
		if !opts.ManualRetention {
			s.loops.Go(s.retentionLoop)
		}
		s.loops.Go(s.checkpointLoop)
	}
	return s, nil
}

// createFile creates the database file 0600 before SQLite does (SQLite
// would use the umask); its -wal and -shm files inherit the mode.
func createFile(path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create audit database directory %s: %w", dir, err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("create audit database %s: %w", path, err)
	}
	return f.Close()
}

// dsn builds the connection string: WAL, a busy timeout so a reader never
// fails on a checkpoint, immediate write transactions (no lock upgrades that
// could deadlock), and a WAL file truncated back after checkpoints.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "cache_size(-32768)")
	q.Add("_pragma", "mmap_size(1073741824)")
	q.Add("_pragma", "temp_store(memory)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "auto_vacuum(incremental)") // only takes effect on a new file
		q.Add("_pragma", "journal_mode(wal)")
		q.Add("_pragma", "synchronous(normal)")
		q.Add("_pragma", "journal_size_limit(4194304)")
		// SQLite's own automatic checkpoints are PASSIVE: under steady
		// writes they never reach the end of the log, which then grows
		// without bound (issue 13: 1.25 GB in 15 s). Ingest and
		// checkpointLoop run TRUNCATE checkpoints instead, with the write
		// lock held and a short busy timeout (see truncateWAL).
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

func (s *SQLite) migrate(ctx context.Context) error {
	var v int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this Portcullis understands (%d); use a newer binary", v, schemaVersion)
	}
	for ; v < schemaVersion; v++ {
		tx, err := s.wdb.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
		if err := migrations[v](ctx, tx); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
	}
	return nil
}

func (s *SQLite) checkVersion(ctx context.Context) error {
	var v int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case v == 0:
		return errors.New("not a Portcullis audit database (no schema)")
	case v > schemaVersion:
		return fmt.Errorf("schema version %d is newer than this Portcullis understands (%d); use a newer binary", v, schemaVersion)
	case v < schemaVersion:
		return fmt.Errorf("schema version %d is older than this Portcullis expects (%d); the running instance upgrades it", v, schemaVersion)
	}
	return nil
}

// Schema, version 1.
//
//	records        one row per record: the columns filters use, each indexed
//	               with time so "newest first within a filter" is an index walk
//	  seq          insertion order (AUTOINCREMENT: never reused, so tail and
//	               cursors survive retention)
//	  t            record time, Unix nanoseconds
//	  ip           client address: family byte 4 or 6 and the address
//	               bytes, so a CIDR filter is one index range; empty when
//	               unparsable
//	  host, path   query.NormalizeHost and query.RequestPath forms
//	record_json    the full record as JSON (DEFLATE with a preset dictionary,
//	               see compress.go), apart so filter scans stay small
//	record_rules   (seq, rule, t) for every matched rule, and record_tags
//	record_tags    (seq, tag, t) for every tag of any matched rule: indexed
//	               by (rule or tag, t) so "newest records with rule X" is
//	               one index walk
//	rules          the latest message of each rule id, for top lists
//	counts_minute  records per minute and action
//	tops           records per hour (level 0) or UTC day (level 1), dimension
//	               (0 all records with value '', 1 rule, 2 client, 3 path,
//	               4 country, 5 host), value and action: series and top lists
//	               over long ranges without touching records
//
// The rollups are maintained in the ingest transaction and decremented by
// the retention transaction, so they always equal the records present.
func createSchemaV1(ctx context.Context, tx *sql.Tx) error {
	const ddl = `
CREATE TABLE records (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	id      TEXT NOT NULL,
	t       INTEGER NOT NULL,
	ip      BLOB NOT NULL,
	host    TEXT NOT NULL,
	path    TEXT NOT NULL,
	action  TEXT NOT NULL,
	stage   TEXT NOT NULL,
	status  INTEGER NOT NULL,
	country TEXT NOT NULL
);
CREATE INDEX records_t ON records(t);
CREATE INDEX records_id ON records(id);
CREATE INDEX records_ip ON records(ip, t);
CREATE INDEX records_host ON records(host, t);
CREATE INDEX records_path ON records(path, t);
CREATE INDEX records_action ON records(action, t);
CREATE INDEX records_stage ON records(stage, t);
CREATE INDEX records_status ON records(status, t);
CREATE INDEX records_country ON records(country, t);
CREATE TABLE record_json (
	seq  INTEGER PRIMARY KEY,
	json BLOB NOT NULL
);
CREATE TABLE record_rules (
	seq  INTEGER NOT NULL,
	rule INTEGER NOT NULL,
	t    INTEGER NOT NULL,
	PRIMARY KEY (seq, rule)
) WITHOUT ROWID;
CREATE INDEX record_rules_rule ON record_rules(rule, t, seq);
CREATE TABLE record_tags (
	seq INTEGER NOT NULL,
	tag TEXT NOT NULL,
	t   INTEGER NOT NULL,
	PRIMARY KEY (seq, tag)
) WITHOUT ROWID;
CREATE INDEX record_tags_tag ON record_tags(tag, t, seq);
CREATE TABLE rules (
	id      INTEGER PRIMARY KEY,
	message TEXT NOT NULL
);
CREATE TABLE counts_minute (
	minute INTEGER NOT NULL,
	action TEXT NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (minute, action)
) WITHOUT ROWID;
CREATE TABLE tops (
	level  INTEGER NOT NULL,
	dim    INTEGER NOT NULL,
	bucket INTEGER NOT NULL,
	value  TEXT NOT NULL,
	action TEXT NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (level, dim, bucket, value, action)
) WITHOUT ROWID;
`
	if _, err := tx.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	return nil
}

// Schema version 2 adds records.n: how many requests a record stands for
// (audit.Entry.Weight: the count of a summary record, else 1). The rollups
// add and subtract n, so a summary of 5,000 refusals counts 5,000 in totals
// and top lists.
func addWeightsV2(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `ALTER TABLE records ADD COLUMN n INTEGER NOT NULL DEFAULT 1`); err != nil {
		return fmt.Errorf("add records.n: %w", err)
	}
	return nil
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

// Close stops retention and closes the database. Sinks must be closed first.
func (s *SQLite) Close() error {
	s.once.Do(func() {
		if !s.opts.ReadOnly {
			close(s.stop)
		}
		s.loops.Wait()
		var errs []error
		if s.wdb != nil {
			s.writeMu.Lock()
			// Fold the WAL back into the database so the file is whole.
			_, _ = s.wdb.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
			errs = append(errs, s.wdb.Close())
			s.writeMu.Unlock()
		}
		errs = append(errs, s.rdb.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close audit database %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

func (s *SQLite) closeWriter() {
	if s.wdb != nil {
		_ = s.wdb.Close()
	}
}
