package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"
)

// Retention works in small transactions so ingest waits at most one chunk.
const (
	retentionChunk     = 2000
	retentionMaxChunks = 100 // per run; the next run continues
	vacuumMaxPages     = 16384
	optimizeEvery      = time.Hour
)

// retentionLoop enforces retention soon after opening (a database that
// sat unused may hold much to delete) and then every RetentionInterval,
// and refreshes the planner statistics hourly, first at the first run.
func (s *SQLite) retentionLoop() {
	next := time.NewTimer(min(5*time.Second, s.opts.RetentionInterval))
	defer next.Stop()
	var lastOptimize time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-next.C:
			next.Reset(s.opts.RetentionInterval)
		case <-s.retainNow:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if _, err := s.EnforceRetention(ctx); err != nil && ctx.Err() == nil {
			s.opts.Log.Error("audit database retention failed", "path", s.path, "err", err)
		}
		if time.Since(lastOptimize) >= optimizeEvery {
			lastOptimize = time.Now()
			if err := s.optimize(ctx); err != nil && ctx.Err() == nil {
				s.opts.Log.Warn("audit database optimize failed", "path", s.path, "err", err)
			}
		}
		cancel()
	}
}

// checkpointLoop truncates what ingest left in the write-ahead log (ingest
// itself truncates it whenever it passes WALLimit) and asks for retention
// as soon as the database and its log together exceed MaxBytes, rather
// than at the next RetentionInterval.
func (s *SQLite) checkpointLoop() {
	tick := time.NewTicker(s.opts.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		if s.walSize() > 0 {
			s.writeMu.Lock()
			if _, err := s.truncateWAL(context.Background()); err != nil {
				s.checkpointFailed(err)
			}
			s.writeMu.Unlock()
		}
		if s.opts.MaxBytes > 0 && s.diskBytes() > s.opts.MaxBytes {
			select {
			case s.retainNow <- struct{}{}:
			default:
			}
		}
	}
}

// checkpointFailed logs a failed checkpoint at most once per
// checkpointWarnEvery: on a full disk every one of them fails, twice a
// second, and the audit writer already reports the lost records.
func (s *SQLite) checkpointFailed(err error) {
	s.warnMu.Lock()
	now := time.Now()
	if !s.warnedAt.IsZero() && now.Sub(s.warnedAt) < checkpointWarnEvery {
		s.warnSkipped++
		s.warnMu.Unlock()
		return
	}
	skipped := s.warnSkipped
	s.warnedAt, s.warnSkipped = now, 0
	s.warnMu.Unlock()
	s.opts.Log.Warn("audit database checkpoint failed", "path", s.path, "err", err, "failures_not_logged", skipped, "next_line_after", checkpointWarnEvery.String())
}

const checkpointWarnEvery = time.Minute

// checkpointBusy bounds how long a checkpoint waits for readers of old
// log frames; the write lock is held meanwhile, so it bounds the pause of
// ingest too. A checkpoint that gives up has still copied what it could;
// the next one finishes.
const checkpointBusy = 100 * time.Millisecond

// truncateWAL copies the write-ahead log into the database file and
// truncates it to zero bytes. The caller holds writeMu, so no write
// transaction is open and the checkpoint only waits (at most
// checkpointBusy) for readers still using old frames. A PASSIVE checkpoint
// never waits, and under steady writes never completes: the log then grows
// for as long as the writes go on. complete is false when readers kept it
// from finishing.
func (s *SQLite) truncateWAL(ctx context.Context) (complete bool, err error) {
	if _, err := s.wdb.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", checkpointBusy.Milliseconds())); err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	defer func() { _, _ = s.wdb.ExecContext(context.Background(), "PRAGMA busy_timeout = 10000") }()
	var busy, frames, done int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	return busy == 0, nil
}

// walSize is the size of the write-ahead log file (0 when there is none).
func (s *SQLite) walSize() int64 {
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// diskBytes is what the database takes on disk: the file and its log.
func (s *SQLite) diskBytes() int64 {
	fi, err := os.Stat(s.path)
	if err != nil {
		return s.walSize()
	}
	return fi.Size() + s.walSize()
}

// optimize refreshes the statistics the query planner picks indexes by.
func (s *SQLite) optimize(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.wdb.ExecContext(ctx, "PRAGMA analysis_limit = 1000"); err != nil {
		return err
	}
	// 0x10002: look at every table, as recommended for long-lived
	// connections; cheap when the statistics are current.
	_, err := s.wdb.ExecContext(ctx, "PRAGMA optimize=0x10002")
	return err
}

// Analyze gathers planner statistics now (after a bulk import).
func (s *SQLite) Analyze(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.wdb.ExecContext(ctx, "PRAGMA analysis_limit = 1000"); err != nil {
		return err
	}
	if _, err := s.wdb.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze audit database: %w", err)
	}
	return nil
}

