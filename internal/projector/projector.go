package projector

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsidecar/sidecar/internal/content"
	"github.com/eventsidecar/sidecar/internal/subscriber"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Options tune a Projector.
type Options struct {
	// Group is the consumer group of the live projection. Default
	// "read-model".
	Group string
	// MaxInFlight is the subscription's window: deliveries sent by the
	// sidecar and not acked yet. Default 512.
	MaxInFlight int32
	// BatchSize is the most deliveries folded in one transaction. Default
	// 256.
	BatchSize int
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Group == "" {
		o.Group = "read-model"
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 512
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Projector folds content events into the content table.
type Projector struct {
	db   *pgxpool.Pool
	es   eventstorepb.EventStoreServiceClient
	opts Options
	log  *slog.Logger
}

// New returns a projector that reads events through the sidecar es and
// writes them into db.
func New(db *pgxpool.Pool, es eventstorepb.EventStoreServiceClient, opts Options) *Projector {
	opts = opts.withDefaults()
	return &Projector{db: db, es: es, opts: opts, log: opts.Logger}
}

// Run migrates the schema and keeps the content table up to date as a
// member of the projection's group until ctx ends. It returns an error
// only when the schema cannot be migrated or the sidecar refuses the
// subscription for good; a lost sidecar or database is waited for.
func (p *Projector) Run(ctx context.Context) error {
	if err := Migrate(ctx, p.db, p.log); err != nil {
		return err
	}
	live := newTable(Live)
	open := &eventstorepb.SubscribeOpen{Group: p.opts.Group, MaxInFlight: p.opts.MaxInFlight,
		EventTypes: content.EventTypes}
	p.log.Info("projector started", "group", p.opts.Group, "table", Live)
	logCaughtUp := func(cu *eventstorepb.CaughtUp) bool {
		p.log.Info("projection caught up", "group", p.opts.Group, "positions", positionsAttr(cu.Positions))
		return false
	}
	return subscriber.Run(ctx, p.es, p.subscriberOptions(open),
		func(ctx context.Context, s *subscriber.Session) error {
			return p.consume(ctx, s, live, eventstorepb.NackAction_NACK_ACTION_PARK, logCaughtUp)
		})
}

func (p *Projector) subscriberOptions(open *eventstorepb.SubscribeOpen) subscriber.Options {
	return subscriber.Options{Open: func() *eventstorepb.SubscribeOpen { return open }, Logger: p.log}
}

// consume folds a session's deliveries into t, a batch per transaction,
// and acks each batch once its transaction committed. A delivery with an
// event that cannot be folded is nacked with poison (park in a group,
// skip without one). A caught-up marker is passed to caughtUp after every
// delivery before it was committed; consume returns nil when caughtUp
// returns true, and the session's error when its stream ends.
func (p *Projector) consume(ctx context.Context, s *subscriber.Session, t table,
	poison eventstorepb.NackAction, caughtUp func(*eventstorepb.CaughtUp) bool) error {
	for {
		batch, marker, open := collect(ctx, s.Messages(), p.opts.BatchSize)
		if len(batch) > 0 {
			if err := p.fold(ctx, s, t, batch, poison); err != nil {
				return err
			}
		}
		if marker != nil && caughtUp(marker) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !open {
			return s.Err()
		}
	}
}

// collect waits for a message, then takes those already there without
// waiting: at most max deliveries, and no further than a caught-up
// marker, so that the marker is handled after the deliveries before it.
// open is false once the channel is closed.
func collect(ctx context.Context, msgs <-chan *eventstorepb.SubscribeServerMessage, max int) (
	batch []*eventstorepb.Delivery, marker *eventstorepb.CaughtUp, open bool) {
	select {
	case m, ok := <-msgs:
		if !ok {
			return nil, nil, false
		}
		if marker = m.GetCaughtUp(); marker != nil {
			return nil, marker, true
		}
		batch = append(batch, m.GetDelivery())
	case <-ctx.Done():
		return nil, nil, true
	}
	for len(batch) < max {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch, nil, false
			}
			if marker = m.GetCaughtUp(); marker != nil {
				return batch, marker, true
			}
			batch = append(batch, m.GetDelivery())
		default:
			return batch, nil, true
		}
	}
	return batch, nil, true
}

