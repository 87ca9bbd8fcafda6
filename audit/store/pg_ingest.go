package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portcullis-waf/portcullis/audit"
)

// pgRow reduces e to its columns, stamped with this instance's name (in
// the column and in the stored JSON).
func (p *Postgres) pgRow(e *audit.Entry, buf *bytes.Buffer) (row, error) {
	if e.Instance == "" && p.opts.Instance != "" {
		c := *e
		c.Instance = p.opts.Instance
		e = &c
	}
	r, err := toRow(e, buf)
	if err != nil {
		return row{}, err
	}
	return r, nil
}

var batchColumns = []string{"ord", "id", "t", "instance", "ip", "host", "path", "action", "stage", "status", "country", "n", "rules", "tags", "json"}

// Insert writes entries in one transaction (see insertRows); it returns
// how many were new (the others were already there).
func (p *Postgres) Insert(ctx context.Context, entries ...*audit.Entry) (int, error) {
	var buf bytes.Buffer
	rows := make([]row, 0, len(entries))
	instances := make([]string, 0, len(entries))
	for _, e := range entries {
		r, err := p.pgRow(e, &buf)
		if err != nil {
			return 0, err
		}
		rows = append(rows, r)
		inst := e.Instance
		if inst == "" {
			inst = p.opts.Instance
		}
		instances = append(instances, inst)
	}
	return p.insertRows(ctx, rows, instances)
}

// insertRows writes one batch in one transaction under the cluster-wide
// ingest lock: COPY straight into records (insertFast) or, when some of
// the batch is stored already, COPY into a temporary table and INSERT ...
// ON CONFLICT DO NOTHING (insertMerge); the rollups count only the rows
// that were new. Delivering a batch twice (after a timeout whose commit
// did happen) therefore changes nothing the second time.
func (p *Postgres) insertRows(ctx context.Context, rows []row, instances []string) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	if err := p.EnsureSchema(ctx); err != nil {
		return 0, err
	}
	n, err := p.insertOnce(ctx, rows, instances)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "23514" || pgErr.Code == "42P01") {
		// No partition for a row: another instance's retention dropped one
		// this process thought was there. Forget and create again.
		p.forgetPartitions()
		n, err = p.insertOnce(ctx, rows, instances)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: write %d records: %w", p.Describe(), len(rows), err)
	}
	return n, nil
}

func (p *Postgres) insertOnce(ctx context.Context, rows []row, instances []string) (int, error) {
	var days []int64
	for i := range rows {
		if d := floorDiv(rows[i].t, dayNanos); !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	n, err := p.insertFast(ctx, rows, instances, days)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		// Some of the batch is there already: a redelivery from the spool
		// (or a record twice in one batch). The fast path rolled back;
		// merge row by row instead.
		return p.insertMerge(ctx, rows, instances, days)
	}
	return n, err
}

// insertFast is the normal case, a batch none of whose records is stored
// yet: the rollups of the whole batch, counted here, and COPY straight
// into records, in one transaction. Any record already there makes the
// COPY fail with a unique violation on the primary key, which rolls back
// the rollups too, and the caller falls back to insertMerge; so a batch
// delivered twice still changes nothing. Under the ingest lock the only
// rows a COPY can collide with are committed ones.
//
// Against insertMerge it saves the temporary table and the INSERT ...
// SELECT ... RETURNING that copied every row a second time, and a round
// trip: the rollup upserts go with the lock, before the COPY.
func (p *Postgres) insertFast(ctx context.Context, rows []row, instances []string, days []int64) (int, error) {
	ru := newRollup()
	for i := range rows {
		ru.add(&rows[i], 1)
	}
	var created []int64
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		b.Queue("SELECT pg_advisory_xact_lock(hashtext($1))", p.opts.Schema+":ingest")
		created = p.queuePartitions(&b, days)
		queueRollup(&b, ru)
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return fmt.Errorf("take the ingest lock, create partitions, update the summary counts: %w", err)
		}
		// COPY keeps the source's order, so seq (the column default) is
		// batch order, as INSERT ... ORDER BY ord gives in insertMerge.
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"records"}, batchColumns[1:], copySource(rows, instances, false)); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Only now: a rollback (a redelivery's unique violation) takes the
	// partitions it created with it.
	p.partitionsCreated(created)
	return len(rows), nil
}

