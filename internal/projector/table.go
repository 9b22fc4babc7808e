package projector

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventsidecar/sidecar/internal/content"
)

// Table names. The projection writes Live; a rebuild writes Shadow and
// swaps it in at the end.
const (
	Live   = "content"
	Shadow = "content_rebuild"
)

// liveLockKey is the PostgreSQL advisory lock that orders writes to the
// live table against a rebuild's swap: every transaction on the live
// table holds it shared, the swap holds it exclusively. rebuildLockKey
// lets one rebuild run at a time. Both differ from goose's lock id.
const (
	liveLockKey    int64 = 0x5250_636f_6e74_0001
	rebuildLockKey int64 = 0x5250_636f_6e74_0002
)

// table writes folded changes into one table, live or shadow.
type table struct {
	name      string
	live      bool
	submitted string
	analyzed  string
}

// newTable returns the statements of the table called name. Every upsert
// is guarded by the row's version: an event at or below the version the
// row reflects, redelivered or replayed out of order, changes nothing.
func newTable(name string) table {
	id := pgx.Identifier{name}.Sanitize()
	return table{
		name: name,
		live: name == Live,
		submitted: `INSERT INTO ` + id + ` AS c
	(id, author_id, status, analysis, version, created_at, updated_at)
	VALUES ($1, $2, 'PENDING', NULL, $3, $4, $4)
ON CONFLICT (id) DO UPDATE SET
	author_id = EXCLUDED.author_id, status = EXCLUDED.status, analysis = NULL,
	version = EXCLUDED.version, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
WHERE c.version < EXCLUDED.version`,
		// A stream's events arrive in version order, so the row exists by
		// the time its ContentAnalyzed comes; the insert is for a stream
		// whose ContentSubmitted was parked.
		analyzed: `INSERT INTO ` + id + ` AS c
	(id, author_id, status, analysis, version, created_at, updated_at)
	VALUES ($1, NULL, 'ANALYZED', $2, $3, $4, $4)
ON CONFLICT (id) DO UPDATE SET
	status = EXCLUDED.status, analysis = EXCLUDED.analysis,
	version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
WHERE c.version < EXCLUDED.version`,
	}
}

// write folds changes, in order, in one transaction. A change is a no-op
// when the row is at its version or later.
func (t table) write(ctx context.Context, db beginner, changes []content.Change) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	b := &pgx.Batch{}
	if t.live {
		// Waits while a rebuild swaps the table; see Rebuild.
		b.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, liveLockKey)
	}
	for _, c := range changes {
		if c.Analyzed != nil {
			b.Queue(t.analyzed, c.ContentID, string(c.Analyzed.Result), c.Version, c.At)
		} else {
			b.Queue(t.submitted, c.ContentID, c.Submitted.AuthorID, c.Version, c.At)
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// badData reports whether err is PostgreSQL refusing the values of a
// write (data exceptions, class 22, and constraint violations, class 23):
// writing the same values again fails again.
func badData(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	return strings.HasPrefix(pg.Code, "22") || strings.HasPrefix(pg.Code, "23")
}

// createShadow makes an empty shadow table shaped like the live one:
// columns, defaults, constraints and indexes.
func createShadow(ctx context.Context, db execer) error {
	_, err := db.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{Shadow}.Sanitize()+`;
CREATE TABLE `+pgx.Identifier{Shadow}.Sanitize()+` (LIKE `+pgx.Identifier{Live}.Sanitize()+` INCLUDING ALL)`)
	if err != nil {
		return fmt.Errorf("create %s: %w", Shadow, err)
	}
	return nil
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// swap replaces the live table with the shadow table in one transaction,
// and gives the shadow's indexes the live table's index names.
func swap(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	live, shadow := pgx.Identifier{Live}.Sanitize(), pgx.Identifier{Shadow}.Sanitize()
	if _, err := tx.Exec(ctx, `DROP TABLE `+live); err != nil {
		return fmt.Errorf("drop the old %s: %w", Live, err)
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE `+shadow+` RENAME TO `+live); err != nil {
		return fmt.Errorf("rename %s: %w", Shadow, err)
	}
	rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = $1::regclass`, live)
	if err != nil {
		return err
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, ix := range indexes {
		if !strings.HasPrefix(ix, Shadow) {
			continue
		}
		to := Live + strings.TrimPrefix(ix, Shadow)
		if _, err := tx.Exec(ctx, `ALTER INDEX `+pgx.Identifier{ix}.Sanitize()+` RENAME TO `+
			pgx.Identifier{to}.Sanitize()); err != nil {
			return fmt.Errorf("rename index %s: %w", ix, err)
		}
	}
	return tx.Commit(ctx)
}

// countRows returns the number of rows of a table.
func countRows(ctx context.Context, db querier, name string) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{name}.Sanitize()).Scan(&n)
	return n, err
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