// fold writes a batch of deliveries into t and acks them. It returns
// only the error of a send to the sidecar, or ctx's.
func (p *Projector) fold(ctx context.Context, s *subscriber.Session, t table, batch []*eventstorepb.Delivery,
	poison eventstorepb.NackAction) error {
	var good []*eventstorepb.Delivery
	var changes [][]content.Change
	for _, d := range batch {
		cs, err := decodeDelivery(d)
		if err != nil {
			if err := p.reject(s, d, poison, err); err != nil {
				return err
			}
			continue
		}
		good = append(good, d)
		changes = append(changes, cs)
	}
	if len(good) == 0 {
		return nil
	}

	err := p.writeRetrying(ctx, t, flatten(changes))
	if badData(err) {
		// One delivery's values are refused: find it by writing the
		// deliveries one at a time.
		return p.foldOneByOne(ctx, s, t, good, changes, poison)
	}
	if err != nil {
		return err
	}
	return s.Ack(positions(good)...)
}

func (p *Projector) foldOneByOne(ctx context.Context, s *subscriber.Session, t table,
	ds []*eventstorepb.Delivery, changes [][]content.Change, poison eventstorepb.NackAction) error {
	for i, d := range ds {
		err := p.writeRetrying(ctx, t, changes[i])
		switch {
		case badData(err):
			err = p.reject(s, d, poison, err)
		case err == nil:
			err = s.Ack(d.Position)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// reject nacks a delivery that can never be folded.
func (p *Projector) reject(s *subscriber.Session, d *eventstorepb.Delivery,
	action eventstorepb.NackAction, why error) error {
	p.log.Error("delivery cannot be folded", "partition", d.Position.Partition, "offset", d.Position.Offset,
		"action", action.String(), "err", why)
	return s.Nack(d.Position, action, why.Error())
}

// writeRetrying writes changes, retrying with backoff for as long as the
// database fails for reasons other than the values themselves. It
// returns nil, an error for which badData is true, or ctx's error.
func (p *Projector) writeRetrying(ctx context.Context, t table, changes []content.Change) error {
	if len(changes) == 0 {
		return nil
	}
	wait := 100 * time.Millisecond
	for {
		err := t.write(ctx, p.db, changes)
		if err == nil || badData(err) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.log.Warn("write to postgres failed; retrying", "table", t.name, "backoff", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// decodeDelivery returns the changes of a delivery's events, skipping
// events of types the projection does not fold.
func decodeDelivery(d *eventstorepb.Delivery) ([]content.Change, error) {
	var cs []content.Change
	var errs []error
	for _, e := range d.Events {
		c, ok, err := content.Decode(e)
		switch {
		case err != nil:
			errs = append(errs, err)
		case ok:
			cs = append(cs, c)
		}
	}
	return cs, errors.Join(errs...)
}

func flatten(changes [][]content.Change) []content.Change {
	var all []content.Change
	for _, cs := range changes {
		all = append(all, cs...)
	}
	return all
}

func positions(ds []*eventstorepb.Delivery) []*eventstorepb.Position {
	ps := make([]*eventstorepb.Position, len(ds))
	for i, d := range ds {
		ps[i] = d.Position
	}
	return ps
}

// positionsAttr renders positions for a log line.
func positionsAttr(ps []*eventstorepb.Position) slog.Value {
	attrs := make([]slog.Attr, 0, len(ps))
	for _, p := range ps {
		attrs = append(attrs, slog.Int64(partitionKey(p.Partition), p.Offset))
	}
	return slog.GroupValue(attrs...)
}

func partitionKey(p int32) string {
	return "partition_" + strconv.Itoa(int(p))
}