// EnforceRetention deletes records older than MaxAge, then the oldest
// records while the database and its write-ahead log together hold more
// than MaxBytes, and returns free pages to the file system. It does a
// bounded amount of work and reports how many records it deleted; the
// periodic run calls it every RetentionInterval, and at once when
// checkpointLoop sees the files past MaxBytes.
func (s *SQLite) EnforceRetention(ctx context.Context) (int, error) {
	if s.wdb == nil {
		return 0, nil
	}
	deleted := 0
	if s.opts.MaxAge > 0 {
		cutoff := s.opts.Now().Add(-s.opts.MaxAge).UnixNano()
		for range retentionMaxChunks {
			n, err := s.deleteOldest(ctx, cutoff, true, retentionChunk)
			deleted += n
			if err != nil {
				return deleted, err
			}
			if n < retentionChunk {
				break
			}
		}
	}
	if s.opts.MaxBytes > 0 {
		// Delete down to 90% so that the next few minutes of ingest do not
		// trigger another round at once.
		target := s.opts.MaxBytes / 10 * 9
		for range retentionMaxChunks {
			used, err := s.usedBytes(ctx)
			if err != nil {
				return deleted, err
			}
			if used <= s.opts.MaxBytes && (deleted == 0 || used <= target) {
				break
			}
			n, err := s.deleteOldest(ctx, 0, false, s.recordsOver(ctx, used, target))
			deleted += n
			if err != nil {
				return deleted, err
			}
			if n == 0 {
				break
			}
		}
	}
	if deleted > 0 || (s.opts.MaxBytes > 0 && s.diskBytes() > s.opts.MaxBytes) {
		// Also without deleting: free pages left by an earlier run that
		// hit its page limit still take disk space.
		if err := s.vacuum(ctx); err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// recordsOver estimates how many of the oldest records hold the bytes
// above target, from the average record size, so a small database is not
// emptied by one chunk; it is between 1 and retentionChunk.
func (s *SQLite) recordsOver(ctx context.Context, used, target int64) int {
	var lo, hi sql.NullInt64
	if err := s.wdb.QueryRowContext(ctx, "SELECT MIN(seq) FROM records").Scan(&lo); err != nil {
		return retentionChunk
	}
	if err := s.wdb.QueryRowContext(ctx, "SELECT MAX(seq) FROM records").Scan(&hi); err != nil || !lo.Valid {
		return retentionChunk
	}
	count := hi.Int64 - lo.Int64 + 1 // about: retention leaves few gaps
	perRecord := max(used/max(count, 1), 1)
	return int(min(max((used-target)/perRecord+1, 1), retentionChunk))
}

// usedBytes is the size of the pages in use (the file size once free pages
// are vacuumed) plus the write-ahead log, which it truncates first: the
// log takes disk space too, and under steady writes it is most of it.
func (s *SQLite) usedBytes(ctx context.Context) (int64, error) {
	s.writeMu.Lock()
	_, err := s.truncateWAL(ctx)
	s.writeMu.Unlock()
	if err != nil {
		return 0, err
	}
	var pages, free, size int64
	db := s.wdb
	if err := db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return 0, fmt.Errorf("page count: %w", err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
		return 0, fmt.Errorf("freelist count: %w", err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
		return 0, fmt.Errorf("page size: %w", err)
	}
	return (pages-free)*size + s.walSize(), nil
}

func (s *SQLite) vacuum(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.wdb.ExecContext(ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", vacuumMaxPages)); err != nil {
		return fmt.Errorf("incremental vacuum: %w", err)
	}
	// Copy the WAL into the file so the file really shrinks now, and
	// truncate the WAL the deletes have grown.
	_, err := s.truncateWAL(ctx)
	return err
}

// deleteOldest deletes up to retentionChunk of the oldest records (only
// those before cutoff when byAge) and their rollup counts in one
// transaction.
func (s *SQLite) deleteOldest(ctx context.Context, cutoff int64, byAge bool, limit int) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("retention: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	q := `SELECT seq, t, ip, host, path, action, country, n FROM records ORDER BY t LIMIT ?`
	args := []any{limit}
	if byAge {
		q = `SELECT seq, t, ip, host, path, action, country, n FROM records WHERE t < ? ORDER BY t LIMIT ?`
		args = []any{cutoff, limit}
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("retention: select: %w", err)
	}
	var batch []row
	bySeq := map[int64]int{}
	var seqs []any
	for rows.Next() {
		var r row
		var seq int64
		if err := rows.Scan(&seq, &r.t, &r.ip, &r.host, &r.path, &r.action, &r.country, &r.n); err != nil {
			rows.Close()
			return 0, fmt.Errorf("retention: scan: %w", err)
		}
		if a, ok := ipFromKey(r.ip); ok {
			r.client = a.String()
		}
		bySeq[seq] = len(batch)
		batch = append(batch, r)
		seqs = append(seqs, seq)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("retention: select: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?,", len(seqs)), ",") + ")"
	if err := attachRules(ctx, tx, in, seqs, bySeq, batch); err != nil {
		return 0, err
	}
	for _, table := range []string{"record_rules", "record_tags", "record_json", "records"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE seq IN "+in, seqs...); err != nil {
			return 0, fmt.Errorf("retention: delete from %s: %w", table, err)
		}
	}
	ru := newRollup()
	for i := range batch {
		ru.add(&batch[i], -1)
	}
	if err := ru.apply(ctx, tx); err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("retention: commit: %w", err)
	}
	return len(batch), nil
}

// attachRules fills in the distinct rule ids of the rows in batch.
func attachRules(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, in string, seqs []any, bySeq map[int64]int, batch []row) error {
	rows, err := q.QueryContext(ctx, "SELECT seq, rule FROM record_rules WHERE seq IN "+in, seqs...)
	if err != nil {
		return fmt.Errorf("read rules: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var id int
		if err := rows.Scan(&seq, &id); err != nil {
			return fmt.Errorf("read rules: %w", err)
		}
		if i, ok := bySeq[seq]; ok {
			batch[i].rules = append(batch[i].rules, ruleRow{id: id})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read rules: %w", err)
	}
	return nil
}