// copySource feeds rows to COPY, each led by its position in the batch
// when ord is set (the temporary table's first column).
func copySource(rows []row, instances []string, ord bool) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := &rows[i]
		ids := make([]int32, len(r.rules))
		for j, rr := range r.rules {
			ids[j] = int32(rr.id)
		}
		tags := r.tags
		if tags == nil {
			tags = []string{}
		}
		vals := []any{r.id, r.t, instances[i], r.ip, r.host, r.path, r.action, r.stage, int32(r.status), r.country, int32(r.n), ids, tags, r.json}
		if ord {
			vals = append([]any{int32(i)}, vals...)
		}
		return vals, nil
	})
}

// insertMerge writes a batch some of whose records may be stored already:
// COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING
// into records in batch order, and the rollups of the rows that were new.
func (p *Postgres) insertMerge(ctx context.Context, rows []row, instances []string, days []int64) (int, error) {
	inserted := 0
	var created []int64
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		// One round trip for what precedes the COPY: on a busy machine
		// each round trip waits for both processes to be scheduled, and
		// that wait, not the work, was most of a small batch's time.
		var b pgx.Batch
		b.Queue("SELECT pg_advisory_xact_lock(hashtext($1))", p.opts.Schema+":ingest")
		created = p.queuePartitions(&b, days)
		b.Queue(`CREATE TEMP TABLE IF NOT EXISTS portcullis_batch (
			ord integer, id text, t bigint, instance text, ip bytea, host text, path text, action text,
			stage text, status integer, country text, n integer, rules integer[], tags text[], json bytea
		) ON COMMIT DELETE ROWS`)
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return fmt.Errorf("take the ingest lock, create partitions and the batch table: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"portcullis_batch"}, batchColumns, copySource(rows, instances, true)); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		res, err := tx.Query(ctx, `INSERT INTO records (id, t, instance, ip, host, path, action, stage, status, country, n, rules, tags, json)
			SELECT id, t, instance, ip, host, path, action, stage, status, country, n, rules, tags, json
			FROM portcullis_batch ORDER BY ord
			ON CONFLICT DO NOTHING RETURNING id, t`)
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		type key struct {
			id string
			t  int64
		}
		fresh := map[key]bool{}
		var id string
		var t int64
		_, err = pgx.ForEachRow(res, []any{&id, &t}, func() error {
			fresh[key{id, t}] = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		ru := newRollup()
		for i := range rows {
			k := key{rows[i].id, rows[i].t}
			if fresh[k] {
				delete(fresh, k) // a duplicate inside the batch counts once
				ru.add(&rows[i], 1)
				inserted++
			}
		}
		var b2 pgx.Batch
		queueRollup(&b2, ru)
		if b2.Len() == 0 {
			return nil
		}
		if err := tx.SendBatch(ctx, &b2).Close(); err != nil {
			return fmt.Errorf("update the summary counts: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	p.partitionsCreated(created)
	return inserted, nil
}

// queueRollup queues on b the statements that add the batch's counts, one
// per table.
func queueRollup(b *pgx.Batch, ru *rollup) {
	if len(ru.counts) > 0 {
		var mins, ns []int64
		var acts []string
		for k, n := range ru.counts {
			mins, acts, ns = append(mins, k.minute), append(acts, k.action), append(ns, int64(n))
		}
		b.Queue(`INSERT INTO counts_minute (minute, action, n)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
			ON CONFLICT (minute, action) DO UPDATE SET n = counts_minute.n + excluded.n`, mins, acts, ns)
	}
	if len(ru.tops) > 0 {
		var levels, dims []int16
		var buckets, ns []int64
		var values, acts []string
		for k, n := range ru.tops {
			levels, dims, buckets = append(levels, int16(k.level)), append(dims, int16(k.dim)), append(buckets, k.bucket)
			values, acts, ns = append(values, k.value), append(acts, k.action), append(ns, int64(n))
		}
		b.Queue(`INSERT INTO tops (level, dim, bucket, value, action, n)
			SELECT * FROM unnest($1::smallint[], $2::smallint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[])
			ON CONFLICT (level, dim, bucket, value, action) DO UPDATE SET n = tops.n + excluded.n`,
			levels, dims, buckets, values, acts, ns)
	}
	if len(ru.msgs) > 0 {
		var ids []int32
		var msgs []string
		for id, m := range ru.msgs {
			ids, msgs = append(ids, int32(id)), append(msgs, m)
		}
		b.Queue(`INSERT INTO rule_messages (id, message)
			SELECT * FROM unnest($1::integer[], $2::text[])
			ON CONFLICT (id) DO UPDATE SET message = excluded.message WHERE rule_messages.message <> excluded.message`, ids, msgs)
	}
}
