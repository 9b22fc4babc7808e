package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// SubscriptionOptions tune persistent subscriptions.
type SubscriptionOptions struct {
	// MaxInFlight is the window of a subscriber that asks for none: how
	// many deliveries may be sent and not yet acked. Default 256.
	MaxInFlight int
	// CommitInterval is how often a group commits what was acked. A
	// revoke and the end of a subscription commit too. Default 1s.
	CommitInterval time.Duration
	// Group tunes the consumer clients.
	Group kafka.GroupConfig
	// ReplicationFactor of the groups' parked and replay logs; -1 takes the
	// broker's default. Default -1.
	ReplicationFactor int16
}

func (o SubscriptionOptions) withDefaults() SubscriptionOptions {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.CommitInterval <= 0 {
		o.CommitInterval = time.Second
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = -1
	}
	return o
}

// MaxInFlightLimit is the largest window a subscriber may ask for.
const MaxInFlightLimit = 10_000

// closeTimeout bounds the last commit and the leave of a subscription.
const closeTimeout = 10 * time.Second

// Subscription is an open persistent subscription: a member of a group,
// or a group-less reader of the whole topic. Next is called from one
// goroutine; Ack and Nack from one other goroutine.
type Subscription struct {
	s      *Store
	group  string
	replay string // the group's replay log; empty without a group
	window int
	filter filter
	// from is where partitions without a committed offset start.
	from int64
	cons *kafka.Consumer
	log  *slog.Logger
	gm   groupMetrics

	// ctx ends the poller, the committer and the partition watcher.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// commitMu serializes commits, so that a periodic commit built before
	// a revoke can never land after the revoke's own commit.
	commitMu sync.Mutex

	mu    sync.Mutex
	parts map[partKey]*partState
	// queue holds the registered records still to send, in partition
	// order; a retried delivery goes to its front.
	queue []*entry
	// outbox holds caught-up markers, sent before the next delivery.
	outbox []*eventstorepb.SubscribeServerMessage
	// outstanding counts registered records that are not done: queued or
	// delivered and unacked. It never exceeds window.
	outstanding int
	// err is why consumption ended.
	err error

	ready chan struct{} // something to send, or err
	room  chan struct{} // the window has room
}

// partKey names a partition of the event topic or of the replay log.
type partKey struct {
	replay    bool
	partition int32
}

// partState is one assigned partition. A partition assigned again gets a
// new partState; the old one is gone for good.
type partState struct {
	key partKey
	// gone is set when the partition was revoked or lost: its queued
	// records are dropped and acks for it are ignored.
	gone bool
	// pending holds registered records in offset order; done records are
	// trimmed from the front, so the first is the commit watermark.
	pending []*entry
	// next is the offset after the last registered record; -1 before
	// the first.
	next int64
	// committed is the last offset committed by this subscription; -1
	// for none.
	committed int64
	// sent is the offset after the last record sent or skipped in order;
	// -1 when unknown.
	sent int64
	// assign is the assignment the partition came with; it waits for the
	// partition while the partition is in its ends.
	assign *assignment
	// start is the offset the partition was read from at assignment: the
	// group's committed offset, if any; -1 when unknown. With committed,
	// it is the base of the group's lag.
	start int64
	// end is the highest end offset seen for the partition, at assignment
	// and in fetches; -1 before the first.
	end int64
}

// newPartState returns the state of a partition assigned to read from
// offset sent, -1 when unknown.
func newPartState(k partKey, sent int64) *partState {
	return &partState{key: k, next: -1, committed: -1, sent: sent, start: -1, end: -1}
}

// assignment is a set of partitions assigned at once, waiting to report
// that everything they held at assignment time was sent.
type assignment struct {
	// ends are the end offsets of the partitions not caught up yet.
	ends map[*partState]int64
	// positions are what the report says; nil once it was queued.
	positions []*eventstorepb.Position
}

// entry is one registered record.
type entry struct {
	p      *partState
	offset int64
	rec    *kgo.Record
	// delivery is nil for a record that is skipped: filtered out, not an
	// append, or a control record.
	delivery     *eventstorepb.Delivery
	redeliveries int32
	delivered    bool
	done         bool
	// appendCtx is the trace context of the append that wrote the record,
	// which the delivery's span links to.
	appendCtx trace.SpanContext
	// span is the delivery's span, from its sending to its ack; nil while
	// it is not in flight.
	span trace.Span
}

