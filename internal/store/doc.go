// Package store is the event store: the append protocol over the Redis
// version index (package versions) and the Kafka topic (package kafka), the
// rebuild of the index from the topic, and subscriptions.
//
// # Append
//
// An append takes a per-stream lock in the process, reserves its versions
// in the index with a lease, produces one record holding all of its events
// to the stream's partition, and commits the reservation with the record's
// offset. The commit of an acknowledged append is deferred past the reply
// and travels with the stream's next reservation in one script call, or
// goes alone after a short hold; reads of the stream in this process send
// it first. A definite refusal by the broker releases the reservation. An
// unknown outcome (a timeout, a lost connection) is resolved by writing a
// fence to the partition and looking for the reservation's token below
// it: found, the append is committed; not found, it is released. A
// reservation whose lease ran out, because its sidecar died, is resolved
// the same way by the next writer of the stream. docs/append-protocol.md
// walks through every step and every failure.
//
// Produce and commit run detached from the caller's context, bounded by the
// delivery timeout, so a client that hangs up mid-append leaves no stream
// blocked.
//
// # Rebuild
//
// When the index has no epoch (Redis lost data, or it is new), appends are
// refused as unavailable and the index is rebuilt from the topic: every
// partition is read from its first offset and folded into the index, which
// only ever raises a stream's version. Before the epoch is written the
// rebuild waits one lease and reads what landed meanwhile, so an append that
// was in flight when Redis lost its data is indexed too. A store over a
// topic its process has just created (Options.NewTopic) skips the wait.
//
// A rebuild advances per-partition watermarks as it merges. The next
// rebuild resumes from them when every slot of the index still carries the
// mark of the rebuild that wrote them (only epoch keys were lost), and
// reads from the start otherwise. RebuildIndex is the same rebuild for
// operators (`sidecar index rebuild`), with progress reports.
//
// # Repair
//
// A stream that lost some or all of its keys while its slot kept its epoch
// (package versions tells how) is refused alone: appends and reads of it
// are unavailable while its partition is read from the start and merged
// again, under a repair mark that keeps every sidecar from appending to the
// half-merged stream. Like a rebuild, a repair waits one lease for appends
// that were in flight, then ends the mark.
//
// # Persistent subscriptions
//
// A Subscription with a group is a member of the Kafka consumer group of
// that name, through a franz-go client of its own with cooperative-sticky
// balancing and no automatic commits. Members on one sidecar or many share
// the partitions; all records of a stream are in one partition, so one
// member receives a whole stream, in version order. A delivery is one
// record: the events of one append.
//
// Every polled record is registered in its partition in offset order. It
// is done once acked, parked or skipped, or as soon as the sender reaches
// it when the subscriber's filters leave nothing of it (or it is not an
// append). A partition commits its watermark, the offset of its first
// record not done, so a commit never passes an unacked delivery. Commits
// run every CommitInterval, on revoke and on close. At most max_in_flight
// registered records are not done: the poller asks Kafka for only as many
// as the window has room for, so a slow subscriber holds its window plus
// one fetch of memory and is never skipped, delivery waits for it.
//
// A poll blocks rebalances until its records are registered, so a revoke
// sees every record of its partitions. On revoke the partitions' watermarks
// are committed and the partitions forgotten: their queued records are not
// sent and later acks for them are ignored; their unacked deliveries go to
// the new owner, which starts at that commit. Lost partitions (the member
// was fenced) are forgotten without a commit. A new group, and every group
// in a partition added to the topic, starts at the first offset; committed
// offsets of idle groups must not expire, which is the brokers'
// offsets.retention.minutes.
//
// A subscription without a group reads every partition directly from the
// beginning, the end or a cursor, looks up the partition count every
// PartitionRefresh and reads new partitions from offset 0. It commits
// nothing; acks only free its window.
//
// When partitions are assigned (or a group-less subscription opens) their
// end offsets are looked up; once everything below them was sent or
// skipped, a CaughtUp naming them is queued, once per assignment.
//
// A parked delivery is appended to the group's parked log (see package
// kafka) before it counts as acked. ListParked reads the parked log from
// the replay cursor on; ReplayParked copies what follows the cursor into
// the group's replay log, which the group consumes beside the topic. A
// replayed delivery's position is its place in the replay log, marked
// replayed; its events keep their positions in the topic.
//
// A group's metrics are recorded where its deliveries go out and its acks
// come in. Its lag per partition is computed at every commit interval from
// what the subscription already knows, without a request of its own: the
// highest end offset its fetches and the store's partition refresh saw,
// and the offset it started at or last committed.
//
// Partitions added to the topic are noticed by the store every
// PartitionRefresh (new streams are then pinned across all of them, once
// the producer knows them) and by the groups' clients within the metadata
// age.
//
// # Tracing
//
// With a Tracer and a Propagator in its Options the store traces: an
// append is a producer span with reserve, produce, settle and commit as
// children (the commit may end after the append, which replied before it
// ran), and its trace context goes into the record's headers. A delivery
// is a consumer span of a trace of its own, linked to the trace context in
// its record, from the moment it is handed out to its ack, park, skip or
// retry, or to the revoke or close that ends it unacked. A replayed
// delivery links to the original append: a parked record keeps the
// headers. Without a Propagator records carry no trace context.
//
// # Limitations
//
// A sidecar that stalls longer than the lease between its last lease check
// and the broker's write can land a record that the index no longer
// expects; the stream's next writer has then moved on. Landing after the
// next writer's record, it is superseded and readers skip it; landing
// between the resolver's fence and that record, it takes the versions in
// the topic and the acknowledged record is the one a rebuild skips. Keep
// the delivery timeout well below the lease. A stream whose last record is
// far behind the end of its partition makes resolving an expired lease
// read that distance.
//
// A delivery's redelivery count is kept by the subscription that sent it
// (and carried through parking); a new owner after a rebalance counts from
// 0. A delivery that is never acked holds its partition's watermark: acked
// records behind it come again after a crash or rebalance, and each costs
// a little memory until it is acked. Replays of one group are serialized
// within a sidecar, not across sidecars: two sidecars replaying the same
// group at the same moment can replay a parked delivery twice. Members of
// one group should share their filters: a record one member filters out
// counts as acked for the group. A caught-up marker is not sent for an
// assignment whose offsets could not be looked up.
package store
