package projector

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/eventsidecar/sidecar/internal/content"
	"github.com/eventsidecar/sidecar/internal/subscriber"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// ErrRebuildRunning is returned by Rebuild while another rebuild of the
// same database runs.
var ErrRebuildRunning = errors.New("another rebuild of the content table is running")

// Rebuild replays the whole topic into a new table and swaps it in for
// the live one, while live projectors keep running. group must be a
// consumer group that was never used: its first assignment is the whole
// topic. It returns the number of rows of the new table.
//
// The replay runs in two phases, so that the swap loses nothing the live
// projectors wrote meanwhile:
//
//  1. The group reads the topic from the start into the shadow table
//     until its caught-up marker: everything that was in the topic when
//     the group's partitions were assigned is folded.
//  2. The rebuild takes the live lock exclusively. Live projectors hold it
//     shared in every transaction, so from here on they wait, and every
//     event they folded is in the topic below its current end. A
//     subscription without a group reads on from the phase 1 marker's
//     positions to its own caught-up marker, the topic's end now, then
//     the shadow table replaces the live one and the lock is released.
//
// The live projectors then go on from their group's committed offsets,
// folding again into the new table events it already holds: the version
// guard makes those no-ops. Readers of the table wait only for the swap.
func (p *Projector) Rebuild(ctx context.Context, group string) (rows int64, err error) {
	if err := Migrate(ctx, p.db, p.log); err != nil {
		return 0, err
	}
	// One connection of its own holds both session locks; closing it
	// releases them whatever happens.
	conn, err := pgx.ConnectConfig(ctx, p.db.Config().ConnConfig.Copy())
	if err != nil {
		return 0, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, rebuildLockKey).Scan(&locked); err != nil {
		return 0, fmt.Errorf("take the rebuild lock: %w", err)
	}
	if !locked {
		return 0, ErrRebuildRunning
	}
	if err := createShadow(ctx, conn); err != nil {
		return 0, err
	}
	shadow := newTable(Shadow)

	p.log.Info("rebuild started", "group", group, "table", Shadow)
	ends, err := p.replay(ctx, shadow, &eventstorepb.SubscribeOpen{Group: group},
		eventstorepb.NackAction_NACK_ACTION_PARK)
	if err != nil {
		return 0, err
	}
	n, err := countRows(ctx, conn, Shadow)
	if err != nil {
		return 0, err
	}
	p.log.Info("replay caught up", "group", group, "rows", n, "positions", positionsAttr(ends))

	p.log.Info("pausing live projectors for the swap")
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, liveLockKey); err != nil {
		return 0, fmt.Errorf("take the live lock: %w", err)
	}
	// Without a group nothing can be parked: an event that cannot be
	// folded here was appended during phase 1 and is logged and skipped.
	ends, err = p.replay(ctx, shadow, &eventstorepb.SubscribeOpen{
		Start: eventstorepb.StartPosition_START_POSITION_CURSOR, Cursor: ends,
	}, eventstorepb.NackAction_NACK_ACTION_SKIP)
	if err != nil {
		return 0, err
	}
	if err := swap(ctx, conn); err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, liveLockKey); err != nil {
		return 0, fmt.Errorf("release the live lock: %w", err)
	}
	if rows, err = countRows(ctx, conn, Live); err != nil {
		return 0, err
	}
	p.log.Info("rebuild finished", "group", group, "rows", rows, "positions", positionsAttr(ends))
	return rows, nil
}

// replay folds the deliveries of subscriptions opened with open into t
// until the first caught-up marker, and returns the marker's positions.
func (p *Projector) replay(ctx context.Context, t table, open *eventstorepb.SubscribeOpen,
	poison eventstorepb.NackAction) ([]*eventstorepb.Position, error) {
	open.MaxInFlight = p.opts.MaxInFlight
	open.EventTypes = content.EventTypes
	var ends []*eventstorepb.Position
	untilCaughtUp := func(cu *eventstorepb.CaughtUp) bool {
		ends = cu.Positions
		return true
	}
	err := subscriber.Run(ctx, p.es, p.subscriberOptions(open),
		func(ctx context.Context, s *subscriber.Session) error {
			return p.consume(ctx, s, t, poison, untilCaughtUp)
		})
	if err == nil && ends == nil {
		err = ctx.Err()
	}
	return ends, err
}