// Subscribe opens a persistent subscription. With a group it joins the
// group's consumers of the topic and its replay log; without one it reads
// every partition from open.start. It returns an *InvalidError naming the
// field of open that is malformed.
func (s *Store) Subscribe(ctx context.Context, open *eventstorepb.SubscribeOpen) (*Subscription, error) {
	if err := s.validateOpen("open.", open); err != nil {
		return nil, err
	}
	return s.subscribe(ctx, open, 0)
}

// SubscribeToAllInGroup calls fn for every event as a member of group,
// and counts an event's record as acked once fn returned for each of its
// events: the group commits what was handed to fn. Partitions without a
// committed offset start at from (0 is the start).
func (s *Store) SubscribeToAllInGroup(ctx context.Context, group string, from int64,
	fn func(*eventstorepb.Event) error) error {
	if err := s.validGroup("group", group); err != nil {
		return err
	}
	sub, err := s.subscribe(ctx, &eventstorepb.SubscribeOpen{Group: group}, from)
	if err != nil {
		return err
	}
	defer sub.Close()
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		d := m.GetDelivery()
		if d == nil {
			continue
		}
		for _, e := range d.Events {
			if err := fn(e); err != nil {
				return err
			}
		}
		sub.Ack([]*eventstorepb.Position{d.Position})
	}
}

func (s *Store) subscribe(ctx context.Context, open *eventstorepb.SubscribeOpen, from int64) (*Subscription, error) {
	o := s.opts.Subscriptions
	sub := &Subscription{
		s:      s,
		group:  open.Group,
		window: o.MaxInFlight,
		filter: newFilter(open),
		from:   from,
		parts:  make(map[partKey]*partState),
		ready:  make(chan struct{}, 1),
		room:   make(chan struct{}, 1),
		log:    s.log.With("group", open.Group),
	}
	if open.MaxInFlight > 0 {
		sub.window = int(open.MaxInFlight)
	}
	sub.ctx, sub.cancel = context.WithCancel(context.WithoutCancel(ctx))

	var err error
	if sub.group != "" {
		// Counted before the consumer exists: its first assignment can
		// record the lag before NewGroupConsumer returns.
		sub.gm = groupMetrics{m: s.opts.Metrics, group: sub.group}
		s.joinGroup(sub.group)
		if err = sub.openGroup(ctx); err != nil {
			s.leaveGroup(sub.group)
		}
	} else {
		err = sub.openDirect(ctx, open)
	}
	if err != nil {
		sub.cancel()
		return nil, err
	}
	sub.wg.Add(1)
	go sub.poll()
	sub.log.Info("subscription opened", "max_in_flight", sub.window)
	return sub, nil
}

func (sub *Subscription) openGroup(ctx context.Context) error {
	s := sub.s
	if err := s.ensureGroupTopics(ctx, sub.group); err != nil {
		return err
	}
	sub.replay = kafka.ReplayTopic(s.opts.Topic, sub.group)
	cons, err := kafka.NewGroupConsumer(s.kcfg, s.opts.Subscriptions.Group, sub.group,
		[]string{s.opts.Topic, sub.replay}, sub.from, sub)
	if err != nil {
		return unavailable("%v", err)
	}
	sub.cons = cons
	sub.wg.Add(1)
	go sub.commitLoop()
	return nil
}

// openDirect resolves where every partition starts, registers them as one
// assignment and starts reading.
func (sub *Subscription) openDirect(ctx context.Context, open *eventstorepb.SubscribeOpen) error {
	rd := sub.s.reader
	starts, err := rd.StartOffsets(ctx)
	if err != nil {
		return unavailable("kafka: %v", err)
	}
	ends, err := rd.EndOffsets(ctx)
	if err != nil {
		return unavailable("kafka: %v", err)
	}
	from := make(map[int32]int64, len(ends))
	for p, end := range ends {
		switch open.Start {
		case eventstorepb.StartPosition_START_POSITION_END:
			from[p] = end
		default:
			from[p] = starts[p]
		}
	}
	for i, c := range open.Cursor {
		if _, ok := ends[c.Partition]; !ok {
			return invalid(fmt.Sprintf("open.cursor[%d].partition", i), "the topic has no partition %d; it has %d",
				c.Partition, len(ends))
		}
		from[c.Partition] = min(max(c.Offset, starts[c.Partition]), ends[c.Partition])
	}

	sub.mu.Lock()
	sub.assignLocked(sortedKeys(from), from, ends)
	sub.mu.Unlock()
	cons, err := kafka.NewDirectConsumer(sub.s.kcfg, sub.s.opts.Subscriptions.Group, from)
	if err != nil {
		return unavailable("%v", err)
	}
	sub.cons = cons
	sub.wg.Add(1)
	go sub.watchPartitions()
	return nil
}

// Next returns the next message for the subscriber: a delivery or a
// caught-up marker. It waits while the window is full or nothing is
// there, and fails when ctx ends or consumption failed for good.
func (sub *Subscription) Next(ctx context.Context) (*eventstorepb.SubscribeServerMessage, error) {
	for {
		sub.mu.Lock()
		if err := sub.err; err != nil {
			sub.mu.Unlock()
			return nil, err
		}
		m := sub.nextLocked()
		sub.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-sub.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (sub *Subscription) nextLocked() *eventstorepb.SubscribeServerMessage {
	for {
		if len(sub.outbox) > 0 {
			m := sub.outbox[0]
			sub.outbox = sub.outbox[1:]
			return m
		}
		if len(sub.queue) == 0 {
			return nil
		}
		e := sub.queue[0]
		sub.queue[0] = nil
		sub.queue = sub.queue[1:]
		if e.p.gone || e.done {
			continue
		}
		sub.advanceLocked(e.p, e.offset+1)
		if e.delivery == nil {
			sub.finishLocked(e, "")
			continue
		}
		e.delivered = true
		sub.gm.delivered(e)
		d := e.delivery
		e.span = sub.s.startDeliver(e.appendCtx, sub.group, d.Position,
			deliveredEvents(string(e.rec.Key), d.Events), e.redeliveries)
		return &eventstorepb.SubscribeServerMessage{Kind: &eventstorepb.SubscribeServerMessage_Delivery{
			Delivery: &eventstorepb.Delivery{Position: d.Position, Events: d.Events, Redeliveries: e.redeliveries},
		}}
	}
}

// Ack marks deliveries as processed. Positions that are not in flight,
// for example of a partition revoked meanwhile, are ignored.
func (sub *Subscription) Ack(positions []*eventstorepb.Position) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, pos := range positions {
		if e := sub.inFlightLocked(pos); e != nil {
			sub.finishLocked(e, deliveryAcked)
		}
	}
}

// Nack rejects a delivery: retry sends it again, park moves it to the
// group's parked log, skip drops it; park and skip count as acked. A
// position that is not in flight is ignored. It returns an *InvalidError
// for a malformed nack and an error wrapping ErrUnavailable when parking
// failed, after which the delivery stays unacked.
func (sub *Subscription) Nack(ctx context.Context, n *eventstorepb.Nack) error {
	if err := sub.validateNack(n); err != nil {
		return err
	}
	sub.mu.Lock()
	e := sub.inFlightLocked(n.Position)
	if e == nil {
		sub.mu.Unlock()
		return nil
	}
	switch n.Action {
	case eventstorepb.NackAction_NACK_ACTION_RETRY:
		endDeliver(e.span, deliveryRetried)
		e.span = nil
		e.delivered = false
		e.redeliveries++
		sub.queue = append([]*entry{e}, sub.queue...)
		sub.mu.Unlock()
		notify(sub.ready)
		return nil
	case eventstorepb.NackAction_NACK_ACTION_SKIP:
		sub.finishLocked(e, deliverySkipped)
		sub.mu.Unlock()
		return nil
	}

	// Park: the record is written to the parked log before it counts as
	// acked, outside the lock so that deliveries go on meanwhile.
	rec, fromReplay, redeliveries := e.rec, e.p.key.replay, e.redeliveries
	sub.mu.Unlock()
	if err := sub.s.park(ctx, sub.group, rec, fromReplay, redeliveries, n.Reason); err != nil {
		return err
	}
	sub.mu.Lock()
	if !e.p.gone && !e.done {
		sub.finishLocked(e, deliveryParked)
	}
	sub.mu.Unlock()
	sub.log.Info("delivery parked", "partition", n.Position.Partition, "offset", n.Position.Offset,
		"replayed", n.Position.Replayed)
	return nil
}

func (sub *Subscription) validateNack(n *eventstorepb.Nack) error {
	switch {
	case n.Position == nil:
		return invalid("nack.position", "is required")
	case n.Action == eventstorepb.NackAction_NACK_ACTION_PARK && sub.group == "":
		return invalid("nack.action", "park needs a group; a subscription without one can retry or skip")
	case eventstorepb.NackAction_name[int32(n.Action)] == "":
		return invalid("nack.action", "%d is not a NackAction", n.Action)
	case len(n.Reason) > maxReasonBytes:
		return invalid("nack.reason", "is %d bytes long, the limit is %d", len(n.Reason), maxReasonBytes)
	case !utf8.ValidString(n.Reason):
		return invalid("nack.reason", "is not valid UTF-8")
	}
	return nil
}

// maxReasonBytes bounds the reason of a nack.
const maxReasonBytes = 4096

// inFlightLocked returns the delivered, unacked record at pos, or nil.
func (sub *Subscription) inFlightLocked(pos *eventstorepb.Position) *entry {
	if pos == nil {
		return nil
	}
	p := sub.parts[partKey{replay: pos.Replayed, partition: pos.Partition}]
	if p == nil {
		return nil
	}
	i := sort.Search(len(p.pending), func(i int) bool { return p.pending[i].offset >= pos.Offset })
	if i == len(p.pending) {
		return nil
	}
	e := p.pending[i]
	if e.offset != pos.Offset || !e.delivered || e.done {
		return nil
	}
	return e
}

// finishLocked marks e done: acked, parked, skipped or filtered out, as
// outcome says (empty when filtered out). Its record is released; the
// commit watermark moves past it once every earlier record is done too.
func (sub *Subscription) finishLocked(e *entry, outcome string) {
	sub.gm.acked(e)
	endDeliver(e.span, outcome)
	e.done, e.rec, e.delivery, e.span = true, nil, nil, nil
	sub.outstanding--
	p := e.p
	n := 0
	for n < len(p.pending) && p.pending[n].done {
		p.pending[n] = nil
		n++
	}
	p.pending = p.pending[n:]
	notify(sub.room)
}

// watermark is the offset the partition may commit: every record before
// it is done. It is -1 before the first record.
func (p *partState) watermark() int64 {
	if len(p.pending) > 0 {
		return p.pending[0].offset
	}
	return p.next
}

// Close ends the subscription: it stops reading, commits what was acked
// and leaves the group, each step bounded by closeTimeout. Deliveries not
// acked by then go to the group's next owner of their partition.
func (sub *Subscription) Close() {
	// Stop the poller first: no record is registered after this point,
	// so the final commit sees everything the subscriber could ack.
	sub.cancel()
	sub.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if sub.group != "" {
		if err := sub.commitAcked(ctx); err != nil {
			sub.log.Warn("final commit failed; unacked deliveries come again", "err", err)
		}
	}
	// Leaving runs a last revoke, which commits acks that arrived since.
	if err := sub.cons.Close(ctx); err != nil {
		sub.log.Warn("leaving the group failed; its partitions move after the session timeout", "err", err)
	}
	if sub.group != "" {
		sub.s.leaveGroup(sub.group)
	}
	// A group's last revoke ended the spans of its deliveries in flight;
	// a group-less subscription has no revoke.
	sub.mu.Lock()
	for _, p := range sub.parts {
		endSpansLocked(p, deliveryClosed)
	}
	sub.mu.Unlock()
	sub.log.Info("subscription closed")
}

// poll registers records while the window has room.
func (sub *Subscription) poll() {
	defer sub.wg.Done()
	for {
		sub.mu.Lock()
		free := sub.window - sub.outstanding
		sub.mu.Unlock()
		if free <= 0 {
			select {
			case <-sub.room:
				continue
			case <-sub.ctx.Done():
				return
			}
		}
		if err := sub.cons.Poll(sub.ctx, free, sub.register); err != nil {
			if sub.ctx.Err() != nil {
				return
			}
			sub.mu.Lock()
			sub.err = unavailable("kafka: %v", err)
			sub.mu.Unlock()
			notify(sub.ready)
			return
		}
	}
}

// register queues polled records and notes the partitions' end offsets
// the fetches reported. It runs while rebalances wait, so every record
// belongs to a partition this subscription holds.
func (sub *Subscription) register(rs []*kgo.Record, ends []kafka.PartitionEnd) {
	entries := make([]*entry, len(rs))
	for i, r := range rs {
		entries[i] = sub.prepare(r)
	}
	sub.mu.Lock()
	for _, end := range ends {
		if p := sub.parts[partKey{partition: end.Partition}]; p != nil && end.Topic == sub.s.opts.Topic {
			p.end = max(p.end, end.End)
		}
	}
	for _, e := range entries {
		p := sub.parts[e.p.key]
		if p == nil || p.gone || e.offset < p.next {
			continue
		}
		e.p = p
		p.pending = append(p.pending, e)
		p.next = e.offset + 1
		sub.queue = append(sub.queue, e)
		sub.outstanding++
	}
	sub.mu.Unlock()
	notify(sub.ready)
}

// prepare decodes a record into its delivery, nil when it is skipped. The
// entry's partition is only a key until register finds the real one.
func (sub *Subscription) prepare(r *kgo.Record) *entry {
	key := partKey{replay: r.Topic != sub.s.opts.Topic, partition: r.Partition}
	e := &entry{p: &partState{key: key}, offset: r.Offset, rec: r}
	if r.Attrs.IsControl() {
		return e
	}
	a, err := kafka.Decode(r)
	if err != nil {
		if !errors.Is(err, kafka.ErrNotAnAppend) {
			sub.log.Warn("subscription skips an undecodable record", "partition", r.Partition,
				"offset", r.Offset, "err", err)
		}
		return e
	}
	pos := &eventstorepb.Position{Partition: r.Partition, Offset: r.Offset}
	if key.replay {
		info, ok := kafka.ParkedInfo(r)
		if !ok {
			return e
		}
		for _, ev := range a.Events {
			ev.Partition, ev.Offset = info.Partition, info.Offset
		}
		pos.Replayed = true
		e.redeliveries = info.Redeliveries + 1
	}
	if events := sub.filter.apply(a); len(events) > 0 {
		e.delivery = &eventstorepb.Delivery{Position: pos, Events: events}
		e.appendCtx = sub.s.appendContext(r)
	}
	return e
}

// commitLoop commits what was acked every CommitInterval, and records
// the lag that leaves.
func (sub *Subscription) commitLoop() {
	defer sub.wg.Done()
	t := time.NewTicker(sub.s.opts.Subscriptions.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-sub.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(sub.ctx, closeTimeout)
		if err := sub.commitAcked(ctx); err != nil && sub.ctx.Err() == nil {
			sub.log.Warn("commit failed, retrying at the next interval", "err", err)
		}
		cancel()
		sub.mu.Lock()
		sub.recordLagLocked()
		sub.mu.Unlock()
	}
}

// commitAcked commits the watermark of every partition that moved.
func (sub *Subscription) commitAcked(ctx context.Context) error {
	sub.commitMu.Lock()
	defer sub.commitMu.Unlock()
	sub.mu.Lock()
	offsets, moved := sub.watermarksLocked(sub.parts)
	sub.mu.Unlock()
	if len(moved) == 0 {
		return nil
	}
	if err := sub.cons.Commit(ctx, offsets); err != nil {
		return err
	}
	sub.mu.Lock()
	for p, wm := range moved {
		p.committed = wm
	}
	sub.mu.Unlock()
	return nil
}

// watermarksLocked returns the commits that parts need, by topic, and the
// partitions they move.
func (sub *Subscription) watermarksLocked(parts map[partKey]*partState) (map[string]map[int32]int64, map[*partState]int64) {
	offsets := make(map[string]map[int32]int64)
	moved := make(map[*partState]int64)
	for _, p := range parts {
		wm := p.watermark()
		if p.gone || wm < 0 || wm <= p.committed {
			continue
		}
		t := sub.topicOf(p.key)
		if offsets[t] == nil {
			offsets[t] = make(map[int32]int64)
		}
		offsets[t][p.key.partition] = wm
		moved[p] = wm
	}
	return offsets, moved
}

func (sub *Subscription) topicOf(k partKey) string {
	if k.replay {
		return sub.replay
	}
	return sub.s.opts.Topic
}

// watchPartitions adds partitions created after a group-less subscription
// opened, read from their first offset.
func (sub *Subscription) watchPartitions() {
	defer sub.wg.Done()
	t := time.NewTicker(sub.s.opts.PartitionRefresh)
	defer t.Stop()
	for {
		select {
		case <-sub.ctx.Done():
			return
		case <-t.C:
		}
		ends, err := sub.s.reader.EndOffsets(sub.ctx)
		if err != nil {
			continue
		}
		var added []int32
		sub.mu.Lock()
		for _, p := range sortedKeys(ends) {
			k := partKey{partition: p}
			if sub.parts[k] == nil {
				sub.parts[k] = newPartState(k, 0)
				added = append(added, p)
			}
		}
		sub.mu.Unlock()
		if len(added) > 0 {
			sub.log.Info("subscription reads new partitions", "partitions", added)
			sub.cons.AddPartitions(added)
		}
	}
}

// filter selects the events a subscriber wants.
type filter struct {
	types  map[string]bool
	prefix string
}

func newFilter(open *eventstorepb.SubscribeOpen) filter {
	f := filter{prefix: open.StreamPrefix}
	if len(open.EventTypes) > 0 {
		f.types = make(map[string]bool, len(open.EventTypes))
		for _, t := range open.EventTypes {
			f.types[t] = true
		}
	}
	return f
}

// apply returns the events of a the subscriber wants, none when the
// stream does not match.
func (f filter) apply(a *eventstorepb.RecordedAppend) []*eventstorepb.Event {
	if !strings.HasPrefix(a.StreamName, f.prefix) {
		return nil
	}
	if f.types == nil {
		return a.Events
	}
	var out []*eventstorepb.Event
	for _, e := range a.Events {
		if f.types[e.EventType] {
			out = append(out, e)
		}
	}
	return out
}

// validateOpen checks a subscription's opening message; fields are named
// with prefix.
func (s *Store) validateOpen(prefix string, open *eventstorepb.SubscribeOpen) error {
	field := func(name string) string { return prefix + name }
	if open.Group != "" {
		if err := s.validGroup(field("group"), open.Group); err != nil {
			return err
		}
	}
	switch n := open.MaxInFlight; {
	case n < 0:
		return invalid(field("max_in_flight"), "%d is negative; 0 takes the default", n)
	case n > MaxInFlightLimit:
		return invalid(field("max_in_flight"), "%d is above the limit %d", n, MaxInFlightLimit)
	}
	for i, t := range open.EventTypes {
		if err := checkName(fmt.Sprintf("%sevent_types[%d]", prefix, i), t, s.opts.Limits.MaxEventTypeBytes); err != nil {
			return err
		}
	}
	if len(open.StreamPrefix) > s.opts.Limits.MaxStreamNameBytes || !utf8.ValidString(open.StreamPrefix) {
		return invalid(field("stream_prefix"), "must be valid UTF-8 of at most %d bytes", s.opts.Limits.MaxStreamNameBytes)
	}
	if eventstorepb.StartPosition_name[int32(open.Start)] == "" {
		return invalid(field("start"), "%d is not a StartPosition", open.Start)
	}
	if open.Group != "" && (open.Start != eventstorepb.StartPosition_START_POSITION_BEGINNING || len(open.Cursor) > 0) {
		return invalid(field("start"), "a group starts where it committed, a new group at the beginning; leave start and cursor unset")
	}
	if len(open.Cursor) > 0 && open.Start != eventstorepb.StartPosition_START_POSITION_CURSOR {
		return invalid(field("cursor"), "needs start START_POSITION_CURSOR")
	}
	seen := make(map[int32]int, len(open.Cursor))
	for i, c := range open.Cursor {
		f := fmt.Sprintf("%scursor[%d]", prefix, i)
		switch j, dup := seen[c.GetPartition()]; {
		case c == nil:
			return invalid(f, "is empty")
		case c.Partition < 0 || c.Offset < 0:
			return invalid(f, "partition %d offset %d: both must be non-negative", c.Partition, c.Offset)
		case c.Replayed:
			return invalid(f+".replayed", "a cursor names positions in the topic, not in a replay log")
		case dup:
			return invalid(f+".partition", "partition %d is also in cursor[%d]", c.Partition, j)
		}
		seen[c.Partition] = i
	}
	return nil
}

// validGroup accepts group names that are also valid in topic names:
// letters, digits, '.', '_' and '-', short enough for the group's parked
// and replay logs.
func (s *Store) validGroup(field, group string) error {
	limit := min(kafka.MaxGroupLen(s.opts.Topic), 200)
	switch {
	case group == "":
		return invalid(field, "must not be empty")
	case len(group) > limit:
		return invalid(field, "is %d bytes long, the limit is %d", len(group), limit)
	}
	for i, r := range group {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return invalid(field, "has %q at byte %d; a group name is letters, digits, '.', '_' and '-'", r, i)
		}
	}
	return nil
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func sortedKeys[V any](m map[int32]V) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}
